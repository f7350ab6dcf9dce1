"""What the top of a report says, decided once for every format.

Text, Markdown and HTML all start from :func:`build`, so the three agree on the
root cause, where it lives and what to do. Nothing here formats or draws: the
result is plain data (findings, source lines, number strings) that a renderer
lays out.

Choosing the root cause
    A rule in ND1 (outputs and loss) describes what the user *sees*: outputs
    pinned at 0.5, a flat loss. Other families describe why: an activation that
    cannot reach the targets (ND3), gradients that vanish (ND2), an
    initialisation that keeps units alike (ND4), updates (ND5), data (ND6).
    The top of the report therefore prefers a non-ND1 finding, then one that no
    other finding of the run explains (:data:`EXPLAINS`: raw inputs in the
    thousands saturate the units and so vanish the gradients; updates that go
    uphill blow the gradients up), then one that explains another, then the
    more severe one, then one that points
    at a line of the user's code, then the family order of :data:`FAMILY_ORDER`;
    the ND1 findings of the same run are shown above it as the symptom it explains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..config import Thresholds
from ..runstate import RunState
from ..types import Finding, Location, Severity

# Lower is more likely a cause. ND1 is last: it is the symptom the others explain.
FAMILY_ORDER = {"ND3": 0, "ND2": 1, "ND4": 2, "ND5": 3, "ND6": 4, "ND1": 9}
SYMPTOM_FAMILY = "ND1"
# Cause -> the findings it brings about. A finding explained by another one of the same
# run (at warning or above) is its consequence, not the root cause, whatever its severity:
# the error ND201 "gradients vanish" is what the warning ND602 "inputs in the thousands"
# does to a sigmoid network. Only mechanisms that always hold are listed.
EXPLAINS = {
    "ND602": frozenset({"ND201", "ND301"}),                   # raw inputs saturate the units
    "ND403": frozenset({"ND201", "ND202", "ND301", "ND302"}),  # weights far too small or large
    "ND501": frozenset({"ND105", "ND106", "ND202"}),           # steps far too large
    "ND503": frozenset({"ND105", "ND106", "ND202"}),           # steps that go uphill
    "ND502": frozenset({"ND104"}),                             # steps far too small
    "ND201": frozenset({"ND502", "ND104"}),                    # no gradient, so no step
}
# Causes that act on the layers they name (an init scale on layer2 says nothing of layer1).
LAYER_BOUND = frozenset({"ND403"})
HEALTHY_STATUSES = ("completed", "stopped")
STATE_LABELS = {
    RunState.HEALTHY: "healthy",
    RunState.NOT_HEALTHY: "NOT healthy",
    RunState.CRASHED: "NOT healthy",        # the status line says "crashed"
    RunState.PARTLY_OBSERVED: "partly observed",
    RunState.NOT_OBSERVED: "not observed",
}

# Source excerpt around a finding's line when the finding does not carry its own.
CONTEXT_BEFORE, CONTEXT_AFTER = 2, 3
# Long strings from user code (a huge printed array, a long message) are clipped.
MAX_VALUE_CHARS = 160
MAX_LIST_ITEMS = 8

_THRESHOLD_NAMES = frozenset(f.name for f in fields(Thresholds))


@dataclass(frozen=True)
class SourceExcerpt:
    """A few lines of the user's file, with the line the finding points at."""

    path: str
    lines: tuple[tuple[int, str], ...]
    focus: int | None

    @property
    def width(self) -> int:
        """Digits needed for the largest line number (for aligned gutters)."""
        return len(str(max((n for n, _ in self.lines), default=0)))


@dataclass(frozen=True)
class EvidenceItem:
    key: str
    value: str


@dataclass(frozen=True)
class Item:
    """One finding prepared for display: measured values apart from the thresholds used."""

    finding: Finding
    measured: tuple[EvidenceItem, ...]
    thresholds: tuple[EvidenceItem, ...]
    excerpt: SourceExcerpt | None

    @property
    def severity(self) -> str:
        return str(self.finding.severity)


@dataclass(frozen=True)
class RunSummary:
    name: str
    status: str
    steps: int
    healthy: bool              # fully observed, no error finding, finished (what Report.ok counts)
    observed: bool             # any training step was seen; without one, "healthy" means nothing
    n_errors: int
    n_warnings: int
    n_info: int
    script: str | None
    stop_reason: str | None
    error: str | None
    notes: tuple[str, ...]
    items: tuple[Item, ...]                 # every finding, worst first
    skipped: tuple[tuple[str, str], ...]    # (code, why) rules that could not judge
    rule_errors: tuple[str, ...]            # codes of rules that failed internally
    run_state: RunState = RunState.HEALTHY
    not_judged: tuple[tuple[str, str], ...] = ()   # (rule family, why) that lacked what they need
    blind: tuple[str, ...] = ()                     # required roles not seen: "loss", "outputs", ...

    @property
    def state(self) -> str:
        """'healthy', 'NOT healthy', 'partly observed' or 'not observed' (see netdoctor.runstate)."""
        return STATE_LABELS[self.run_state]

    @property
    def status_line(self) -> str:
        state = self.state
        counts = f"{self.n_errors} error(s), {self.n_warnings} warning(s)"
        run = f"{self.status}, {self.steps} steps"
        if self.stop_reason:
            run += f" ({self.stop_reason})"
        return f"{self.name}: {state} — {run}; {counts}"


@dataclass(frozen=True)
class Cause:
    """The headline of one unhealthy run: what the user sees, why, where, and the fix."""

    run: str
    cause: Item | None          # the root cause (may itself be an ND1 finding if nothing else fired)
    symptoms: tuple[Item, ...]  # ND1 findings of the same run, shown as "what you see"
    crash: str | None           # last line of the traceback when the run crashed

    @property
    def where(self) -> Location | None:
        return None if self.cause is None else self.cause.finding.location

    @property
    def fix(self) -> str:
        return "" if self.cause is None else self.cause.finding.fix


@dataclass(frozen=True)
class Row:
    """One line of the side-by-side comparison (same code and layer in both runs)."""

    code: str
    symbol: str
    layer: str | None
    where: str                  # "left", "both" or "right"
    left: Item | None
    right: Item | None
    anchor: str = ""            # a stable in-page id, for links from the summary to the details


@dataclass(frozen=True)
class Comparison:
    left: str
    right: str
    rows: tuple[Row, ...]

    def only_left(self) -> list[Row]:
        return [r for r in self.rows if r.where == "left"]

    def both(self) -> list[Row]:
        return [r for r in self.rows if r.where == "both"]

    def only_right(self) -> list[Row]:
        return [r for r in self.rows if r.where == "right"]

    @property
    def columns(self) -> list[tuple[str, list[Row]]]:
        """The three groups in reading order, with their headings."""
        return [
            (f"only in {self.left}", self.only_left()),
            ("in both", self.both()),
            (f"only in {self.right}", self.only_right()),
        ]


@dataclass(frozen=True)
class Verdict:
    ok: bool
    title: str                  # one line: the answer
    causes: tuple[Cause, ...]   # one per unhealthy run, first run first
    runs: tuple[RunSummary, ...]
    comparison: Comparison | None

    @property
    def primary(self) -> Cause | None:
        return self.causes[0] if self.causes else None

    @property
    def tone(self) -> str:
        """'bad', 'good', 'partly' (seen in part, no error) or 'unknown' (a run not observed at all)."""
        states = {r.run_state for r in self.runs}
        if not self.runs or states & {RunState.NOT_HEALTHY, RunState.CRASHED}:
            return "bad"
        if RunState.NOT_OBSERVED in states:
            return "unknown"  # not ok only because nothing was seen
        if RunState.PARTLY_OBSERVED in states:
            return "partly"
        return "good" if self.ok else "bad"

    @property
    def headlined(self) -> tuple[Finding, ...]:
        """Findings already shown with their source lines at the top (not repeated below)."""
        return tuple(c.cause.finding for c in self.causes if c.cause is not None)


# -- building ---------------------------------------------------------------------------


def build(report) -> Verdict:
    """Decide what the report says first; every renderer lays out this same answer."""
    runs = tuple(_summarise_run(report, name) for name in report.runs)
    causes = tuple(
        cause for cause in (_cause_of(summary) for summary in runs
                            if summary.run_state in (RunState.NOT_HEALTHY, RunState.CRASHED))
        if cause is not None
    )
    comparison = _compare(report, runs) if len(runs) >= 2 else None
    return Verdict(
        ok=bool(report.ok),
        title=_title(runs, causes),
        causes=causes,
        runs=runs,
        comparison=comparison,
    )


def cause_rank(finding: Finding, explained: frozenset[int] = frozenset(),
               explaining: frozenset[int] = frozenset()) -> tuple:
    """Sort key: likelier root causes first (see the module docstring). `explained` and
    `explaining` are the ids of the run's findings that another explains, and that explain
    another (:func:`explanations`)."""
    family = finding.code[:3]
    return (
        family == SYMPTOM_FAMILY,
        id(finding) in explained,
        id(finding) not in explaining,
        -int(finding.severity),
        finding.location is None,
        FAMILY_ORDER.get(family, 5),
        finding.code,
    )


def explanations(findings: Iterable[Finding]) -> tuple[frozenset[int], frozenset[int]]:
    """Which of `findings` another one (at warning or above) explains, and which explain
    another: two sets of ``id(finding)``. A cause bound to layers (init scale) explains
    only findings on those layers; a cause in the data explains them on any layer."""
    findings = list(findings)
    explained, explaining = set(), set()
    for cause in findings:
        if cause.severity < Severity.WARNING:
            continue
        effects = EXPLAINS.get(cause.code, frozenset())
        layers = set(cause.evidence.get("layers") or ([cause.layer] if cause.layer else []))
        for effect in findings:
            if effect is cause or effect.code not in effects:
                continue
            if cause.code in LAYER_BOUND and effect.layer is not None and effect.layer not in layers:
                continue
            explained.add(id(effect))
            explaining.add(id(cause))
    return frozenset(explained), frozenset(explaining)


def _summarise_run(report, name: str) -> RunSummary:
    trace = report.runs[name]
    info = trace.info
    findings = sorted(report.findings_for(name), key=lambda f: (-int(f.severity), f.code, f.layer or ""))
    n_errors = sum(f.severity >= Severity.ERROR for f in findings)
    state = report.state(name)
    cov = report.coverage(name)
    healthy = state is RunState.HEALTHY
    return RunSummary(
        name=name,
        status=info.status,
        steps=int(info.steps),
        healthy=healthy,
        observed=int(info.steps) > 0 or len(trace.steps) > 0,
        n_errors=n_errors,
        n_warnings=sum(f.severity == Severity.WARNING for f in findings),
        n_info=sum(f.severity == Severity.INFO for f in findings),
        script=info.script,
        stop_reason=info.stop_reason,
        error=info.error,
        notes=tuple(str(n) for n in info.notes),
        items=tuple(describe(f) for f in findings),
        skipped=tuple(sorted((report.skipped.get(name) or {}).items())),
        rule_errors=tuple(sorted(report.errors.get(name) or {})),
        run_state=state,
        not_judged=tuple(cov.families_not_run()) if state is not RunState.NOT_OBSERVED else (),
        blind=tuple(str(role) for role in cov.blind_required),
    )


def _cause_of(summary: RunSummary) -> Cause | None:
    serious = [item for item in summary.items if item.finding.severity >= Severity.WARNING]
    crash = _last_line(summary.error) if summary.status == "crashed" else None
    if not serious and crash is None:
        return None
    explained, explaining = explanations(item.finding for item in serious)
    ranked = sorted(serious, key=lambda item: cause_rank(item.finding, explained, explaining))
    cause = ranked[0] if ranked else None
    symptoms = tuple(
        item for item in serious
        if item is not cause and item.finding.code.startswith(SYMPTOM_FAMILY)
    )
    return Cause(run=summary.name, cause=cause, symptoms=symptoms, crash=crash)


def _title(runs: tuple[RunSummary, ...], causes: tuple[Cause, ...]) -> str:
    if not runs:
        return "No runs to report."
    if not causes:
        blind = [r.name for r in runs if r.run_state is RunState.NOT_OBSERVED]
        if blind:
            return (f"{' and '.join(blind)}: nothing observed — no training step was seen, "
                    "so nothing could be judged (see the notes).")
        partly = [r for r in runs if r.run_state is RunState.PARTLY_OBSERVED]
        if partly:
            return "; ".join(partly_line(r) for r in partly)
        if all(r.healthy for r in runs):
            names = " and ".join(r.name for r in runs)
            return f"{names}: healthy — no error findings."
        return "; ".join(r.status_line for r in runs)
    first = causes[0]
    if first.cause is None:
        return f"{first.run} crashed: {first.crash}"
    f = first.cause.finding
    where = f" in {short_location(f.location)}" if f.location is not None else (f" in {f.layer}" if f.layer else "")
    return f"{first.run} is NOT healthy: {f.code} {f.symbol}{where}"


def partly_line(run: RunSummary) -> str:
    """One sentence for a run seen in part: what could not be seen, and so was not judged."""
    if run.blind:
        what = " and ".join(run.blind)
        return (f"{run.name}: partly observed — no error in what was seen, but its {what} could not be "
                f"seen, so not all was judged (see the notes)")
    return (f"{run.name}: partly observed — no error in what was seen, but the run ended "
            f"before it finished ({run.stop_reason or run.status})")


def short_location(location: Location) -> str:
    """'Net.act (train.py:12)': the headline names the file; the Where line gives its full path."""
    name = Path(location.file).name or location.file
    where = name if location.line is None else f"{name}:{location.line}"
    return f"{location.function} ({where})" if location.function else where


def _compare(report, runs: tuple[RunSummary, ...]) -> Comparison:
    """Group findings of the first two runs the way ``report.diff()`` does."""
    left, right = runs[0].name, runs[1].name
    diff = report.diff(left, right)
    items = {
        summary.name: {(i.finding.code, i.finding.layer or ""): i for i in reversed(summary.items)}
        for summary in runs[:2]
    }
    side = {f"only {left}": "left", "both": "both", f"only {right}": "right"}
    rows = []
    for row in diff.itertuples(index=False):
        # pandas turns a missing layer into NaN in a column that also holds names.
        layer = row.layer if isinstance(row.layer, str) and row.layer else None
        key = (row.code, layer or "")
        rows.append(
            Row(
                code=row.code,
                symbol=row.symbol,
                layer=layer,
                where=side.get(row.where, "both"),
                left=items[left].get(key),
                right=items[right].get(key),
            )
        )
    # Worst first inside each group, so the column heads carry the errors.
    rows.sort(key=lambda r: (-max(_level(r.left), _level(r.right)), r.code, r.layer or ""))
    rows = [replace(row, anchor=f"finding-{i}") for i, row in enumerate(rows, 1)]
    return Comparison(left=left, right=right, rows=tuple(rows))


def _level(item: Item | None) -> int:
    return -1 if item is None else int(item.finding.severity)


# -- one finding --------------------------------------------------------------------------


def describe(finding: Finding) -> Item:
    measured, thresholds = split_evidence(finding.evidence)
    return Item(
        finding=finding,
        measured=measured,
        thresholds=thresholds,
        excerpt=excerpt(finding.location),
    )


def split_evidence(evidence: Mapping[str, Any]) -> tuple[tuple[EvidenceItem, ...], tuple[EvidenceItem, ...]]:
    """Evidence as display strings: (measured values, thresholds they were judged by).

    A key is a threshold when it names a :class:`Thresholds` field, starts with
    ``threshold``, or sits under a ``thresholds`` mapping — the forms rules use.
    """
    measured: list[EvidenceItem] = []
    limits: list[EvidenceItem] = []
    flat = list(_flatten(evidence))
    top = {key: format_value(value) for key, value in flat if "." not in key}
    for key, value in flat:
        # One finding for several layers keeps each layer's evidence (JSON has it all); shown
        # here is only what differs from the finding's own values.
        head, _, rest = key.partition(".")
        if head == "per_layer" and "." in rest and top.get(rest.split(".", 1)[1]) == format_value(value):
            continue
        leaf = key.rsplit(".", 1)[-1]
        is_limit = (
            leaf in _THRESHOLD_NAMES
            or key.startswith(("threshold", "thresholds."))
            or leaf.startswith("threshold")
        )
        (limits if is_limit else measured).append(EvidenceItem(key, format_value(value)))
    return tuple(measured), tuple(limits)


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _flatten(value, name + ".")
        else:
            yield name, value


def format_value(value: Any) -> str:
    """A short, exact-enough string for a number, list or text from the evidence."""
    if hasattr(value, "tolist"):  # numpy scalar or array
        value = value.tolist()
    if isinstance(value, bool) or value is None:
        text = str(value)
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = _number(value)
    elif isinstance(value, (list, tuple)):
        shown = [format_value(v) for v in value[:MAX_LIST_ITEMS]]
        more = f", … ({len(value)} items)" if len(value) > MAX_LIST_ITEMS else ""
        text = "[" + ", ".join(shown) + more + "]"
    else:
        text = str(value)
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1] + "…"
    return text


def _number(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.4g}"  # 0.731, 2e-05, 1.235e+04: short and exact enough to argue with


def code_marks(text: str) -> list[tuple[bool, str]]:
    """Split rule prose on its ``code`` marks: [(is_code, piece), ...]. An unpaired mark stays text."""
    parts = str(text).split("``")
    if len(parts) % 2 == 0:
        parts[-2:] = [parts[-2] + "``" + parts[-1]]
    return [(i % 2 == 1 and bool(part.strip()), part) for i, part in enumerate(parts) if part]


# -- source lines ------------------------------------------------------------------------


def excerpt(location: Location | None) -> SourceExcerpt | None:
    """The lines to show for a finding: its own, or read from the file when it exists."""
    if location is None:
        return None
    if location.source:
        lines = tuple((int(n), str(text).rstrip("\n")) for n, text in location.source)
        return SourceExcerpt(path=location.file, lines=lines, focus=location.line)
    if location.line is None:
        return None
    path = Path(location.file)
    try:
        if not path.is_file():
            return None
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    line = int(location.line)
    if not 1 <= line <= len(text):
        return None
    start = max(1, line - CONTEXT_BEFORE)
    stop = min(len(text), line + CONTEXT_AFTER)
    lines = tuple((n, text[n - 1].rstrip()) for n in range(start, stop + 1))
    return SourceExcerpt(path=location.file, lines=lines, focus=line)


def _last_line(text: str | None) -> str | None:
    if not text:
        return None
    rows = [row for row in text.strip().splitlines() if row.strip()]
    return rows[-1].strip() if rows else None
