"""The case-study corpus, run in CI with the machinery of the pytest plugin.

``pytest case_studies/`` (the plugin) makes one item per expected code and shares
each script's run between them within one process. Here, in the main suite that
CI spreads over workers with ``pytest -n auto``, each test diagnoses exactly one
script, so no script runs twice whichever worker takes which test: the original
is checked for all its codes at once (declared known misses alone make it an
xfail), each fixed, extra or healthy-only script for health (observed, finished,
no error finding).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from netdoctor.casefile import CaseFileError, find_cases, load_case
from netdoctor.testing import (
    assert_flags, assert_flags_any, assert_healthy, assert_observed, case_scripts, diagnose_script, flagged,
    observation_problem,
)

CORPUS = Path(__file__).resolve().parents[1] / "case_studies"


def _load_all():
    specs, broken = [], []
    for path in find_cases(CORPUS):
        try:
            specs.append(load_case(path))
        except CaseFileError as exc:
            broken.append(exc)
    return specs, broken


SPECS, BROKEN = _load_all()
BUGGY = [spec for spec in SPECS if not spec.healthy_only]
HEALTHY = [(spec, label, script) for spec in SPECS
           for label, script in case_scripts(spec).items() if label != "original"]


def _skip_without(spec):
    missing = spec.missing_requirements()
    if missing:
        pytest.skip(f"{spec.name} needs {', '.join(missing)}, which is not installed")


def test_every_case_toml_is_valid():
    assert not BROKEN, "\n".join(str(e) for e in BROKEN)


def test_the_corpus_has_the_cases_the_issue_asks_for():
    assert len(SPECS) >= 16, f"{len(SPECS)} case studies; at least 16 are wanted"
    assert any(spec.name == "xor_stuck_at_half" for spec in SPECS), "the seed's case is missing"
    healthy_only = [spec.name for spec in SPECS if spec.healthy_only]
    assert len(healthy_only) >= 2, f"healthy-only cases: {healthy_only}; at least 2 are wanted"


@pytest.mark.slow
@pytest.mark.parametrize("spec", BUGGY, ids=[spec.name for spec in BUGGY])
def test_original_is_flagged(spec):
    _skip_without(spec)
    run = diagnose_script(spec.original, "original", timeout=spec.timeout)
    report = run.require_report()
    regressions = [code for code in spec.expect
                   if not spec.is_known_failure(code) and not flagged(report, code, run="original")]
    if regressions:
        assert_flags(report, *regressions, run="original")  # fails, saying what was seen
    if spec.expect_any:
        assert_flags_any(report, spec.expect_any, run="original")
    known = [code for code in spec.checked_codes
             if spec.is_known_failure(code) and not flagged(report, code, run="original")]
    if known:
        pytest.xfail("; ".join(f"{code}: {spec.expected_failures[code]}" for code in known))


@pytest.mark.slow
@pytest.mark.parametrize("spec, label, script", HEALTHY,
                         ids=[f"{spec.name}-{label}" for spec, label, _ in HEALTHY])
def test_fixed_and_extra_scripts_are_healthy(spec, label, script):
    _skip_without(spec)
    run = diagnose_script(script, label, timeout=spec.timeout)
    report = run.require_report()
    declared = spec.known_unseen.get(script.name)
    if declared is not None:
        # Declared as not yet observable: it must still show no error, and the declaration
        # must go once netdoctor sees it (a strict expected failure).
        assert not [f for f in report.findings_for(label) if f.is_error], report.findings_for(label)
        problem = observation_problem(report, label)
        assert problem, f"{script.name} is observed and healthy now: remove it from [known_unseen]"
        pytest.xfail(f"{script.name}: {declared} ({problem})")
    assert_healthy(report, run=label)
    assert_observed(report, label)


def test_every_rule_is_exercised_by_a_case_study_or_a_bad_good_pair():
    from pairs import PAIRS  # tests/pairs.py: per rule code, a bad and a good reference-MLP run

    from netdoctor.rules import all_rules

    in_cases = {code for spec in SPECS for code in spec.checked_codes}
    unexercised = [f"{r.code} {r.symbol}" for r in all_rules() if r.code not in in_cases and r.code not in PAIRS]
    assert not unexercised, f"rules with neither a case study nor a bad/good pair: {', '.join(unexercised)}"
