"""ND1xx: what the network outputs and how its loss moves.

These are the symptoms a person notices first ("stuck at 0.5", "loss flat").
They read the probe-batch outputs and the loss series; the root causes are
named by the other families.
"""

from __future__ import annotations

import math

import numpy as np

from ..trace import MODEL
from ..types import Severity
from . import RuleContext, Skip, rule
from ._common import (
    after_warmup,
    as_count,
    as_float,
    as_name,
    event_layer,
    event_location,
    event_step,
    events,
    first_nonfinite,
    finite_series,
    fmt,
    fmt_values,
    has_fitted,
    layer_names,
    loss_curve,
    measured_enough,
    output_function,
    output_layer,
    payload,
    probe_array,
    quiet,
    smoothed_loss_curve,
    too_few_measured,
    trailing_streak,
    warmup_end,
)


# --- probe batch ------------------------------------------------------------------


def _probe_batch(ctx: RuleContext):
    """(steps, outputs (checks, samples, units), targets (samples, units)) or Skip.

    Targets given as integer labels are turned into one-hot rows when the network
    has several output units, so outputs and targets line up unit by unit.
    """
    trace = ctx.trace
    outputs = trace.outputs
    if outputs is None:
        raise Skip("no probe-batch outputs recorded")
    try:
        outputs = np.asarray(outputs, dtype=float)
    except (TypeError, ValueError):
        raise Skip("probe-batch outputs are not numeric") from None
    if outputs.ndim == 2:
        outputs = outputs[:, :, None]
    if outputs.ndim != 3 or 0 in outputs.shape:
        raise Skip(f"probe-batch outputs have shape {outputs.shape}, expected (checks, samples, units)")
    n_checks, n_samples, n_units = outputs.shape
    if n_samples < 2:
        raise Skip("the probe batch has fewer than two inputs")
    steps = np.asarray(trace.steps)
    n = min(n_checks, len(steps))
    steps, outputs = steps[:n], outputs[:n]
    # Observers may run the probe batch only every few recorded steps; the rows in
    # between are all NaN ("not measured"), unlike a network's NaN next to numbers.
    measured = ~np.isnan(outputs).all(axis=(1, 2))
    steps, outputs = steps[measured], outputs[measured]
    if len(steps) == 0:
        raise Skip("no probe-batch outputs measured")

    if trace.probe_targets is None:
        raise Skip("no probe-batch targets recorded")
    try:
        targets = np.asarray(trace.probe_targets, dtype=float)
    except (TypeError, ValueError):
        raise Skip("probe-batch targets are not numeric") from None
    if targets.ndim == 1:
        targets = targets[:, None]
    if targets.ndim != 2 or targets.shape[0] != n_samples:
        raise Skip(f"probe targets of shape {targets.shape} do not match {n_samples} probe inputs")
    if not np.isfinite(targets).all():
        raise Skip("probe targets contain NaN/Inf")
    if targets.shape[1] != n_units:
        labels = targets[:, 0]
        is_labels = targets.shape[1] == 1 and np.all(labels == np.round(labels))
        if not (is_labels and labels.min() >= 0 and labels.max() < n_units):
            raise Skip(f"probe targets have {targets.shape[1]} columns for {n_units} output units")
        targets = np.eye(n_units)[labels.astype(int)]
    return steps, outputs, targets


def _describe_inputs(trace, n_samples: int) -> str:
    """'all 4 probe inputs ([0, 0], [0, 1], ...)' — listed only when short enough to read."""
    text = f"all {n_samples} probe inputs"
    inputs = trace.probe_inputs
    try:
        inputs = None if inputs is None else np.asarray(inputs, dtype=float)
    except (TypeError, ValueError):
        inputs = None
    if inputs is not None and inputs.ndim == 2 and len(inputs) == n_samples and n_samples <= 8 \
            and inputs.shape[1] <= 4:
        rows = ", ".join("[" + ", ".join(fmt(v) for v in row) + "]" for row in inputs)
        text += f" ({rows})"
    return text


@rule("ND101", "output-pinned", Severity.ERROR, symptom=True)
@quiet
def output_pinned(ctx: RuleContext):
    """Outputs are (nearly) the same for every input, e.g. stuck at 0.5.

    What it does
        Watches the network's outputs on a fixed probe batch. If, after warm-up and
        up to the end of the run, the outputs barely differ between inputs (their
        spread across inputs stays below ``pinned_std``) — or, for a sigmoid output
        with 0/1 targets, all stay within ``pinned_half_band`` of 0.5 — for at least
        ``pinned_checks`` consecutive checks, while the targets of those inputs
        differ, the network has stopped looking at its input.

    Why is this bad?
        A network whose output does not depend on its input cannot fit targets that
        do. The loss stalls at the value of the best constant (for XOR with two
        outputs: [0.5, 0.5]) and more epochs do not help. The cause is usually
        upstream: an activation that cannot reach the targets, saturated or dead
        units, symmetric or same-sign initial weights, or wrong gradients.

    Example
        ``1/(1+expit(-z))`` as the activation (sigmoid applied twice) with ``rnd.rand``
        initial weights: after 2,000 epochs the XOR outputs read 0.501 for all four
        inputs.

    Use instead
        Fix the root cause the other findings name (ND303 for a wrong activation,
        ND401/ND402 for the initialisation, ND2xx for gradients); then the outputs
        separate within the first few hundred steps.
    """
    th = ctx.thresholds
    steps, outputs, targets = _probe_batch(ctx)
    target_spread = float(np.max(targets.max(axis=0) - targets.min(axis=0)))
    if not target_spread > th.target_spread_min:
        raise Skip("the probe targets are the same for every input: a constant output is correct")

    with np.errstate(invalid="ignore", over="ignore"):
        spread = outputs.std(axis=1).max(axis=1)  # NaN when a check has NaN/Inf: not "pinned"
        pinned_by_std = spread < th.pinned_std
        # The half band only means something for a sigmoid-like output judged against 0/1 targets.
        function = output_function(ctx.trace)
        binary = bool(np.isin(targets, (0.0, 1.0)).all())
        two_way = function == "sigmoid" or (function == "softmax" and outputs.shape[2] == 2)
        if binary and two_way:
            pinned_by_band = (np.abs(outputs - 0.5) < th.pinned_half_band).all(axis=(1, 2))
        else:
            pinned_by_band = np.zeros(len(steps), dtype=bool)
    pinned = pinned_by_std | pinned_by_band
    streak = trailing_streak(pinned)
    judged = steps[len(steps) - streak:] >= warmup_end(ctx.trace, th)
    if int(judged.sum()) < th.pinned_checks:
        return []  # not pinned at the end, or not for long enough after warm-up
    first = len(steps) - streak
    last = outputs[-1]
    value = last.mean(axis=0)
    wobble = float(np.max(spread[first:]))
    criterion = "spread below pinned_std" if pinned_by_std[first:].all() else "within the 0.5 band"
    message = (
        f"outputs stay at {fmt_values(value)}±{fmt(wobble, 2)} for "
        f"{_describe_inputs(ctx.trace, outputs.shape[1])} from step {int(steps[first])} to the end "
        f"(step {int(steps[-1])}), although their targets differ by up to {fmt(target_spread)}"
    )
    return [
        ctx.finding(
            message,
            layer=output_layer(ctx.trace),
            step=int(steps[first]),
            evidence={
                "pinned_value": value,
                "spread_across_inputs": wobble,
                "first_step": int(steps[first]),
                "checks_pinned": streak,
                "n_probe_inputs": outputs.shape[1],
                "target_spread": target_spread,
                "criterion": criterion,
                "pinned_std": th.pinned_std,
                "pinned_half_band": th.pinned_half_band,
                "pinned_checks": th.pinned_checks,
                "warmup_frac": th.warmup_frac,
            },
        )
    ]


@rule("ND102", "constant-prediction", Severity.ERROR, symptom=True)
@quiet
def constant_prediction(ctx: RuleContext):
    """The network predicts the same class for every input although the classes differ.

    What it does
        Turns the probe-batch outputs into predicted classes (arg-max over output
        units; for one output unit, above or below the middle of the target range)
        and flags a run whose predictions are one and the same class for every probe
        input over the last ``pinned_checks`` checks, while the probe targets hold at
        least two classes.

    Why is this bad?
        Predicting one class everywhere is what a network does when it has learned
        nothing but the class frequencies. Accuracy sits at the share of the biggest
        class (50% on XOR) however long it trains.

    Example
        A learning rate 10,000 times too small: after 500 epochs the network still
        answers "class 1" for all four XOR inputs.

    Use instead
        Look at the other findings for the cause (learning rate ND501/ND502,
        initialisation ND4xx, wrong gradients ND2xx); a working network separates
        the classes in its predictions early in training.
    """
    th = ctx.thresholds
    if ctx.info.task == "regression":
        raise Skip("regression run: there are no classes to predict")
    steps, outputs, targets = _probe_batch(ctx)
    n_units = outputs.shape[2]
    if n_units > 1:
        if not np.isin(targets, (0.0, 1.0)).all():
            raise Skip("targets are not one-hot classes")
        truth = targets.argmax(axis=1)
        with np.errstate(invalid="ignore"):
            predicted = np.where(np.isfinite(outputs).all(axis=2), outputs.argmax(axis=2), -1)
    else:
        values = np.unique(targets[:, 0])
        if len(values) > 2:
            raise Skip("a single continuous output: not a classification")
        middle = (values.min() + values.max()) / 2
        truth = (targets[:, 0] > middle).astype(int)
        with np.errstate(invalid="ignore"):
            predicted = np.where(np.isfinite(outputs[:, :, 0]), outputs[:, :, 0] > middle, -1).astype(int)
    if len(np.unique(truth)) < 2:
        raise Skip("the probe targets hold a single class")
    constant = (predicted == predicted[:, :1]).all(axis=1) & (predicted[:, 0] >= 0)
    streak = trailing_streak(constant)
    if streak < th.pinned_checks:
        return []
    first = len(steps) - streak
    cls = int(predicted[-1, 0])
    accuracy = float(np.mean(truth == cls))
    return [
        ctx.finding(
            f"predicts class {cls} for all {outputs.shape[1]} probe inputs from step {int(steps[first])} "
            f"to the end, while their targets hold {len(np.unique(truth))} classes "
            f"(accuracy {fmt(accuracy)})",
            step=int(steps[first]),
            evidence={
                "predicted_class": cls,
                "n_target_classes": int(len(np.unique(truth))),
                "accuracy": accuracy,
                "first_step": int(steps[first]),
                "checks_constant": streak,
                "pinned_checks": th.pinned_checks,
            },
        )
    ]


def _finite_targets(trace) -> np.ndarray | None:
    targets = probe_array(trace, "probe_targets")
    return targets if targets is not None and targets.size and np.isfinite(targets).all() else None


def _expected_initial_loss(ctx: RuleContext) -> tuple[float, str] | None:
    """What the loss should be when the network still outputs 'no idea' (uniform classes)."""
    loss = (ctx.info.loss or "").lower()
    function = output_function(ctx.trace)
    classes = ctx.info.n_classes
    outputs = ctx.trace.outputs
    units = None
    if outputs is not None and np.ndim(outputs) == 3:
        units = int(np.shape(outputs)[2])
    if loss.startswith("ce") and function == "softmax":
        n = units if units and units > 1 else classes
        if n and n > 1:
            return math.log(n), f"ln {n} (uniform over {n} classes)"
    targets = _finite_targets(ctx.trace)
    if targets is not None and not ((targets >= 0) & (targets <= 1)).all():
        return None   # (targets beyond [0, 1]: no cross-entropy or sigmoid reference; ND601 judges them)
    if loss.startswith("bce") and function == "sigmoid":
        return math.log(2), "ln 2 (every output at 0.5)"
    if loss.startswith("mse") and ctx.info.task == "classification":
        if function == "sigmoid":
            if targets is not None and not np.isin(targets, (0.0, 1.0)).all():
                # (Targets between 0 and 1: the squared error of outputs at 0.5 against them.)
                value = float(np.mean((targets - 0.5) ** 2))
                return (value, f"{fmt(value)} (every output at 0.5 against these targets)") if value > 0 else None
            return 0.25, "0.25 (every output at 0.5 against 0/1 targets)"
        n = units if units and units > 1 else classes
        if function == "softmax" and n and n > 1:
            return (n - 1) / n**2, f"(C-1)/C^2 with C={n} (uniform outputs against one-hot targets)"
    return None


@rule("ND103", "loss-at-init", Severity.ERROR, symptom=True)
@quiet
def loss_at_init(ctx: RuleContext):
    """The first loss is far from what a freshly initialised network should give.

    What it does
        Compares the loss at the start of training with the loss of a network that
        has no preference yet: ln C for softmax with cross-entropy over C classes,
        ln 2 for sigmoid outputs with binary cross-entropy, 0.25 for sigmoid outputs
        with squared error on 0/1 targets (on targets between 0 and 1, the squared
        error of outputs at 0.5 against them). A ratio inside ``loss_init_ok`` is fine,
        inside ``loss_init_warn`` a warning, outside it an error. Initial logits
        grow with the inputs, so for inputs with mean |x| above 1 both bands widen by
        that factor (large-margin data legitimately starts far from ln C). Regression
        runs are skipped (there is no such reference value). A symptom: on a run that
        fits its data, at most a warning.

    Why is this bad?
        A much larger starting loss means the network starts out confidently wrong:
        initial weights too large (saturated outputs), a wrong output function or a
        loss computed on the wrong quantity. A much smaller one often means the loss
        is not what it claims to be (e.g. averaged over the wrong axis).

    Example
        Softmax + cross-entropy over 3 classes starting at a loss of 9.4 instead of
        ln 3 = 1.10, because the initial weights were drawn from N(0, 1) with 500
        inputs.

    Use instead
        Initialise so the first outputs are near uniform (Glorot for sigmoid/tanh,
        He for ReLU, zero biases), and check that the loss matches the output
        function (cross-entropy on probabilities, not on logits).
    """
    th = ctx.thresholds
    if ctx.trace.info.extra.get("first_steps_unseen"):
        raise Skip("the run's first steps were not observed, so its first loss is not the initial one")
    expected = _expected_initial_loss(ctx)
    if expected is None:
        raise Skip("no reference initial loss for this output/loss combination")
    reference, explanation = expected
    steps, values = finite_series(ctx.trace, "probe_loss")
    source = "probe_loss"
    if len(values) == 0:
        # Single-batch losses are noisy (one sample in per-sample SGD): average the first few.
        steps, values = finite_series(ctx.trace, "loss")
        values = values[: th.loss_init_steps]
        source = f"mean of the first {len(values)} batch losses"
        if len(values) == 0:
            raise Skip("no finite loss recorded")
        initial = float(values.mean())
    else:
        initial = float(values[0])
    ratio = initial / reference
    # Initial logits grow with the inputs (a Glorot/He layer keeps their scale), and a
    # network with large logits starts confident: on large-margin data, confidently
    # right or wrong by chance. So the bands widen by the inputs' scale beyond 1.
    scale = _input_scale(ctx)
    ok_lo, ok_hi = th.loss_init_ok[0] / scale, th.loss_init_ok[1] * scale
    warn_lo, warn_hi = th.loss_init_warn[0] / scale, th.loss_init_warn[1] * scale
    if ok_lo <= ratio <= ok_hi:
        return []
    severity = Severity.WARNING if warn_lo <= ratio <= warn_hi else Severity.ERROR
    direction = "higher" if ratio > 1 else "lower"
    return [
        ctx.finding(
            f"initial loss {fmt(initial)} is {fmt(ratio, 2)}x the {fmt(reference)} expected "
            f"from {explanation}: {direction} than a network with no preference yet"
            + (f" (bands widened {fmt(scale, 2)}x for inputs of mean |x| {fmt(scale, 2)})" if scale > 1 else ""),
            severity=severity,
            step=int(steps[0]) if len(steps) else None,
            evidence={
                "initial_loss": initial,
                "expected_loss": reference,
                "ratio": ratio,
                "measured_on": source,
                "input_scale": scale,
                "loss_init_ok": th.loss_init_ok,
                "loss_init_warn": th.loss_init_warn,
            },
        )
    ]


def _input_scale(ctx: RuleContext) -> float:
    """The inputs' typical size (mean |x|), at least 1: how much larger initial logits may be."""
    found = events(ctx.trace, "data")
    scale = as_float(payload(found[-1]).get("x_abs_mean")) if found else math.nan
    return scale if math.isfinite(scale) and scale > 1 else 1.0


@rule("ND104", "loss-plateau", Severity.WARNING, symptom=True)
@quiet
def loss_plateau(ctx: RuleContext):
    """The loss stopped going down long before the network fitted the data.

    What it does
        Looks at the last ``plateau_window_frac`` of the run. If the loss fell by
        less than ``plateau_min_drop`` of its starting value there, while it is still
        above ``plateau_fit_loss`` of its start (so the network has not simply
        converged), the run is on a plateau. A loss that does not change at all is an
        error; a slow one a warning.

    Why is this bad?
        Training that no longer lowers the loss only burns time. A flat loss from the
        very start usually means no useful gradient reaches the parameters; a plateau
        after an early drop often means saturated or dead units, or a learning rate
        far too small.

    Example
        A network whose loss reads 0.6931, 0.6931, 0.6931 ... for 1,500 epochs.

    Use instead
        Find out why nothing moves: ND2xx (gradients), ND3xx (saturated/dead units)
        and ND5xx (update sizes) point at the cause. A healthy run keeps lowering the
        loss until it fits the data.
    """
    th = ctx.thresholds
    steps, values, source = loss_curve(ctx.trace)
    start = float(values[0])
    if not start > 0:
        raise Skip("the starting loss is not positive")
    if has_fitted(values, th):
        return []
    window_start = steps[0] + (1 - th.plateau_window_frac) * (steps[-1] - steps[0])
    window = values[steps >= window_start]
    if len(window) < 2:
        raise Skip("too few loss values in the final window")
    drop = float(window[0] - window[-1])
    if abs(drop) >= th.plateau_min_drop * start:
        return []  # still falling, or rising (ND105's business): not a plateau
    flat = float(window.max() - window.min()) <= 1e-12 * max(abs(start), 1e-300)
    severity = Severity.ERROR if flat else Severity.WARNING
    share = fmt(abs(drop) / start * 100, 2)
    how = "does not change at all" if flat else f"changes by only {share}% of its start"
    return [
        ctx.finding(
            f"loss {how} over the last {fmt(th.plateau_window_frac * 100, 2)}% of the run "
            f"(from {fmt(window[0], 4)} to {fmt(window[-1], 4)}; it started at {fmt(start, 4)}), "
            f"and is still {fmt(values[-1] / start * 100, 3)}% of its start",
            severity=severity,
            step=int(steps[steps >= window_start][0]),
            evidence={
                "start_loss": start,
                "final_loss": float(values[-1]),
                "window_drop": drop,
                "measured_on": source,
                "plateau_window_frac": th.plateau_window_frac,
                "plateau_min_drop": th.plateau_min_drop,
                "plateau_fit_loss": th.plateau_fit_loss,
            },
        )
    ]


@rule("ND105", "loss-diverging", Severity.ERROR, symptom=True)
@quiet
def loss_diverging(ctx: RuleContext):
    """The loss rises again, or jumps up and down instead of settling.

    What it does
        Diverging: on the loss curve smoothed by a running median (over
        ``fit_tail_frac`` of the recorded points, so single noisy steps of per-sample
        SGD do not count), the level over the last ``diverge_tail_frac`` of the run
        (its median) is at least ``diverge_ratio`` times the lowest level reached
        before that stretch, and the rise is at least ``diverge_min_rise`` of the
        starting loss; or the loss overflows —
        to Inf, or to NaN right after climbing to ``diverge_ratio`` times its lowest.
        Oscillating (probe-batch loss only, as per-batch losses wobble by nature):
        after warm-up, more than ``oscillation_sign_change`` of successive changes
        flip sign, the typical jump is at least ``oscillation_amplitude`` of the loss
        level, and the loss is not coming down over that stretch.

    Why is this bad?
        Steps that overshoot the minimum make the loss climb or bounce between the
        walls of the valley. The usual cause is a learning rate far too high; a wrong
        update sign makes the loss climb steadily.

    Example
        ``lr = 500`` on XOR: the loss reaches 0.3, then climbs to 4.2 and bounces
        between 2 and 6.

    Use instead
        Lower the learning rate (by 10x steps until the loss decreases smoothly),
        check the update sign (``w -= lr * grad``), and consider gradient clipping
        for deep networks.
    """
    th = ctx.thresholds
    overflow = _overflow(ctx)
    if overflow is not None:
        return [overflow]
    raw_steps, raw_values, raw_source = loss_curve(ctx.trace)
    if not measured_enough(len(raw_values), ctx.trace):
        raise Skip(too_few_measured("the loss", len(raw_values), ctx.trace))
    # A loss bouncing between two levels is reported as oscillating, not as having
    # "climbed" to its upper level: check that first (on the unsmoothed probe loss).
    if raw_source == "probe_loss":
        oscillating = _oscillation(ctx, raw_steps, raw_values, raw_source)
        if oscillating is not None:
            return [oscillating]
    # Divergence is a change of level, not one bad step: judge the smoothed curve, and
    # compare its end with the lowest level reached *before* the end.
    steps, values, source = smoothed_loss_curve(ctx.trace, th)
    start = float(values[0])
    tail_from = steps[0] + (1 - th.diverge_tail_frac) * (steps[-1] - steps[0])
    in_tail = steps >= tail_from
    if in_tail.all() or not in_tail.any():
        raise Skip("too few loss values to tell the end of the run from what came before")
    final = float(np.median(values[in_tail]))
    before = np.flatnonzero(~in_tail)
    lowest_at = int(before[np.argmin(values[before])])
    lowest = float(values[lowest_at])
    if len(raw_values) == len(values):
        # Name the step where the raw curve bottoms out near the smoothed minimum.
        half = max(1, int(round(th.fit_tail_frac * len(values))) // 2)
        near = np.arange(max(0, lowest_at - half), min(len(values), lowest_at + half + 1))
        near = near[~in_tail[near]]
        lowest_at = int(near[np.argmin(raw_values[near])])
    rise = final - lowest
    if not (lowest >= 0 and final >= th.diverge_ratio * lowest and rise >= th.diverge_min_rise * abs(start)):
        return []
    return [
        ctx.finding(
            f"loss rises from its lowest {fmt(lowest, 4)} at step {int(steps[lowest_at])} "
            f"to {fmt(final, 4)} over the last {fmt(th.diverge_tail_frac * 100, 2)}% of the run "
            f"({fmt(final / lowest if lowest > 0 else math.inf, 3)}x; {source})",
            step=int(steps[lowest_at]),
            evidence={
                "lowest_loss": lowest,
                "lowest_step": int(steps[lowest_at]),
                "final_loss": final,
                "start_loss": start,
                "measured_on": source,
                "diverge_ratio": th.diverge_ratio,
                "diverge_min_rise": th.diverge_min_rise,
                "diverge_tail_frac": th.diverge_tail_frac,
                "fit_tail_frac": th.fit_tail_frac,
            },
        )
    ]


def _overflow(ctx: RuleContext):
    """A loss that climbs until it overflows: +Inf, or NaN right after a rise."""
    th = ctx.thresholds
    for quantity in ("probe_loss", "loss"):
        steps, values = ctx.trace.series(quantity)
        values = np.asarray(values, dtype=float).ravel()[: len(steps)]
        finite = np.isfinite(values)
        if not finite.any():
            continue
        first_ok = int(np.argmax(finite))
        broken = np.flatnonzero(~finite[first_ok:])
        if not len(broken):
            return None
        at = first_ok + int(broken[0])
        before = values[first_ok:at]
        lowest = float(before.min()) if len(before) else math.nan
        rose = len(before) >= 2 and before[-1] >= th.diverge_ratio * lowest and before[-1] > before[0]
        if not (values[at] == math.inf or rose):
            return None  # a NaN out of nowhere: ND106 names it; nothing says the loss climbed
        what = "Inf" if values[at] == math.inf else "NaN"
        return ctx.finding(
            f"{quantity} climbs from {fmt(before[0], 4)} (lowest {fmt(lowest, 4)}) to {fmt(before[-1], 4)} "
            f"and overflows to {what} at step {int(steps[at])}",
            step=int(steps[at]),
            evidence={
                "first_loss": float(before[0]),
                "lowest_loss": lowest,
                "last_finite_loss": float(before[-1]),
                "overflow_step": int(steps[at]),
                "measured_on": quantity,
                "diverge_ratio": th.diverge_ratio,
            },
        )
    return None


def _oscillation(ctx: RuleContext, steps: np.ndarray, values: np.ndarray, source: str):
    th = ctx.thresholds
    w_steps, window = after_warmup(ctx.trace, th, steps, values)
    diffs = np.diff(window)
    diffs = diffs[diffs != 0]
    if len(diffs) < 4:
        return None
    flips = float(np.mean(np.sign(diffs[1:]) != np.sign(diffs[:-1])))
    level = float(np.median(window))
    jump = float(np.median(np.abs(diffs)))
    settling = window[-1] < th.oscillation_settle * window[0]
    if not (flips > th.oscillation_sign_change and level > 0 and jump >= th.oscillation_amplitude * level
            and not settling):
        return None
    return ctx.finding(
        f"loss oscillates after step {int(w_steps[0])}: {fmt(flips * 100, 2)}% of its changes flip "
        f"sign, with typical jumps of {fmt(jump)} around a level of {fmt(level)}",
        step=int(w_steps[0]),
        evidence={
            "sign_change_fraction": flips,
            "typical_jump": jump,
            "loss_level": level,
            "measured_on": source,
            "oscillation_sign_change": th.oscillation_sign_change,
            "oscillation_amplitude": th.oscillation_amplitude,
            "oscillation_settle": th.oscillation_settle,
        },
    )


@rule("ND106", "non-finite", Severity.ERROR)
@quiet
def non_finite(ctx: RuleContext):
    """NaN or Inf appeared in the loss, outputs, activations, gradients or weights.

    What it does
        Reports the first tensor and step at which a NaN or Inf was seen: from the
        observer's ``nonfinite`` events, the per-layer ``nonfinite`` counts, the loss
        series and the probe-batch outputs, whichever came first.

    Why is this bad?
        Once a NaN enters, every number computed from it is NaN: the weights are
        destroyed and training cannot recover. Inf usually comes first, from an
        overflowing exp, a log of 0 or a learning rate so high that weights blow up.

    Example
        ``np.log(out)`` in the loss with a sigmoid output that reached exactly 0,
        or ``lr = 100`` on a regression: layer2's gradient is Inf at step 12, the
        loss NaN from step 13.

    Use instead
        Lower the learning rate, clip probabilities before taking logs
        (``np.clip(p, 1e-12, 1 - 1e-12)``), use a numerically stable sigmoid/softmax
        (subtract the row maximum before ``exp``), and scale the inputs.
    """
    trace = ctx.trace
    sightings: list[tuple[int, str, object]] = []   # (step, what, location)
    for event in events(trace, "nonfinite"):
        data = payload(event)
        step = event_step(event)
        if step is None:
            step = as_count(data.get("step")) if data.get("step") is not None else None
        tensor = as_name(data.get("tensor")) or event_layer(event) or "a tensor"
        sightings.append((step if step is not None else -1, str(tensor), event_location(event)))
    seen_any_data = bool(sightings)
    for layer in [MODEL, *layer_names(trace)]:
        steps, counts = trace.series("nonfinite", layer)
        counts = np.asarray(counts, dtype=float).ravel()[: len(steps)]
        if len(counts):
            seen_any_data = True
            bad = np.flatnonzero(~(counts == 0) & ~np.isnan(counts))
            if len(bad):
                what = "the loss or outputs" if layer == MODEL else f"{layer}'s arrays"
                sightings.append((int(steps[bad[0]]), what, None))
    for quantity in ("loss", "probe_loss"):
        steps, values = trace.series(quantity)
        values = np.asarray(values, dtype=float).ravel()[: len(steps)]
        if len(values):
            seen_any_data = True
            # The probe loss is measured only at steps with a probe forward pass (a schedule
            # may space them out): NaN there is "not measured"; a real NaN probe loss is
            # counted in the model's `nonfinite` series, read above. The batch loss may miss a
            # step too (a step whose passes were not seen): see first_nonfinite.
            if quantity == "probe_loss":
                bad = np.flatnonzero(np.isinf(values))
                first = int(bad[0]) if len(bad) else None
            else:
                first = first_nonfinite(values)
            if first is not None:
                sightings.append((int(steps[first]), quantity, None))
    outputs = trace.outputs
    if outputs is not None:
        try:
            outputs = np.asarray(outputs, dtype=float)
        except (TypeError, ValueError):
            outputs = None
    if outputs is not None and outputs.ndim >= 1 and len(outputs):
        seen_any_data = True
        flat = outputs.reshape(len(outputs), -1)
        # An all-NaN row is a step whose outputs were not measured, not a NaN output.
        measured = ~np.isnan(flat).all(axis=1) if flat.shape[1] else np.zeros(len(flat), dtype=bool)
        bad = np.flatnonzero(measured & ~np.isfinite(flat).all(axis=1)) if flat.shape[1] else []
        steps = np.asarray(trace.steps)
        if len(bad) and bad[0] < len(steps):
            sightings.append((int(steps[bad[0]]), "probe-batch outputs", None))
    if not seen_any_data:
        raise Skip("no loss, outputs or non-finite counts recorded")
    if not sightings:
        return []
    sightings.sort(key=lambda s: s[0])
    step, what, location = sightings[0]
    others = sorted({w for _, w, _ in sightings[1:] if w != what})
    also = f"; later also in {', '.join(others[:4])}" if others else ""
    layer = what.split(".")[0] if what.split(".")[0] in layer_names(trace) else None
    return [
        ctx.finding(
            f"first NaN/Inf in {what} at step {step}{also}",
            layer=layer,
            step=step if step >= 0 else None,
            location=location,
            evidence={"first_tensor": what, "first_step": step, "also_in": others},
        )
    ]
