"""The rule catalogue: permanent codes, one module per family, one runner.

A rule is a function ``check(ctx) -> iterable of Finding`` registered with
:func:`rule`. Its docstring is its documentation, with fixed headings::

    One-line summary.

    What it does
        ...
    Why is this bad?
        ...
    Example
        ...
    Use instead
        ...

``netdoctor rule ND101`` prints it. Codes are permanent and never reused: a rule
that is retired keeps its code reserved in :data:`RETIRED`.

A rule registered with ``symptom=True`` reports what training looked like (a high
first loss, a plateau, large steps), not a fault in the code. Severity follows
consequence: on a run that fits its data (:func:`._common.run_fits`, documented in
``Thresholds``) the runner lowers such a finding's severity to a warning and adds
the fit's numbers to its evidence. Code faults (wrong gradients, a wrong activation,
unreachable targets, NaN) are not symptoms and keep their severity.

A rule that lacks the data it needs raises :class:`Skip` (reported as skipped);
a rule that raises anything else is an internal error for that rule alone, and
the other rules still run.
"""

from __future__ import annotations

import importlib
import inspect
import re
import traceback
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping

from ..config import DEFAULT_THRESHOLDS, Thresholds
from ..trace import Trace
from ..types import Finding, Location, Severity

FAMILY_MODULES = (
    "nd1_outputs",
    "nd2_gradients",
    "nd3_activations",
    "nd4_params",
    "nd5_updates",
    "nd6_data",
    "nd7_frameworks",
)
FAMILIES = {
    "ND1": "outputs and loss",
    "ND2": "gradients",
    "ND3": "activations",
    "ND4": "initialisation and parameters",
    "ND5": "updates",
    "ND6": "data",
    "ND7": "model construction and frameworks",
}
RETIRED: dict[str, str] = {}  # code -> why it was retired; never reassign these codes

_CODE = re.compile(r"^ND[1-9]\d\d$")
_SECTIONS = ("What it does", "Why is this bad?", "Example", "Use instead")


class Skip(Exception):
    """Raised by a rule that cannot judge this trace (missing data); the message says why."""


@dataclass(frozen=True)
class Rule:
    code: str
    symbol: str
    severity: Severity              # the usual severity; a finding may say otherwise
    check: Callable[["RuleContext"], Iterable[Finding]]
    doc: str
    symptom: bool = False           # at most a warning on a run that fits (see module doc)

    @property
    def family(self) -> str:
        return self.code[:3]

    @property
    def summary(self) -> str:
        return self.doc.strip().splitlines()[0].strip() if self.doc.strip() else ""

    def section(self, heading: str) -> str:
        """The text under one of the fixed docstring headings ('' if absent)."""
        lines = self.doc.splitlines()
        out: list[str] = []
        inside = False
        for line in lines:
            stripped = line.strip()
            if stripped in _SECTIONS:
                inside = stripped == heading
                continue
            if inside:
                out.append(line)
        return inspect.cleandoc("\n".join(out)) if out else ""


REGISTRY: dict[str, Rule] = {}


def rule(code: str, symbol: str, severity: Severity = Severity.ERROR, *, symptom: bool = False):
    """Register ``check`` under a permanent code and symbol (``symptom``: see the module doc)."""

    def register(check: Callable[["RuleContext"], Iterable[Finding]]):
        if not _CODE.match(code):
            raise ValueError(f"rule code {code!r} is not of the form ND123")
        if code in RETIRED:
            raise ValueError(f"rule code {code} is retired and must not be reused")
        if code in REGISTRY and REGISTRY[code].check is not check:
            raise ValueError(f"rule code {code} registered twice")
        doc = inspect.cleandoc(check.__doc__ or "")
        REGISTRY[code] = Rule(code=code, symbol=symbol, severity=severity, check=check, doc=doc,
                              symptom=symptom)
        return check

    return register


def _load() -> None:
    for name in FAMILY_MODULES:
        importlib.import_module(f"{__name__}.{name}")


def all_rules() -> list[Rule]:
    _load()
    return [REGISTRY[code] for code in sorted(REGISTRY)]


def get_rule(code_or_symbol: str) -> Rule:
    """Look a rule up by code (``ND101``, any case) or symbol (``output-pinned``)."""
    _load()
    key = code_or_symbol.strip()
    if key.upper() in REGISTRY:
        return REGISTRY[key.upper()]
    for candidate in REGISTRY.values():
        if candidate.symbol == key.lower():
            return candidate
    if key.upper() in RETIRED:
        raise KeyError(f"{key.upper()} is retired: {RETIRED[key.upper()]}")
    raise KeyError(f"no rule {code_or_symbol!r}; `netdoctor rules` lists them")


def select_rules(selectors: Iterable[str] | None) -> list[Rule]:
    """Rules matching codes, symbols or code prefixes (``ND2`` = the gradient family)."""
    rules = all_rules()
    if not selectors:
        return rules
    chosen: dict[str, Rule] = {}
    for selector in selectors:
        s = selector.strip()
        matched = [r for r in rules if r.code.startswith(s.upper()) or r.symbol == s.lower()]
        if not matched:
            raise KeyError(f"no rule matches {selector!r}; `netdoctor rules` lists them")
        chosen.update((r.code, r) for r in matched)
    return [chosen[c] for c in sorted(chosen)]


@dataclass
class RuleContext:
    """What a rule sees: the trace, the thresholds, and a helper to build findings."""

    trace: Trace
    thresholds: Thresholds
    rule: Rule

    @property
    def info(self):
        return self.trace.info

    def finding(
        self,
        message: str,
        *,
        severity: Severity | None = None,
        layer: str | None = None,
        step: int | None = None,
        evidence: Mapping[str, Any] | None = None,
        fix: str | None = None,
        why: str | None = None,
        location: Location | None = None,
    ) -> Finding:
        return Finding(
            code=self.rule.code,
            symbol=self.rule.symbol,
            severity=self.rule.severity if severity is None else severity,
            run=self.trace.name,
            message=message,
            layer=layer,
            step=None if step is None else int(step),
            evidence=dict(evidence or {}),
            fix=fix if fix is not None else _first_paragraph(self.rule.section("Use instead")),
            why=why if why is not None else _first_paragraph(self.rule.section("Why is this bad?")),
            location=location,
        )


def _first_paragraph(text: str) -> str:
    return text.strip().split("\n\n")[0].replace("\n", " ").strip()


@dataclass
class RuleOutcome:
    findings: list[Finding] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)   # code -> why it could not run
    errors: dict[str, str] = field(default_factory=dict)    # code -> internal traceback


def run_rules(
    trace: Trace,
    thresholds: Thresholds | None = None,
    select: Iterable[str] | None = None,
) -> RuleOutcome:
    """Judge one trace with every (selected) rule; one rule failing never stops the others."""
    thresholds = thresholds or DEFAULT_THRESHOLDS
    outcome = RuleOutcome()
    fit = None
    for r in select_rules(select):
        ctx = RuleContext(trace=trace, thresholds=thresholds, rule=r)
        try:
            found = list(r.check(ctx) or ())
        except Skip as why:
            outcome.skipped[r.code] = str(why) or "not enough data"
            continue
        except Exception:  # noqa: BLE001 - a broken rule must not end the report
            outcome.errors[r.code] = traceback.format_exc(limit=-3)
            continue
        if r.symptom and any(f.severity > Severity.WARNING for f in found):
            if fit is None:
                fit = _fit(trace, thresholds)
            found = [_as_symptom(f, fit, thresholds) for f in found]
        outcome.findings.extend(found)
    outcome.findings.sort(key=lambda f: (-int(f.severity), f.code, f.layer or ""))
    return outcome


def _fit(trace: Trace, thresholds: Thresholds):
    from ._common import Fit, run_fits

    try:
        return run_fits(trace, thresholds)
    except Exception:  # noqa: BLE001 - an unreadable trace leaves severities as the rules set them
        return Fit(None, reason="could not be judged")


def _as_symptom(finding: Finding, fit, thresholds: Thresholds) -> Finding:
    """A symptom's finding on a run that fits: a warning, saying why."""
    from ._common import capped

    severity = capped(finding.severity, fit)
    if severity == finding.severity:
        return finding
    return replace(
        finding,
        severity=severity,
        message=f"{finding.message} (a warning, not an error: the run fits its data, {fit.reason})",
        evidence={**finding.evidence, **fit.evidence(thresholds)},
    )
