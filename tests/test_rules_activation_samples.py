"""An activation mismatch (ND303) shows sample (z, a) pairs a reader can check by hand.

The finding lists three or four of the observed pre-activations z and the values a the
code's function gave them, in its message and its evidence. The pairs are checked here
against the function the finding names, computed independently from each z.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

import netdoctor
from netdoctor.types import Severity

from test_rules import judge, make_trace

CASES = Path(__file__).resolve().parent.parent / "case_studies"


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def double_sigmoid(z: float) -> float:
    """The sigmoid formula wrapped around the sigmoid: 1 / (1 + sigmoid(-z))."""
    return 1.0 / (1.0 + sigmoid(-z))


def mismatch_event(samples):
    data = {"role": "hidden", "declared": "sigmoid", "identified": "1/(1+sigmoid(-z))", "max_err": 0.0,
            "declared_err": 0.4, "f0": 0.667, "range": [0.5, 1.0], "mistake": True,
            "description": "behaves like 1/(1+sigmoid(-z))", "fix": None, "samples": samples}
    return ("function", data, {"layer": "layer1"})


def test_the_finding_lists_at_most_four_finite_pairs():
    zs = [-3.0, -0.5, 0.0, 1.2, 4.0]
    pairs = [[z, double_sigmoid(z)] for z in zs]
    pairs.insert(1, [float("nan"), 0.5])      # a pair that is no number is left out
    [finding] = judge(make_trace(events=[mismatch_event(pairs)]), "ND303")
    shown = finding.evidence["samples"]
    assert [z for z, _ in shown] == zs[:4]
    for z, a in shown:
        assert f"f({z:.3g}) = {a:.3g}" in finding.message
        assert a == pytest.approx(double_sigmoid(z)) and a != pytest.approx(sigmoid(z), abs=1e-3)


def test_without_pairs_the_message_claims_none():
    [finding] = judge(make_trace(events=[mismatch_event([])]), "ND303")
    assert finding.evidence["samples"] == [] and "observed f(" not in finding.message


def test_the_pairs_of_a_real_mismatch_are_the_function_the_finding_names():
    # The seed case applies the sigmoid twice in every layer.
    case = CASES / "xor_stuck_at_half"
    cwd = os.getcwd()
    os.chdir(case)
    try:
        report = netdoctor.diagnose(str(case / "original.py"), quiet=True)
    finally:
        os.chdir(cwd)
    found = [f for f in report.findings if f.code == "ND303" and f.severity == Severity.ERROR]
    assert found
    for finding in found:
        assert finding.evidence["identified"] == "double_sigmoid" and "1/(1+sigmoid(-z))" in finding.message
        samples = finding.evidence["samples"]
        assert 3 <= len(samples) <= 4
        assert len({round(z, 3) for z, _ in samples}) == len(samples)   # distinct inputs, not one point
        for z, a in samples:
            assert a == pytest.approx(double_sigmoid(z), rel=1e-9)
            assert f"f({z:.3g}) = {a:.3g}" in finding.message
