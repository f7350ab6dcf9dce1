"""Activation functions, their derivatives, and one table that names them.

Every function takes the pre-activation ``z`` (samples in rows) and returns an array
of the same shape. Derivatives are written as functions of ``z`` too: that is the
form backprop needs, and the form whose confusion with ``f'(a)`` is a classic bug.

:data:`ACTIVATIONS` is the single source the reference MLP and the function
identifier (:mod:`netdoctor.identify`) both read, so "sigmoid" means one thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

Array = np.ndarray

LEAKY_SLOPE = 0.01  # the slope most code uses for negative inputs


def sigmoid(z: Array) -> Array:
    # 1/(1+exp(-z)) overflows for very negative z; evaluating exp only on -|z| keeps
    # every intermediate in (0, 1] and the result exact in both tails.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_derivative(z: Array) -> Array:
    s = sigmoid(z)
    return s * (1.0 - s)


def tanh(z: Array) -> Array:
    return np.tanh(z)


def tanh_derivative(z: Array) -> Array:
    t = np.tanh(z)
    return 1.0 - t * t


def relu(z: Array) -> Array:
    return np.maximum(z, 0.0)


def relu_derivative(z: Array) -> Array:
    # The kink at 0 gets slope 0, the usual convention.
    return (z > 0).astype(np.float64)


def leaky_relu(z: Array, slope: float = LEAKY_SLOPE) -> Array:
    return np.where(z > 0, z, slope * z)


def leaky_relu_derivative(z: Array, slope: float = LEAKY_SLOPE) -> Array:
    return np.where(z > 0, 1.0, slope)


def softplus(z: Array) -> Array:
    return np.logaddexp(0.0, z)  # log(1 + e^z) without overflow


def linear(z: Array) -> Array:
    return z


def linear_derivative(z: Array) -> Array:
    return np.ones_like(z, dtype=np.float64)


def softmax(z: Array, axis: int = -1) -> Array:
    """Softmax along `axis` (by default each row: one sample's class scores)."""
    # Subtracting the maximum changes nothing mathematically and prevents overflow.
    shifted = z - np.max(z, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)


def softmax_diagonal(z: Array) -> Array:
    """The diagonal of softmax's Jacobian, s_i (1 - s_i). Not the whole derivative:
    softmax couples the units of a row, so backprop uses :func:`softmax_backward`."""
    s = softmax(z)
    return s * (1.0 - s)


def softmax_backward(a: Array, grad_a: Array) -> Array:
    """dL/dz from dL/da for a row-wise softmax with output `a` (the Jacobian-vector product)."""
    return a * (grad_a - np.sum(grad_a * a, axis=-1, keepdims=True))


@dataclass(frozen=True)
class Activation:
    name: str
    function: Callable[[Array], Array]
    derivative: Callable[[Array], Array]  # of z; for softmax only the Jacobian's diagonal
    range: tuple[float, float]            # bounds of its values (sigmoid never reaches them, relu reaches 0)
    elementwise: bool = True              # False for softmax: each output depends on the row

    @property
    def f0(self) -> float:
        """Value at z = 0 (for softmax: of a row of two zeros)."""
        zero = np.zeros((1, 2))
        return float(self.function(zero)[0, 0])


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("sigmoid", sigmoid, sigmoid_derivative, (0.0, 1.0)),
        Activation("tanh", tanh, tanh_derivative, (-1.0, 1.0)),
        Activation("relu", relu, relu_derivative, (0.0, np.inf)),
        Activation("leaky_relu", leaky_relu, leaky_relu_derivative, (-np.inf, np.inf)),
        Activation("softplus", softplus, sigmoid, (0.0, np.inf)),
        Activation("linear", linear, linear_derivative, (-np.inf, np.inf)),
        Activation("softmax", softmax, softmax_diagonal, (0.0, 1.0), elementwise=False),
    )
}

# Other names people use for the same functions.
ALIASES = {"identity": "linear", "logistic": "sigmoid", "expit": "sigmoid"}

HIDDEN = ("sigmoid", "tanh", "relu", "leaky_relu")
OUTPUTS = ("sigmoid", "softmax", "linear")


def canonical_name(name: str) -> str:
    """'identity' -> 'linear' etc.; unknown names come back unchanged."""
    return ALIASES.get(name, name)


def get(name: str) -> Activation:
    try:
        return ACTIVATIONS[canonical_name(name)]
    except KeyError:
        valid = ", ".join(ACTIVATIONS)
        raise ValueError(f"unknown activation {name!r}; expected one of: {valid}") from None
