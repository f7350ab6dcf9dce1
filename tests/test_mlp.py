"""The reference MLP: configuration, init, data preparation, training loop, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from netdoctor import activations
from netdoctor.mlp import MLP, StepState

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_y = np.array([0, 1, 1, 0])


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, valid",
    [
        ({"activation": "swish"}, "sigmoid, tanh, relu, leaky_relu"),
        ({"output": "tanh"}, "sigmoid, softmax, linear"),
        ({"loss": "hinge"}, "mse, bce, ce"),
        ({"init": "orthogonal"}, "uniform01, normal, xavier, he, zeros"),
        ({"optimizer": "rmsprop"}, "sgd, momentum, adam"),
        ({"faults": ["no_such_fault"]}, "double_sigmoid"),
    ],
)
def test_unknown_names_list_the_valid_ones(kwargs, valid):
    with pytest.raises(ValueError, match=valid):
        MLP([2, 2, 1], **kwargs)


@pytest.mark.parametrize("layers", [[2], [2, 0, 1], []])
def test_bad_layer_sizes(layers):
    with pytest.raises(ValueError, match="layers"):
        MLP(layers)


def test_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        MLP([2, 1], batch_size=0)


def test_shapes_names_and_declared_configuration():
    model = MLP([3, 5, 4, 2], activation="tanh", output="softmax", loss="ce")
    assert [W.shape for W in model.weights] == [(3, 5), (5, 4), (4, 2)]
    assert [b.shape for b in model.biases] == [(5,), (4,), (2,)]
    assert all(W.dtype == np.float64 for W in model.weights)
    assert model.layer_names == ["layer1", "layer2", "layer3"]
    assert [model.declared_activation(l) for l in range(3)] == ["tanh", "tanh", "softmax"]
    assert (model.activation, model.output, model.loss, model.init) == ("tanh", "softmax", "ce", "xavier")
    assert model.faults == () and model.step == 0
    assert model.layer_function(0) is activations.tanh
    assert model.derivative_function(0) is activations.tanh_derivative


def test_a_single_fault_name_is_accepted_as_a_string():
    assert MLP([2, 2, 1], faults="no_bias").faults == ("no_bias",)


# --- initialisation ---------------------------------------------------------------------------


def test_uniform01_draws_weights_and_biases_in_unit_interval():
    model = MLP([50, 40, 3], init="uniform01")
    for W, b in zip(model.weights, model.biases):
        for p in (W, b):
            assert p.min() >= 0.0 and p.max() < 1.0
        assert W.mean() == pytest.approx(0.5, abs=0.05)
        assert b.std() > 0.1  # biases random too, as numpy's rand gives them


def test_normal_init_is_standard_normal_with_zero_bias():
    model = MLP([300, 200, 1], init="normal")
    W = model.weights[0]
    assert W.mean() == pytest.approx(0.0, abs=0.02)
    assert W.std() == pytest.approx(1.0, rel=0.02)
    assert all(np.all(b == 0) for b in model.biases)


def test_xavier_init_is_glorot_uniform():
    fan_in, fan_out = 300, 200
    model = MLP([fan_in, fan_out, 1], init="xavier")
    W = model.weights[0]
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    assert np.abs(W).max() <= limit
    assert W.std() == pytest.approx(limit / np.sqrt(3.0), rel=0.02)  # std of U[-l, l]
    assert all(np.all(b == 0) for b in model.biases)


def test_he_init_has_variance_two_over_fan_in():
    fan_in = 300
    model = MLP([fan_in, 200, 1], init="he")
    assert model.weights[0].std() == pytest.approx(np.sqrt(2.0 / fan_in), rel=0.02)


def test_zeros_init():
    model = MLP([3, 4, 2], init="zeros")
    assert all(np.all(W == 0) for W in model.weights)
    assert all(np.all(b == 0) for b in model.biases)


# --- data -----------------------------------------------------------------------------------------


def test_prepare_one_hot_labels():
    model = MLP([2, 3, 3])
    X, Y = model.prepare([[1, 2], [3, 4], [5, 6]], [2, 0, 1])
    assert X.dtype == np.float64 and X.shape == (3, 2)
    assert np.array_equal(Y, np.eye(3)[[2, 0, 1]])
    _, Y2 = model.prepare(X, np.array([[2], [0], [1]]))  # a column of labels too
    assert np.array_equal(Y2, Y)


def test_prepare_single_output_column_and_passthrough():
    model = MLP([2, 3, 1])
    _, Y = model.prepare(XOR_X, XOR_y)
    assert Y.shape == (4, 1) and Y.dtype == np.float64
    assert np.array_equal(Y[:, 0], XOR_y)
    model2 = MLP([2, 3, 2])
    given = np.array([[0.2, 0.8], [0.5, 0.5], [1, 0], [0, 1]])
    _, Y2 = model2.prepare(XOR_X, given)
    assert np.array_equal(Y2, given)


def test_prepare_one_dimensional_inputs():
    model = MLP([1, 3, 1])
    X, Y = model.prepare([0.0, 1.0, 2.0], [0.0, 1.0, 4.0])
    assert X.shape == (3, 1) and Y.shape == (3, 1)


@pytest.mark.parametrize(
    "layers, X, y, message",
    [
        ([2, 3, 1], np.zeros((4, 3)), np.zeros(4), r"\(n_samples, 2\)"),
        ([2, 3, 1], np.zeros((2, 5)), np.zeros(5), "X.T"),          # samples in columns
        ([2, 3, 2], XOR_X, [0, 1, 2, 1], "labels 0..1"),            # label out of range
        ([2, 3, 2], XOR_X, [0, 0.5, 1, 0], "labels"),               # not integers
        ([2, 3, 2], XOR_X, np.zeros((4, 3)), r"\(n_samples, 2\)"),   # wrong one-hot width
        ([2, 3, 1], XOR_X, np.zeros((4, 1, 1)), "shape"),
        ([2, 3, 1], XOR_X, np.zeros(3), "4 samples but y has 3"),
        ([2, 3, 1], np.zeros((0, 2)), np.zeros(0), "no samples"),
        ([2, 3, 1], [["a", "b"]], [0], "numeric"),
    ],
)
def test_prepare_rejects_incompatible_shapes(layers, X, y, message):
    with pytest.raises(ValueError, match=message):
        MLP(layers).prepare(X, y)


# --- forward and predictions ------------------------------------------------------------------


def test_forward_computes_every_layer():
    model = MLP([2, 3, 2], activation="tanh", output="softmax", loss="ce", seed=4)
    model.biases[0][:] = [0.1, -0.2, 0.3]
    fwd = model.forward(XOR_X)
    z1 = XOR_X @ model.weights[0] + model.biases[0]
    a1 = np.tanh(z1)
    z2 = a1 @ model.weights[1] + model.biases[1]
    e = np.exp(z2)
    out = e / e.sum(axis=1, keepdims=True)
    assert fwd.acts[0] is not None and np.array_equal(fwd.acts[0], XOR_X)
    assert np.allclose(fwd.zs[0], z1) and np.allclose(fwd.acts[1], a1)
    assert np.allclose(fwd.zs[1], z2) and np.allclose(fwd.out, out)
    assert fwd.out is fwd.acts[-1]
    assert np.allclose(model.predict(XOR_X), out)


def test_predict_classes():
    binary = MLP([2, 2, 1], output="sigmoid")
    binary.weights[-1][:] = 0.0
    binary.biases[-1][:] = 3.0  # every output sigmoid(3) > 0.5
    assert np.array_equal(binary.predict_classes(XOR_X), [1, 1, 1, 1])
    multi = MLP([2, 3], output="softmax", loss="ce")
    multi.weights[0][:] = 0.0
    multi.biases[0][:] = [0.0, 2.0, 1.0]
    assert np.array_equal(multi.predict_classes(XOR_X), [1, 1, 1, 1])


# --- training loop -------------------------------------------------------------------------------


def collect_states(model, X, y, epochs):
    """Fit with a callback that records what each step did, checking updates = new - old."""
    states = []
    previous = [p.copy() for _, _, p in model.params()]

    def callback(state):
        assert isinstance(state, StepState)
        now = [p.copy() for _, _, p in model.params()]
        applied = [u for dW, db in zip(state.updates.dW, state.updates.db) for u in (dW, db) if u is not None]
        for before, after, change in zip(previous, now, applied):
            assert np.allclose(after - before, change, rtol=0, atol=1e-15)
        previous[:] = now
        states.append((state.step, state.epoch, len(state.X), state.loss, state.model.loss_of(state.fwd.out, state.Y)))

    model.fit(X, y, epochs, callback=callback)
    return states


@pytest.mark.parametrize("batch_size, per_epoch, sizes", [(None, 1, [8]), (1, 8, [1] * 8), (3, 3, [3, 3, 2])])
def test_batches_and_steps(batch_size, per_epoch, sizes):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(8, 2)), rng.integers(0, 2, size=8)
    model = MLP([2, 3, 1], batch_size=batch_size)
    states = collect_states(model, X, y, epochs=2)
    assert [s[0] for s in states] == list(range(1, 2 * per_epoch + 1))
    assert [s[1] for s in states] == [0] * per_epoch + [1] * per_epoch
    assert [s[2] for s in states] == sizes * 2
    assert all(loss == recomputed for *_, loss, recomputed in states)
    assert model.step == 2 * per_epoch


def test_per_sample_batches_visit_every_sample_each_epoch():
    X = np.arange(6, dtype=float)[:, None]
    model = MLP([1, 2, 1], batch_size=1)
    seen = []
    model.fit(X, np.zeros(6), epochs=2, callback=lambda s: seen.append((s.epoch, float(s.X[0, 0]))))
    for epoch in (0, 1):
        assert sorted(x for e, x in seen if e == epoch) == list(range(6))


def test_shuffled_order_changes_between_epochs():
    X = np.arange(20, dtype=float)[:, None]
    model = MLP([1, 2, 1], batch_size=1, seed=0)
    seen = []
    model.fit(X, np.zeros(20), epochs=2, callback=lambda s: seen.append(float(s.X[0, 0])))
    assert seen[:20] != seen[20:]


def test_sgd_update_is_minus_lr_times_gradient():
    model = MLP([2, 3, 1], lr=0.3, seed=1)
    X, Y = model.prepare(XOR_X, XOR_y)
    grads = model.backward(model.forward(X), Y)
    before = [W.copy() for W in model.weights]
    updates = model.apply(grads)
    for W0, W, g, u in zip(before, model.weights, grads.dW, updates.dW):
        assert np.allclose(W - W0, -0.3 * g)
        assert np.allclose(u, -0.3 * g)


def test_momentum_accumulates_velocity():
    model = MLP([2, 3, 1], optimizer="momentum", momentum=0.5, lr=0.1, seed=1)
    X, Y = model.prepare(XOR_X, XOR_y)
    g1 = model.backward(model.forward(X), Y)
    u1 = model.apply(g1)
    g2 = model.backward(model.forward(X), Y)
    u2 = model.apply(g2)
    for l in range(2):
        assert np.allclose(u1.dW[l], -0.1 * g1.dW[l])
        assert np.allclose(u2.dW[l], 0.5 * u1.dW[l] - 0.1 * g2.dW[l])


def test_adam_first_step_has_size_lr_per_entry():
    # After one step m_hat = g and v_hat = g^2, so the change is -lr * g / (|g| + eps).
    model = MLP([2, 3, 1], optimizer="adam", lr=0.01, seed=1)
    X, Y = model.prepare(XOR_X, XOR_y)
    grads = model.backward(model.forward(X), Y)
    updates = model.apply(grads)
    for g, u in zip(grads.dW, updates.dW):
        assert np.allclose(u, -0.01 * g / (np.abs(g) + model.eps))


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("batch_size", [None, 1, 3])
def test_same_seed_gives_bit_identical_runs(optimizer, batch_size):
    rng = np.random.default_rng(7)
    X, y = rng.normal(size=(10, 3)), rng.integers(0, 3, size=10)

    def run(seed):
        model = MLP([3, 4, 3], activation="relu", output="softmax", loss="ce", optimizer=optimizer,
                    lr=0.05, batch_size=batch_size, seed=seed)
        return model.fit(X, y, epochs=5)

    a, b, c = run(11), run(11), run(12)
    for Wa, Wb in zip(a.weights + a.biases, b.weights + b.biases):
        assert np.array_equal(Wa, Wb)
    assert not np.array_equal(a.weights[0], c.weights[0])


def test_fit_without_callback_trains_the_same_as_with_one():
    kwargs = dict(layers=[2, 4, 1], activation="tanh", loss="bce", batch_size=2, seed=5)
    plain = MLP(**kwargs).fit(XOR_X, XOR_y, 30)
    watched = MLP(**kwargs).fit(XOR_X, XOR_y, 30, callback=lambda state: None)
    for Wa, Wb in zip(plain.weights, watched.weights):
        assert np.array_equal(Wa, Wb)


def test_params_are_live_and_gradients_in_their_order():
    model = MLP([2, 3, 1], seed=2)
    params = model.params()
    assert [(n, k) for n, k, _ in params] == [
        ("layer1", "weight"), ("layer1", "bias"), ("layer2", "weight"), ("layer2", "bias")
    ]
    params[0][2][0, 0] = 42.0
    assert model.weights[0][0, 0] == 42.0
    grads = model.gradients(XOR_X, XOR_y)
    assert [g.shape for g in grads] == [p.shape for _, _, p in params]
    X, Y = model.prepare(XOR_X, XOR_y)
    assert model.loss_at(XOR_X, XOR_y) == model.loss_of(model.forward(X).out, Y)


@pytest.mark.parametrize("seed", range(5))
def test_healthy_xor_converges(seed):
    model = MLP([2, 4, 1], activation="tanh", output="sigmoid", loss="bce", lr=0.5, seed=seed)
    start = model.loss_at(XOR_X, XOR_y)
    model.fit(XOR_X, XOR_y, epochs=2000)
    assert np.array_equal(model.predict_classes(XOR_X), XOR_y)
    assert model.loss_at(XOR_X, XOR_y) < 0.1 * start


def test_healthy_softmax_relu_adam_learns_blobs():
    rng = np.random.default_rng(0)
    centres = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    labels = np.repeat(np.arange(3), 20)
    X = centres[labels] + 0.4 * rng.normal(size=(60, 2))
    model = MLP([2, 8, 3], activation="relu", output="softmax", loss="ce", init="he",
                optimizer="adam", lr=0.01, batch_size=10, seed=0)
    model.fit(X, labels, epochs=60)
    assert np.mean(model.predict_classes(X) == labels) >= 0.95
