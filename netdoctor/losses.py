"""The three losses of the reference MLP, as means, and their gradients w.r.t. the output.

* ``mse``: mean over samples of the mean over outputs of (out - Y)^2
* ``bce``: mean over samples AND outputs of -(Y log out + (1 - Y) log(1 - out))
* ``ce``:  mean over samples of -sum over outputs of Y log out

Logs are taken of outputs clipped into [EPS, 1 - EPS] so that a saturated or
out-of-range output gives a large finite loss instead of inf/NaN. The gradients
are the exact derivatives of these clipped losses (zero where the clip is active),
so finite differences of :func:`value` agree with :func:`gradient` everywhere but
at the clip edges themselves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

Array = np.ndarray

EPS = 1e-12


def mse(out: Array, Y: Array) -> float:
    return float(np.mean((out - Y) ** 2))


def mse_gradient(out: Array, Y: Array) -> Array:
    return 2.0 * (out - Y) / out.size


def bce(out: Array, Y: Array) -> float:
    p = np.clip(out, EPS, 1.0 - EPS)
    return float(-np.mean(Y * np.log(p) + (1.0 - Y) * np.log(1.0 - p)))


def bce_gradient(out: Array, Y: Array) -> Array:
    p = np.clip(out, EPS, 1.0 - EPS)
    inside = (out > EPS) & (out < 1.0 - EPS)
    return np.where(inside, (p - Y) / (p * (1.0 - p)), 0.0) / out.size


def ce(out: Array, Y: Array) -> float:
    p = np.maximum(out, EPS)
    return float(-np.sum(Y * np.log(p)) / len(out))


def ce_gradient(out: Array, Y: Array) -> Array:
    p = np.maximum(out, EPS)
    return np.where(out > EPS, -Y / p, 0.0) / len(out)


@dataclass(frozen=True)
class Loss:
    name: str
    value: Callable[[Array, Array], float]
    gradient: Callable[[Array, Array], Array]  # d value / d out, same shape as out


LOSSES: dict[str, Loss] = {
    "mse": Loss("mse", mse, mse_gradient),
    "bce": Loss("bce", bce, bce_gradient),
    "ce": Loss("ce", ce, ce_gradient),
}


def get(name: str) -> Loss:
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; expected one of: {', '.join(LOSSES)}") from None


def uninformed_loss(loss: str, Y: Array) -> float:
    """The loss of a network that ignores its input and predicts the 'know-nothing' answer.

    That is what a freshly initialised network should roughly score: ln C for
    cross-entropy with C classes (uniform prediction), ln 2 for binary
    cross-entropy (0.5 everywhere), the target variance for MSE (predicting the
    mean). An initial loss far from it means a broken output, loss or init.
    """
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    if loss == "ce":
        # uniform 1/C for every class: ln C per sample for one-hot rows
        return float(math.log(Y.shape[1]) * np.mean(Y.sum(axis=1)))
    if loss == "bce":
        return math.log(2.0)
    if loss == "mse":
        return float(np.mean((Y - Y.mean(axis=0)) ** 2))
    get(loss)  # raises the helpful error
    raise AssertionError("unreachable")
