"""The loss the code computes is found by its value, and only by a value that holds.

netdoctor takes a number the program holds as its loss when it equals a standard loss
of the outputs (MSE, BCE or CE, with a reduction). One equality can be chance, so the
number must keep equal to the same loss at the next steps where it changes, and
settings (lr, eta) are never taken for a loss.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from netdoctor.testing import diagnose_script

pytestmark = pytest.mark.slow

CASES = Path(__file__).resolve().parent.parent / "case_studies"


def _loss_notes(report) -> list[str]:
    return [n for n in report.to_dict()["runs"]["run"]["notes"] if n.startswith("the loss is the code's own")]


def test_a_learning_rate_equal_to_one_step_loss_is_not_the_loss():
    # On this seed every hidden unit saturates from the start and lr = 0.5 equals, at
    # each step, a loss of the arrays netdoctor first takes for the network: the old
    # reading named `lr` as the code's loss.
    run = diagnose_script(CASES / "unscaled_inputs" / "original.py", "run", timeout=90, seed=1)
    notes = _loss_notes(run.require_report())
    assert not any("own lr " in n for n in notes), notes


def test_the_code_s_own_cost_is_still_found(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(
        "import numpy as np\n"
        "rng = np.random.default_rng(0)\n"
        "X = rng.normal(size=(64, 3))\n"
        "y = (X @ np.array([1.0, -2.0, 0.5]) > 0).astype(float).reshape(-1, 1)\n"
        "W, b, lr = rng.normal(size=(3, 1)) * 0.1, np.zeros(1), 0.25\n"
        "for epoch in range(300):\n"
        "    p = 1 / (1 + np.exp(-(X @ W + b)))\n"
        "    cost = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))\n"
        "    grad = p - y\n"
        "    W -= lr * X.T @ grad / len(X)\n"
        "    b -= lr * grad.mean(axis=0)\n")
    notes = _loss_notes(diagnose_script(script, "run", timeout=60).require_report())
    assert notes == ["the loss is the code's own cost (BCE, mean over the batch)"]
