"""The derivative a backward pass really uses, read from its deltas.

Backprop written by hand computes, per layer, a delta (dL/dz) and from it the
weight gradient::

    dW_l = a_{l-1}.T @ delta_l                      (samples in rows, W in (in, out) form)
    delta_l = (delta_{l+1} @ W_{l+1}.T) * g_l       where g_l should be f_l'(z_l)

Code that keeps its deltas in arrays (``dZ1``, ``self.delta[1]``) shows them; each
is recognised by the gradient it produces (``a_{l-1}.T @ delta_l`` points along the
gradient the code applied to W_l). The factor ``g_l = delta_l / (delta_{l+1} @ W_{l+1}.T)``
is then known entry by entry, as a function of ``z_l``: identifying it tells a
missing derivative (constantly 1) or one evaluated at the activation from the right
one, even when the code has no derivative function to look at.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from .arrays import Found
from .chain import ChainSpec, rows

ALIGNED = 0.999       # |cos| between a_{l-1}.T @ delta and the applied gradient


def derivative_factors(
    chain: ChainSpec,
    acts_in: list[np.ndarray],
    zs: list[np.ndarray],
    weights_io: list[np.ndarray],
    claimed_io: list[np.ndarray | None],
    candidates: Iterable[Found],
) -> dict[int, tuple[np.ndarray, np.ndarray, Found]]:
    """For hidden layers whose delta (and the next layer's) is among the arrays:
    layer index -> (z values, factor values, the delta array found).

    `acts_in[l]` is layer l's input and `zs[l]` its pre-activation (rows form) at the
    step's forward pass, `weights_io[l]` its weight in (in, out) form before the step,
    `claimed_io[l]` the weight gradient the code applied, (in, out) form.
    """
    deltas: dict[int, tuple[np.ndarray, Found]] = {}
    items = list(candidates)
    for l, layer in enumerate(chain.layers):
        claimed = claimed_io[l]
        if claimed is None or not np.any(claimed):
            continue
        # The best-aligned array, not the first one aligned enough: an output close to its
        # error (A2 next to A2 - Y when most targets are 0) can pass the bar as well.
        best = ALIGNED
        for f in items:
            D = _as_delta(f.array, zs[l].shape, layer.samples)
            if D is None:
                continue
            cos = _cos(acts_in[l].T @ D, claimed)
            if cos >= best:
                deltas[l], best = (D, f), cos
    out = {}
    for l in range(len(chain.layers) - 1):
        if l not in deltas or l + 1 not in deltas:
            continue
        delta, found = deltas[l]
        upper = deltas[l + 1][0] @ weights_io[l + 1].T
        with np.errstate(all="ignore"):
            usable = np.abs(upper) > 1e-12 * max(float(np.abs(upper).max()), 1e-300)
            factor = np.where(usable, delta / np.where(usable, upper, 1.0), np.nan)
        if usable.sum() < 3:
            continue
        out[l] = (zs[l][usable], factor[usable], found)
    return out


def _as_delta(a: np.ndarray, shape: tuple, samples: str) -> np.ndarray | None:
    if a.dtype.kind != "f" or a.ndim not in (1, 2):
        return None
    r = rows(a, samples)
    return r if r.shape == shape and np.isfinite(r).all() and np.any(r) else None


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.reshape(-1), np.asarray(b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        return math.nan
    na, nb = float(np.dot(a, a)), float(np.dot(b, b))
    if na == 0 or nb == 0:
        return math.nan
    return abs(float(np.dot(a, b))) / math.sqrt(na * nb)
