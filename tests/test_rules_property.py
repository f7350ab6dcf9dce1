"""Hostile traces: every rule answers with findings or a Skip, never an exception.

Hypothesis builds traces whose series hold NaN, Inf, huge and tiny numbers (or
nothing), whose probe outputs and targets have odd shapes, and whose event payloads
hold the wrong types, missing keys and nonsense — the data a broken network or a
half-understood user script really produces.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from netdoctor.config import DEFAULT_THRESHOLDS
from netdoctor.rules import RuleContext, Skip, all_rules, run_rules
from netdoctor.trace import EVENT_KINDS, MODEL, QUANTITIES, Recorder, Trace
from netdoctor.types import Finding, LayerInfo, Location, RunInfo

RULES = all_rules()
LAYERS = ["layer1", "layer2", "layer3"]
NAMES = ["sigmoid", "tanh", "relu", "leaky_relu", "softmax", "linear", "mse", "bce", "ce", "weird", ""]

# Every payload key a producer documents or a rule reads.
PAYLOAD_KEYS = sorted({
    "role", "declared", "identified", "max_err", "declared_err", "f0", "range", "mistake",
    "description", "fix", "w_min", "w_max", "w_mean", "w_std", "fan_in", "fan_out", "activation",
    "has_bias", "b_min", "b_max", "b_std", "duplicate_units", "loss_kind", "h", "params", "tensor",
    "step", "n_samples", "n_features", "x_abs_mean", "x_abs_max", "x_std", "y_shape", "target_kind",
    "target_min", "target_max", "classes", "out_units", "output_range", "targets_outside",
    "layer", "param", "rel_err", "cosine", "scale", "n_checked", "reason",
})

nasty_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-300, -1e-300, 1e300, -1e300, 0.5, 1.0, 2.0, 0.6931]),
)
scalars = st.one_of(
    nasty_floats, st.integers(-10**12, 10**12), st.booleans(), st.none(),
    st.sampled_from(NAMES + ["labels", "onehot", "binary", "continuous", "hidden", "output", "derivative",
                             "weight", "bias", "layer1", "layer2"]),
    st.text(max_size=5),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(PAYLOAD_KEYS), inner, max_size=6),
    ),
    max_leaves=12,
)
payloads = st.dictionaries(st.sampled_from(PAYLOAD_KEYS), values, max_size=12)

# Plausible payloads per event kind: the right keys, hostile values. They get past a
# rule's first checks, so its judging code is exercised, not only its Skip.
counts = st.one_of(st.integers(-2, 2000), nasty_floats, scalars)
names_or_junk = st.one_of(st.sampled_from(NAMES + [None]), scalars)
gradcheck_rows = st.fixed_dictionaries({
    "layer": st.sampled_from(LAYERS + ["?", ""]),
    "param": st.sampled_from(["weight", "bias", "other"]),
    "rel_err": nasty_floats, "cosine": nasty_floats, "scale": nasty_floats,
})
PLAUSIBLE = {
    "gradcheck": st.fixed_dictionaries({"params": st.one_of(st.lists(gradcheck_rows, max_size=4), values),
                                        "loss_kind": names_or_junk}),
    "function": st.fixed_dictionaries({
        "role": st.sampled_from(["hidden", "output", "derivative", "other"]),
        "declared": names_or_junk, "identified": names_or_junk,
        "mistake": st.one_of(st.booleans(), scalars), "declared_err": nasty_floats, "max_err": nasty_floats,
        "f0": nasty_floats, "range": st.one_of(st.lists(nasty_floats, max_size=3), scalars),
        "description": st.one_of(st.text(max_size=20), scalars), "fix": st.one_of(st.text(max_size=20), scalars),
    }),
    "param_init": st.fixed_dictionaries({
        "w_min": nasty_floats, "w_max": nasty_floats, "w_mean": nasty_floats, "w_std": nasty_floats,
        "b_min": nasty_floats, "b_max": nasty_floats, "b_std": nasty_floats,
        "fan_in": counts, "fan_out": counts, "duplicate_units": counts,
        "activation": names_or_junk, "has_bias": st.one_of(st.booleans(), scalars),
    }),
    "data": st.fixed_dictionaries({
        "x_abs_mean": nasty_floats, "x_abs_max": nasty_floats, "x_std": nasty_floats,
        "y_shape": st.one_of(st.lists(counts, max_size=3), scalars),
        "target_kind": st.one_of(st.sampled_from(["labels", "onehot", "binary", "continuous"]), scalars),
        "target_min": nasty_floats, "target_max": nasty_floats,
        "classes": st.one_of(st.none(), st.lists(st.one_of(st.integers(0, 6), scalars), max_size=7), scalars),
        "out_units": counts,
        "output_range": st.one_of(st.lists(st.floats(-10, 10), min_size=2, max_size=2).map(sorted),
                                  st.lists(nasty_floats, max_size=3), scalars),
        "targets_outside": nasty_floats,
    }),
    "nonfinite": st.fixed_dictionaries({"tensor": st.one_of(st.sampled_from(["loss", "layer1.z"]), scalars),
                                        "step": counts}),
}
PLAUSIBLE["param_final"] = PLAUSIBLE["param_init"]


@st.composite
def event_specs(draw):
    kind = draw(st.sampled_from(sorted(EVENT_KINDS) + ["unknown"]))
    strategy = PLAUSIBLE.get(kind, payloads)
    data = draw(st.one_of(strategy, payloads) if kind in PLAUSIBLE else payloads)
    step = draw(st.one_of(st.none(), st.integers(-5, 10**9)))
    layer = draw(st.sampled_from(LAYERS + [None, "nonexistent"]))
    return kind, data, step, layer, draw(st.booleans())


events = st.lists(event_specs(), max_size=8)

series = st.dictionaries(
    st.tuples(st.sampled_from([MODEL] + LAYERS + ["nonexistent"]), st.sampled_from(sorted(QUANTITIES))),
    st.lists(nasty_floats, max_size=30),
    max_size=12,
)

odd_arrays = st.one_of(
    st.none(),
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
        elements=nasty_floats,
    ),
)


class OddRecorder(Recorder):
    """A recorder whose probe outputs can be any array at all (the real one keeps shapes sane)."""

    def __init__(self, outputs):
        super().__init__()
        self._odd = outputs

    @property
    def outputs(self):
        return self._odd


@st.composite
def probe_batch(draw, n_steps: int):
    """Outputs (steps, samples, units) mostly shaped like the steps, and their targets."""
    if draw(st.booleans()):  # anything at all
        return draw(odd_arrays), draw(odd_arrays)
    samples, units = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    steps = draw(st.sampled_from([n_steps, n_steps, max(n_steps - 1, 0), n_steps + 2]))
    pinned = draw(st.booleans())
    base = draw(hnp.arrays(np.float64, (samples, units), elements=nasty_floats))
    outputs = np.broadcast_to(base, (steps, samples, units)).copy() if pinned else draw(
        hnp.arrays(np.float64, (steps, samples, units), elements=nasty_floats))
    target_shape = draw(st.sampled_from([(samples, units), (samples,), (samples, 1), (samples + 1, units)]))
    targets = draw(st.one_of(
        hnp.arrays(np.float64, target_shape, elements=st.sampled_from([0.0, 1.0, 2.0])),
        hnp.arrays(np.float64, target_shape, elements=nasty_floats),
    ))
    return outputs, targets


@st.composite
def traces(draw) -> Trace:
    n_layers = draw(st.integers(0, 3))
    layers = [
        LayerInfo(
            name=LAYERS[i],
            activation=draw(st.sampled_from(NAMES + [None])),
            has_bias=draw(st.sampled_from([True, False, None])),
            is_output=draw(st.booleans()),
            fan_in=draw(st.one_of(st.none(), st.integers(0, 5))),
        )
        for i in range(n_layers)
    ]
    info = RunInfo(
        name="hostile",
        steps=draw(st.integers(0, 10**6)),
        layers=layers,
        loss=draw(st.one_of(st.sampled_from(["bce", "ce", "mse"]), st.sampled_from(NAMES + [None]))),
        output=draw(st.one_of(st.sampled_from(["sigmoid", "softmax"]), st.sampled_from(NAMES + [None]))),
        task=draw(st.sampled_from(["classification", "regression", None])),
        n_classes=draw(st.one_of(st.none(), st.integers(-1, 5))),
    )
    columns = draw(series)
    length = max((len(v) for v in columns.values()), default=0)
    outputs, targets = draw(probe_batch(length))
    recorder = OddRecorder(outputs)
    gaps = draw(st.lists(st.sampled_from([1, 1, 7, 1000]), min_size=length, max_size=length))
    for i, step in enumerate(np.cumsum(gaps, dtype=int) - 1):  # increasing, irregular steps
        row = {key: vals[i] for key, vals in columns.items() if i < len(vals)}
        recorder.record(int(step), row)
    trace = Trace(info, recorder, probe_inputs=draw(odd_arrays), probe_targets=targets)
    for kind, data, step, layer, located in draw(events):
        location = Location(file="user.py", line=3, function="f") if located else None
        trace.add_event(kind, data, step=step, layer=layer, location=location)
    return trace


def _check_findings(findings, rule):
    for finding in findings:
        assert isinstance(finding, Finding) and finding.code == rule.code
        assert isinstance(finding.message, str) and finding.message
        # The JSON contract must survive whatever numbers the evidence holds.
        json.dumps(finding.to_dict(), allow_nan=False)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trace=traces())
def test_every_rule_finds_or_skips_never_crashes(trace):
    for rule in RULES:
        ctx = RuleContext(trace=trace, thresholds=DEFAULT_THRESHOLDS, rule=rule)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy's overflow/invalid chatter counts as a crash too
            try:
                findings = list(rule.check(ctx) or ())
            except Skip:
                continue
        _check_findings(findings, rule)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trace=traces())
def test_run_rules_reports_no_internal_error(trace):
    outcome = run_rules(trace)
    assert outcome.errors == {}, "\n".join(f"{c}:\n{tb}" for c, tb in outcome.errors.items())


@settings(max_examples=60, deadline=None)
@given(
    outputs=hnp.arrays(np.float64, st.tuples(st.integers(1, 12), st.integers(1, 6), st.integers(1, 3)),
                       elements=nasty_floats),
    targets=hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 3)), elements=nasty_floats),
    losses=st.lists(nasty_floats, min_size=1, max_size=12),
)
def test_real_recorder_with_nasty_outputs_and_losses(outputs, targets, losses):
    """The same through the real Recorder: well-shaped arrays, hostile numbers."""
    recorder = Recorder()
    for step, out in enumerate(outputs):
        recorder.record(step, {(MODEL, "probe_loss"): losses[step % len(losses)],
                               ("layer1", "update_ratio"): losses[-1 - step % len(losses)]}, out)
    info = RunInfo(name="nasty", steps=len(outputs), output="sigmoid", loss="bce", task="classification",
                   layers=[LayerInfo("layer1", activation="sigmoid", is_output=True)])
    outcome = run_rules(Trace(info, recorder, probe_targets=targets))
    assert outcome.errors == {}, outcome.errors
