"""Each rule on small traces built by hand: a bad case, a good case, missing data.

The traces here are written directly (Recorder rows + events), not produced by a
network, so every number a rule sees is one this file chose — and the expected
verdicts follow from those numbers and the documented thresholds.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
import pytest

from netdoctor.config import DEFAULT_THRESHOLDS as TH
from netdoctor.rules import RuleContext, Skip, get_rule, run_rules
from netdoctor.trace import MODEL, Recorder, Trace
from netdoctor.types import LayerInfo, Location, RunInfo, Severity

N = 100  # recorded steps 0..99 in most traces
XOR_TARGETS = np.array([[0.0], [1.0], [1.0], [0.0]])
XOR_INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)


def make_trace(
    series: dict[tuple[str, str], Any] | None = None,
    *,
    n: int = N,
    outputs: np.ndarray | None = None,
    targets: np.ndarray | None = None,
    inputs: np.ndarray | None = None,
    events: Iterable[tuple] = (),
    layers: tuple[str, ...] = ("layer1", "layer2"),
    activation: str | None = "tanh",
    output: str | None = "sigmoid",
    loss: str | None = "bce",
    task: str | None = "classification",
    has_bias: bool | None = True,
) -> Trace:
    """A trace of `n` recorded steps. Series values are arrays of length n or scalars.

    `events` holds (kind, data) or (kind, data, {"step": .., "layer": .., "location": ..}).
    """
    info = RunInfo(
        name="hand-made",
        steps=n - 1,
        layers=[
            LayerInfo(name, activation=output if i == len(layers) - 1 else activation,
                      has_bias=has_bias, is_output=i == len(layers) - 1)
            for i, name in enumerate(layers)
        ],
        loss=loss,
        output=output,
        task=task,
    )
    recorder = Recorder()
    columns = {key: np.broadcast_to(np.asarray(value, dtype=float), (n,)) for key, value in (series or {}).items()}
    for i in range(n):
        row = {key: float(values[i]) for key, values in columns.items()}
        recorder.record(i, row, None if outputs is None else outputs[i])
    trace = Trace(info, recorder, probe_inputs=inputs, probe_targets=targets)
    for event in events:
        kind, data, *rest = event
        trace.add_event(kind, data, **(rest[0] if rest else {}))
    return trace


def judge(trace: Trace, code: str):
    """The findings of one rule; raises Skip like the rule does."""
    rule = get_rule(code)
    return list(rule.check(RuleContext(trace=trace, thresholds=TH, rule=rule)))


def codes_of(findings) -> list[str]:
    return [f.code for f in findings]


def decreasing(start=0.7, end=0.01, n=N):
    return start * (end / start) ** (np.arange(n) / (n - 1))


# --- ND1 outputs and loss ------------------------------------------------------------------


def pinned_outputs(first_pinned: int, value: float = 0.501):
    """4 probe inputs: spread apart until `first_pinned`, then all at `value` (+-1e-5)."""
    outputs = np.empty((N, 4, 1))
    early = np.array([0.2, 0.6, 0.7, 0.4])
    for step in range(N):
        if step < first_pinned:
            outputs[step, :, 0] = early
        else:
            outputs[step, :, 0] = value + np.array([1e-5, -1e-5, 0.0, 0.0])
    return outputs


def test_nd101_flags_outputs_pinned_to_the_end_and_says_value_inputs_and_first_step():
    trace = make_trace(outputs=pinned_outputs(40), targets=XOR_TARGETS, inputs=XOR_INPUTS)
    [finding] = judge(trace, "ND101")
    assert finding.severity == Severity.ERROR
    assert finding.step == 40
    assert "0.501" in finding.message and "step 40" in finding.message
    assert "[0, 1]" in finding.message  # the probe inputs are listed
    assert finding.evidence["pinned_std"] == TH.pinned_std
    assert finding.evidence["first_step"] == 40


def test_nd101_quiet_when_outputs_follow_the_targets():
    outputs = np.repeat(XOR_TARGETS[None] * 0.9 + 0.05, N, axis=0)
    assert judge(make_trace(outputs=outputs, targets=XOR_TARGETS), "ND101") == []


def test_nd101_quiet_when_a_pinned_phase_ends_before_the_run_does():
    outputs = pinned_outputs(10)
    outputs[60:, :, 0] = XOR_TARGETS[:, 0] * 0.8 + 0.1  # the network escapes the plateau
    assert judge(make_trace(outputs=outputs, targets=XOR_TARGETS), "ND101") == []


def test_nd101_half_band_catches_sigmoid_outputs_hovering_at_one_half():
    outputs = np.repeat((0.5 + np.array([0.02, -0.03, 0.01, -0.02]))[None, :, None], N, axis=0)
    assert codes_of(judge(make_trace(outputs=outputs, targets=XOR_TARGETS), "ND101")) == ["ND101"]
    # The same numbers from a linear output are not "at 0.5" in any meaningful sense.
    assert judge(make_trace(outputs=outputs, targets=XOR_TARGETS, output="linear"), "ND101") == []


def test_nd101_skips_when_a_constant_output_is_correct_or_nothing_was_recorded():
    with pytest.raises(Skip):
        judge(make_trace(outputs=pinned_outputs(40), targets=np.ones((4, 1))), "ND101")
    with pytest.raises(Skip):
        judge(make_trace(targets=XOR_TARGETS), "ND101")
    with pytest.raises(Skip):
        judge(make_trace(outputs=pinned_outputs(40)), "ND101")


def test_nd102_flags_one_class_for_every_input():
    # Outputs differ (so not pinned) but all sit above 0.5: always class 1.
    outputs = np.repeat(np.array([0.6, 0.7, 0.8, 0.9])[None, :, None], N, axis=0)
    trace = make_trace(outputs=outputs, targets=XOR_TARGETS)
    [finding] = judge(trace, "ND102")
    assert finding.evidence["predicted_class"] == 1
    assert finding.evidence["accuracy"] == pytest.approx(0.5)
    assert judge(trace, "ND101") == []


def test_nd102_multi_unit_outputs_use_the_arg_max():
    targets = np.eye(3)[[0, 1, 2, 0]]
    constant = np.repeat(np.array([[0.2, 0.7, 0.1]] * 4)[None], N, axis=0)
    assert codes_of(judge(make_trace(outputs=constant, targets=targets, output="softmax"), "ND102")) == ["ND102"]
    right = np.repeat((targets * 0.8 + 0.1)[None], N, axis=0)
    assert judge(make_trace(outputs=right, targets=targets, output="softmax"), "ND102") == []


def test_nd102_quiet_on_correct_predictions_and_skips_regression():
    outputs = np.repeat((XOR_TARGETS * 0.8 + 0.1)[None], N, axis=0)
    assert judge(make_trace(outputs=outputs, targets=XOR_TARGETS), "ND102") == []
    with pytest.raises(Skip):
        judge(make_trace(outputs=outputs, targets=XOR_TARGETS, task="regression"), "ND102")


def ce_trace(initial: float) -> Trace:
    losses = np.full(N, 0.5)
    losses[0] = initial
    outputs = np.full((N, 3, 3), 1 / 3)
    return make_trace({(MODEL, "probe_loss"): losses}, outputs=outputs, targets=np.eye(3),
                      output="softmax", loss="ce")


def test_nd103_grades_the_initial_loss_against_ln_c():
    ln3 = math.log(3)
    assert judge(ce_trace(ln3 * 1.1), "ND103") == []
    [warning] = judge(ce_trace(ln3 * 3.0), "ND103")
    assert warning.severity == Severity.WARNING
    [error] = judge(ce_trace(ln3 * 6.0), "ND103")
    assert error.severity == Severity.ERROR
    assert error.evidence["expected_loss"] == pytest.approx(ln3)
    assert error.evidence["ratio"] == pytest.approx(6.0)


def test_nd103_mse_reference_follows_targets_between_0_and_1():
    # Sigmoid + MSE on targets 0.1 .. 0.9: outputs at 0.5 give mean((t - 0.5)^2) = 0.08, not 0.25.
    targets = np.array([[0.1], [0.3], [0.7], [0.9]])
    outputs = np.full((N, 4, 1), 0.5)
    start = float(np.mean((targets - 0.5) ** 2))
    losses = np.linspace(start, start / 10, N)
    fine = make_trace({(MODEL, "probe_loss"): losses}, outputs=outputs, targets=targets, loss="mse")
    assert judge(fine, "ND103") == []
    # The same start against 0/1 targets is 0.32x the 0.25 reference: judged.
    binary = make_trace({(MODEL, "probe_loss"): losses}, outputs=outputs, targets=XOR_TARGETS, loss="mse")
    [low] = judge(binary, "ND103")
    assert low.evidence["expected_loss"] == pytest.approx(0.25)


def test_nd103_skips_regression():
    with pytest.raises(Skip):
        judge(make_trace({(MODEL, "probe_loss"): 1.0}, output="linear", loss="mse", task="regression"), "ND103")


def test_nd104_flat_loss_is_an_error_and_a_crawl_a_warning():
    [flat] = judge(make_trace({(MODEL, "probe_loss"): 0.6931}), "ND104")
    assert flat.severity == Severity.ERROR
    crawl = 0.7 - 1e-6 * np.arange(N)
    [slow] = judge(make_trace({(MODEL, "probe_loss"): crawl}), "ND104")
    assert slow.severity == Severity.WARNING


def test_nd104_quiet_while_learning_or_once_fitted():
    assert judge(make_trace({(MODEL, "probe_loss"): np.linspace(0.7, 0.3, N)}), "ND104") == []
    fitted = np.concatenate([decreasing(0.7, 0.01, 50), np.full(50, 0.01)])
    assert judge(make_trace({(MODEL, "probe_loss"): fitted}), "ND104") == []


def test_nd104_smooths_a_noisy_per_batch_loss():
    rng = np.random.default_rng(0)
    noisy = np.linspace(0.7, 0.05, N) + rng.uniform(-0.02, 0.02, N)
    assert judge(make_trace({(MODEL, "loss"): noisy}), "ND104") == []
    with pytest.raises(Skip):
        judge(make_trace(), "ND104")


def test_nd105_flags_a_loss_climbing_back_up():
    loss = np.concatenate([np.linspace(0.7, 0.2, 50), np.linspace(0.2, 0.9, 50)])
    [finding] = judge(make_trace({(MODEL, "probe_loss"): loss}), "ND105")
    assert finding.step == 49
    # the level is read from the median-smoothed curve: close to, not exactly, the raw minimum
    assert finding.evidence["lowest_loss"] == pytest.approx(0.2, abs=0.015)


def test_nd105_ignores_single_noisy_steps_near_the_end():
    # Per-sample SGD: the loss comes down to ~0.02 but single recorded steps jump to 0.3.
    rng = np.random.default_rng(0)
    level = 0.7 * np.exp(-np.linspace(0, 4, N)) + 0.02
    spikes = np.where(rng.random(N) < 0.15, rng.uniform(0.1, 0.3, N), 0.0)
    assert judge(make_trace({(MODEL, "probe_loss"): level + spikes}), "ND105") == []
    assert judge(make_trace({(MODEL, "loss"): level + spikes}), "ND105") == []
    # ... while a loss that really climbs back up at the end is still flagged
    climbing = np.concatenate([level[: N // 2], np.linspace(level[N // 2], 0.8, N - N // 2)])
    assert [f.code for f in judge(make_trace({(MODEL, "probe_loss"): climbing + spikes}), "ND105")] == ["ND105"]


def test_nd105_a_short_spike_that_recovers_is_not_divergence():
    # Full-batch descent in a sharp valley: one bump of a few steps mid-run, then fitted.
    loss = 0.7 * np.exp(-np.linspace(0, 5, N))
    loss[60:63] = 0.8
    loss[-3:] = loss[-4] * 3   # the last few recorded steps bounce up
    assert judge(make_trace({(MODEL, "probe_loss"): loss}), "ND105") == []


def test_nd105_flags_a_loss_bouncing_up_and_down():
    loss = np.where(np.arange(N) % 2 == 0, 0.4, 0.9)
    [finding] = judge(make_trace({(MODEL, "probe_loss"): loss}), "ND105")
    assert finding.evidence["sign_change_fraction"] > TH.oscillation_sign_change


def test_nd105_quiet_on_a_falling_loss_and_on_tiny_wiggles_near_zero():
    assert judge(make_trace({(MODEL, "probe_loss"): decreasing()}), "ND105") == []
    near_zero = decreasing(0.7, 1e-4)
    near_zero[-5:] = 3e-4  # 3x its minimum, but 0.04% of where it started
    assert judge(make_trace({(MODEL, "probe_loss"): near_zero}), "ND105") == []


def test_nd106_names_the_first_tensor_and_step():
    loss = decreasing()
    loss[37:] = np.nan
    event = ("nonfinite", {"tensor": "layer2.z", "step": 36}, {"step": 36, "layer": "layer2"})
    [finding] = judge(make_trace({(MODEL, "loss"): loss}, events=[event]), "ND106")
    assert finding.step == 36 and "layer2.z" in finding.message
    assert finding.layer == "layer2"
    [from_loss] = judge(make_trace({(MODEL, "loss"): loss}), "ND106")
    assert from_loss.step == 37


def test_nd106_reads_a_gap_in_the_batch_loss_as_unmeasured():
    # A step whose passes were not seen has no loss (NaN in the series); finite losses after it
    # show the network was never NaN. A NaN that stays to the end is one.
    gap = decreasing()
    gap[3] = np.nan
    assert judge(make_trace({(MODEL, "loss"): gap}), "ND106") == []
    stays = decreasing()
    stays[3:] = np.nan
    [finding] = judge(make_trace({(MODEL, "loss"): stays}), "ND106")
    assert finding.step == 3
    last_unmeasured = decreasing()
    last_unmeasured[-1] = np.nan   # the last step's passes were not seen
    assert judge(make_trace({(MODEL, "loss"): last_unmeasured}), "ND106") == []
    inf_once = decreasing()
    inf_once[3] = np.inf
    [finding] = judge(make_trace({(MODEL, "loss"): inf_once}), "ND106")
    assert finding.step == 3


def test_nd106_quiet_when_finite_and_skips_without_data():
    assert judge(make_trace({(MODEL, "loss"): decreasing(), ("layer1", "nonfinite"): 0.0}), "ND106") == []
    with pytest.raises(Skip):
        judge(make_trace(), "ND106")


# --- ND2 gradients ---------------------------------------------------------------------------


def grads(layer1: float, layer2: float, loss=0.69, quantity="grad_abs_mean") -> Trace:
    return make_trace({("layer1", quantity): layer1, ("layer2", quantity): layer2, (MODEL, "probe_loss"): loss})


def test_nd201_flags_tiny_gradients_while_the_loss_is_high():
    [finding] = judge(grads(1e-9, 1e-3), "ND201")
    assert finding.layer == "layer1" and finding.severity == Severity.ERROR
    [ratio] = judge(grads(1e-5, 1e-1, quantity="grad_norm"), "ND201")  # 1e-4 ratio, first norm 1e-5
    assert ratio.severity == Severity.WARNING


def test_nd201_quiet_on_healthy_or_fitted_networks():
    assert judge(grads(1e-2, 1e-2), "ND201") == []
    assert judge(grads(1e-9, 1e-9, loss=decreasing(0.7, 1e-4)), "ND201") == []
    with pytest.raises(Skip):
        judge(make_trace({(MODEL, "loss"): 0.5}), "ND201")


def test_nd202_flags_gradients_growing_back_through_the_layers_and_over_time():
    [layers] = judge(grads(100.0, 1.0, quantity="grad_norm"), "ND202")
    assert layers.severity == Severity.WARNING and layers.layer == "layer1"
    growing = make_trace({(MODEL, "grad_norm"): np.geomspace(1, 1e4, N),
                          (MODEL, "probe_loss"): np.linspace(0.7, 2, N)})
    [time] = judge(growing, "ND202")
    assert time.severity == Severity.ERROR and time.evidence["growth"] > TH.exploding_ratio


def test_nd202_quiet_on_steady_gradients():
    assert judge(grads(1.0, 1.0, quantity="grad_norm"), "ND202") == []
    # Growing gradients while the loss falls: leaving a plateau, not exploding.
    escaping = make_trace({(MODEL, "grad_norm"): np.geomspace(1e-3, 1, N), (MODEL, "probe_loss"): decreasing()})
    assert judge(escaping, "ND202") == []


def gradcheck(params: list[tuple[str, str, float, float, float]], step: int = 0, n_samples: int = 4):
    rows = [{"layer": layer, "param": param, "rel_err": err, "cosine": cos, "scale": scale, "n_checked": 4}
            for layer, param, err, cos, scale in params]
    return ("gradcheck", {"loss_kind": "bce", "n_samples": n_samples, "params": rows}, {"step": step})


RIGHT = 1e-9


def test_nd203_names_the_layer_nearest_the_output_where_backprop_goes_wrong():
    wrong = [("layer1", "weight", 0.6, 0.3, 0.5), ("layer1", "bias", 0.5, 0.4, 0.5),
             ("layer2", "weight", RIGHT, 1.0, 1.0), ("layer2", "bias", RIGHT, 1.0, 1.0)]
    trace = make_trace(events=[gradcheck(wrong, s) for s in (0, 50, 99)])
    [finding] = judge(trace, "ND203")
    assert finding.severity == Severity.ERROR and finding.layer == "layer1"
    both = [("layer1", "weight", 0.6, 0.3, 0.5), ("layer2", "weight", 0.2, 0.9, 0.8)]
    [finding] = judge(make_trace(events=[gradcheck(both)]), "ND203")
    assert finding.layer == "layer2"


def test_nd203_quiet_on_right_gradients_and_leaves_a_pure_scale_to_nd204():
    right = [("layer1", "weight", RIGHT, 1.0, 1.0), ("layer2", "weight", RIGHT, 1.0, 1.0)]
    assert judge(make_trace(events=[gradcheck(right)]), "ND203") == []
    scaled = [("layer1", "weight", 0.6, 1.0, 4.0), ("layer2", "weight", 0.6, 1.0, 4.0)]
    assert judge(make_trace(events=[gradcheck(scaled)]), "ND203") == []
    with pytest.raises(Skip):
        judge(make_trace(), "ND203")


def test_nd203_needs_the_first_check_and_most_checks_to_disagree():
    # Only the last check disagrees: finite differences on a fitted net, not a bug.
    checks = [gradcheck([("layer1", "weight", RIGHT, 1.0, 1.0)], s) for s in (0, 50)]
    checks.append(gradcheck([("layer1", "weight", 0.5, 0.5, 0.5)], 99))
    assert judge(make_trace(events=checks), "ND203") == []


def test_nd203_a_bias_at_a_relu_kink_is_only_info():
    kink = [("layer1", "weight", RIGHT, 1.0, 1.0), ("layer1", "bias", 0.4, 0.6, 0.6),
            ("layer2", "weight", RIGHT, 1.0, 1.0)]
    [info] = judge(make_trace(events=[gradcheck(kink)], activation="relu"), "ND203")
    assert info.severity == Severity.INFO
    [error] = judge(make_trace(events=[gradcheck(kink)], activation="tanh"), "ND203")
    assert error.severity == Severity.ERROR


def test_nd204_flags_a_right_direction_with_a_wrong_size_and_names_the_batch():
    scaled = [("layer1", "weight", 0.6, 1.0, 4.0), ("layer2", "weight", 0.6, 1.0, 4.0)]
    trace = make_trace(events=[gradcheck(scaled)], outputs=np.zeros((N, 4, 1)))
    [finding] = judge(trace, "ND204")
    assert finding.evidence["typical_scale"] == pytest.approx(4.0)
    assert "summed instead of averaged" in finding.message
    # Checked on one sample (per-sample SGD), a factor of 4 is no batch's doing, whatever the probe batch.
    one = make_trace(events=[gradcheck(scaled, n_samples=1)], outputs=np.zeros((N, 4, 1)))
    [unexplained] = judge(one, "ND204")
    assert "samples" not in unexplained.message and "batch size" not in unexplained.message
    right = [("layer1", "weight", RIGHT, 1.0, 1.0)]
    assert judge(make_trace(events=[gradcheck(right)]), "ND204") == []


def test_nd203_weighs_the_checks_read_from_updates_together():
    # Step 2's updates lined up with the gradient by chance (Adam's first steps are
    # -lr * sign(g)); a later check of the same run showed them bent, as an optimizer's are.
    def from_updates(event, not_checked=False):
        kind, data, where = event
        data = {**data, "claimed": "updates"}
        if not_checked:
            data["not_checked"] = "the updates are not -lr * gradient"
            data["params"] = [{**row, "rel_err": math.nan, "cosine": math.nan, "scale": math.nan}
                              for row in data["params"]]
        return kind, data, where

    wrong = [("layer1", "weight", 0.7, 0.7, 3.0), ("layer2", "weight", RIGHT, 1.0, 1.0),
             ("layer2", "bias", 1.0, -1.0, -0.5)]
    early = from_updates(gradcheck(wrong, step=2))
    bent = from_updates(gradcheck(wrong, step=32), not_checked=True)
    fitted = {(MODEL, "probe_loss"): np.geomspace(0.7, 0.0005, N)}
    flat = {(MODEL, "probe_loss"): np.full(N, 0.25)}
    again = from_updates(gradcheck(wrong, step=512))
    [doubt] = judge(make_trace(fitted, events=[early, bent, again]), "ND203")
    assert doubt.severity == Severity.WARNING and doubt.evidence["optimizer_in_doubt"]
    # A run that does not fit keeps the error: the updates may be plain descent with a wrong
    # derivative (rescaling the gradient entry by entry looks bent too, at one check).
    [error] = judge(make_trace(flat, events=[early, bent, again]), "ND203")
    assert error.severity == Severity.ERROR
    # Bent at half the checks or more: the run's optimizer bends its updates; none is a verdict.
    with pytest.raises(Skip, match="adaptive"):
        judge(make_trace(flat, events=[early, bent]), "ND203")
    # Nor is the size of an update read as a gradient, once any check showed them bent.
    scaled = from_updates(gradcheck([("layer2", "weight", 0.6, 1.0, 4.0)], step=512))
    [size] = judge(make_trace(fitted, events=[scaled]), "ND204")
    assert size.evidence["typical_scale"] == pytest.approx(4.0)
    with pytest.raises(Skip, match="adaptive"):
        judge(make_trace(fitted, events=[scaled, bent]), "ND204")
    # And with no check showing the updates bent, a fitting run's mismatch stays an error.
    [error] = judge(make_trace(fitted, events=[early]), "ND203")
    assert error.severity == Severity.ERROR


def test_nd204_leaves_the_size_alone_when_another_loss_explains_the_gradients_as_well():
    # One sample through one sigmoid unit: MSE's and BCE's gradients point the same way and
    # differ in size by o(1 - o). Judged against the wrong one, a right MSE backprop looks 4x off.
    scaled = [("layer1", "weight", 0.6, 1.0, 4.0), ("layer2", "weight", 0.6, 1.0, 4.0)]
    kind, data, where = gradcheck(scaled, n_samples=1)
    ambiguous = (kind, {**data, "loss_ambiguous": ["bce", "mse"]}, where)
    with pytest.raises(Skip, match="BCE or MSE"):
        judge(make_trace(events=[ambiguous], outputs=np.zeros((N, 4, 1))), "ND204")
    # The same sizes with the loss told apart (a later check on several samples) still count.
    told = gradcheck(scaled, step=50, n_samples=4)
    [finding] = judge(make_trace(events=[ambiguous, told], outputs=np.zeros((N, 4, 1))), "ND204")
    assert finding.evidence["typical_scale"] == pytest.approx(4.0)


# --- ND3 activations ---------------------------------------------------------------------------


def test_nd301_flags_saturated_hidden_layers_only():
    trace = make_trace({("layer1", "sat_frac"): 0.9, ("layer2", "sat_frac"): 0.95})
    [finding] = judge(trace, "ND301")
    assert finding.layer == "layer1"  # layer2 is the output layer: confident, not stuck
    assert judge(make_trace({("layer1", "sat_frac"): 0.1}), "ND301") == []
    with pytest.raises(Skip):
        judge(make_trace(), "ND301")


def test_nd302_all_dead_is_an_error_most_dead_a_warning():
    [dead] = judge(make_trace({("layer1", "dead_frac"): 1.0}, activation="relu"), "ND302")
    assert dead.severity == Severity.ERROR
    [most] = judge(make_trace({("layer1", "dead_frac"): 0.7}, activation="relu"), "ND302")
    assert most.severity == Severity.WARNING
    assert judge(make_trace({("layer1", "dead_frac"): 0.1}, activation="relu"), "ND302") == []


def function_event(role: str, declared: str | None, identified: str | None, *, mistake=False,
                   declared_err=0.0, f0=0.5, value_range=(0.0, 1.0), location=None):
    data = {"role": role, "declared": declared, "identified": identified, "max_err": 0.0,
            "declared_err": declared_err, "f0": f0, "range": list(value_range), "mistake": mistake,
            "description": f"behaves like {identified}" if identified else None,
            "fix": "return expit(vec)" if mistake else None}
    return ("function", data, {"layer": "layer1", "location": location})


def test_nd303_names_the_mistake_with_value_at_zero_range_and_location():
    where = Location(file="original.py", line=67, function="Backpropogation.activationFunction")
    event = function_event("hidden", "sigmoid", "1/(1+sigmoid(-z))", mistake=True, declared_err=0.5,
                           f0=0.667, value_range=(0.5, 1.0), location=where)
    [finding] = judge(make_trace(events=[event]), "ND303")
    assert finding.severity == Severity.ERROR
    assert "0.667" in finding.message and "(0.5, 1)" in finding.message
    assert "1/(1+sigmoid(-z))" in finding.message
    assert finding.location == where and finding.fix == "return expit(vec)"


def test_nd303_grades_other_functions_and_passes_the_declared_one():
    tanh_for_sigmoid = function_event("hidden", "sigmoid", "tanh", declared_err=0.5, f0=0.0, value_range=(-1, 1))
    assert [f.severity for f in judge(make_trace(events=[tanh_for_sigmoid]), "ND303")] == [Severity.ERROR]
    unknown = function_event("hidden", "sigmoid", None, declared_err=0.3)
    assert [f.severity for f in judge(make_trace(events=[unknown]), "ND303")] == [Severity.WARNING]
    right = function_event("hidden", "sigmoid", "sigmoid")
    assert judge(make_trace(events=[right]), "ND303") == []
    derivative_only = function_event("derivative", "sigmoid", "sigmoid_derivative_of_activation", mistake=True)
    with pytest.raises(Skip):
        judge(make_trace(events=[derivative_only]), "ND303")


def test_nd304_flags_a_wrong_derivative_and_passes_a_right_one():
    wrong = function_event("derivative", "sigmoid", "sigmoid_derivative_of_activation", mistake=True,
                           declared_err=0.2, f0=0.235, value_range=(0.197, 0.25))
    [finding] = judge(make_trace(events=[wrong]), "ND304")
    assert finding.severity == Severity.ERROR and finding.layer == "layer1"
    right = function_event("derivative", "sigmoid", "sigmoid", f0=0.25, value_range=(0.0, 0.25))
    assert judge(make_trace(events=[right]), "ND304") == []
    with pytest.raises(Skip):
        judge(make_trace(), "ND304")


# --- ND4 parameters ----------------------------------------------------------------------------


def init_event(layer: str, kind: str = "param_init", **data):
    base = {"w_min": -0.5, "w_max": 0.5, "w_mean": 0.0, "w_std": 0.3, "fan_in": 4, "fan_out": 4,
            "activation": "tanh", "has_bias": True, "b_min": 0.0, "b_max": 0.0, "b_std": 0.0,
            "duplicate_units": 0}
    base.update(data)
    return (kind, base, {"layer": layer})


def test_nd401_symmetry_never_broken_is_an_error():
    stuck = [init_event("layer1", duplicate_units=3), init_event("layer1", "param_final", duplicate_units=3)]
    [finding] = judge(make_trace(events=stuck), "ND401")
    assert finding.severity == Severity.ERROR and finding.layer == "layer1"
    broken = [init_event("layer1", duplicate_units=3), init_event("layer1", "param_final", duplicate_units=0)]
    assert judge(make_trace(events=broken), "ND401") == []
    [unknown_end] = judge(make_trace(events=[init_event("layer1", duplicate_units=3)]), "ND401")
    assert unknown_end.severity == Severity.WARNING
    with pytest.raises(Skip):
        judge(make_trace(), "ND401")


def test_nd402_same_sign_layers_need_enough_weights_between_them():
    positive = dict(w_min=0.01, w_max=0.95, w_mean=0.5, w_std=0.29)
    found = judge(make_trace(events=[init_event("layer1", **positive), init_event("layer2", **positive)]), "ND402")
    # 16 + 16 weights; one cause (one way of drawing them), so one finding naming both layers
    [finding] = found
    assert finding.evidence["layers"] == ["layer1", "layer2"]
    assert set(finding.evidence["per_layer"]) == {"layer1", "layer2"}
    tiny = dict(positive, fan_in=2, fan_out=1)  # two weights can share a sign by chance
    assert judge(make_trace(events=[init_event("layer1", **tiny)]), "ND402") == []
    # 8 weights drawn centred on 0 share a sign once in 128 draws: still chance
    eight = dict(positive, fan_in=8, fan_out=1)
    assert judge(make_trace(events=[init_event("layer1", **eight)]), "ND402") == []
    assert len(judge(make_trace(events=[init_event("layer1", **dict(eight, fan_in=12))]), "ND402")) == 1
    assert judge(make_trace(events=[init_event("layer1")]), "ND402") == []


def test_nd402_is_an_error_only_when_the_run_did_not_fit():
    positive = dict(w_min=0.01, w_max=0.95, w_mean=0.5, w_std=0.29)
    layers = [init_event("layer1", **positive), init_event("layer2", **positive)]
    stuck = np.full(N, 0.69)                       # loss never moves
    fitted = 0.69 * np.exp(-np.linspace(0, 6, N))  # loss ends near 0.2% of its start
    for loss, expected in ((stuck, Severity.ERROR), (fitted, Severity.WARNING)):
        found = judge(make_trace({(MODEL, "probe_loss"): loss}, events=layers), "ND402")
        assert {f.severity for f in found} == {expected}
    # no loss recorded at all: nothing says the run failed, so a warning
    assert {f.severity for f in judge(make_trace(events=layers), "ND402")} == {Severity.WARNING}


def test_nd403_grades_the_scale_against_glorot_and_he():
    glorot = math.sqrt(2 / (784 + 256))
    events = [init_event("layer1", fan_in=784, fan_out=256, w_std=1.0),       # ~23x: error
              init_event("layer2", fan_in=784, fan_out=256, w_std=3 * glorot),  # 3x: warning
              ]
    # Both too large, set up the same way: one finding naming both, with per-layer ratios.
    [finding] = judge(make_trace(events=events), "ND403")
    assert finding.evidence["layers"] == ["layer1", "layer2"]
    ratios = {layer: e["ratio"] for layer, e in finding.evidence["per_layer"].items()}
    assert ratios["layer1"] > 10 and 2 < ratios["layer2"] < 10
    # Far off is an error only on a run that fails; a warning while nothing says it failed
    # (no loss) and when the run fits.
    assert finding.severity == Severity.WARNING
    stuck = np.full(N, 0.69)
    fitted = 0.69 * np.exp(-np.linspace(0, 6, N))
    [failed] = judge(make_trace({(MODEL, "probe_loss"): stuck}, events=events), "ND403")
    assert failed.severity == Severity.ERROR
    [fine] = judge(make_trace({(MODEL, "probe_loss"): fitted}, events=events), "ND403")
    assert fine.severity == Severity.WARNING
    only_3x = [events[1]]
    [mild] = judge(make_trace({(MODEL, "probe_loss"): stuck}, events=only_3x), "ND403")
    assert mild.severity == Severity.WARNING
    he = math.sqrt(2 / 784)
    relu_ok = init_event("layer1", fan_in=784, fan_out=256, w_std=he, activation="relu")
    assert judge(make_trace(events=[relu_ok]), "ND403") == []
    assert judge(make_trace(events=[init_event("layer1", fan_in=784, fan_out=256, w_std=glorot)]), "ND403") == []


def test_nd403_allows_for_how_loosely_a_few_weights_read_their_scale():
    # A 4x4 sigmoid layer: Glorot's std is 0.5. Sixteen weights drawn at std 1 (2x) read an
    # rms of 1.15 on one seed (2.3x): within what 16 draws can show, so not judged off.
    glorot = math.sqrt(2 / (4 + 4))
    drawn = init_event("layer1", fan_in=4, fan_out=4, w_std=2.3 * glorot, activation="sigmoid")
    assert judge(make_trace(events=[drawn]), "ND403") == []
    # The same ratio on a 784x256 layer is beyond any sampling doubt.
    big = init_event("layer1", fan_in=784, fan_out=256, w_std=2.3 * math.sqrt(2 / (784 + 256)),
                     activation="sigmoid")
    [finding] = judge(make_trace(events=[big]), "ND403")
    low, high = finding.evidence["ratio_bounds"]
    assert 2.0 < low < 2.3 < high
    # A small layer far off (5x) is still judged.
    far = init_event("layer1", fan_in=4, fan_out=4, w_std=5 * glorot, activation="sigmoid")
    assert len(judge(make_trace(events=[far]), "ND403")) == 1


def test_nd404_a_bias_never_updated_while_pushed_is_an_error():
    trace = make_trace({("layer1", "update_norm"): 0.01, ("layer1", "bias_update_norm"): 0.0,
                        ("layer1", "grad_norm"): 0.1, ("layer1", "bias_grad_norm"): 0.05})
    [finding] = judge(trace, "ND404")
    assert finding.severity == Severity.ERROR and finding.evidence["param"] == "layer1.bias"
    moving = make_trace({("layer1", "update_norm"): 0.01, ("layer1", "bias_update_norm"): 0.01})
    assert judge(moving, "ND404") == []


def test_nd404_falls_back_on_identical_initial_and_final_statistics():
    same = [init_event("layer1", b_min=0.1, b_max=0.9, b_std=0.3),
            init_event("layer1", "param_final", w_min=-0.7, w_max=0.8, w_std=0.4, b_min=0.1, b_max=0.9, b_std=0.3)]
    [finding] = judge(make_trace(events=same), "ND404")
    assert finding.evidence["param"] == "layer1.bias"
    with pytest.raises(Skip):
        judge(make_trace(), "ND404")


def test_nd405_flags_layers_without_bias():
    # One habit of the code, one finding naming every layer without a bias.
    [found] = judge(make_trace(has_bias=False), "ND405")
    assert found.evidence["layers"] == ["layer1", "layer2"] and found.layer == "layer1"
    assert found.severity == Severity.WARNING            # nothing says the run failed
    assert judge(make_trace(has_bias=True), "ND405") == []
    with pytest.raises(Skip):
        judge(make_trace(has_bias=None), "ND405")


def test_nd405_is_an_error_where_an_all_zero_input_binds_a_run_that_does_not_fit():
    stuck = np.full(N, 0.69)
    fitted = 0.69 * np.exp(-np.linspace(0, 6, N))
    outputs = np.full((N, 4, 1), 0.5)

    def nd405(loss, inputs):
        return judge(make_trace({(MODEL, "probe_loss"): loss}, outputs=outputs, targets=XOR_TARGETS,
                                inputs=inputs, has_bias=False), "ND405")

    [failed] = nd405(stuck, XOR_INPUTS)                   # XOR holds (0, 0): z = 0 whatever W
    assert failed.severity == Severity.ERROR and failed.evidence["zero_inputs"] == 1
    [fine] = nd405(fitted, XOR_INPUTS)                    # it trained anyway
    assert fine.severity == Severity.WARNING
    [no_zero] = nd405(stuck, XOR_INPUTS + 1.0)            # no all-zero input: the bias is not what binds
    assert no_zero.severity == Severity.WARNING


# --- ND5 updates ----------------------------------------------------------------------------------


def ratios(layer1, layer2, loss=0.69) -> Trace:
    return make_trace({("layer1", "update_ratio"): layer1, ("layer2", "update_ratio"): layer2,
                       (MODEL, "probe_loss"): loss})


def test_nd501_grades_large_steps():
    found = {f.layer: f.severity for f in judge(ratios(0.5, 0.05), "ND501")}
    assert found == {"layer1": Severity.ERROR, "layer2": Severity.WARNING}
    assert judge(ratios(1e-3, 2e-3), "ND501") == []


def test_nd501_steps_larger_than_the_weights_count_even_when_the_run_then_stalls():
    burst = np.full(N, 1e-7)
    burst[1:4] = 30.0  # three huge steps, then saturation: the median alone would miss it
    [finding] = judge(ratios(burst, 1e-3), "ND501")
    assert finding.severity == Severity.ERROR and finding.evidence["burst_steps"] == 3


def test_nd502_needs_every_layer_slow():
    [finding] = judge(ratios(1e-7, 2e-7), "ND502")
    assert finding.severity == Severity.ERROR
    assert judge(ratios(1e-7, 1e-3), "ND502") == []  # one slow layer: a gradient problem (ND201)


def test_nd502_small_steps_are_an_error_only_when_the_run_learned_nothing():
    # Steps between the two bounds: the loss that did not move makes them the reason...
    [stuck] = judge(ratios(5e-5, 2e-5), "ND502")
    assert stuck.severity == Severity.ERROR
    # ...a loss that falls to 70% of its start (no fit, but learning) leaves a warning.
    [learning] = judge(ratios(5e-5, 2e-5, loss=decreasing(0.69, 0.48, N)), "ND502")
    assert learning.severity == Severity.WARNING


def test_nd502_ignores_the_steps_after_the_loss_has_fitted_and_after_bursts():
    fitted = np.concatenate([np.full(20, 1e-3), np.full(80, 1e-8)])
    loss = np.concatenate([decreasing(0.7, 0.01, 20), np.full(80, 0.01)])
    assert judge(ratios(fitted, fitted, loss=loss), "ND502") == []
    burst = np.full(N, 1e-8)
    burst[1:3] = 50.0
    assert judge(ratios(burst, burst), "ND502") == []
    with pytest.raises(Skip):
        judge(make_trace(), "ND502")


def test_nd503_flags_updates_going_uphill():
    [finding] = judge(make_trace({("layer1", "update_cos"): -1.0, ("layer2", "update_cos"): 1.0}), "ND503")
    assert finding.layer == "layer1"
    momentum = np.where(np.arange(N) % 10 == 0, -0.2, 0.8)  # occasional overshoot is fine
    assert judge(make_trace({("layer1", "update_cos"): momentum}), "ND503") == []
    with pytest.raises(Skip):
        judge(make_trace(), "ND503")


# --- ND6 data ---------------------------------------------------------------------------------------


def data_event(**data):
    base = {"n_samples": 4, "n_features": 2, "x_abs_mean": 0.5, "x_abs_max": 1.0, "x_std": 0.5,
            "y_shape": [4], "target_kind": "binary", "target_min": 0.0, "target_max": 1.0,
            "classes": [0, 1], "out_units": 1, "output_range": [0.0, 1.0], "targets_outside": 0.0}
    base.update(data)
    return ("data", base)


def test_nd601_flags_targets_outside_the_output_range():
    event = data_event(output_range=[0.5, 1.0], targets_outside=0.5)
    [finding] = judge(make_trace(events=[event]), "ND601")
    assert "50%" in finding.message and "as low as 0" in finding.message
    assert judge(make_trace(events=[data_event()]), "ND601") == []
    with pytest.raises(Skip):
        judge(make_trace(), "ND601")


def test_nd602_flags_inputs_far_from_unit_scale():
    [large] = judge(make_trace(events=[data_event(x_abs_mean=500.0, x_abs_max=1000.0)]), "ND602")
    assert large.evidence["input_scale_max"] == TH.input_scale_max
    assert codes_of(judge(make_trace(events=[data_event(x_abs_mean=0.0)]), "ND602")) == ["ND602"]
    assert judge(make_trace(events=[data_event()]), "ND602") == []


def test_nd603_flags_targets_that_do_not_fit_the_output_units():
    onehot = data_event(y_shape=[4, 3], target_kind="onehot", classes=[0, 1, 2], out_units=2)
    assert codes_of(judge(make_trace(events=[onehot]), "ND603")) == ["ND603"]
    labels = data_event(target_kind="labels", classes=[0, 1, 2, 3, 4], out_units=3)
    assert codes_of(judge(make_trace(events=[labels]), "ND603")) == ["ND603"]
    one_unit = data_event(target_kind="continuous", classes=None, target_max=2.0)
    [guess] = judge(make_trace(events=[one_unit]), "ND603")
    assert guess.severity == Severity.WARNING
    fits = data_event(y_shape=[4], target_kind="labels", classes=[0, 1, 2], out_units=3)
    assert judge(make_trace(events=[fits]), "ND603") == []
    regression = data_event(target_kind="continuous", classes=None, target_max=2.0)
    assert judge(make_trace(events=[regression], output="linear", task="regression"), "ND603") == []


def test_nd603_flags_a_label_column_broadcast_against_several_outputs():
    broadcast = data_event(y_shape=[4], target_kind="labels", classes=[0, 1, 2], out_units=3,
                           labels_broadcast=True)
    assert codes_of(judge(make_trace(events=[broadcast]), "ND603")) == ["ND603"]
    # the same labels, turned into one-hot rows by the code before the loss, are fine
    converted = data_event(y_shape=[4], target_kind="labels", classes=[0, 1, 2], out_units=3,
                           labels_broadcast=False)
    assert judge(make_trace(events=[converted]), "ND603") == []


# --- all rules together --------------------------------------------------------------------------


def test_an_empty_trace_makes_every_rule_skip_or_stay_quiet():
    outcome = run_rules(make_trace(n=1, layers=()))
    assert outcome.errors == {}
    assert outcome.findings == []


def test_nd105_a_loss_that_climbs_into_overflow_has_diverged():
    loss = np.concatenate([[0.8, 0.5, 3.0, 40.0, 9e5], np.full(N - 5, np.inf)])
    [finding] = judge(make_trace({(MODEL, "loss"): loss}), "ND105")
    assert finding.step == 5 and "Inf" in finding.message
    nan_out_of_nowhere = decreasing()
    nan_out_of_nowhere[50:] = np.nan
    assert judge(make_trace({(MODEL, "loss"): nan_out_of_nowhere}), "ND105") == []


def test_output_rules_ignore_steps_whose_probe_batch_was_not_measured():
    outputs = pinned_outputs(40)
    outputs[1::3] = np.nan  # the observer measured the probe batch on 2 of every 3 rows only
    trace = make_trace({(MODEL, "loss"): decreasing()}, outputs=outputs, targets=XOR_TARGETS)
    [pinned] = judge(trace, "ND101")
    assert pinned.step == 41  # row 40 was not measured (40 % 3 == 1): 41 is the first pinned one
    assert judge(trace, "ND106") == []


def test_locations_known_to_the_observer_are_copied_into_findings():
    where = Location(file="train.py", line=12, function="init_weights")
    positive = dict(w_min=0.01, w_max=0.95, w_mean=0.5, w_std=0.29, fan_in=4, fan_out=4)
    event = ("param_init", dict(init_event("layer1", **positive)[1]), {"layer": "layer1", "location": where})
    [finding] = judge(make_trace(events=[event, init_event("layer2", **positive)]), "ND402")[:1]
    assert finding.location == where
    data = ("data", data_event(output_range=[0.5, 1.0], targets_outside=0.5)[1], {"location": where})
    [unreachable] = judge(make_trace(events=[data]), "ND601")
    assert unreachable.location == where
