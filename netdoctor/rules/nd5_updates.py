"""ND5xx: the updates — how big each step is relative to the weights, and which way it goes.

Reads the per-layer ``update_ratio`` (||change|| / ||weights before||) and
``update_cos`` (cosine between the change and minus the gradient) series.
"""

from __future__ import annotations

import numpy as np

from ..types import Severity
from . import RuleContext, Skip, rule
from ._common import (
    finite_series,
    fmt,
    layer_names,
    learning_steps,
    measured_enough,
    quiet,
    run_fits,
    too_few_measured,
)


def _ratios(ctx: RuleContext) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per layer: (steps, update ratios) with NaN/Inf and exactly-zero changes dropped.

    Steps whose change is exactly zero are left to ND404 (frozen parameters).
    """
    out = {}
    for layer in layer_names(ctx.trace):
        steps, ratios = finite_series(ctx.trace, "update_ratio", layer)
        keep = ratios > 0
        if keep.any():
            out[layer] = (steps[keep], ratios[keep])
    if not out:
        raise Skip("no non-zero update/weight ratios recorded")
    return out


def _bursts(ctx: RuleContext, ratios: np.ndarray) -> int:
    """How many steps changed the weights by at least their own size."""
    return int(np.sum(ratios >= ctx.thresholds.update_ratio_burst))


@rule("ND501", "update-ratio-high", Severity.ERROR, symptom=True)
@quiet
def update_ratio_high(ctx: RuleContext):
    """Each update changes the weights by a large fraction of their size: learning rate too high.

    What it does
        Takes each layer's median ratio ||weight change|| / ||weights|| over the run.
        Above the upper end of ``update_ratio_warn`` is a warning, above that of
        ``update_ratio_error`` an error. Also an error: at least
        ``update_burst_steps`` steps that changed a layer's weights by
        ``update_ratio_burst`` times their size or more — after such steps a
        network often saturates and its later steps shrink to nothing, which would
        hide the cause from the median. The median is taken only over at least
        ``MIN_MEASURED_STEPS`` (9) measured steps, or every step of a shorter run: a
        framework run measures its update ratios every few steps, and a median of
        three of them says little; the rule then reports that it was skipped.

    Why is this bad?
        A healthy step changes the weights by about a thousandth of their size. Steps
        of 10% or more throw the weights around instead of following the slope: the
        loss jumps, units saturate or die, and numbers overflow.

    Example
        ``lr = 500`` on a small XOR network: the first steps change layer1's weights
        by 30 times their size, after which every unit is saturated.

    Use instead
        Lower the learning rate until the ratio is near 1e-3 (try 10x smaller steps),
        or use an adaptive optimiser with a small step size (Adam with ``lr=1e-3``).
    """
    th = ctx.thresholds
    findings, sparse = [], {}
    for layer, (steps, ratios) in _ratios(ctx).items():
        median = float(np.median(ratios))
        bursts = _bursts(ctx, ratios)
        # Bursts are counted events: two seen are two that happened, however sparse the
        # measurements. A median needs enough measured steps to stand for the run.
        if not measured_enough(len(ratios), ctx.trace) and bursts < th.update_burst_steps:
            sparse[layer] = len(ratios)
            continue
        if median > th.update_ratio_error[1]:
            severity, what = Severity.ERROR, f"above the {fmt(th.update_ratio_error[1])} bound"
        elif bursts >= th.update_burst_steps:
            severity, what = Severity.ERROR, (
                f"and {bursts} steps changed them by {fmt(th.update_ratio_burst)}x their size or more "
                f"(largest {fmt(ratios.max())}x)")
        elif median > th.update_ratio_warn[1]:
            severity, what = Severity.WARNING, f"above the {fmt(th.update_ratio_warn[1])} bound"
        else:
            continue
        first_big = steps[np.argmax(ratios > th.update_ratio_warn[1])]
        findings.append(
            ctx.finding(
                f"{layer}: each step changes the weights by {fmt(median)} of their size (median over "
                f"{len(ratios)} steps), {what}; about 1e-3 is typical",
                severity=severity,
                layer=layer,
                step=int(first_big),
                evidence={
                    "update_ratio_median": median,
                    "update_ratio_max": float(ratios.max()),
                    "burst_steps": bursts,
                    "steps_judged": int(len(ratios)),
                    "update_ratio_warn": th.update_ratio_warn,
                    "update_ratio_error": th.update_ratio_error,
                    "update_ratio_burst": th.update_ratio_burst,
                    "update_burst_steps": th.update_burst_steps,
                },
            )
        )
    if sparse and not findings and len(sparse) == len(_ratios(ctx)):
        raise Skip(too_few_measured("the update/weight ratio", max(sparse.values()), ctx.trace))
    return findings


@rule("ND502", "update-ratio-low", Severity.ERROR, symptom=True)
@quiet
def update_ratio_low(ctx: RuleContext):
    """Each update barely changes the weights: learning rate too low.

    What it does
        Takes each layer's median ratio ||weight change|| / ||weights|| over the steps
        before the loss came down to its fitted level (a fitted network's steps shrink
        by design). When even the layer with the largest steps stays below the lower
        end of ``update_ratio_warn``, a warning; below that of ``update_ratio_error``,
        an error if, in addition, that many steps of that size could not move the
        weights by ``update_travel_error`` of their size over the whole learning stretch
        (median ratio x steps taken): a run of many small steps (per-sample SGD) can
        still get somewhere, so its small steps are a warning. Between the two bounds,
        the same travel test makes it an error when the run learned nothing (its loss
        ended above ``fit_stuck_ratio`` of its start): then the small steps are why. (One slow layer among
        fast ones points at its gradient — ND201 —
        not at the learning rate, which all layers share; and a run with steps
        several times the size of the weights, ``update_ratio_burst``, had a learning
        rate too high, not too low, whatever its later steps look like.)

    Why is this bad?
        With steps of a millionth of the weights' size, the network would need
        millions of epochs to get anywhere: the loss looks flat and the outputs stay
        where the initialisation put them.

    Example
        ``lr = 5e-5`` for plain gradient descent on XOR: the weights change by 1e-6 of
        their size per step and the loss is still 0.693 after 2,000 epochs.

    Use instead
        Raise the learning rate (by 10x steps while the loss keeps decreasing
        smoothly), or use Adam, whose step size does not depend on the gradient's scale.
    """
    th = ctx.thresholds
    ratios = _ratios(ctx)
    if any(_bursts(ctx, r) for _, r in ratios.values()):
        return []
    window = learning_steps(ctx.trace, th)
    medians = {}
    for layer, (steps, values) in ratios.items():
        keep = np.isin(steps, window)
        if keep.any():
            medians[layer] = float(np.median(values[keep]))
    if not medians:
        raise Skip("no update ratios recorded while the loss was still high")
    fastest = max(medians, key=medians.get)
    measured = int(np.isin(ratios[fastest][0], window).sum())
    if not measured_enough(measured, ctx.trace):
        raise Skip(too_few_measured("the update/weight ratio", measured, ctx.trace))
    top = medians[fastest]
    # Steps taken while learning (step numbers, not recorded rows: the trace is thinned).
    taken = int(window[-1] - window[0] + 1) if len(window) else 0
    travel = top * taken
    # Steps this small are an error when, all together, they could not have moved the weights
    # far: below the error bound on any run, below the warning bound when the run learned
    # nothing (its loss barely moved), since then they are why it did not learn.
    stuck = run_fits(ctx.trace, th).stuck(th)
    if top < th.update_ratio_error[0]:
        bound = th.update_ratio_error[0]
        severity = Severity.ERROR if travel < th.update_travel_error else Severity.WARNING
    elif top < th.update_ratio_warn[0]:
        bound = th.update_ratio_warn[0]
        severity = Severity.ERROR if stuck and travel < th.update_travel_error else Severity.WARNING
    else:
        return []
    listed = ", ".join(f"{layer} {fmt(value)}" for layer, value in medians.items())
    many = "" if severity == Severity.ERROR or top >= th.update_ratio_error[0] else (
        f"; a warning: its {taken} steps could still move the weights by up to {fmt(travel, 2)}x "
        f"their size")
    return [
        ctx.finding(
            f"every layer's steps change its weights by less than {fmt(bound)} of their size while the "
            f"loss is still high (median ratios: {listed}); about 1e-3 is typical{many}",
            severity=severity,
            evidence={
                "update_ratio_medians": medians,
                "largest_median": top,
                "steps_judged": int(len(window)),
                "steps_taken": taken,
                "update_travel": travel,
                "update_travel_error": th.update_travel_error,
                "update_ratio_warn": th.update_ratio_warn,
                "update_ratio_error": th.update_ratio_error,
                "plateau_fit_loss": th.plateau_fit_loss,
            },
        )
    ]


@rule("ND503", "update-direction", Severity.ERROR, symptom=True)
@quiet
def update_direction(ctx: RuleContext):
    """Parameters move along the gradient, uphill, instead of against it.

    What it does
        Takes each layer's median cosine between the change made to its weights and
        minus the gradient (1 for plain gradient descent, positive for momentum or
        Adam) over the steps taken before the loss came down to its fitted level
        (afterwards the gradient is ~0 and momentum coasts). A median at or below
        ``update_cos_min`` means the updates go uphill.

    Why is this bad?
        Gradient descent lowers the loss by stepping against the gradient. A step
        along it raises the loss: the network learns the opposite of what it should,
        and the loss climbs or outputs run into saturation.

    Example
        ``W += lr * dW`` where ``dW`` is the gradient of the loss (or a gradient of
        ``y - out`` instead of ``out - y`` followed by ``W -= lr * dW``).

    Use instead
        ``W -= lr * dW`` with ``dW`` the gradient of the loss you minimise; check the
        sign of the output error (``out - y`` for the usual losses).
    """
    th = ctx.thresholds
    judged = False
    findings = []
    # Once the loss has fitted, the gradient is ~0 and a momentum or Adam step keeps
    # coasting in whatever direction: only the steps taken while learning say which way
    # the updates point.
    window = learning_steps(ctx.trace, th)
    for layer in layer_names(ctx.trace):
        steps, cosines = finite_series(ctx.trace, "update_cos", layer)
        keep = np.isin(steps, window)
        if keep.any():
            steps, cosines = steps[keep], cosines[keep]
        if not len(cosines):
            continue
        judged = True
        median = float(np.median(cosines))
        if median <= th.update_cos_min:
            findings.append(
                ctx.finding(
                    f"{layer} moves along +gradient: median cosine between its weight change and -gradient "
                    f"is {fmt(median)} over {len(cosines)} steps (should be > {fmt(th.update_cos_min)}); "
                    f"the update sign is flipped",
                    layer=layer,
                    step=int(steps[0]),
                    evidence={
                        "update_cos_median": median,
                        "update_cos_min_seen": float(cosines.min()),
                        "steps_judged": int(len(cosines)),
                        "update_cos_min": th.update_cos_min,
                    },
                )
            )
    if not judged:
        raise Skip("no update/gradient cosines recorded")
    return findings
