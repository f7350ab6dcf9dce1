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


def test_constants_with_one_row_per_sample_are_cut_to_the_replayed_rows():
    """`1 - Y` is recorded as a constant of the whole batch; replayed on fewer rows it is cut too."""
    def build():
        g = torch.Generator().manual_seed(3)
        X = torch.randn(100, 2, generator=g)
        Y = (X[:, :1] > 0).float()
        W = torch.randn(2, 1, generator=g).requires_grad_()
        p = torch.sigmoid(X @ W)
        return -(Y * torch.log(p) + (1 - Y) * torch.log(1 - p)).mean(), dict(X=X, Y=Y, W=W)

    forward, t = recorded(build)
    rows = torch.arange(0, 100, 7)
    with torch.no_grad():
        p = torch.sigmoid(t["X"][rows] @ t["W"])
        y = t["Y"][rows]
        loss = forward.loss(forward.predict(t["X"][rows], rows=(100, rows)), y, rows=(100, rows))
        assert torch.allclose(loss, -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean())


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


# -- the kind of a hand-written loss -----------------------------------------------------------------

def recorded_loss(loss_of, *, classes=1, labels=False):
    """Record `loss_of(z, y, W)` on a one-layer network; the recognised (kind, form) of its loss."""
    from netdoctor.frameworks.torch_tape import recognise_loss

    def build():
        g = torch.Generator().manual_seed(0)
        X = torch.randn(16, 3, generator=g)
        W = torch.randn(3, classes, generator=g).requires_grad_()
        if labels:
            y = torch.randint(0, classes, (16,), generator=g)
        elif classes > 1:
            y = torch.nn.functional.one_hot(torch.randint(0, classes, (16,), generator=g), classes).float()
        else:
            y = (X[:, :1] > 0).float()
        return loss_of(X @ W, y, W), dict(X=X)

    forward, t = recorded(build)
    assert forward is not None
    with torch.no_grad():
        found = recognise_loss(torch, forward, forward.predict(t["X"]), forward.targets)
    return None if found is None else found[0]


def _bce(z, y):
    p = torch.sigmoid(z)
    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()


@pytest.mark.parametrize("kind, loss_of, shape", [
    ("mse", lambda z, y, W: ((y - z) ** 2).mean(), {}),
    ("mse", lambda z, y, W: 0.5 * ((torch.sigmoid(z) - y) ** 2).sum(), {}),
    ("mse", lambda z, y, W: torch.nn.functional.mse_loss(z, y), {}),
    ("bce", lambda z, y, W: _bce(z, y), {}),
    ("bce", lambda z, y, W: -(y * torch.log(torch.sigmoid(z).clamp(1e-7, 1))
                              + (1 - y) * torch.log((1 - torch.sigmoid(z)).clamp(1e-7, 1))).mean()
     + 0.01 * (W ** 2).sum(), {}),
    ("ce", lambda z, y, W: -(y * torch.log(torch.softmax(z, dim=1))).sum(dim=1).mean(), dict(classes=3)),
    ("ce", lambda z, y, W: -torch.log(torch.softmax(z, dim=1)[torch.arange(16), y]).mean(),
     dict(classes=3, labels=True)),
    ("ce", lambda z, y, W: -torch.log_softmax(z, dim=1).gather(1, y[:, None]).mean(),
     dict(classes=3, labels=True)),
    ("mse", lambda z, y, W: ((torch.softmax(z, dim=1) - y) ** 2).mean(), dict(classes=3)),
], ids=["squared", "half-sum-sigmoid", "F.mse_loss", "bce", "bce-clamped-penalty",
        "ce-one-hot", "ce-arange-labels", "ce-gather-labels", "squared-on-softmax"])
def test_a_hand_written_loss_is_recognised_by_what_it_computes(kind, loss_of, shape):
    assert recorded_loss(loss_of, **shape) == kind


@pytest.mark.parametrize("loss_of", [
    lambda z, y, W: ((torch.sigmoid(z) - y).abs() ** 3).mean(),   # no known kind
    lambda z, y, W: -((y - z) ** 2).mean(),                        # maximised, not a loss of any kind
], ids=["cubic", "negated-squared"])
def test_a_loss_of_no_known_kind_is_not_claimed(loss_of):
    assert recorded_loss(loss_of) is None


# -- the layers of a hand-written network ------------------------------------------------------------

def test_the_layers_of_a_recorded_forward_are_its_pre_activations_and_what_the_next_layer_reads():
    from netdoctor.frameworks.torch_tape import layer_slots

    def build():
        g = torch.Generator().manual_seed(2)
        X = torch.randn(8, 3, generator=g)
        y = torch.randn(8, 1, generator=g)
        W1, b1 = torch.randn(3, 5, generator=g).requires_grad_(), torch.zeros(5, requires_grad=True)
        W2, b2 = torch.randn(5, 1, generator=g).requires_grad_(), torch.zeros(1, requires_grad=True)
        h = 1 / (1 + torch.exp(-(X @ W1 + b1)))        # a sigmoid written by hand
        return ((h @ W2.t().t() + b2 - y) ** 2).mean(), dict(X=X, W1=W1, b1=b1, W2=W2, b2=b2)

    forward, t = recorded(build)
    program = forward.predict_program
    first, second = layer_slots(program, [[t["W1"], t["b1"]], [t["W2"], t["b2"]]])
    with torch.no_grad():
        slots = program.run_all(t["X"][:4])
        z = t["X"][:4] @ t["W1"] + t["b1"]
        assert torch.allclose(slots[first[0]], z)                   # layer 1's pre-activation
        assert torch.allclose(slots[second[1]], torch.sigmoid(z))   # what layer 2's weight is applied to
        assert torch.allclose(slots[second[0]], forward.predict(t["X"][:4]))


NET = """
import torch

torch.manual_seed(0)
X = torch.randn({rows}, {inputs}) * {scale}
{targets}
W1 = (torch.randn({inputs}, {hidden}) * 0.7).requires_grad_()
b1 = torch.full(({bias_rows}{hidden},), {bias}, requires_grad=True)
W2 = (torch.randn({hidden}, 1) * {out_scale}).requires_grad_()
b2 = torch.zeros({bias_rows}1, requires_grad=True)
for epoch in range(60):
    h = {hidden_activation}
    {prediction}
    loss = {loss}
    loss.backward()
    with torch.no_grad():
        for t in (W1, b1, W2, b2):
            t -= {lr} * t.grad
            t.grad.zero_()
print("final_loss", loss.item())
"""

BINARY = dict(
    rows=48, inputs=2, hidden=8, bias=0.0, lr=0.5, bias_rows="",
    targets="Y = (X[:, :1] * X[:, 1:] > 0).float()",
    prediction="p = torch.sigmoid(h @ W2 + b2)",
    loss="-(Y * torch.log(p) + (1 - Y) * torch.log(1 - p)).mean()",
)


def manual_net(tmp_path, name, **settings):
    script = tmp_path / f"{name}.py"
    script.write_text(textwrap.dedent(NET).format(**settings))
    return nd.diagnose(str(script), timeout=120)


def test_hand_written_sigmoid_units_saturated_by_raw_inputs_are_flagged(tmp_path):
    # 160 rows: more than the probe takes, so `1 - Y` in the loss must be cut to the probe rows;
    # the bad script's biases are rows (1, units), the good one's vectors: both are a layer's bias
    settings = dict(BINARY, rows=160, hidden_activation="1 / (1 + torch.exp(-(X @ W1 + b1)))", out_scale=0.5)
    bad = manual_net(tmp_path, "raw", **dict(settings, scale=12.0, bias_rows="1, "))
    good = manual_net(tmp_path, "scaled", **dict(settings, scale=1.0))
    for report in (bad, good):
        info = report.runs["original"].info
        assert [(layer.name, layer.activation, layer.is_output) for layer in info.layers] == [
            ("W1, b1", "sigmoid", False), ("W2, b2", "sigmoid", True)]
        assert info.loss == "bce"
    assert "ND301" in bad.codes()
    trace = good.runs["original"]
    steps, saturated = trace.series("sat_frac", "W1, b1")
    assert np.isfinite(saturated).sum() >= 3 and np.nanmax(saturated) < 0.1
    assert np.isfinite(trace.series("probe_loss")[1]).sum() >= 3
    assert "ND301" not in good.codes()
    assert good.state("original") is RunState.HEALTHY, good.findings


REGRESSION = dict(
    rows=48, inputs=3, hidden=16, scale=1.0, out_scale=0.3, lr=0.05, bias_rows="",
    targets="Y = X.sum(dim=1, keepdim=True)",
    hidden_activation="torch.relu(X @ W1 + b1)",
    prediction="pred = h @ W2 + b2",
    loss="((Y - pred) ** 2).mean()",
)


def test_hand_written_relu_units_killed_by_negative_biases_are_flagged(tmp_path):
    bad = manual_net(tmp_path, "negative_bias", bias=-6.0, **REGRESSION)
    good = manual_net(tmp_path, "small_bias", bias=0.1, **REGRESSION)
    assert "ND302" in bad.codes(at_least=nd.Severity.ERROR)      # every unit dead: an error
    assert bad.runs["original"].info.loss == "mse"
    assert "ND302" not in good.codes()
    assert good.state("original") is RunState.HEALTHY, good.findings


def test_the_initial_loss_of_a_hand_written_cross_entropy_is_judged(tmp_path):
    # ln 2 is what a sigmoid output with binary cross-entropy starts at: judging that needs the kind
    settings = dict(BINARY, hidden_activation="torch.tanh(X @ W1 + b1)", lr=0.2, scale=1.0,
                    targets="Y = (X[:, :1] + X[:, 1:] > 0).float()",
                    prediction="p = torch.sigmoid(h @ W2 + b2).clamp(1e-6, 1 - 1e-6)")
    bad = manual_net(tmp_path, "confident", out_scale=6.0, **settings)
    good = manual_net(tmp_path, "unsure", out_scale=0.3, **settings)
    assert "ND103" in bad.codes()
    assert "ND103" not in good.codes()
    assert good.state("original") is RunState.HEALTHY, good.findings


# -- parameters rebound to new tensors every step ------------------------------------------------------

REBOUND = """
import torch

torch.manual_seed(0)
x = torch.linspace(-1, 1, 32).unsqueeze(1)
y = 2 * x + 1
w = torch.randn(1, requires_grad=True)
b = torch.zeros(1, requires_grad=True)
for step in range({steps}):
    loss = ((w * x + b - y) ** 2).mean()
    loss.backward()
    {update}
print("final_loss", loss.item())
"""

REBINDINGS = {
    "no_grad-then-requires_grad_": """with torch.no_grad():
        w = w {sign} 0.1 * w.grad
        b = b {sign} 0.1 * b.grad
    w.requires_grad_()
    b.requires_grad_()""",
    "detach": """w = (w {sign} 0.1 * w.grad).detach().requires_grad_()
    b = (b {sign} 0.1 * b.grad).detach().requires_grad_()""",
}


def rebinding_loop(tmp_path, style, *, sign="-", steps=50):
    script = tmp_path / f"rebound_{style}.py"
    update = REBINDINGS[style].format(sign=sign)
    script.write_text(textwrap.dedent(REBOUND).format(steps=steps, update=update))
    return nd.diagnose(str(script), timeout=120)


@pytest.mark.parametrize("style", sorted(REBINDINGS))
def test_a_loop_that_rebinds_its_parameters_is_observed_at_every_step(tmp_path, style):
    report = rebinding_loop(tmp_path, style)
    trace = report.runs["original"]
    assert trace.info.steps == 50
    for quantity in ("grad_norm", "update_ratio", "weight_norm"):
        steps, values = trace.series(quantity, "w, b")
        assert np.isfinite(values).sum() >= 2, quantity
    # the outputs are the rebound tensors', not the first step's: at the end they are 2x + 1
    assert trace.outputs.shape[0] >= 3
    assert np.allclose(trace.outputs[-1].ravel(), 2 * trace.probe_inputs.ravel() + 1, atol=0.05)
    assert report.state("original") is RunState.HEALTHY, report.findings


def test_a_rebinding_loop_that_climbs_the_gradient_is_flagged(tmp_path):
    report = rebinding_loop(tmp_path, "detach", sign="+", steps=30)
    assert report.runs["original"].info.steps == 30
    assert "ND503" in report.codes(at_least=nd.Severity.ERROR)


CLASSES = """
import torch

torch.manual_seed(0)
X = torch.randn(90, 2)
y = (X[:, 0] > 0).long() + (X[:, 1] > 0).long()      # three classes, as integer labels
W1 = (torch.randn(2, 16) * 0.7).requires_grad_()
b1 = torch.zeros(16, requires_grad=True)
W2 = (torch.randn(16, 3) * 0.3).requires_grad_()
b2 = torch.zeros(3, requires_grad=True)
for epoch in range(100):
    p = torch.softmax(torch.tanh(X @ W1 + b1) @ W2 + b2, dim=1)
    loss = {loss}
    loss.backward()
    with torch.no_grad():
        for t in (W1, b1, W2, b2):
            t -= 0.5 * t.grad
            t.grad.zero_()
print("final_loss", loss.item())
"""


def classes_loop(tmp_path, name, loss):
    script = tmp_path / f"{name}.py"
    script.write_text(textwrap.dedent(CLASSES).format(loss=loss))
    return nd.diagnose(str(script), timeout=120)


@pytest.mark.parametrize("loss, kind", [
    ("-torch.log(p[torch.arange(len(y)), y]).mean()", "ce"),
    ("-torch.log(p[range(len(y)), y]).mean()", "ce"),
    # a focal loss is of no kind netdoctor knows; after a softmax its integer targets are still classes
    ("-((1 - p[range(len(y)), y]) ** 2 * torch.log(p[range(len(y)), y])).mean()", None),
], ids=["torch.arange", "range", "focal"])
def test_a_hand_written_cross_entropy_on_integer_labels_is_judged_as_one(tmp_path, loss, kind):
    # 90 rows: the row index in the loss must be rebuilt for the 64 probe rows
    report = classes_loop(tmp_path, "labels", loss)
    trace = report.runs["original"]
    assert (trace.info.loss, trace.info.output) == (kind, "softmax")
    assert np.isfinite(trace.series("probe_loss")[1]).sum() >= 3
    assert report.state("original") is RunState.HEALTHY, report.findings


def test_squared_error_between_a_softmax_and_integer_labels_is_flagged(tmp_path):
    report = classes_loop(tmp_path, "labels_as_values", "((p - y[:, None].float()) ** 2).mean()")
    assert report.runs["original"].info.loss == "mse"
    assert "ND601" in report.codes(at_least=nd.Severity.ERROR)
