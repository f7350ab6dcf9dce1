"""Per-layer parameter statistics from sums computed on the framework's own device.

:func:`netdoctor.probes.param_stats` needs NumPy arrays; a framework's weights live
on its device (a GPU, or torch's CPU memory). Copying every weight, gradient and
update to NumPy at every recorded step would cost more than the step. Instead a
framework computes a handful of reductions per tensor (sum of squares, sum, sum of
|x|, a dot product, a NaN/Inf count) with its own operations, stacks them into one
small tensor and hands that over in one transfer. This module turns those sums into
the same series :func:`netdoctor.probes.param_stats` writes (``nonfinite`` counts the
tensors holding NaN/Inf, not their entries), so that the rules see
one vocabulary whichever producer ran.

A framework supplies an :class:`Ops` (five reductions and a way to fetch scalars).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..probes import model_param_stats

NAN = float("nan")


@dataclass(frozen=True)
class Ops:
    """The reductions a framework provides; each returns a 0-d tensor on its device."""

    sq: Callable[[Any], Any]           # sum of squares
    total: Callable[[Any], Any]        # sum
    abs_total: Callable[[Any], Any]    # sum of |x|
    dot: Callable[[Any, Any], Any]     # sum of x * y
    nonfinite: Callable[[Any], Any]    # count of NaN/Inf (for callers that need the exact count)
    size: Callable[[Any], int]         # number of entries (host int, no transfer)
    fetch: Callable[[list], list[float]]  # stack 0-d tensors, one transfer, to floats


@dataclass
class LayerTensors:
    """One layer's tensors at a step: weights after it, gradient used, change applied."""

    name: str
    weight: Any
    bias: Any = None
    grad_w: Any = None
    grad_b: Any = None
    delta_w: Any = None
    delta_b: Any = None


def layer_stats(ops: Ops, layers: Sequence[LayerTensors]) -> dict[tuple[str, str], float]:
    """Series values for each layer and the whole model, with one device-to-host transfer."""
    plan: list[tuple[str, str, int]] = []   # (layer, what, index into fetched)
    scalars: list[Any] = []

    def want(layer: str, what: str, value: Any) -> None:
        plan.append((layer, what, len(scalars)))
        scalars.append(value)

    for t in layers:
        want(t.name, "w2", ops.sq(t.weight))
        want(t.name, "wsum", ops.total(t.weight))
        if t.bias is not None:
            want(t.name, "b2", ops.sq(t.bias))
        if t.grad_w is not None:
            want(t.name, "g2", ops.sq(t.grad_w))
            want(t.name, "gabs", ops.abs_total(t.grad_w))
        if t.grad_b is not None:
            want(t.name, "gb2", ops.sq(t.grad_b))
        if t.delta_w is not None:
            want(t.name, "d2", ops.sq(t.delta_w))
            want(t.name, "wd", ops.dot(t.weight, t.delta_w))
            if t.grad_w is not None:
                want(t.name, "dg", ops.dot(t.delta_w, t.grad_w))
        if t.delta_b is not None and t.bias is not None:
            want(t.name, "db2", ops.sq(t.delta_b))
            want(t.name, "bd", ops.dot(t.bias, t.delta_b))
    fetched = ops.fetch(scalars) if scalars else []
    raw: dict[str, dict[str, float]] = {}
    for layer, what, index in plan:
        raw.setdefault(layer, {})[what] = float(fetched[index])

    out: dict[tuple[str, str], float] = {}
    sums = []
    for t in layers:
        r = raw.get(t.name, {})
        n = max(ops.size(t.weight), 1)
        w2 = r["w2"]
        mean = r["wsum"] / n
        out[(t.name, "weight_norm")] = _sqrt(w2)
        out[(t.name, "weight_std")] = _sqrt(w2 / n - mean * mean)
        # A sum of squares is finite exactly when every entry is: counting NaN/Inf entries
        # would cost another pass over each tensor, and a rule needs only "some" vs "none".
        bad = float(sum(not math.isfinite(r[k]) for k in ("w2", "b2", "g2") if k in r))
        s = {"w": w2}
        if "b2" in r:
            out[(t.name, "bias_norm")] = _sqrt(r["b2"])
            s["b"] = r["b2"]
        if "g2" in r:
            out[(t.name, "grad_norm")] = _sqrt(r["g2"])
            out[(t.name, "grad_abs_mean")] = r["gabs"] / n
            s["gw"] = r["g2"]
        if "gb2" in r:
            out[(t.name, "bias_grad_norm")] = _sqrt(r["gb2"])
            s["gb"] = r["gb2"]
        if "d2" in r:
            d2 = r["d2"]
            before2 = max(w2 - 2.0 * r["wd"] + d2, 0.0) if math.isfinite(w2 + d2) else NAN
            out[(t.name, "update_norm")] = _sqrt(d2)
            out[(t.name, "update_ratio")] = _ratio(_sqrt(d2), _sqrt(before2))
            s["dw"], s["w_before"] = d2, before2
            if "dg" in r and "g2" in r:
                # cos(dW, -grad): 1 for steepest descent
                den = math.sqrt(d2 * r["g2"]) if d2 > 0 and r["g2"] > 0 else 0.0
                out[(t.name, "update_cos")] = -r["dg"] / den if den > 0 else NAN
        if "db2" in r:
            out[(t.name, "bias_update_norm")] = _sqrt(r["db2"])
            s["db"] = r["db2"]
            s["b_before"] = max(r["b2"] - 2.0 * r["bd"] + r["db2"], 0.0)
        out[(t.name, "nonfinite")] = bad
        sums.append(s)
    out.update(model_param_stats(sums))
    return out


def _sqrt(x: float) -> float:
    return math.sqrt(x) if x >= 0 else NAN


def _ratio(num: float, den: float) -> float:
    if not (num == num and den == den):
        return NAN
    if den == 0:
        return NAN if num == 0 else math.inf
    return num / den
