"""User functions: captured pairs, locations, declared names (netdoctor.observe.functions)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from netdoctor.observe.functions import FunctionWatch, bound_callable, declared_name, location_of


def sigmoid_prime(z):
    # a derivative, named like one
    s = 1 / (1 + np.exp(-z))
    return s * (1 - s)


class Layer:
    def activationFunction(self, vec, type="sigmoid"):
        return 1 / (1 + np.exp(-vec))


def _watch_calls(func, *args):
    """Run func(*args) under a tiny profiler that feeds a FunctionWatch like the observer does."""
    watch = FunctionWatch(func.__code__ if hasattr(func, "__code__") else func.__func__.__code__)
    pending = {}

    def prof(frame, event, arg):
        if frame.f_code is watch.code:
            if event == "call" and watch.wants():
                pending[id(frame)] = watch.start(frame)
            elif event == "return" and id(frame) in pending:
                call = pending.pop(id(frame))
                if call is not None:
                    watch.finish(call, arg)

    sys.setprofile(prof)
    try:
        for a in args:
            func(a)
    finally:
        sys.setprofile(None)
    return watch


def test_pairs_of_an_array_to_array_function_are_kept():
    zs = [np.linspace(-3, 3, 5).reshape(5, 1), np.linspace(-1, 1, 5).reshape(5, 1)]
    watch = _watch_calls(sigmoid_prime, *zs)
    assert watch.same_shape is True
    z, a = watch.pairs()
    assert z.shape == a.shape == (10, 1)
    s = 1 / (1 + np.exp(-z))
    assert np.allclose(a, s * (1 - s))


def test_methods_skip_self_and_keep_the_array_argument():
    layer = Layer()
    watch = _watch_calls(layer.activationFunction, np.zeros((2, 1)), np.ones((2, 1)))
    z, a = watch.pairs()
    assert np.allclose(a, 1 / (1 + np.exp(-z)))


def test_location_points_at_the_def_line_with_the_body():
    loc = location_of(Layer.activationFunction.__code__)
    assert loc.function == "Layer.activationFunction"
    assert loc.file == __file__
    lines = [text for _, text in loc.source]
    assert lines[0].strip().startswith("def activationFunction")
    assert any("return 1 / (1 + np.exp(-vec))" in text for text in lines)


def test_declared_names_come_from_the_function_name_only():
    assert declared_name(sigmoid_prime.__code__) == "sigmoid"
    assert declared_name(Layer.activationFunction.__code__) is None


def test_bound_callable_finds_functions_and_methods():
    seen = {}

    def prof(frame, event, arg):
        if event == "call" and frame.f_code in (sigmoid_prime.__code__, Layer.activationFunction.__code__):
            seen[frame.f_code.co_name] = bound_callable(frame)

    layer = Layer()
    sys.setprofile(prof)
    try:
        sigmoid_prime(np.zeros(2))
        layer.activationFunction(np.zeros(2))
    finally:
        sys.setprofile(None)
    assert seen["sigmoid_prime"] is sigmoid_prime
    assert np.allclose(seen["activationFunction"](np.zeros(1)), 0.5)


# --- one function, two behaviours (Trask style) ----------------------------------------------


def nonlin(x, deriv=False):
    if deriv:
        return x * (1 - x)
    return 1 / (1 + np.exp(-x))


class TraskNet:
    def sigmoid(self, x, deriv=False):
        if deriv:
            return x * (1 - x)
        return 1 / (1 + np.exp(-x))


def _watch_trask(func, code, steps=6):
    """Call func as a training loop would: activation, then derivative of the activation."""
    watch = FunctionWatch(code)
    pending = {}

    def prof(frame, event, arg):
        if frame.f_code is watch.code:
            if event == "call" and watch.wants():
                pending[id(frame)] = watch.start(frame)
            elif event == "return" and id(frame) in pending:
                call = pending.pop(id(frame))
                if call is not None:
                    watch.finish(call, arg)

    rng = np.random.default_rng(0)
    sys.setprofile(prof)
    try:
        for _ in range(steps):
            a = func(rng.normal(0, 3, (8, 4)))
            func(a, True)
            func(rng.normal(0, 3, (8, 4)), deriv=False)
    finally:
        sys.setprofile(None)
    return watch


def test_one_function_called_with_a_derivative_flag_is_two_behaviours():
    from netdoctor import identify

    for func, code in ((nonlin, nonlin.__code__), (TraskNet().sigmoid, TraskNet.sigmoid.__code__)):
        watch = _watch_trask(func, code)
        assert len(watch.behaviours()) == 2
        z, a = watch.pairs()                       # the plain call: the activation alone
        assert np.allclose(a, 1 / (1 + np.exp(-z)))
        assert identify.identify_pairs(z, a, "hidden").identified == "sigmoid"
        g, d = watch.pairs(behaviour="derivative")  # the deriv=True call alone
        assert np.allclose(d, g * (1 - g))
        assert watch.pairs(behaviour="deriv=True") is not None
        assert watch.identify("hidden").identified == "sigmoid"


def test_a_function_is_named_only_when_early_and_late_calls_agree():
    state = {"calls": 0}

    def shifty(z):
        state["calls"] += 1
        return np.tanh(z) if state["calls"] <= 6 else np.maximum(z, 0)

    rng = np.random.default_rng(1)
    watch = _watch_calls(shifty, *[rng.normal(0, 2, (16, 3)) for _ in range(12)])
    assert watch.identify("hidden").identified is None          # two behaviours mixed: no name
    once = _watch_calls(lambda z: np.tanh(z), rng.normal(0, 2, (16, 3)))
    ident = once.identify("hidden")
    assert ident.identified is None and "1 call" in ident.description  # one step proves nothing
    steady = _watch_calls(lambda z: np.tanh(z),
                          *[rng.normal(0, 2, (16, 3)) for _ in range(12)])
    assert steady.identify("hidden").identified == "tanh"


def test_identification_carries_a_few_observed_pairs_to_check_by_hand():
    from netdoctor import identify

    z = np.linspace(-4, 4, 41)
    double = 1 / (1 + np.exp(-1 / (1 + np.exp(-z))))
    ident = identify.identify_pairs(z, double, "hidden")
    assert 3 <= len(ident.samples) <= 4
    for zi, ai in ident.samples:
        assert ai == pytest.approx(1 / (1 + np.exp(-1 / (1 + np.exp(-zi)))))
    assert any(abs(zi) < 0.2 for zi, _ in ident.samples)   # the value at 0 is among them
