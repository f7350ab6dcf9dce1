"""Probes: pure statistics on arrays, named in the trace vocabulary.

Every function here takes arrays and returns plain floats/ints, or a dict keyed
``(layer, quantity)`` with quantities from :data:`netdoctor.trace.QUANTITIES`.
Probes measure; they never judge (that is :mod:`netdoctor.rules`) and never keep
state.

Two promises shape the code:

* **Never raise on bad numbers.** NaN, Inf, empty and oddly shaped arrays give NaN
  (or a skipped quantity), because a run whose numbers blew up is exactly the run
  a user wants diagnosed.
* **Cheap.** Probes run at every training step, so norms are BLAS dot products on
  flat views (``np.dot(v, v)``), means and variances come from one sum and one dot
  instead of ``np.std``'s temporaries, and a NaN/Inf count is only paid for when a
  sum already came out non-finite (a finite sum of squares proves every entry is
  finite).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import numpy as np

from .trace import MODEL

NAN = float("nan")

# Activations whose units saturate at large |z| (flat tails) and those that die
# (zero output and zero gradient for z < 0). Names as declared in LayerInfo.
SATURATING = frozenset({"sigmoid", "tanh", "softsign", "hard_sigmoid", "hard_tanh"})
RECTIFYING = frozenset({"relu", "leaky_relu", "relu6", "elu", "selu", "gelu", "softplus"})

Stats = dict[tuple[str, str], float]
_F64 = np.dtype(np.float64)
_sum = np.add.reduce  # ndarray.sum() without its Python-level wrapper: probes run every step
_CHUNK = 1 << 20  # entries per temporary when a statistic needs one over a big array
# grad_abs_mean of layers bigger than this is estimated from an even sample of entries.
GRAD_ABS_SAMPLE = 4096


def _quiet(func):
    """Run `func` with NumPy's overflow/invalid warnings off: bad numbers are data here."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with np.errstate(all="ignore"):
            return func(*args, **kwargs)

    return wrapper


# --- building blocks ------------------------------------------------------------
def as_float_array(a: Any) -> np.ndarray:
    """`a` as a float64 array (a view when it already is one); empty on failure."""
    if type(a) is np.ndarray and a.dtype == _F64:  # the hot path: nothing to convert
        return a
    try:
        arr = np.asarray(a)
        if arr.dtype != np.float64:
            arr = arr.astype(np.float64)
        return arr
    except (TypeError, ValueError):
        return np.empty(0)


def _flat(a: np.ndarray) -> np.ndarray:
    # ravel() is a view for contiguous arrays: no copy on the hot path.
    return a.ravel()


def _sq_norm(a: Any) -> float:
    """Sum of squares, by one BLAS dot. Inf/NaN when an entry is (or overflow)."""
    v = as_float_array(a).ravel()
    return float(np.dot(v, v)) if v.size else 0.0


def _norm(a: Any) -> float:
    """L2 norm of all entries (Inf/NaN propagate)."""
    return _sqrt(_sq_norm(a))


def _count_nonfinite(a: Any, sum_of_squares: float | None = None) -> int:
    """How many entries are NaN or +-Inf.

    Pass an already computed sum of squares to skip the count when it is finite:
    a finite sum of squares means every entry is finite.
    """
    if sum_of_squares is not None and math.isfinite(sum_of_squares):
        return 0
    arr = as_float_array(a)
    if arr.size == 0:
        return 0
    return int(arr.size - np.count_nonzero(np.isfinite(arr)))


def _mean_std(a: Any, sum_of_squares: float | None = None) -> tuple[float, float]:
    """Mean and (population) std of all entries from one sum and one dot product."""
    arr = as_float_array(a)
    n = arr.size
    if n == 0:
        return NAN, NAN
    v = _flat(arr)
    total = float(_sum(v))
    sq = float(np.dot(v, v)) if sum_of_squares is None else sum_of_squares
    mean = total / n
    var = sq / n - mean * mean
    # E[x^2] - E[x]^2 cancels badly when the spread is tiny next to the mean
    # (constant init: std 0 must read 0, not 1e-9). Redo those rare cases shifted
    # by one entry, which makes a constant array exactly 0.
    if math.isfinite(var) and var <= 1e-8 * mean * mean:
        d = v - v[0]
        shifted_mean = float(d.sum()) / n
        var = float(np.dot(d, d)) / n - shifted_mean * shifted_mean
    return mean, (math.sqrt(var) if var > 0 else (0.0 if var == 0 else NAN))


def _abs_mean(a: Any, sample: int | None = None) -> float:
    """Mean |entry|: exact, or estimated from `sample` evenly strided entries.

    A big layer's |gradient| would cost a full pass plus a temporary at every
    step; an even sample of a few thousand entries pins the mean to a few percent,
    plenty for a quantity judged by orders of magnitude (vanishing gradients).
    """
    arr = as_float_array(a)
    if arr.size == 0:
        return NAN
    v = arr.ravel()
    if sample is not None and v.size > sample:
        v = v[:: v.size // sample][:sample]
    total = 0.0
    for start in range(0, v.size, _CHUNK):  # bounded temporaries, even for a whole data set
        total += float(_sum(np.abs(v[start : start + _CHUNK])))
    return total / v.size


def as_rows(a: Any, max_rows: int | None = None) -> np.ndarray:
    """`a` as a 2-D (samples, units) array, at most `max_rows` rows.

    A vector is one sample; higher ranks keep the first axis as samples.
    """
    arr = as_float_array(a)
    if arr.ndim == 0:
        arr = arr.reshape(1, 1)
    elif arr.ndim == 1:
        arr = arr.reshape(1, -1)
    elif arr.ndim > 2:
        arr = arr.reshape(arr.shape[0], int(np.prod(arr.shape[1:])))
    if max_rows is not None and arr.shape[0] > max_rows:
        arr = arr[:max_rows]
    return arr


# Public, warning-free versions of the building blocks (the private ones skip the
# errstate cost inside functions that already set it).
sq_norm = _quiet(_sq_norm)
norm = _quiet(_norm)
count_nonfinite = _quiet(_count_nonfinite)
mean_std = _quiet(_mean_std)
abs_mean = _quiet(_abs_mean)


# --- per-layer statistics ----------------------------------------------------------
@_quiet
def activation_stats(
    layer: str,
    z: Any,
    a: Any,
    activation: str | None,
    *,
    saturation_z: float = 5.0,
    dead_active_frac: float = 0.01,
    max_rows: int | None = 32,
    hidden: bool = True,
) -> Stats:
    """Statistics of one layer's pre-activations `z` and activations `a` on a batch.

    ``sat_frac`` is measured for saturating hidden layers (sigmoid/tanh-like) and
    ``dead_frac`` for rectifying ones (relu-like), judged by the *declared*
    activation. Output layers get no ``sat_frac``: a confident classifier's output
    units sit in the tails by design.
    """
    z2 = as_rows(z, max_rows)
    a2 = as_rows(a, max_rows)
    out: Stats = {}
    zsq = _sq_norm(z2)
    asq = _sq_norm(a2)
    act_mean, act_std = _mean_std(a2, asq)
    out[(layer, "act_mean")] = act_mean
    out[(layer, "act_std")] = act_std
    out[(layer, "z_abs_mean")] = _abs_mean(z2)
    kind = (activation or "").lower()
    if hidden and kind in SATURATING:
        out[(layer, "sat_frac")] = _fraction(np.abs(z2) >= saturation_z, z2.size)
    if hidden and kind in RECTIFYING and z2.size:
        # A unit is dead on this batch when it is active (z > 0) on too few samples.
        active_share = np.count_nonzero(z2 > 0, axis=0) / z2.shape[0]
        out[(layer, "dead_frac")] = _fraction(active_share < dead_active_frac, active_share.size)
    out[(layer, "nonfinite")] = float(_count_nonfinite(z2, zsq) + _count_nonfinite(a2, asq))
    return out


def _fraction(mask: np.ndarray, n: int) -> float:
    return float(np.count_nonzero(mask)) / n if n else NAN


@_quiet
def param_stats(
    layer: str,
    weight: Any,
    bias: Any = None,
    *,
    grad_w: Any = None,
    grad_b: Any = None,
    delta_w: Any = None,
    delta_b: Any = None,
    abs_sample: int | None = GRAD_ABS_SAMPLE,
) -> tuple[Stats, dict[str, float]]:
    """Weights after a step, the gradient used and the change applied, for one layer.

    Returns the stats and the raw sums of squares (``w``, ``b``, ``gw``, ``gb``,
    ``dw``, ``db``, ``w_before``, ``b_before``) so whole-model norms can be summed
    without touching the arrays again.

    ``update_ratio`` = ||dW|| / ||W before the step||, where
    ||W - dW||^2 = ||W||^2 - 2 W.dW + ||dW||^2 needs no copy of the old weights.
    ``update_cos`` = cos(dW, -grad): 1 for plain gradient descent, -1 when the
    update climbs the gradient.
    """
    out: Stats = {}
    sums: dict[str, float] = {}
    W = as_float_array(weight)
    w2 = _sq_norm(W)
    sums["w"] = w2
    _, w_std = _mean_std(W, w2)
    out[(layer, "weight_norm")] = _sqrt(w2)
    out[(layer, "weight_std")] = w_std
    nonfinite = _count_nonfinite(W, w2)
    B = None if bias is None else as_float_array(bias)
    if B is not None:
        b2 = _sq_norm(B)
        sums["b"] = b2
        out[(layer, "bias_norm")] = _sqrt(b2)
        nonfinite += _count_nonfinite(B, b2)
    if grad_w is not None:
        G = as_float_array(grad_w)
        g2 = _sq_norm(G)
        sums["gw"] = g2
        out[(layer, "grad_norm")] = _sqrt(g2)
        out[(layer, "grad_abs_mean")] = _abs_mean(G, abs_sample)
        nonfinite += _count_nonfinite(G, g2)
    if grad_b is not None:
        gb2 = _sq_norm(grad_b)
        sums["gb"] = gb2
        out[(layer, "bias_grad_norm")] = _sqrt(gb2)
        nonfinite += _count_nonfinite(grad_b, gb2)
    if delta_w is not None:
        D = as_float_array(delta_w)
        d2 = _sq_norm(D)
        sums["dw"] = d2
        out[(layer, "update_norm")] = _sqrt(d2)
        before2 = _norm_before_sq(W, D, w2, d2)
        sums["w_before"] = before2
        out[(layer, "update_ratio")] = _ratio(math.sqrt(d2) if d2 >= 0 else NAN, _sqrt(before2))
        if grad_w is not None:
            out[(layer, "update_cos")] = _cosine_to_descent(D, G, d2, sums["gw"])
    if delta_b is not None and B is not None:
        db2 = _sq_norm(delta_b)
        sums["db"] = db2
        out[(layer, "bias_update_norm")] = _sqrt(db2)
        sums["b_before"] = _norm_before_sq(B, as_float_array(delta_b), sums["b"], db2)
    out[(layer, "nonfinite")] = float(nonfinite)
    return out, sums


def _sqrt(x: float) -> float:
    return math.sqrt(x) if x >= 0 else NAN  # NaN compares False: stays NaN


def _ratio(num: float, den: float) -> float:
    if not (num == num and den == den):
        return NAN
    if den == 0:
        return NAN if num == 0 else math.inf
    return num / den


def _norm_before_sq(after: np.ndarray, delta: np.ndarray, after2: float, delta2: float) -> float:
    """||after - delta||^2 from dot products; exact subtraction when they cancel."""
    if after.shape != delta.shape or after.size == 0:
        return NAN
    cross = float(np.dot(_flat(after), _flat(delta)))
    before2 = after2 - 2.0 * cross + delta2
    # When the step dwarfs the old weights (zero init, huge lr) the three terms
    # nearly cancel and round-off dominates: pay for the subtraction then.
    if math.isfinite(before2) and before2 <= 1e-6 * delta2:
        before2 = _sq_norm(after - delta)
    return max(before2, 0.0) if before2 == before2 else NAN


def _cosine_to_descent(delta: np.ndarray, grad: np.ndarray, d2: float, g2: float) -> float:
    if delta.shape != grad.shape or not (d2 > 0 and g2 > 0):
        return NAN
    if not (math.isfinite(d2) and math.isfinite(g2)):
        return NAN
    scale = math.sqrt(d2) * math.sqrt(g2)  # not sqrt(d2 * g2): the product may underflow
    if scale == 0.0:
        return NAN
    cos = -float(np.dot(_flat(delta), _flat(grad))) / scale
    return max(-1.0, min(1.0, cos)) if cos == cos else NAN


def model_param_stats(per_layer_sums: list[dict[str, float]]) -> Stats:
    """Whole-network norms over all parameters (weights and biases) from layer sums."""

    def total(*keys: str) -> float | None:
        values = [s[k] for s in per_layer_sums for k in keys if k in s]
        return float(sum(values)) if values else None

    out: Stats = {}
    w = total("w", "b")
    if w is not None:
        out[(MODEL, "weight_norm")] = _sqrt(w)
    g = total("gw", "gb")
    if g is not None:
        out[(MODEL, "grad_norm")] = _sqrt(g)
    d = total("dw", "db")
    if d is not None:
        out[(MODEL, "update_norm")] = _sqrt(d)
        before = total("w_before", "b_before")
        if before is not None:
            out[(MODEL, "update_ratio")] = _ratio(_sqrt(d), _sqrt(before))
    return out


# --- outputs on the probe batch ------------------------------------------------------
@_quiet
def output_stats(
    out: Any,
    targets: Any = None,
    *,
    loss: float | None = None,
    classification: bool = False,
    threshold: float = 0.5,
) -> Stats:
    """Whole-model statistics of the outputs on the fixed probe batch.

    ``out_std`` is the spread *across samples* (averaged over output units): near
    zero means the network answers every input alike, whatever it was trained on.
    ``accuracy`` compares argmax for several output units, or output vs target on
    either side of `threshold` for one.
    """
    o = as_rows(out)
    stats: Stats = {}
    if o.size == 0:
        return {(MODEL, q): NAN for q in ("out_mean", "out_std", "out_min", "out_max")}
    o2 = _sq_norm(o)
    finite = math.isfinite(o2)
    stats[(MODEL, "out_mean")] = float(_sum(o, axis=None)) / o.size
    if finite:
        centred = o - o.sum(axis=0) / o.shape[0]
        per_unit_var = np.einsum("ij,ij->j", centred, centred) / o.shape[0]
        stats[(MODEL, "out_std")] = float(np.sqrt(per_unit_var).mean())
        stats[(MODEL, "out_min")] = float(o.min())
        stats[(MODEL, "out_max")] = float(o.max())
    else:
        stats[(MODEL, "out_std")] = NAN
        stats[(MODEL, "out_min")] = float(np.nanmin(o)) if np.isfinite(o).any() else NAN
        stats[(MODEL, "out_max")] = float(np.nanmax(o)) if np.isfinite(o).any() else NAN
    if classification and targets is not None:
        stats[(MODEL, "accuracy")] = _accuracy(o, targets, threshold, finite)
    if loss is not None:
        stats[(MODEL, "probe_loss")] = float(loss)
    stats[(MODEL, "nonfinite")] = float(
        _count_nonfinite(o, o2) + (0 if loss is None or math.isfinite(loss) else 1)
    )
    return stats


@_quiet
def accuracy(out: Any, targets: Any, threshold: float = 0.5) -> float:
    """Fraction of rows predicted right; rows with a NaN output count as wrong."""
    return _accuracy(as_rows(out), targets, threshold, all_finite=False)


def _accuracy(o: np.ndarray, targets: Any, threshold: float, all_finite: bool) -> float:
    t = as_rows(targets)
    if o.shape[0] != t.shape[0] or o.shape[0] == 0:
        return NAN
    if not all_finite:  # a NaN row must not win argmax by accident
        ok_rows = np.isfinite(o).all(axis=1)
        o = np.where(ok_rows[:, None], o, np.nan)
    if o.shape[1] > 1 and t.shape[1] == o.shape[1]:
        right = np.argmax(o, axis=1) == np.argmax(t, axis=1)
    elif o.shape[1] == 1 and t.shape[1] == 1:
        right = (o[:, 0] > threshold) == (t[:, 0] > threshold)
    else:
        return NAN
    if not all_finite:
        right &= ok_rows
    return float(np.count_nonzero(right)) / o.shape[0]


# --- one-off payloads (events) ---------------------------------------------------------
def output_range(output_fn: Callable[[np.ndarray], Any], units: int, z_max: float = 30.0) -> list[float]:
    """[lo, hi] of what `output_fn` actually produces for pre-activations in [-z_max, z_max].

    Each unit is swept across the grid with the others at 0, so row-wise functions
    (softmax) see realistic inputs. NaN bounds when the function fails.
    """
    grid = np.linspace(-z_max, z_max, 601)
    units = max(int(units), 1)
    Z = np.zeros((grid.size * units, units))
    for k in range(units):
        Z[k * grid.size : (k + 1) * grid.size, k] = grid
    try:
        with np.errstate(all="ignore"):
            values = as_float_array(output_fn(Z))
    except Exception:  # noqa: BLE001 - a user's function may fail on our grid
        return [NAN, NAN]
    if values.shape != Z.shape:
        finite = values[np.isfinite(values)] if values.size else values
        return [NAN, NAN] if finite.size == 0 else [float(finite.min()), float(finite.max())]
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return [NAN, NAN]
    lo, hi = float(finite.min()), float(finite.max())
    # A function still rising (or falling) at the edge of the grid does not stop there: a
    # linear or ReLU output reaches any value, so its bound is infinite, not +-z_max.
    step = grid[1] - grid[0]
    for k in range(units):
        sweep = values[k * grid.size : (k + 1) * grid.size, k]
        for edge, inner in ((sweep[-1], sweep[-2]), (sweep[0], sweep[1])):
            slope = (edge - inner) / step
            if np.isfinite(slope) and abs(slope) > 1e-3:
                if slope > 0 and edge >= hi:
                    hi = math.inf
                elif slope < 0 and edge <= lo:
                    lo = -math.inf
    return [lo, hi]


def target_kind(y_raw: Any, Y: np.ndarray) -> str:
    """'labels' (class indices), 'onehot', 'binary' (0/1 per unit) or 'continuous'."""
    raw = np.asarray(y_raw)
    Yf = as_rows(Y)
    if Yf.size == 0:
        return "continuous"
    is01 = bool(np.isin(Yf, (0.0, 1.0)).all())
    units = Yf.shape[1]
    # One label per sample feeding several output units: class indices.
    if units > 1 and (raw.ndim == 1 or (raw.ndim == 2 and raw.shape[1] == 1)):
        return "labels"
    if units > 1 and is01 and bool((Yf.sum(axis=1) == 1).all()):
        return "onehot"
    if is01:
        return "binary"
    return "continuous"


def class_labels(Y: Any, kind: str) -> np.ndarray | None:
    """Each row's class index (from one-hot/label targets), or None for regression."""
    Yf = as_rows(Y)
    if Yf.size == 0 or kind == "continuous":
        return None
    if Yf.shape[1] > 1:
        return np.argmax(Yf, axis=1)
    return (Yf[:, 0] > 0.5).astype(np.int64)


@_quiet
def data_facts(
    X: Any,
    y_raw: Any,
    Y: Any,
    output_fn: Callable[[np.ndarray], Any] | None = None,
    out_units: int | None = None,
) -> dict[str, Any]:
    """Payload of the "data" event: raw facts about inputs, targets and reachability."""
    Xf = as_rows(X)
    Yf = as_rows(Y)
    units = int(out_units if out_units is not None else Yf.shape[1])
    x2 = _sq_norm(Xf)
    x_mean, x_std = _mean_std(Xf, x2)
    kind = target_kind(y_raw, Yf)
    labels = class_labels(Yf, kind)
    facts: dict[str, Any] = {
        "n_samples": int(Xf.shape[0]) if Xf.size else 0,
        "n_features": int(Xf.shape[1]) if Xf.size else 0,
        "x_abs_mean": _abs_mean(Xf),
        "x_abs_max": _abs_max(Xf),
        "x_std": x_std,
        "y_shape": list(np.shape(y_raw)),
        "target_kind": kind,
        "target_min": float(np.nanmin(Yf)) if Yf.size and not np.isnan(Yf).all() else NAN,
        "target_max": float(np.nanmax(Yf)) if Yf.size and not np.isnan(Yf).all() else NAN,
        "classes": None if labels is None else sorted(int(c) for c in np.unique(labels)),
        "out_units": units,
        "x_nonfinite": _count_nonfinite(Xf, x2),
        "y_nonfinite": _count_nonfinite(Yf),
    }
    if output_fn is not None:
        lo, hi = output_range(output_fn, units)
        facts["output_range"] = [lo, hi]
        facts["targets_outside"] = targets_outside(Yf, lo, hi)
    return facts


@_quiet
def targets_outside(Y: Any, lo: float, hi: float, tol: float = 1e-6) -> float:
    """Fraction of target values the output cannot reach (outside [lo, hi] +- tol)."""
    Yf = as_float_array(Y)
    if Yf.size == 0 or not (lo == lo and hi == hi):
        return NAN
    outside = (Yf < lo - tol) | (Yf > hi + tol)
    return float(np.count_nonzero(outside)) / Yf.size


@_quiet
def param_summary(
    weight: Any,
    bias: Any = None,
    *,
    activation: str | None = None,
    atol: float = 1e-12,
) -> dict[str, Any]:
    """Payload of "param_init"/"param_final" for one layer (weights are fan_in x fan_out)."""
    W = as_rows(weight)
    fan_in, fan_out = (int(W.shape[0]), int(W.shape[1])) if W.ndim == 2 else (0, 0)
    w2 = _sq_norm(W)
    w_mean, w_std = _mean_std(W, w2)
    summary: dict[str, Any] = {
        "w_min": _nan_extreme(W, np.nanmin),
        "w_max": _nan_extreme(W, np.nanmax),
        "w_mean": w_mean,
        "w_std": w_std,
        "fan_in": fan_in,
        "fan_out": fan_out,
        "activation": activation,
        "has_bias": bias is not None,
        "nonfinite": _count_nonfinite(W, w2),
    }
    if bias is not None:
        B = as_float_array(bias).ravel()
        summary["b_min"] = _nan_extreme(B, np.nanmin)
        summary["b_max"] = _nan_extreme(B, np.nanmax)
        summary["b_std"] = _mean_std(B)[1]
    else:
        summary["b_min"] = summary["b_max"] = summary["b_std"] = None
    summary["duplicate_units"] = duplicate_units(W, bias, atol)
    return summary


def _abs_max(a: np.ndarray) -> float:
    """Largest |entry| ignoring NaN, without an |a| temporary (NaN if none)."""
    if a.size == 0:
        return NAN
    v = a.ravel()
    hi, lo = np.fmax.reduce(v), np.fmin.reduce(v)  # fmax/fmin skip NaN; all NaN gives NaN
    return float(max(hi, -lo)) if hi == hi else NAN


def _nan_extreme(a: np.ndarray, reducer) -> float:
    if a.size == 0 or np.isnan(a).all():
        return NAN
    return float(reducer(a))


@_quiet
def duplicate_units(weight: Any, bias: Any = None, atol: float = 1e-12) -> int:
    """How many units share their incoming weights (and bias) with another unit.

    Units are the columns of `weight` (fan_in x fan_out). Identical units receive
    identical gradients and stay identical forever: training cannot break the tie.
    A fixed random projection finds candidate pairs in O(n log n); candidates are
    then compared entry by entry, so the count is exact for `atol`.
    """
    W = as_rows(weight)
    if W.ndim != 2 or W.shape[1] < 2 or W.size == 0:
        return 0
    units = W.T
    if bias is not None:
        b = as_float_array(bias).ravel()
        if b.size == units.shape[0]:
            units = np.hstack([units, b[:, None]])
    finite = np.isfinite(units).all(axis=1)
    idx = np.flatnonzero(finite)
    if idx.size < 2:
        return 0
    units = units[idx]
    direction = np.random.default_rng(12345).uniform(-1.0, 1.0, units.shape[1])
    proj = units @ direction
    # Two units within atol entry-wise project within atol * sum|direction|,
    # plus the round-off of the dot products themselves.
    roundoff = 8 * np.finfo(float).eps * (np.abs(units) @ np.abs(direction))
    window = atol * float(np.abs(direction).sum()) + float(roundoff.max())
    order = np.argsort(proj, kind="stable")
    sorted_proj = proj[order]
    twin = np.zeros(units.shape[0], dtype=bool)
    for pos, i in enumerate(order):
        if twin[i]:
            continue  # already grouped with an earlier unit
        end = int(np.searchsorted(sorted_proj, sorted_proj[pos] + window, side="right"))
        if end <= pos + 1:
            continue
        candidates = order[pos + 1 : end]
        close = np.abs(units[candidates] - units[i]).max(axis=1) <= atol
        if close.any():
            twin[i] = True
            twin[candidates[close]] = True
    return int(np.count_nonzero(twin))


@_quiet
def histogram(a: Any, bins: int = 24) -> dict[str, list[float]] | None:
    """{"edges", "counts"} of the finite entries of `a` (None when there are none)."""
    v = as_float_array(a).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    lo, hi = float(v.min()), float(v.max())
    if lo == hi:  # a constant layer still gets a (narrow) bin
        lo, hi = lo - 0.5, hi + 0.5
    if not np.isfinite(hi - lo):
        return None   # a range wider than float64 holds: numpy's bin arithmetic overflows
    try:
        counts, edges = np.histogram(v, bins=int(bins), range=(lo, hi))
    except (ValueError, IndexError):  # a range too wide (overflow) or too narrow for float64 bins
        return None
    return {"edges": edges.tolist(), "counts": counts.tolist()}


# --- the probe batch ---------------------------------------------------------------------
def probe_batch_indices(labels: Any, n: int, size: int) -> np.ndarray:
    """Indices of a fixed probe batch of at most `size` of `n` samples.

    With class labels, every class gets an (as far as possible) equal share, each
    share spread evenly over that class's samples, and the classes interleaved
    row by row, so any prefix of the batch is balanced too. Without labels, evenly
    spaced samples. When all `n` fit, all of them in their original order.
    """
    n, size = int(n), int(size)
    if size <= 0 or n <= 0:
        return np.empty(0, dtype=np.int64)
    if n <= size:
        return np.arange(n)
    if labels is None:
        return np.unique(np.linspace(0, n - 1, size).round().astype(np.int64))
    labels = np.asarray(labels)
    members = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    quota = _fair_shares([len(m) for m in members], size)
    picks = [
        m[np.unique(np.linspace(0, len(m) - 1, q).round().astype(np.int64))] if q else m[:0]
        for m, q in zip(members, quota)
    ]
    rows = []
    for i in range(max(quota)):
        rows.extend(int(p[i]) for p in picks if i < len(p))
    return np.asarray(rows, dtype=np.int64)


def _fair_shares(capacities: list[int], total: int) -> list[int]:
    """Split `total` as evenly as possible, no share above its capacity."""
    shares = [0] * len(capacities)
    left = total
    for _ in range(total):  # each pass hands one more to every class with room
        open_ = [i for i, cap in enumerate(capacities) if shares[i] < cap]
        if not open_ or left <= 0:
            break
        for i in open_[:left]:
            shares[i] += 1
        left -= min(len(open_), left)
    return shares


BOUNDARY_GRID = 41  # points per axis of the decision-boundary grid


def input_grid(X: np.ndarray, points: int = BOUNDARY_GRID) -> tuple[np.ndarray, np.ndarray] | None:
    """A square grid (xx, yy) over two input features with a 10 % margin; None unless
    X is (n, 2) with finite values."""
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != 2 or len(X) == 0:
        return None
    lo, hi = np.nanmin(X, axis=0), np.nanmax(X, axis=0)
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        return None
    span = np.where(hi > lo, hi - lo, 1.0)
    lo, hi = lo - 0.1 * span, hi + 0.1 * span
    axes = [np.linspace(lo[k], hi[k], points) for k in range(2)]
    return tuple(np.meshgrid(*axes))
