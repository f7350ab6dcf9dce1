"""Gradients kept in the locals of the function that updates are read at its return.

``backward()`` computes ``dW2 = a1.T @ delta2 / m`` and ends with ``W2 -= lr * dW2``: by
the next forward pass, where a step is closed, its locals are gone. Read at its return,
the arrays are the gradients the code used, so the gradient check compares them with the
network's own loss, and does not have to infer them from the updates (which an adaptive
optimizer, or a wrong but positive derivative, bends the same way).
"""

from __future__ import annotations

from netdoctor.observe.script import run_script
from netdoctor.rules import run_rules
from netdoctor.types import Severity

SCRIPT = '''
import numpy as np

np.random.seed(3)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


class Net:
    def __init__(self):
        self.W1, self.b1 = np.random.randn(2, 4), np.zeros((1, 4))
        self.W2, self.b2 = np.random.randn(4, 1), np.zeros((1, 1))

    def forward(self, X):
        self.z1 = X @ self.W1 + self.b1
        self.a1 = sigmoid(self.z1)
        self.z2 = self.a1 @ self.W2 + self.b2
        self.a2 = sigmoid(self.z2)
        return self.a2

    def backward(self, X, y):
        m = X.shape[0]
        delta2 = (self.a2 - y) * self.a2 * (1 - self.a2)
        dW2 = self.a1.T @ delta2 / m
        db2 = delta2.sum(axis=0, keepdims=True) / m
        delta1 = (delta2 @ self.W2.T) * {slope}
        dW1 = X.T @ delta1 / m
        db1 = delta1.sum(axis=0, keepdims=True) / m
        self.W2 -= 1.0 * dW2
        self.b2 -= 1.0 * db2
        self.W1 -= 1.0 * dW1
        self.b1 -= 1.0 * db1


X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
y = np.array([[0], [1], [1], [1]], dtype=float)
net = Net()
for epoch in range(600):
    net.forward(X)
    net.backward(X, y)
'''
RIGHT = "self.a1 * (1 - self.a1)"
WRONG = "sigmoid(self.a1) * (1 - sigmoid(self.a1))"   # the slope taken at a1, not at z1


def _run(tmp_path, slope: str):
    path = tmp_path / "net.py"
    path.write_text(SCRIPT.format(slope=slope))
    trace = run_script(str(path))
    errors = {f.code for f in run_rules(trace).findings if f.severity >= Severity.ERROR}
    return trace, errors


def test_the_gradients_of_a_backward_method_are_read_at_its_return(tmp_path):
    trace, errors = _run(tmp_path, RIGHT)
    later = [e for e in trace.events_of("gradcheck") if e.step and e.step > 2]
    assert later and all(e.data["claimed"] == "gradients" for e in later)
    assert all(row["rel_err"] < 1e-4 for e in later for row in e.data["params"])
    assert not errors, errors


def test_a_wrong_slope_shows_in_the_gradients_read_there(tmp_path):
    trace, errors = _run(tmp_path, WRONG)
    later = [e for e in trace.events_of("gradcheck") if e.step and e.step > 2]
    assert later and all(e.data["claimed"] == "gradients" for e in later)
    assert "ND203" in errors
