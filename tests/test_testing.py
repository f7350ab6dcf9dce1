"""netdoctor.testing: assert_flags / assert_healthy on hand-made Reports and on real runs."""

from __future__ import annotations

import numpy as np
import pytest

from netdoctor.testing import assert_flags, assert_healthy, diagnose_target, flagged


@pytest.fixture
def seed_like(report_factory, finding_factory):
    """The seed's diagnosis: pinned outputs and the double sigmoid (errors), same-sign init (warning)."""
    return report_factory([
        finding_factory("ND101", "output-pinned", "error"),
        finding_factory("ND303", "activation-mismatch", "error"),
        finding_factory("ND402", "same-sign-init", "warning"),
    ])


# -- assert_flags on hand-made reports -------------------------------------------------
def test_flags_by_code_symbol_and_prefix_pass_and_return_the_report(seed_like):
    assert assert_flags(seed_like, "ND101") is seed_like
    assert_flags(seed_like, "ND101", "ND303", "ND402")
    assert_flags(seed_like, "activation-mismatch", "same-sign-init")
    assert_flags(seed_like, "ND4")            # family prefix
    assert_flags(seed_like, "nd30")           # prefixes are case-insensitive


def test_missing_code_says_what_was_seen(seed_like):
    with pytest.raises(AssertionError) as info:
        assert_flags(seed_like, "ND101", "ND203")
    text = str(info.value)
    assert text.startswith("DID NOT FLAG ND203")
    assert "ND101" not in text.splitlines()[0]  # only the missing code is named as missing
    findings_line = next(line for line in text.splitlines() if line.startswith("Findings:"))
    for part in ("ND101 output-pinned (error)", "ND303 activation-mismatch (error)",
                 "ND402 same-sign-init (warning)"):
        assert part in findings_line


def test_missing_family_is_named_as_a_family(seed_like):
    with pytest.raises(AssertionError, match=r"DID NOT FLAG ND2\b"):
        assert_flags(seed_like, "ND2")


def test_severity_is_a_minimum(seed_like):
    assert_flags(seed_like, "ND402", severity="warning")
    assert_flags(seed_like, "ND101", severity="error")
    with pytest.raises(AssertionError) as info:
        assert_flags(seed_like, "ND402", severity="error")
    assert "at severity error or above" in str(info.value)
    assert "ND402 same-sign-init (warning)" in str(info.value)


def test_no_findings_reads_none(report_factory):
    with pytest.raises(AssertionError, match="Findings: none"):
        assert_flags(report_factory([]), "ND101")


def test_run_selects_which_run_is_checked(report_factory, finding_factory):
    report = report_factory([finding_factory("ND101", "output-pinned", run="original")],
                            runs=("original", "fixed"))
    assert_flags(report, "ND101")                    # the first run by default
    with pytest.raises(AssertionError, match="in run 'fixed'"):
        assert_flags(report, "ND101", run="fixed")
    with pytest.raises(KeyError, match="original, fixed"):
        assert_flags(report, "ND101", run="nope")


def test_crashed_run_is_explained(report_factory):
    report = report_factory([], status={"original": "crashed"},
                            error={"original": "Traceback ...\n  line 3\nValueError: shapes (2,4) and (3,)"})
    with pytest.raises(AssertionError) as info:
        assert_flags(report, "ND101")
    assert "Run 'original' crashed" in str(info.value)
    assert "ValueError: shapes (2,4) and (3,)" in str(info.value)


def test_skipped_rule_is_explained(report_factory):
    pytest.importorskip("netdoctor.rules.nd1_outputs")
    report = report_factory([], skipped={"original": {"ND101": "no probe-batch outputs were recorded"}})
    with pytest.raises(AssertionError, match="ND101 was skipped: no probe-batch outputs were recorded"):
        assert_flags(report, "ND101")


def test_unknown_code_is_said_to_match_no_rule(report_factory):
    pytest.importorskip("netdoctor.rules.nd1_outputs")
    with pytest.raises(AssertionError, match="No rule in the catalogue matches 'ND199'"):
        assert_flags(report_factory([]), "ND199")


@pytest.mark.parametrize("bad, error", [
    ("", ValueError), ("101", ValueError), ("ND 101", ValueError), (101, TypeError),
    ("Output Pinned", ValueError),
])
def test_malformed_selectors_are_rejected(seed_like, bad, error):
    with pytest.raises(error):
        assert_flags(seed_like, bad)


def test_assert_flags_needs_a_code(seed_like):
    with pytest.raises(TypeError, match="at least one"):
        assert_flags(seed_like)


def test_options_cannot_apply_to_a_report(seed_like):
    with pytest.raises(TypeError, match="already judged"):
        assert_flags(seed_like, "ND101", timeout=3)


def test_flagged_lists_matching_findings(seed_like):
    assert [f.code for f in flagged(seed_like, "ND3")] == ["ND303"]
    assert flagged(seed_like, "ND402", severity="error") == []


# -- assert_healthy on hand-made reports -----------------------------------------------
def test_healthy_allows_warnings_by_default(report_factory, finding_factory):
    report = report_factory([finding_factory("ND402", "same-sign-init", "warning")])
    assert assert_healthy(report) is report
    with pytest.raises(AssertionError, match="NOT HEALTHY"):
        assert_healthy(report, severity="warning")


def test_unhealthy_lists_the_error_findings(report_factory, finding_factory):
    report = report_factory([
        finding_factory("ND101", "output-pinned", "error", message="outputs stay at 0.501"),
        finding_factory("ND402", "same-sign-init", "warning"),
    ])
    with pytest.raises(AssertionError) as info:
        assert_healthy(report)
    text = str(info.value)
    assert "NOT HEALTHY: run 'original' has 1 finding(s) at error or above." in text
    assert "ND101 output-pinned (error): outputs stay at 0.501" in text
    assert "ND402" not in text


def test_ignore_leaves_codes_out(report_factory, finding_factory):
    report = report_factory([finding_factory("ND101", "output-pinned", "error")])
    assert_healthy(report, ignore=["output-pinned"])
    assert_healthy(report, ignore=["ND1"])
    with pytest.raises(AssertionError):
        assert_healthy(report, ignore=["ND2"])


@pytest.mark.parametrize("status, healthy", [
    ("completed", True), ("stopped", True), ("crashed", False), ("timeout", False),
])
def test_a_run_that_did_not_finish_is_not_healthy(report_factory, status, healthy):
    report = report_factory([], status={"original": status})
    if healthy:
        assert_healthy(report)
    else:
        with pytest.raises(AssertionError, match=f"did not finish.*\n.*{status}"):
            assert_healthy(report)


def test_healthy_checks_the_named_run(report_factory, finding_factory):
    report = report_factory([finding_factory("ND101", "output-pinned", run="original")],
                            runs=("original", "fixed"))
    assert_healthy(report, run="fixed")
    with pytest.raises(AssertionError):
        assert_healthy(report)


# -- dispatch of targets -----------------------------------------------------------------
def test_targets_are_passed_to_diagnose(monkeypatch, report_factory):
    import netdoctor.api

    calls = []

    def fake_diagnose(model, X=None, y=None, epochs=None, **options):
        calls.append((model, X, y, epochs, options))
        return report_factory([])

    monkeypatch.setattr(netdoctor.api, "diagnose", fake_diagnose)

    def train():
        pass

    net = object()
    diagnose_target((net, train))
    diagnose_target("train.py", timeout=5)
    diagnose_target(net, X=[[0, 1]], y=[1], epochs=7)
    assert calls[0][:2] == (net, train)
    assert calls[1][0] == "train.py" and calls[1][4] == {"timeout": 5}
    assert calls[2][:4] == (net, [[0, 1]], [1], 7)


# -- how a failure looks in pytest -------------------------------------------------------
def test_failure_hides_the_helper_frames(pytester):
    pytester.makepyfile(test_user="""
        from netdoctor.report import Report
        from netdoctor.trace import Trace
        from netdoctor.types import Finding, RunInfo, Severity
        from netdoctor.testing import assert_flags

        def test_seed():
            report = Report([Trace(RunInfo(name="original"))], [
                Finding("ND402", "same-sign-init", Severity.WARNING, "original", "all weights >= 0")])
            assert_flags(report, "ND101")
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "AssertionError: DID NOT FLAG ND101" in out
    assert "Findings: ND402 same-sign-init (warning)" in out
    # The failure points at the user's line, not into netdoctor/testing.py.
    assert 'assert_flags(report, "ND101")' in out
    assert "raise AssertionError" not in out
    assert "testing.py" not in out


# -- real runs of the reference MLP ------------------------------------------------------
XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_Y = np.array([0, 1, 1, 0])


def test_real_double_sigmoid_is_flagged_and_the_fix_is_healthy():
    mlp = pytest.importorskip("netdoctor.mlp")
    bad = mlp.MLP([2, 2, 2, 2], activation="sigmoid", output="sigmoid", loss="bce", init="uniform01",
                  batch_size=1, lr=0.5, seed=0, faults=("double_sigmoid",))
    report = assert_flags(bad, "ND303", "output-pinned", X=XOR_X, y=XOR_Y, epochs=300)
    with pytest.raises(AssertionError, match="NOT HEALTHY"):
        assert_healthy(report)

    good = mlp.MLP([2, 8, 1], activation="tanh", output="sigmoid", loss="bce", init="xavier",
                   lr=0.5, seed=0)
    assert_healthy(good, X=XOR_X, y=XOR_Y, epochs=1500)
