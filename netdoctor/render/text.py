"""Terminal summary of a Report: verdict first, then the comparison, then run facts.

Plain text, no colour codes (it is also written to files and CI logs). The
same :mod:`.verdict` decides what comes first as in the HTML and Markdown reports.
"""

from __future__ import annotations

import textwrap

from ..types import Severity
from ..runstate import RunState
from . import verdict as verdict_mod
from .verdict import Cause, Item, RunSummary, SourceExcerpt, Verdict

LABEL_WIDTH = 14  # "What you see  " — the left column of the verdict block


def _wrap(text: str, indent: str, width: int, first: str | None = None) -> list[str]:
    lines: list[str] = []
    for paragraph in str(text).splitlines() or [""]:
        lines.extend(
            textwrap.wrap(paragraph, width=width, initial_indent=first if first is not None and not lines else indent,
                          subsequent_indent=indent, break_long_words=True, break_on_hyphens=False)
            or [first if first is not None and not lines else indent]
        )
    return lines


def _labelled(label: str, text: str, width: int) -> list[str]:
    pad = " " * LABEL_WIDTH
    return _wrap(text, pad, width, first=f"{label:<{LABEL_WIDTH}}")


def _headline(item: Item) -> str:
    f = item.finding
    layer = f" [{f.layer}]" if f.layer else ""
    return f"{str(f.severity).upper()} {f.code} {f.symbol}{layer}"


def _source_lines(excerpt: SourceExcerpt, indent: str) -> list[str]:
    out = []
    for number, text in excerpt.lines:
        mark = ">" if number == excerpt.focus else " "
        out.append(f"{indent}{mark} {number:>{excerpt.width}} | {text}")
    return out


def _evidence_lines(item: Item, indent: str, width: int) -> list[str]:
    lines = []
    if item.measured:
        lines += _wrap("evidence: " + ", ".join(f"{e.key}={e.value}" for e in item.measured), indent, width)
    if item.thresholds:
        lines += _wrap("thresholds: " + ", ".join(f"{e.key}={e.value}" for e in item.thresholds), indent, width)
    return lines


def _cause_block(cause: Cause, width: int, show_run: bool) -> list[str]:
    lines: list[str] = []
    if show_run:
        lines += _labelled("Run", cause.run, width)
    if cause.crash:
        lines += _labelled("It crashed", cause.crash, width)
    for symptom in cause.symptoms:
        lines += _labelled("What you see", f"{_headline(symptom)}: {symptom.finding.message}", width)
    if cause.cause is not None:
        label = "Why" if cause.symptoms else "What is wrong"
        lines += _labelled(label, f"{_headline(cause.cause)}: {cause.cause.finding.message}", width)
        lines += _evidence_lines(cause.cause, " " * LABEL_WIDTH, width)
        if cause.where is not None:
            lines += _labelled("Where", str(cause.where), width)
            if cause.cause.excerpt is not None:
                lines += _source_lines(cause.cause.excerpt, " " * LABEL_WIDTH)
        elif cause.cause.finding.layer:
            lines += _labelled("Where", f"layer {cause.cause.finding.layer} (no source location known)", width)
        if cause.fix:
            lines += _labelled("Fix", cause.fix, width)
    return lines


def _finding_lines(item: Item, width: int, indent: str = "  ", prefix: str = "",
                   fix_shown: str | None = None) -> list[str]:
    f = item.finding
    body = indent + "    "
    lines = [f"{indent}{prefix}{_headline(item)}" + (f" (from step {f.step})" if f.step is not None else "")]
    lines += _wrap(f.message, body, width)
    if f.location is not None:
        lines.append(f"{body}at {f.location}")
    lines += _evidence_lines(item, body, width)
    if f.fix and f.fix == fix_shown:
        lines.append(f"{body}Fix: as above")  # the same rule on another layer: say it once
    elif f.fix:
        lines += _wrap("Fix: " + f.fix, body, width)
    return lines


def _visible(item: Item | None, verbose: bool) -> bool:
    return item is not None and (verbose or item.finding.severity >= Severity.WARNING)


def _comparison(v: Verdict, width: int, verbose: bool) -> list[str]:
    cmp = v.comparison
    lines = [f"== {cmp.left} vs {cmp.right}"]
    hidden = 0
    for heading, rows in cmp.columns:
        shown = [r for r in rows if _visible(r.left, verbose) or _visible(r.right, verbose)]
        hidden += len(rows) - len(shown)
        lines.append(f"{heading} ({len(shown)})" + ("" if shown else ": -"))
        previous_fix = None
        for row in shown:
            if row.where == "both":
                lines += _finding_lines(row.left, width, prefix=f"{cmp.left}: ")
                lines += _finding_lines(row.right, width, prefix=f"{cmp.right}: ", fix_shown=row.left.finding.fix)
                previous_fix = row.right.finding.fix
            else:
                item = row.left or row.right
                lines += _finding_lines(item, width, fix_shown=previous_fix)
                previous_fix = item.finding.fix
    if hidden:
        lines.append(f"({hidden} info finding(s) hidden; --verbose shows them)")
    return lines


def _run_facts(run: RunSummary, width: int, with_findings: bool, verbose: bool) -> list[str]:
    lines = [f"== {run.status_line}"]
    if run.script:
        lines.append(f"   script: {run.script}")
    for note in run.notes:
        lines += _wrap("note: " + note, "   ", width)
    if run.error:
        lines.append("   the script raised:")
        lines += ["     " + row for row in run.error.rstrip().splitlines()]
    if with_findings:
        shown = [item for item in run.items if _visible(item, verbose)]
        previous_fix = None
        for item in shown:
            lines += _finding_lines(item, width, indent="", fix_shown=previous_fix)
            previous_fix = item.finding.fix
        if len(run.items) > len(shown):
            lines.append(f"   ({len(run.items) - len(shown)} info finding(s) hidden; --verbose shows them)")
        if not run.items:
            lines.append(f"   no findings: {run.state}" if run.healthy or not run.observed else "   no findings")
    if run.run_state is RunState.PARTLY_OBSERVED and run.not_judged:
        lines.append("   not judged (what they need was not seen):")
        for family, why in run.not_judged:
            lines += _wrap(f"{family}: {why}", "     ", width)
    if run.rule_errors:
        lines.append(f"   internal error in rule(s) {', '.join(run.rule_errors)} (other rules ran)")
    if run.skipped and verbose:
        for code, why in run.skipped:
            lines += _wrap(f"skipped {code}: {why}", "   ", width)
    return lines


def render(report, width: int = 100, verbose: bool = False, **_) -> str:
    v = verdict_mod.build(report)
    lines = [f"netdoctor: {v.title}", ""]
    for i, cause in enumerate(v.causes):
        if i:
            lines.append("")
        lines += _cause_block(cause, width, show_run=len(v.causes) > 1)
    if v.causes:
        lines.append("")
    lines += [run.status_line for run in v.runs]
    lines.append("")
    compared = set()
    if v.comparison is not None:
        lines += _comparison(v, width, verbose)
        lines.append("")
        compared = {v.comparison.left, v.comparison.right}
    for run in v.runs:
        lines += _run_facts(run, width, with_findings=run.name not in compared, verbose=verbose)
        lines.append("")
    final = {"bad": "NOT healthy", "good": "healthy", "unknown": "nothing observed, nothing judged",
             "partly": "partly observed: no error in what was seen, not all of it judged"}[v.tone]
    lines.append(f"verdict: {final}")
    return "\n".join(lines)
