"""A step counted at the return of a function that runs one forward pass and then updates.

Code in the style of a class with ``train(inputs, targets)``, called once per sample, does
its forward pass, backprop and in-place update inline (no function of its own shows the
layers' values). Learning finds the forward pass on
one of its lines; watching that function's every line for the whole run costs one event
per line. Its return still holds the pass's input and output (made with the parameters
before the update), so the return is the site: one event per step.
"""

from __future__ import annotations

import textwrap

from netdoctor.observe.script import run_script
from netdoctor.rules import run_rules
from netdoctor.types import Severity

TRAIN = '''\
import numpy as np

class Net:
    def __init__(self, n_in, n_hidden, lr):
        rng = np.random.default_rng(3)
        self.w1 = rng.normal(0.0, n_in ** -0.5, (n_hidden, n_in))
        self.w2 = rng.normal(0.0, n_hidden ** -0.5, (1, n_hidden))
        self.lr = lr

    def train(self, inputs, targets):
        x = np.array(inputs, ndmin=2).T
        t = np.array(targets, ndmin=2).T
{body}

X = [[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]]   # (a constant-1 input for the bias)
Y = [0, 1, 1, 1]
net = Net(3, 6, 0.5)
for epoch in range(150):
    for inputs, target in zip(X, Y):
        net.train(inputs, [target])
'''

# One pass, then the update: the return is the site.
ONE_PASS = '''\
        hidden = 1.0 / (1.0 + np.exp(-np.dot(self.w1, x)))
        out = 1.0 / (1.0 + np.exp(-np.dot(self.w2, hidden)))
        err = t - out
        hidden_err = np.dot(self.w2.T, err * out * (1 - out))
        self.w2 += self.lr * np.dot(err * out * (1 - out), hidden.T)
        self.w1 += self.lr * np.dot(hidden_err * hidden * (1 - hidden), x.T){wrong}
'''

# The same sample passed twice before one update: two passes per call, so no return can
# stand for them; the line stays the site.
TWO_PASSES = '''\
        grad2, grad1 = 0, 0
        for repeat in range(2):
            hidden = 1.0 / (1.0 + np.exp(-np.dot(self.w1, x + repeat)))
            out = 1.0 / (1.0 + np.exp(-np.dot(self.w2, hidden)))
            err = t - out
            delta = err * out * (1 - out)
            grad2 = grad2 + np.dot(delta, hidden.T)
            grad1 = grad1 + np.dot(np.dot(self.w2.T, delta) * hidden * (1 - hidden), (x + repeat).T)
        self.w2 += self.lr * grad2
        self.w1 += self.lr * grad1
'''


def _script(tmp_path, body: str) -> str:
    path = tmp_path / "train_net.py"
    path.write_text(TRAIN.format(body=body))
    return str(path)


def _errors(trace) -> set[str]:
    return {f.code for f in run_rules(trace).findings if f.severity >= Severity.ERROR}


def test_one_pass_then_an_update_is_counted_at_the_return(tmp_path):
    trace = run_script(_script(tmp_path, ONE_PASS.format(wrong="")))
    assert trace.info.extra["forward_sites"] == ["Net.train (return)"]
    assert trace.info.status == "completed"
    # Every call of train() is one step, none lost or doubled by the later site (the first
    # two or so pass while the network is being recognised, as with any site).
    calls = 150 * 4
    assert calls - 3 <= trace.info.steps <= calls
    # The passes recorded were made with the parameters before each update: the gradient
    # check agrees with the code's correct backprop. (A pass whose layers the code does not
    # all keep, and gradients first readable at the return, are checked by the case study
    # onthefly_tanh_targets_sigmoid_out, whose fixed script counts its steps there.)
    assert not _errors(trace), _errors(trace)


def test_a_wrong_backprop_is_still_found_at_the_return(tmp_path):
    # The hidden layer's delta without the sigmoid's slope: backprop disagrees with the
    # network's own loss, whichever site counts the steps.
    wrong = "\n        self.w1 -= self.lr * np.dot(hidden_err * hidden * (1 - hidden), x.T)" \
            "\n        self.w1 += self.lr * np.dot(hidden_err, x.T)"
    trace = run_script(_script(tmp_path, ONE_PASS.format(wrong=wrong)))
    assert trace.info.extra["forward_sites"] == ["Net.train (return)"]
    assert "ND203" in _errors(trace)


def test_two_passes_before_one_update_keep_their_line(tmp_path):
    trace = run_script(_script(tmp_path, TWO_PASSES))
    (site,) = trace.info.extra["forward_sites"]
    assert site.startswith("Net.train (line"), site
