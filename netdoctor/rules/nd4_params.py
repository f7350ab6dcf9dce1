"""ND4xx: the parameters — how they start, whether they move, whether they exist.

Most of these read the ``param_init`` / ``param_final`` events (summary statistics
of each layer's weights and bias before and after training); ND404 also reads the
per-layer update and gradient norms.
"""

from __future__ import annotations

import math

import numpy as np

from ..types import Severity
from . import RuleContext, Skip, rule
from ._common import (
    activation_of,
    as_count,
    as_float,
    as_name,
    event_layer,
    event_location,
    events,
    finite_series,
    fmt,
    has_fitted,
    layer_names,
    loss_curve,
    payload,
    probe_array,
    quiet,
    run_fits,
)

_RELU_LIKE = ("relu", "leaky_relu")


def _per_layer(ctx: RuleContext, kind: str) -> dict[str, dict]:
    """The last event of `kind` for each layer, as {layer: data}."""
    out = {}
    for event in events(ctx.trace, kind):
        layer = event_layer(event)
        if layer is not None:
            out[layer] = dict(payload(event))
    return out


def _where(ctx: RuleContext, layer: str):
    """Where the layer's parameters are created in the user's code, when an observer knew.

    Never the layer's own location: that is where its activation function lives, and
    pointing an initialisation finding there would send the reader to the wrong line.
    """
    for event in events(ctx.trace, "param_init"):
        if event_layer(event) == layer and event_location(event) is not None:
            return event_location(event)
    return None


def _location_text(ctx: RuleContext, layer: str) -> str | None:
    where = _where(ctx, layer)
    return None if where is None else str(where)


def _init(ctx: RuleContext) -> dict[str, dict]:
    found = _per_layer(ctx, "param_init")
    if not found:
        raise Skip("no statistics of the initial parameters were recorded")
    return found


@rule("ND401", "symmetric-init", Severity.ERROR, symptom=True)
@quiet
def symmetric_init(ctx: RuleContext):
    """Units of a layer start identical, and training never tells them apart.

    What it does
        Reads, per layer, how many units had incoming weights and bias equal to
        another unit's (within ``symmetric_atol``) before training, and again after
        it. Units that start identical and are still identical at the end are an
        error (symmetry never broken); identical at the start with no final
        statistics recorded, a warning.

    Why is this bad?
        Identical units compute the same output and receive the same gradient, so
        they stay identical forever: a layer of 16 such units is a layer of one
        unit. Constant initialisation (all zeros, all 0.5) causes it.

    Example
        ``W1 = np.zeros((2, 4))``: the four hidden units of an XOR network remain
        copies of each other, and XOR cannot be learned with one hidden unit.

    Use instead
        Draw initial weights at random with a scale suited to the activation:
        ``rng.normal(0, np.sqrt(2 / (fan_in + fan_out)), (fan_in, fan_out))`` for
        tanh/sigmoid, ``np.sqrt(2 / fan_in)`` for ReLU. Biases may start at zero.
    """
    th = ctx.thresholds
    init = _init(ctx)
    final = _per_layer(ctx, "param_final")
    findings = []
    for layer in [name for name in layer_names(ctx.trace) if name in init] or list(init):
        start = as_count(init[layer].get("duplicate_units"))
        if start == 0:
            continue
        units = as_count(init[layer].get("fan_out"))
        of_units = f" of {units}" if units else ""
        if layer in final:
            end = as_count(final[layer].get("duplicate_units"))
            if end == 0:
                continue  # identical at first, told apart by training: no harm done
            message = (f"{layer}: {start}{of_units} units start with the same weights as another unit, "
                       f"and {end} are still copies after training: symmetry is never broken")
            severity = Severity.ERROR
        else:
            message = f"{layer}: {start}{of_units} units start with the same weights as another unit"
            severity, end = Severity.WARNING, None
        findings.append(
            ctx.finding(
                message,
                severity=severity,
                layer=layer,
                location=_where(ctx, layer),
                evidence={
                    "duplicate_units_init": start,
                    "duplicate_units_final": end,
                    "units": units or None,
                    "w_std_init": as_float(init[layer].get("w_std")),
                    "symmetric_atol": th.symmetric_atol,
                },
            )
        )
    return findings


@rule("ND402", "same-sign-init", Severity.WARNING, symptom=True)
@quiet
def same_sign_init(ctx: RuleContext):
    """All initial weights of a layer have the same sign.

    What it does
        Flags layers whose initial weights are all >= 0 (or all <= 0) but not all
        equal (constant weights are ND401's business). Because a few weights can
        share a sign by chance, it speaks only when the flagged layers hold at least
        ``same_sign_min_weights`` weights between them. A warning when the network
        fitted its data anyway; an error when the run does not fit (``run_fits``).
        All such layers are one finding that lists them, with per-layer evidence.

    Why is this bad?
        With only positive weights every unit adds up its inputs the same way, so
        the units start out strongly correlated and, with sigmoid activations, pushed
        towards saturation. It is what ``np.random.rand`` (uniform on [0, 1)) gives,
        often mistaken for a random initialisation centred on 0.

    Example
        ``W = np.random.rand(n_out, n_in)`` and ``b = np.random.rand(n_out, 1)``.

    Use instead
        Centre the initial weights on 0 with a scale suited to the activation:
        ``rng.normal(0, np.sqrt(2 / (fan_in + fan_out)), shape)`` (Glorot) or
        ``rng.uniform(-r, r, shape)`` with ``r = np.sqrt(6 / (fan_in + fan_out))``;
        start biases at 0.
    """
    th = ctx.thresholds
    init = _init(ctx)
    flagged = []
    for layer in [name for name in layer_names(ctx.trace) if name in init] or list(init):
        data = init[layer]
        lo, hi, std = as_float(data.get("w_min")), as_float(data.get("w_max")), as_float(data.get("w_std"))
        if not (math.isfinite(lo) and math.isfinite(hi)) or not std > 0:
            continue
        if lo >= 0 or hi <= 0:
            n = as_count(data.get("fan_in")) * as_count(data.get("fan_out"))
            flagged.append((layer, lo, hi, n))
    total = sum(n for *_, n in flagged)
    if total < th.same_sign_min_weights:
        return []
    # Same-sign weights are survivable; together with a run that does not fit they are
    # a cause of it, so the finding is then an error.
    fit = run_fits(ctx.trace, th)
    failed = fit.fails
    severity = Severity.ERROR if failed else Severity.WARNING
    # One finding per cause: every same-sign layer is the same way of drawing weights.
    findings = []
    for items in ([flagged] if flagged else []):
        location = next((_where(ctx, i[0]) for i in items if _where(ctx, i[0]) is not None), None)
        parts = []
        for layer, lo, hi, n in items:
            sign = "non-negative" if lo >= 0 else "non-positive"
            parts.append(f"{layer}: all {n or ''} initial weights are {sign} (range {fmt(lo)} to {fmt(hi)})")
        uniform01 = all(lo >= 0 and hi <= 1 for _, lo, hi, _ in items)
        message = "; ".join(parts) if len(items) == 1 else (
            f"{len(items)} layers start with weights of one sign: " + "; ".join(parts))
        message += (", like U[0, 1) from np.random.rand" if uniform01 else "") + (
            f"; the run did not fit its data ({fit.reason})" if failed else "")
        layer, lo, hi, n = items[0]
        findings.append(
            ctx.finding(
                message,
                severity=severity,
                layer=layer,
                location=location,
                evidence={
                    "w_min": lo,
                    "w_max": hi,
                    "n_weights": n,
                    "layers": [i[0] for i in items],
                    "per_layer": {i[0]: {"w_min": i[1], "w_max": i[2], "n_weights": i[3],
                                         "location": _location_text(ctx, i[0])} for i in items},
                    "weights_in_flagged_layers": total,
                    "same_sign_min_weights": th.same_sign_min_weights,
                    **fit.evidence(th),
                },
            )
        )
    return findings


def _recommended_std(activation: str | None, fan_in: int, fan_out: int) -> tuple[float, str]:
    if activation in _RELU_LIKE:
        return math.sqrt(2.0 / fan_in), "He, sqrt(2/fan_in)"
    return math.sqrt(2.0 / (fan_in + fan_out)), "Glorot, sqrt(2/(fan_in+fan_out))"


@rule("ND403", "init-scale", Severity.WARNING, symptom=True)
@quiet
def init_scale(ctx: RuleContext):
    """Initial weights are far larger or smaller than the activation needs.

    What it does
        Compares each layer's initial weight scale (root mean square, so a same-sign
        offset counts too) with Glorot's ``sqrt(2/(fan_in+fan_out))`` for
        sigmoid/tanh/linear/softmax layers and He's ``sqrt(2/fan_in)`` for ReLU
        layers. A ratio outside ``init_scale_ratio`` — beyond what drawing only
        ``fan_in * fan_out`` weights leaves uncertain (``init_scale_sample_z``
        relative errors of 1/sqrt(2n)) — is a warning; outside
        ``init_scale_error_ratio`` it is an error when the run learned nothing (it
        does not fit its data and its loss ends above ``fit_stuck_ratio`` of its
        start), and a warning otherwise: small nets train well from ``0.01 * randn``. Layers set up too large (or too
        small) than their activations need are one finding that lists them, with
        each layer's numbers and line in its evidence. A network of one layer
        (linear or logistic regression, one neuron) is not judged: with no layer
        behind it there is no signal to keep in scale, and its loss is convex in
        the weights, so zeros are the usual start.

    Why is this bad?
        These scales keep the size of activations and gradients roughly constant
        from layer to layer. Much larger weights saturate sigmoid/tanh units and
        make gradients explode; much smaller ones shrink the signal at every layer
        until nothing reaches the output or flows back.

    Example
        ``W1 = np.random.randn(784, 256)`` for a tanh layer: std 1 where Glorot
        suggests 0.044, 23 times too large; every unit saturates at once.

    Use instead
        ``rng.normal(0, np.sqrt(2 / (fan_in + fan_out)), (fan_in, fan_out))`` for
        sigmoid/tanh, ``rng.normal(0, np.sqrt(2 / fan_in), ...)`` for ReLU.
    """
    th = ctx.thresholds
    init = _init(ctx)
    if len(layer_names(ctx.trace) or init) == 1:
        raise Skip("a network of one layer: no signal passes between layers, so no scale to keep")
    fit = run_fits(ctx.trace, th)
    off = []   # (layer, activation, fan_in, fan_out, rms, target, rule_name, ratio, evidence)
    judged = 0
    for layer in [name for name in layer_names(ctx.trace) if name in init] or list(init):
        data = init[layer]
        fan_in, fan_out = as_count(data.get("fan_in")), as_count(data.get("fan_out"))
        mean, std = as_float(data.get("w_mean")), as_float(data.get("w_std"))
        if not (fan_in and fan_out and math.isfinite(mean) and math.isfinite(std)):
            continue
        judged += 1
        activation = as_name(data.get("activation")) or activation_of(ctx.trace, layer)
        target, rule_name = _recommended_std(activation, fan_in, fan_out)
        rms = math.sqrt(mean * mean + std * std)
        ratio = rms / target
        # What the draw allows: a few weights read their scale loosely.
        spread = math.exp(th.init_scale_sample_z / math.sqrt(2 * fan_in * fan_out))
        low, high = ratio / spread, ratio * spread
        warn_lo, warn_hi = th.init_scale_ratio
        if high >= warn_lo and low <= warn_hi:
            continue
        off.append((layer, activation, fan_in, fan_out, rms, target, rule_name, ratio, {
            "w_rms": rms, "w_mean": mean, "w_std": std, "recommended_std": target, "ratio": ratio,
            "ratio_bounds": [low, high], "n_weights": fan_in * fan_out,
        }))
    if not judged:
        raise Skip("the initial statistics lack fan-in/fan-out or weight statistics")
    # One finding per cause: layers initialised the same wrong way (larger, or smaller,
    # than their activations need) are one habit of the code, told once; the location is
    # the first such layer's line, and every layer's own line is in the evidence.
    causes: dict[bool, list] = {}
    for item in off:
        causes.setdefault(item[7] > 1, []).append(item)
    err_lo, err_hi = th.init_scale_error_ratio
    findings = []
    for larger, items in causes.items():
        location = next((_where(ctx, i[0]) for i in items if _where(ctx, i[0]) is not None), None)
        size = "larger" if larger else "smaller"
        far = [i for i in items if not err_lo <= i[7] <= err_hi]
        # A scale far off is an error only where the run learned nothing: small nets train
        # well from 0.01 * randn, and a run that learned shows the scale did not stop it.
        stuck = fit.stuck(th)
        severity = Severity.ERROR if far and stuck else Severity.WARNING
        if len(items) == 1:
            layer, activation, fan_in, fan_out, rms, target, rule_name, ratio, _ = items[0]
            message = (f"{layer} ({activation or 'unknown activation'}, {fan_in}->{fan_out}): initial weights "
                       f"have scale {fmt(rms)} (rms), {fmt(ratio, 2)}x the {fmt(target)} of {rule_name}: "
                       f"{size} than the activation needs")
        else:
            ratios = [i[7] for i in items]
            rules = sorted({i[6] for i in items})
            listed = ", ".join(f"{i[0]} {fmt(i[7], 2)}x" for i in items)
            message = (f"{len(items)} layers start with weights {fmt(min(ratios), 2)}-{fmt(max(ratios), 2)}x "
                       f"the scale of {' / '.join(rules)}: {size} than their activations need ({listed})")
        if severity == Severity.ERROR:
            message += f"; the run learned nothing ({fit.reason})"
        first = items[0]
        findings.append(
            ctx.finding(
                message,
                severity=severity,
                layer=first[0],
                location=location,
                evidence={
                    **first[8],
                    "layers": [i[0] for i in items],
                    "per_layer": {i[0]: {**i[8], "location": _location_text(ctx, i[0])} for i in items},
                    "init_scale_ratio": th.init_scale_ratio,
                    "init_scale_error_ratio": th.init_scale_error_ratio,
                    **fit.evidence(th),
                },
            )
        )
    return findings


_PARAM_SERIES = {"weight": ("update_norm", "grad_norm"), "bias": ("bias_update_norm", "bias_grad_norm")}
_PARAM_STATS = {"weight": ("w_min", "w_max", "w_mean", "w_std"), "bias": ("b_min", "b_max", "b_std")}


@rule("ND404", "frozen-parameter", Severity.ERROR)
@quiet
def frozen_parameter(ctx: RuleContext):
    """A parameter never changes during training.

    What it does
        Flags a layer's weights or bias whose recorded change is exactly zero at
        every step. While its gradient is not zero, this is an error: the update
        step forgets it. With a zero gradient too, a warning: it is cut off from the
        loss. Where no per-step changes were recorded for a parameter, falls back on
        its ``param_init`` and ``param_final`` statistics being identical after
        training (an error when its gradient was seen to be non-zero).

    Why is this bad?
        A parameter that never moves keeps its initial value: a bias stuck at 0 or at
        a random value shifts every unit of the layer for good, and the network must
        contort its other weights around it — or fails to fit.

    Example
        An update loop that updates the weights but not the biases:
        ``W -= lr * dW`` with ``b -= lr * db`` missing (or written to a copy).

    Use instead
        Update every parameter in the same place: ``for p, g in zip(params, grads):
        p -= lr * g`` (in place, so the arrays the forward pass reads change).
    """
    init, final = _per_layer(ctx, "param_init"), _per_layer(ctx, "param_final")
    layers = list(dict.fromkeys([*layer_names(ctx.trace), *init]))
    findings = []
    judged = False
    for layer in layers:
        for param, (update_q, grad_q) in _PARAM_SERIES.items():
            _, grads = finite_series(ctx.trace, grad_q, layer)
            pushed = bool(len(grads) and np.any(grads > 0))
            _, changes = finite_series(ctx.trace, update_q, layer)
            if len(changes):
                judged = True
                if np.any(changes != 0):
                    continue
                how = f"never changes in {len(changes)} recorded steps"
            else:
                keys = _PARAM_STATS[param]
                before = [as_float(init.get(layer, {}).get(k)) for k in keys]
                after = [as_float(final.get(layer, {}).get(k)) for k in keys]
                if not all(math.isfinite(v) for v in before + after) or not ctx.info.steps:
                    continue
                judged = True
                if before != after:
                    continue
                how = (f"has exactly the same minimum, maximum and spread after {ctx.info.steps} steps "
                       f"as before training")
            findings.append(
                ctx.finding(
                    f"{layer}.{param} {how}"
                    + (f", although its gradient is not zero (norm up to {fmt(grads.max())})" if pushed
                       else "; no non-zero gradient was seen for it, so no signal may reach it"),
                    severity=Severity.ERROR if pushed else Severity.WARNING,
                    layer=layer,
                    location=_where(ctx, layer),
                    evidence={
                        "param": f"{layer}.{param}",
                        "changes_recorded": int(len(changes)),
                        "max_grad_norm": float(grads.max()) if len(grads) else None,
                    },
                )
            )
    if not judged:
        raise Skip("neither per-step changes nor initial and final parameter statistics recorded")
    return findings


@rule("ND405", "missing-bias", Severity.WARNING)
@quiet
def missing_bias(ctx: RuleContext):
    """A layer has no bias.

    What it does
        Flags layers recorded as having no bias term (from the run's layer
        description or the initial parameter statistics), in one finding that
        names them. It is an error when the first layer of a network with a
        hidden layer has none, some probe input is all zeros (mapped to z = 0
        whatever the weights) and the run did not fit its data (``run_fits``); a
        warning otherwise.

    Why is this bad?
        Without a bias every unit's pre-activation is 0 for an all-zero input, so
        that input is pinned at f(0) through the whole network — 0.5 for a sigmoid
        output. XOR's (0, 0) -> 0 can then never be fitted, and in general each unit's
        decision boundary is forced through the origin.

    Example
        ``h = sigmoid(X @ W1)``; ``out = sigmoid(h @ W2)`` with no ``+ b1``/``+ b2``.

    Use instead
        Give every layer a bias, initialised at 0 and updated like the weights:
        ``z = a @ W + b``; ``b -= lr * delta.mean(axis=0)``.
    """
    th = ctx.thresholds
    layers = [layer for layer in ctx.info.layers if layer.has_bias is not None]
    missing = {layer.name for layer in layers if layer.has_bias is False}
    known = bool(layers)
    for layer, data in _per_layer(ctx, "param_init").items():
        if isinstance(data.get("has_bias"), bool):
            known = True
            if data["has_bias"] is False:
                missing.add(layer)
    if not known:
        raise Skip("nothing recorded about biases")
    if not missing:
        return []
    order = {name: i for i, name in enumerate(layer_names(ctx.trace))}
    named = sorted(missing, key=lambda name: order.get(name, len(order)))
    first = named[0]
    # An error only where it binds and the run shows it: an all-zero input that the first
    # layer can only map to z = 0, in a run that did not fit its data. Elsewhere a missing
    # bias is a design choice that often trains well (a warning).
    fit = run_fits(ctx.trace, th)
    zero_rows = _all_zero_inputs(ctx.trace)
    # (A one-layer model, a line through the origin, is judged by its fit alone: ND1xx.)
    binding = zero_rows > 0 and order.get(first, 0) == 0 and len(order) > 1 and fit.fits is False
    message = (f"{first} has no bias" if len(named) == 1
               else f"{len(named)} layers have no bias ({', '.join(named)})")
    message += ": an all-zero input reaches the first activation as exactly 0 whatever the weights"
    if binding:
        message += (f"; {zero_rows} of the probe inputs are all zeros, and the run did not fit its data "
                    f"({fit.reason})")
    return [
        ctx.finding(
            message,
            severity=Severity.ERROR if binding else Severity.WARNING,
            layer=first,
            location=_where(ctx, first),
            evidence={"has_bias": False, "layers": named, "zero_inputs": zero_rows, **fit.evidence(th),
                      "per_layer": {name: {"location": _location_text(ctx, name)} for name in named}},
        )
    ]


def _all_zero_inputs(trace) -> int:
    """How many probe inputs are all zeros (0 when the inputs were not recorded)."""
    X = probe_array(trace, "probe_inputs")
    if X is None or X.ndim != 2 or not X.size:
        return 0
    return int(np.sum(np.all(X == 0, axis=1)))
