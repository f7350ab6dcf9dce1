"""Every fault changes the reference MLP the way its documentation says."""

from __future__ import annotations

import re

import numpy as np
import pytest

from netdoctor import activations, faults, gradcheck, identify
from netdoctor.mlp import MLP

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_y = np.array([0, 1, 1, 0])

# The primary rule code of each fault, as the project's issue assigns them.
PRIMARY = {
    "double_sigmoid": "ND303",
    "derivative_of_activation": "ND304",
    "missing_derivative": "ND304",
    "output_error_as_hidden_delta": "ND203",
    "wrong_layer_activation": "ND203",
    "wrong_update_sign": "ND503",
    "bias_not_updated": "ND404",
    "no_bias": "ND405",
    "uniform01_init": "ND402",
    "zero_init": "ND401",
    "lr_too_high": "ND501",
    "lr_too_low": "ND502",
    "softmax_wrong_axis": "ND303",
    "gradient_wrong_scale": "ND204",
}


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def config_for(name, **overrides):
    """A small net in which the fault shows: XOR, plus the settings the fault needs."""
    kwargs = dict(layers=[2, 4, 1], activation="sigmoid", output="sigmoid", loss="bce", lr=0.5, seed=3)
    kwargs.update(faults.get(name).needs)
    if kwargs.get("output") == "softmax":
        kwargs["layers"] = [2, 4, 2]
    kwargs.update(overrides)
    return kwargs


def check_gradients(model, X=XOR_X, y=XOR_y):
    X, Y = model.prepare(X, y)
    params = [p for _, _, p in model.params()]
    return gradcheck.check(params, lambda: model.loss_at(X, Y), model.gradients(X, Y), max_entries=10**6)


# --- the catalogue --------------------------------------------------------------------------------


def test_catalogue_has_every_listed_fault_with_its_primary_code():
    assert len(faults.FAULTS) >= 14
    for name, code in PRIMARY.items():
        assert faults.FAULTS[name].expected[0] == code


@pytest.mark.parametrize("name", list(faults.FAULTS))
def test_every_fault_is_documented(name):
    fault = faults.get(name)
    assert fault.name == name
    assert fault.summary and "\n" not in fault.summary
    assert "::" in fault.doc  # shows how the bug looks in code
    assert fault.expected and all(re.fullmatch(r"ND[1-9]\d\d", code) for code in fault.expected)
    assert fault.expected[0] in fault.doc  # says which rule should catch it
    assert callable(fault.apply)


def test_unknown_fault():
    with pytest.raises(ValueError, match="double_sigmoid"):
        faults.get("nope")


@pytest.mark.parametrize("name", list(faults.FAULTS))
def test_every_fault_changes_behaviour_and_stays_reproducible(name):
    """Against the healthy twin (same config and seed): something observable differs."""
    kwargs = config_for(name)
    healthy, faulty, again = MLP(**kwargs), MLP(**kwargs, faults=[name]), MLP(**kwargs, faults=[name])
    X, Y = healthy.prepare(XOR_X, XOR_y)

    def observe(model):
        fwd = model.forward(X)
        grads = model.backward(fwd, Y)
        start = [p.copy() for _, _, p in model.params()]
        model.fit(X, Y, epochs=3)
        end = [p.copy() for _, _, p in model.params()]
        return [fwd.out, *grads.dW, *start, *end, np.array([model.lr])]

    h, f, g = observe(healthy), observe(faulty), observe(again)
    assert len(h) != len(f) or any(a.shape != b.shape or not np.allclose(a, b) for a, b in zip(h, f))
    assert len(f) == len(g) and all(np.array_equal(a, b) for a, b in zip(f, g))


# --- activation faults ---------------------------------------------------------------------------


def test_double_sigmoid_is_the_seeds_function_on_every_layer():
    model = MLP([2, 2, 2, 2], init="uniform01", batch_size=1, faults=["double_sigmoid"])
    z = np.linspace(-10, 10, 101)
    seeds_g = 1.0 / (1.0 + sigmoid(-z))  # the seed's 1/(1+expit(-x)), written out here
    for l in range(3):
        f = model.layer_function(l)
        assert np.allclose(f(z), seeds_g)
        # 1/(1 + sigmoid(0)) = 1/1.5: NOT 0.731 (that is sigmoid(1), the top of sigmoid(sigmoid(z)))
        assert f(np.zeros(1))[0] == pytest.approx(1.0 / 1.5)
        assert f(z).min() > 0.5 and f(z).max() < 1.0
    # the seed's derivative g(z)(1 - g(z)) of the faulty g, and out - Y at the output
    assert np.allclose(model.derivative_function(0)(z), seeds_g * (1 - seeds_g))
    X, Y = model.prepare(XOR_X, XOR_y)
    fwd = model.forward(X)
    assert np.allclose(model.backward(fwd, Y).deltas[-1], (fwd.out - Y) / len(X))


def test_double_sigmoid_reproduces_the_seed_outputs_pinned_near_half():
    model = MLP([2, 2, 2, 2], init="uniform01", batch_size=1, lr=0.1, faults=["double_sigmoid"])
    model.fit(XOR_X, XOR_y, epochs=300)
    out = model.predict(XOR_X)
    assert np.all(out > 0.5)                       # the range the fault allows
    assert out.std(axis=0).max() < 1e-2            # the same answer for every input
    assert len(set(model.predict_classes(XOR_X))) == 1


def test_softmax_wrong_axis_normalises_over_the_batch():
    model = MLP([2, 4, 3], output="softmax", loss="ce", faults=["softmax_wrong_axis"], seed=1)
    model.biases[-1][:] = [0.3, -0.2, 0.1]
    out = model.predict(np.random.default_rng(0).normal(size=(5, 2)))
    assert np.allclose(out.sum(axis=0), 1.0)
    assert not np.allclose(out.sum(axis=1), 1.0)


# --- backprop faults -------------------------------------------------------------------------------


def test_derivative_of_activation_is_f_prime_of_a():
    model = MLP([2, 4, 4, 1], activation="sigmoid", faults=["derivative_of_activation"])
    z = np.linspace(-6, 6, 61)
    a = sigmoid(z)
    for l in range(2):
        assert np.allclose(model.derivative_function(l)(z), sigmoid(a) * (1 - sigmoid(a)))
    assert model.derivative_function(2) is activations.sigmoid_derivative  # output untouched


def test_missing_derivative_is_constant_one():
    model = MLP([2, 4, 1], activation="tanh", faults=["missing_derivative"])
    z = np.linspace(-6, 6, 61)
    assert np.array_equal(model.derivative_function(0)(z), np.ones_like(z))


def test_output_error_as_hidden_delta_skips_the_weights():
    model = MLP([2, 4, 1], activation="tanh", faults=["output_error_as_hidden_delta"], seed=1)
    X, Y = model.prepare(XOR_X, XOR_y)
    fwd = model.forward(X)
    grads = model.backward(fwd, Y)
    assert np.allclose(grads.deltas[0], grads.deltas[-1] * (1 - np.tanh(fwd.zs[0]) ** 2))


def test_wrong_layer_activation_uses_another_layers_values():
    square = MLP([2, 2, 2, 2], faults=["wrong_layer_activation"], seed=1)
    X, Y = square.prepare(XOR_X, XOR_y)
    fwd = square.forward(X)
    grads = square.backward(fwd, Y)
    assert np.allclose(grads.dW[0], fwd.acts[1].T @ grads.deltas[0])  # the layer's own output
    narrow = MLP([2, 4, 1], faults=["wrong_layer_activation"], seed=1)
    X, Y = narrow.prepare(XOR_X, XOR_y)
    fwd = narrow.forward(X)
    grads = narrow.backward(fwd, Y)
    assert np.allclose(grads.dW[0], X.T @ grads.deltas[0])  # nothing else fits layer 1
    assert np.allclose(grads.dW[1], fwd.zs[0].T @ grads.deltas[1])  # z1 where a1 belongs


def test_gradient_wrong_scale_is_n_times_the_mean_gradient():
    kwargs = config_for("gradient_wrong_scale")
    healthy, faulty = MLP(**kwargs), MLP(**kwargs, faults=["gradient_wrong_scale"])
    for g_ok, g_bad in zip(healthy.gradients(XOR_X, XOR_y), faulty.gradients(XOR_X, XOR_y)):
        assert np.allclose(g_bad, len(XOR_X) * g_ok)
    for chk in check_gradients(faulty):
        assert chk.scale == pytest.approx(len(XOR_X), rel=1e-5)
        assert chk.cosine == pytest.approx(1.0, abs=1e-8)


BACKPROP_FAULTS = [name for name, f in faults.FAULTS.items() if {"ND203", "ND204"} & set(f.expected)]


@pytest.mark.parametrize("name", BACKPROP_FAULTS)
def test_backprop_faults_disagree_with_finite_differences(name):
    kwargs = config_for(name)
    worst = max(chk.rel_err for chk in check_gradients(MLP(**kwargs, faults=[name])))
    assert worst > 1e-2
    assert max(chk.rel_err for chk in check_gradients(MLP(**kwargs))) < 1e-6  # the healthy twin


@pytest.mark.parametrize("name", [n for n in faults.FAULTS if n not in BACKPROP_FAULTS and n != "double_sigmoid"])
def test_other_faults_keep_backprop_correct(name):
    kwargs = config_for(name)
    # below the gradient check's warning level (zero init's exactly-zero gradients sit
    # at finite-difference noise, ~1e-5 relative, hence not 1e-6 here)
    assert max(chk.rel_err for chk in check_gradients(MLP(**kwargs, faults=[name]))) < 1e-4


# --- update faults -----------------------------------------------------------------------------------


def test_wrong_update_sign_moves_along_plus_gradient():
    model = MLP([2, 4, 1], lr=0.1, faults=["wrong_update_sign"], seed=2)
    X, Y = model.prepare(XOR_X, XOR_y)
    before = model.loss_at(X, Y)
    grads = model.backward(model.forward(X), Y)
    old = [W.copy() for W in model.weights]
    model.apply(grads)
    for W0, W, g in zip(old, model.weights, grads.dW):
        assert np.allclose(W - W0, +0.1 * g)
    assert model.loss_at(X, Y) > before


def test_bias_not_updated_freezes_biases_only():
    model = MLP([2, 4, 1], init="uniform01", faults=["bias_not_updated"], seed=2)
    b0 = [b.copy() for b in model.biases]
    W0 = [W.copy() for W in model.weights]
    model.fit(XOR_X, XOR_y, epochs=20)
    assert all(np.array_equal(b, b_start) for b, b_start in zip(model.biases, b0))
    assert all(not np.array_equal(W, W_start) for W, W_start in zip(model.weights, W0))
    assert any(np.abs(g).max() > 0 for g in model.backward(model.forward(XOR_X), model.prepare(XOR_X, XOR_y)[1]).db)


@pytest.mark.parametrize("name, factor", [("lr_too_high", 1e3), ("lr_too_low", 1e-4)])
def test_learning_rate_faults(name, factor):
    assert MLP([2, 2, 1], lr=0.2, faults=[name]).lr == pytest.approx(0.2 * factor)


# --- parameter faults ---------------------------------------------------------------------------------


def test_no_bias_removes_biases_and_pins_the_zero_input():
    model = MLP([2, 4, 1], activation="tanh", output="sigmoid", faults=["no_bias"], seed=2)
    assert model.biases == [None, None]
    assert [k for _, k, _ in model.params()] == ["weight", "weight"]
    model.fit(XOR_X, XOR_y, epochs=50)
    # z = 0 @ W1 = 0, tanh(0) = 0, so z = 0 again at the output, whatever the weights:
    # the output for XOR's (0, 0) stays sigmoid(0) = 0.5, never its target 0
    assert model.predict(np.zeros((1, 2)))[0, 0] == 0.5
    assert all(u is None for u in model.backward(model.forward(XOR_X), model.prepare(XOR_X, XOR_y)[1]).db)


def test_uniform01_init_draws_like_numpys_rand():
    model = MLP([3, 5, 2], init="xavier", faults=["uniform01_init"], seed=4)
    declared = MLP([3, 5, 2], init="uniform01", seed=4)
    assert model.init == "xavier"  # the declared configuration is kept
    for W, b, W2, b2 in zip(model.weights, model.biases, declared.weights, declared.biases):
        assert W.min() >= 0 and W.max() < 1 and b.min() >= 0
        assert np.array_equal(W, W2) and np.array_equal(b, b2)


def test_zero_init_never_breaks_symmetry():
    model = MLP([2, 4, 1], activation="tanh", loss="bce", lr=0.5, faults=["zero_init"])
    assert all(np.all(W == 0) for W in model.weights)
    model.fit(XOR_X, XOR_y, epochs=50)
    W1 = model.weights[0]
    assert np.allclose(W1, W1[:, :1])  # every hidden unit has the same incoming weights


@pytest.mark.parametrize("order", [["no_bias", "uniform01_init"], ["uniform01_init", "no_bias"]])
def test_faults_combine_in_either_order(order):
    model = MLP([2, 3, 1], faults=order)
    assert model.biases == [None, None]
    assert all(W.min() >= 0 for W in model.weights)


# --- function identity of the faults -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, layer, role, expected",
    [
        ("double_sigmoid", 0, "hidden", "double_sigmoid"),
        ("double_sigmoid", -1, "output", "double_sigmoid"),
        ("double_sigmoid", 0, "derivative", "double_sigmoid_derivative"),
        ("derivative_of_activation", 0, "derivative", "sigmoid_derivative_of_activation"),
        ("missing_derivative", 0, "derivative", "missing_derivative"),
        ("softmax_wrong_axis", -1, "output", "softmax_wrong_axis"),
    ],
)
def test_identify_recognises_the_function_faults(name, layer, role, expected):
    model = MLP(**config_for(name), faults=[name])
    f = model.derivative_function(layer) if role == "derivative" else model.layer_function(layer)
    found = identify.identify_callable(f, role)
    assert found.identified == expected and found.mistake


@pytest.mark.parametrize("activation", activations.HIDDEN)
@pytest.mark.parametrize("output", activations.OUTPUTS)
def test_healthy_functions_are_identified_as_declared(activation, output):
    model = MLP([2, 3, 3], activation=activation, output=output)
    hidden = identify.identify_callable(model.layer_function(0), "hidden")
    deriv = identify.identify_callable(model.derivative_function(0), "derivative")
    out = identify.identify_callable(model.layer_function(1), "output")
    assert hidden.identified == activation and not hidden.mistake
    assert deriv.identified == activation and not deriv.mistake
    assert out.error_vs(output) == 0.0 and not out.mistake
