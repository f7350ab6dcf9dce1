"""Targets found where the step uses them: per-sample and on-the-fly data.

No script here keeps a training set. One trains a single-number weight on one
scalar sample at a time (its model is recognised from its updates, with the sample
read from the step); the other makes each target afresh from its input and compares
it with the output to form the error. In both the observer must collect inputs and
targets from the steps themselves, and judge the loss and the data from them.
"""

from __future__ import annotations

import textwrap

import pytest

from netdoctor.testing import diagnose_script

pytestmark = pytest.mark.slow


def _run(tmp_path, source: str):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(source))
    run = diagnose_script(script, "run", timeout=60)
    report = run.require_report()
    return report, report.to_dict()["runs"]["run"]


def _codes(report, severity: str | None = None) -> set[str]:
    return {f.code for f in report.findings if severity is None or f.severity.name == severity}


SCALAR = """
import numpy as np

class Unit:
    def __init__(self):
        self.w = float(np.random.default_rng(4).normal())

    def step(self, inp, want, rate):
        guess = self.w * inp
        diff = guess - want
        slope = 2 * diff * inp
        self.w {sign}= rate * slope

unit = Unit()
points = [0.1 * k - 1.0 for k in range(21)]
for sweep in range(30):
    for p in points:
        unit.step(p, -2.0 * p, 0.05)
print("w", unit.w)
"""


def test_a_one_number_model_trained_one_sample_at_a_time(tmp_path):
    # Gradient ascent on one weight: seen, and the climbing loss judged from the samples.
    report, run = _run(tmp_path, SCALAR.format(sign="+"))
    assert run["steps"] >= 500, run
    assert {"ND503", "ND105"} <= _codes(report), _codes(report)
    # The same code descending: the loss comes down, no error.
    report, run = _run(tmp_path, SCALAR.format(sign="-"))
    assert run["steps"] >= 500, run
    assert run["state"] == "healthy", (run["state"], _codes(report))
    assert not _codes(report, "ERROR"), _codes(report)


ONTHEFLY = """
import numpy as np

rng = np.random.default_rng(2)
A = rng.normal(0, 0.8, (6, 1)); a0 = np.zeros((6, 1))
B = rng.normal(0, 0.4, (1, 6)); b0 = np.zeros((1, 1))
squash = lambda v: 1 / (1 + np.exp(-v))

for it in range(6000):
    u = rng.uniform(-1.5, 1.5)
    col = np.array([[u]])
    goal = np.array([[{target}]])
    h = squash(A @ col + a0)
    o = squash(B @ h + b0)
    miss = goal - o
    d_out = miss * o * (1 - o)
    d_hid = (B.T @ d_out) * h * (1 - h)
    B += 0.2 * d_out @ h.T
    b0 += 0.2 * d_out
    A += 0.2 * d_hid @ col.T
    a0 += 0.2 * d_hid
print("done")
"""


def test_targets_made_afresh_at_every_step_are_collected(tmp_path):
    # Targets in (-1, 1) for a sigmoid output: unreachable, judged on the collected targets.
    report, run = _run(tmp_path, ONTHEFLY.format(target="np.sin(u)"))
    assert run["steps"] >= 5000, run
    assert "ND601" in _codes(report), _codes(report)
    # Targets in (0, 1): reachable.
    report, run = _run(tmp_path, ONTHEFLY.format(target="0.5 + 0.4 * np.sin(u)"))
    assert run["steps"] >= 5000, run
    assert "ND601" not in _codes(report), _codes(report)


def test_a_correct_script_with_targets_made_afresh_has_no_error(tmp_path):
    # One sample, one input feature per step, the descent direction kept in arrays: the
    # bias's array also lines up with the weight's change (times the input), and every loss
    # points the same way; the loss is told by the learning rate holding from step to step.
    report, run = _run(tmp_path, ONTHEFLY.format(target="0.5 + 0.4 * np.sin(u)"))
    assert not _codes(report, "ERROR"), _codes(report)
    assert run["state"] == "healthy", (run["state"], run.get("notes"))
