"""Tutorial-style PyTorch: raw ``requires_grad`` tensors updated by hand, no module, no optimizer.

The forward pass is found on the tape of torch calls before the first ``backward()``
(:mod:`netdoctor.frameworks.torch_tape`); the scripts here are written for these tests
(a few dozen rows, under 100 steps) in the styles people use: ``w.data.sub_(lr * w.grad)``
and ``with torch.no_grad(): w -= lr * w.grad``.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import netdoctor as nd  # noqa: E402
from netdoctor.frameworks.torch_tape import Tape  # noqa: E402
from netdoctor.runstate import RunState, Role  # noqa: E402


def recorded(build):
    """Run `build` (which returns the loss and a dict of its tensors) on a fresh tape."""
    tape = Tape(torch)
    tape.start()
    try:
        loss, tensors = build()
        tape.recording = False
        return tape.forward_of(loss), tensors
    finally:
        tape.stop()


def test_the_forward_inputs_and_targets_of_a_hand_written_regression():
    def build():
        g = torch.Generator().manual_seed(0)
        x = torch.rand(20, 1, generator=g) * 10
        y = 3 * x + 5 + torch.randn(20, 1, generator=g)
        w = torch.randn(1, requires_grad=True)
        b = torch.zeros(1, requires_grad=True)
        pred = torch.add(torch.mul(w, x), b)
        return (0.5 * (y - pred) ** 2).mean(), dict(x=x, y=y, w=w, b=b)

    forward, t = recorded(build)
    assert forward is not None
    assert forward.inputs is t["x"] and forward.targets is t["y"]
    with torch.no_grad():
        t["w"] += 1.0      # replayed with the parameters as they are now, on fewer rows
        expected = t["w"] * t["x"][:4] + t["b"]
        assert torch.allclose(forward.predict(t["x"][:4]), expected)
        assert torch.allclose(forward.loss(expected, t["y"][:4]),
                              (0.5 * (t["y"][:4] - expected) ** 2).mean())


def test_a_hand_written_cross_entropy_with_a_weight_penalty():
    """`1 - y` is made from the targets, not a second target; the penalty is not the forward."""
    def build():
        g = torch.Generator().manual_seed(1)
        X = torch.randn(16, 2, generator=g)
        Y = (X[:, :1] * X[:, 1:] > 0).float()
        W1 = torch.randn(2, 4, generator=g).requires_grad_()
        W2 = torch.randn(4, 1, generator=g).requires_grad_()
        p = torch.sigmoid(torch.tanh(X @ W1) @ W2)
        loss = -(Y * torch.log(p) + (1 - Y) * torch.log(1 - p)).mean() + 0.01 * (W1 ** 2).sum()
        return loss, dict(X=X, Y=Y, W1=W1, W2=W2)

    forward, t = recorded(build)
    assert forward is not None and forward.inputs is t["X"] and forward.targets is t["Y"]
    with torch.no_grad():
        t["W1"].mul_(0.5)
        p = torch.sigmoid(torch.tanh(t["X"] @ t["W1"]) @ t["W2"])
        assert torch.allclose(forward.predict(t["X"]), p)
        penalty = 0.01 * (t["W1"] ** 2).sum()    # the loss program reads the weights as they are now
        bce = -(t["Y"] * torch.log(p) + (1 - t["Y"]) * torch.log(1 - p)).mean()
        assert torch.allclose(forward.loss(p, t["Y"]), bce + penalty)


def test_a_loss_with_no_targets_has_no_forward_to_claim():
    def build():
        x = torch.randn(8, 3)
        w = torch.randn(3, 2, requires_grad=True)
        return ((x @ w) ** 2).mean(), {}

    forward, _ = recorded(build)
    assert forward is None     # nothing joins after a prediction: no outputs are claimed


LOOP = """
import sys
import torch

torch.manual_seed(0)
x = torch.linspace(-1, 1, {rows}).unsqueeze(1)
y = 2 * x + 1
w = torch.randn(1, requires_grad=True)
b = torch.zeros(1, requires_grad=True)
for step in range(80):
    pred = {forward}
    loss = ((pred - y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        w -= 0.1 * w.grad
        b -= 0.1 * b.grad
    {zero}
print("final_loss", loss.item())
"""


def manual_loop(tmp_path, name, *, zero, rows=32, forward="w * x + b"):
    script = tmp_path / f"{name}.py"
    script.write_text(textwrap.dedent(LOOP).format(
        rows=rows, forward=forward, zero="w.grad.zero_(); b.grad.zero_()" if zero else "pass"))
    return nd.diagnose(str(script), timeout=120)


def test_a_hand_written_loop_that_never_zeroes_its_gradients_is_flagged(tmp_path):
    report = manual_loop(tmp_path, "bad", zero=False)
    assert "ND704" in report.codes(at_least=nd.Severity.ERROR)
    assert report.state("original") is RunState.NOT_HEALTHY


def test_the_same_loop_with_zeroed_gradients_is_fully_observed_and_healthy(tmp_path):
    report = manual_loop(tmp_path, "good", zero=True)
    trace = report.runs["original"]
    assert trace.info.steps == 80
    assert report.coverage("original").blind_required == ()
    assert trace.outputs.shape[1:] == (32, 1)       # every probe row (all 32), at every recorded step
    steps, probe_loss = trace.series("probe_loss")
    measured = np.isfinite(probe_loss)
    assert measured.sum() >= 3 and probe_loss[measured][-1] < 0.01 * probe_loss[measured][0]
    # the outputs are the network's: at the end they are 2x + 1 on the probe inputs
    final = trace.outputs[-1].ravel()
    assert np.allclose(final, 2 * trace.probe_inputs.ravel() + 1, atol=0.05)
    assert report.state("original") is RunState.HEALTHY, report.findings


def test_a_forward_that_will_not_take_the_probe_rows_stays_partly_observed(tmp_path):
    # reshape(100) only fits the whole batch: the probe rows cannot be replayed, so the
    # outputs are honestly unseen, whatever the loss did
    report = manual_loop(tmp_path, "fixed_rows", zero=True, rows=100,
                         forward="(w * x + b).reshape(100).unsqueeze(1)")
    assert report.runs["original"].info.steps == 80
    assert Role.OUTPUTS in report.coverage("original").missing
    assert report.state("original") is RunState.PARTLY_OBSERVED
