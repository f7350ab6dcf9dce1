"""ND6xx: the data as the network receives it — can the outputs reach the targets,
are the inputs on a sane scale, do targets and output units agree.

All three read the ``data`` event (raw facts about X and y, plus the range the
output function actually reaches).
"""

from __future__ import annotations

import math

from ..types import Severity
from . import RuleContext, Skip, rule
from ._common import (
    as_count,
    as_float,
    as_name,
    as_pair,
    event_location,
    events,
    fmt,
    output_function,
    payload,
    quiet,
)


def _data(ctx: RuleContext) -> dict:
    found = events(ctx.trace, "data")
    if not found:
        raise Skip("no facts about the training data were recorded")
    return dict(payload(found[-1]))


def _where(ctx: RuleContext):
    """Where the training data is handed to the network, when the observer knew."""
    found = events(ctx.trace, "data")
    return event_location(found[-1]) if found else None


@rule("ND601", "unreachable-targets", Severity.ERROR)
@quiet
def unreachable_targets(ctx: RuleContext):
    """Some targets lie outside the range the output function can produce.

    What it does
        Compares the targets with the range the output function actually reaches
        (measured by evaluating it, so a wrong function is caught too) and flags any
        fraction of target values outside it.

    Why is this bad?
        The network can only approach such targets from the edge of the range, so
        the loss can never reach its minimum and the gradients keep pushing the
        output units into saturation. A sigmoid cannot produce -1; the seed's
        ``1/(1+expit(-x))`` cannot produce anything below 0.5, so a target of 0 is
        out of reach.

    Example
        Targets in {-1, 1} with a sigmoid output; targets of 0 with an output
        function whose range is (0.5, 1).

    Use instead
        Match output and targets: sigmoid for targets in [0, 1], tanh for [-1, 1],
        a linear output for unbounded regression targets (or rescale the targets).
    """
    data = _data(ctx)
    outside = as_float(data.get("targets_outside"))
    reach = as_pair(data.get("output_range"))
    if not math.isfinite(outside) or reach is None:
        raise Skip("the output range or the share of targets outside it was not recorded")
    if outside <= 0:
        return []
    lo, hi = as_float(data.get("target_min")), as_float(data.get("target_max"))
    function = output_function(ctx.trace) or "the output function"
    beyond = []
    # The same tolerance the observer used for targets_outside: a sigmoid "reaches" 0 and 1.
    tolerance = ctx.thresholds.target_range_tol
    if math.isfinite(lo) and lo < reach[0] - tolerance:
        beyond.append(f"targets as low as {fmt(lo)}")
    if math.isfinite(hi) and hi > reach[1] + tolerance:
        beyond.append(f"targets as high as {fmt(hi)}")
    detail = f" ({' and '.join(beyond)})" if beyond else ""
    return [
        ctx.finding(
            f"{fmt(outside * 100, 3)}% of target values lie outside [{fmt(reach[0])}, {fmt(reach[1])}], "
            f"the range the output layer ({function}, as declared) actually reaches{detail}: "
            f"they can never be fitted",
            location=_where(ctx),
            evidence={
                "targets_outside": outside,
                "output_range": list(reach),
                "target_min": lo,
                "target_max": hi,
                "target_range_tol": tolerance,
            },
        )
    ]


@rule("ND602", "unscaled-inputs", Severity.WARNING)
@quiet
def unscaled_inputs(ctx: RuleContext):
    """Inputs are far from unit scale.

    What it does
        Flags inputs whose typical magnitude (mean |x|) is above
        ``input_scale_max`` or below ``input_scale_min``, and inputs that are all 0.

    Why is this bad?
        The first layer's pre-activations scale with the inputs: large inputs
        saturate sigmoid/tanh units from the first step and make the gradients of the
        first layer huge compared with the others; tiny inputs make the first layer's
        weights learn far more slowly than the rest.

    Example
        Raw pixel values 0..255, or house prices in dollars, fed straight in.

    Use instead
        Standardise each feature with the training statistics:
        ``X = (X - X.mean(axis=0)) / X.std(axis=0)`` (or divide pixels by 255).
    """
    th = ctx.thresholds
    data = _data(ctx)
    typical = as_float(data.get("x_abs_mean"))
    largest = as_float(data.get("x_abs_max"))
    if not math.isfinite(typical):
        raise Skip("the input magnitude was not recorded")
    evidence = {
        "x_abs_mean": typical,
        "x_abs_max": largest,
        "x_std": as_float(data.get("x_std")),
        "input_scale_max": th.input_scale_max,
        "input_scale_min": th.input_scale_min,
    }
    if typical > th.input_scale_max:
        what = f"large: mean |x| is {fmt(typical)} (largest {fmt(largest)}), above {fmt(th.input_scale_max)}"
    elif typical == 0:
        what = "all zero: the network sees no input at all"
    elif typical < th.input_scale_min:
        what = f"tiny: mean |x| is {fmt(typical)}, below {fmt(th.input_scale_min)}"
    else:
        return []
    return [ctx.finding(f"inputs are {what}", evidence=evidence, location=_where(ctx))]


@rule("ND603", "target-shape", Severity.ERROR)
@quiet
def target_shape(ctx: RuleContext):
    """The targets do not fit the output units (classes, one-hot width, shape).

    What it does
        Compares the targets with the number of output units: one-hot targets whose
        width differs from the output units, integer labels naming more classes than
        there are output units, or more than two classes for a single output unit.

    Why is this bad?
        Every output unit is compared with a target column. With too few units some
        classes can never be predicted; with labels where one-hot rows were expected
        (or a label column broadcast against several outputs) the loss compares the
        wrong numbers and the network learns nonsense without any error being raised.

    Example
        Labels 0, 1, 2 trained against a single sigmoid output unit; one-hot targets
        of width 10 for a network with 2 outputs.

    Use instead
        One output unit per class with softmax and one-hot targets (or integer labels
        turned into one-hot rows: ``np.eye(n_classes)[labels]``); a single sigmoid
        unit only for two classes with 0/1 targets.
    """
    data = _data(ctx)
    units = as_count(data.get("out_units"))
    if not units:
        raise Skip("the number of output units was not recorded")
    kind = as_name(data.get("target_kind"))
    classes = data.get("classes")
    classes = list(classes) if isinstance(classes, (list, tuple)) else None
    shape = data.get("y_shape")
    shape = [as_count(s) for s in shape] if isinstance(shape, (list, tuple)) else None
    width = shape[1] if shape and len(shape) == 2 else (1 if shape and len(shape) == 1 else None)
    evidence = {"out_units": units, "target_kind": kind, "y_shape": shape, "classes": classes}
    problem = None
    if kind == "onehot" and width is not None and width != units:
        problem = f"one-hot targets have {width} columns but the network has {units} output units"
    elif classes is not None and kind in ("labels", "binary", None) and units > 1 and len(classes) > units:
        problem = f"labels name {len(classes)} classes but the network has only {units} output units"
    elif classes is not None and kind in ("labels", None) and units == 1 and len(classes) > 2 \
            and ctx.info.task != "regression" and output_function(ctx.trace) not in ("linear", "identity"):
        problem = (f"labels name {len(classes)} classes ({', '.join(fmt(c) for c in classes[:6])}) "
                   f"but the network has a single output unit")
    elif width is not None and width > 1 and width != units:
        problem = f"targets have {width} columns but the network has {units} output units"
    elif data.get("labels_broadcast") is True and units > 1:
        # numpy broadcasts an (n,) or (n, 1) label column against (n, units) outputs without a
        # word: every unit is then trained towards the class number itself.
        names = f" {data['targets']}" if isinstance(data.get("targets"), str) else ""
        problem = (f"the targets{names} are one column of labels ({', '.join(fmt(c) for c in (classes or [])[:6])}) "
                   f"compared with all {units} output units, which numpy broadcasts silently; "
                   "each unit is pulled towards the class number instead of 0/1")
        evidence["labels_broadcast"] = True
    if problem is not None:
        return [ctx.finding(problem, evidence=evidence, location=_where(ctx))]
    guess = _labels_in_one_unit(ctx, data, units, shape)
    return [guess] if guess is not None else []


def _labels_in_one_unit(ctx: RuleContext, data: dict, units: int, shape: list[int] | None):
    """Class labels 0..K fed as the target of a single probability-like output unit.

    Observers may call such targets "continuous" (one value per sample, more than two
    values). Whole-number targets from 0 up to 2 or more, in one column, against an
    output made for probabilities (sigmoid/softmax), are almost surely class labels;
    this is an inference from the target range, hence a warning.
    """
    lo, hi = as_float(data.get("target_min")), as_float(data.get("target_max"))
    one_column = shape is not None and (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1))
    whole = math.isfinite(lo) and math.isfinite(hi) and lo == round(lo) and hi == round(hi)
    function = output_function(ctx.trace)
    probability_like = function in ("sigmoid", "softmax")
    if not (units == 1 and one_column and whole and lo >= 0 and hi >= 2 and probability_like):
        return None
    return ctx.finding(
        f"targets run over whole numbers {fmt(lo)}..{fmt(hi)} in one column, like class labels, but the "
        f"network has a single {function} output unit, made for one probability",
        severity=Severity.WARNING,
        location=_where(ctx),
        evidence={"out_units": units, "target_min": lo, "target_max": hi, "y_shape": shape,
                  "output": function, "target_kind": as_name(data.get("target_kind"))},
    )
