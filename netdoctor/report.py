"""Report: the findings on one or more runs, plus the traces they came from.

Value, verdict and display are kept apart: a Report holds traces (measured) and
findings (judged); rendering lives in :mod:`netdoctor.render` and is imported only
when a report is shown or saved.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from ._version import __version__
from .config import DEFAULT_THRESHOLDS, Thresholds
from .files import write_atomic  # noqa: F401  (re-exported: netdoctor.report.write_atomic)
from .runstate import Coverage, RunState, coverage, run_state
from .trace import Trace
from .types import Finding, Severity

SAVE_FORMATS = {".html": "html", ".htm": "html", ".md": "md", ".json": "json", ".txt": "text"}


class ReportError(Exception):
    """A report could not be written (bad path, would overwrite an input)."""


class Report:
    def __init__(
        self,
        runs: Iterable[Trace] | Mapping[str, Trace],
        findings: Iterable[Finding] = (),
        *,
        skipped: Mapping[str, Mapping[str, str]] | None = None,
        errors: Mapping[str, Mapping[str, str]] | None = None,
        thresholds: Thresholds | None = None,
    ):
        traces = list(runs.values()) if isinstance(runs, Mapping) else list(runs)
        self.runs: dict[str, Trace] = {trace.name: trace for trace in traces}
        self.findings: list[Finding] = list(findings)
        self.skipped = {run: dict(codes) for run, codes in (skipped or {}).items()}
        self.errors = {run: dict(codes) for run, codes in (errors or {}).items()}
        self.thresholds = thresholds or DEFAULT_THRESHOLDS

    @classmethod
    def from_traces(
        cls,
        traces: Iterable[Trace],
        thresholds: Thresholds | None = None,
        select: Iterable[str] | None = None,
    ) -> "Report":
        """Judge each trace with the rule catalogue."""
        from .rules import run_rules

        traces = list(traces)
        findings: list[Finding] = []
        skipped: dict[str, dict[str, str]] = {}
        errors: dict[str, dict[str, str]] = {}
        for trace in traces:
            outcome = run_rules(trace, thresholds, select)
            findings.extend(outcome.findings)
            skipped[trace.name] = outcome.skipped
            errors[trace.name] = outcome.errors
        return cls(traces, findings, skipped=skipped, errors=errors, thresholds=thresholds)

    # -- verdict ------------------------------------------------------------------
    @property
    def ok(self) -> bool:
        """True when every run is healthy: fully observed, judged, and free of errors.

        A run seen only in part, or not at all, is not "ok": not all of it was judged
        (see :mod:`netdoctor.runstate`).
        """
        return all(self.state(name) is RunState.HEALTHY for name in self.runs)

    def state(self, run: str) -> RunState:
        """The verdict one run has earned (healthy, not healthy, partly observed, ...)."""
        return run_state(self.runs[run], self.findings_for(run))

    def coverage(self, run: str) -> Coverage:
        """What of one run was seen, and why the rest was not."""
        return coverage(self.runs[run])

    def unobserved(self) -> list[str]:
        """Names of runs in which not a single parameter update was observed."""
        return [
            name for name, trace in self.runs.items()
            if trace.info.steps <= 0 and len(trace.steps) == 0
        ]

    def partly_observed(self) -> list[str]:
        """Names of runs with no error finding whose outputs, loss or updates were not all seen."""
        return [name for name in self.runs if self.state(name) is RunState.PARTLY_OBSERVED]

    def findings_for(self, run: str) -> list[Finding]:
        return [f for f in self.findings if f.run == run]

    def codes(self, run: str | None = None, at_least: Severity = Severity.INFO) -> set[str]:
        return {
            f.code
            for f in self.findings
            if (run is None or f.run == run) and f.severity >= at_least
        }

    def worst(self, run: str | None = None) -> Severity | None:
        levels = [f.severity for f in self.findings if run is None or f.run == run]
        return max(levels) if levels else None

    def fails(self, fail_on: Severity | str = Severity.ERROR) -> bool:
        """Whether any finding is at or above `fail_on` (the CLI's exit status 1)."""
        level = Severity.parse(fail_on)
        return any(f.severity >= level for f in self.findings)

    # -- data out -----------------------------------------------------------------
    def to_frame(self):
        """Findings as a pandas frame, one row per finding."""
        import pandas as pd

        columns = ["run", "code", "symbol", "severity", "layer", "step", "message", "location", "fix"]
        rows = [
            {
                "run": f.run,
                "code": f.code,
                "symbol": f.symbol,
                "severity": str(f.severity),
                "layer": f.layer,
                "step": f.step,
                "message": f.message,
                "location": None if f.location is None else str(f.location),
                "fix": f.fix,
            }
            for f in self.findings
        ]
        return pd.DataFrame(rows, columns=columns)

    def trace_frame(self):
        """Every run's tidy trace in one frame (run, step, layer, quantity, value)."""
        import pandas as pd

        frames = [trace.frame() for trace in self.runs.values()]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def diff(self, a: str | None = None, b: str | None = None):
        """Which (code, layer) findings are only in run `a`, in both, or only in `b`.

        Defaults to the first two runs (the original and its fix).
        """
        import pandas as pd

        names = list(self.runs)
        if a is None or b is None:
            if len(names) < 2:
                raise ValueError("diff needs two runs; this report has " + ", ".join(names))
            a, b = a or names[0], b or names[1]
        for name in (a, b):
            if name not in self.runs:
                raise KeyError(f"no run {name!r}; runs are: {', '.join(names)}")

        def keyed(run: str) -> dict[tuple[str, str], Finding]:
            out: dict[tuple[str, str], Finding] = {}
            for f in self.findings_for(run):
                out.setdefault((f.code, f.layer or ""), f)
            return out

        in_a, in_b = keyed(a), keyed(b)
        rows = []
        for key in sorted(set(in_a) | set(in_b)):
            fa, fb = in_a.get(key), in_b.get(key)
            where = "both" if fa and fb else (f"only {a}" if fa else f"only {b}")
            f = fa or fb
            rows.append(
                {
                    "code": f.code,
                    "symbol": f.symbol,
                    "layer": key[1] or None,
                    "where": where,
                    f"severity_{a}": None if fa is None else str(fa.severity),
                    f"severity_{b}": None if fb is None else str(fb.severity),
                    f"message_{a}": None if fa is None else fa.message,
                    f"message_{b}": None if fb is None else fb.message,
                }
            )
        columns = ["code", "symbol", "layer", "where", f"severity_{a}", f"severity_{b}",
                   f"message_{a}", f"message_{b}"]
        return pd.DataFrame(rows, columns=columns)

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract other tools read (documented in README.md)."""
        runs = {}
        for name, trace in self.runs.items():
            entry = trace.info.to_dict()
            entry["state"] = str(self.state(name))
            cov = self.coverage(name)
            entry["coverage"] = cov.to_dict()
            entry["not_judged"] = [{"family": family, "why": why} for family, why in cov.families_not_run()]
            entry["skipped_rules"] = dict(self.skipped.get(name, {}))
            entry["rule_errors"] = dict(self.errors.get(name, {}))
            runs[name] = entry
        return {
            "netdoctor": __version__,
            "ok": self.ok,
            "runs": runs,
            "findings": [f.to_dict() for f in self.findings],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    # -- display (lazy: renderers are imported only here) -----------------------------
    def render(self, format: str = "text", **options: Any) -> str:
        if format == "json":
            return self.to_json()
        from . import render

        return render.render(self, format, **options)

    def __str__(self) -> str:
        return self.render("text")

    def __repr__(self) -> str:
        worst = self.worst()
        return (
            f"<Report runs={list(self.runs)} findings={len(self.findings)} "
            f"worst={worst and str(worst)} ok={self.ok}>"
        )

    def _repr_html_(self) -> str:
        return self.render("html")

    def figure(self, name: str, **options: Any):
        """One matplotlib Figure of the report (e.g. "loss", "outputs", "grad_norm")."""
        from .render import plots

        return plots.figure(self, name, **options)

    def save(self, path: str | os.PathLike, format: str | None = None) -> Path:
        """Write the report atomically; refuses to overwrite a script it diagnosed."""
        target = Path(path)
        fmt = format or SAVE_FORMATS.get(target.suffix.lower())
        if fmt is None:
            known = ", ".join(sorted(SAVE_FORMATS))
            raise ReportError(f"cannot tell the format of {target}; use one of {known} or pass format=")
        protect_inputs(target, self.input_paths())
        if fmt == "md":
            from .render import markdown

            return markdown.save(self, target)
        text = self.render(fmt)
        write_atomic(target, text)
        return target

    def input_paths(self) -> list[Path]:
        return [Path(t.info.script) for t in self.runs.values() if t.info.script]


def protect_inputs(target: Path, inputs: Iterable[Path]) -> None:
    """Refuse to write over a script being diagnosed, or over any Python source."""
    if target.suffix.lower() == ".py":
        raise ReportError(f"refusing to write a report to {target}: it is a Python file")
    resolved = target.resolve()
    for source in inputs:
        try:
            if source.resolve() == resolved:
                raise ReportError(f"refusing to overwrite {target}: it is the script being diagnosed")
        except OSError:
            continue
    if target.is_dir():
        raise ReportError(f"{target} is a directory; give a file name")


