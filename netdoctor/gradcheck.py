"""Check claimed gradients against central finite differences of the loss.

Generic on purpose: it needs only the parameter arrays (perturbed in place and
restored bit for bit), a function that recomputes the loss from them, and the
gradients some code claims. It works on the reference MLP and on user code alike.

For each array, up to ``max_entries`` entries are nudged by +-h and

    numeric = (loss(p + h) - loss(p - h)) / 2h        (error O(h^2), float64)

is compared with the claimed entries ``g``:

* ``rel_err = |g - n| / max(|g| + |n|, floor)`` (vector norms, floor below):
  ~1e-7 for correct smooth code, up to ~1e-4 near ReLU kinks, > 1e-2 for wrong code;
* ``scale``: the least-squares factor with ``g ~ scale * n``; a right direction
  with scale far from 1 is a gradient summed where it should be averaged;
* ``cosine`` between ``g`` and ``n``.

Finite differences cannot resolve gradients below roughly ``eps * |loss| / h``
(about 1e-11 for a loss near 1): rounding in the loss dominates there. Two
gradients whose norms are both below 1e4 times that noise (too small to measure
to 1e-4 relative accuracy) count as agreeing (``cosine = scale = 1``), so a truly
flat direction (e.g. zero init's symmetric layer) is not reported as a 100 % error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

# The "both flat" floor, in units of the finite-difference rounding noise: a gradient
# must be this many times the noise for its relative error to be measurable to 1e-4.
NOISE_FACTOR = 1e4


@dataclass(frozen=True)
class ParamCheck:
    rel_err: float
    cosine: float
    scale: float
    n_checked: int


_NAN_CHECK = ParamCheck(math.nan, math.nan, math.nan, 0)


def _loss(loss_fn: Callable[[], float]) -> float:
    try:
        with np.errstate(all="ignore"):
            return float(loss_fn())
    except Exception:
        return math.nan


def _sample(size: int, max_entries: int, rng: np.random.Generator) -> np.ndarray:
    if size <= max_entries:
        return np.arange(size)
    return np.sort(rng.choice(size, size=max_entries, replace=False))


def noise_floor(loss: float, h: float, n_checked: int) -> float:
    """Gradient norm below which central differences of `loss` are rounding noise (x NOISE_FACTOR)."""
    scale = abs(loss) if math.isfinite(loss) and loss != 0.0 else 1.0
    return NOISE_FACTOR * np.finfo(np.float64).eps * scale / h * math.sqrt(max(n_checked, 1))


def _compare(claimed: np.ndarray, numeric: np.ndarray, floor: float) -> ParamCheck:
    n_checked = len(numeric)
    if not (np.isfinite(claimed).all() and np.isfinite(numeric).all()):
        return ParamCheck(math.nan, math.nan, math.nan, n_checked)
    g_norm, n_norm = float(np.linalg.norm(claimed)), float(np.linalg.norm(numeric))
    rel_err = float(np.linalg.norm(claimed - numeric) / max(g_norm + n_norm, floor))
    if g_norm <= floor and n_norm <= floor:
        return ParamCheck(rel_err, 1.0, 1.0, n_checked)  # both flat: they agree
    if g_norm == 0.0 or n_norm == 0.0:
        cosine = math.nan  # no direction to compare
    else:
        cosine = float(np.dot(claimed, numeric)) / (g_norm * n_norm)
    scale = float(np.dot(claimed, numeric)) / (n_norm * n_norm) if n_norm > 0.0 else math.nan
    return ParamCheck(rel_err, cosine, scale, n_checked)


def _check_one(
    param: np.ndarray, loss_fn: Callable[[], float], claimed, h: float, max_entries: int, rng, loss0: float
) -> ParamCheck:
    if not isinstance(param, np.ndarray) or param.size == 0:
        return _NAN_CHECK
    if not np.issubdtype(param.dtype, np.floating):
        return _NAN_CHECK  # integers cannot be nudged by h
    try:
        claimed = np.asarray(claimed, dtype=np.float64)
    except (TypeError, ValueError):
        return _NAN_CHECK
    if claimed.shape != param.shape:
        return _NAN_CHECK
    flat = _sample(param.size, max_entries, rng)
    numeric = np.empty(len(flat))
    for k, i in enumerate(flat):
        index = np.unravel_index(i, param.shape)
        original = param[index]
        try:
            param[index] = original + h
            plus = _loss(loss_fn)
            param[index] = original - h
            minus = _loss(loss_fn)
        finally:
            param[index] = original  # the very same value: training continues untouched
        numeric[k] = (plus - minus) / (2.0 * h)
    return _compare(claimed.reshape(-1)[flat], numeric, noise_floor(loss0, h, len(flat)))


def check(
    params: Sequence[np.ndarray],
    loss_fn: Callable[[], float],
    claimed: Sequence[np.ndarray],
    h: float = 1e-5,
    max_entries: int = 64,
    rng: np.random.Generator | None = None,
) -> list[ParamCheck]:
    """One :class:`ParamCheck` per array of `params`, in order.

    `loss_fn()` must recompute the loss from the current contents of `params`.
    Never raises for bad numbers or a failing `loss_fn`: those checks get NaN fields.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    claimed = list(claimed) + [None] * max(0, len(params) - len(claimed))
    loss0 = _loss(loss_fn)  # sets the scale of the rounding noise
    results = []
    for param, grad in zip(params, claimed):
        try:
            results.append(_check_one(param, loss_fn, grad, h, max_entries, rng, loss0))
        except Exception:  # e.g. a read-only array: this one check is unknown, not the run
            results.append(_NAN_CHECK)
    return results
