"""The meta-test: every registered rule has a bad/good pair of real reference runs.

``bad`` must be flagged with the rule's code and ``good`` must not (any severity
counts: "flagged" means the code appears at all). Codes are asserted, never wording.
"""

from __future__ import annotations

import pytest

from netdoctor.rules import all_rules, run_rules

from pairs import PAIRS, Config

CODES = [r.code for r in all_rules()]
_outcomes: dict[str, object] = {}


def judged(config: Config):
    """Run and judge a configuration once per session (many pairs share a good one)."""
    if config.key not in _outcomes:
        outcome = run_rules(config.run(seed=0, name="pair"))
        assert outcome.errors == {}, f"rules crashed on {config}: {outcome.errors}"
        _outcomes[config.key] = outcome
    return _outcomes[config.key]


def describe(outcome) -> str:
    found = ", ".join(f"{f.code} {f.symbol} ({f.severity})" for f in outcome.findings) or "nothing"
    return f"findings: {found}; skipped: {outcome.skipped}"


def test_every_registered_rule_has_a_pair():
    missing = sorted(set(CODES) - set(PAIRS))
    assert not missing, f"rules without a bad/good pair in tests/pairs.py: {missing}"
    stale = sorted(set(PAIRS) - set(CODES))
    assert not stale, f"pairs for codes that are not registered: {stale}"


@pytest.mark.parametrize("code", CODES)
def test_bad_is_flagged_and_good_is_not(code):
    pair = PAIRS.get(code)
    if pair is None:
        pytest.fail(f"{code} has no pair")
    bad, good = judged(pair.bad), judged(pair.good)
    assert code in {f.code for f in bad.findings}, (
        f"DID NOT FLAG {code} on the bad configuration ({pair.why}): {pair.bad}\n{describe(bad)}"
    )
    assert code not in {f.code for f in good.findings}, (
        f"FLAGGED {code} on the good configuration: {pair.good}\n{describe(good)}"
    )
