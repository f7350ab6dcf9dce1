"""The detection matrix (issue 2, item 8), as tests.

* Each fault of :data:`netdoctor.faults.FAULTS`, injected into a small network, is
  flagged with its primary code (``expected[0]``) in at least 19 of 20 seeds.
* Each healthy configuration of ``tests/pairs.py`` produces no error finding on any of
  20 seeds (those configurations learn their data every time, so a finding there
  would be a false alarm, not a run that really failed).

One test item per fault or configuration, so ``pytest -n 2`` spreads them. The seed
changes the initial weights, the shuffling and (for generated data) the data.
"""

from __future__ import annotations

import pytest

from netdoctor.faults import FAULTS
from netdoctor.rules import run_rules
from netdoctor.types import Severity

from pairs import HEALTHY, fault_config

SEEDS = range(20)
MIN_DETECTED = 19

pytestmark = pytest.mark.slow


def _summary(findings) -> str:
    return ", ".join(sorted({f"{f.code}({str(f.severity)[0].upper()})" for f in findings})) or "nothing"


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_is_flagged_with_its_primary_code(fault):
    primary = FAULTS[fault].expected[0]
    config = fault_config(fault)
    missed = []
    for seed in SEEDS:
        outcome = run_rules(config.run(seed=seed, name=f"{fault}-{seed}"))
        assert outcome.errors == {}, f"rules crashed on {fault}, seed {seed}: {outcome.errors}"
        if primary not in {f.code for f in outcome.findings}:
            missed.append(f"seed {seed}: {_summary(outcome.findings)}")
    detected = len(SEEDS) - len(missed)
    assert detected >= MIN_DETECTED, (
        f"{fault} flagged with {primary} in only {detected}/{len(SEEDS)} seeds ({config}).\n"
        "Missed:\n  " + "\n  ".join(missed)
    )


@pytest.mark.parametrize("name", sorted(HEALTHY))
def test_healthy_configuration_has_no_error(name):
    config = HEALTHY[name]
    alarms = []
    for seed in SEEDS:
        outcome = run_rules(config.run(seed=seed, name=f"{name}-{seed}"))
        assert outcome.errors == {}, f"rules crashed on {name}, seed {seed}: {outcome.errors}"
        errors = [f for f in outcome.findings if f.severity >= Severity.ERROR]
        if errors:
            alarms.append(f"seed {seed}: " + "; ".join(f"{f.code} {f.message}" for f in errors))
    assert not alarms, f"{name} ({config}) is healthy but got errors:\n  " + "\n  ".join(alarms)


def test_the_matrix_covers_enough_healthy_kinds():
    """Issue 2 asks for at least 5 healthy configurations of different kinds."""
    kinds = {c.mlp.get("optimizer", "sgd") for c in HEALTHY.values()} | {c.data for c in HEALTHY.values()} \
        | {c.mlp["activation"] for c in HEALTHY.values()} | {c.mlp["loss"] for c in HEALTHY.values()}
    assert len(HEALTHY) >= 5
    assert {"adam", "relu", "ce", "mse", "blobs", "xor"} <= kinds
