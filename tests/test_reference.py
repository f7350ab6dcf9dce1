"""run_reference: every documented quantity and event, checked against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from netdoctor.mlp import MLP
from netdoctor.reference import auto_schedule, run_reference
from netdoctor.trace import MODEL, QUANTITIES

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_Y = np.array([0, 1, 1, 0])


def blobs(n=60, classes=3, seed=0, weights=None):
    rng = np.random.default_rng(seed)
    labels = rng.choice(classes, size=n, p=weights)
    centres = np.array([[np.cos(a), np.sin(a)] for a in np.linspace(0, 2 * np.pi, classes, endpoint=False)])
    return centres[labels] * 2 + rng.normal(0, 0.3, (n, 2)), labels


def tanh_net(**kw):
    args = dict(activation="tanh", output="softmax", loss="ce", init="xavier", lr=0.2, batch_size=8, seed=1)
    args.update(kw)
    return MLP([2, 5, 4, 3], **args)


@pytest.fixture(scope="module")
def tanh_run():
    X, y = blobs()
    model = tanh_net()
    trace = run_reference(model, X, y, epochs=4, name="tanh")
    return model, trace, X, y


# --- the series ---------------------------------------------------------------------------------
def test_every_quantity_of_the_vocabulary_is_produced(tanh_run):
    _, tanh_trace, _, _ = tanh_run
    X, y = blobs(seed=2)
    relu_trace = run_reference(MLP([2, 6, 3], activation="relu", output="softmax", loss="ce", init="he",
                                   lr=0.1, batch_size=16), X, y, epochs=2)
    produced = {q for trace in (tanh_trace, relu_trace) for _, q in trace.recorder.keys()}
    assert produced == set(QUANTITIES), f"missing {set(QUANTITIES) - produced}"
    # per-layer quantities for every layer; sat_frac on tanh hidden layers, dead_frac on relu ones
    for layer in ("layer1", "layer2", "layer3"):
        for q in ("act_mean", "act_std", "z_abs_mean", "grad_norm", "grad_abs_mean", "bias_grad_norm",
                  "weight_norm", "weight_std", "bias_norm", "update_norm", "bias_update_norm",
                  "update_ratio", "update_cos", "nonfinite"):
            assert tanh_trace.has(q, layer), (layer, q)
    assert tanh_trace.has("sat_frac", "layer1") and tanh_trace.has("sat_frac", "layer2")
    assert not tanh_trace.has("sat_frac", "layer3")  # the output layer
    assert relu_trace.has("dead_frac", "layer1") and not relu_trace.has("sat_frac", "layer1")
    for q in ("loss", "probe_loss", "accuracy", "out_mean", "out_std", "out_min", "out_max",
              "weight_norm", "grad_norm", "update_norm", "update_ratio", "nonfinite"):
        assert tanh_trace.has(q, MODEL), q


def test_gradient_and_update_series_match_an_independent_replay(tanh_run):
    model, trace, X, y = tanh_run
    # Replay the same training with fit and a callback that measures with plain numpy.
    twin = tanh_net()
    seen = {}

    def measure(state):
        l = 1
        before = twin.weights[l] - state.updates.dW[l]
        seen[state.step] = {
            "loss": state.loss,
            "grad_norm": np.linalg.norm(state.grads.dW[l]),
            "grad_abs_mean": np.mean(np.abs(state.grads.dW[l])),
            "update_norm": np.linalg.norm(state.updates.dW[l]),
            "update_ratio": np.linalg.norm(state.updates.dW[l]) / np.linalg.norm(before),
            "weight_norm": np.linalg.norm(twin.weights[l]),
            "weight_std": np.std(twin.weights[l]),
            "bias_norm": np.linalg.norm(twin.biases[l]),
            "model_grad_norm": math.sqrt(sum(np.sum(g**2) for g in state.grads.dW)
                                         + sum(np.sum(g**2) for g in state.grads.db)),
        }

    twin.fit(X, y, 4, callback=measure)
    steps = trace.steps
    assert steps[0] == 0 and steps[-1] == max(seen)
    for q in ("grad_norm", "grad_abs_mean", "update_norm", "update_ratio", "weight_norm", "weight_std",
              "bias_norm"):
        _, values = trace.series(q, "layer2")
        for step, value in zip(steps[1:], values[1:]):
            assert math.isclose(value, seen[step][q], rel_tol=1e-7, abs_tol=1e-15), (q, step)
    _, loss = trace.series("loss")
    _, model_grad = trace.series("grad_norm", MODEL)
    for i, step in enumerate(steps[1:], start=1):
        assert math.isclose(loss[i], seen[step]["loss"], rel_tol=1e-12)
        assert math.isclose(model_grad[i], seen[step]["model_grad_norm"], rel_tol=1e-7)
    # SGD moves exactly along -gradient.
    _, cos = trace.series("update_cos", "layer1")
    assert np.allclose(cos[1:], 1.0, atol=1e-9)


def test_probing_does_not_change_training(tanh_run):
    model, _, X, y = tanh_run
    twin = tanh_net().fit(X, y, 4)
    for a, b in zip(model.weights + model.biases, twin.weights + twin.biases):
        assert np.array_equal(a, b)


def test_probe_batch_outputs_and_activation_stats_are_the_networks_own(tanh_run):
    model, trace, X, _ = tanh_run
    Xp = trace.probe_inputs
    last = -1
    assert np.allclose(trace.outputs[last], model.predict(Xp))
    z1 = Xp @ model.weights[0] + model.biases[0]
    a1 = np.tanh(z1)[:32]
    _, act_mean = trace.series("act_mean", "layer1")
    _, z_abs = trace.series("z_abs_mean", "layer1")
    assert math.isclose(act_mean[last], a1.mean(), rel_tol=1e-9)
    assert math.isclose(z_abs[last], np.abs(z1[:32]).mean(), rel_tol=1e-9)
    out = model.predict(Xp)
    _, out_std = trace.series("out_std")
    assert math.isclose(out_std[last], np.mean(np.std(out, axis=0)), rel_tol=1e-9)
    _, acc = trace.series("accuracy")
    expected = np.mean(np.argmax(out, 1) == np.argmax(trace.probe_targets, 1))
    assert acc[last] == expected
    # step 0 is the untrained network: its loss is measured on the probe batch
    _, loss = trace.series("loss")
    _, probe_loss = trace.series("probe_loss")
    assert loss[0] == probe_loss[0]


def test_probe_batch_is_a_stratified_subset_of_the_training_data():
    X, y = blobs(n=300, weights=[0.7, 0.2, 0.1], seed=3)
    trace = run_reference(tanh_net(), X, y, epochs=1, probe_size=30)
    Xp, Yp = trace.probe_inputs, trace.probe_targets
    assert len(Xp) == 30
    rows = {tuple(row) for row in X}
    assert all(tuple(row) in rows for row in Xp)
    counts = np.bincount(np.argmax(Yp, 1), minlength=3)
    assert counts.tolist() == [10, 10, 10]  # equal shares although the data is 70/20/10
    assert trace.outputs.shape == (len(trace.steps), 30, 3)
    # the first rows already mix the classes (interleaved), so a prefix is balanced too
    assert len(set(np.argmax(Yp[:3], 1).tolist())) == 3


def test_small_data_uses_all_samples_in_order():
    trace = run_reference(MLP([2, 3, 1], activation="tanh", loss="bce"), XOR_X, XOR_Y, epochs=2)
    assert np.array_equal(trace.probe_inputs, XOR_X)


# --- facts and events --------------------------------------------------------------------------------
def test_run_info(tanh_run):
    model, trace, X, _ = tanh_run
    info = trace.info
    assert (info.name, info.source, info.status) == ("tanh", "reference", "completed")
    assert info.steps == 4 * math.ceil(len(X) / 8) == model.step
    assert (info.loss, info.output, info.task, info.n_classes) == ("ce", "softmax", "classification", 3)
    assert [(l.name, l.fan_in, l.fan_out, l.activation, l.has_bias, l.is_output) for l in info.layers] == [
        ("layer1", 2, 5, "tanh", True, False),
        ("layer2", 5, 4, "tanh", True, False),
        ("layer3", 4, 3, "softmax", True, True),
    ]
    for key in ("lr", "optimizer", "batch_size", "epochs", "faults"):
        assert key in info.extra
    assert info.extra["lr"] == 0.2 and info.extra["batch_size"] == 8 and info.extra["epochs"] == 4


def test_regression_run_info():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    trace = run_reference(MLP([3, 8, 1], activation="tanh", output="linear", loss="mse"), X, y, epochs=3)
    assert trace.info.task == "regression" and trace.info.n_classes is None
    assert not trace.has("accuracy")
    assert trace.events_of("data")[0].data["target_kind"] == "continuous"


EVENT_KEYS = {
    "data": {"n_samples", "n_features", "x_abs_mean", "x_abs_max", "x_std", "y_shape", "target_kind",
             "target_min", "target_max", "classes", "out_units", "output_range", "targets_outside"},
    "param_init": {"w_min", "w_max", "w_mean", "w_std", "fan_in", "fan_out", "activation", "has_bias",
                   "b_min", "b_max", "b_std", "duplicate_units"},
    "function": {"role", "declared", "identified", "max_err", "declared_err", "f0", "range", "mistake",
                 "description", "fix"},
    "gradcheck": {"loss_kind", "h", "params"},
}


def test_events_carry_the_documented_payloads(tanh_run):
    model, trace, X, _ = tanh_run
    data = trace.events_of("data")
    assert len(data) == 1 and EVENT_KEYS["data"] <= set(data[0].data)
    assert data[0].data["n_samples"] == len(X) and data[0].data["classes"] == [0, 1, 2]
    for kind in ("param_init", "param_final"):
        events = trace.events_of(kind)
        assert [e.layer for e in events] == ["layer1", "layer2", "layer3"]
        assert all(EVENT_KEYS["param_init"] <= set(e.data) for e in events)
    final = trace.events_of("param_final")
    for l, event in enumerate(final):
        assert event.data["w_max"] == model.weights[l].max()
        assert math.isclose(event.data["w_std"], model.weights[l].std(), rel_tol=1e-9)
    functions = trace.events_of("function")
    # every layer function, and the derivative of each hidden layer
    assert sorted((e.layer, e.data["role"]) for e in functions) == sorted(
        [("layer1", "hidden"), ("layer1", "derivative"), ("layer2", "hidden"), ("layer2", "derivative"),
         ("layer3", "output")]
    )
    for event in functions:
        assert EVENT_KEYS["function"] <= set(event.data)
        assert event.location is None
        assert event.data["identified"] == event.data["declared"]  # a healthy network
        assert not event.data["mistake"]
        assert event.data["declared_err"] <= 1e-9


def test_gradient_checks_at_start_middle_end(tanh_run):
    _, trace, _, _ = tanh_run
    checks = trace.events_of("gradcheck")
    total = trace.info.steps
    assert [e.step for e in checks] == [0, round(total / 2), total]
    for event in checks:
        assert EVENT_KEYS["gradcheck"] <= set(event.data)
        assert event.data["loss_kind"] == "ce"
        params = event.data["params"]
        assert [(p["layer"], p["param"]) for p in params] == [
            (f"layer{i}", kind) for i in (1, 2, 3) for kind in ("weight", "bias")
        ]
        for p in params:  # the reference MLP's own gradients agree with finite differences
            assert p["rel_err"] < 1e-6 and p["n_checked"] > 0


def test_gradient_check_sees_a_wrongly_scaled_gradient():
    X, y = blobs()
    trace = run_reference(tanh_net(faults=("gradient_wrong_scale",)), X, y, epochs=1)
    scales = [p["scale"] for p in trace.events_of("gradcheck")[0].data["params"]]
    cosines = [p["cosine"] for p in trace.events_of("gradcheck")[0].data["params"]]
    assert all(abs(s - 1) > 0.5 for s in scales), scales
    assert all(c > 0.999 for c in cosines), cosines


def test_the_seed_bug_is_visible_in_the_events():
    model = MLP([2, 2, 2, 2], activation="sigmoid", output="sigmoid", loss="bce", init="uniform01",
                batch_size=1, faults=("double_sigmoid",))
    trace = run_reference(model, XOR_X, XOR_Y, epochs=5)
    data = trace.events_of("data")[0].data
    assert abs(data["output_range"][0] - 0.5) < 1e-6
    assert data["targets_outside"] == 0.5  # the zeros of the one-hot targets
    hidden = [e for e in trace.events_of("function") if e.data["role"] == "hidden"]
    assert all(e.data["mistake"] and e.data["declared"] == "sigmoid" for e in hidden)
    assert all(abs(e.data["f0"] - 2 / 3) < 1e-9 for e in hidden)  # 1/(1+sigmoid(0)) = 1/1.5
    inits = trace.events_of("param_init")
    assert all(e.data["w_min"] >= 0 for e in inits)


def test_zero_init_shows_duplicate_units():
    trace = run_reference(MLP([2, 4, 1], activation="tanh", loss="bce", init="zeros"), XOR_X, XOR_Y, epochs=3)
    first = trace.events_of("param_init")[0]
    assert first.data["duplicate_units"] == 4


# --- schedule options -------------------------------------------------------------------------------------
def test_stride_thins_from_the_start_and_keeps_the_last_step():
    X, y = blobs(n=64)
    trace = run_reference(tanh_net(batch_size=4), X, y, epochs=2, stride=7)
    total = 2 * 16
    assert trace.steps.tolist() == list(range(0, total, 7)) + [total]
    assert trace.info.steps == total


def test_outputs_every_keeps_the_probe_batch_on_a_subset_of_rows():
    X, y = blobs(n=64)
    trace = run_reference(tanh_net(batch_size=4), X, y, epochs=1, outputs_every=3)
    has_outputs = ~np.isnan(trace.outputs[:, 0, 0])
    rows = np.flatnonzero(has_outputs).tolist()
    assert rows == sorted(set(list(range(0, len(trace.steps), 3)) + [len(trace.steps) - 1]))
    _, out_std = trace.series("out_std")
    assert np.array_equal(~np.isnan(out_std), has_outputs)
    _, loss = trace.series("loss")
    assert not np.isnan(loss).any()  # the loss is there at every recorded step


def test_params_every_keeps_parameter_statistics_on_a_subset_of_rows():
    X, y = blobs(n=64)
    trace = run_reference(tanh_net(batch_size=4), X, y, epochs=1, params_every=4)
    _, grad = trace.series("grad_norm", "layer1")
    _, weight = trace.series("weight_norm", MODEL)
    rows = np.flatnonzero(~np.isnan(weight)).tolist()
    assert rows == sorted(set(list(range(0, len(trace.steps), 4)) + [len(trace.steps) - 1]))
    assert np.array_equal(np.flatnonzero(~np.isnan(grad)), [r for r in rows if r > 0])  # no gradient at step 0


def test_auto_schedule_is_every_step_for_small_networks_and_sparse_for_big_ones():
    assert auto_schedule([2, 2, 2, 2], 4, 1) == (1, 1)
    assert auto_schedule([2, 64, 64, 3], 64, 32) == (1, 1)
    outputs_every, params_every = auto_schedule([784, 256, 256, 10], 64, 128)
    # the probe forward (64 rows) against a step (~3 forwards of 128 rows) within the budget
    assert outputs_every > 1 and 64 / (3 * 128) / outputs_every <= 0.02
    assert params_every > 1


def test_max_steps_stops_the_run():
    X, y = blobs()
    trace = run_reference(tanh_net(), X, y, epochs=10, max_steps=5)
    assert trace.info.status == "stopped" and trace.info.steps == 5
    assert trace.steps[-1] == 5
    assert trace.events_of("stopped")[0].data["step"] == 5
    assert trace.events_of("gradcheck")[-1].step == 5
    # a max_steps beyond the run changes nothing
    full = run_reference(tanh_net(), X, y, epochs=1, max_steps=10**6)
    assert full.info.status == "completed"


def test_unknown_options_and_stop_on_are_accepted():
    trace = run_reference(tanh_net(), *blobs(), epochs=1, stop_on="error", timeout=3, quiet=True)
    assert trace.info.status == "completed"


def test_bad_data_shapes_raise_a_clear_error():
    with pytest.raises(ValueError, match="expected X of shape"):
        run_reference(tanh_net(), np.zeros((5, 7)), np.zeros(5, dtype=int), epochs=1)


# --- bad numbers -----------------------------------------------------------------------------------------
def test_a_run_whose_numbers_blow_up_still_finishes():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(32, 3)) * 100
    y = X @ np.array([1.0, 2.0, 3.0])
    model = MLP([3, 16, 1], activation="relu", output="linear", loss="mse", init="he", lr=10.0)
    trace = run_reference(model, X, y, epochs=30)
    assert trace.info.status == "completed" and trace.info.steps == 30
    _, loss = trace.series("loss")
    assert not np.isfinite(loss[-1])
    first = trace.events_of("nonfinite")
    assert len(first) == 1
    assert first[0].data["tensor"]  # names a tensor, e.g. "layer1.grad" or "loss"
    assert first[0].data["batch"] in ("training", "probe")
    step = first[0].data["step"]
    # nothing non-finite was recorded before that step
    _, nonfinite = trace.series("nonfinite")
    assert np.nansum(nonfinite[trace.steps < step]) == 0
    assert nonfinite[trace.steps == step][0] > 0 or first[0].data["tensor"] != "loss"
    frame = trace.frame()
    assert len(frame) > 0
    assert trace.events_of("param_final")[0].data["nonfinite"] > 0


def test_a_crash_inside_training_is_a_crashed_run_with_a_trace(monkeypatch):
    model = tanh_net()
    real_apply = model.apply

    def failing_apply(grads):
        if model.step == 3:
            raise RuntimeError("disk on fire")
        return real_apply(grads)

    monkeypatch.setattr(model, "apply", failing_apply)
    trace = run_reference(model, *blobs(), epochs=3)
    assert trace.info.status == "crashed"
    assert "disk on fire" in trace.info.error
    assert trace.info.steps == 3 and trace.steps[-1] == 3
    assert trace.events_of("param_final")


# --- pictures' raw material -----------------------------------------------------------------------------
def test_snapshots_hold_histograms_and_a_decision_boundary_for_2d_inputs(tanh_run):
    model, trace, X, _ = tanh_run
    boundary = trace.events_of("boundary")
    total = trace.info.steps
    assert [e.step for e in boundary] == sorted({round(total * i / 8) for i in range(9)})
    last = boundary[-1].data
    xx, yy, zz = last["xx"], last["yy"], last["zz"]
    assert xx.shape == yy.shape == zz.shape
    assert xx.min() < X[:, 0].min() and xx.max() > X[:, 0].max()  # the grid covers the data
    # three classes: the predicted class on the grid, computed here by the final model
    grid = np.column_stack([xx.ravel(), yy.ravel()])
    assert np.array_equal(zz.ravel(), np.argmax(model.predict(grid), axis=1))
    hists = [e for e in trace.events_of("activation_hist") if e.step == total]
    assert [e.layer for e in hists] == ["layer1", "layer2", "layer3"]
    n_values = len(trace.probe_inputs) * np.array([5, 4, 3])
    assert [sum(e.data["counts"]) for e in hists] == n_values.tolist()
    a1 = np.tanh(trace.probe_inputs @ model.weights[0] + model.biases[0])
    assert hists[0].data["edges"][0] == a1.min() and hists[0].data["edges"][-1] == a1.max()


def test_no_boundary_for_inputs_that_are_not_2d():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    trace = run_reference(MLP([3, 4, 1], activation="tanh", loss="bce"), X, (X[:, 0] > 0).astype(int), epochs=2)
    assert not trace.events_of("boundary")
    assert trace.events_of("activation_hist")


def test_a_nan_in_the_inputs_is_named_as_the_first_nonfinite_tensor():
    X, y = blobs(n=40)
    X[7, 1] = np.nan
    trace = run_reference(tanh_net(batch_size=None), X, y, epochs=3)
    first = trace.events_of("nonfinite")
    assert len(first) == 1
    # the probe batch holds every sample here, so the NaN shows before training starts
    assert first[0].data == {"tensor": "input", "step": 0, "batch": "probe"}
    assert trace.events_of("data")[0].data["x_nonfinite"] == 1
    assert trace.info.status == "completed"


def test_a_nan_appearing_in_training_names_the_training_tensor():
    X, y = blobs(n=40)
    model = tanh_net(batch_size=None)
    real_backward = model.backward

    def backward(fwd, Y):  # a gradient goes bad at the third step
        grads = real_backward(fwd, Y)
        if model.step == 2:
            grads.dW[1][0, 0] = np.inf
        return grads

    model.backward = backward
    trace = run_reference(model, X, y, epochs=5)
    first = trace.events_of("nonfinite")
    assert [e.data for e in first] == [{"tensor": "layer2.grad", "step": 3, "batch": "training"}]
    assert first[0].layer == "layer2"
