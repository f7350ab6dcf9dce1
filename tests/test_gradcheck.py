"""gradcheck.check against losses whose gradients are known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netdoctor import gradcheck


def quadratic_problem(seed=0):
    """L(W, v) = 0.5 * sum(A * W**2) + c . v + 0.5 |v|^2 ; dL/dW = A * W, dL/dv = c + v."""
    rng = np.random.default_rng(seed)
    A = rng.uniform(0.5, 2.0, size=(3, 4))
    c = rng.normal(size=5)
    W = rng.normal(size=(3, 4))
    v = rng.normal(size=5)

    def loss():
        return 0.5 * float(np.sum(A * W**2)) + float(c @ v) + 0.5 * float(v @ v)

    def true_grads():
        return [A * W, c + v]

    return [W, v], loss, true_grads


def test_correct_gradient_agrees():
    params, loss, true_grads = quadratic_problem()
    checks = gradcheck.check(params, loss, true_grads())
    assert len(checks) == 2
    for chk, p in zip(checks, params):
        assert chk.rel_err < 1e-8
        assert chk.cosine == pytest.approx(1.0, abs=1e-10)
        assert chk.scale == pytest.approx(1.0, abs=1e-8)
        assert chk.n_checked == p.size


@pytest.mark.parametrize("factor", [3.0, 0.25])
def test_scaled_gradient_reports_the_factor(factor):
    params, loss, true_grads = quadratic_problem(1)
    checks = gradcheck.check(params, loss, [factor * g for g in true_grads()])
    for chk in checks:
        assert chk.scale == pytest.approx(factor, rel=1e-7)
        assert chk.cosine == pytest.approx(1.0, abs=1e-10)
        # |f g - g| / (|f g| + |g|) = |f - 1| / (f + 1)
        assert chk.rel_err == pytest.approx(abs(factor - 1) / (factor + 1), rel=1e-6)


def test_flipped_and_random_gradients_are_wrong():
    params, loss, true_grads = quadratic_problem(2)
    flipped = gradcheck.check(params, loss, [-g for g in true_grads()])
    assert all(c.cosine == pytest.approx(-1.0, abs=1e-10) and c.rel_err == pytest.approx(1.0) for c in flipped)
    rng = np.random.default_rng(9)
    random = gradcheck.check(params, loss, [rng.normal(size=g.shape) for g in true_grads()])
    assert all(c.rel_err > 1e-2 for c in random)


def test_parameters_restored_bit_for_bit():
    params, loss, true_grads = quadratic_problem(3)
    params[0][0, 0] = 0.1  # not exactly representable: x + h - h would not give it back
    before = [p.copy() for p in params]
    gradcheck.check(params, loss, true_grads())
    for p, b in zip(params, before):
        assert np.array_equal(p, b)


def test_restored_even_when_the_loss_raises():
    W = np.array([0.1, 0.2, 0.3])
    before = W.copy()
    calls = []

    def loss():
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("boom")
        return 1.0

    [chk] = gradcheck.check([W], loss, [np.ones(3)])
    assert math.isnan(chk.rel_err) and math.isnan(chk.scale)
    assert np.array_equal(W, before)


def test_samples_at_most_max_entries_and_counts_loss_calls():
    W = np.random.default_rng(0).normal(size=(40, 25))
    calls = []

    def loss():
        calls.append(1)
        return 0.5 * float(np.sum(W**2))

    [chk] = gradcheck.check([W], loss, [W.copy()], max_entries=64, rng=np.random.default_rng(5))
    assert chk.n_checked == 64
    assert len(calls) == 1 + 2 * 64  # one unperturbed loss, then two per entry
    assert chk.rel_err < 1e-8


def test_sampling_is_reproducible_with_a_seeded_rng():
    W = np.random.default_rng(0).normal(size=(30, 30))
    wrong = W.copy()
    wrong[np.random.default_rng(1).random(W.shape) < 0.1] *= -1  # some entries wrong

    def loss():
        return 0.5 * float(np.sum(W**2))

    a = gradcheck.check([W], loss, [wrong], max_entries=20, rng=np.random.default_rng(4))
    b = gradcheck.check([W], loss, [wrong], max_entries=20, rng=np.random.default_rng(4))
    assert a == b


def test_works_in_place_on_a_non_contiguous_view():
    base = np.random.default_rng(0).normal(size=(4, 6))
    view = base.T  # the loss reads `base`, the check perturbs its transposed view

    def loss():
        return float(np.sum(np.sin(base)))

    [chk] = gradcheck.check([view], loss, [np.cos(view)])
    assert chk.rel_err < 1e-8


def test_flat_directions_agree():
    W = np.zeros(4)
    [chk] = gradcheck.check([W], lambda: 1.0, [np.zeros(4)])
    assert chk.rel_err == 0.0 and chk.cosine == 1.0 and chk.scale == 1.0


def test_claimed_zero_where_the_loss_moves_is_wrong():
    W = np.ones(3)
    [chk] = gradcheck.check([W], lambda: float(np.sum(W**2)), [np.zeros(3)])
    assert chk.rel_err == pytest.approx(1.0)
    assert chk.scale == pytest.approx(0.0)
    assert math.isnan(chk.cosine)


@pytest.mark.parametrize(
    "loss, claimed",
    [
        (lambda: float("nan"), np.ones(3)),
        (lambda: float("inf"), np.ones(3)),
        (lambda: 1.0, np.array([1.0, np.nan, 0.0])),
        (lambda: 1.0, np.ones(4)),          # wrong shape
        (lambda: 1.0, None),                 # nothing claimed
        (lambda: "not a number", np.ones(3)),
    ],
)
def test_bad_numbers_give_nan_fields_never_raise(loss, claimed):
    W = np.array([1.0, 2.0, 3.0])
    [chk] = gradcheck.check([W], loss, [claimed])
    assert math.isnan(chk.rel_err) and math.isnan(chk.cosine) and math.isnan(chk.scale)


def test_odd_params_give_nan_fields():
    checks = gradcheck.check(
        [np.arange(3), np.empty(0), None, np.ones(2)],  # ints, empty, None, and one claim missing
        lambda: 1.0,
        [np.ones(3), np.empty(0), np.ones(1)],
    )
    assert len(checks) == 4
    assert all(math.isnan(c.rel_err) for c in checks)


def test_read_only_param_gives_nan_and_stays_unchanged():
    W = np.ones(3)
    W.setflags(write=False)
    [chk] = gradcheck.check([W], lambda: float(np.sum(W)), [np.ones(3)])
    assert math.isnan(chk.rel_err)
    assert np.array_equal(W, np.ones(3))


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=1, max_size=6),
    claimed=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=0, max_size=6),
)
def test_never_raises_on_any_numbers(values, claimed):
    W = np.array(values, dtype=np.float64)
    before = W.copy()
    checks = gradcheck.check([W], lambda: float(np.sum(W**2)), [np.array(claimed)])
    assert len(checks) == 1
    assert np.array_equal(W, before, equal_nan=True)
