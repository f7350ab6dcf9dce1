"""The reference MLP's backprop against finite differences, for every activation x output x loss.

Two oracles: netdoctor.gradcheck.check and a plain central-difference loop written
here. The losses themselves are checked against textbook formulas written here, so
the finite differences differentiate the right thing.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from netdoctor import activations, gradcheck, losses
from netdoctor.mlp import MLP

H = 1e-5
KINKED = ("relu", "leaky_relu")
COMBOS = list(itertools.product(activations.HIDDEN, activations.OUTPUTS, losses.LOSSES))


def fd_gradients(model, X, Y, h=H):
    """Central differences of model.loss_at, one entry at a time, on copies' positions."""
    grads = []
    for _, _, p in model.params():
        g = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            keep = p[idx]
            p[idx] = keep + h
            up = model.loss_at(X, Y)
            p[idx] = keep - h
            down = model.loss_at(X, Y)
            p[idx] = keep
            g[idx] = (up - down) / (2 * h)
        grads.append(g)
    return grads


def rel_err(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300)


def away_from_kinks(model, X, margin=1e-3):
    """True if no hidden pre-activation sits within `margin` of 0 (relu's kink)."""
    fwd = model.forward(X)
    return all(np.abs(z).min() > margin for z in fwd.zs[:-1])


def make_case(activation, output, loss, layers=(3, 5, 4, 3)):
    """A small net with random biases, random data and valid targets for the loss."""
    for seed in range(200):
        model = MLP(list(layers), activation=activation, output=output, loss=loss, init="xavier", seed=seed)
        rng = np.random.default_rng(1000 + seed)
        for b in model.biases:
            b[:] = rng.normal(scale=0.3, size=b.shape)
        if output == "linear" and loss in ("bce", "ce"):
            # keep outputs well inside (0, 1), where these losses are defined and smooth
            model.weights[-1] *= 0.2
            model.biases[-1][:] = 0.5
        X = rng.normal(size=(6, layers[0]))
        labels = rng.integers(0, layers[-1], size=6)
        Y = np.eye(layers[-1])[labels]
        if activation not in KINKED or away_from_kinks(model, X):
            return model, X, Y
    raise AssertionError("no seed kept the relu pre-activations away from 0")


@pytest.mark.parametrize("activation, output, loss", COMBOS)
def test_backprop_matches_finite_differences(activation, output, loss):
    model, X, Y = make_case(activation, output, loss)
    claimed = model.gradients(X, Y)
    numeric = fd_gradients(model, X, Y)
    assert sum(np.linalg.norm(n) for n in numeric) > 1e-3  # the check is not vacuous
    for (name, kind, _), g, n in zip(model.params(), claimed, numeric):
        assert rel_err(g, n) <= 1e-6, f"{name}.{kind}: backprop {g} vs finite differences {n}"

    checks = gradcheck.check(
        [p for _, _, p in model.params()], lambda: model.loss_at(X, Y), claimed, h=H, max_entries=10**6
    )
    for (name, kind, p), chk in zip(model.params(), checks):
        assert chk.n_checked == p.size
        assert chk.rel_err <= 1e-6, f"{name}.{kind}: {chk}"


@pytest.mark.parametrize("output, loss", [("sigmoid", "bce"), ("softmax", "ce"), ("linear", "mse")])
def test_single_sample_and_single_output(output, loss):
    n_out = 2 if output == "softmax" else 1
    model = MLP([2, 3, n_out], activation="tanh", output=output, loss=loss, seed=3)
    X = np.array([[0.3, -1.2]])
    Y = np.array([[1.0, 0.0]]) if n_out == 2 else np.array([[1.0]])
    for g, n in zip(model.gradients(X, Y), fd_gradients(model, X, Y)):
        assert rel_err(g, n) <= 1e-6


@pytest.mark.parametrize("name", list(activations.ACTIVATIONS))
def test_activation_derivatives_match_finite_differences(name):
    entry = activations.ACTIVATIONS[name]
    z = np.linspace(-6, 6, 121) + 0.013  # shifted so that no point is on relu's kink
    if entry.elementwise:
        numeric = (entry.function(z + H) - entry.function(z - H)) / (2 * H)
        assert np.allclose(entry.derivative(z), numeric, atol=1e-8)
    else:  # softmax: its diagonal, d s_i / d z_i, one unit at a time
        Z = z[:120].reshape(-1, 3)
        for i in range(3):
            up, down = Z.copy(), Z.copy()
            up[:, i] += H
            down[:, i] -= H
            numeric = (entry.function(up)[:, i] - entry.function(down)[:, i]) / (2 * H)
            assert np.allclose(entry.derivative(Z)[:, i], numeric, atol=1e-8)


def test_softmax_backward_is_the_jacobian_product():
    rng = np.random.default_rng(0)
    z, g = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    a = activations.softmax(z)
    # J^T g by finite differences of the scalar sum(g * softmax(z))
    numeric = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        up, down = z.copy(), z.copy()
        up[idx] += H
        down[idx] -= H
        numeric[idx] = (np.sum(g * activations.softmax(up)) - np.sum(g * activations.softmax(down))) / (2 * H)
    assert np.allclose(activations.softmax_backward(a, g), numeric, atol=1e-8)


def test_sigmoid_is_stable_in_the_tails():
    z = np.array([-800.0, -40.0, 0.0, 40.0, 800.0])
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow to 0 is fine
        s = activations.sigmoid(z)
    assert np.all(np.isfinite(s))
    assert s[2] == 0.5 and s[0] == 0.0 and s[-1] == 1.0
    assert s[1] == pytest.approx(np.exp(-40.0), rel=1e-12)  # exact in the tail, not 0


@pytest.mark.parametrize("loss", list(losses.LOSSES))
def test_losses_are_the_textbook_means(loss):
    rng = np.random.default_rng(1)
    out = rng.uniform(0.05, 0.95, size=(5, 3))
    Y = np.eye(3)[rng.integers(0, 3, size=5)]
    n, k = out.shape
    expected = {
        "mse": sum((out[i, j] - Y[i, j]) ** 2 for i in range(n) for j in range(k)) / (n * k),
        "bce": -sum(
            Y[i, j] * np.log(out[i, j]) + (1 - Y[i, j]) * np.log(1 - out[i, j]) for i in range(n) for j in range(k)
        ) / (n * k),
        "ce": -sum(Y[i, j] * np.log(out[i, j]) for i in range(n) for j in range(k)) / n,
    }[loss]
    assert losses.LOSSES[loss].value(out, Y) == pytest.approx(expected, rel=1e-12)
    model = MLP([3, 3], output="sigmoid", loss=loss)
    assert model.loss_of(out, Y) == pytest.approx(expected, rel=1e-12)
    # and the gradient w.r.t. the output, by finite differences
    numeric = np.zeros_like(out)
    for idx in np.ndindex(out.shape):
        up, down = out.copy(), out.copy()
        up[idx] += H
        down[idx] -= H
        numeric[idx] = (losses.LOSSES[loss].value(up, Y) - losses.LOSSES[loss].value(down, Y)) / (2 * H)
    assert np.allclose(losses.LOSSES[loss].gradient(out, Y), numeric, atol=1e-7)


def test_clipped_logs_stay_finite():
    out = np.array([[0.0, 1.0], [1.0, 0.0]])
    Y = np.array([[1.0, 0.0], [0.0, 1.0]])
    for loss in ("bce", "ce"):
        assert np.isfinite(losses.LOSSES[loss].value(out, Y))
        assert np.all(np.isfinite(losses.LOSSES[loss].gradient(out, Y)))


def test_uninformed_loss():
    Y3 = np.eye(3)[[0, 1, 2, 1]]
    assert losses.uninformed_loss("ce", Y3) == pytest.approx(np.log(3))
    assert losses.uninformed_loss("ce", Y3) == pytest.approx(losses.ce(np.full((4, 3), 1 / 3), Y3))
    yb = np.array([0.0, 1.0, 1.0, 0.0])
    assert losses.uninformed_loss("bce", yb) == pytest.approx(losses.bce(np.full((4, 1), 0.5), yb[:, None]))
    yr = np.array([1.0, 2.0, 4.0])
    assert losses.uninformed_loss("mse", yr) == pytest.approx(losses.mse(np.full((3, 1), yr.mean()), yr[:, None]))
    with pytest.raises(ValueError, match="mse"):
        losses.uninformed_loss("hinge", yr)
