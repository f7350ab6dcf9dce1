"""A loss the code's gradients cannot tell apart from another is said to be assumed, and
what depends on the choice is not judged.

Through one sigmoid unit, on one sample, the gradient of the squared error and that of
the binary cross-entropy point the same way and differ in size by o(1 - o): per-sample
code shows no difference but the size, and the size is what ND204 judges.
"""

from __future__ import annotations

from netdoctor.observe.script import run_script
from netdoctor.rules import run_rules

SCRIPT = '''
import numpy as np

rng = np.random.default_rng(0)
X = rng.normal(size=(20, 2))
Y = (X[:, :1] + X[:, 1:] > 0).astype(float)
W1 = rng.normal(size=(2, 4)) * 0.5
b1 = np.zeros((1, 4))
W2 = rng.normal(size=(4, 1)) * 0.5
b2 = np.zeros((1, 1))
for epoch in range({epochs}):
    for i in range(0, len(X), {batch}):
        x, y = X[i:i + {batch}], Y[i:i + {batch}]
        h = np.tanh(x @ W1 + b1)
        o = 1 / (1 + np.exp(-(h @ W2 + b2)))
        d2 = (o - y) * o * (1 - o) / len(x) * {factor}   # the gradient of the mean of (o - y)^2 / 2
        dW2 = h.T @ d2
        db2 = d2.sum(axis=0, keepdims=True)
        d1 = (d2 @ W2.T) * (1 - h ** 2)
        dW1 = x.T @ d1
        db1 = d1.sum(axis=0, keepdims=True)
        W2 -= 0.5 * dW2
        b2 -= 0.5 * db2
        W1 -= 0.5 * dW1
        b1 -= 0.5 * db1
'''


def _run(tmp_path, batch: int, factor: float = 1.0):
    path = tmp_path / "fit.py"
    path.write_text(SCRIPT.format(batch=batch, factor=factor, epochs=30 if batch == 1 else 300))
    trace = run_script(str(path))
    outcome = run_rules(trace, select=["ND204"])
    return trace, outcome


def _assumed(trace) -> list[str]:
    return [note for note in trace.info.notes if "equally well" in note]


def test_one_sample_through_one_sigmoid_unit_says_the_loss_was_assumed(tmp_path):
    trace, outcome = _run(tmp_path, batch=1)
    [note] = _assumed(trace)
    assert "BCE and MSE" in note and "not judged" in note
    assert not outcome.findings and "ND204" in outcome.skipped


def test_a_batch_tells_the_loss_and_its_size_is_judged(tmp_path):
    trace, outcome = _run(tmp_path, batch=20)
    assert _assumed(trace) == [] and trace.info.loss == "mse"
    assert not outcome.findings
    # The same code with its gradient four times too large: the size now means something.
    trace, outcome = _run(tmp_path, batch=20, factor=4.0)
    assert [f.code for f in outcome.findings] == ["ND204"]
