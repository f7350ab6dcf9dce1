"""The rebuilt network and the gradient check on user code (netdoctor.observe.rebuild/.gradients).

The rebuilt network's gradients are checked against finite differences computed
here, independently; the gradient check is then run on claims that are right,
right up to a factor, wrong in one layer, and applied as uphill updates.
"""

from __future__ import annotations

import numpy as np
import pytest

from netdoctor.observe.arrays import Found, Path, Root
from netdoctor.observe.chain import find_chain
from netdoctor.observe.gradients import Batch, Claim, check_step
from netdoctor.observe.rebuild import Rebuilt, layer_function, loss_value

rng = np.random.default_rng(1)


@pytest.fixture(autouse=True)
def _same_draws_in_any_order():
    # Each test draws its network afresh from one seed, whatever ran before it on this worker
    # (a few of these checks hinge on chance alignments of small arrays).
    global rng
    rng = np.random.default_rng(1)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def found(namespace: dict) -> list[Found]:
    return [Found(Path(Root("globals", k, obj=namespace)), v) for k, v in namespace.items()]


def two_layer(hidden: str = "tanh", output: str = "sigmoid", cols: bool = False):
    """Arrays of a 3-4-2 network after one forward pass, and its rebuilt form."""
    acts = {"tanh": np.tanh, "sigmoid": sigmoid, "relu": lambda z: np.maximum(z, 0),
            "softmax": lambda z: np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)}
    X = rng.normal(size=(6, 3))
    W1, b1 = rng.normal(size=(3, 4)), rng.normal(size=(1, 4))
    W2, b2 = rng.normal(size=(4, 2)), rng.normal(size=(1, 2))
    z1 = X @ W1 + b1
    a1 = acts[hidden](z1)
    z2 = a1 @ W2 + b2
    a2 = acts[output](z2)
    ns = dict(X=X, W1=W1, b1=b1, z1=z1, a1=a1, W2=W2, b2=b2, z2=z2, a2=a2)
    if cols:
        ns = {k: (v.T if k not in ("W1", "W2") else v.T) for k, v in ns.items()}
    spec = find_chain(found(ns))
    rebuilt = Rebuilt(spec, [layer_function(l) for l in spec.layers])
    params = [ns["W1"], ns["b1"], ns["W2"], ns["b2"]]
    return ns, spec, rebuilt, params


def fd_gradients(rebuilt, params, X, Y, kind, reduction, h=1e-6):
    """Central differences, entry by entry, written out here on purpose."""
    out = []
    for p in params:
        g = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            keep = p[idx]
            p[idx] = keep + h
            plus = rebuilt.loss(rebuilt.from_user(params), X, Y, kind, reduction)
            p[idx] = keep - h
            minus = rebuilt.loss(rebuilt.from_user(params), X, Y, kind, reduction)
            p[idx] = keep
            g[idx] = (plus - minus) / (2 * h)
        out.append(g)
    return out


@pytest.mark.parametrize("hidden, output, kind", [
    ("tanh", "sigmoid", "bce"), ("sigmoid", "sigmoid", "mse"), ("relu", "softmax", "ce"), ("tanh", "softmax", "mse"),
])
@pytest.mark.parametrize("cols", [False, True])
def test_rebuilt_backprop_matches_finite_differences(hidden, output, kind, cols):
    ns, spec, rebuilt, params = two_layer(hidden, output, cols)
    X = ns["X"].T if cols else ns["X"]
    Y = np.eye(2)[rng.integers(0, 2, size=6)]
    true = rebuilt.to_user(rebuilt.gradients(rebuilt.from_user(params), X, Y, kind))
    numeric = fd_gradients(rebuilt, [p.copy() for p in params], X, Y, kind, "sum")
    for t, n in zip(true, numeric):
        assert t.shape == n.shape
        assert np.linalg.norm(t - n) <= 1e-6 * max(np.linalg.norm(n), 1e-8) + 1e-7


def test_rebuilt_forward_reproduces_the_observed_output():
    ns, spec, rebuilt, params = two_layer()
    _, acts = rebuilt.forward(rebuilt.from_user(params), ns["X"])
    assert np.allclose(acts[-1], ns["a2"])


def _claims(ns, spec, rebuilt, params, kind, reduction):
    X = ns["X"]
    Y = np.eye(2)[[0, 1, 1, 0, 1, 0]]
    n, k = Y.shape
    true = rebuilt.to_user(rebuilt.gradients(rebuilt.from_user(params), X, Y, kind))
    from netdoctor.observe.rebuild import REDUCTIONS

    factor = REDUCTIONS[reduction](n, k)
    batch = Batch(X=X, out=ns["a2"], targets={"as_is": Y})
    names = [("layer1", "weight", "W1"), ("layer1", "bias", "b1"), ("layer2", "weight", "W2"), ("layer2", "bias", "b2")]
    return [t * factor for t in true], batch, names


def test_right_gradients_pass_and_the_loss_is_recognised():
    ns, spec, rebuilt, params = two_layer()
    true, batch, names = _claims(ns, spec, rebuilt, params, "bce", "mean")
    payload = check_step(rebuilt, params, names, [batch], Claim("gradients", true), step=1)
    assert payload["loss_kind"] == "bce" and payload["reduction"] == "mean"
    assert all(row["rel_err"] < 1e-6 for row in payload["params"])


def test_a_constant_factor_shows_as_scale():
    ns, spec, rebuilt, params = two_layer()
    true, batch, names = _claims(ns, spec, rebuilt, params, "bce", "mean")
    scaled = [t * 0.37 for t in true]                 # no usual reduction has this factor
    payload = check_step(rebuilt, params, names, [batch], Claim("gradients", scaled), step=1)
    for row in payload["params"]:
        assert row["cosine"] > 0.999 and abs(row["scale"] - 0.37) < 0.01


def test_a_wrong_hidden_layer_is_found_and_the_output_layer_is_not_blamed():
    ns, spec, rebuilt, params = two_layer()
    true, batch, names = _claims(ns, spec, rebuilt, params, "bce", "mean")
    wrong = list(true)
    wrong[0] = true[0] + rng.normal(size=true[0].shape) * np.abs(true[0]).mean() * 3
    payload = check_step(rebuilt, params, names, [batch], Claim("gradients", wrong), step=1)
    errors = {row["name"]: row["rel_err"] for row in payload["params"]}
    assert errors["W1"] > 1e-2 and errors["W2"] < 1e-6


def test_updates_with_an_unknown_learning_rate_and_uphill_updates():
    ns, spec, rebuilt, params = two_layer()
    true, batch, names = _claims(ns, spec, rebuilt, params, "bce", "mean")
    lr = 0.3
    downhill = [-(lr * t) for t in true]              # the parameter changes, W_new - W_old
    payload = check_step(rebuilt, params, names, [batch], Claim("updates", [-d for d in downhill]), step=1)
    assert payload["claimed"] == "updates" and abs(payload["lr_fit"] - lr) < 1e-6
    assert all(abs(row["scale"] - 1) < 1e-6 for row in payload["params"])
    uphill = [-d for d in downhill]
    payload = check_step(rebuilt, params, names, [batch], Claim("updates", [-u for u in uphill]), step=1)
    assert payload["lr_fit"] < 0
    assert all(row["cosine"] < -0.999 for row in payload["params"])


def test_a_network_that_does_not_reproduce_the_output_is_not_checked():
    ns, spec, rebuilt, params = two_layer()
    true, batch, names = _claims(ns, spec, rebuilt, params, "bce", "mean")
    batch.out = batch.out + 0.1                        # not what this network computes
    assert check_step(rebuilt, params, names, [batch], Claim("gradients", true), step=1) is None


def test_loss_values_follow_their_reductions():
    out = np.array([[0.2, 0.7], [0.9, 0.4]])
    Y = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert loss_value("mse", "mean_all", out, Y) == pytest.approx(np.mean((out - Y) ** 2))
    assert loss_value("mse", "half_sum", out, Y) == pytest.approx(0.5 * np.sum((out - Y) ** 2))
    bce = -np.mean(Y * np.log(out) + (1 - Y) * np.log(1 - out))
    assert loss_value("bce", "mean_all", out, Y) == pytest.approx(bce)
    assert loss_value("ce", "mean", out, Y) == pytest.approx(-np.sum(Y * np.log(out)) / 2)


def test_adam_updates_are_not_taken_for_gradients():
    """Under Adam an update is -lr * m / sqrt(v), not -lr * g: no check, rather than a false one."""
    ns, spec, rebuilt, params = two_layer()
    true, batch, names = _claims(ns, spec, rebuilt, params, "bce", "mean")
    lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-7
    # Adam's second step: moments from an earlier gradient (perturbed) and this one.
    earlier = [t * (1 + rng.normal(0, 0.8, t.shape)) for t in true]
    m = [(b1 * (1 - b1) * e + (1 - b1) * t) / (1 - b1 ** 2) for e, t in zip(earlier, true)]
    v = [(b2 * (1 - b2) * e ** 2 + (1 - b2) * t ** 2) / (1 - b2 ** 2) for e, t in zip(earlier, true)]
    steps = [lr * mi / (np.sqrt(vi) + eps) for mi, vi in zip(m, v)]   # -change: what "updates" claims
    payload = check_step(rebuilt, params, names, [batch], Claim("updates", steps), step=2)
    assert payload["loss_kind"] == "bce" and "not_checked" in payload   # loss settled, no verdict
    assert all(np.isnan(row["rel_err"]) for row in payload["params"])
    # Plain descent with a broken hidden layer is still checked, and the broken layer found.
    plain = [lr * t for t in true]
    plain[0] = plain[0] + rng.normal(size=plain[0].shape) * np.abs(plain[0]).mean() * 3
    payload = check_step(rebuilt, params, names, [batch], Claim("updates", plain), step=2)
    errors = {row["name"]: row["rel_err"] for row in payload["params"]}
    assert errors["W1"] > 1e-2 and errors["W2"] < 1e-6


def test_a_bug_that_bends_every_layer_is_still_checked_from_updates():
    """Every layer's update unrelated to its gradient (same-size steps whose signs agree with
    the gradient's on every other entry, so at chance by construction): no layer is plain
    and the signs follow nothing, so this is no adaptive optimizer: it is checked, and found
    wrong."""
    ns, spec, rebuilt, params = two_layer()
    true, batch, names = _claims(ns, spec, rebuilt, params, "bce", "mean")
    scalar = [0.01 * np.sign(t) * np.where(np.arange(t.size) % 2, 1.0, -1.0).reshape(t.shape) for t in true]
    payload = check_step(rebuilt, params, names, [batch], Claim("updates", scalar), step=2)
    assert payload is not None
    assert max(row["rel_err"] for row in payload["params"]) > 1e-2


def test_an_l2_term_in_the_gradient_is_recognised_and_nothing_else_is():
    import numpy as np

    from netdoctor.observe.gradients import _weight_decay

    rng = np.random.default_rng(0)
    W1, b1, W2 = rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=(4, 2))
    params = [W1, b1, W2]
    names = [("layer1", "weight", "W1"), ("layer1", "bias", "b1"), ("layer2", "weight", "W2")]
    true = [rng.normal(size=p.shape) for p in params]
    with_l2 = [true[0] + 1e-3 * W1, true[1], true[2] + 1e-3 * W2]          # dW += reg * W
    assert abs(_weight_decay(params, names, with_l2, true) - 1e-3) < 1e-12
    assert _weight_decay(params, names, true, true) is None                  # nothing to explain
    wrong = [true[0] * 1.5, true[1], true[2]]                                # a backprop bug
    assert _weight_decay(params, names, wrong, true) is None


def test_cosine_of_tiny_gradients_does_not_underflow():
    # A saturated layer's gradients can be ~1e-150: their squared norms multiply to 0.
    from netdoctor.observe.rebuild import cosine_and_scale

    v = rng.normal(size=6) * 1e-150
    cos, scale = cosine_and_scale(2 * v, v)
    assert cos == pytest.approx(1.0) and scale == pytest.approx(2.0)
    assert np.isnan(cosine_and_scale(v, np.zeros(6))[0])


def _one_output_net(n_samples: int):
    """A 3-4-1 tanh/sigmoid network (found from a pass over 6 samples), and a batch of its
    first `n_samples` samples with the exact MSE gradients on them."""
    X = rng.normal(size=(6, 3))
    W1, b1 = rng.normal(size=(3, 4)), rng.normal(size=(1, 4))
    W2, b2 = rng.normal(size=(4, 1)), rng.normal(size=(1, 1))
    z1 = X @ W1 + b1
    a1 = np.tanh(z1)
    z2 = a1 @ W2 + b2
    a2 = sigmoid(z2)
    ns = dict(X=X, W1=W1, b1=b1, z1=z1, a1=a1, W2=W2, b2=b2, z2=z2, a2=a2)
    spec = find_chain(found(ns))
    rebuilt = Rebuilt(spec, [layer_function(l) for l in spec.layers])
    X, a2 = X[:n_samples], a2[:n_samples]
    Y = (rng.random(size=(n_samples, 1)) > 0.5).astype(float)
    true = rebuilt.to_user(rebuilt.gradients(rebuilt.from_user([W1, b1, W2, b2]), X, Y, "mse"))
    names = [("layer1", "weight", "W1"), ("layer1", "bias", "b1"), ("layer2", "weight", "W2"), ("layer2", "bias", "b2")]
    return rebuilt, [W1, b1, W2, b2], names, Batch(X=X, out=a2, targets={"as_is": Y}), true


def test_one_sample_through_one_sigmoid_unit_does_not_tell_mse_from_bce():
    rebuilt, params, names, batch, mse_gradients = _one_output_net(1)
    payload = check_step(rebuilt, params, names, [batch], Claim("gradients", mse_gradients), step=1)
    assert payload["loss_ambiguous"] == ["bce", "mse"]


def test_several_samples_tell_mse_from_bce():
    rebuilt, params, names, batch, mse_gradients = _one_output_net(6)
    payload = check_step(rebuilt, params, names, [batch], Claim("gradients", mse_gradients), step=1)
    assert "loss_ambiguous" not in payload and payload["loss_kind"] == "mse"
    assert all(row["rel_err"] < 1e-6 for row in payload["params"])
