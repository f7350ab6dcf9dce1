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
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from ..config import Thresholds
from ..trace import MODEL, Event, Trace
from ..types import Location, Severity
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


def first_nonfinite(values: np.ndarray) -> int | None:
    """Index of the first value that shows the run really went NaN/Inf, or None.

    A recorded series has NaN where a step did not measure the quantity (a framework run
    measures the probe batch every few steps; a step whose passes were not seen has no batch
    loss, the run's last step among them). So: an Inf anywhere counts, and a NaN counts only
    where it stays to the end over at least two rows, since a NaN that entered the network
    stays (a lone NaN in the last row is that step not measured)."""
    values = np.asarray(values, dtype=float).ravel()
    inf = np.flatnonzero(np.isinf(values))
    finite = np.flatnonzero(np.isfinite(values))
    last_finite = int(finite[-1]) if len(finite) else -1
    trailing = len(values) - 1 - last_finite
    nan_at = last_finite + 1 if (trailing >= 2 or (trailing == 1 and last_finite < 0)) else None
    found = [int(i) for i in (inf[0] if len(inf) else None, nan_at) if i is not None]
    return min(found) if found else None


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


def probe_frozen(trace: Trace, th: Thresholds | None = None) -> bool:
    """Whether the probe-batch series stopped following the network (see ``probe_frozen_frac``).

    A network whose weights changed computes different outputs, so its probe loss changes,
    if only in the last digits. A probe loss that repeats its exact value across most
    recorded steps at which the weights moved was read from outputs kept from earlier
    steps, not measured on the network as it is: judging it would judge the past.
    """
    th = th or Thresholds()
    steps, probe = trace.series("probe_loss")
    probe = np.asarray(probe, dtype=float).ravel()
    if len(probe) < 2:
        return False
    _, moved = trace.series("update_norm")
    moved = np.asarray(moved, dtype=float).ravel()
    if len(moved) == len(probe):
        changed = np.nan_to_num(moved[1:]) > 0
    else:
        _, norm = trace.series("weight_norm")
        norm = np.asarray(norm, dtype=float).ravel()
        if len(norm) != len(probe):
            return False
        changed = np.isfinite(norm[1:]) & np.isfinite(norm[:-1]) & (norm[1:] != norm[:-1])
    pairs = changed & np.isfinite(probe[1:]) & np.isfinite(probe[:-1])
    n = int(pairs.sum())
    if n < th.probe_frozen_min_pairs:
        return False
    repeated = int((pairs & (probe[1:] == probe[:-1])).sum())
    return repeated > th.probe_frozen_frac * n


SPARSE_PROBE_SOURCE = "loss (smoothed; the probe loss was measured at too few steps)"


def loss_curve(trace: Trace) -> tuple[np.ndarray, np.ndarray, str]:
    """The loss as it evolved: (steps, values, which series).

    The probe-batch loss is preferred: it is measured on the same samples at every
    step, so it is comparable across steps, unless it is frozen (:func:`probe_frozen`:
    it repeats itself while the weights move, so it is not measured on the network as
    it is). The per-batch training loss jumps from batch to batch (per-sample SGD most
    of all), so it is smoothed over ~5% of the run.
    """
    steps, values = finite_series(trace, "probe_loss")
    batch = finite_series(trace, "loss")[1]
    frozen = sparse = False
    if len(values) >= 2:
        frozen = probe_frozen(trace)
        # (a probe loss measured at a few steps of a long framework run is a few samples of
        # a level: the batch loss, measured at every step, is then the better reading)
        sparse = not measured_enough(len(values), trace) and measured_enough(len(batch), trace)
        if not (frozen or sparse) or len(batch) < 2:
            return steps, values, "probe_loss"
    steps, values = finite_series(trace, "loss")
    if len(values) >= 2:
        source = ("loss (smoothed; the probe loss was frozen)" if frozen else
                  SPARSE_PROBE_SOURCE if sparse else "loss (smoothed)")
        return steps, running_mean(values, len(values) // 20), source
    raise Skip("fewer than two finite loss values recorded")


def has_fitted(values: np.ndarray, th: Thresholds) -> bool:
    """Whether the loss has come down to a small fraction of where it started."""
    if len(values) == 0:
        return False
    start, end = float(values[0]), float(values[-1])
    return start > 0 and end <= th.plateau_fit_loss * start


def smoothed_loss_curve(trace: Trace, th: Thresholds) -> tuple[np.ndarray, np.ndarray, str]:
    """The loss curve with single-step noise taken out: (steps, values, which series).

    Per-sample SGD and full-batch steps on a sharp valley both make single recorded
    losses jump; what a person means by "the loss rose" is the level of the curve,
    so every point is replaced by the median of a window of ``fit_tail_frac`` of the
    recorded points around it (the batch loss is already averaged by :func:`loss_curve`).
    """
    steps, values, source = loss_curve(trace)
    window = max(1, int(round(th.fit_tail_frac * len(values))))
    if window < 3:
        return steps, values, source
    half = window // 2
    padded = np.pad(values, half, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    return steps, np.median(windows, axis=1), source + ", median-smoothed"


@dataclass(frozen=True)
class Fit:
    """Whether a run fits its data (see ``Thresholds``, "does the run fit?") and the numbers why.

    ``fits`` is None when the trace holds no loss curve to judge by.
    """

    fits: bool | None
    loss_start: float = math.nan
    loss_end: float = math.nan
    accuracy: float | None = None
    accuracy_needed: float | None = None
    accuracy_allowed: float | None = None
    reason: str = ""

    @property
    def fails(self) -> bool:
        """True only when the run was judged and does not fit (unknown is not failing)."""
        return self.fits is False

    def stuck(self, th: Thresholds) -> bool:
        """Does not fit and its loss barely moved (ends above ``fit_stuck_ratio`` of its start)."""
        if not self.fails:
            return False
        if not (math.isfinite(self.loss_start) and math.isfinite(self.loss_end)):
            return True  # the loss turned NaN/Inf: nothing was learned that lasted
        return self.loss_end > th.fit_stuck_ratio * self.loss_start

    def evidence(self, th: Thresholds) -> dict[str, Any]:
        return {
            "run_fits": self.fits,
            "fit_loss_start": self.loss_start,
            "fit_loss_end": self.loss_end,
            "fit_accuracy": self.accuracy,
            "fit_accuracy_needed": self.accuracy_needed,
            "fit_accuracy_allowed": self.accuracy_allowed,
            "fit_loss_ratio": th.fit_loss_ratio,
            "fit_accuracy_share": th.fit_accuracy_share,
            "fit_stuck_ratio": th.fit_stuck_ratio,
        }


def probe_array(trace: Trace, attr: str) -> np.ndarray | None:
    """The probe batch's ``probe_inputs`` or ``probe_targets`` as floats (None if absent or not numbers)."""
    value = getattr(trace, attr, None)
    if value is None:
        return None
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None


def _probe_labels(trace: Trace) -> np.ndarray | None:
    """The probe batch's class labels (from one-hot rows, a 0/1 column or integer labels)."""
    targets = probe_array(trace, "probe_targets")
    if targets is None:
        return None
    if targets.ndim == 2 and targets.shape[1] > 1:
        return targets.argmax(axis=1) if np.isin(targets, (0.0, 1.0)).all() else None
    flat = targets.ravel()
    if len(flat) == 0 or not np.isfinite(flat).all():
        return None
    values = np.unique(flat)
    if len(values) == 2:
        return (flat == values.max()).astype(int)
    whole = np.all(flat == np.round(flat)) and np.abs(flat).max() < 1e6
    return flat.astype(int) if whole and len(values) <= 50 and flat.min() >= 0 else None


def accuracy_allowed(trace: Trace, th: Thresholds, labels: np.ndarray) -> float:
    """What the probe batch allows: ``1 - e/2`` for the nearest neighbour's error ``e``.

    Classes that overlap (label noise, a noisy spiral) cap any model's accuracy below 1.
    The nearest neighbour's leave-one-out error is a model-free reading of how far: it
    is at most twice the best achievable error (Cover and Hart), so ``1 - e/2`` is an
    optimistic estimate of the best accuracy, and sparse samples (which inflate ``e``)
    lower it only by half as much. Small probe batches (and inputs that cannot be read)
    allow 1: every distinct input can be fitted.
    """
    inputs = trace.probe_inputs
    try:
        inputs = None if inputs is None else np.asarray(inputs, dtype=float)
    except (TypeError, ValueError):
        inputs = None
    n = len(labels)
    if inputs is None or inputs.ndim != 2 or len(inputs) != n or n < th.fit_knn_min_samples \
            or not np.isfinite(inputs).all():
        return 1.0
    scale = inputs.std(axis=0)
    x = inputs / np.where(scale > 0, scale, 1.0)
    d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(d, np.inf)
    error = float(np.mean(labels[np.argmin(d, axis=1)] != labels))
    return 1.0 - error / 2


# --- how many measured steps a judgement needs --------------------------------------

# A framework run measures its heavy quantities (probe loss, accuracy, update ratios)
# only every few steps to stay cheap, so a long run may carry three or four of them.
# A level read from so few moves with any one step. With at least 9 measured values,
# the run's median lies between the second-smallest and the second-largest of them
# with probability 1 - 2 * 10/512 = 96% (the sign-test interval), so no single odd
# step decides it. A run of fewer steps than that, measured at every step, is
# measured completely and is judged as it is.
MIN_MEASURED_STEPS = 9


def steps_taken(trace: Trace) -> int:
    """The training steps the run made (the trace may hold fewer rows: it is thinned)."""
    recorded = np.asarray(trace.steps)
    last = int(recorded[-1]) if len(recorded) else 0
    return max(int(getattr(trace.info, "steps", 0) or 0), last)


def measured_enough(measured: int, trace: Trace) -> bool:
    """Whether `measured` values of a per-step quantity are enough to judge its level on `trace`."""
    return measured >= min(MIN_MEASURED_STEPS, max(steps_taken(trace), 1))


def too_few_measured(what: str, measured: int, trace: Trace) -> str:
    return (f"{what} was measured at only {measured} of {steps_taken(trace)} steps; judging its level "
            f"needs at least {MIN_MEASURED_STEPS} measured steps")


def _fit_curve(trace: Trace) -> tuple[np.ndarray, str, str]:
    """The loss curve `run_fits` reads, which series it is, and a note for the reason: the
    probe loss, or the batch loss where the probe loss was measured at too few steps to
    tell where the run ended."""
    _, values, source = loss_curve(trace)
    if source == SPARSE_PROBE_SOURCE:
        probes = len(finite_series(trace, "probe_loss")[1])
        return values, "loss (smoothed)", f" (the batch loss: {too_few_measured('the probe loss', probes, trace)})"
    if measured_enough(len(values), trace):
        return values, source, ""
    raise Skip(too_few_measured("the loss", len(values), trace))


def run_fits(trace: Trace, th: Thresholds) -> Fit:
    """Does the run fit its data? The one definition every symptom rule uses.

    See ``Thresholds`` ("does the run fit?"): the loss ends at most ``fit_loss_ratio``
    of its start and, for a classifier, the probe-batch accuracy at the end reaches
    ``fit_accuracy_share`` of the way from chance to what the data allows.
    """
    for quantity in ("probe_loss", "loss"):
        _, raw = trace.series(quantity)
        raw = np.asarray(raw, dtype=float).ravel()
        finite = np.isfinite(raw)
        # (NaN where a step did not measure the quantity is no NaN of the run: see first_nonfinite.)
        bad = first_nonfinite(raw)
        if finite.any() and bad is not None and bad >= int(np.argmax(finite)):
            return Fit(False, reason=f"the {quantity} became NaN/Inf during the run")
    try:
        values, source, note = _fit_curve(trace)
    except Skip as why:
        return Fit(None, reason=str(why) or "no loss curve recorded")
    tail = max(1, int(round(th.fit_tail_frac * len(values))))
    if source == "probe_loss":
        start = float(values[0])
    else:  # one batch is noisy: average the first few batch losses
        _, raw = finite_series(trace, "loss")
        start = float(np.mean(raw[: th.loss_init_steps]))
    end = float(np.median(values[-tail:]))
    if not (math.isfinite(start) and start > 0 and math.isfinite(end)):
        return Fit(None, start, end, reason="the loss at the start is not a positive number")
    loss_ok = end <= th.fit_loss_ratio * start
    reason = (f"loss {fmt(start, 4)} -> {fmt(end, 4)} ({fmt(end / start * 100, 3)}% of its start; "
              f"fitting needs <= {fmt(th.fit_loss_ratio * 100, 3)}%){note}")
    if getattr(trace.info, "task", None) == "regression":
        return Fit(loss_ok, start, end, reason=reason)
    labels = _probe_labels(trace)
    _, acc = finite_series(trace, "accuracy")
    if labels is None or len(acc) == 0 or len(np.unique(labels)) < 2:
        return Fit(loss_ok, start, end, reason=reason)
    if not measured_enough(len(acc), trace):
        return Fit(loss_ok, start, end, reason=reason + "; " + too_few_measured("the probe accuracy", len(acc), trace)
                   + ", so only the loss is judged")
    if probe_frozen(trace, th):
        # The probe accuracy comes from the same stale outputs as the frozen probe loss.
        return Fit(loss_ok, start, end, reason=reason + "; the probe accuracy was not re-measured "
                   "as the weights changed, so only the loss is judged")
    accuracy = float(np.median(acc[-max(1, int(round(th.fit_tail_frac * len(acc)))):]))
    chance = float(np.max(np.bincount(labels)) / len(labels))
    allowed = max(accuracy_allowed(trace, th, labels), chance)
    needed = chance + th.fit_accuracy_share * (allowed - chance)
    acc_ok = accuracy >= needed - 1e-9
    reason += (f"; accuracy {fmt(accuracy)} (chance {fmt(chance)}, the data allows about "
               f"{fmt(allowed)}; fitting needs >= {fmt(needed)})")
    return Fit(loss_ok and acc_ok, start, end, accuracy, needed, allowed, reason)


def capped(severity, fit: Fit):
    """A symptom's severity on this run: at most a warning when the run fits."""
    if fit.fits and severity > Severity.WARNING:
        return Severity.WARNING
    return severity


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
