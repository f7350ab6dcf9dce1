"""An optimizer in doubt is no ground for an error on a run that fits.

Adam's update keeps most of the gradient's signs but is no multiple of it, so the
gradient check does not read it as -lr * g. On a net of a dozen entries one step can
still line up with the gradient by chance (Adam's first update is -lr * sign(g)), and
another keep its signs only by chance: read as -lr * g, they disagree with the forward
pass as a wrong backprop's would. When a check of the run showed the updates bent and
the run fits its data, a mismatch read from updates is a warning. A wrong backprop under
plain descent, on a run that does not fit, stays an error.
"""

from __future__ import annotations

from netdoctor.observe.script import run_script
from netdoctor.rules import run_rules
from netdoctor.types import Severity

SCRIPT = '''
import numpy as np

rng = np.random.default_rng(0)
X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
Y = np.array([[0], [1], [1], [0]], dtype=float)
W1 = rng.normal(0, 1, (2, 3))
b1 = np.zeros((1, 3))
W2 = rng.normal(0, 1, (3, 1))
b2 = np.zeros((1, 1))
params = [W1, b1, W2, b2]
m = [np.zeros_like(p) for p in params]
v = [np.zeros_like(p) for p in params]
for t in range(1, 1501):
    h = np.tanh(X @ W1 + b1)
    o = 1 / (1 + np.exp(-(h @ W2 + b2)))
    d2 = (o - Y) / len(X)
    d1 = (d2 @ W2.T){slope}
    grads = [X.T @ d1, d1.sum(0, keepdims=True), h.T @ d2, d2.sum(0, keepdims=True)]
    for p, g, mi, vi in zip(params, grads, m, v):
{update}
'''
ADAM = '''\
        mi *= 0.9
        mi += 0.1 * g
        vi *= 0.999
        vi += 0.001 * g * g
        p -= 0.05 * (mi / (1 - 0.9 ** t)) / (np.sqrt(vi / (1 - 0.999 ** t)) + 1e-8)'''
PLAIN = '''\
        p -= 2.0 * g'''
MOMENTUM = '''\
        mi *= 0.9
        mi -= 0.5 * g
        p += mi'''
RIGHT, WRONG = " * (1 - h ** 2)", ""   # the hidden layer's delta with / without tanh's slope


def _run(tmp_path, update: str, slope: str):
    path = tmp_path / "tiny.py"
    path.write_text(SCRIPT.format(update=update, slope=slope))
    trace = run_script(str(path))
    errors = {f.code for f in run_rules(trace).findings if f.severity >= Severity.ERROR}
    return trace, errors


def test_adam_on_a_tiny_net_is_never_read_as_a_wrong_backprop(tmp_path):
    trace, errors = _run(tmp_path, ADAM, RIGHT)
    assert "ND203" not in errors, errors
    assert any(c.data.get("not_checked") for c in trace.events_of("gradcheck"))


def test_momentum_on_a_tiny_net_is_never_read_as_a_wrong_backprop(tmp_path):
    # (The output bias's one-entry gradient lines up with its change at every step: it does
    # not make the check one "from gradients", where the momentum would go unrecognised.)
    trace, errors = _run(tmp_path, MOMENTUM, RIGHT)
    assert "ND203" not in errors, errors
    assert all(c.data["claimed"] == "updates" for c in trace.events_of("gradcheck"))


def test_plain_descent_with_a_wrong_backprop_on_the_same_net_is_still_flagged(tmp_path):
    _, errors = _run(tmp_path, PLAIN, WRONG)
    assert "ND203" in errors
    _, errors = _run(tmp_path, PLAIN, RIGHT)
    assert "ND203" not in errors
