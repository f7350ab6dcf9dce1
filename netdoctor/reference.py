"""Train a reference :class:`netdoctor.MLP` with probes at every step -> :class:`Trace`.

What a reference run records:

* **step 0** — the network before training: weights, the probe batch's outputs and
  activations, and ``loss`` measured on the probe batch (there is no training
  batch yet);
* **every step** the Recorder keeps (all of them for the first
  ``Thresholds.dense_steps``, thinned later; ``stride`` thins from the start) —
  the batch loss and, per layer, the weights after the step, the gradient used and
  the change applied (:func:`netdoctor.probes.param_stats`);
* at those steps also the **probe batch** (a fixed, class-stratified subset of at
  most ``probe_size`` training samples): outputs, output statistics, accuracy,
  probe loss and per-layer activation statistics. Activation statistics come from
  the probe batch, not from the training batch, so they are comparable across
  steps and meaningful in per-sample training (a batch of one says nothing about
  dead units);
* **on big networks** the two heavy measurements -- the probe-batch forward pass
  and the passes over every parameter, gradient and update array -- would cost
  more than the probes' budget at every step, so there they run at recorded steps
  at least ``outputs_every`` / ``params_every`` steps apart (see
  :func:`auto_schedule`); the loss is still recorded at every kept step, the
  first NaN/Inf is still caught at the step it appears in the loss, and step 0
  and the last step always get everything. Small networks get everything at every
  step;
* **events** — ``data``, ``param_init``/``param_final``, ``function`` (what each
  layer function and hidden derivative actually computes), ``gradcheck`` at
  ``Thresholds.gradcheck_points`` points (start, middle, end), ``nonfinite`` for
  the first NaN/Inf, ``stopped`` when ``max_steps`` ended the run; and, for the
  pictures only, at SNAPSHOTS evenly spaced steps: ``activation_hist`` per layer
  (probe batch) and, when the inputs are 2-D, ``boundary`` (the outputs on a grid).

Probing never changes training: the run uses its own random generator for
sampling, and the gradient check restores every perturbed parameter exactly, so a
probed run ends with the same weights as ``model.fit`` on the same seed.
"""

from __future__ import annotations

import math
import traceback
from typing import Any

import numpy as np

from . import probes
from .config import DEFAULT_THRESHOLDS, Thresholds
from .trace import MODEL, Recorder, Trace
from .types import LayerInfo, RunInfo

# Each heavy measurement (probe-batch forward, parameter statistics) may cost about
# this fraction of a training step on big networks; below PROBE_SMALL_MACS
# multiply-adds of work it always runs (small networks are dominated by Python
# overhead, not arithmetic, and rules see every step).
PROBE_BUDGET = 0.015
PROBE_SMALL_MACS = 1 << 20
# Parameter statistics make about this many passes over each weight entry (weights,
# gradient, update: norms, dot products, sum) ...
PARAM_PASSES = 6
# ... and one memory-bound pass over an entry costs about as much as this many
# multiply-adds of the compute-bound matrix products a training step is made of;
# a small probe batch's forward pass (plus its statistics) runs at about 1/factor of
# the training step's speed per multiply-add. Both measured on the benchmark
# machine (benchmarks/probe_overhead.py).
PASS_COST_MACS = 6
PROBE_FORWARD_FACTOR = 2
# Gradient check: central-difference step, entries perturbed per parameter array,
# and in total (a wrong formula is wrong everywhere; a few entries per array show it).
GRADCHECK_H = 1e-5
GRADCHECK_ENTRIES = 32
GRADCHECK_TOTAL = 48
# Steps (evenly spaced, first and last included) with a decision-boundary grid and
# activation histograms, for pictures; and the grid's resolution and histogram bins.
SNAPSHOTS = 9
HIST_BINS = 24


class _Stop(Exception):
    """Raised inside fit's callback to end a run early (max_steps)."""


def auto_schedule(layers: list[int], probe_rows: int, batch_rows: int) -> tuple[int, int]:
    """(outputs_every, params_every): how many steps apart each heavy measurement
    must be to fit its budget (1 = at every recorded step).

    A training step costs about three forward passes of its batch (forward,
    backward, weight gradient). The probe batch costs one forward of its rows;
    parameter statistics cost PARAM_PASSES memory passes over every weight.
    """
    macs = sum(a * b for a, b in zip(layers[:-1], layers[1:]))
    step_cost = 3.0 * max(batch_rows, 1) * macs
    return (
        _every(PROBE_FORWARD_FACTOR * probe_rows * macs, step_cost),
        _every(PARAM_PASSES * PASS_COST_MACS * macs, step_cost),
    )


def _every(cost: float, step_cost: float) -> int:
    if cost <= PROBE_SMALL_MACS:
        return 1
    return max(1, math.ceil(cost / step_cost / PROBE_BUDGET))


def run_reference(
    model,
    X,
    y,
    epochs: int = 100,
    *,
    name: str = "original",
    thresholds: Thresholds | None = None,
    stride: int = 1,
    probe_size: int = 64,
    max_steps: int | None = None,
    stop_on: str | None = None,
    probe_rows: int = 32,
    outputs_every: int | None = None,
    params_every: int | None = None,
    gradcheck_rows: int = 8,
    **ignored: Any,
) -> Trace:
    """Train `model` on (`X`, `y`) for `epochs` epochs under observation.

    stride         record every `stride`-th step (the last one always)
    probe_size     at most this many training samples in the fixed probe batch
    max_steps      stop after this many updates (status "stopped")
    stop_on        accepted for symmetry with script runs and ignored: a reference
                   run is cheap, and rules judge the finished trace
    probe_rows     activation statistics use at most this many probe-batch rows
    outputs_every  probe-batch forward, and
    params_every   parameter/gradient/update statistics, at recorded steps at least
                   this many steps apart (None = decide from the network's size, see
                   :func:`auto_schedule`; 1 = every recorded step)
    gradcheck_rows the gradient check uses at most this many probe-batch rows

    Unknown keyword options (meant for other observers) are ignored. Invalid data
    shapes raise ValueError (from ``model.prepare``); anything that goes wrong
    while training ends the run as "crashed" with the traceback in ``info.error``.
    """
    run = _ReferenceRun(
        model, X, y, int(epochs), name=name, thresholds=thresholds or DEFAULT_THRESHOLDS,
        stride=stride, probe_size=probe_size, max_steps=max_steps, probe_rows=probe_rows,
        outputs_every=outputs_every, params_every=params_every, gradcheck_rows=gradcheck_rows,
    )
    return run.execute()


class _ReferenceRun:
    def __init__(self, model, X, y, epochs, *, name, thresholds, stride, probe_size, max_steps,
                 probe_rows, outputs_every, params_every, gradcheck_rows):
        self.model = model
        self.epochs = epochs
        self.thresholds = thresholds
        self.max_steps = None if max_steps is None else int(max_steps)
        self.probe_rows = max(int(probe_rows), 1)
        self.X, self.Y = model.prepare(X, y)
        self.n_layers = len(model.weights)
        self.step0 = model.step  # a model trained before still counts this run from 0

        # What the data is, and the fixed probe batch drawn from it.
        last = self.n_layers - 1
        self.data = probes.data_facts(self.X, y, self.Y, model.layer_function(last), model.layers[-1])
        labels = probes.class_labels(self.Y, self.data["target_kind"])
        idx = probes.probe_batch_indices(labels, len(self.X), probe_size)
        self.Xp, self.Yp = self.X[idx], self.Y[idx]
        self.classification = _is_classification(model, self.data["target_kind"])
        self.threshold = 0.5 * (self.data["target_min"] + self.data["target_max"])

        batch_rows = len(self.X) if model.batch_size is None else min(model.batch_size, len(self.X))
        batches_per_epoch = -(-len(self.X) // batch_rows)
        self.planned_steps = epochs * batches_per_epoch
        # max_steps only "stops" a run it actually cuts short.
        self.stop_at = None
        if self.max_steps is not None and self.max_steps < self.planned_steps:
            self.stop_at = self.planned_steps = max(self.max_steps, 0)
        auto_outputs, auto_params = auto_schedule(model.layers, len(self.Xp), batch_rows)
        self.outputs_every = auto_outputs if outputs_every is None else max(int(outputs_every), 1)
        self.params_every = auto_params if params_every is None else max(int(params_every), 1)
        points = max(int(thresholds.gradcheck_points), 1)
        self.gradcheck_steps = sorted(
            {round(self.planned_steps * i / (points - 1)) for i in range(points)} if points > 1 else {0}
        )
        self.gradcheck_rows = max(int(gradcheck_rows), 1)
        self._gradchecked: set[int] = set()
        self.snapshot_steps = {round(self.planned_steps * i / (SNAPSHOTS - 1)) for i in range(SNAPSHOTS)}
        self._snapshotted: set[int] = set()
        self._grid = probes.input_grid(self.X) if self.X.shape[1] == 2 else None

        self.info = self._describe(name, batch_rows)
        self.recorder = Recorder(thresholds.dense_steps, thresholds.max_recorded_steps, stride)
        self.trace = Trace(self.info, self.recorder, probe_inputs=self.Xp, probe_targets=self.Yp)
        self._last_outputs = self._last_params = -(10**18)  # steps of the last heavy measurements
        self._pending = None           # (step, StepState) of the newest unrecorded step
        self._nonfinite_seen = False
        self._last_step = 0

    # -- the run -------------------------------------------------------------------------
    def execute(self) -> Trace:
        model, trace = self.model, self.trace
        with np.errstate(all="ignore"):  # overflow/NaN are findings here, not warnings
            trace.add_event("data", self.data)
            self._param_events("param_init")
            self._function_events()
            self._gradcheck(0)
            self._snapshot(0)
            self._record(0, None)
            try:
                if self.stop_at == 0:
                    raise _Stop
                model.fit(self.X, self.Y, self.epochs, callback=self._on_step)
            except _Stop:
                self.info.status = "stopped"
                self.info.stop_reason = f"max_steps={self.max_steps}"
                trace.add_event("stopped", {"reason": self.info.stop_reason, "step": self._last_step})
            except Exception as exc:  # noqa: BLE001 - a crash is a result, the trace survives
                self.info.status = "crashed"
                self.info.error = "".join(traceback.format_exception(exc))
            self._finish()
        return trace

    def _on_step(self, state) -> None:
        step = state.step - self.step0
        self._last_step = step
        if not self._nonfinite_seen and not math.isfinite(state.loss):
            self._name_first_nonfinite(step, state)
        final = step == self.planned_steps
        if final or self.recorder.wants(step):
            self._record(step, state, final=final)
            self._pending = None
        else:
            self._pending = (step, state)
        if step in self.gradcheck_steps:
            self._gradcheck(step)
        if step in self.snapshot_steps:
            self._snapshot(step)
        if self.stop_at is not None and step >= self.stop_at:
            raise _Stop

    def _finish(self) -> None:
        if self._pending is not None:  # the last step is always recorded
            self._record(*self._pending, final=True)
            self._pending = None
        if self._last_step not in self._gradchecked:
            self._gradcheck(self._last_step)
        self._snapshot(self._last_step)
        self._param_events("param_final")
        self.info.steps = self._last_step

    # -- series ----------------------------------------------------------------------------
    def _record(self, step: int, state, final: bool = False) -> None:
        values: dict[tuple[str, str], float] = {}
        if state is not None:
            values[(MODEL, "loss")] = float(state.loss)
        if final or step - self._last_params >= self.params_every:
            self._last_params = step
            self._param_stats(state, values)
        outputs = None
        if final or step - self._last_outputs >= self.outputs_every:
            self._last_outputs = step
            outputs = self._probe_batch(values)
            if state is None:  # step 0: no training batch yet, the probe batch stands in
                values[(MODEL, "loss")] = values.get((MODEL, "probe_loss"), math.nan)
        loss_bad = 0.0 if math.isfinite(values.get((MODEL, "loss"), 0.0)) else 1.0
        values[(MODEL, "nonfinite")] = values.get((MODEL, "nonfinite"), 0.0) + loss_bad

        if not self._nonfinite_seen and any(
            v > 0 for (_, q), v in values.items() if q == "nonfinite"
        ):
            self._name_first_nonfinite(step, state, values)
        self.recorder.record(step, values, outputs)

    def _param_stats(self, state, values: dict) -> None:
        """Weights after the step, gradients used, changes applied: per layer and overall."""
        model = self.model
        sums = []
        for l, name in enumerate(model.layer_names):
            stats, layer_sums = probes.param_stats(
                name, model.weights[l], model.biases[l],
                grad_w=None if state is None else state.grads.dW[l],
                grad_b=None if state is None else state.grads.db[l],
                delta_w=None if state is None else state.updates.dW[l],
                delta_b=None if state is None else state.updates.db[l],
            )
            values.update(stats)
            sums.append(layer_sums)
        values.update(probes.model_param_stats(sums))

    def _probe_batch(self, values: dict) -> np.ndarray:
        """Forward the probe batch: outputs, output stats, activation stats."""
        model, t = self.model, self.thresholds
        fwd = model.forward(self.Xp)
        last = self.n_layers - 1
        for l, name in enumerate(model.layer_names):
            stats = probes.activation_stats(
                name, fwd.zs[l], fwd.acts[l + 1], model.declared_activation(l),
                saturation_z=t.saturation_z, dead_active_frac=t.dead_active_frac,
                max_rows=self.probe_rows, hidden=l < last,
            )
            # A layer's NaN/Inf count covers its parameters AND its activations.
            key = (name, "nonfinite")
            stats[key] = stats.get(key, 0.0) + values.get(key, 0.0)
            values.update(stats)
        try:
            probe_loss = float(model.loss_of(fwd.out, self.Yp))
        except Exception:  # noqa: BLE001 - a loss that cannot be computed is NaN
            probe_loss = math.nan
        values.update(
            probes.output_stats(
                fwd.out, self.Yp, loss=probe_loss,
                classification=self.classification, threshold=self.threshold,
            )
        )
        return fwd.out

    # -- events ------------------------------------------------------------------------------
    def _param_events(self, kind: str) -> None:
        model = self.model
        for l, name in enumerate(model.layer_names):
            summary = probes.param_summary(
                model.weights[l], model.biases[l],
                activation=model.declared_activation(l), atol=self.thresholds.symmetric_atol,
            )
            step = 0 if kind == "param_init" else self._last_step
            self.trace.add_event(kind, summary, step=step, layer=name)

    def _function_events(self) -> None:
        from . import identify

        model = self.model
        last = self.n_layers - 1
        for l, name in enumerate(model.layer_names):
            declared = model.declared_activation(l)
            role = "output" if l == last else "hidden"
            self.trace.add_event(
                "function", _function_payload(identify, model.layer_function(l), role, declared),
                layer=name,
            )
            if l < last:  # the output layer's backprop goes through the output delta instead
                self.trace.add_event(
                    "function",
                    _function_payload(identify, model.derivative_function(l), "derivative", declared),
                    layer=name,
                )

    def _gradcheck(self, step: int) -> None:
        """Backprop's gradients vs central differences of the network's own loss."""
        from . import gradcheck

        if step in self._gradchecked:
            return
        self._gradchecked.add(step)
        model = self.model
        Xg, Yg = self.Xp[: self.gradcheck_rows], self.Yp[: self.gradcheck_rows]
        params = model.params()
        try:
            claimed = model.gradients(Xg, Yg)
            checks = gradcheck.check(
                [p for _, _, p in params], lambda: model.loss_at(Xg, Yg), claimed,
                h=GRADCHECK_H, rng=np.random.default_rng(step),
                max_entries=max(4, min(GRADCHECK_ENTRIES, GRADCHECK_TOTAL // max(len(params), 1))),
            )
        except Exception as exc:  # noqa: BLE001 - report, do not end the run
            self.trace.add_event("gradcheck", {"loss_kind": model.loss, "error": repr(exc)}, step=step)
            return
        rows = [
            {
                "layer": layer, "param": kind, "rel_err": float(c.rel_err),
                "cosine": float(c.cosine), "scale": float(c.scale), "n_checked": int(c.n_checked),
            }
            for (layer, kind, _), c in zip(params, checks)
        ]
        self.trace.add_event(
            "gradcheck",
            {"loss_kind": model.loss, "reduction": "mean", "h": GRADCHECK_H, "n_samples": len(Xg),
             "params": rows},
            step=step,
        )

    def _snapshot(self, step: int) -> None:
        """Pictures' raw material: activation histograms and the decision boundary."""
        if step in self._snapshotted:
            return
        self._snapshotted.add(step)
        try:
            self._draw_material(step)
        except Exception:  # noqa: BLE001 - pictures are optional; never end a run for them
            pass

    def _draw_material(self, step: int) -> None:
        model = self.model
        fwd = model.forward(self.Xp)
        for l, name in enumerate(model.layer_names):
            hist = probes.histogram(fwd.acts[l + 1], HIST_BINS)
            if hist is not None:
                self.trace.add_event("activation_hist", hist, step=step, layer=name)
        if self._grid is None:
            return
        xx, yy = self._grid
        out = model.forward(np.column_stack([xx.ravel(), yy.ravel()])).out
        if out.shape[1] == 1:
            score, level = out[:, 0], self.threshold
        elif out.shape[1] == 2:
            score, level = out[:, 1], 0.5
        else:
            score, level = np.argmax(out, axis=1).astype(float), None
        data = {"step": step, "xx": xx, "yy": yy, "zz": score.reshape(xx.shape)}
        if level is not None:
            data["level"] = level
        self.trace.add_event("boundary", data, step=step)

    def _name_first_nonfinite(self, step: int, state, values: dict | None = None) -> None:
        """Name the first tensor holding NaN/Inf, in the order the step computed them.

        The step's own arrays (training batch, gradients, update, weights) come
        first; when they are all finite, the probe batch is the culprit: its inputs,
        else its first layer with NaN/Inf activations, else its loss ("batch": "probe").
        """
        self._nonfinite_seen = True
        tensor, batch = _first_nonfinite_tensor(self.model, state), "training"
        if tensor is None:
            batch = "probe"
            bad = [layer for (layer, q), v in (values or {}).items()
                   if q == "nonfinite" and v > 0 and layer != MODEL]
            if probes.count_nonfinite(self.Xp):
                tensor = "input"
            else:
                tensor = f"{bad[0]}.a" if bad else "loss"
        layer = tensor.split(".")[0] if tensor.split(".")[0] in self.model.layer_names else None
        self.trace.add_event("nonfinite", {"tensor": tensor, "step": step, "batch": batch},
                             step=step, layer=layer)

    # -- facts ---------------------------------------------------------------------------------
    def _describe(self, name: str, batch_rows: int) -> RunInfo:
        model = self.model
        last = self.n_layers - 1
        layers = [
            LayerInfo(
                name=lname,
                fan_in=int(model.weights[l].shape[0]),
                fan_out=int(model.weights[l].shape[1]),
                activation=model.declared_activation(l),
                has_bias=model.biases[l] is not None,
                is_output=l == last,
                param_names=(f"{lname}.weight",) + ((f"{lname}.bias",) if model.biases[l] is not None else ()),
            )
            for l, lname in enumerate(model.layer_names)
        ]
        out_units = int(model.layers[-1])
        return RunInfo(
            name=name,
            status="completed",
            source="reference",
            layers=layers,
            loss=model.loss,
            output=model.output,
            n_classes=(out_units if out_units > 1 else 2) if self.classification else None,
            task="classification" if self.classification else "regression",
            extra={
                "lr": model.lr,
                "optimizer": model.optimizer,
                "batch_size": model.batch_size,
                "batch_rows": batch_rows,
                "epochs": self.epochs,
                "faults": list(model.faults),
                "init": model.init,
                "seed": model.seed,
                "layer_sizes": list(model.layers),
                "planned_steps": self.planned_steps,
                "probe_size": len(self.Xp),
                "outputs_every": self.outputs_every,
                "params_every": self.params_every,
                "gradcheck_steps": list(self.gradcheck_steps),
            },
        )


def _is_classification(model, target_kind: str) -> bool:
    """Classification when the loss or output says so, or the targets are classes."""
    if model.loss in ("bce", "ce") or model.output == "softmax":
        return True
    if target_kind in ("labels", "onehot"):
        return True
    return target_kind == "binary" and model.output == "sigmoid"


def _function_payload(identify, func, role: str, declared: str) -> dict[str, Any]:
    """The "function" event for one callable: what it is vs what it was declared as."""
    ident = identify.identify_callable(func, role)
    return {
        "role": role,
        "declared": declared,
        "identified": ident.identified,
        "max_err": _float(ident.max_err),
        "declared_err": _declared_error(ident, declared),
        "f0": _float(ident.f0),
        "range": None if ident.range is None else [_float(v) for v in ident.range],
        "mistake": bool(ident.mistake),
        "description": ident.description,
        "fix": ident.fix,
        "samples": [[_float(z), _float(a)] for z, a in getattr(ident, "samples", ())],
    }


def _declared_error(ident, declared: str) -> float | None:
    """The identification's max error against the declared function (None if not compared)."""
    candidates = getattr(ident, "candidates", None) or {}
    err = candidates.get(declared)
    return None if err is None else _float(err)


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _first_nonfinite_tensor(model, state) -> str | None:
    """Walk the step's arrays in computation order; the first with NaN/Inf names the tensor."""
    names = model.layer_names
    ordered: list[tuple[str, Any]] = []
    if state is not None:
        ordered.append(("input", state.X))
        for l, name in enumerate(names):  # forward
            ordered += [(f"{name}.z", state.fwd.zs[l]), (f"{name}.a", state.fwd.acts[l + 1])]
        ordered.append(("loss", np.asarray(state.loss)))
        for l in reversed(range(len(names))):  # backward, output side first
            ordered.append((f"{names[l]}.delta", state.grads.deltas[l]))
        for l, name in enumerate(names):  # gradients, then the update
            ordered += [(f"{name}.grad", state.grads.dW[l]), (f"{name}.bias_grad", state.grads.db[l])]
        for l, name in enumerate(names):
            ordered += [(f"{name}.update", state.updates.dW[l]), (f"{name}.bias_update", state.updates.db[l])]
    ordered += [(f"{names[l]}.weight", W) for l, W in enumerate(model.weights)]
    ordered += [(f"{names[l]}.bias", b) for l, b in enumerate(model.biases) if b is not None]
    for tensor, arr in ordered:
        if arr is not None and probes.count_nonfinite(arr):
            return tensor
    return None
