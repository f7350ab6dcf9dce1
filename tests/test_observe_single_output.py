"""Single-output models: scalar and vector weights, numbers as parameters.

Linear and logistic regression, one neuron, ``y = w * x + b`` with ``w`` a plain
float: the chain search must find them from values alone, and must not invent
one where the values do not hold.
"""

from __future__ import annotations

import numpy as np

from netdoctor.observe.arrays import Root, UserTypes, discover, scalar_box
from netdoctor.observe.chain import find_chain, observe
from netdoctor.observe.arrays import Context

rng = np.random.default_rng(3)


def _found(namespace: dict):
    return list(discover([(Root("globals", "", obj=namespace), namespace)], UserTypes([])).values())


def test_a_scalar_weight_and_bias_held_as_plain_floats():
    g = {"X": rng.uniform(-1, 1, size=50), "w": 0.7, "b": -0.2}
    g["yhat"] = g["w"] * g["X"] + g["b"]
    spec = find_chain(_found(g))
    assert spec is not None and len(spec.layers) == 1
    layer = spec.layers[0]
    assert (layer.W.name, layer.b.name, layer.op, spec.input.name, spec.output.name) == ("w", "b", "sx", "X", "yhat")
    assert (spec.n_in, spec.n_out) == (1, 1)
    forward = observe(spec, Context(None))
    assert forward is not None and forward.x.shape == (50, 1)


def test_a_vector_weight_of_a_linear_regression():
    g = {"X": rng.normal(size=(40, 3)), "w": rng.normal(size=3), "c": 0.5}
    g["pred"] = g["X"] @ g["w"] + g["c"]
    spec = find_chain(_found(g))
    assert spec is not None and spec.layers[0].op == "xw" and spec.layers[0].W.name == "w"
    assert spec.layers[0].to_io(g["w"]).shape == (3, 1)
    assert spec.layers[0].from_io(np.ones((3, 1))).shape == (3,)


def test_a_logistic_neuron_with_a_vector_weight():
    g = {"X": rng.normal(size=(30, 2)), "w": rng.normal(size=2), "b": 0.1}
    g["p"] = 1 / (1 + np.exp(-(g["X"] @ g["w"] + g["b"])))
    spec = find_chain(_found(g))
    assert spec is not None and spec.layers[0].function == "sigmoid" and spec.output.name == "p"


def test_no_chain_where_the_values_do_not_hold():
    g = {"X": rng.uniform(-1, 1, size=50), "w": 0.7, "b": -0.2}
    g["yhat"] = g["w"] * g["X"] + g["b"] + rng.normal(scale=1e-3, size=50)   # not w * X + b
    assert find_chain(_found(g)) is None
    counters = {"X": rng.uniform(-1, 1, size=50), "epoch": 3}
    counters["yhat"] = 3 * counters["X"]   # a loop counter is not a weight
    assert find_chain(_found(counters)) is None


def test_a_number_keeps_its_box_until_it_is_rebound():
    g = {"w": 0.5}
    first = {f.name: f.array for f in _found(g)}["w"]
    again = {f.name: f.array for f in _found(g)}["w"]
    assert first is again                                   # same number: same array
    g["w"] = g["w"] - 0.1
    moved = {f.name: f.array for f in _found(g)}["w"]
    assert moved is not first and float(moved) == 0.4      # rebound: a new array, as W = W - dW
    assert scalar_box(None, "text") is None                 # only numbers are boxed


def test_a_long_list_of_samples_is_sampled_not_walked():
    data = [(rng.normal(size=(4, 1)), rng.normal(size=(2, 1))) for _ in range(5000)]
    g = {"training_data": data, "W": rng.normal(size=(2, 4))}
    names = {f.name for f in _found(g)}
    assert "W" in names and len(names) < 10                 # not 10,000 arrays
