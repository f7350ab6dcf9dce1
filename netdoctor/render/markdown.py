"""Markdown report: ``report.md`` plus its PNGs in ``report_files/`` beside it.

Markdown viewers render inline HTML, so every string from a report is escaped
(``<``, ``>``, ``&`` as entities, table pipes and emphasis characters
backslashed); source lines go in fenced blocks whose fence is longer than any
backtick run inside them.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote
from typing import Any

from .._version import __version__
from ..files import write_atomic
from . import verdict as verdict_mod
from .verdict import Cause, Item, SourceExcerpt, Verdict

_STATE_MARK = {"healthy": "✅", "NOT healthy": "❌", "not observed": "❔", "partly observed": "◐"}
NO_PICTURES = "_Pictures are written beside the file when the report is saved as .md or .html._"
# Enough to stop emphasis, code spans, links/images (no "[" means no link), tables and
# strike-through; "(" and ")" are harmless once "[" and "]" are escaped.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def escape(text: Any) -> str:
    """Safe inline Markdown: no HTML tags, no accidental emphasis, links or table cells."""
    s = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    return re.sub(r"\s+", " ", s)  # one line: a newline would end a list item


def _prose(text: Any) -> str:
    """Escaped text where rule texts' ``code`` marks become code spans."""
    return "".join(_code(piece) if is_code else escape(piece) for is_code, piece in verdict_mod.code_marks(text))


def _code(text: Any) -> str:
    """Inline code span that survives backticks in the text."""
    s = " ".join(str(text).split())
    longest = max((len(run) for run in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or longest else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def _fenced(lines: list[str], info: str = "") -> list[str]:
    body = "\n".join(lines)
    longest = max((len(run) for run in re.findall(r"`{3,}", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + info, *lines, fence]


def _source(excerpt: SourceExcerpt) -> list[str]:
    rows = [
        f"{'>' if n == excerpt.focus else ' '} {n:>{excerpt.width}} | {text}" for n, text in excerpt.lines
    ]
    return _fenced(rows)


def _headline(item: Item) -> str:
    f = item.finding
    layer = f" \\[{escape(f.layer)}\\]" if f.layer else ""
    return f"**{str(f.severity).upper()} {escape(f.code)}** {escape(f.symbol)}{layer}"


def _evidence(item: Item) -> list[str]:
    out = []
    if item.measured:
        out.append("evidence: " + ", ".join(f"{escape(e.key)} = {_code(e.value)}" for e in item.measured))
    if item.thresholds:
        out.append("thresholds: " + ", ".join(f"{escape(e.key)} = {_code(e.value)}" for e in item.thresholds))
    return out


def _cause(cause: Cause, show_run: bool) -> list[str]:
    lines: list[str] = []
    if show_run:
        lines.append(f"- **Run:** {escape(cause.run)}")
    if cause.crash:
        lines.append(f"- **It crashed:** {_code(cause.crash)}")
    for symptom in cause.symptoms:
        lines.append(f"- **What you see:** {_headline(symptom)}: {_prose(symptom.finding.message)}")
    if cause.cause is not None:
        label = "Why" if cause.symptoms else "What is wrong"
        lines.append(f"- **{label}:** {_headline(cause.cause)}: {_prose(cause.cause.finding.message)}")
        lines += [f"  - {line}" for line in _evidence(cause.cause)]
        if cause.where is not None:
            lines.append(f"- **Where:** {_code(cause.where)}")
            if cause.cause.excerpt is not None:
                lines.append("")
                lines += ["  " + row for row in _source(cause.cause.excerpt)]
                lines.append("")
        if cause.fix:
            lines.append(f"- **Fix:** {_prose(cause.fix)}")
    return lines


def _finding(item: Item, prefix: str = "") -> list[str]:
    f = item.finding
    step = f" (from step {f.step})" if f.step is not None else ""
    lines = [f"- {prefix}{_headline(item)}{step}: {_prose(f.message)}"]
    if f.location is not None:
        lines.append(f"  - at {_code(f.location)}")
    lines += [f"  - {line}" for line in _evidence(item)]
    if f.fix:
        lines.append(f"  - fix: {_prose(f.fix)}")
    return lines


def _comparison(v: Verdict) -> list[str]:
    cmp = v.comparison
    lines = [f"## Findings side by side: {escape(cmp.left)} against {escape(cmp.right)}", ""]
    for heading, rows in cmp.columns:
        lines.append(f"### {escape(heading)} ({len(rows)})")
        lines.append("")
        if not rows:
            lines.append("_none_")
        for row in rows:
            if row.where == "both":
                lines += _finding(row.left, prefix=f"{escape(cmp.left)}: ")
                lines += _finding(row.right, prefix=f"{escape(cmp.right)}: ")
            else:
                lines += _finding(row.left or row.right)
        lines.append("")
    return lines


def render(report, images: dict[str, tuple[str, str]] | None = None, notes: list[str] | None = None, **_: Any) -> str:
    """The Markdown text. ``images`` maps picture titles to (relative path, caption), from :func:`save`."""
    v = verdict_mod.build(report)
    lines = [f"# netdoctor: {escape(v.title)}", ""]
    lines += [
        f"- {_STATE_MARK[run.state]} **{escape(run.name)}**: {escape(run.status_line.split(': ', 1)[1])}"
        for run in v.runs
    ]
    lines.append("")
    for cause in v.causes:
        lines += _cause(cause, show_run=len(v.causes) > 1)
        lines.append("")
    compared: set[str] = set()
    if v.comparison is not None:
        lines += _comparison(v)
        compared = {v.comparison.left, v.comparison.right}
    for run in v.runs:
        if run.name in compared:
            continue
        lines += [f"## Findings of {escape(run.name)}", ""]
        for item in run.items:
            lines += _finding(item)
        if not run.items:
            lines.append("_no findings_")
        lines.append("")
    lines += ["## Pictures", ""]
    if images is None:
        lines += [NO_PICTURES, ""]
    else:
        for title, (path, caption) in images.items():
            # Percent-encoded: a folder name with spaces or brackets must not break the link.
            lines += [f"### {escape(title)}", "", f"![{escape(title)}]({quote(path)})", ""]
            lines += [escape(caption), ""] if caption else []
        for note in notes or []:
            lines.append(f"- _{escape(note)}_")
        lines.append("")
    lines += ["## Runs", ""]
    for run in v.runs:
        lines.append(f"### {escape(run.name)}")
        lines.append("")
        lines.append(f"- status: {escape(run.status)}, {run.steps} steps"
                     + (f" ({escape(run.stop_reason)})" if run.stop_reason else ""))
        if run.script:
            lines.append(f"- script: {_code(run.script)}")
        lines += [f"- note: {escape(note)}" for note in run.notes]
        if run.rule_errors:
            lines.append(f"- internal error in rule(s) {escape(', '.join(run.rule_errors))}; the other rules ran")
        for code, why in run.skipped:
            lines.append(f"- skipped {escape(code)}: {escape(why)}")
        if run.error:
            lines += ["", "The script raised:", "", *_fenced(run.error.rstrip().splitlines())]
        lines.append("")
    lines.append(f"_netdoctor {escape(__version__)}_")
    return "\n".join(lines) + "\n"


def save(report, path) -> Path:
    """Write ``path`` and its pictures in ``<stem>_files/`` beside it; each file atomically.

    Pictures go first and the Markdown last, so a reader never sees a report
    pointing at images that are not there yet.
    """
    from . import plots

    target = Path(path)
    folder = target.with_name(f"{target.stem}_files")
    images: dict[str, tuple[str, str]] = {}
    notes: list[str] = []
    for picture in plots.gallery(report):
        if not picture.drawn:
            notes.append(picture.note)
            continue
        write_atomic(folder / f"{picture.name}.png", picture.png)
        images[picture.title] = (f"{folder.name}/{picture.name}.png", picture.caption)
        if picture.gif:
            write_atomic(folder / f"{picture.name}.gif", picture.gif)
            images[f"{picture.title}, animated"] = (f"{folder.name}/{picture.name}.gif", "")
    write_atomic(target, render(report, images=images, notes=notes))
    return target
