"""Shared test helpers.

``pytester`` runs inner pytest sessions (the plugin and the assertion helpers are
tested the way a user meets them). ``make_report`` builds Reports from hand-made
findings, so the judging helpers are tested without running any network.
"""

from __future__ import annotations

import os
from typing import Iterable

import pytest

# Keras 3 needs a backend; the tests (and the scripts they run) use torch's, so that the
# README's test command works from a fresh shell without exporting anything.
os.environ.setdefault("KERAS_BACKEND", "torch")

pytest_plugins = ["pytester"]


def finding(code: str, symbol: str, severity: str = "error", run: str = "original",
            message: str = "hand-made finding"):
    from netdoctor.types import Finding, Severity

    return Finding(code=code, symbol=symbol, severity=Severity.parse(severity), run=run, message=message)


# What each role leaves in a trace when a producer saw it (see netdoctor.runstate).
SEEN_SERIES = {
    "outputs": ("model", "out_mean"),
    "loss": ("model", "loss"),
    "updates": ("layer1", "update_ratio"),
    "gradients": ("layer1", "grad_norm"),
}


def observed_trace(name: str = "original", steps: int = 3, status: str = "completed",
                   seen: Iterable[str] = ("outputs", "loss", "updates"), losses: list[float] | None = None,
                   **info):
    """A Trace of `steps` steps in which the roles in `seen` were recorded (made-up values)."""
    from netdoctor.trace import MODEL, Trace
    from netdoctor.types import RunInfo

    wanted = [SEEN_SERIES[role] for role in seen]
    if losses is not None:   # the given probe losses are the loss series, one step each
        steps = len(losses) or steps
        wanted = [key for key in wanted if key != SEEN_SERIES["loss"]]
    trace = Trace(RunInfo(name=name, status=status, steps=steps if wanted or losses else 0, **info))
    for step in range(steps if wanted or losses else 0):
        values = {key: 0.5 / (step + 1) for key in wanted}
        if losses:
            values[(MODEL, "probe_loss")] = losses[step]
        if not values:
            continue
        trace.recorder.record(step, values)
    return trace


def make_report(findings: Iterable = (), runs: Iterable[str] = ("original",),
                status: dict[str, str] | None = None, error: dict[str, str] | None = None,
                skipped: dict | None = None, losses: dict[str, list[float]] | None = None,
                seen: dict[str, Iterable[str]] | None = None):
    """A Report over made-up traces named `runs`, holding `findings`.

    Each run is fully observed (outputs, loss and updates recorded) unless `seen`
    names what was seen in it; `status`/`error` set its RunInfo; `losses` records a
    probe_loss series per run.
    """
    from netdoctor.report import Report

    traces = []
    for name in runs:
        traces.append(observed_trace(
            name, status=(status or {}).get(name, "completed"), error=(error or {}).get(name),
            seen=(seen or {}).get(name, ("outputs", "loss", "updates")), losses=(losses or {}).get(name)))
    return Report(traces, list(findings), skipped=skipped or {})


@pytest.fixture
def report_factory():
    return make_report


@pytest.fixture
def finding_factory():
    return finding
