"""PyTorch through netdoctor: real training, hooked; the same rules judge the Trace.

Skipped cleanly where torch is not installed (CI installs it). Every network is tiny
and trains for a few dozen full-batch steps.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import netdoctor as nd  # noqa: E402
from netdoctor.trace import MODEL  # noqa: E402

XOR_X = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=torch.float32)
XOR_Y = torch.tensor([[0.0], [1.0], [1.0], [0.0]])


def fit(model, loss_fn, X, y, steps=60, lr=0.5, optimizer=None, zero=True, step=True, between=None):
    opt = optimizer or torch.optim.SGD(model.parameters(), lr=lr)

    def train():
        for i in range(steps):
            if zero:
                opt.zero_grad()
            loss = loss_fn(model(X), y)
            loss.backward()
            if step:
                opt.step()
            if between is not None:
                between(i)

    return nd.diagnose(model, train)


def codes(report, at_least="warning"):
    return report.codes(at_least=nd.Severity.parse(at_least))


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


def xor_net():
    return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1), nn.Sigmoid())


def test_a_torch_module_is_observed_in_the_common_vocabulary():
    model = xor_net()
    report = fit(model, nn.BCELoss(), XOR_X, XOR_Y, steps=300, lr=1.0)
    trace = report.runs["original"]
    assert trace.info.steps == 300 and trace.info.source == "torch"
    # layers named as torch names them, activations identified from what they compute
    assert [(layer.name, layer.activation) for layer in trace.info.layers] == [("0", "tanh"), ("2", "sigmoid")]
    for quantity in ("grad_norm", "weight_norm", "update_ratio", "act_std", "sat_frac"):
        assert trace.has(quantity, "0"), quantity
    assert trace.outputs.shape[1:] == (4, 1)
    assert not any(f.is_error for f in report.findings), [f.code for f in report.findings]
    _, loss = trace.series("loss")
    assert loss[-1] < 0.2 * loss[0]


def test_the_same_network_gives_the_same_series_as_the_reference_mlp():
    """Parity: one network, two producers (reference MLP and torch hooks), one vocabulary."""
    from netdoctor.mlp import MLP
    from netdoctor.reference import run_reference

    mlp = MLP([2, 3, 1], activation="tanh", output="sigmoid", loss="bce", lr=0.5, seed=3)
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 1, 1, 0])
    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1), nn.Sigmoid()).double()
    with torch.no_grad():  # the same initial weights (torch stores them transposed)
        for layer, W, b in zip((model[0], model[2]), mlp.weights, mlp.biases):
            layer.weight.copy_(torch.from_numpy(W.T.copy()))
            layer.bias.copy_(torch.from_numpy(np.ravel(b).copy()))
    reference = run_reference(mlp, X, y, epochs=40)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y[:, None].astype(float))

    def train():
        for _ in range(40):
            opt.zero_grad()
            nn.functional.binary_cross_entropy(model(Xt), yt).backward()
            opt.step()

    hooked = nd.diagnose(model, train, outputs_every=1, params_every=1).runs["original"]
    for quantity, layer in (("loss", MODEL), ("grad_norm", "layer1"), ("update_ratio", "layer2"),
                            ("weight_norm", "layer2"), ("act_std", "layer1")):
        torch_layer = {"layer1": "0", "layer2": "2"}.get(layer, layer)
        steps_r, ref = reference.series(quantity, layer)
        steps_t, got = hooked.series(quantity, torch_layer)
        common, ir, it = np.intersect1d(steps_r, steps_t, return_indices=True)
        keep = np.isfinite(ref[ir]) & np.isfinite(got[it])
        assert keep.sum() >= 20, quantity
        np.testing.assert_allclose(got[it][keep], ref[ir][keep], rtol=1e-6, atol=1e-9, err_msg=quantity)


class SoftmaxNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(2, 8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        return torch.softmax(self.fc2(torch.relu(self.fc1(x))), dim=1)


def blobs():
    g = torch.Generator().manual_seed(1)
    centres = torch.tensor([[0.0, 2.0], [-1.7, -1.0], [1.7, -1.0]])
    labels = torch.arange(3).repeat_interleave(10)
    return centres[labels] + 0.4 * torch.randn(30, 2, generator=g), labels


def test_softmax_before_cross_entropy_is_named_and_the_logits_version_is_not():
    X, labels = blobs()
    bad = fit(SoftmaxNet(), nn.CrossEntropyLoss(), X, labels, steps=40)
    assert "ND701" in codes(bad)
    finding = next(f for f in bad.findings if f.code == "ND701")
    assert finding.location is not None and finding.location.line is not None

    good_model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3))
    good = fit(good_model, nn.CrossEntropyLoss(), X, labels, steps=40)
    assert "ND701" not in codes(good)


def test_mse_between_n_by_1_and_n_broadcasts_and_is_flagged():
    X = torch.linspace(-2, 2, 32)[:, None]
    y = torch.sin(X[:, 0])
    model = nn.Sequential(nn.Linear(1, 16), nn.Tanh(), nn.Linear(16, 1))
    with pytest.warns(UserWarning):  # torch itself only warns
        bad = fit(model, nn.MSELoss(), X, y, steps=30, lr=0.1)
    assert "ND708" in codes(bad)
    good = fit(nn.Sequential(nn.Linear(1, 16), nn.Tanh(), nn.Linear(16, 1)), nn.MSELoss(), X, y[:, None],
               steps=30, lr=0.1)
    assert "ND708" not in codes(good)


def test_gradients_never_zeroed_in_an_optimizer_loop():
    bad = fit(xor_net(), nn.BCELoss(), XOR_X, XOR_Y, steps=40, zero=False)
    assert "ND704" in codes(bad)
    good = fit(xor_net(), nn.BCELoss(), XOR_X, XOR_Y, steps=40)
    assert "ND704" not in codes(good)


def test_backward_without_step_and_parameters_outside_the_optimizer():
    no_step = fit(xor_net(), nn.BCELoss(), XOR_X, XOR_Y, steps=10, step=False)
    assert "ND705" in codes(no_step)
    model = xor_net()
    partial = fit(model, nn.BCELoss(), XOR_X, XOR_Y, steps=20,
                  optimizer=torch.optim.SGD(model[0].parameters(), lr=0.5))
    assert "ND705" in codes(partial)


def test_a_frozen_layer_and_training_in_eval_mode():
    model = xor_net()
    for p in model[0].parameters():
        p.requires_grad = False
    frozen = fit(model, nn.BCELoss(), XOR_X, XOR_Y, steps=20,
                 optimizer=torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5))
    assert "ND706" in codes(frozen)

    dropout = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Dropout(0.2), nn.Linear(8, 1), nn.Sigmoid())
    dropout.eval()
    mixed = fit(dropout, nn.BCELoss(), XOR_X, XOR_Y, steps=20)
    assert "ND707" in codes(mixed)
    dropout.train()
    fine = fit(dropout, nn.BCELoss(), XOR_X, XOR_Y, steps=20)
    assert "ND707" not in codes(fine)


def test_stacked_linear_layers_are_one_linear_map():
    linear = nn.Sequential(nn.Linear(2, 8), nn.Linear(8, 1), nn.Sigmoid())
    report = fit(linear, nn.BCELoss(), XOR_X, XOR_Y, steps=30)
    assert "ND709" in codes(report)
    assert "ND709" not in codes(fit(xor_net(), nn.BCELoss(), XOR_X, XOR_Y, steps=30))


def test_watch_and_the_explicit_torch_watch():
    model = xor_net()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    with nd.watch(model) as w:
        for _ in range(30):
            opt.zero_grad()
            nn.functional.binary_cross_entropy(model(XOR_X), XOR_Y).backward()
            opt.step()
    assert w.report.runs["original"].info.steps == 30

    import netdoctor.torch as ndt

    with ndt.watch(model, opt) as w2:
        for _ in range(10):
            opt.step()  # no backward: nothing to learn from, but 10 steps happen
    assert w2.trace.info.steps == 10


def test_seeding_reaches_torch_manual_seed():
    from netdoctor.seeding import seeded_rngs

    def draw(run):
        with seeded_rngs(run):
            torch.manual_seed(7)  # the script's own seed: varied per run, reproducible
            return torch.randn(3)

    assert torch.equal(draw(1), draw(1))
    assert not torch.equal(draw(1), draw(2))
    torch.manual_seed(7)
    plain = torch.randn(3)
    torch.manual_seed(7)
    assert torch.equal(plain, torch.randn(3))  # the patch is undone after the block
