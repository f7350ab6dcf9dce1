"""ND2xx: the gradients — their size per layer, and whether they are right at all.

Sizes come from the per-layer ``grad_norm``/``grad_abs_mean`` series; correctness
from the ``gradcheck`` events, where an observer compared the gradients the code
used with central differences of the network's own loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..types import Severity
from . import RuleContext, Skip, rule
from ._common import (
    activation_of,
    after_warmup,
    as_float,
    as_name,
    event_location,
    event_step,
    events,
    finite_series,
    fmt,
    has_fitted,
    layer_names,
    loss_curve,
    payload,
    quiet,
    run_fits,
)


_KINKED = ("relu", "leaky_relu")  # activations with a kink at z = 0


def _layer_medians(ctx: RuleContext, quantity: str) -> dict[str, float]:
    """Median of a per-layer series after warm-up, for layers that recorded it."""
    medians = {}
    for layer in layer_names(ctx.trace):
        steps, values = finite_series(ctx.trace, quantity, layer)
        if len(values):
            _, values = after_warmup(ctx.trace, ctx.thresholds, steps, values)
            medians[layer] = float(np.median(values))
    return medians


def _still_learning(ctx: RuleContext) -> bool:
    """True unless the loss shows the network has fitted (tiny gradients are then expected)."""
    try:
        _, values, _ = loss_curve(ctx.trace)
    except Skip:
        return True
    return not has_fitted(values, ctx.thresholds)


@rule("ND201", "vanishing-gradient", Severity.ERROR, symptom=True)
@quiet
def vanishing_gradient(ctx: RuleContext):
    """Gradients reaching some layers are too small to move them.

    What it does
        After warm-up, and only while the loss has not yet come down (a fitted
        network has small gradients for a good reason), takes each layer's median
        gradient. A layer whose mean |gradient| is below ``vanishing_abs_mean`` is
        an error; a first layer whose gradient norm is at most
        ``vanishing_ratio`` of the last layer's and at most ``vanishing_first_norm``
        is a warning. The layers are listed from the smallest gradient up, in one finding.

    Why is this bad?
        Each layer multiplies the backward signal by its weights and activation
        derivative. Saturated sigmoids (derivative below 0.25, near 0 when
        saturated) or tiny weights shrink it layer after layer, so the first layers
        stop learning while the last ones still do.

    Example
        A 6-layer sigmoid network: layer1's gradient norm is 3e-9 while layer6's is
        0.02.

    Use instead
        Use tanh or ReLU in hidden layers, initialise with Glorot (tanh/sigmoid) or
        He (ReLU) scales, scale the inputs, or make the network shallower.
    """
    th = ctx.thresholds
    means = _layer_medians(ctx, "grad_abs_mean")
    norms = _layer_medians(ctx, "grad_norm")
    if not means and not norms:
        raise Skip("no per-layer gradient series recorded")
    if not _still_learning(ctx):
        return []
    findings = []
    tiny = sorted((value, layer) for layer, value in means.items() if value < th.vanishing_abs_mean)
    if tiny:
        ranked = ", ".join(f"{layer} {fmt(value)}" for value, layer in tiny)
        findings.append(
            ctx.finding(
                f"gradients vanish in {len(tiny)} of {len(means)} layers: median mean |gradient| after "
                f"warm-up below {fmt(th.vanishing_abs_mean)} while the loss is still high; smallest first: "
                f"{ranked}",
                layer=tiny[0][1],
                evidence={
                    "vanishing_layers": {layer: value for value, layer in tiny},
                    "all_layers_grad_abs_mean": means,
                    "vanishing_abs_mean": th.vanishing_abs_mean,
                    "plateau_fit_loss": th.plateau_fit_loss,
                    "warmup_frac": th.warmup_frac,
                },
            )
        )
    ordered = [layer for layer in layer_names(ctx.trace) if layer in norms]
    if not findings and len(ordered) >= 2:
        first, last = norms[ordered[0]], norms[ordered[-1]]
        ratio = first / last if last > 0 else math.nan
        if ratio <= th.vanishing_ratio and first <= th.vanishing_first_norm:
            findings.append(
                ctx.finding(
                    f"gradient norm shrinks from {fmt(last)} at {ordered[-1]} to {fmt(first)} at "
                    f"{ordered[0]} ({fmt(ratio)}x) on its way back through the network",
                    severity=Severity.WARNING,
                    layer=ordered[0],
                    evidence={
                        "grad_norms": {layer: norms[layer] for layer in ordered},
                        "first_last_ratio": ratio,
                        "vanishing_ratio": th.vanishing_ratio,
                        "vanishing_first_norm": th.vanishing_first_norm,
                        "plateau_fit_loss": th.plateau_fit_loss,
                    },
                )
            )
    return findings


@rule("ND202", "exploding-gradient", Severity.ERROR, symptom=True)
@quiet
def exploding_gradient(ctx: RuleContext):
    """Gradients grow from layer to layer, or from step to step, without bound.

    What it does
        Across layers: after warm-up, a first layer whose median gradient norm is at
        least ``exploding_ratio`` times the last layer's (a warning). Over time: a
        gradient norm (whole model, else the largest layer) that ends at least
        ``exploding_ratio`` times its first value while the loss did not improve
        (an error); the growth window is listed in the evidence.

    Why is this bad?
        Gradients that grow backwards through the layers make the first layers take
        huge, erratic steps; gradients that grow over time feed on themselves until
        the weights overflow to Inf/NaN.

    Example
        A 6-layer ReLU network initialised with N(0, 1) weights and 64 units per
        layer: layer1's gradient is 4,000 times layer6's.

    Use instead
        Initialise with He/Glorot scales, lower the learning rate, scale the inputs,
        and clip the gradient norm if the problem persists.
    """
    th = ctx.thresholds
    norms = _layer_medians(ctx, "grad_norm")
    ordered = [layer for layer in layer_names(ctx.trace) if layer in norms]
    steps, series = finite_series(ctx.trace, "grad_norm")
    if len(series) < 2 and ordered:
        # No whole-model norm: follow the layer with the largest gradients.
        biggest = max(ordered, key=lambda layer: norms[layer])
        steps, series = finite_series(ctx.trace, "grad_norm", biggest)
    if len(ordered) < 2 and len(series) < 2:
        raise Skip("no gradient-norm series recorded")
    findings = []
    if len(series) >= 2 and series[0] > 0:
        growth = float(np.median(series[-th.exploding_window:]) / series[0])
        try:
            _, loss, _ = loss_curve(ctx.trace)
            improved = loss[-1] < loss[0]
        except Skip:
            improved = False
        if growth >= th.exploding_ratio and not improved:
            peak = int(np.argmax(series))
            findings.append(
                ctx.finding(
                    f"gradient norm grows from {fmt(series[0])} at step {int(steps[0])} to "
                    f"{fmt(np.median(series[-th.exploding_window:]))} at the end ({fmt(growth)}x; peak "
                    f"{fmt(series[peak])} at step {int(steps[peak])}) while the loss does not improve",
                    step=int(steps[0]),
                    evidence={
                        "first_grad_norm": float(series[0]),
                        "final_grad_norm": float(np.median(series[-th.exploding_window:])),
                        "growth": growth,
                        "exploding_ratio": th.exploding_ratio,
                        "exploding_window": th.exploding_window,
                    },
                )
            )
    if len(ordered) >= 2:
        first, last = norms[ordered[0]], norms[ordered[-1]]
        ratio = first / last if last > 0 else math.nan
        if ratio >= th.exploding_ratio:
            ranked = sorted(ordered, key=lambda layer: -norms[layer])
            findings.append(
                ctx.finding(
                    f"gradient norm grows from {fmt(last)} at {ordered[-1]} to {fmt(first)} at "
                    f"{ordered[0]} ({fmt(ratio)}x) on its way back; largest first: "
                    + ", ".join(f"{layer} {fmt(norms[layer])}" for layer in ranked),
                    severity=Severity.WARNING,
                    layer=ordered[0],
                    evidence={
                        "grad_norms": {layer: norms[layer] for layer in ordered},
                        "first_last_ratio": ratio,
                        "exploding_ratio": th.exploding_ratio,
                    },
                )
            )
    return findings


# --- gradient checks ----------------------------------------------------------------


@dataclass(frozen=True)
class _Check:
    step: int | None
    rel_err: float
    cosine: float
    scale: float


def _bent_updates(found) -> tuple[int, int]:
    """Of the checks read from updates: how many showed them bent, as an adaptive or momentum
    optimizer bends them (not checked there), and how many there are."""
    from_updates = [payload(e) for e in found if payload(e).get("claimed") == "updates"]
    return sum(bool(p.get("not_checked")) for p in from_updates), len(from_updates)


def _gradchecks(ctx: RuleContext, sized: bool = False):
    """Per (layer, param): its checks in step order; the loss the checks used; and where
    in the user's code the gradients come from, when the observer knew.

    `sized`: only checks whose loss is known, where the gradients' size means something
    (another loss explaining their direction as well would give them another size)."""
    found = events(ctx.trace, "gradcheck")
    if not found:
        raise Skip("no gradient check was run")
    # A run keeps its optimizer, so its checks read from updates are weighed together: when
    # at least half show the updates bent (an adaptive or momentum optimizer's), none is a
    # verdict. On a net of a few entries the others can be chance: Adam's first update,
    # -lr * sign(g), lines up with g where its entries are equal in size, and a later one
    # keeps the signs only by chance.
    bent, from_updates = _bent_updates(found)
    if bent and 2 * bent >= from_updates:
        found = [e for e in found if payload(e).get("claimed") != "updates"]
        if not found:
            raise Skip("the updates are an adaptive or momentum optimizer's at most checks: "
                       "gradients cannot be checked from them")
    if sized:
        if bent:   # (the updates' size is the optimizer's, when it bends them at all)
            found = [e for e in found if payload(e).get("claimed") != "updates"]
            if not found:
                raise Skip("the updates are bent by an adaptive or momentum optimizer at some checks: "
                           "their size says nothing of the gradients'")
        told = [e for e in found if not payload(e).get("loss_ambiguous")]
        if not told:
            kinds = " or ".join(str(k).upper() for k in payload(found[0]).get("loss_ambiguous") or ())
            raise Skip(f"the gradients fit {kinds} equally well (one sample, one output unit), "
                       "and their size depends on which: not judged")
        found = told
    found.sort(key=lambda e: (event_step(e) is None, event_step(e) or 0))
    per_param: dict[tuple[str, str], list[_Check]] = {}
    loss_kind = ""
    location = None
    for event in found:
        location = location or event_location(event)
        data = payload(event)
        loss_kind = as_name(data.get("loss_kind")) or loss_kind
        params = data.get("params")
        if not isinstance(params, (list, tuple)):
            continue
        for item in params:
            if not isinstance(item, dict):
                continue
            layer = as_name(item.get("layer")) or "?"
            param = as_name(item.get("param")) or "weight"
            check = _Check(
                event_step(event),
                as_float(item.get("rel_err")),
                as_float(item.get("cosine")),
                as_float(item.get("scale")),
            )
            if math.isfinite(check.rel_err):
                per_param.setdefault((layer, param), []).append(check)
    if not per_param:
        raise Skip("the gradient checks hold no finite results")
    return per_param, loss_kind, location


def _consistent(checks: list[_Check], test) -> bool:
    """Fails at the first check (taken before training bends anything) and in most checks.

    The first check is the most trustworthy: later ones can meet tiny gradients of a
    converged or saturated network, where finite differences lose their precision.
    """
    hits = [bool(test(c)) for c in checks]
    return hits[0] and sum(hits) * 2 >= len(hits)


def _scale_only(c: _Check, th) -> bool:
    return c.cosine >= th.gradscale_cosine and abs(c.scale - 1) > th.gradscale_factor


def _backward_order(ctx: RuleContext, keys) -> list[tuple[str, str]]:
    """Parameters from the output layer back to the input, the order backprop computes them."""
    names = layer_names(ctx.trace)
    rank = {name: i for i, name in enumerate(names)}
    return sorted(keys, key=lambda k: (-rank.get(k[0], -1), k[1] != "weight"))


def _kinked_from(ctx: RuleContext) -> int | None:
    """Index of the deepest ReLU-like layer: its parameters and all below meet its kink."""
    names = layer_names(ctx.trace)
    kinked = [i for i, name in enumerate(names) if activation_of(ctx.trace, name) in _KINKED]
    return max(kinked) if kinked else None


@rule("ND203", "gradient-mismatch", Severity.ERROR)
@quiet
def gradient_mismatch(ctx: RuleContext):
    """The gradients used for training disagree with the network's own loss.

    What it does
        Reads the gradient checks: central finite differences of the loss computed
        by the network's own forward pass, against the gradients its backward pass
        produced. A parameter whose relative error exceeds ``gradcheck_error`` at the
        first check and at most checks is an error (above ``gradcheck_warn``: a
        warning). Differences that are only a constant factor are left to ND204.
        The finding names the layer nearest the output where they disagree: the
        backward pass goes wrong there and carries the error to every layer below.
        At a ReLU kink (z exactly 0, e.g. a zero input with a zero bias) the loss has
        no derivative and finite differences average both sides, so a bias that
        disagrees while its layer's weights agree, at or below a ReLU-like layer,
        is reported as info only. Checks read from updates (the code keeps no
        gradient array) are weighed together, as a run keeps its optimizer: when at
        least half show the updates bent, as an adaptive or momentum optimizer bends
        them, none is a verdict; when fewer do, a mismatch on a run that fits its
        data is a warning.

    Why is this bad?
        With wrong gradients, gradient descent walks in a direction that does not
        lower the loss. Training may stall, go sideways or look fine on easy data
        and fail on the real problem.

    Example
        A hidden delta computed from the output error directly
        (``delta1 = (out - y) @ W2.T``) without the activation derivative: layer1's
        gradient has a relative error of 0.7 while layer2's is 1e-9.

    Use instead
        Derive the backward pass layer by layer: ``delta_L = dL/dz_L``;
        ``delta_l = (delta_{l+1} @ W_{l+1}.T) * f'(z_l)``; ``dW_l = a_{l-1}.T @ delta_l / n``.
        Check it against finite differences on a tiny network before training.
    """
    th = ctx.thresholds
    per_param, loss_kind, location = _gradchecks(ctx)
    rank = {name: i for i, name in enumerate(layer_names(ctx.trace))}
    kinked_from = _kinked_from(ctx)

    def off(limit):
        return lambda c: c.rel_err > limit and not _scale_only(c, th)

    def kink_explains(key) -> bool:
        layer, param = key
        if param != "bias" or kinked_from is None or rank.get(layer, -1) > kinked_from:
            return False
        weights = per_param.get((layer, "weight"))
        return bool(weights) and not _consistent(weights, off(th.gradcheck_warn))

    wrong, doubtful, kinks, right = [], [], [], []
    for key in _backward_order(ctx, per_param):
        checks = per_param[key]
        if _consistent(checks, off(th.gradcheck_warn)):
            if kink_explains(key):
                kinks.append(key)
            elif _consistent(checks, off(th.gradcheck_error)):
                wrong.append(key)
            else:
                doubtful.append(key)
        elif checks[0].rel_err <= th.gradcheck_warn:
            right.append(key)
    flagged = wrong or doubtful or kinks
    if not flagged:
        return []
    severity = Severity.ERROR if wrong else Severity.WARNING if doubtful else Severity.INFO
    # Read from updates while another check of the run showed them bent: the optimizer may be
    # an adaptive one (on a net of a few entries, Adam's first update, -lr * sign(g), can line
    # up with g by chance, and later ones keep its signs only by chance), and updates then
    # prove nothing about the gradients. On a run that fits its data that is no error.
    in_doubt = (severity == Severity.ERROR and _bent_updates(events(ctx.trace, "gradcheck"))[0] > 0
                and run_fits(ctx.trace, th).fits is True)
    if in_doubt:
        severity = Severity.WARNING
    culprit = flagged[0]
    first = per_param[culprit][0]
    name = f"{culprit[0]}.{culprit[1]}"
    agree = ", ".join(f"{layer}.{param}" for layer, param in right[:4])
    listed = ", ".join(f"{layer}.{param} {fmt(per_param[(layer, param)][0].rel_err, 2)}"
                       for layer, param in flagged)
    message = (
        f"backprop's gradient of {name} disagrees with finite differences of the network's own loss: "
        f"relative error {fmt(first.rel_err, 2)} (cosine {fmt(first.cosine)}) at step {first.step}"
        + (f"; disagreeing: {listed}" if len(flagged) > 1 else "")
        + (f"; these agree: {agree}" if agree else "")
    )
    if severity == Severity.INFO:
        message += (". The layer's weights agree and it sits at a ReLU kink, where finite differences "
                    "are unreliable: most likely a unit exactly at z = 0, not a bug")
    if in_doubt:
        message += (". Read from the updates, which another check showed bent as an adaptive or momentum "
                    "optimizer bends them, on a run that fits its data: a warning, not an error")
    return [
        ctx.finding(
            message,
            severity=severity,
            layer=culprit[0],
            step=first.step,
            location=location,
            evidence={
                "param": name,
                "rel_err": first.rel_err,
                "cosine": first.cosine,
                "scale": first.scale,
                "loss_kind": loss_kind,
                "wrong": [f"{layer}.{param}" for layer, param in wrong],
                "doubtful": [f"{layer}.{param}" for layer, param in doubtful],
                "at_relu_kink": [f"{layer}.{param}" for layer, param in kinks],
                "rel_err_by_param": {f"{k[0]}.{k[1]}": [c.rel_err for c in v] for k, v in per_param.items()},
                "gradcheck_error": th.gradcheck_error,
                "gradcheck_warn": th.gradcheck_warn,
                "optimizer_in_doubt": in_doubt,
            },
        )
    ]


@rule("ND204", "gradient-scale", Severity.WARNING)
@quiet
def gradient_scale(ctx: RuleContext):
    """The gradients point the right way but are off by a constant factor.

    What it does
        Reads the gradient checks: where the computed gradient has cosine at least
        ``gradscale_cosine`` with the finite-difference one but a least-squares
        scale factor more than ``gradscale_factor`` away from 1 (at the first check
        and most checks), the gradient is right up to a constant. When the factor is
        close to the probe-batch size, the gradient was summed over samples where
        the loss averages them. A check where another loss explains the gradient's
        direction as well (one sample through one sigmoid unit: MSE and binary
        cross-entropy differ there by a factor alone) says nothing of its size and
        is left out.

    Why is this bad?
        A constant factor silently multiplies the learning rate: by the batch size
        when the gradient is summed instead of averaged, so the same learning rate
        behaves differently for every batch size, and a tuned rate stops working
        when the data grows.

    Example
        ``dW = X.T @ delta`` with a loss that is the *mean* over 64 samples: the
        gradient is 64 times too large.

    Use instead
        Make the gradient match the loss: divide by the number of samples when the
        loss is a mean (``dW = X.T @ delta / len(X)``), or sum the loss too.
    """
    th = ctx.thresholds
    per_param, loss_kind, location = _gradchecks(ctx, sized=True)
    scaled = [key for key in _backward_order(ctx, per_param)
              if _consistent(per_param[key], lambda c: _scale_only(c, th))]
    if not scaled:
        return []
    scales = {f"{k[0]}.{k[1]}": per_param[k][0].scale for k in scaled}
    typical = float(np.median(list(scales.values())))
    # The batch the gradient was checked on (one sample for per-sample SGD), not the probe batch:
    # only its size can explain a factor.
    batch = next((int(n) for n in (payload(e).get("n_samples") for e in events(ctx.trace, "gradcheck"))
                  if isinstance(n, (int, float)) and n >= 1), None)
    hint = ""
    if batch and batch > 1 and abs(typical / batch - 1) <= 0.1:
        hint = f", about the {batch} samples of the checked batch: summed instead of averaged"
    elif batch and batch > 1 and abs(typical * batch - 1) <= 0.1:
        hint = f", about 1/{batch}: divided by the batch size twice"
    first_key = scaled[0]
    return [
        ctx.finding(
            f"gradients point the right way (cosine >= {fmt(th.gradscale_cosine, 4)}) but are "
            f"{fmt(typical)}x the true gradient of the {loss_kind or 'loss'}{hint} "
            f"({', '.join(f'{name} {fmt(s)}x' for name, s in scales.items())})",
            layer=first_key[0],
            step=per_param[first_key][0].step,
            location=location,
            evidence={
                "scale_by_param": scales,
                "typical_scale": typical,
                "batch_checked": batch,
                "gradscale_cosine": th.gradscale_cosine,
                "gradscale_factor": th.gradscale_factor,
            },
        )
    ]
