"""ND7xx: how the model is put together -- the framework bugs people really hit.

Most of these read the ``framework`` event: what torch or Keras itself said about
the model while it trained (the loss function and whether it applies its own
softmax, the output layer's activation and units, whether ``.grad`` was cleared,
which parameters the optimizer holds, the shapes handed to the loss). Two also
judge NumPy code from the layers and the data alone: ``missing-nonlinearity`` and
``unscaled-targets``, and ``softmax-single-unit`` reads only the layers.

Every finding names the layer or the line of the user's script that built the
layer, the loss or the optimizer, and gives the fix in the framework's own terms.
"""

from __future__ import annotations

import math

import numpy as np

from ..types import Location, Severity
from . import RuleContext, Skip, rule
from ._common import as_count, as_float, as_name, events, finite_series, fmt, payload, quiet

_LINEAR = {"linear", "identity", "none"}


def _facts(ctx: RuleContext) -> dict:
    found = events(ctx.trace, "framework")
    if not found:
        raise Skip("no framework facts were recorded (not a torch or Keras run)")
    return dict(payload(found[-1]))


def _loc(value) -> Location | None:
    return value if isinstance(value, Location) else None


def _framework(facts: dict) -> str:
    return str(facts.get("framework") or "")


def _output(ctx: RuleContext, facts: dict | None = None) -> tuple[str | None, str | None, int | None]:
    """(output layer name, its activation, its units) from the layers netdoctor saw."""
    layers = ctx.info.layers
    if layers:
        out = next((layer for layer in layers if layer.is_output), layers[-1])
        return out.name, as_name(out.activation), out.fan_out
    facts = facts or {}
    return None, as_name(facts.get("output_activation")), facts.get("output_units")


# --- ND701 ------------------------------------------------------------------------------------


@rule("ND701", "softmax-before-crossentropy", Severity.ERROR)
@quiet
def softmax_before_crossentropy(ctx: RuleContext):
    """A softmax (or sigmoid) output feeds a loss that applies its own.

    What it does
        Flags ``nn.CrossEntropyLoss`` / ``F.cross_entropy`` receiving rows that are
        already probabilities (non-negative, summing to 1), ``BCEWithLogitsLoss`` after a
        sigmoid, and a Keras loss compiled with ``from_logits=True`` after a softmax or
        sigmoid output layer.

    Why is this bad?
        These losses squash their input themselves. Squashing twice compresses the
        outputs into a narrow band (softmax of probabilities is nearly uniform), so the
        loss can never approach 0 and its gradients shrink as the network gets it
        right: training stalls at a mediocre accuracy, or at chance.

    Example
        ``return F.softmax(self.fc2(x), dim=1)`` in ``forward`` with
        ``criterion = nn.CrossEntropyLoss()``; or ``Dense(10, activation="softmax")``
        with ``SparseCategoricalCrossentropy(from_logits=True)``.

    Use instead
        Return the logits (no softmax in ``forward``; apply ``softmax`` only when you
        need probabilities at prediction time), or keep the softmax layer and compile
        with ``from_logits=False`` (the Keras default).
    """
    facts = _facts(ctx)
    layer, activation, _ = _output(ctx, facts)
    fn = str(facts.get("loss_fn") or "")
    squashed = activation in ("softmax", "sigmoid")
    if _framework(facts) == "torch":
        if fn == "cross_entropy" and (facts.get("ce_input_is_probability") or activation == "softmax"):
            what = "nn.CrossEntropyLoss / F.cross_entropy receives probabilities (a softmax output)"
        elif fn == "binary_cross_entropy_with_logits" and activation == "sigmoid":
            what = "BCEWithLogitsLoss receives a sigmoid output"
        else:
            return []
    else:
        if not (facts.get("from_logits") and squashed):
            return []
        what = f"the loss {facts.get('loss_fn')} is compiled with from_logits=True after a {activation} output"
    return [ctx.finding(
        f"{what}: the loss applies its own softmax/sigmoid, so the outputs are squashed twice",
        layer=layer, location=_loc(facts.get("loss_location")),
        evidence={"loss_fn": fn or facts.get("loss_fn"), "output_activation": activation,
                  "from_logits": facts.get("from_logits"),
                  "ce_input_is_probability": facts.get("ce_input_is_probability")})]


# --- ND702 ------------------------------------------------------------------------------------


@rule("ND702", "loss-output-mismatch", Severity.ERROR)
@quiet
def loss_output_mismatch(ctx: RuleContext):
    """The loss does not fit the output layer or the labels.

    What it does
        Flags binary cross-entropy on logits (a linear output without
        ``from_logits=True``), on a softmax over several units, or on labels beyond 1;
        ``categorical_crossentropy`` on integer labels; ``sparse_categorical_crossentropy``
        on one-hot labels; ``NLLLoss`` on probabilities instead of log-probabilities.

    Why is this bad?
        Each loss assumes a meaning for its two arguments. Fed something else it still
        returns a number, but one whose minimum is not the right answer: logits are
        clipped into [0, 1], a column of labels is broadcast against every unit,
        labels 2, 3 ... make the binary loss unbounded below. The network learns the
        wrong thing or nothing.

    Example
        ``Dense(1)`` (linear) with ``loss="binary_crossentropy"``; ``Dense(3,
        activation="softmax")`` with ``categorical_crossentropy`` and labels ``[0, 2, 1]``.

    Use instead
        Match the three: sigmoid output + binary cross-entropy for 0/1 labels;
        softmax + ``sparse_categorical_crossentropy`` for integer labels, or
        ``categorical_crossentropy`` for one-hot rows (``keras.utils.to_categorical``);
        ``nn.CrossEntropyLoss`` on logits with integer labels in torch.
    """
    facts = _facts(ctx)
    layer, activation, units = _output(ctx, facts)
    fn = str(facts.get("loss_fn") or "")
    key = fn.lower().replace("_", "")
    kind = facts.get("loss_kind")
    raw_shape = facts.get("y_shape") or facts.get("target_shape") or []
    y_shape = list(raw_shape) if isinstance(raw_shape, (list, tuple)) else []   # hostile facts: no shape
    tmax = as_float(facts.get("target_max"))
    units = as_count(units) or None
    problems = []
    if kind == "bce":
        if activation == "softmax" and (units or 0) > 1:
            problems.append(f"binary cross-entropy on a softmax over {units} units")
        if activation in _LINEAR and not facts.get("from_logits") and _framework(facts) == "keras":
            problems.append("binary cross-entropy on logits (a linear output) without from_logits=True")
        if math.isfinite(tmax) and tmax > 1:
            problems.append(f"binary cross-entropy on labels up to {fmt(tmax)} (it needs 0/1 targets)")
    if "sparse" not in key and "categoricalcrossentropy" in key and (units or 0) > 1:
        if len(y_shape) == 1 or (len(y_shape) == 2 and y_shape[1] == 1):
            problems.append(f"categorical_crossentropy on integer labels of shape {tuple(y_shape)} "
                            f"for {units} output units (it needs one-hot rows)")
    if "sparse" in key and len(y_shape) == 2 and y_shape[1] > 1:
        problems.append(f"sparse_categorical_crossentropy on one-hot labels of shape {tuple(y_shape)}")
    if fn == "nll_loss" and facts.get("ce_input_is_probability") and not facts.get("ce_input_is_log_probability"):
        problems.append("NLLLoss on probabilities (it needs log-probabilities: log_softmax)")
    if not problems:
        return []
    return [ctx.finding("; ".join(problems), layer=layer, location=_loc(facts.get("loss_location")),
                        evidence={"loss_fn": fn, "output_activation": activation, "output_units": units,
                                  "y_shape": y_shape, "target_max": tmax})]


# --- ND703 ------------------------------------------------------------------------------------


@rule("ND703", "softmax-single-unit", Severity.ERROR)
@quiet
def softmax_single_unit(ctx: RuleContext):
    """A softmax over a single output unit, which is identically 1.

    What it does
        Flags an output layer with one unit whose activation is softmax (declared, as
        ``Dense(1, activation="softmax")``, or identified from what it computes).

    Why is this bad?
        Softmax normalises across the units of a layer: over one unit it is
        exp(z)/exp(z) = 1 for every input. The output never changes and its gradient is
        exactly zero, so nothing upstream can learn; predictions are all one class.

    Example
        ``model.add(Dense(1, activation="softmax"))`` with ``binary_crossentropy`` or
        ``mean_squared_error``: loss and accuracy are frozen from the first epoch.

    Use instead
        ``Dense(1, activation="sigmoid")`` for a binary output (or ``nn.Sigmoid()`` /
        ``BCEWithLogitsLoss`` in torch), or ``Dense(2, activation="softmax")`` with
        one-hot / sparse labels.
    """
    layers = ctx.info.layers
    if not layers:
        raise Skip("the layers were not recorded")
    out = next((layer for layer in layers if layer.is_output), layers[-1])
    if as_name(out.activation) != "softmax" or out.fan_out != 1:
        return []
    return [ctx.finding(
        f"{out.name} is a softmax over 1 unit: its output is 1.0 for every input and its gradient is 0",
        layer=out.name, location=_loc(out.location),
        evidence={"activation": out.activation, "units": out.fan_out})]


# --- ND704 ------------------------------------------------------------------------------------


@rule("ND704", "gradients-not-zeroed", Severity.ERROR)
@quiet
def gradients_not_zeroed(ctx: RuleContext):
    """Gradients are never zeroed, so they accumulate across steps.

    What it does
        After each update, checks whether ``.grad`` still holds the previous step's
        gradient when the next ``backward()`` starts. Flags runs where it nearly always
        does (``stale_grad_frac`` of at least ``stale_grad_checks`` checks).

    Why is this bad?
        ``backward()`` adds to ``.grad``; it does not overwrite it. Without zeroing, the
        update at step t uses the sum of all gradients so far: an undamped momentum that
        overshoots, makes the loss oscillate with growing swings and often diverge.

    Example
        ``loss.backward(); w.data.sub_(lr * w.grad)`` in a loop with no ``w.grad.zero_()``;
        or ``optimizer.step()`` with no ``optimizer.zero_grad()``.

    Use instead
        Call ``optimizer.zero_grad()`` before ``loss.backward()`` (or ``w.grad.zero_()``
        after a hand-written update) in every iteration.
    """
    facts = _facts(ctx)
    th = ctx.thresholds
    if _framework(facts) != "torch":
        return []
    checked = as_count(facts.get("grad_checked"))
    stale = as_count(facts.get("grad_stale"))
    if checked < th.stale_grad_checks:
        raise Skip(f"only {checked} update(s) were followed by another backward()")
    if stale < th.stale_grad_frac * checked:
        return []
    where = _loc(facts.get("optimizer_location")) or _loc(facts.get("backward_location"))
    how = "optimizer.zero_grad()" if facts.get("optimizer") else "w.grad.zero_()"
    return [ctx.finding(
        f".grad still held the previous gradient at {stale} of {checked} backward() calls after an "
        f"update: gradients accumulate (no {how})",
        location=where,
        evidence={"grad_stale": stale, "grad_checked": checked, "stale_grad_frac": th.stale_grad_frac,
                  "optimizer": facts.get("optimizer")})]


# --- ND705 ------------------------------------------------------------------------------------


@rule("ND705", "step-missing", Severity.ERROR)
@quiet
def step_missing(ctx: RuleContext):
    """``backward()`` runs but no update follows, or a parameter is not given to the optimizer.

    What it does
        Flags a run with ``step_missing_backwards`` or more ``backward()`` calls in which
        no parameter ever changed, and parameters that receive gradients but belong to
        no optimizer while the optimizer steps.

    Why is this bad?
        ``backward()`` only computes gradients. Without ``optimizer.step()`` (or a
        hand-written update) the weights never move; a parameter missing from the
        optimizer's list stays at its initial value however long the run.

    Example
        ``loss.backward()`` in the loop and the ``optimizer.step()`` line forgotten; or
        ``optim.SGD(model.fc1.parameters(), lr=0.1)`` for a two-layer model.

    Use instead
        Call ``optimizer.step()`` after ``loss.backward()``, and build the optimizer from
        ``model.parameters()`` (all of them).
    """
    facts = _facts(ctx)
    th = ctx.thresholds
    if _framework(facts) != "torch":
        return []
    backwards = as_count(facts.get("backward_calls"))
    steps = as_count(ctx.info.steps)
    outside = [str(n) for n in facts.get("params_outside_optimizer") or []]
    where = _loc(facts.get("optimizer_location"))
    if steps == 0 and backwards >= th.step_missing_backwards:
        return [ctx.finding(
            f"backward() ran {backwards} times but no parameter ever changed: no optimizer.step() "
            "(or update) follows it", location=where or _loc(facts.get("backward_location")),
            evidence={"backward_calls": backwards, "steps": steps})]
    if outside and steps > 0:
        return [ctx.finding(
            f"{len(outside)} parameter(s) are not in any optimizer and never learn: {', '.join(outside[:6])}",
            layer=outside[0].rsplit(".", 1)[0], location=where,
            evidence={"params_outside_optimizer": outside, "steps": steps})]
    return []


# --- ND706 ------------------------------------------------------------------------------------


@rule("ND706", "frozen-layer", Severity.WARNING)
@quiet
def frozen_layer(ctx: RuleContext):
    """A layer is frozen (``requires_grad=False`` / ``trainable=False``) while the rest trains.

    What it does
        Lists layers whose parameters do not take part in training. All layers frozen
        is an error: nothing can learn.

    Why is this bad?
        Freezing is right for a pretrained feature extractor, and a common slip
        otherwise: a loop that sets ``requires_grad = False`` on every parameter meant
        for one layer, or ``layer.trainable = False`` left over from fine-tuning. A
        frozen randomly initialised layer is a fixed random projection the rest must
        work around.

    Example
        ``for p in model.parameters(): p.requires_grad = False`` before training the
        whole model; ``base.trainable = False`` on an untrained base.

    Use instead
        Freeze only pretrained layers, on purpose; otherwise remove the line (or set
        ``requires_grad_(True)`` / ``trainable = True``) before building the optimizer
        and compiling.
    """
    facts = _facts(ctx)
    layers = facts.get("layers") or []
    frozen = [str(layer.get("name")) for layer in layers if isinstance(layer, dict) and layer.get("trainable") is False]
    if not frozen:
        return []
    every = len(frozen) == len(layers)
    info = ctx.info.layer(frozen[0])
    return [ctx.finding(
        ("every layer is frozen: nothing can learn" if every else
         f"{', '.join(frozen)} {'is' if len(frozen) == 1 else 'are'} frozen and never learn"),
        severity=Severity.ERROR if every else None, layer=frozen[0],
        location=_loc(getattr(info, "location", None)),
        evidence={"frozen": frozen, "layers": len(layers)})]


# --- ND707 ------------------------------------------------------------------------------------


@rule("ND707", "mode-mixup", Severity.WARNING)
@quiet
def mode_mixup(ctx: RuleContext):
    """The model trains in eval mode (dropout off, batch-norm statistics frozen).

    What it does
        Counts optimizer steps taken while the model holds dropout or batch-norm layers
        and ``model.training`` is False.

    Why is this bad?
        ``model.eval()`` switches dropout off and makes batch norm use its running
        statistics instead of the batch's. Left on while training (typically after an
        evaluation inside the epoch loop), the network trains without its
        regularisation, and batch norm normalises with stale statistics.

    Example
        ``model.eval()`` for a validation pass at the end of epoch 1, and no
        ``model.train()`` at the start of epoch 2.

    Use instead
        Call ``model.train()`` at the start of every training epoch and ``model.eval()``
        (under ``torch.no_grad()``) only around evaluation.
    """
    facts = _facts(ctx)
    count = as_count(facts.get("train_steps_in_eval"))
    if count == 0:
        return []
    steps = max(as_count(ctx.info.steps), 1)
    layers = [str(n) for n in facts.get("mode_sensitive") or []]
    return [ctx.finding(
        f"{count} of {steps} optimizer steps ran with the model in eval mode, "
        f"which changes {', '.join(layers[:3]) or 'its dropout/batch-norm layers'}",
        layer=layers[0] if layers else None, location=_loc(facts.get("optimizer_location")),
        evidence={"train_steps_in_eval": count, "steps": steps, "mode_sensitive": layers})]


# --- ND708 ------------------------------------------------------------------------------------


@rule("ND708", "broadcast-loss", Severity.ERROR)
@quiet
def broadcast_loss(ctx: RuleContext):
    """The loss compares predictions and targets of different shapes, which broadcast.

    What it does
        Flags a regression loss (``MSELoss``, ``L1Loss`` ...) called with prediction and
        target shapes that differ, e.g. ``(n, 1)`` and ``(n,)``: broadcasting turns them
        into an ``(n, n)`` table of every prediction against every target.

    Why is this bad?
        The loss then averages over all pairs, whose minimum is the same prediction for
        every sample: the network learns the mean target and nothing else. torch only
        warns, once, and the script runs on.

    Example
        ``criterion(model(x), y)`` with ``model(x)`` of shape ``(64, 1)`` and ``y`` of
        shape ``(64,)``.

    Use instead
        Make the shapes equal: ``criterion(model(x).squeeze(1), y)`` or
        ``criterion(model(x), y.unsqueeze(1))`` (or ``y.view(-1, 1)``).
    """
    facts = _facts(ctx)
    broadcast = facts.get("broadcast")
    if not isinstance(broadcast, dict):
        return []
    pred, target, result = broadcast.get("pred_shape"), broadcast.get("target_shape"), broadcast.get("result_shape")
    if result is None or list(result) == list(pred or []):
        return []
    return [ctx.finding(
        f"the loss compares predictions of shape {tuple(pred)} with targets of shape {tuple(target)}: "
        f"they broadcast to {tuple(result)}",
        location=_loc(facts.get("loss_call_location")) or _loc(facts.get("loss_location")),
        evidence={"pred_shape": pred, "target_shape": target, "result_shape": result})]


# --- ND709 ------------------------------------------------------------------------------------


@rule("ND709", "missing-nonlinearity", Severity.WARNING)
@quiet
def missing_nonlinearity(ctx: RuleContext):
    """Stacked layers with no activation between them: the whole network is linear.

    What it does
        Flags hidden layers whose activation is the identity (declared linear, or
        identified as computing ``a = z``) in a network of two or more layers.

    Why is this bad?
        A composition of affine maps is one affine map: W2 (W1 x + b1) + b2 = W x + b.
        The extra layers add parameters but no expressive power, so the network cannot
        fit anything a single linear layer cannot (XOR, a curve, ...).

    Example
        ``nn.Sequential(nn.Linear(2, 16), nn.Linear(16, 1))``; ``Dense(16)`` (no
        activation) before the output; in NumPy ``h = X @ W1 + b1`` with no ``np.tanh``.

    Use instead
        Put a nonlinearity after each hidden layer: ``nn.ReLU()`` between the
        ``nn.Linear`` layers, ``Dense(16, activation="relu")``, or ``h = np.tanh(X @ W1 + b1)``.
    """
    layers = ctx.info.layers
    if len(layers) < 2:
        raise Skip("fewer than two layers were recorded")
    hidden = [layer for layer in layers if not layer.is_output]
    linear = [layer for layer in hidden if as_name(layer.activation) and layer.activation.lower() in _LINEAR]
    if not linear:
        return []
    every = len(linear) == len(hidden)
    first = linear[0]
    return [ctx.finding(
        f"{', '.join(layer.name for layer in linear)} {'has' if len(linear) == 1 else 'have'} no activation"
        + (": the whole network is one linear map" if every else ": the layers around it collapse into one"),
        layer=first.name, location=_loc(first.location),
        evidence={"linear_layers": [layer.name for layer in linear], "hidden_layers": len(hidden)})]


# --- ND710 ------------------------------------------------------------------------------------


@rule("ND710", "unscaled-targets", Severity.WARNING)
@quiet
def unscaled_targets(ctx: RuleContext):
    """Regression targets far beyond unit scale.

    What it does
        Flags a regression whose targets reach beyond ``target_scale_max`` in magnitude.
        It is an error when the loss also stayed above ``unscaled_target_fit`` of its
        start: the network did not fit them.

    Why is this bad?
        The output layer starts near 0 and moves by about lr per step (Adam) or by
        lr x gradient, which the huge errors make enormous (SGD): targets in the
        millions are out of reach in any reasonable number of steps, or blow the
        weights up. The loss, in squared target units, is astronomically large and says
        little.

    Example
        Predicting ``x ** 3`` for x up to 4000 (targets to 6.4e10) with ``nn.MSELoss``
        and ``Adam(lr=1e-3)``; house prices in dollars.

    Use instead
        Standardise the targets with the training statistics, ``y_n = (y - y.mean()) /
        y.std()``, train on ``y_n``, and map predictions back with
        ``pred * y.std() + y.mean()`` (scale the inputs too).
    """
    th = ctx.thresholds
    if ctx.info.task == "classification" or ctx.info.loss in ("bce", "ce"):
        return []
    found = events(ctx.trace, "data")
    if not found:
        raise Skip("no facts about the training data were recorded")
    data = payload(found[-1])
    if data.get("target_kind") != "continuous":
        return []
    lo, hi = as_float(data.get("target_min")), as_float(data.get("target_max"))
    scale = max(abs(lo), abs(hi)) if math.isfinite(lo) and math.isfinite(hi) else math.nan
    if not math.isfinite(scale) or scale <= th.target_scale_max:
        return []
    _, loss = finite_series(ctx.trace, "loss")
    fitted = None
    if len(loss) >= 2 and loss[0] > 0:
        fitted = float(np.median(loss[-max(1, len(loss) // 10):]) / loss[0])
    severity = Severity.ERROR if fitted is not None and fitted > th.unscaled_target_fit else None
    where = next((_loc(payload(e).get("loss_location")) for e in events(ctx.trace, "framework")), None)
    return [ctx.finding(
        f"regression targets reach {fmt(scale)} (range {fmt(lo)} to {fmt(hi)}), far beyond unit scale"
        + (f"; the loss ended at {fmt(fitted)} of its start" if fitted is not None else ""),
        severity=severity, location=where,
        evidence={"target_min": lo, "target_max": hi, "target_scale_max": th.target_scale_max,
                  "loss_end_over_start": fitted, "unscaled_target_fit": th.unscaled_target_fit})]
