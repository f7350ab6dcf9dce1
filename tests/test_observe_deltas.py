"""The derivative a backward pass uses, read from its deltas (netdoctor.observe.deltas)."""

from __future__ import annotations

import numpy as np
import pytest

from netdoctor.identify import identify_pairs
from netdoctor.observe.arrays import Found, Path, Root
from netdoctor.observe.chain import find_chain
from netdoctor.observe.deltas import derivative_factors

rng = np.random.default_rng(2)


def found(namespace):
    return [Found(Path(Root("globals", k, obj=namespace)), v) for k, v in namespace.items()]


@pytest.mark.parametrize("factor, expected", [
    (lambda z: 1 - np.tanh(z) ** 2, "tanh"),                  # right: tanh'(z)
    (lambda z: np.ones_like(z), "missing_derivative"),        # forgotten
    (lambda z: 1 - np.tanh(np.tanh(z)) ** 2, "tanh_derivative_of_activation"),
])
def test_the_factor_between_deltas_is_identified(factor, expected):
    X = rng.normal(size=(30, 2))
    Y = rng.normal(size=(30, 1))
    W1, b1, W2, b2 = rng.normal(size=(2, 5)), rng.normal(size=5), rng.normal(size=(5, 1)), rng.normal(size=1)
    Z1 = X @ W1 + b1
    A1 = np.tanh(Z1)
    Z2 = A1 @ W2 + b2                                          # a linear output
    dZ2 = (Z2 - Y) / 30
    dZ1 = (dZ2 @ W2.T) * factor(Z1)                            # the code's hidden delta
    ns = dict(X=X, W1=W1, b1=b1, Z1=Z1, A1=A1, W2=W2, b2=b2, Z2=Z2, dZ2=dZ2, dZ1=dZ1)
    spec = find_chain(found(ns))
    claimed = [X.T @ dZ1, A1.T @ dZ2]                          # what the code applied, (in, out)
    factors = derivative_factors(spec, [X, A1], [Z1, Z2], [W1, W2], claimed, found(ns))
    assert set(factors) == {0}                                 # the hidden layer only
    z, g, delta = factors[0]
    assert delta.name == "dZ1"
    assert identify_pairs(z, g, "derivative").identified == expected


def test_no_factor_without_the_deltas():
    X = rng.normal(size=(10, 2))
    W1, W2 = rng.normal(size=(2, 3)), rng.normal(size=(3, 1))
    Z1 = X @ W1
    A1 = np.tanh(Z1)
    Z2 = A1 @ W2
    ns = dict(X=X, W1=W1, Z1=Z1, A1=A1, W2=W2, Z2=Z2)
    spec = find_chain(found(ns))
    claimed = [rng.normal(size=(2, 3)), rng.normal(size=(3, 1))]
    assert derivative_factors(spec, [X, A1], [Z1, Z2], [W1, W2], claimed, found(ns)) == {}


def test_the_best_aligned_array_is_the_delta_not_the_first_close_one():
    # Points inside a small circle (a minority of 1s): on this draw the output A2 itself
    # points almost along the gradient A1 @ (A2 - Y).T, and it comes before dZ2 among the
    # arrays. The factor must still be read from dZ2.
    draw = np.random.default_rng(2)
    X = draw.uniform(-1, 1, size=(2, 200))                   # samples in columns
    Y = (np.sum(X ** 2, axis=0, keepdims=True) < 0.36).astype(float)
    W1, b1 = draw.normal(size=(8, 2)) * 0.5, np.zeros((8, 1))
    W2, b2 = draw.normal(size=(1, 8)) * 0.5, np.zeros((1, 1))
    Z1 = W1 @ X + b1
    A1 = np.tanh(Z1)
    Z2 = W2 @ A1 + b2
    A2 = 1 / (1 + np.exp(-Z2))
    dZ2 = A2 - Y
    dZ1 = W2.T @ dZ2                                         # the derivative forgotten
    ns = dict(X=X, Y=Y, W1=W1, b1=b1, Z1=Z1, A1=A1, W2=W2, b2=b2, Z2=Z2, A2=A2, dZ2=dZ2, dZ1=dZ1)
    spec = find_chain(found(ns))
    rows_of = lambda a: a.T
    acts_in, zs = [rows_of(X), rows_of(A1)], [rows_of(Z1), rows_of(Z2)]
    claimed = [X @ dZ1.T, A1 @ dZ2.T]                        # (in, out)
    cos = abs(np.sum((A1 @ A2.T) * claimed[1])) / (np.linalg.norm(A1 @ A2.T) * np.linalg.norm(claimed[1]))
    assert cos > 0.999                                       # A2 is aligned enough to be taken
    factors = derivative_factors(spec, acts_in, zs, [W1.T, W2.T], claimed, found(ns))
    z, g, delta = factors[0]
    assert identify_pairs(z, g, "derivative").identified == "missing_derivative"
