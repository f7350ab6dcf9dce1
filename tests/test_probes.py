"""Probes against plain NumPy computations written here, independently of probes.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from netdoctor import probes
from netdoctor.trace import MODEL, QUANTITIES

RNG = np.random.default_rng(7)


def close(a, b, rel=1e-10):
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


# --- building blocks -------------------------------------------------------------------
def test_norms_and_moments_match_numpy():
    a = RNG.normal(3.0, 2.0, size=(17, 9))
    assert close(probes.norm(a), float(np.linalg.norm(a)))
    mean, std = probes.mean_std(a)
    assert close(mean, float(np.mean(a)))
    assert close(std, float(np.std(a)), rel=1e-9)
    assert close(probes.abs_mean(a), float(np.mean(np.abs(a))))


def test_abs_mean_of_a_big_array_is_a_close_estimate():
    g = RNG.normal(size=(784, 256)) * np.linspace(0.1, 2.0, 256)  # uneven columns
    exact = float(np.mean(np.abs(g)))
    assert abs(probes.abs_mean(g, 4096) - exact) / exact < 0.05
    assert close(probes.abs_mean(g), exact)  # no sample: exact
    small = RNG.normal(size=(30, 20))
    assert close(probes.abs_mean(small, 4096), float(np.mean(np.abs(small))))  # small: exact


def test_std_of_constant_array_is_exactly_zero():
    # E[x^2]-E[x]^2 would leave round-off here; a constant init must read std 0.
    assert probes.mean_std(np.full((30, 7), 0.3))[1] == 0.0


def test_non_contiguous_input_is_measured_correctly():
    a = RNG.normal(size=(8, 10))[:, ::3]
    assert close(probes.norm(a), float(np.linalg.norm(a)))


def test_nonfinite_count():
    a = np.array([1.0, np.nan, np.inf, -np.inf, 2.0])
    assert probes.count_nonfinite(a) == 3
    assert probes.count_nonfinite(np.ones(4)) == 0
    # Huge but finite values overflow the sum of squares: the fallback still counts 0.
    huge = np.full(3, 1e200)
    assert probes.count_nonfinite(huge, probes.sq_norm(huge)) == 0


# --- activations -----------------------------------------------------------------------
def test_activation_stats_sigmoid_layer():
    z = RNG.normal(0.0, 4.0, size=(50, 12))
    a = 1.0 / (1.0 + np.exp(-z))
    stats = probes.activation_stats("layer1", z, a, "sigmoid", saturation_z=5.0, max_rows=None)
    assert close(stats[("layer1", "act_mean")], float(a.mean()))
    assert close(stats[("layer1", "act_std")], float(a.std()), rel=1e-9)
    assert close(stats[("layer1", "z_abs_mean")], float(np.abs(z).mean()))
    expected_sat = sum(1 for v in z.ravel() if abs(v) >= 5.0) / z.size
    assert close(stats[("layer1", "sat_frac")], expected_sat)
    assert ("layer1", "dead_frac") not in stats
    assert stats[("layer1", "nonfinite")] == 0


def test_activation_stats_use_only_the_first_rows():
    z = np.vstack([np.zeros((4, 3)), np.full((10, 3), 100.0)])
    stats = probes.activation_stats("h", z, np.tanh(z), "tanh", max_rows=4)
    assert stats[("h", "sat_frac")] == 0.0
    assert stats[("h", "z_abs_mean")] == 0.0


def test_dead_fraction_of_relu_layer():
    z = RNG.normal(size=(40, 10))
    z[:, :3] = -np.abs(z[:, :3]) - 0.1  # three units never active
    z[0, 3] = 5.0
    z[1:, 3] = -1.0                      # active on 1 of 40 samples = 2.5 %: alive at 1 %
    a = np.maximum(z, 0)
    stats = probes.activation_stats("h", z, a, "relu", dead_active_frac=0.01, max_rows=None)
    active_share = [(z[:, j] > 0).mean() for j in range(10)]
    expected = sum(share < 0.01 for share in active_share) / 10
    assert expected == 0.3
    assert stats[("h", "dead_frac")] == expected
    assert ("h", "sat_frac") not in stats


def test_output_layer_has_no_saturation_fraction():
    z = np.full((3, 2), 10.0)
    stats = probes.activation_stats("out", z, z, "sigmoid", hidden=False)
    assert ("out", "sat_frac") not in stats


def test_activation_nonfinite_counted():
    z = np.array([[np.nan, 1.0], [np.inf, 0.0]])
    stats = probes.activation_stats("h", z, np.tanh(z), "tanh")
    # z has 2 non-finite entries; tanh(nan) = nan, tanh(inf) = 1: one more.
    assert stats[("h", "nonfinite")] == 3


# --- parameters, gradients, updates -------------------------------------------------------
def test_param_stats_match_numpy():
    before = RNG.normal(size=(6, 4))
    grad = RNG.normal(size=(6, 4))
    lr = 0.05
    after = before - lr * grad
    b_before = RNG.normal(size=4)
    b_grad = RNG.normal(size=4)
    b_after = b_before - lr * b_grad
    stats, sums = probes.param_stats(
        "layer2", after, b_after, grad_w=grad, grad_b=b_grad,
        delta_w=after - before, delta_b=b_after - b_before,
    )
    assert close(stats[("layer2", "weight_norm")], float(np.linalg.norm(after)))
    assert close(stats[("layer2", "weight_std")], float(np.std(after)), rel=1e-9)
    assert close(stats[("layer2", "bias_norm")], float(np.linalg.norm(b_after)))
    assert close(stats[("layer2", "grad_norm")], float(np.linalg.norm(grad)))
    assert close(stats[("layer2", "grad_abs_mean")], float(np.abs(grad).mean()))
    assert close(stats[("layer2", "bias_grad_norm")], float(np.linalg.norm(b_grad)))
    assert close(stats[("layer2", "update_norm")], float(np.linalg.norm(after - before)), rel=1e-9)
    assert close(stats[("layer2", "bias_update_norm")], float(np.linalg.norm(b_after - b_before)), rel=1e-9)
    ratio = np.linalg.norm(after - before) / np.linalg.norm(before)
    assert close(stats[("layer2", "update_ratio")], float(ratio), rel=1e-8)
    # Plain gradient descent moves exactly along -grad.
    assert close(stats[("layer2", "update_cos")], 1.0, rel=1e-9)
    assert stats[("layer2", "nonfinite")] == 0
    assert set(sums) >= {"w", "b", "gw", "gb", "dw", "db", "w_before", "b_before"}


def test_update_cos_of_wrong_sign_and_random_updates():
    w = RNG.normal(size=(5, 5))
    g = RNG.normal(size=(5, 5))
    up, _ = probes.param_stats("l", w + 0.1 * g, grad_w=g, delta_w=0.1 * g)
    assert close(up[("l", "update_cos")], -1.0, rel=1e-9)
    d = RNG.normal(size=(5, 5))
    rand, _ = probes.param_stats("l", w + d, grad_w=g, delta_w=d)
    expected = -float(np.sum(d * g) / (np.linalg.norm(d) * np.linalg.norm(g)))
    assert close(rand[("l", "update_cos")], expected, rel=1e-9)


def test_update_ratio_from_zero_weights_is_infinite_and_no_update_is_zero():
    g = RNG.normal(size=(3, 3))
    first, _ = probes.param_stats("l", -0.1 * g, grad_w=g, delta_w=-0.1 * g)
    assert first[("l", "update_ratio")] == math.inf
    w = RNG.normal(size=(3, 3))
    still, _ = probes.param_stats("l", w, grad_w=g, delta_w=np.zeros_like(w))
    assert still[("l", "update_ratio")] == 0.0
    assert math.isnan(still[("l", "update_cos")])  # no direction to measure


def test_update_ratio_accurate_when_the_step_dwarfs_the_weights():
    before = np.full((4, 4), 1e-9)
    delta = RNG.normal(size=(4, 4))
    stats, _ = probes.param_stats("l", before + delta, delta_w=delta)
    expected = np.linalg.norm(delta) / np.linalg.norm(before)
    assert close(stats[("l", "update_ratio")], float(expected), rel=1e-6)


def test_model_norms_sum_over_layers_and_biases():
    layers = [(RNG.normal(size=(3, 4)), RNG.normal(size=4)), (RNG.normal(size=(4, 2)), None)]
    grads = [(RNG.normal(size=(3, 4)), RNG.normal(size=4)), (RNG.normal(size=(4, 2)), None)]
    deltas = [(0.01 * RNG.normal(size=(3, 4)), 0.01 * RNG.normal(size=4)), (0.01 * RNG.normal(size=(4, 2)), None)]
    sums = []
    for (w, b), (gw, gb), (dw, db) in zip(layers, grads, deltas):
        sums.append(probes.param_stats("l", w, b, grad_w=gw, grad_b=gb, delta_w=dw, delta_b=db)[1])
    model = probes.model_param_stats(sums)
    all_w = np.concatenate([layers[0][0].ravel(), layers[0][1], layers[1][0].ravel()])
    all_g = np.concatenate([grads[0][0].ravel(), grads[0][1], grads[1][0].ravel()])
    all_d = np.concatenate([deltas[0][0].ravel(), deltas[0][1], deltas[1][0].ravel()])
    assert close(model[(MODEL, "weight_norm")], float(np.linalg.norm(all_w)))
    assert close(model[(MODEL, "grad_norm")], float(np.linalg.norm(all_g)))
    assert close(model[(MODEL, "update_norm")], float(np.linalg.norm(all_d)))
    ratio = np.linalg.norm(all_d) / np.linalg.norm(all_w - all_d)
    assert close(model[(MODEL, "update_ratio")], float(ratio), rel=1e-8)


# --- outputs ---------------------------------------------------------------------------
def test_output_stats_match_numpy():
    out = RNG.random((8, 3))
    targets = np.eye(3)[RNG.integers(0, 3, 8)]
    stats = probes.output_stats(out, targets, loss=0.7, classification=True)
    assert close(stats[(MODEL, "out_mean")], float(out.mean()))
    per_unit_std = [np.std(out[:, k]) for k in range(3)]
    assert close(stats[(MODEL, "out_std")], float(np.mean(per_unit_std)))
    assert stats[(MODEL, "out_min")] == out.min() and stats[(MODEL, "out_max")] == out.max()
    right = sum(int(np.argmax(o) == np.argmax(t)) for o, t in zip(out, targets))
    assert close(stats[(MODEL, "accuracy")], right / 8)
    assert stats[(MODEL, "probe_loss")] == 0.7


def test_pinned_outputs_have_zero_spread():
    out = np.full((4, 2), 0.5)
    stats = probes.output_stats(out, np.eye(2)[[0, 1, 1, 0]], classification=True)
    assert stats[(MODEL, "out_std")] == 0.0


def test_single_unit_accuracy_uses_threshold():
    out = np.array([[0.2], [0.8], [0.6], [0.4]])
    y = np.array([[0.0], [1.0], [0.0], [0.0]])
    assert probes.accuracy(out, y, threshold=0.5) == 0.75
    # targets in {-1, 1} with a tanh-like output: threshold 0
    assert probes.accuracy(out - 0.5, 2 * y - 1, threshold=0.0) == 0.75


def test_accuracy_counts_nan_rows_wrong():
    out = np.array([[np.nan, 0.1], [0.9, 0.1]])
    assert probes.accuracy(out, np.eye(2)[[0, 0]]) == 0.5


def test_regression_has_no_accuracy():
    stats = probes.output_stats(RNG.normal(size=(5, 1)), RNG.normal(size=(5, 1)), classification=False)
    assert (MODEL, "accuracy") not in stats


# --- events ------------------------------------------------------------------------------
def _double_sigmoid(z):
    # the seed's bug: 1 / (1 + sigmoid(-z))
    return 1.0 / (1.0 + 1.0 / (1.0 + np.exp(z)))


def test_output_range_of_known_functions():
    lo, hi = probes.output_range(lambda z: 1 / (1 + np.exp(-z)), 1)
    assert lo < 1e-6 and hi > 1 - 1e-6
    lo, hi = probes.output_range(_double_sigmoid, 2)
    assert abs(lo - 0.5) < 1e-6 and hi > 1 - 1e-6
    lo, hi = probes.output_range(np.tanh, 1)
    assert lo < -1 + 1e-6 and hi > 1 - 1e-6
    # Unbounded outputs are unbounded, not clipped to the grid: a linear output reaches any target.
    lo, hi = probes.output_range(lambda z: z, 1)
    assert lo == -np.inf and hi == np.inf
    lo, hi = probes.output_range(lambda z: np.maximum(z, 0), 3)
    assert lo == 0 and hi == np.inf


def test_output_range_of_a_broken_function_is_nan():
    def broken(z):
        raise RuntimeError("boom")

    assert all(math.isnan(v) for v in probes.output_range(broken, 2))


def test_data_facts_for_the_seed_xor():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    y = np.array([0, 1, 1, 0])
    Y = np.eye(2)[y]
    facts = probes.data_facts(X, y, Y, _double_sigmoid, 2)
    assert facts["n_samples"] == 4 and facts["n_features"] == 2
    assert facts["x_abs_mean"] == 0.5 and facts["x_abs_max"] == 1.0
    assert close(facts["x_std"], float(np.std(X)))
    assert facts["y_shape"] == [4]
    assert facts["target_kind"] == "labels"
    assert facts["classes"] == [0, 1]
    assert facts["target_min"] == 0.0 and facts["target_max"] == 1.0
    assert facts["out_units"] == 2
    # Half the one-hot entries are 0, below the double sigmoid's floor of 0.5.
    assert facts["targets_outside"] == 0.5
    sig = probes.data_facts(X, y, Y, lambda z: 1 / (1 + np.exp(-z)), 2)
    assert sig["targets_outside"] == 0.0


@pytest.mark.parametrize(
    "y_raw, Y, kind",
    [
        (np.eye(3)[[0, 2, 1]], np.eye(3)[[0, 2, 1]], "onehot"),
        (np.array([0, 1, 1]), np.array([[0.0], [1.0], [1.0]]), "binary"),
        (np.array([0.3, 1.5, -2.0]), np.array([[0.3], [1.5], [-2.0]]), "continuous"),
        (np.array([2, 0, 1]), np.eye(3)[[2, 0, 1]], "labels"),
    ],
)
def test_target_kinds(y_raw, Y, kind):
    assert probes.target_kind(y_raw, Y) == kind


def test_param_summary_and_duplicates():
    W = RNG.random((3, 4))
    b = RNG.random(4)
    s = probes.param_summary(W, b, activation="sigmoid")
    assert (s["w_min"], s["w_max"]) == (W.min(), W.max())
    assert close(s["w_mean"], float(W.mean())) and close(s["w_std"], float(W.std()), rel=1e-9)
    assert (s["b_min"], s["b_max"]) == (b.min(), b.max())
    assert close(s["b_std"], float(b.std()), rel=1e-9)
    assert (s["fan_in"], s["fan_out"], s["has_bias"]) == (3, 4, True)
    assert s["duplicate_units"] == 0
    assert probes.param_summary(W)["b_min"] is None


def _brute_force_duplicates(W, b, atol):
    units = W.T if b is None else np.hstack([W.T, b[:, None]])
    n = units.shape[0]
    return sum(
        any(j != i and np.max(np.abs(units[i] - units[j])) <= atol for j in range(n)) for i in range(n)
    )


@pytest.mark.parametrize("case", ["zeros", "two_copies", "bias_differs", "near", "random"])
def test_duplicate_units_against_brute_force(case):
    W = RNG.normal(size=(5, 6))
    b = RNG.normal(size=6)
    if case == "zeros":
        W[:], b[:] = 0.0, 0.0
    elif case == "two_copies":
        W[:, 4] = W[:, 1]
        b[4] = b[1]
    elif case == "bias_differs":
        W[:, 4] = W[:, 1]
    elif case == "near":
        W[:, 2] = W[:, 0] + 1e-13
        b[2] = b[0]
    expected = _brute_force_duplicates(W, b, 1e-12)
    assert probes.duplicate_units(W, b, 1e-12) == expected
    assert {"zeros": 6, "two_copies": 2, "bias_differs": 0, "near": 2, "random": 0}[case] == expected


def test_duplicate_units_large_constant_layer_is_fast_enough():
    W = np.full((784, 256), 0.01)
    assert probes.duplicate_units(W, np.zeros(256)) == 256


# --- robustness: never raise on bad numbers ----------------------------------------------
special_floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, 1e300, -1e300, 1e-300, np.nan, np.inf, -np.inf]
)
odd_shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)
odd_arrays = (
    hnp.arrays(np.float64, odd_shapes, elements=special_floats)
    | hnp.arrays(np.float32, odd_shapes, elements=st.floats(allow_nan=True, allow_infinity=True, width=32))
    | hnp.arrays(np.int64, odd_shapes, elements=st.integers(-(2**40), 2**40))
)


@settings(max_examples=150, deadline=None)
@given(z=odd_arrays, a=odd_arrays, act=st.sampled_from(["sigmoid", "relu", None, "weird"]))
def test_activation_stats_never_raise(z, a, act):
    stats = probes.activation_stats("h", z, a, act)
    assert all(q in QUANTITIES for _, q in stats)
    assert all(isinstance(v, float) for v in stats.values())


@settings(max_examples=150, deadline=None)
@given(w=odd_arrays, g=odd_arrays, d=odd_arrays, b=st.none() | odd_arrays)
def test_param_stats_never_raise(w, g, d, b):
    stats, _ = probes.param_stats("l", w, b, grad_w=g, grad_b=b, delta_w=d, delta_b=b)
    assert all(q in QUANTITIES for _, q in stats)


@settings(max_examples=100, deadline=None)
@given(out=odd_arrays, t=odd_arrays)
def test_output_stats_never_raise(out, t):
    stats = probes.output_stats(out, t, loss=float("nan"), classification=True)
    assert all(q in QUANTITIES for _, q in stats)


@settings(max_examples=100, deadline=None)
@given(w=odd_arrays, b=st.none() | odd_arrays)
def test_param_summary_never_raises(w, b):
    summary = probes.param_summary(w, b)
    assert summary["duplicate_units"] >= 0


@settings(max_examples=100, deadline=None)
@given(x=odd_arrays, y=odd_arrays)
def test_data_facts_never_raise(x, y):
    facts = probes.data_facts(x, y, y, lambda z: z, 2)
    assert "target_kind" in facts


# --- the probe batch ----------------------------------------------------------------------
def test_probe_batch_takes_everything_when_it_fits():
    assert probes.probe_batch_indices(np.array([0, 1, 1, 0]), 4, 64).tolist() == [0, 1, 2, 3]


def test_probe_batch_shares_classes_fairly_and_interleaves_them():
    labels = np.array([0] * 90 + [1] * 8 + [2] * 2)
    idx = probes.probe_batch_indices(labels, 100, 20)
    assert len(idx) == len(set(idx.tolist())) == 20
    counts = np.bincount(labels[idx], minlength=3).tolist()
    assert counts == [10, 8, 2]  # the small classes give all they have, the rest goes to class 0
    assert labels[idx[:3]].tolist() == [0, 1, 2]  # round-robin order
    spread = np.flatnonzero(labels == 0)[:90]
    picked0 = np.sort(idx[labels[idx] == 0])
    assert picked0.min() == spread.min() and picked0.max() == spread.max()  # spread over the class


def test_probe_batch_without_labels_is_evenly_spaced():
    idx = probes.probe_batch_indices(None, 1000, 10)
    assert idx.tolist() == np.linspace(0, 999, 10).round().astype(int).tolist()


@settings(max_examples=100, deadline=None)
@given(
    labels=st.lists(st.integers(0, 5), min_size=1, max_size=200),
    size=st.integers(0, 80),
)
def test_probe_batch_property(labels, size):
    labels = np.array(labels)
    idx = probes.probe_batch_indices(labels, len(labels), size)
    assert len(idx) == min(size, len(labels))
    assert len(set(idx.tolist())) == len(idx)
    assert all(0 <= i < len(labels) for i in idx.tolist())
    if 0 < size < len(labels):
        counts = np.bincount(labels[idx], minlength=6)
        available = np.bincount(labels, minlength=6)
        # fair: a class short of the largest share gave everything it had
        top = counts.max()
        assert all(c >= top - 1 or c == a for c, a in zip(counts, available))


def test_histogram_counts_finite_values_only():
    a = np.array([[0.0, 1.0, np.nan], [0.5, np.inf, 1.0]])
    hist = probes.histogram(a, bins=4)
    assert sum(hist["counts"]) == 4 and hist["edges"][0] == 0.0 and hist["edges"][-1] == 1.0
    assert probes.histogram(np.full(3, np.nan)) is None
    constant = probes.histogram(np.full(5, 2.0), bins=3)
    assert sum(constant["counts"]) == 5


@settings(max_examples=100, deadline=None)
@given(a=odd_arrays, bins=st.integers(1, 40))
def test_histogram_never_raises(a, bins):
    hist = probes.histogram(a, bins)
    assert hist is None or len(hist["edges"]) == len(hist["counts"]) + 1
