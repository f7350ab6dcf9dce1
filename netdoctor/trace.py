"""Trace: what happened during one training run, in bounded memory.

A trace holds three kinds of record:

* **series** — one number per (step, layer, quantity), e.g. the gradient norm of
  ``layer2`` at step 40. The vocabulary is fixed (:data:`QUANTITIES`) so that rules
  and plots written against it work whichever observer produced the trace.
* **outputs** — the network's outputs on a fixed *probe batch* at each recorded step,
  an array ``(recorded steps, probe samples, output units)``; what "pinned at 0.5"
  and decision-boundary pictures are made from.
* **events** — one-off results of active probes (a gradient check, the identity of a
  user's activation function, statistics of the initial weights, the data).

Memory is bounded however long the run: the first ``dense_steps`` steps are kept
at full resolution (most failures show early), later ones are thinned by doubling
a stride whenever the store is full. With the defaults (4,096 recorded steps) a
run of 10**6 steps of a 3-layer network keeps about 4,096 x (45 series + probe
outputs) float64 values, under 2 MB; see ``tests/test_trace.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

from .types import Location, RunInfo

MODEL = "model"  # the `layer` of whole-network quantities

# The fixed vocabulary of series. Per-layer quantities use the layer's name
# ("layer1", ...); whole-network ones use MODEL.
QUANTITIES: dict[str, str] = {
    # whole network
    "loss": "training loss of the batch used for the step",
    "probe_loss": "loss on the fixed probe batch (comparable across steps, unlike per-sample loss)",
    "accuracy": "fraction of the probe batch predicted correctly (classification only)",
    "out_mean": "mean output over the probe batch",
    "out_std": "std of the outputs across probe samples, averaged over output units",
    "out_min": "smallest output on the probe batch",
    "out_max": "largest output on the probe batch",
    # per layer (MODEL too for the norms: over all parameters)
    "act_mean": "mean activation",
    "act_std": "std of activations",
    "z_abs_mean": "mean |pre-activation|",
    "sat_frac": "fraction of pre-activations with |z| >= Thresholds.saturation_z",
    "dead_frac": "fraction of units active in < Thresholds.dead_active_frac of the batch",
    "grad_norm": "L2 norm of the weight gradient used for the step",
    "grad_abs_mean": "mean |weight gradient|",
    "bias_grad_norm": "L2 norm of the bias gradient",
    "weight_norm": "L2 norm of the weights after the step",
    "weight_std": "std of the weights after the step",
    "bias_norm": "L2 norm of the bias after the step",
    "update_norm": "L2 norm of the weight change made by the step",
    "bias_update_norm": "L2 norm of the bias change made by the step",
    "update_ratio": "update_norm / weight_norm before the step",
    "update_cos": "cosine between the weight change and minus the gradient (1 = steepest descent)",
    "nonfinite": "count of NaN/Inf values in the layer's arrays (or loss/outputs for MODEL)",
}

# Event kinds (one-off measurements) and the keys of their `data`. Producers
# (reference runner, script observer) fill what they can; rules Skip when a key
# they need is missing. Layers are named as in RunInfo.layers, forward order.
EVENT_KINDS: dict[str, str] = {
    # step None. Raw facts about the training data as the model receives it.
    "data": "n_samples, n_features, x_abs_mean, x_abs_max, x_std, y_shape (list), "
    "target_kind ('labels'|'onehot'|'binary'|'continuous'), target_min, target_max, "
    "classes (sorted distinct labels, or None), out_units, "
    "output_range ([lo, hi] the output function actually reaches on z in [-30, 30]), "
    "targets_outside (fraction of target values outside output_range, 1e-6 tolerance); "
    "from code netdoctor observed also: inputs, targets (the arrays' names), target_encoding "
    "('as_is'|'onehot': how the code's gradients use the targets), labels_broadcast (bool: a "
    "column of labels is compared with several output units, as numpy broadcasts it)",
    # layer set; before the first update / after the last.
    "param_init": "w_min, w_max, w_mean, w_std, fan_in, fan_out, activation, has_bias, "
    "b_min, b_max, b_std, duplicate_units (units whose incoming weights and bias equal "
    "another unit's within Thresholds.symmetric_atol)",
    "param_final": "same keys as param_init, after training",
    # layer set; location = the user function when known.
    "function": "role ('hidden'|'output'|'derivative'), declared (name or None), "
    "identified (best catalogue match or None), max_err (vs identified), "
    "declared_err (vs declared, or None), f0 (value at z=0), range ([lo, hi] on the grid), "
    "mistake (bool: identified is a known mistake), description, fix; for a derivative seen in "
    "user code also given (what it was applied to: 'pre-activation', 'activation', or read from the deltas)",
    # step set; one event per check.
    "gradcheck": "loss_kind ('mse'|'bce'|'ce' + reduction), h, params: list of "
    "{layer, param ('weight'|'bias'), rel_err, cosine, scale, n_checked} in forward order; "
    "for user code also reduction, n_samples, claimed ('gradients'|'updates'), targets, "
    "lr_fit (the learning rate fitted to the updates), and each param's name in the code",
    "nonfinite": "tensor (e.g. 'loss', 'layer2.z', 'layer1.grad'), step: the first NaN/Inf seen; "
    "batch ('training', or 'probe' when only the probe batch's forward pass overflowed)",
    "roles": "params, gradients, activations (lists of names), ambiguous (list of str), how_to_name",
    # step None. What a framework (torch, keras) said about the model; the ND7 rules read it.
    "framework": "framework ('torch'|'keras'), model, layers (list of {name, kind, units, fan_in, "
    "activation, trainable}), output_activation, output_units, loss_fn (the framework's name), "
    "loss_kind ('mse'|'bce'|'ce'|None), from_logits (the loss applies its own softmax/sigmoid), "
    "loss_location, optimizer, optimizer_location, batch_rows, target_min, target_max, y_shape; "
    "torch also: backward_calls, backward_location, optimizer_steps, manual_updates, grad_checked, grad_stale "
    "(checks after an update that found .grad still non-zero), params_outside_optimizer, frozen, "
    "train_steps_in_eval, mode_sensitive, pred_shape, target_shape, broadcast, "
    "ce_input_is_probability, bce_input_range",
    "stopped": "reason, step",
    "loss_source": "name (the code's variable holding its loss), kind ('mse'|'bce'|'ce'), reduction "
    "('sum'|'mean'|'mean_all'|'half_sum'|...): the loss netdoctor judges is the code's own",
    # Optional, for pictures only (netdoctor.render.plots draws them; no rule reads them).
    # step set; 2-D inputs only. The model's score on a grid at that step.
    "boundary": "step, xx, yy (2-D np.meshgrid of the two input features), zz (same shape: "
    "probability of class 1 — sigmoid output or unit 1 of a 2-unit output — or the predicted "
    "class index for more classes), level (optional decision threshold, default 0.5)",
    # step and layer set. A histogram of the layer's activations at that step.
    "activation_hist": "edges (n + 1 bin edges), counts (n counts)",
}


@dataclass
class Event:
    kind: str
    step: int | None = None
    layer: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    location: Location | None = None


class Recorder:
    """Append-only store of per-step numbers with bounded memory.

    Call :meth:`wants` first to skip computing statistics for a step that would
    not be kept; then :meth:`record` the values (and optionally the probe-batch
    outputs). Columns are created on first sight; a column missing at a step is NaN.
    """

    def __init__(self, dense_steps: int = 2048, max_recorded: int = 4096, stride: int = 1):
        if stride < 1:
            raise ValueError("stride must be >= 1")
        self.stride = int(stride)
        self.dense_steps = int(dense_steps)
        head_rows = -(-self.dense_steps // self.stride)
        # Keep at least as many thinned rows as dense ones, so thinning has room.
        self.max_recorded = max(int(max_recorded), 2 * head_rows + 2)
        self._tail_stride = self.stride
        self._columns: dict[tuple[str, str], int] = {}
        self._steps = np.empty(0, dtype=np.int64)
        self._values = np.empty((0, 0))
        self._outputs: np.ndarray | None = None
        self._n = 0
        self.last_step: int | None = None

    # -- writing ---------------------------------------------------------------
    def wants(self, step: int) -> bool:
        if step < self.dense_steps:
            return step % self.stride == 0
        return step % self._tail_stride == 0

    def record(
        self,
        step: int,
        values: Mapping[tuple[str, str], float],
        outputs: np.ndarray | None = None,
    ) -> None:
        """Store one row. A caller may record a step `wants` declined (e.g. the last)."""
        if self._n and step <= self._steps[self._n - 1]:
            raise ValueError(f"steps must increase: {step} after {self._steps[self._n - 1]}")
        if self._n == len(self._steps):
            self._make_room()
        row = self._n
        self._steps[row] = step
        for key, value in values.items():
            col = self._columns.get(key)
            if col is None:
                col = self._add_column(key)
            self._values[row, col] = value
        if outputs is not None:
            self._store_outputs(row, np.asarray(outputs, dtype=float))
        self._n += 1
        self.last_step = step

    def _add_column(self, key: tuple[str, str]) -> int:
        col = len(self._columns)
        self._columns[key] = col
        grown = np.full((self._values.shape[0], col + 1), np.nan)
        grown[:, :col] = self._values
        self._values = grown
        return col

    def _store_outputs(self, row: int, outputs: np.ndarray) -> None:
        if outputs.ndim == 1:
            outputs = outputs[:, None]
        if self._outputs is None or self._outputs.shape[1:] != outputs.shape:
            if self._outputs is not None:
                return  # a different probe shape mid-run: keep the first, drop the odd one
            self._outputs = np.full((len(self._steps),) + outputs.shape, np.nan)
        self._outputs[row] = outputs

    def _make_room(self) -> None:
        if len(self._steps) < self.max_recorded:
            size = min(self.max_recorded, max(64, 2 * len(self._steps)))
            self._resize(size)
            return
        # Full: drop every other thinned row (dense head untouched) and double the stride,
        # so that `wants` keeps matching what is left.
        steps = self._steps[: self._n]
        tail = steps >= self.dense_steps
        n_tail = int(tail.sum())
        on_grid = steps % (2 * self._tail_stride) == 0
        kept = int((tail & on_grid).sum())
        if n_tail // 3 <= kept <= (2 * n_tail) // 3 + 1:
            self._tail_stride *= 2
            keep = ~tail | on_grid
        else:
            # Rows recorded off the stride grid (a caller that ignores `wants`): thinning by
            # step number would keep almost all or almost none, so keep every other by position.
            keep = ~tail
            keep[np.flatnonzero(tail)[::2]] = True
        keep[self._n - 1] = True  # the newest row stays: it is the current state
        idx = np.flatnonzero(keep)
        n = len(idx)
        self._steps[:n] = self._steps[idx]
        self._values[:n] = self._values[idx]
        if self._outputs is not None:
            self._outputs[:n] = self._outputs[idx]
        self._n = n
        # Freed rows still hold the moved-away values; a later row that omits a
        # column (or the outputs) must read NaN, not a stale number.
        self._values[n:] = np.nan
        if self._outputs is not None:
            self._outputs[n:] = np.nan
        if self._n == len(self._steps):  # nothing could be dropped (pathological strides)
            self._resize(len(self._steps) + 64)

    def _resize(self, size: int) -> None:
        steps = np.empty(size, dtype=np.int64)
        steps[: self._n] = self._steps[: self._n]
        values = np.full((size, self._values.shape[1]), np.nan)
        values[: self._n] = self._values[: self._n]
        self._steps, self._values = steps, values
        if self._outputs is not None:
            outputs = np.full((size,) + self._outputs.shape[1:], np.nan)
            outputs[: self._n] = self._outputs[: self._n]
            self._outputs = outputs

    # -- reading ---------------------------------------------------------------
    @property
    def steps(self) -> np.ndarray:
        return self._steps[: self._n]

    def keys(self) -> list[tuple[str, str]]:
        return list(self._columns)

    def column(self, layer: str, quantity: str) -> np.ndarray | None:
        col = self._columns.get((layer, quantity))
        return None if col is None else self._values[: self._n, col]

    @property
    def outputs(self) -> np.ndarray | None:
        return None if self._outputs is None else self._outputs[: self._n]

    @property
    def nbytes(self) -> int:
        size = self._steps.nbytes + self._values.nbytes
        return size + (0 if self._outputs is None else self._outputs.nbytes)


class Trace:
    """One run: facts (:class:`RunInfo`), series, probe-batch outputs and events."""

    def __init__(
        self,
        info: RunInfo,
        recorder: Recorder | None = None,
        events: Iterable[Event] = (),
        probe_inputs: np.ndarray | None = None,
        probe_targets: np.ndarray | None = None,
    ):
        self.info = info
        self.recorder = recorder if recorder is not None else Recorder()
        self.events: list[Event] = list(events)
        self.probe_inputs = probe_inputs
        self.probe_targets = probe_targets

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def steps(self) -> np.ndarray:
        return self.recorder.steps

    @property
    def layers(self) -> list[str]:
        """Layer names in forward order (input side first)."""
        if self.info.layers:
            return [layer.name for layer in self.info.layers]
        seen: dict[str, None] = {}
        for layer, _ in self.recorder.keys():
            if layer != MODEL:
                seen.setdefault(layer)
        return list(seen)

    def has(self, quantity: str, layer: str = MODEL) -> bool:
        values = self.recorder.column(layer, quantity)
        return values is not None and bool(np.isfinite(values).any() or np.isnan(values).any())

    def series(self, quantity: str, layer: str = MODEL) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of one series; empty arrays when it was never recorded."""
        values = self.recorder.column(layer, quantity)
        if values is None:
            return np.empty(0, dtype=np.int64), np.empty(0)
        return self.steps, values

    @property
    def outputs(self) -> np.ndarray | None:
        """Probe-batch outputs, shape (recorded steps, probe samples, output units)."""
        return self.recorder.outputs

    def add_event(
        self,
        kind: str,
        data: Mapping[str, Any] | None = None,
        *,
        step: int | None = None,
        layer: str | None = None,
        location: Location | None = None,
    ) -> Event:
        event = Event(kind=kind, step=step, layer=layer, data=dict(data or {}), location=location)
        self.events.append(event)
        return event

    def events_of(self, kind: str) -> list[Event]:
        return [event for event in self.events if event.kind == kind]

    def frame(self):
        """The tidy frame: one row per (run, step, layer, quantity, value)."""
        import pandas as pd

        steps = self.steps
        pieces = []
        for (layer, quantity), col in self.recorder._columns.items():
            values = self.recorder._values[: len(steps), col]
            present = ~np.isnan(values) | (quantity == "loss")  # a NaN loss is information
            pieces.append(
                pd.DataFrame(
                    {
                        "run": self.name,
                        "step": steps[present],
                        "layer": layer,
                        "quantity": quantity,
                        "value": values[present],
                    }
                )
            )
        if not pieces:
            return pd.DataFrame(columns=["run", "step", "layer", "quantity", "value"])
        return pd.concat(pieces, ignore_index=True)

    def outputs_frame(self):
        """Probe-batch outputs as a tidy frame: run, step, sample, unit, value."""
        import pandas as pd

        outputs = self.outputs
        if outputs is None:
            return pd.DataFrame(columns=["run", "step", "sample", "unit", "value"])
        n_steps, n_samples, n_units = outputs.shape
        return pd.DataFrame(
            {
                "run": self.name,
                "step": np.repeat(self.steps, n_samples * n_units),
                "sample": np.tile(np.repeat(np.arange(n_samples), n_units), n_steps),
                "unit": np.tile(np.arange(n_units), n_steps * n_samples),
                "value": outputs.reshape(-1),
            }
        )

    def __repr__(self) -> str:
        return (
            f"<Trace {self.name!r}: {self.info.status}, {self.info.steps} steps, "
            f"{len(self.steps)} recorded, {len(self.events)} events>"
        )
