"""One framework training run, framework-neutral: what to measure when, and the Trace.

The torch and Keras watchers decide *how* to read a model; this class decides
*what* a run records and builds the :class:`netdoctor.trace.Trace`, in the same
vocabulary as the reference MLP (:mod:`netdoctor.reference`):

* step 0 is the network before its first update (weights, probe-batch outputs and
  activations, the first loss);
* step k is the network after update k: batch loss, weights, the gradient used,
  the change applied, and at scheduled steps the probe batch's outputs and
  per-layer activation statistics;
* the heavy measurements follow :func:`netdoctor.reference.auto_schedule` (the
  "automatic schedule"): on big networks they run a few steps apart so that
  observing costs a small fraction of training;
* events: ``data``, ``param_init``/``param_final`` and ``framework`` (what the
  framework itself said about the model: layers, loss, optimizer, how gradients
  were handled), which the ND7 rules read.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from typing import Any, Sequence

import numpy as np

from .. import probes
from ..config import DEFAULT_THRESHOLDS, Thresholds
from ..trace import MODEL, Recorder, Trace
from ..types import LayerInfo, Location, RunInfo

PROBE_SIZE = 64
DATA_ROWS = 8192
PROBE_ROWS = 32
OBSERVE_BUDGET = 0.015

# Output functions by the name a framework gives them, for the data event's reachability.
_OUTPUT_FUNCTIONS = {
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
    "linear": lambda z: z,
    "softmax": lambda z: np.exp(z - z.max(axis=1, keepdims=True))
    / np.exp(z - z.max(axis=1, keepdims=True)).sum(axis=1, keepdims=True),
}


_UNBOUNDED = {"linear": (-math.inf, math.inf), "relu": (0.0, math.inf), "leaky_relu": (-math.inf, math.inf)}


def data_rows(n: int) -> np.ndarray | None:
    """The rows of an `n`-row data set its facts are taken from (None: all of them).

    Evenly spaced rows keep the cost fixed whatever the data set's size (a class rarer
    than 1 in DATA_ROWS may be missed in `classes`).
    """
    if n <= DATA_ROWS:
        return None
    return np.linspace(0, n - 1, DATA_ROWS).round().astype(int)


def output_function(name: str | None):
    return _OUTPUT_FUNCTIONS.get((name or "").lower())


class FrameworkSession:
    """Collects one framework run and turns it into a Trace."""

    def __init__(self, name: str, framework: str, thresholds: Thresholds | None = None):
        self.thresholds = thresholds or DEFAULT_THRESHOLDS
        t = self.thresholds
        self.info = RunInfo(name=name, status="completed", source=framework)
        self.info.extra["framework"] = framework
        self.recorder = Recorder(t.dense_steps, t.max_recorded_steps, 1)
        self.trace = Trace(self.info, self.recorder)
        self.facts: dict[str, Any] = {"framework": framework}
        self.outputs_every = 1
        self.params_every = 1
        self._last_outputs = self._last_params = -(10**18)
        self.steps = 0
        self.classification = False
        self.threshold = 0.5
        self._data_done = False
        self._cost: dict[str, float] = {}
        self._cost_in_step: dict[str, float] = {}
        self._step_seconds: float | None = None
        self._last_tick: float | None = None
        self._spent_in_step = 0.0

    # -- what the model is -----------------------------------------------------------------
    def describe(self, layers: Sequence[LayerInfo], *, loss: str | None, output: str | None,
                 batch_rows: int | None, sizes: Sequence[int] | None = None) -> None:
        from ..reference import auto_schedule

        info = self.info
        info.layers = list(layers)
        info.loss, info.output = loss, output
        if sizes and len(sizes) >= 2:
            self.outputs_every, self.params_every = auto_schedule(list(sizes), PROBE_ROWS, batch_rows or 1)
        info.extra.update(outputs_every=self.outputs_every, params_every=self.params_every,
                          batch_rows=batch_rows, layer_sizes=list(sizes or ()))

    def set_data(self, X: Any, y_raw: Any, Y: Any, out_units: int, idx: Any = None) -> np.ndarray:
        """The data event and the probe batch (rows `idx` of X, or chosen here); returns the rows."""
        X = np.asarray(X)
        rows = data_rows(len(X)) if idx is None else None
        if rows is not None:
            # The rows are taken before any conversion, which would copy the whole set.
            y_raw = np.asarray(y_raw)
            if y_raw.ndim and len(y_raw) == len(X):
                y_raw = y_raw[rows]
            X, Y = X[rows], np.asarray(Y)[rows]
        else:
            rows = None
        X = np.asarray(X, dtype=float)
        Y = probes.as_rows(Y)
        output = self.info.output
        facts = probes.data_facts(X, y_raw, Y, output_function(output), out_units)
        unbounded = _UNBOUNDED.get((output or "").lower())
        if unbounded is not None:
            # a linear (or relu) output layer reaches any value the weights allow, not only
            # what the function does on the z-grid the catalogue sweeps
            facts["output_range"] = list(unbounded)
            facts["targets_outside"] = probes.targets_outside(Y, *unbounded)
        self.trace.add_event("data", facts)
        kind = facts["target_kind"]
        loss = self.info.loss
        self.classification = loss in ("bce", "ce") or output == "softmax" or kind in ("onehot", "labels")
        if kind == "continuous" and loss not in ("bce", "ce"):
            self.classification = False
        n_classes = out_units if out_units > 1 else 2
        self.info.task = "classification" if self.classification else "regression"
        self.info.n_classes = n_classes if self.classification else None
        self.threshold = 0.5 * (facts["target_min"] + facts["target_max"]) if math.isfinite(
            facts["target_min"] + facts["target_max"]) else 0.5
        labels = probes.class_labels(Y, kind) if self.classification else None
        if idx is None:
            idx = probes.probe_batch_indices(labels, len(X), PROBE_SIZE)
        self.trace.probe_inputs, self.trace.probe_targets = X[idx], Y[idx]
        self._data_done = True
        return idx if rows is None else rows[idx]   # rows of the caller's X

    # -- the schedule ----------------------------------------------------------------------------
    def wants(self, step: int, final: bool = False) -> bool:
        return final or self.recorder.wants(step)

    # Set by a caller that wants a fixed schedule (1 = every recorded step): no timing then.
    fixed_outputs_every: int | None = None
    fixed_params_every: int | None = None

    def wants_params(self, step: int, final: bool = False) -> bool:
        """Whether `step` gets the parameter statistics. Asking again about the same step
        gives the same answer: the weights are copied before a step and measured after it."""
        every = self.fixed_params_every or max(self.params_every, self._timed_every("params"))
        if step == self._last_params or self.wants(step, final) and (final or step - self._last_params >= every):
            self._last_params = step
            return True
        return False

    def wants_outputs(self, step: int, final: bool = False) -> bool:
        """Whether `step` gets the probe batch's outputs and activations (decided once per step)."""
        every = self.fixed_outputs_every or max(self.outputs_every, self._timed_every("outputs"))
        if step == self._last_outputs or self.wants(step, final) and (final or step - self._last_outputs >= every):
            self._last_outputs = step
            return True
        return False

    # A framework step costs far more than its multiply-adds on small networks (Python and
    # dispatch overhead), and so does a probe: the automatic schedule also holds each heavy
    # measurement to OBSERVE_BUDGET of the measured training time.
    def _timed_every(self, what: str) -> int:
        cost, step = self._cost.get(what), self._step_seconds
        if cost is None or step is None or step <= 0:
            return 1
        return max(1, math.ceil(cost / (OBSERVE_BUDGET * step)))

    @contextmanager
    def timing(self, what: str):
        """Measure one heavy measurement (its cost sets how often it runs)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - start
            self._spent_in_step += spent
            # a measurement may come in parts (a copy before the step, sums after it): its
            # cost is the sum of its parts in one step, averaged over steps at tick()
            self._cost_in_step[what] = self._cost_in_step.get(what, 0.0) + spent

    def tick(self) -> None:
        """One training step ended: update the measured time of a step (without our own share)."""
        now = time.perf_counter()
        if self._last_tick is not None:
            seconds = max(now - self._last_tick - self._spent_in_step, 1e-7)
            old = self._step_seconds
            self._step_seconds = seconds if old is None else 0.9 * old + 0.1 * seconds
        self._last_tick = now
        self._spent_in_step = 0.0
        for what, spent in self._cost_in_step.items():
            old = self._cost.get(what)
            self._cost[what] = spent if old is None else 0.8 * old + 0.2 * spent
        self._cost_in_step.clear()

    # -- recording -------------------------------------------------------------------------------
    def fix_schedule(self, outputs_every: int | None, params_every: int | None) -> None:
        self.fixed_outputs_every = None if outputs_every is None else max(int(outputs_every), 1)
        self.fixed_params_every = None if params_every is None else max(int(params_every), 1)

    def probe_values(self, out: Any, layers: Sequence[tuple[str, Any, Any, str | None, bool]],
                     probe_loss: float | None) -> dict[tuple[str, str], float]:
        """Output and activation statistics of one probe-batch forward pass (NumPy arrays)."""
        t = self.thresholds
        values: dict[tuple[str, str], float] = {}
        for name, z, a, activation, hidden in layers:
            values.update(probes.activation_stats(
                name, z, a, activation, saturation_z=t.saturation_z,
                dead_active_frac=t.dead_active_frac, max_rows=PROBE_ROWS, hidden=hidden))
        values.update(probes.output_stats(out, self.trace.probe_targets, loss=probe_loss,
                                          classification=self.classification, threshold=self.threshold))
        return values

    def record(self, step: int, values: dict[tuple[str, str], float], outputs: Any = None,
               *, params: bool = False) -> None:
        if self.recorder.last_step is not None and step <= self.recorder.last_step:
            return
        if params:
            self._last_params = step
        if outputs is not None:
            self._last_outputs = step
        loss = values.get((MODEL, "loss"))
        if loss is not None and not math.isfinite(loss):
            values[(MODEL, "nonfinite")] = values.get((MODEL, "nonfinite"), 0.0) + 1.0
            if not self.trace.events_of("nonfinite"):
                self.trace.add_event("nonfinite", {"tensor": "loss", "step": step, "batch": "training"},
                                     step=step)
        self.recorder.record(step, values, outputs)

    def param_event(self, kind: str, layer: str, weight: np.ndarray, bias: np.ndarray | None,
                    activation: str | None, step: int) -> None:
        summary = probes.param_summary(weight, bias, activation=activation,
                                       atol=self.thresholds.symmetric_atol)
        self.trace.add_event(kind, summary, step=step, layer=layer)

    # -- limits --------------------------------------------------------------------------------
    max_steps: int | None = None
    stop: Any = None            # the runner's StopRun class: raised to end a run at max_steps
    on_first_step: Any = None   # called once, at the first update (the runner detaches other observers)

    def after_step(self, step: int) -> None:
        self.tick()
        if step >= 1 and self.on_first_step is not None:
            callback, self.on_first_step = self.on_first_step, None
            callback()
        if self.max_steps is not None and step >= self.max_steps and self.stop is not None:
            raise self.stop("max-steps")

    # -- the end ---------------------------------------------------------------------------------
    def finish(self, status: str = "completed", *, error: str | None = None,
               stop_reason: str | None = None) -> Trace:
        info = self.info
        info.status, info.steps = status, int(self.steps)
        info.error, info.stop_reason = error, stop_reason
        self.trace.add_event("framework", dict(self.facts))
        return self.trace


def layer_info(name: str, fan_in: int | None, fan_out: int | None, activation: str | None,
               has_bias: bool, is_output: bool, location: Location | None,
               param_names: tuple[str, ...] = ()) -> LayerInfo:
    return LayerInfo(name=name, fan_in=fan_in, fan_out=fan_out, activation=activation,
                     has_bias=has_bias, is_output=is_output, param_names=param_names,
                     location=location)
