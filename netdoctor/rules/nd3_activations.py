"""ND3xx: the activation functions and what the units do with them.

ND301/ND302 read the per-layer ``sat_frac``/``dead_frac`` series. ND303/ND304
read the ``function`` events: an observer evaluated the function the code actually
used (for a layer's activation, or for the derivative backprop multiplies by) and
matched it against a catalogue of functions and known mistakes.
"""

from __future__ import annotations

import math

import numpy as np

from ..types import Severity
from . import RuleContext, Skip, rule
from ._common import (
    after_warmup,
    as_float,
    as_name,
    as_pair,
    event_layer,
    event_location,
    events,
    finite_series,
    fmt,
    hidden_layers,
    layer_location,
    payload,
    quiet,
)


def _hidden_medians(ctx: RuleContext, quantity: str) -> dict[str, tuple[float, float, int]]:
    """Per hidden layer: (median after warm-up, minimum after warm-up, first judged step)."""
    out = {}
    for layer in hidden_layers(ctx.trace):
        steps, values = finite_series(ctx.trace, quantity, layer)
        if len(values):
            steps, values = after_warmup(ctx.trace, ctx.thresholds, steps, values)
            out[layer] = (float(np.median(values)), float(values.min()), int(steps[0]))
    return out


@rule("ND301", "saturated-units", Severity.WARNING, symptom=True)
@quiet
def saturated_units(ctx: RuleContext):
    """Most sigmoid/tanh units of a hidden layer sit in their flat tails.

    What it does
        For each hidden sigmoid/tanh layer, takes the fraction of pre-activations
        with |z| at least ``saturation_z`` and flags a layer whose median fraction
        after warm-up exceeds ``saturated_frac``. (The output layer is not judged:
        a confident classifier's output saturates by design.)

    Why is this bad?
        In the tails the derivative of sigmoid/tanh is almost 0, so almost no
        gradient passes through: the layer and everything before it stop learning.
        Saturation comes from large inputs, large initial weights or a learning rate
        that threw the weights far out.

    Example
        Raw pixel values 0..255 fed to a sigmoid layer: 97% of its pre-activations
        have |z| > 5 from the first step.

    Use instead
        Scale the inputs to unit range, initialise with Glorot scales
        (``std = sqrt(2 / (fan_in + fan_out))``) and lower the learning rate if the
        saturation appears during training.
    """
    th = ctx.thresholds
    medians = _hidden_medians(ctx, "sat_frac")
    if not medians:
        raise Skip("no saturation fractions recorded for hidden layers")
    findings = []
    for layer, (median, lowest, first) in medians.items():
        if median > th.saturated_frac:
            findings.append(
                ctx.finding(
                    f"{layer}: {fmt(median * 100, 3)}% of pre-activations have |z| >= {fmt(th.saturation_z)} "
                    f"(median after step {first}; lowest {fmt(lowest * 100, 3)}%)",
                    layer=layer,
                    step=first,
                    evidence={
                        "sat_frac_median": median,
                        "sat_frac_min": lowest,
                        "saturated_frac": th.saturated_frac,
                        "saturation_z": th.saturation_z,
                    },
                )
            )
    return findings


@rule("ND302", "dead-units", Severity.WARNING, symptom=True)
@quiet
def dead_units(ctx: RuleContext):
    """Most ReLU units of a hidden layer never switch on.

    What it does
        For each hidden ReLU-like layer, takes the fraction of units active for fewer
        than ``dead_active_frac`` of the batch, and flags a layer whose median
        fraction after warm-up exceeds ``dead_layer_frac``. A layer in which every
        unit is dead at every judged step is an error: no gradient passes it at all.

    Why is this bad?
        A ReLU unit whose pre-activation is negative for every input outputs 0 and
        has gradient 0: nothing can revive it. A layer of dead units is a layer that
        no longer exists, and when all are dead the network before it is cut off.

    Example
        A learning rate so high that one step pushes the biases far negative: 90% of
        layer1's units output 0 for every input from step 3 on.

    Use instead
        Lower the learning rate, use He initialisation with zero (or slightly
        positive) biases, scale the inputs, or use leaky ReLU.
    """
    th = ctx.thresholds
    medians = _hidden_medians(ctx, "dead_frac")
    if not medians:
        raise Skip("no dead-unit fractions recorded for hidden layers")
    findings = []
    for layer, (median, lowest, first) in medians.items():
        if median > th.dead_layer_frac:
            all_dead = lowest >= 1.0
            findings.append(
                ctx.finding(
                    f"{layer}: {'all' if all_dead else fmt(median * 100, 3) + '%'} of its units are dead "
                    f"(active for < {fmt(th.dead_active_frac * 100)}% of the batch; "
                    f"median after step {first})",
                    severity=Severity.ERROR if all_dead else Severity.WARNING,
                    layer=layer,
                    step=first,
                    evidence={
                        "dead_frac_median": median,
                        "dead_frac_min": lowest,
                        "dead_layer_frac": th.dead_layer_frac,
                        "dead_active_frac": th.dead_active_frac,
                    },
                )
            )
    return findings


def _function_findings(ctx: RuleContext, roles: tuple[str, ...], what: str):
    """Shared judgement of ``function`` events for ND303 (activations) and ND304 (derivatives)."""
    th = ctx.thresholds
    found = [e for e in events(ctx.trace, "function") if payload(e).get("role") in roles]
    if not found:
        raise Skip(f"no {what} was identified")
    findings: dict = {}
    for event in found:
        data = payload(event)
        layer = event_layer(event)
        declared = as_name(data.get("declared"))
        identified = as_name(data.get("identified"))
        mistake = data.get("mistake") is True
        declared_err = as_float(data.get("declared_err"))
        max_err = as_float(data.get("max_err"))
        f0 = as_float(data.get("f0"))
        value_range = as_pair(data.get("range"))
        description = as_name(data.get("description")) or ""
        fix = as_name(data.get("fix"))
        off_declared = (declared is not None and math.isfinite(declared_err)
                        and declared_err > th.activation_match_tol)
        if mistake:
            severity = Severity.ERROR
        elif off_declared and identified is not None and identified != declared:
            severity = Severity.ERROR   # a different known function than the one the code claims
        elif off_declared:
            severity = Severity.WARNING  # unlike the declared one, and like nothing we know
        else:
            continue
        shape = f"maps 0 -> {fmt(f0)}"
        if value_range is not None:
            shape += f" and ranges over ({fmt(value_range[0])}, {fmt(value_range[1])})"
        if declared:
            of = "" if what == "activation" else "'s derivative"
            shape += f" (declared: {declared}{of}"
            if math.isfinite(declared_err):
                shape += f", off by up to {fmt(declared_err, 2)}"
            shape += ")"
        if identified is not None:
            text = description or identified
            like = "it " + (text if text.startswith("behaves like") else f"behaves like {text}")
        else:
            like = "it matches no function netdoctor knows" + (
                f" (closest: max error {fmt(max_err, 2)})" if math.isfinite(max_err) else "")
        location = event_location(event) or layer_location(ctx.trace, layer)
        samples = _samples(data.get("samples"))
        evidence = {
            "role": data.get("role"),
            "declared": declared,
            "identified": identified,
            "mistake": mistake,
            "f0": f0,
            "range": None if value_range is None else list(value_range),
            "max_err": max_err,
            "declared_err": declared_err,
            "samples": samples,
        }
        # One finding per cause: one user function misbehaving on several layers, hidden
        # and output alike, is one mistake in one place (a function's events name its line).
        key = (location, severity, identified, declared, mistake) if location else id(event)
        findings.setdefault(key, []).append((layer, shape, like, fix, evidence, severity, location))
    out = []
    for items in findings.values():
        layer, shape, like, fix, evidence, severity, location = items[0]
        layers = [item[0] for item in items]
        if len(items) == 1:
            message = f"{layer or 'a layer'}'s {what} {shape}: {like}"
        else:
            message = f"the {what} of {len(items)} layers ({', '.join(str(l) for l in layers)}) {shape}: {like}"
        if evidence["samples"]:
            message += "; observed " + ", ".join(f"f({fmt(z)}) = {fmt(a)}" for z, a in evidence["samples"])
        out.append(
            ctx.finding(
                message,
                severity=severity,
                layer=layer,
                fix=fix,
                location=location,
                evidence={
                    **evidence,
                    "layers": layers,
                    "roles": sorted({str(item[4]["role"]) for item in items}),
                    **({"per_layer": {str(item[0]): item[4] for item in items}} if len(items) > 1 else {}),
                    "activation_match_tol": th.activation_match_tol,
                },
            )
        )
    return out


def _samples(value) -> list[list[float]]:
    """The event's sample (z, f(z)) pairs as [[z, a], ...] of finite numbers (at most four)."""
    out = []
    if isinstance(value, (list, tuple)):
        for pair in value:
            if isinstance(pair, (list, tuple)) and len(pair) == 2:
                z, a = as_float(pair[0]), as_float(pair[1])
                if math.isfinite(z) and math.isfinite(a):
                    out.append([z, a])
                    if len(out) == 4:
                        break
    return out


@rule("ND303", "activation-mismatch", Severity.ERROR)
@quiet
def activation_mismatch(ctx: RuleContext):
    """A function used as an activation does not behave like the one it should be.

    What it does
        Reads how the activation each layer actually used behaves — its value at 0,
        its range and its shape on a grid — as identified against a catalogue of
        activations and known mistakes. An identified mistake (sigmoid applied
        twice, ``1/(1+sigmoid(-x))``, softmax over the wrong axis) is an error, as is
        a different known function than the declared one; a function that matches
        neither the declared one (error above ``activation_match_tol``) nor anything
        known is a warning.

    Why is this bad?
        The activation decides what the network can represent. ``1/(1+expit(-x))``
        looks like a sigmoid but ``expit`` already is one: the result maps 0 to 0.731
        and only reaches (0.5, 1), so targets of 0 are unreachable and the outputs
        pile up at 0.5. A softmax normalised over the batch instead of the classes
        makes each output depend on the other samples.

    Example
        ``return 1 / (1 + expit(-vec))`` as ``activationFunction``.

    Use instead
        ``return expit(vec)`` (or ``1 / (1 + np.exp(-vec))``, not both); softmax over
        the class axis: ``e = np.exp(z - z.max(axis=1, keepdims=True));
        e / e.sum(axis=1, keepdims=True)``.
    """
    return _function_findings(ctx, ("hidden", "output"), "activation")


@rule("ND304", "derivative-mismatch", Severity.ERROR)
@quiet
def derivative_mismatch(ctx: RuleContext):
    """The derivative backprop multiplies by is not the activation's derivative.

    What it does
        Reads how the factor backprop multiplies a hidden layer's error by behaves
        as a function of the pre-activation z, identified against the derivatives of
        known activations and known mistakes: the derivative applied to the
        activation instead of the pre-activation (``s(a)(1-s(a))`` with ``a = s(z)``),
        or a missing derivative (a constant 1). A known mistake or a different known
        derivative is an error; a factor unlike the declared activation's derivative
        and unlike anything known is a warning.

    Why is this bad?
        Backprop multiplies the error by f'(z) at every hidden layer. A wrong factor
        makes every gradient below that layer wrong: ``s(a)(1-s(a))`` stays between
        0.20 and 0.25 whatever z is, so saturated units keep receiving gradient and
        the network drifts instead of learning; a missing derivative lets the error
        flow as if the layer were linear.

    Example
        ``delta1 = (delta2 @ W2.T) * sigmoid_prime(a1)`` where ``sigmoid_prime(x)``
        computes ``sigmoid(x) * (1 - sigmoid(x))`` and ``a1`` is already
        ``sigmoid(z1)``.

    Use instead
        Either ``sigmoid_prime(z1)`` on the pre-activation, or ``a1 * (1 - a1)`` on the
        activation — not the sigmoid derivative formula applied to ``a1``.
    """
    return _function_findings(ctx, ("derivative",), "derivative")
