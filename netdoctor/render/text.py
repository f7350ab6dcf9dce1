"""Terminal summary of a Report: verdict first, then the findings of each run."""

from __future__ import annotations

import textwrap

from ..types import Severity


def _wrap(text: str, indent: str, width: int = 100) -> list[str]:
    return textwrap.wrap(text, width=width, initial_indent=indent, subsequent_indent=indent) or [indent]


def render(report, width: int = 100, verbose: bool = False) -> str:
    lines: list[str] = []
    for name, trace in report.runs.items():
        info = trace.info
        findings = report.findings_for(name)
        n_err = sum(f.severity >= Severity.ERROR for f in findings)
        n_warn = sum(f.severity == Severity.WARNING for f in findings)
        head = f"== {name}: {info.status}, {info.steps} steps"
        if info.stop_reason:
            head += f" ({info.stop_reason})"
        head += f" — {n_err} error(s), {n_warn} warning(s)"
        lines.append(head)
        if info.script:
            lines.append(f"   script: {info.script}")
        for note in info.notes:
            lines.extend(_wrap("note: " + note, "   ", width))
        if info.error:
            lines.append("   the script raised:")
            lines.extend("     " + row for row in info.error.rstrip().splitlines())
        shown = [f for f in findings if verbose or f.severity >= Severity.WARNING]
        for f in shown:
            lines.append(f"{str(f.severity).upper():7s} {f.code} {f.symbol}")
            lines.extend(_wrap(f.message, "        ", width))
            if f.location is not None:
                lines.append(f"        at {f.location}")
            if f.fix:
                lines.extend(_wrap("Fix: " + f.fix, "        ", width))
        hidden = len(findings) - len(shown)
        if hidden:
            lines.append(f"   ({hidden} info finding(s) hidden; --verbose shows them)")
        if not findings:
            lines.append("   no findings: healthy")
        errors = report.errors.get(name) or {}
        if errors:
            lines.append(f"   internal error in rule(s) {', '.join(sorted(errors))} (other rules ran)")
        lines.append("")
    if len(report.runs) >= 2:
        diff = report.diff()
        names = list(report.runs)
        lines.append(f"== {names[0]} vs {names[1]}")
        for where in (f"only {names[0]}", "both", f"only {names[1]}"):
            rows = diff[diff["where"] == where]
            codes = ", ".join(f"{r.code} {r.symbol}" + (f" [{r.layer}]" if r.layer else "") for r in rows.itertuples())
            lines.extend(_wrap(f"{where}: {codes or '-'}", "   ", width))
        lines.append("")
    verdict = "healthy" if report.ok else "NOT healthy"
    lines.append(f"verdict: {verdict}")
    return "\n".join(lines)
