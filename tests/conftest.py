"""Shared test helpers.

``pytester`` runs inner pytest sessions (the plugin and the assertion helpers are
tested the way a user meets them). ``make_report`` builds Reports from hand-made
findings, so the judging helpers are tested without running any network.
"""

from __future__ import annotations

from typing import Iterable

import pytest

pytest_plugins = ["pytester"]


def finding(code: str, symbol: str, severity: str = "error", run: str = "original",
            message: str = "hand-made finding"):
    from netdoctor.types import Finding, Severity

    return Finding(code=code, symbol=symbol, severity=Severity.parse(severity), run=run, message=message)


def make_report(findings: Iterable = (), runs: Iterable[str] = ("original",),
                status: dict[str, str] | None = None, error: dict[str, str] | None = None,
                skipped: dict | None = None, losses: dict[str, list[float]] | None = None):
    """A Report over empty traces named `runs`, holding `findings`.

    `status`/`error` set a run's RunInfo; `losses` records a probe_loss series per run.
    """
    from netdoctor.report import Report
    from netdoctor.trace import MODEL, Trace
    from netdoctor.types import RunInfo

    traces = []
    for name in runs:
        info = RunInfo(name=name, status=(status or {}).get(name, "completed"),
                       error=(error or {}).get(name))
        trace = Trace(info)
        for step, value in enumerate((losses or {}).get(name, [])):
            trace.recorder.record(step, {(MODEL, "probe_loss"): value})
        traces.append(trace)
    return Report(traces, list(findings), skipped=skipped or {})


@pytest.fixture
def report_factory():
    return make_report


@pytest.fixture
def finding_factory():
    return finding
