"""From an observer's state to a Trace: run facts, layers, and the one-off events.

The per-step series are already in the observer's Recorder; this module adds
what is known once (or known so far, for an early verdict): the layers and their
parameters' names, what each user function computes ("function" events), the
training data ("data"), the initial and final parameters ("param_init" /
"param_final"), and which roles were inferred and which were not ("roles").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import identify, probes
from ..trace import Event, Trace
from ..types import LayerInfo, RunInfo
from .arrays import Context
from .chain import continuing_parameters, function_of
from .functions import declared_name, function_payload, location_of
from .sites import init_site



def describe(obs: Any, status: str, final: bool) -> Trace:
    info = RunInfo(name=obs.name, status=status, steps=int(obs.steps), source=obs.source)
    if getattr(obs, "first_steps_unseen", False):
        info.extra["first_steps_unseen"] = True
        obs.note("netdoctor began watching the training loop while it was already running (it calls no "
                 "function of its own): its first steps were not seen, and the loss at the start is not judged")
    events: list[Event] = list(obs.events)
    tracker = obs.tracker
    if tracker is None:
        events.append(Event("roles", data={
            "params": [], "gradients": [], "activations": [],
            "ambiguous": ["parameters and forward pass not found"], "how_to_name": obs.how_to_name(),
        }))
        info.notes = list(obs.notes)
        return Trace(info, obs.recorder, events)

    chain = tracker.chain
    names = tracker.layer_names
    function_events, locations = _function_events(obs, tracker)
    events.extend(function_events)
    last = len(chain.layers) - 1
    for index, (name, layer) in enumerate(zip(names, chain.layers)):
        info.layers.append(LayerInfo(
            name=name, fan_in=layer.fan_in, fan_out=layer.fan_out,
            activation=tracker.activation_name(index),
            has_bias=layer.b is not None or layer.bias_row or (index == 0 and _constant_input_column(tracker)),
            is_output=index == last,
            param_names=tuple(p.name for p in layer.param_paths()),
            location=locations.get(index),
        ))
    events.extend(_param_events(obs, tracker, final))
    tracker.refresh_collected()   # (data collected from the steps: all of it, up to now)
    data = _data_event(tracker)
    if data is not None:
        events.append(data)
    events.append(_roles_event(obs, tracker))

    info.loss = tracker.loss_kind
    info.output = tracker.output_function()
    info.task = tracker.task()
    if info.task == "classification":
        info.n_classes = chain.n_out if chain.n_out > 1 else 2
    info.extra.update({
        "network": chain.describe(),
        "samples": chain.samples,
        "weight_layout": [layer.weight_form for layer in chain.layers],
        "loss_reduction": tracker.reduction,
        "targets": tracker.encoding,
        "lr_fit": tracker.lr_fit,
        "forward_sites": sorted(_site(k) for k in obs.forward_keys),
        # When the roles were settled: the step (updates seen while learning) and the CPU
        # seconds learning took, counted from the moment a network first showed.
        "settled_at_step": int(tracker.learned.steps),
        "learning_cpu_s": obs.learning_seconds,
    })
    info.notes = list(obs.notes)
    probe_inputs = tracker.probe.inputs if tracker.probe is not None else None
    return Trace(info, obs.recorder, events, probe_inputs=probe_inputs, probe_targets=tracker.probe_targets)


def _site(key: tuple) -> str:
    code, kind, line = key
    where = getattr(code, "co_qualname", code.co_name)
    return f"{where} (line {line})" if kind == "line" else f"{where} ({kind})"


# --- functions ------------------------------------------------------------------------------------


def _constant_input_column(tracker: Any) -> bool:
    """Whether the inputs carry a constant column (``[x, 1]``): a bias kept as a weight row."""
    for record in tracker.learned.records:
        for forward in record.forwards[:1]:
            x = forward.x
            if x.ndim == 2 and x.shape[0] >= 2 and x.shape[1] >= 2:
                constant = np.all(x == x[:1], axis=0) & (x[0] != 0)
                return bool(constant.any())
    return False


def _function_events(obs: Any, tracker: Any) -> tuple[list[Event], dict[int, Any]]:
    chain = tracker.chain
    learned = tracker.learned
    th = obs.thresholds
    axis = 1 if chain.samples == "cols" else 0
    events, locations = [], {}
    last = len(chain.layers) - 1
    for index, (name, layer) in enumerate(zip(tracker.layer_names, chain.layers)):
        if layer.a is None:
            continue  # a linear layer: its output is z itself, nothing to identify
        role = "output" if index == last else "hidden"
        # The function that returned the very array wins over one seen computing equal values.
        code = learned.producers.get(index) or layer.function_code
        watch = obs.functions.get(code) if code is not None else None
        if watch is not None and watch.same_shape and watch.inputs:
            # The function's plain calls only (nonlin(x), not nonlin(x, deriv=True)), named
            # only when several calls agree.
            ident = watch.identify(role, axis, tol=th.activation_match_tol)
        else:
            pairs = tracker.pool_pairs(index)
            if pairs is None:
                continue
            ident = identify.identify_pairs(pairs[0], pairs[1], role, samples_axis=0,
                                            tol=th.activation_match_tol)
        if ident.identified is not None:
            obs.identified[index] = ident.identified
        location = location_of(code) if code is not None else None
        if location is not None:
            locations[index] = location
        events.append(Event("function", layer=name, location=location,
                            data=function_payload(ident, role, declared_name(code) if code else None)))
    written_at: dict[str, Any] = {}   # identified derivative -> the code's function computing it
    for code, (index, kind) in learned.derivative_of.items():
        watch = obs.functions.get(code)
        if watch is None or not watch.same_shape or not watch.inputs:
            continue
        # nonlin(x, deriv=True)'s calls, or all of a function that is only a derivative
        pairs = watch.pairs(axis, behaviour="derivative") or watch.pairs(axis)
        if pairs is None:
            continue
        given, result = pairs
        z = _as_preactivation(given, kind, tracker.activation_name(index))
        ident = identify.identify_pairs(z, result, "derivative", samples_axis=axis, tol=th.activation_match_tol)
        payload = function_payload(ident, "derivative", declared_name(code))
        payload["given"] = "pre-activation" if kind == "z" else "activation"
        events.append(Event("function", layer=tracker.layer_names[index], location=location_of(code), data=payload))
        if ident.identified is not None:
            written_at.setdefault(ident.identified, location_of(code))
    seen_layers = {index for index, _ in learned.derivative_of.values()}
    for index, (z, factor, delta_name, code) in learned.delta_factors.items():
        if index in seen_layers:
            continue  # the code's own derivative function was identified for this layer
        ident = identify.identify_pairs(z, factor, "derivative", tol=th.activation_match_tol)
        if ident.identified is None:
            continue  # a factor unlike any derivative: the gradient check speaks for it
        payload = function_payload(ident, "derivative", tracker.activation_name(index))
        payload["given"] = f"read from the deltas ({delta_name})"
        location = location_of(code) if code is not None else None
        if location is None:
            # (a delta made by arithmetic has no producer: the code's derivative function
            # that computes the same thing is where it is written)
            location = written_at.get(ident.identified)
        events.append(Event("function", layer=tracker.layer_names[index], location=location, data=payload))
    return events, locations


def _as_preactivation(values: np.ndarray, kind: str, activation: str | None) -> np.ndarray:
    """The z behind activations a (for a derivative written in terms of a)."""
    if kind == "z":
        return values
    a = np.asarray(values, dtype=np.float64)
    with np.errstate(all="ignore"):
        if activation == "sigmoid":
            p = np.clip(a, 1e-15, 1 - 1e-15)
            return np.log(p / (1 - p))
        if activation == "tanh":
            return np.arctanh(np.clip(a, -1 + 1e-15, 1 - 1e-15))
        if activation == "double_sigmoid":
            s = np.clip(1.0 / np.clip(a, 1e-15, None) - 1.0, 1e-15, 1 - 1e-15)   # sigmoid(-z)
            return -np.log(s / (1 - s))
    # relu-like: a = z wherever the derivative is not 0, which is all identification needs
    return a


# --- parameters -------------------------------------------------------------------------------------


def _param_events(obs: Any, tracker: Any, final: bool) -> list[Event]:
    learned = tracker.learned
    th = obs.thresholds
    events = []
    initial = learned.initial
    if any(v is None for v in initial) and learned.records:
        initial = [v if v is not None else w for v, w in zip(initial, learned.records[0].before)]
    kinds = [("param_init", initial, 0)]
    if final:
        current = tracker.latest_params(Context(None))
        if current is not None:
            kinds.append(("param_final", current, tracker.steps))
    for kind, values, step in kinds:
        index = 0
        constant_column = _constant_input_column(tracker)
        for l, (name, layer) in enumerate(zip(tracker.layer_names, tracker.chain.layers)):
            W = values[index]
            index += 1
            b = None
            if layer.b is not None:
                b = values[index]
                index += 1
            if W is None:
                continue
            Wio = layer.to_io(W)
            if layer.bias_row:
                b = layer.bias_io(W)
            summary = probes.param_summary(Wio, b, activation=tracker.activation_name(l), atol=th.symmetric_atol)
            summary["name"] = layer.W.name
            if l == 0 and b is None and constant_column:
                summary["has_bias"] = True   # kept as the weight row of a constant input column
            where = init_site(layer.W.name, obs.user_files) if kind == "param_init" else None
            events.append(Event(kind, step=step, layer=name, data=summary, location=where))
    return events


# --- data -------------------------------------------------------------------------------------------------


def _data_event(tracker: Any) -> Event | None:
    data = tracker.data
    if data is None:
        return None
    chain = tracker.chain
    output_fn = None
    if tracker.rebuilt is not None:
        output_fn = tracker.rebuilt.functions[-1].f
    else:
        layer = chain.layers[-1]
        output_fn = function_of(layer.function, layer.slope) if layer.function else None
    if data.targets:
        target = data.targets[0]
        raw = np.asarray(target.raw_rows)
        Y = tracker.targets if tracker.targets is not None else raw
        if tracker.encoding == "as_is" and np.ndim(Y) == 2 and Y.shape[1] == 1 and chain.n_out > 1:
            Y = np.broadcast_to(Y, (Y.shape[0], chain.n_out))
    else:
        raw = Y = np.empty((0, chain.n_out))
    facts = probes.data_facts(data.X_rows, raw, Y, output_fn, chain.n_out)
    if facts.get("target_kind") == "labels" and raw.size:
        values = np.unique(raw)
        if np.all(values == np.round(values)):
            facts["classes"] = [int(v) for v in values]
    facts["inputs"] = data.X.name
    facts["targets"] = data.targets[0].name if data.targets else None
    facts["target_encoding"] = tracker.encoding
    # A column of labels subtracted from several outputs: numpy broadcasts it silently.
    facts["labels_broadcast"] = bool(
        tracker.encoding == "as_is" and raw.ndim <= 2 and (raw.ndim == 1 or raw.shape[1] == 1)
        and chain.n_out > 1 and raw.size > 0
    )
    return Event("data", data=facts)


# --- roles ---------------------------------------------------------------------------------------------------


def _roles_event(obs: Any, tracker: Any) -> Event:
    chain = tracker.chain
    ambiguous = []
    grads = [p.name for p in tracker.grad_paths if p is not None]
    if not grads:
        ambiguous.append("no gradient arrays: the gradients were inferred from the parameter updates")
    if tracker.data is None:
        ambiguous.append("training inputs and targets not found")
    elif not tracker.data.targets:
        ambiguous.append("targets not found")
    activations = []
    for layer in chain.layers:
        for path in (layer.z, layer.a):
            if path is not None:
                activations.append(path.name)
    unplaced = _unplaced_parameters(tracker, set(grads) | set(activations) | {chain.input.name, chain.output_name})
    if unplaced:
        names = ", ".join(unplaced)
        ambiguous.append(f"{names} change(s) during training but could not be placed in the network")
        verb, them = ("changes", "it") if len(unplaced) == 1 else ("change", "them")
        obs.note(
            f"{names} {verb} during training and could continue the network past {chain.output_name}, "
            f"but netdoctor could not place {them}: the findings may describe only part of the network. "
            f"To name the roles yourself: {obs.how_to_name()}"
        )
    return Event("roles", data={
        "params": [p.name for p in chain.param_paths()],
        "gradients": grads,
        "activations": activations,
        "input": chain.input.name,
        "output": chain.output_name,
        "ambiguous": ambiguous,
        "how_to_name": obs.how_to_name(),
    })


def _unplaced_parameters(tracker: Any, known_names: set[str]) -> list[str]:
    """Arrays that look like parameters the inferred chain left out (see
    :func:`.chain.continuing_parameters`). Found when values alone cannot tell layers
    apart, e.g. with every weight initialised to zero."""
    data_keys = set()
    if tracker.data is not None:
        data_keys.add(tracker.data.X.path.key())
        data_keys.update(t.found.path.key() for t in tracker.data.targets)
    samples = tracker.data.n if tracker.data is not None else None
    left_out = continuing_parameters(tracker.chain, tracker.learned.last_found.values(), tracker.learned.changing,
                                     exclude=data_keys, samples=samples)
    return sorted({f.path.name for f in left_out if f.path.name not in known_names})
