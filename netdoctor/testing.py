"""Regression tests on known-bad implementations: assertions and case studies.

Pin down what netdoctor must say about a network::

    from netdoctor.testing import assert_flags, assert_healthy

    def test_double_sigmoid_is_caught():
        assert_flags("case_studies/xor_stuck_at_half/original.py", "ND101", "activation-mismatch")

    def test_fix_is_healthy():
        assert_healthy("case_studies/xor_stuck_at_half/fixed.py")

A *target* is anything :func:`netdoctor.diagnose` takes, or a Report already made:

* a script path: ``assert_flags("train.py", "ND101", timeout=30)``
* your model and the call that trains it: ``assert_flags((net, lambda: net.train(0.1, 2000)), "ND303")``
* a reference MLP with its data: ``assert_healthy(MLP([2, 4, 1], ...), X=X, y=y, epochs=300)``
* a :class:`~netdoctor.report.Report`: ``assert_flags(report, "ND4", run="original")``

Extra keyword arguments go to ``diagnose``. Codes may be written as codes
(``ND101``), symbols (``output-pinned``) or prefixes that select a family
(``ND2``: any gradient rule). A failed assertion hides these helpers' frames and
says what netdoctor *did* see::

    DID NOT FLAG ND101 (output-pinned) in run 'original'.
    Findings: ND402 same-sign-init (warning), ND303 activation-mismatch (error)

The second half of the module runs a case study (:mod:`netdoctor.casefile`) and
judges it; the pytest plugin, ``netdoctor cases`` and the corpus tests share it.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Mapping

from .casefile import CaseSpec
from .jsonable import from_plain, to_plain
from .report import Report
from .runstate import RunState
from .types import Finding, Severity

__all__ = [
    "assert_flags",
    "assert_healthy",
    "flagged",
    "matches",
    "diagnose_target",
    "CaseOutcome",
    "ScriptRun",
    "diagnose_script",
    "observation_problem",
    "assert_observed",
    "assert_flags_any",
    "judge_case",
    "case_scripts",
    "run_case",
]

_CODE_OR_PREFIX = re.compile(r"^ND\d{0,3}$", re.IGNORECASE)
_SYMBOL = re.compile(r"^[a-z][a-z0-9-]*$")
HEALTHY_STATUSES = ("completed", "stopped")  # a run ended by --max-steps is still a full verdict


# --------------------------------------------------------------------------------------
# Matching findings against codes, symbols and prefixes
# --------------------------------------------------------------------------------------
def _check_selector(selector: Any) -> str:
    if not isinstance(selector, str):
        raise TypeError(f"a rule is named by a string (code, symbol or prefix), not {selector!r}")
    s = selector.strip()
    if not (_CODE_OR_PREFIX.match(s) or _SYMBOL.match(s)):
        raise ValueError(
            f"{selector!r} is neither a rule code (ND101), a family prefix (ND2) nor a symbol "
            "(output-pinned)"
        )
    return s


def matches(finding: Finding, selector: str) -> bool:
    """Whether `finding` is what `selector` (code, prefix or symbol) names."""
    return matches_rule(finding.code, finding.symbol, selector)


def flagged(report: Report, selector: str, *, run: str | None = None,
            severity: Severity | str | None = None) -> list[Finding]:
    """The findings of `run` that `selector` names, at or above `severity` (any when None)."""
    selector = _check_selector(selector)
    level = Severity.INFO if severity is None else Severity.parse(severity)
    name = _pick_run(report, run)
    return [f for f in report.findings_for(name) if f.severity >= level and matches(f, selector)]


def _catalogue_label(selector: str) -> tuple[str, list[str] | None]:
    """How to name `selector` in a message, and the catalogue's codes it selects.

    The catalogue is consulted only to explain a failure; when it cannot be loaded
    (rules still being written) the selector is shown as given and the codes are None.
    """
    s = selector.strip()
    try:
        from .rules import FAMILIES, all_rules

        rules = all_rules()
    except Exception:  # noqa: BLE001 - an explanation must never hide the real failure
        return s, None
    chosen = [r for r in rules if matches_rule(r.code, r.symbol, s)]
    if not chosen:
        return s, []
    if _CODE_OR_PREFIX.match(s) and len(s) < 5:
        family = FAMILIES.get(s.upper())
        label = f"{s.upper()} (any {family} rule)" if family else f"{s.upper()} (any rule {s.upper()}*)"
    else:
        label = f"{chosen[0].code} ({chosen[0].symbol})"
    return label, [r.code for r in chosen]


def matches_rule(code: str, symbol: str, selector: str) -> bool:
    """The selector test of :func:`matches`, on a rule's code and symbol."""
    s = selector.strip()
    if _CODE_OR_PREFIX.match(s):
        return code.upper().startswith(s.upper())
    return symbol == s.lower()


def _finding_list(findings: Iterable[Finding]) -> str:
    items = [f"{f.code} {f.symbol} ({f.severity})" for f in findings]
    return ", ".join(items) if items else "none"


def _pick_run(report: Report, run: str | None) -> str:
    if not report.runs:
        raise ValueError("the report holds no run")
    if run is None:
        return next(iter(report.runs))
    if run not in report.runs:
        raise KeyError(f"no run {run!r} in the report; runs are: {', '.join(report.runs)}")
    return run


def _run_state(report: Report, name: str, observation: bool = True) -> list[str]:
    """Lines saying why a run's verdict is not a full one (unfinished and, with `observation`,
    unseen or seen in part), for failure messages."""
    info = report.runs[name].info
    state = report.state(name)
    lines = []
    if info.status not in HEALTHY_STATUSES:
        lines.append(f"Run '{name}' {info.status}" + (f" ({info.stop_reason})" if info.stop_reason else "") + ".")
        if info.error:
            tail = [row for row in info.error.strip().splitlines() if row.strip()][-3:]
            lines.extend("  " + row for row in tail)
    if not observation:
        return lines
    if state is RunState.NOT_OBSERVED:
        lines.append(f"Run '{name}' was not observed: no training step was seen, so nothing was judged.")
    elif state is RunState.PARTLY_OBSERVED:
        cov = report.coverage(name)
        blind = ", ".join(str(role) for role in cov.blind_required) or "the end of the run"
        lines.append(f"Run '{name}' was only partly observed ({blind} not seen); not judged:")
        lines.extend(f"  {family}: {why}" for family, why in cov.families_not_run())
    return lines


# --------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------
def diagnose_target(target: Any, **options: Any) -> Report:
    """A Report for `target`: a Report as is, or whatever :func:`netdoctor.diagnose` takes.

    A ``(model, train_callable)`` pair is your own object and the call that trains it;
    a reference MLP takes its data as keywords (``X=``, ``y=``, ``epochs=``).
    """
    if isinstance(target, Report):
        if options:
            raise TypeError(
                f"a Report is already judged; options {', '.join(sorted(options))} cannot apply to it"
            )
        return target
    from .api import diagnose

    if isinstance(target, tuple) and len(target) == 2 and callable(target[1]):
        model, train = target
        return diagnose(model, train, **options)
    return diagnose(target, **options)


# --------------------------------------------------------------------------------------
# Assertions
# --------------------------------------------------------------------------------------
def assert_flags(target: Any, *codes: str, severity: Severity | str | None = None,
                 run: str | None = None, **options: Any) -> Report:
    """Assert that netdoctor flags `target` with every one of `codes`; return the Report.

    `codes` are codes, symbols or family prefixes; each must match at least one
    finding of `run` (the first run of the report unless named) at or above
    `severity` (any severity when None). Other findings are allowed.
    """
    __tracebackhide__ = True
    if not codes:
        raise TypeError("assert_flags needs at least one code, symbol or prefix to look for")
    selectors = [_check_selector(code) for code in codes]
    report = diagnose_target(target, **options)
    name = _pick_run(report, run)
    level = Severity.INFO if severity is None else Severity.parse(severity)
    missing = [s for s in selectors if not flagged(report, s, run=name, severity=level)]
    if not missing:
        return report

    labels = []
    notes: list[str] = []
    for selector in missing:
        label, rule_codes = _catalogue_label(selector)
        labels.append(label)
        if rule_codes == []:
            notes.append(f"No rule in the catalogue matches {selector!r}.")
        if rule_codes is None and re.fullmatch(r"ND\d{3}", selector.upper()):
            rule_codes = [selector.upper()]  # no catalogue: an exact code still explains itself
        for code in rule_codes or ():
            if code in report.skipped.get(name, {}):
                notes.append(f"{code} was skipped: {report.skipped[name][code]}")
            if code in report.errors.get(name, {}):
                last = report.errors[name][code].strip().splitlines()[-1:]
                notes.append(f"{code} failed inside netdoctor: {' '.join(last)}")
    where = f" at severity {level} or above" if severity is not None else ""
    lines = [f"DID NOT FLAG {', '.join(labels)}{where} in run '{name}'."]
    lines.append(f"Findings: {_finding_list(report.findings_for(name))}")
    lines.extend(notes)
    lines.extend(_run_state(report, name))
    raise AssertionError("\n".join(lines))


def assert_healthy(target: Any, *, severity: Severity | str = Severity.ERROR,
                   run: str | None = None, ignore: Iterable[str] = (), **options: Any) -> Report:
    """Assert that `run` of `target` finished and has no finding at or above `severity`.

    Healthy means: the run completed (or was stopped by a step limit), its outputs,
    loss and updates were all observed (a run seen only in part, or not at all, is
    refused: see :mod:`netdoctor.runstate`), and no finding reaches `severity`
    (default: error; warnings are allowed). `ignore`
    takes codes, symbols or prefixes to leave out. Returns the Report.
    """
    __tracebackhide__ = True
    ignored = [_check_selector(code) for code in ignore]
    report = diagnose_target(target, **options)
    name = _pick_run(report, run)
    level = Severity.parse(severity)
    bad = [
        f for f in report.findings_for(name)
        if f.severity >= level and not any(matches(f, s) for s in ignored)
    ]
    state = _run_state(report, name)
    if not bad and not state:
        return report
    unseen = observation_problem(report, name)
    lines = [f"NOT HEALTHY: run '{name}'"
             + (f" has {len(bad)} finding(s) at {level} or above." if bad
                else " did not finish." if report.runs[name].info.status not in HEALTHY_STATUSES
                else f": {unseen}.")]
    if not bad and unseen:
        state = _run_state(report, name, observation=False) + [
            line for line in state if line.startswith("  ")]   # the families not judged
    for f in bad:
        where = f" at {f.location}" if f.location is not None else ""
        lines.append(f"  {f.code} {f.symbol} ({f.severity}){where}: {f.message}")
    lines.extend(state)
    raise AssertionError("\n".join(lines))


# --------------------------------------------------------------------------------------
# Case studies: run the scripts, judge them against case.toml
# --------------------------------------------------------------------------------------
@dataclass
class ScriptRun:
    """One script of a case, diagnosed (or the reason it could not be)."""

    label: str                       # "original", "fixed", or an extra script's file name
    script: Path
    report: Report | None = None
    problem: str | None = None       # netdoctor could not diagnose it at all
    seconds: float = 0.0

    def require_report(self) -> Report:
        """The report, or an AssertionError saying why there is none (for test items)."""
        __tracebackhide__ = True
        if self.report is None:
            raise AssertionError(f"could not diagnose {self.script.name}: {self.problem}")
        return self.report


def diagnose_script(script: Path | str, label: str, *, timeout: float | None = None,
                    **options: Any) -> ScriptRun:
    """Diagnose one script with its run named `label`; never raises on a broken script."""
    script = Path(script)
    started = time.perf_counter()
    try:
        report = diagnose_target(
            os.fspath(script), names=(label, "compare"), timeout=timeout, quiet=True, **options
        )
    except Exception as exc:  # noqa: BLE001 - a case that cannot run is a result, not a crash
        problem = f"{type(exc).__name__}: {exc}"
        return ScriptRun(label, script, None, problem, time.perf_counter() - started)
    return ScriptRun(label, script, report, None, time.perf_counter() - started)


def observation_problem(report: Report, label: str) -> str | None:
    """Why run `label` cannot be judged healthy for want of seeing it, or None when it was seen.

    A case's healthy scripts must be observed: a run in which netdoctor saw no
    training step has no finding because nothing was judged, not because it is fine.
    """
    if label in report.unobserved():
        return "nothing observed: no training step was seen, so nothing was judged"
    if report.state(label) is RunState.PARTLY_OBSERVED:
        blind = ", ".join(str(role) for role in report.coverage(label).blind_required) or "the end of the run"
        return f"partly observed: {blind} not seen, so not all was judged"
    return None


def assert_observed(report: Report, label: str) -> None:
    """Assert that run `label` of a case was observed (see :func:`observation_problem`)."""
    __tracebackhide__ = True
    problem = observation_problem(report, label)
    if problem:
        raise AssertionError(f"NOT HEALTHY: run '{label}': {problem}.")


def assert_flags_any(report: Report, codes: Iterable[str], *, run: str) -> Report:
    """Assert that run `run` of `report` is flagged with at least one of `codes` (any severity)."""
    __tracebackhide__ = True
    codes = list(codes)
    if any(flagged(report, code, run=run) for code in codes):
        return report
    lines = [f"DID NOT FLAG any of {', '.join(codes)} in run '{run}'.",
             f"Findings: {_finding_list(report.findings_for(run))}"]
    lines.extend(_run_state(report, run))
    raise AssertionError("\n".join(lines))


@dataclass
class CaseOutcome:
    """What netdoctor said about one case study, judged against its case.toml.

    Plain data (findings, no traces), so it crosses process boundaries cheaply.
    """

    spec: CaseSpec
    found: list[str] = field(default_factory=list)          # checked codes flagged on the original
    missed: list[str] = field(default_factory=list)         # expected, not flagged, not declared: a regression
    known_missed: list[str] = field(default_factory=list)   # declared in expected_failures and missed (xfail)
    declared_but_found: list[str] = field(default_factory=list)    # declared as failing but flagged after all (xpass)
    any_found: list[str] = field(default_factory=list)      # codes of expect_any flagged on the original
    original_errors: list[Finding] = field(default_factory=list)  # error findings not among the checked codes
    unhealthy: dict[str, list[Finding]] = field(default_factory=dict)  # healthy label -> its error findings
    unobserved: list[str] = field(default_factory=list)      # healthy labels not (or only partly) observed
    unseen_why: dict[str, str] = field(default_factory=dict)  # ... each with what was not seen
    known_unseen: list[str] = field(default_factory=list)    # ... of them, declared in [known_unseen]
    problems: dict[str, str] = field(default_factory=dict)   # label -> could not run / crashed / timed out
    seconds: float = 0.0

    @property
    def healthy_labels(self) -> list[str]:
        return list(self.spec.healthy_scripts)

    @property
    def any_missed(self) -> bool:
        """An `expect_any` group of which no code was flagged."""
        return bool(self.spec.expect_any) and not self.any_found

    @property
    def failed_healthy(self) -> list[str]:
        """Healthy-side scripts that are not healthy: an error finding, not observed, or no normal finish."""
        return [label for label in self.healthy_labels
                if self.unhealthy.get(label) or label in self.problems
                or (label in self.unobserved and label not in self.known_unseen)]

    @property
    def passed(self) -> bool:
        """No expected code or `expect_any` group missed (beyond declared misses), every
        healthy script (fixed, extra, healthy-only) observed and healthy."""
        return not self.missed and not self.any_missed and not self.failed_healthy

    def to_dict(self) -> dict[str, Any]:
        return {
            "case": self.spec.name,
            "title": self.spec.title,
            "kind": "healthy-only" if self.spec.healthy_only else "buggy",
            "expected": list(self.spec.checked_codes),
            "expected_any": list(self.spec.expect_any),
            "found": list(self.found),
            "found_any": list(self.any_found),
            "missed": list(self.missed),
            "missed_any": self.any_missed,
            "known_missed": {code: self.spec.expected_failures[code] for code in self.known_missed},
            "declared_but_found": list(self.declared_but_found),
            "unexpected_errors_original": [_brief(f) for f in self.original_errors],
            "errors_healthy": {label: [_brief(f) for f in fs] for label, fs in self.unhealthy.items() if fs},
            "unobserved": list(self.unobserved),
            "unseen_why": dict(self.unseen_why),
            "known_unseen": list(self.known_unseen),
            "problems": dict(self.problems),
            "passed": self.passed,
            "seconds": round(self.seconds, 2),
        }


def outcome_to_dict(outcome) -> dict[str, Any]:
    """A case's CaseOutcome as plain data, every field but its spec (the caller has it).

    Field by field, whatever fields the outcome has: findings become
    ``{"finding": Finding.to_dict()}``, lists and dicts are walked, the rest is kept.
    """
    return {f.name: to_plain(getattr(outcome, f.name)) for f in fields(outcome) if f.name != "spec"}


def outcome_from_dict(spec, data: dict[str, Any]):
    """The CaseOutcome of `spec` (the caller's) from :func:`outcome_to_dict`'s data."""
    return CaseOutcome(spec, **{name: from_plain(value) for name, value in data.items()})



def _brief(f: Finding) -> dict[str, Any]:
    return {"code": f.code, "symbol": f.symbol, "severity": str(f.severity), "message": f.message}


def judge_case(spec: CaseSpec, runs: Mapping[str, ScriptRun]) -> CaseOutcome:
    """Compare the diagnosed scripts of a case with what its case.toml expects."""
    outcome = CaseOutcome(spec, seconds=sum(r.seconds for r in runs.values()))
    for label, run in runs.items():
        if run.report is None:
            outcome.problems[label] = f"could not diagnose: {run.problem}"
        else:
            state = _run_state(run.report, label, observation=False)
            if state:
                outcome.problems[label] = " ".join(s.strip() for s in state)

    if not spec.healthy_only:
        _judge_original(spec, runs["original"].report, outcome)
    for label in outcome.healthy_labels:
        run = runs.get(label)
        if run is not None and run.report is not None:
            outcome.unhealthy[label] = [f for f in run.report.findings_for(label) if f.is_error]
            unseen = observation_problem(run.report, label) if label not in outcome.problems else None
            if unseen:
                outcome.unobserved.append(label)
                outcome.unseen_why[label] = unseen
                if spec.healthy_scripts[label].name in spec.known_unseen:
                    outcome.known_unseen.append(label)
    return outcome


def _judge_original(spec: CaseSpec, original: Report | None, outcome: CaseOutcome) -> None:
    original_findings = original.findings_for("original") if original else []
    unseen = observation_problem(original, "original") if original else None
    if unseen:
        # Not a failure by itself (the missed codes are), but it says why they were missed.
        outcome.problems.setdefault("original", unseen)
    for code in spec.checked_codes:
        hit = any(matches(f, code) for f in original_findings)
        if hit:
            outcome.found.append(code)
            if spec.is_known_failure(code):
                outcome.declared_but_found.append(code)
        elif spec.is_known_failure(code):
            outcome.known_missed.append(code)
        else:
            outcome.missed.append(code)
    outcome.any_found = [code for code in spec.expect_any
                         if any(matches(f, code) for f in original_findings)]
    judged = set(spec.checked_codes) | set(spec.expect_any)
    outcome.original_errors = [f for f in original_findings if f.is_error and f.code not in judged]


def case_scripts(spec: CaseSpec) -> dict[str, Path]:
    """label -> script for every script of a case, the original (if any) first."""
    scripts = {} if spec.healthy_only else {"original": spec.original}
    scripts.update(spec.healthy_scripts)
    return scripts


def run_case(spec: CaseSpec, **options: Any) -> CaseOutcome:
    """Diagnose every script of a case (one after the other) and judge the result."""
    runs = {
        label: diagnose_script(script, label, timeout=spec.timeout, **options)
        for label, script in case_scripts(spec).items()
    }
    return judge_case(spec, runs)
