"""Keras 3: a callback added to every ``Model.fit``, and what it records.

``install()`` wraps ``keras.Model.fit`` (every Sequential, functional and subclassed
model inherits it): each call gets netdoctor's callback and, for the duration of the
fit, two instance-level wrappers that see what a callback alone cannot:

* ``model.optimizer.apply(grads, variables)`` -- the gradients used for the step and,
  on scheduled steps, the weights before it (to measure the change applied);
* ``model._compute_loss`` -- the batch loss of the step (``logs["loss"]`` is a running
  mean over the epoch, not the loss of the step).

Statistics are computed with the backend's own operations (torch ops on the torch
backend, ``keras.ops`` otherwise); one small tensor of sums comes to the CPU per
recorded step. The probe batch (at most 64 training rows) is run through the model
with ``training=False`` at scheduled steps for outputs and per-layer activations.

``layer.name`` names the layers (``dense_1``); each finding about a layer points at
the user's line that built it, and loss/optimizer findings at the ``compile`` line.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

from . import STATE
from .session import FrameworkSession, data_rows, layer_info
from .sites import UserFiles, user_site
from .tensor_stats import LayerTensors, Ops, layer_stats
from ..trace import MODEL

_ACTIVATION_LAYERS = {"Activation", "ReLU", "Softmax", "LeakyReLU", "ELU", "PReLU"}


def _loss_kind(loss: Any) -> tuple[str | None, str | None, bool | None]:
    """(netdoctor's loss kind, the loss's own name, from_logits) of a compiled loss."""
    name = loss if isinstance(loss, str) else (getattr(loss, "name", None) or getattr(loss, "__name__", None)
                                               or type(loss).__name__)
    from_logits = getattr(loss, "from_logits", None)
    if from_logits is None:
        from_logits = (getattr(loss, "_fn_kwargs", None) or {}).get("from_logits")
    key = str(name or "").lower().replace("_", "")
    if "sparsecategoricalcrossentropy" in key:
        kind = "ce"
    elif "categoricalcrossentropy" in key:
        kind = "ce"
    elif "binarycrossentropy" in key or key in ("bce",):
        kind = "bce"
    elif key in ("mse", "meansquarederror") or "meansquarederror" in key:
        kind = "mse"
    else:
        kind = None
    return kind, str(name) if name is not None else None, None if from_logits is None else bool(from_logits)


def _activation_name(layer: Any) -> str | None:
    fn = getattr(layer, "activation", None)
    if fn is None:
        return None
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return {"linear": "linear", "relu": "relu", "sigmoid": "sigmoid", "softmax": "softmax",
            "tanh": "tanh", "leaky_relu": "leaky_relu"}.get(name, name)


def keras_ops() -> Ops:
    import keras

    if keras.backend.backend() == "torch":
        from .torch_hooks import torch_ops

        return torch_ops()
    ops = keras.ops

    def fetch(xs):
        return [float(v) for v in ops.convert_to_numpy(ops.stack([ops.cast(x, "float32") for x in xs]))]

    return Ops(
        sq=lambda x: ops.sum(ops.square(x)),
        total=ops.sum,
        abs_total=lambda x: ops.sum(ops.abs(x)),
        dot=lambda x, y: ops.sum(x * y),
        nonfinite=lambda x: ops.sum(ops.cast(ops.logical_not(ops.isfinite(x)), "float32")),
        size=lambda x: int(np.prod(tuple(x.shape))),
        fetch=fetch,
    )


def _value(variable: Any) -> Any:
    return getattr(variable, "value", variable)


class KerasRun:
    """One model's training under observation (all its ``fit`` calls)."""

    def __init__(self, model: Any, session: FrameworkSession, sites: dict[int, Any]):
        self.model = model
        self.session = session
        self.sites = sites
        self.ops = keras_ops()
        self.layers: list[dict[str, Any]] = []
        self.step = 0
        self._loss_tensor = None
        self._probe_x = self._probe_y = None
        self._feature_model = None
        self._begun = False
        self._finished = False
        self._restore: list = []

    # -- per fit ---------------------------------------------------------------------------
    def begin_fit(self, x: Any, y: Any, batch_size: Any) -> None:
        model = self.model
        self._wrap_instance()
        if self._begun:
            return
        self._begun = True
        self._describe(batch_size, x)
        if isinstance(x, np.ndarray) or hasattr(x, "__array__"):
            self._set_data(np.asarray(x), None if y is None else np.asarray(y))
        # step 0: the network before its first update
        values: dict = {}
        self._param_values(values, None, None, final=True)
        outputs = self._probe(values)
        if (MODEL, "probe_loss") in values:  # before any training batch, the probe batch's loss
            values[(MODEL, "loss")] = values[(MODEL, "probe_loss")]
        self.session.record(0, values, outputs, params=True)
        for spec in self.layers:
            w, b = self._numpy_params(spec)
            self.session.param_event("param_init", spec["name"], w, b, spec["activation"], 0)

    def end_fit(self) -> None:
        self._unwrap_instance()

    def finish(self) -> None:
        """After the last fit: the final step in full and the final weights."""
        if not self._begun or self._finished:
            return
        self._finished = True
        s = self.session
        s.max_steps = None  # the run is over: summarising must not stop it again
        s.steps = self.step
        row, self._row = self._row, None
        if row is not None and row[0] == self.step:
            step, values, outputs, params = row
        else:
            if row is not None:
                s.record(row[0], row[1], row[2], params=row[3])
            step, values, outputs, params = self.step, {}, None, False
            self._loss_value(values)
        if self.step > 0 and (s.recorder.last_step or 0) < self.step:
            if not params:
                self._param_values(values, None, None, final=True)
            if outputs is None:
                outputs = self._probe(values)
            s.record(step, values, outputs, params=True)
        for spec in self.layers:
            w, b = self._numpy_params(spec)
            s.param_event("param_final", spec["name"], w, b, spec["activation"], self.step)

    # -- what the model is -------------------------------------------------------------------
    def _describe(self, batch_size: Any, x: Any) -> None:
        model = self.model
        all_layers = list(model.layers)
        kernels = [i for i, layer in enumerate(all_layers) if getattr(layer, "kernel", None) is not None]
        specs = []
        for n, i in enumerate(kernels):
            layer = all_layers[i]
            activation, act_layer = _activation_name(layer), None
            end = kernels[n + 1] if n + 1 < len(kernels) else len(all_layers)
            if activation in (None, "linear"):
                for later in all_layers[i + 1:end]:
                    if type(later).__name__ in _ACTIVATION_LAYERS:
                        act_layer = later
                        activation = _activation_name(later) or type(later).__name__.lower()
                        if activation == "relu" or type(later).__name__ == "ReLU":
                            activation = "relu"
                        if type(later).__name__ == "Softmax":
                            activation = "softmax"
                        break
            kernel = layer.kernel
            shape = tuple(kernel.shape)
            specs.append({
                "name": layer.name, "layer": layer, "act_layer": act_layer,
                "activation": activation or "linear", "kind": type(layer).__name__,
                "fan_in": int(np.prod(shape[:-1])), "fan_out": int(shape[-1]),
                "bias": getattr(layer, "bias", None), "trainable": bool(getattr(layer, "trainable", True)),
                "location": self.sites.get(id(layer)),
            })
        self.layers = specs
        kind, loss_name, from_logits = _loss_kind(getattr(model, "loss", None))
        output = specs[-1]["activation"] if specs else None
        info = [
            layer_info(s["name"], s["fan_in"], s["fan_out"], s["activation"], s["bias"] is not None,
                       k == len(specs) - 1, s["location"],
                       (f"{s['name']}.kernel",) + ((f"{s['name']}.bias",) if s["bias"] is not None else ()))
            for k, s in enumerate(specs)
        ]
        n = len(x) if hasattr(x, "__len__") else None
        rows = None if n is None else min(int(batch_size or 32), n)
        sizes = [specs[0]["fan_in"]] + [s["fan_out"] for s in specs] if specs else None
        self.session.describe(info, loss=kind if not (kind == "bce" and from_logits) else "bce",
                              output=output, batch_rows=rows, sizes=sizes)
        self.batch_rows = rows
        compile_site = self.sites.get(("compile", id(model)))
        facts = self.session.facts
        facts.update({
            "model": type(model).__name__,
            "layers": [{"name": s["name"], "kind": s["kind"], "units": s["fan_out"], "fan_in": s["fan_in"],
                        "activation": s["activation"], "trainable": s["trainable"],
                        "separate_activation": s["act_layer"] is not None} for s in specs],
            "loss_fn": loss_name, "loss_kind": kind, "from_logits": from_logits,
            "optimizer": type(getattr(model, "optimizer", None)).__name__,
            "output_activation": output, "output_units": specs[-1]["fan_out"] if specs else None,
            "batch_rows": rows, "gradients_zeroed": True,
        })
        if compile_site is not None:
            facts["loss_location"] = compile_site
            facts["optimizer_location"] = compile_site

    def _set_data(self, X: np.ndarray, y: np.ndarray | None) -> None:
        if y is None or not self.layers:
            return
        units = self.layers[-1]["fan_out"]
        facts = self.session.facts
        facts["y_shape"] = list(np.shape(y))
        facts["target_min"] = float(np.min(y)) if np.size(y) else math.nan
        facts["target_max"] = float(np.max(y)) if np.size(y) else math.nan
        rows = data_rows(len(X)) if len(y) == len(X) else None
        if rows is not None:   # one-hot targets for the sampled rows only, not the whole set
            X, y = X[rows], np.asarray(y)[rows]
        y_raw = y
        Y = y
        if facts.get("loss_fn") and "sparse" in str(facts["loss_fn"]).lower():
            labels = np.asarray(y).reshape(len(y), -1)[:, 0].astype(int)
            if labels.min() >= 0 and labels.max() < max(units, 1) and units > 1:
                Y = np.eye(units)[labels]
        elif np.ndim(y) == 1 and units == 1:
            Y = np.asarray(y, dtype=float)[:, None]
        idx = self.session.set_data(X.reshape(len(X), -1), y_raw, Y, units)
        self._probe_x = X[idx]
        self._probe_y = np.asarray(y)[idx]

    # -- wrappers around the model's optimizer and loss, for one fit ----------------------------
    def _wrap_instance(self) -> None:
        model = self.model
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None and "apply" not in vars(optimizer):
            original_apply = optimizer.apply

            def apply(grads, trainable_variables=None, *args, **kwargs):
                return self._on_apply(original_apply, grads, trainable_variables, args, kwargs)

            optimizer.apply = apply
            self._restore.append(lambda: vars(optimizer).pop("apply", None))
        if hasattr(model, "_compute_loss") and "_compute_loss" not in vars(model):
            original_loss = model._compute_loss

            def compute_loss(*args, **kwargs):
                loss = original_loss(*args, **kwargs)
                self._loss_tensor = loss
                return loss

            object.__setattr__(model, "_compute_loss", compute_loss)
            self._restore.append(lambda: vars(model).pop("_compute_loss", None))

    def _unwrap_instance(self) -> None:
        while self._restore:
            self._restore.pop()()

    def _on_apply(self, original, grads, variables, args, kwargs):
        step = self.step + 1
        s = self.session
        want_params = s.wants_params(step)
        before = None
        if want_params and variables is not None:
            with s.timing("params"):
                before = {id(v): _value(v).detach().clone() if hasattr(_value(v), "detach") else
                          self._copy(v) for v in variables}
        result = original(grads, variables, *args, **kwargs)
        self.step = step
        s.steps = step
        self._flush()
        if s.wants(step):
            values: dict = {}
            self._loss_value(values)
            if want_params and variables is not None:
                with s.timing("params"):
                    by_id = {id(v): (v, g) for v, g in zip(variables, grads)}
                    self._param_values(values, by_id, before)
            outputs = None
            if s.wants_outputs(step):
                with s.timing("outputs"):
                    outputs = self._probe(values)
            # held back until the next step: the last step of a run gets everything (finish)
            self._row = (step, values, outputs, want_params)
        s.after_step(step)
        return result

    _row = None

    def _flush(self) -> None:
        if self._row is not None:
            step, values, outputs, params = self._row
            self._row = None
            self.session.record(step, values, outputs, params=params)

    def _copy(self, variable):
        import keras

        return keras.ops.copy(_value(variable))

    # -- measuring ----------------------------------------------------------------------------
    def _loss_value(self, values: dict) -> None:
        loss = self._loss_tensor
        if loss is not None:
            try:
                values[(MODEL, "loss")] = float(np.asarray(_to_numpy(loss)).reshape(-1)[0])
            except Exception:  # noqa: BLE001 - a loss we cannot read is simply not recorded
                pass

    def _param_values(self, values: dict, by_id: dict | None, before: dict | None, final: bool = False) -> None:
        tensors = []
        for spec in self.layers:
            kernel, bias = spec["layer"].kernel, spec["bias"]
            t = LayerTensors(spec["name"], _value(kernel), None if bias is None else _value(bias))
            if by_id is not None:
                for var, attr, dattr in ((kernel, "grad_w", "delta_w"), (bias, "grad_b", "delta_b")):
                    if var is None or id(var) not in by_id:
                        continue
                    _, grad = by_id[id(var)]
                    if grad is not None:
                        setattr(t, attr, grad)
                    if before is not None and id(var) in before:
                        setattr(t, dattr, _value(var) - before[id(var)])
            tensors.append(t)
        if tensors:
            values.update(layer_stats(self.ops, tensors))

    def _numpy_params(self, spec) -> tuple[np.ndarray, np.ndarray | None]:
        w = np.asarray(_to_numpy(_value(spec["layer"].kernel)), dtype=float)
        w = w.reshape(-1, w.shape[-1])
        b = spec["bias"]
        return w, None if b is None else np.asarray(_to_numpy(_value(b)), dtype=float)

    def _features(self):
        if self._feature_model is None:
            import keras

            outs = []
            for spec in self.layers:
                outs += [spec["layer"].input, spec["layer"].output]
                if spec["act_layer"] is not None:
                    outs.append(spec["act_layer"].output)
            inputs = self.model.inputs
            # the same structure as the model's own input, or Keras warns on every call
            inputs = inputs[0] if isinstance(inputs, (list, tuple)) and len(inputs) == 1 else inputs
            self._feature_model = keras.Model(inputs, outs + [self.model.outputs[0]])
        return self._feature_model

    def _probe(self, values: dict):
        """Outputs and per-layer activations on the probe batch (training=False)."""
        if self._probe_x is None or not self.layers:
            return None
        try:
            fetched = [np.asarray(_to_numpy(t), dtype=float) for t in self._features()(self._probe_x, training=False)]
        except Exception:  # noqa: BLE001 - a model we cannot cut into layers: outputs only
            try:
                out = np.asarray(_to_numpy(self.model(self._probe_x, training=False)), dtype=float)
            except Exception:  # noqa: BLE001
                return None
            values.update(self.session.probe_values(out, [], self._probe_loss(out)))
            return out.reshape(len(out), -1)
        out = fetched[-1]
        pos, layers = 0, []
        for k, spec in enumerate(self.layers):
            inp, after = fetched[pos], fetched[pos + 1]
            pos += 2
            if spec["act_layer"] is not None:
                z, a = after, fetched[pos]
                pos += 1
            else:
                w, b = self._numpy_params(spec)
                z = inp.reshape(len(inp), -1) @ w + (0.0 if b is None else b)
                a = after
            layers.append((spec["name"], z, a, spec["activation"], k < len(self.layers) - 1))
        values.update(self.session.probe_values(out, layers, self._probe_loss(out)))
        return out.reshape(len(out), -1)

    def _probe_loss(self, out: np.ndarray) -> float | None:
        try:
            import keras

            # the compiled loss (it reshapes labels as fit does), without the metrics
            y_pred = keras.ops.convert_to_tensor(out.astype("float32"))
            y_true = keras.ops.convert_to_tensor(self._probe_y)
            value = self.model.compute_loss(y=y_true, y_pred=y_pred, training=False)
            return float(np.mean(_to_numpy(value)))
        except Exception:  # noqa: BLE001 - no probe loss is better than a wrong one
            return None


def _to_numpy(tensor: Any) -> Any:
    if hasattr(tensor, "detach"):
        return tensor.detach().cpu().numpy()
    try:
        import keras

        return keras.ops.convert_to_numpy(tensor)
    except Exception:  # noqa: BLE001
        return np.asarray(tensor)


class KerasWatcher:
    """Watches every ``Model.fit`` in this process; one :class:`KerasRun` per model."""

    def __init__(self, name: str = "original", thresholds: Any = None, user_files: Any = None):
        self.name = name
        self.thresholds = thresholds
        self.files = user_files if isinstance(user_files, UserFiles) else UserFiles(user_files)
        self.runs: dict[int, KerasRun] = {}
        self.sites: dict[Any, Any] = {}
        self._originals: list[tuple[Any, str, Any]] = []
        self.configure = None    # called with each new FrameworkSession (limits, first-step callback)

    def install(self) -> None:
        import keras

        Model, Layer = keras.Model, keras.layers.Layer
        fit, compile_, layer_init = Model.fit, Model.compile, Layer.__init__
        watcher = self

        def watched_fit(model, x=None, y=None, batch_size=None, *args, callbacks=None, **kwargs):
            run = watcher.run_for(model)
            callbacks = list(callbacks or []) + [make_callback(run, x, y, batch_size)]
            STATE["keras_fits"] += 1
            try:
                return fit(model, x, y, batch_size, *args, callbacks=callbacks, **kwargs)
            finally:
                STATE["keras_fits"] -= 1
                run.end_fit()

        def watched_compile(model, *args, **kwargs):
            site = user_site(watcher.files, 2)
            if site is not None:
                watcher.sites[("compile", id(model))] = site
            return compile_(model, *args, **kwargs)

        def watched_init(layer, *args, **kwargs):
            layer_init(layer, *args, **kwargs)
            site = user_site(watcher.files, 2)
            if site is not None:
                watcher.sites.setdefault(id(layer), site)

        self._originals = [(Model, "fit", fit), (Model, "compile", compile_), (Layer, "__init__", layer_init)]
        Model.fit, Model.compile, Layer.__init__ = watched_fit, watched_compile, watched_init

    def uninstall(self) -> None:
        for owner, attr, original in self._originals:
            setattr(owner, attr, original)
        self._originals = []

    def run_for(self, model: Any) -> KerasRun:
        run = self.runs.get(id(model))
        if run is None:
            session = FrameworkSession(self.name, "keras", self.thresholds)
            if self.configure is not None:
                self.configure(session)
            run = self.runs[id(model)] = KerasRun(model, session, self.sites)
        return run

    @property
    def steps(self) -> int:
        return max((run.step for run in self.runs.values()), default=0)

    def best_run(self) -> KerasRun | None:
        return max(self.runs.values(), key=lambda run: run.step, default=None)


_CALLBACK_CLASS = None


def callback_class():
    """netdoctor's Keras callback class, made on first use (keras is imported only then)."""
    global _CALLBACK_CLASS
    if _CALLBACK_CLASS is None:
        import keras

        class NetdoctorCallback(keras.callbacks.Callback):
            """Records the fit into a :class:`KerasRun` (see the module doc)."""

            run_name = "original"
            thresholds = None

            def __init__(self, run: KerasRun | None = None, x: Any = None, y: Any = None, batch_size: Any = None):
                super().__init__()
                self.run, self.x, self.y, self.batch_size = run, x, y, batch_size
                self._trace = None

            def on_train_begin(self, logs=None):
                if self.run is None:  # added by hand: watch the model it is attached to
                    self.run = KerasRun(self.model, FrameworkSession(self.run_name, "keras", self.thresholds), {})
                self.run.begin_fit(self.x, self.y, self.batch_size)

            def on_train_end(self, logs=None):
                self.run.end_fit()

            @property
            def trace(self):
                if self._trace is None:
                    if self.run is None:
                        raise RuntimeError("this callback has not been through a fit yet")
                    self.run.finish()
                    self._trace = self.run.session.finish("completed")
                return self._trace

            @property
            def report(self):
                from ..report import Report

                return Report.from_traces([self.trace], thresholds=self.thresholds)

        _CALLBACK_CLASS = NetdoctorCallback
    return _CALLBACK_CLASS


def make_callback(run: KerasRun, x: Any, y: Any, batch_size: Any):
    return callback_class()(run, x, y, batch_size)
