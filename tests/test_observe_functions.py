"""User functions: captured pairs, locations, declared names (netdoctor.observe.functions)."""

from __future__ import annotations

import sys

import numpy as np

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
