"""Models whose output the code never keeps, recognised from their updates.

Each script is run under the script observer as a user would run it. The checks are
what the observer must conclude from the updates alone: that there is a model, that
one step is one update (not one log line), which array holds the targets, and that a
wrong gradient is not passed off as a model it does not fit.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from netdoctor.testing import diagnose_script

pytestmark = pytest.mark.slow

DATA = """
import numpy as np
rng = np.random.default_rng(5)
X = rng.normal(0, 1, (120, 2))
labels = np.where(X @ np.array([1.5, -1.0]) + 0.3 > 0, 1.0, -1.0)   # -1 / +1
"""


def _run(tmp_path, body: str, label: str = "run"):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(DATA) + textwrap.dedent(body))
    run = diagnose_script(script, label, timeout=60)
    report = run.require_report()
    return report, report.to_dict()["runs"][label]


def _codes(report) -> set[str]:
    return {f.code for f in report.findings}


LOGISTIC = """
def fit(X, t, lr=0.5, epochs=300):
    w, b = np.zeros(2), 0.0
    for epoch in range(epochs):
        r = 1 / (1 + np.exp(-(X @ w + b))) - t
        w = w - lr * X.T @ r / len(t)
        b = b - lr * r.sum() / len(t)
        if epoch % {every} == 0:
            p = 1 / (1 + np.exp(-(X @ w + b)))   # only for the log line
            print(epoch, round(float(p.mean()), 3))
    return w, b

fit(X, {targets})
"""


@pytest.mark.parametrize("every", [50, 100])
def test_one_step_is_one_update_not_one_log_line(tmp_path, every):
    _, run = _run(tmp_path, LOGISTIC.format(every=every, targets="(labels + 1) / 2"))
    # The log line's forward pass comes every `every` updates; the model is recognised
    # at the updates, so nearly every one of the 300 epochs is a step.
    assert run["steps"] >= 250, run
    assert run["layers"][0]["activation"] == "sigmoid"


def test_the_targets_are_the_array_the_gradient_uses(tmp_path):
    # Both label arrays exist; only the one the code trains on decides ND601.
    report, run = _run(tmp_path, LOGISTIC.format(every=100, targets="(labels + 1) / 2"))
    assert run["steps"] >= 250 and "ND601" not in _codes(report)
    report, run = _run(tmp_path, LOGISTIC.format(every=100, targets="labels"))
    assert run["steps"] >= 250 and "ND601" in _codes(report)


LINE_FIT = """
y = X @ np.array([0.8, -0.4]) + 0.5
m, c = np.zeros(2), 0.0
for epoch in range(200):
    m = m - 0.1 * (-2 * X.T @ (y - (X @ m + c)) / len(y))
    c = c - 0.1 * {factor}(-2 * np.mean(y - (X @ m + c)))
print("m", m, "c", c)
"""


def test_a_linear_model_with_its_prediction_inside_the_gradient(tmp_path):
    # (c's gradient is formed after m has moved: the two are updated one after the other.)
    report, run = _run(tmp_path, LINE_FIT.format(factor=""))
    assert run["steps"] >= 150 and run["layers"][0]["activation"] in ("linear", "identity")
    assert not [f for f in report.findings if f.is_error], report.findings


def test_a_gradient_with_a_stray_factor_on_the_bias_is_not_taken_for_a_model(tmp_path):
    # The bias's step is 0.37 times its gradient: the change is not along the gradient of
    # any loss the observer knows, so it must not claim to have seen a training step.
    report, run = _run(tmp_path, LINE_FIT.format(factor="0.37 * "))
    assert "run" in report.unobserved() and run["steps"] == 0, run


def test_one_sample_designs_need_targets_that_change():
    # A number that stays put over the steps (another data set's label, a setting) fits as any
    # moving array's target; only steps that show two targets can confirm a one-sample model.
    from netdoctor.observe.implicit import _targets_vary

    x = np.ones((1, 3))
    assert not _targets_vary([(x, np.array([9.0]))] * 5)
    assert _targets_vary([(x, np.array([9.0]))] * 4 + [(x, np.array([2.0]))])
