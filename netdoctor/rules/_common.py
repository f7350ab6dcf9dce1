"""Reading a Trace defensively: what every rule family needs before it can judge.

Rules judge traces from different observers (the reference MLP, a user's script,
a notebook object), so a quantity may be missing, a payload may hold a string where
a number was expected, and numbers may be NaN or Inf. The helpers here never raise
on such data: they return empty arrays, NaN or None, and the rule decides whether
that means "nothing to report" or :class:`~netdoctor.rules.Skip`.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Mapping

import numpy as np

from ..config import Thresholds
from ..trace import MODEL, Event, Trace
from ..types import Location
from . import Skip

def quiet(check: Callable) -> Callable:
    """Judge without numpy's overflow/invalid warnings: NaN and Inf are findings here."""

    @functools.wraps(check)
    def judged(ctx):
        with np.errstate(all="ignore"):
            return check(ctx)

    return judged


# --- coercing payload values ------------------------------------------------------


def as_float(value: Any) -> float:
    """A payload value as a float; NaN when it is not a single number."""
    if isinstance(value, (str, bytes)) or value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan


def as_count(value: Any) -> int:
    """A payload value as a non-negative count; 0 when it is not one."""
    number = as_float(value)
    if not math.isfinite(number) or number < 0:
        return 0
    return int(number)


def as_pair(value: Any) -> tuple[float, float] | None:
    """A ``[lo, hi]`` payload value; None unless it is two finite, ordered numbers."""
    try:
        items = list(value)
    except TypeError:
        return None
    if len(items) != 2:
        return None
    lo, hi = as_float(items[0]), as_float(items[1])
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        return None
    return lo, hi


def as_name(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def payload(event: Event) -> Mapping[str, Any]:
    data = getattr(event, "data", None)
    return data if isinstance(data, Mapping) else {}


def events(trace: Trace, kind: str) -> list[Event]:
    return [e for e in trace.events if getattr(e, "kind", None) == kind]


def event_step(event: Event) -> int | None:
    step = as_float(getattr(event, "step", None))
    return int(step) if math.isfinite(step) else None


def event_layer(event: Event) -> str | None:
    return as_name(getattr(event, "layer", None))


def event_location(event: Event) -> Location | None:
    """Where in the user's code the event's subject lives, when the observer knew."""
    location = getattr(event, "location", None)
    return location if isinstance(location, Location) else None


def layer_location(trace: Trace, layer: str | None) -> Location | None:
    """Where a layer's activation function lives (RunInfo), when known."""
    info = trace.info.layer(layer) if layer else None
    location = getattr(info, "location", None)
    return location if isinstance(location, Location) else None


# --- series -------------------------------------------------------------------


def finite_series(trace: Trace, quantity: str, layer: str = MODEL) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of a series with NaN/Inf entries dropped."""
    steps, values = trace.series(quantity, layer)
    steps = np.asarray(steps)
    values = np.asarray(values, dtype=float).ravel()
    n = min(len(steps), len(values))
    steps, values = steps[:n], values[:n]
    keep = np.isfinite(values)
    return steps[keep], values[keep]


def warmup_end(trace: Trace, th: Thresholds) -> float:
    """The first step output- and gradient-based rules judge (training needs a moment)."""
    steps = np.asarray(trace.steps)
    if len(steps) == 0:
        return 0.0
    return float(steps[0] + th.warmup_frac * (steps[-1] - steps[0]))


def after_warmup(trace: Trace, th: Thresholds, steps: np.ndarray, values: np.ndarray):
    """The part of a series after warm-up; at least its last point when it has any."""
    keep = steps >= warmup_end(trace, th)
    if len(values) and not keep.any():
        keep[-1] = True
    return steps[keep], values[keep]


def trailing_streak(flags: np.ndarray) -> int:
    """How many entries at the end of `flags` are True in a row."""
    flags = np.asarray(flags, dtype=bool)
    misses = np.flatnonzero(~flags)
    return len(flags) if len(misses) == 0 else len(flags) - 1 - int(misses[-1])


def running_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over `window` points (fewer at the start): smooths per-batch loss."""
    window = max(1, int(window))
    sums = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    return (sums[idx] - sums[lo]) / (idx - lo)


# --- loss ---------------------------------------------------------------------


def loss_curve(trace: Trace) -> tuple[np.ndarray, np.ndarray, str]:
    """The loss as it evolved: (steps, values, which series).

    The probe-batch loss is preferred: it is measured on the same samples at every
    step, so it is comparable across steps. The per-batch training loss jumps from
    batch to batch (per-sample SGD most of all), so it is smoothed over ~5% of the run.
    """
    steps, values = finite_series(trace, "probe_loss")
    if len(values) >= 2:
        return steps, values, "probe_loss"
    steps, values = finite_series(trace, "loss")
    if len(values) >= 2:
        return steps, running_mean(values, len(values) // 20), "loss (smoothed)"
    raise Skip("fewer than two finite loss values recorded")


def has_fitted(values: np.ndarray, th: Thresholds) -> bool:
    """Whether the loss has come down to a small fraction of where it started."""
    if len(values) == 0:
        return False
    start, end = float(values[0]), float(values[-1])
    return start > 0 and end <= th.plateau_fit_loss * start


def learning_steps(trace: Trace, th: Thresholds) -> np.ndarray:
    """Recorded steps up to the point the loss reached the fitted level (all if never).

    Update sizes and gradients naturally shrink once a network has fitted its data;
    judging them only while it was still learning keeps a converged run from looking
    like one whose learning rate was too low.
    """
    steps = np.asarray(trace.steps)
    try:
        loss_steps, values, _ = loss_curve(trace)
    except Skip:
        return steps
    if len(values) == 0 or not values[0] > 0:
        return steps
    fitted = np.flatnonzero(values <= th.plateau_fit_loss * values[0])
    if len(fitted) == 0:
        return steps
    return steps[steps <= loss_steps[fitted[0]]]


# --- layers -------------------------------------------------------------------


def layer_names(trace: Trace) -> list[str]:
    try:
        return [str(name) for name in trace.layers]
    except Exception:  # noqa: BLE001 - an odd RunInfo must not stop judging
        return []


def output_layer(trace: Trace) -> str | None:
    for layer in trace.info.layers:
        if getattr(layer, "is_output", False):
            return layer.name
    names = layer_names(trace)
    return names[-1] if names else None


def hidden_layers(trace: Trace) -> list[str]:
    out = output_layer(trace)
    return [name for name in layer_names(trace) if name != out]


def activation_of(trace: Trace, layer: str) -> str | None:
    """The declared/identified activation of a layer, from RunInfo or the init event."""
    info = trace.info.layer(layer) if hasattr(trace.info, "layer") else None
    if info is not None and as_name(info.activation):
        return info.activation
    for event in events(trace, "param_init"):
        if event_layer(event) == layer and as_name(payload(event).get("activation")):
            return payload(event)["activation"]
    return None


def output_function(trace: Trace) -> str | None:
    if as_name(trace.info.output):
        return trace.info.output
    out = output_layer(trace)
    return activation_of(trace, out) if out else None


# --- messages -----------------------------------------------------------------


def fmt(value: Any, digits: int = 3) -> str:
    """A number as people read it in a message: 3 significant digits."""
    number = as_float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Inf" if number > 0 else "-Inf"
    return f"{number:.{digits}g}"


def fmt_values(values: Any, digits: int = 3) -> str:
    items = [fmt(v, digits) for v in np.ravel(values)]
    return items[0] if len(items) == 1 else "[" + ", ".join(items) + "]"
