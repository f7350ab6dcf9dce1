"""The observed network rebuilt from its own arrays, so that netdoctor can differentiate it.

A :class:`Rebuilt` network takes the chain netdoctor inferred (:mod:`.chain`) and,
for each layer, a function that reproduces what the code computes (a catalogue
function matched by value, or the user's own function). Given parameter values it
runs the forward pass and backpropagates any loss: everything a gradient check
needs to compare the gradients the code *uses* with the true gradients of the
network's *own* forward pass.

All arrays here are in rows form (samples in rows) and weights in (in, out) form;
:meth:`Rebuilt.to_user` and :meth:`Rebuilt.from_user` translate from and to the
shapes the user's code keeps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .chain import ChainSpec, LayerSpec, function_of

EPS = 1e-12
LOSS_KINDS = ("mse", "bce", "ce")
# Reductions: the constant a summed loss is multiplied by. (n samples, k output units)
REDUCTIONS: dict[str, Callable[[int, int], float]] = {
    "sum": lambda n, k: 1.0,
    "mean": lambda n, k: 1.0 / n,
    "mean_all": lambda n, k: 1.0 / (n * k),
    "half_sum": lambda n, k: 0.5,
    "half_mean": lambda n, k: 0.5 / n,
    "half_mean_all": lambda n, k: 0.5 / (n * k),
}
# Which reductions are usual for which loss (the "half" forms are the 1/2 (y - t)^2 convention).
USUAL = {
    "mse": ("sum", "mean", "mean_all", "half_sum", "half_mean", "half_mean_all"),
    "bce": ("sum", "mean", "mean_all"),
    "ce": ("sum", "mean"),
}


# --- layer functions ---------------------------------------------------------------------


@dataclass
class LayerFunction:
    name: str
    f: Callable[[np.ndarray], np.ndarray]          # rows form in, rows form out
    kind: str = "elementwise"                      # "elementwise", "rows" (softmax), "columns"

    def backward(self, z: np.ndarray, a: np.ndarray, da: np.ndarray) -> np.ndarray:
        """dL/dz from dL/da."""
        if self.kind == "rows":
            return a * (da - np.sum(da * a, axis=1, keepdims=True))
        if self.kind == "columns":
            return a * (da - np.sum(da * a, axis=0, keepdims=True))
        return da * self.derivative(z)

    def derivative(self, z: np.ndarray) -> np.ndarray:
        from .. import activations as act

        known = act.ACTIVATIONS.get(act.canonical_name(self.name))
        if known is not None and known.elementwise and self.name != "leaky_relu":
            return known.derivative(z)
        # Any other elementwise function: central differences, entry by entry.
        h = 1e-6 * (1.0 + np.abs(z))
        return (self.f(z + h) - self.f(z - h)) / (2.0 * h)


def layer_function(layer: LayerSpec, user: Callable | None = None) -> LayerFunction | None:
    """What a layer computes, as a rows-form function (None when it is not known).

    `user` is the user's own function (called on arrays in the user's orientation)
    for a layer whose function matched nothing in the catalogue.
    """
    name = layer.function
    if name in (None, "identity") and layer.a is None:
        return LayerFunction("identity", lambda z: z)
    if name is not None:
        f = function_of(name, layer.slope)
        if f is not None:
            kind = "rows" if name == "softmax" else ("columns" if name == "softmax_wrong_axis" else "elementwise")
            return LayerFunction(name, f, kind)
    if user is not None:
        samples = layer.samples

        def in_user_orientation(z: np.ndarray) -> np.ndarray:
            if samples == "vec":   # one unit per sample, kept by the user as a 1-D array
                return np.asarray(user(np.ascontiguousarray(z.reshape(-1))), dtype=np.float64).reshape(-1, 1)
            arg = z.T if samples == "cols" else z
            out = np.asarray(user(np.ascontiguousarray(arg)), dtype=np.float64)
            return out.T if samples == "cols" else out

        return LayerFunction(getattr(user, "__name__", "user function"), in_user_orientation)
    return None


# --- losses --------------------------------------------------------------------------------


def loss_sum(kind: str, out: np.ndarray, Y: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        if kind == "mse":
            return float(np.sum((out - Y) ** 2))
        p = np.clip(out, EPS, 1.0 - EPS)
        if kind == "bce":
            return float(-np.sum(Y * np.log(p) + (1.0 - Y) * np.log(1.0 - p)))
        return float(-np.sum(Y * np.log(np.maximum(out, EPS))))


def loss_sum_gradient(kind: str, out: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """d loss_sum / d out, with numpy's broadcasting of Y against out (as user code does)."""
    with np.errstate(all="ignore"):
        if kind == "mse":
            return 2.0 * (out - Y)
        if kind == "bce":
            p = np.clip(out, EPS, 1.0 - EPS)
            inside = (out > EPS) & (out < 1.0 - EPS)
            return np.where(inside, (p - Y) / (p * (1.0 - p)), 0.0)
        g = np.where(out > EPS, -Y / np.maximum(out, EPS), 0.0)
        return np.broadcast_to(g, np.broadcast(out, Y).shape).copy()


def loss_value(kind: str, reduction: str, out: np.ndarray, Y: np.ndarray) -> float:
    shape = np.broadcast(out, Y).shape
    n, k = shape[0], shape[1] if len(shape) > 1 else 1
    return loss_sum(kind, out, Y) * REDUCTIONS[reduction](n, k)


# --- the rebuilt network ---------------------------------------------------------------------


Params = list[tuple[np.ndarray, np.ndarray | None]]   # (W in (in, out) form, b as a vector)


class Rebuilt:
    def __init__(self, spec: ChainSpec, functions: Sequence[LayerFunction]):
        self.spec = spec
        self.functions = list(functions)

    # -- translating shapes --------------------------------------------------------------------
    def from_user(self, user_params: Sequence[np.ndarray | None]) -> Params:
        """User arrays in the order of spec.param_paths() -> (W (in,out), b vector) per layer."""
        out: Params = []
        it = iter(user_params)
        for layer in self.spec.layers:
            user_W = np.asarray(next(it), dtype=np.float64)
            W = layer.to_io(user_W)
            b = layer.bias_io(user_W)     # a bias kept as the weight's last row, or None
            if layer.b is not None:
                b = np.asarray(next(it), dtype=np.float64).reshape(-1)
            out.append((W, b))
        return out

    def to_user(self, grads: Params) -> list[np.ndarray]:
        """Gradients per layer -> arrays shaped like the user's, in spec.param_paths() order."""
        out = []
        for layer, (dW, db) in zip(self.spec.layers, grads):
            out.append(layer.from_io(dW, db if layer.bias_row else None))
            if layer.b is not None:
                out.append(db.reshape(layer.b_shape))
        return out

    # -- computing --------------------------------------------------------------------------------
    def forward(self, params: Params, X: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        zs, acts = [], []
        a = X
        with np.errstate(all="ignore"):
            for (W, b), fn in zip(params, self.functions):
                z = a @ W if b is None else a @ W + b
                a = fn.f(z)
                zs.append(z)
                acts.append(a)
        return zs, acts

    def backward(self, params: Params, X: np.ndarray, zs, acts, d_out: np.ndarray) -> Params:
        grads: Params = []
        da = d_out
        with np.errstate(all="ignore"):
            for l in range(len(params) - 1, -1, -1):
                W, b = params[l]
                dz = self.functions[l].backward(zs[l], acts[l], da)
                inp = X if l == 0 else acts[l - 1]
                grads.append((inp.T @ dz, None if b is None else dz.sum(axis=0)))
                da = dz @ W.T
        return grads[::-1]

    def gradients(self, params: Params, X: np.ndarray, Y: np.ndarray, kind: str) -> Params:
        """True gradients of the summed loss `kind` (multiply by a reduction's factor)."""
        zs, acts = self.forward(params, X)
        d_out = loss_sum_gradient(kind, acts[-1], Y)
        if d_out.shape != acts[-1].shape:
            return []
        return self.backward(params, X, zs, acts, d_out)

    def loss(self, params: Params, X: np.ndarray, Y: np.ndarray, kind: str, reduction: str) -> float:
        _, acts = self.forward(params, X)
        return loss_value(kind, reduction, acts[-1], Y)


# --- comparing claimed gradients with true ones ----------------------------------------------------


def flat(arrays: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.asarray(a, dtype=np.float64).reshape(-1) for a in arrays]) if arrays else np.empty(0)


def cosine_and_scale(claimed: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    """cos(claimed, true) and the least-squares s with claimed ~ s * true (NaN when undefined)."""
    with np.errstate(all="ignore"):
        tt = float(np.dot(true, true))
        cc = float(np.dot(claimed, claimed))
        ct = float(np.dot(claimed, true))
    if not (math.isfinite(tt) and math.isfinite(cc)) or tt == 0 or cc == 0:
        return math.nan, math.nan
    # (sqrt of each: tt * cc underflows to 0 for gradients of a saturated layer, ~1e-200 each)
    return ct / (math.sqrt(tt) * math.sqrt(cc)), ct / tt


def nearest_reduction(kind: str, scale: float, n: int, k: int, tolerance: float = 0.05) -> str | None:
    """The usual reduction whose factor equals `scale` (within 5 %), if any."""
    if not (math.isfinite(scale) and scale > 0):
        return None
    best, best_err = None, math.inf
    for name in USUAL[kind]:
        factor = REDUCTIONS[name](n, k)
        err = abs(math.log(scale / factor))
        if err < best_err:
            best, best_err = name, err
    return best if best_err <= math.log1p(tolerance) else None
