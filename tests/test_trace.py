"""Recorder and Trace: bounded memory, thinning, the tidy frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from netdoctor.trace import MODEL, QUANTITIES, Recorder, Trace
from netdoctor.types import LayerInfo, RunInfo

# A 3-layer network's worth of series: 14 whole-model + 3 x 13 per-layer columns.
LAYERS = ("layer1", "layer2", "layer3")
PER_LAYER = ("act_mean", "act_std", "z_abs_mean", "sat_frac", "grad_norm", "grad_abs_mean",
             "bias_grad_norm", "weight_norm", "weight_std", "bias_norm", "update_norm",
             "update_ratio", "update_cos")
WHOLE = ("loss", "probe_loss", "accuracy", "out_mean", "out_std", "out_min", "out_max",
         "nonfinite", "weight_norm", "grad_norm", "update_norm", "update_ratio")
KEYS = [(MODEL, q) for q in WHOLE] + [(layer, q) for layer in LAYERS for q in PER_LAYER]


def _row(step: int) -> dict:
    return {key: float(step) for key in KEYS}


def test_keys_used_here_are_in_the_vocabulary():
    assert all(q in QUANTITIES for _, q in KEYS)


def test_a_million_steps_stay_under_two_megabytes():
    """10**6 steps of a 3-layer net with 4 probe samples x 2 outputs: bounded memory.

    Bound stated in trace.py: about 4,096 rows x (45 series + probe outputs) of float64.
    """
    n_steps = 10**6
    recorder = Recorder()  # defaults: 2,048 dense steps, at most 4,096 rows
    outputs = np.zeros((4, 2))
    peak = 0
    for step in range(n_steps):
        if not recorder.wants(step) and step != n_steps - 1:
            continue
        recorder.record(step, _row(step), outputs + step)
        peak = max(peak, recorder.nbytes)
    rows = len(recorder.steps)
    n_columns = len(KEYS)
    # What the stored arrays must hold at most: rows x (columns + outputs + the step).
    expected_max = recorder.max_recorded * (n_columns * 8 + outputs.size * 8 + 8)
    assert peak <= expected_max
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes"
    assert rows <= recorder.max_recorded
    assert recorder.steps[-1] == n_steps - 1          # the current state is kept
    assert np.all(np.diff(recorder.steps) > 0)
    # The dense head is intact: every one of the first 2,048 steps.
    assert np.array_equal(recorder.steps[:2048], np.arange(2048))
    # Values travelled with their steps through every thinning.
    assert np.array_equal(recorder.column(MODEL, "loss"), recorder.steps.astype(float))
    assert np.array_equal(recorder.outputs[:, 3, 1], recorder.steps.astype(float))


def test_thinning_keeps_the_head_dense_and_spaces_the_tail_evenly():
    recorder = Recorder(dense_steps=16, max_recorded=40)
    for step in range(2000):
        if recorder.wants(step):
            recorder.record(step, {(MODEL, "loss"): step})
    steps = recorder.steps
    assert np.array_equal(steps[:16], np.arange(16))
    tail = steps[16:]
    gaps = np.diff(tail)
    stride = int(gaps.max())
    assert stride & (stride - 1) == 0  # strides double: the tail is a power-of-two grid ...
    assert all(g & (g - 1) == 0 for g in gaps.tolist())
    # ... except the rows that were the newest when a thinning happened (kept as the
    # current state): at most one per doubling.
    off_grid = sum(1 for s in tail.tolist() if s % stride)
    assert off_grid <= int(np.log2(stride)), (off_grid, tail.tolist())
    assert stride * len(tail) >= 2000 - 16 - stride  # the tail still covers the whole run
    assert len(steps) <= 40


def test_a_column_missing_after_thinning_reads_nan_not_a_stale_value():
    recorder = Recorder(dense_steps=4, max_recorded=10)
    for step in range(200):
        if not recorder.wants(step):
            continue
        values = {(MODEL, "loss"): float(step)}
        if step < 50:
            values[(MODEL, "out_std")] = float(step)
        recorder.record(step, values, np.full((2, 1), step) if step < 50 else None)
    late = recorder.steps >= 50
    assert late.any()
    assert np.isnan(recorder.column(MODEL, "out_std")[late]).all()
    assert np.isnan(recorder.outputs[late]).all()
    early = ~late
    assert np.array_equal(recorder.column(MODEL, "out_std")[early], recorder.steps[early].astype(float))


def test_stride_records_every_nth_step_and_unwanted_steps_may_still_be_recorded():
    recorder = Recorder(stride=5)
    wanted = [s for s in range(23) if recorder.wants(s)]
    assert wanted == [0, 5, 10, 15, 20]
    for s in wanted:
        recorder.record(s, {(MODEL, "loss"): 1.0})
    recorder.record(22, {(MODEL, "loss"): 2.0})  # e.g. the last step of a run
    assert recorder.steps.tolist() == [0, 5, 10, 15, 20, 22]
    with pytest.raises(ValueError):
        Recorder(stride=0)


def test_steps_must_increase():
    recorder = Recorder()
    recorder.record(3, {(MODEL, "loss"): 1.0})
    with pytest.raises(ValueError):
        recorder.record(3, {(MODEL, "loss"): 1.0})


def test_new_columns_appear_midway_with_nan_before():
    recorder = Recorder()
    recorder.record(0, {(MODEL, "loss"): 1.0})
    recorder.record(1, {(MODEL, "loss"): 0.5, ("layer1", "grad_norm"): 3.0})
    grad = recorder.column("layer1", "grad_norm")
    assert np.isnan(grad[0]) and grad[1] == 3.0
    assert recorder.column("layer9", "grad_norm") is None


def _small_trace() -> Trace:
    info = RunInfo(name="run-a", layers=[LayerInfo("layer1"), LayerInfo("layer2", is_output=True)])
    recorder = Recorder()
    recorder.record(0, {(MODEL, "loss"): 1.0, ("layer1", "grad_norm"): 0.1}, np.zeros((3, 2)))
    recorder.record(1, {(MODEL, "loss"): np.nan, ("layer1", "grad_norm"): np.nan}, np.ones((3, 2)))
    recorder.record(2, {(MODEL, "loss"): 0.25, ("layer2", "weight_norm"): 2.0}, np.full((3, 2), 2.0))
    return Trace(info, recorder)


def test_frame_is_tidy_and_drops_missing_values_except_loss():
    frame = _small_trace().frame()
    assert list(frame.columns) == ["run", "step", "layer", "quantity", "value"]
    assert set(frame["run"]) == {"run-a"}
    loss = frame[frame.quantity == "loss"].sort_values("step")
    assert loss.step.tolist() == [0, 1, 2]
    assert np.isnan(loss.value.iloc[1])  # a NaN loss is information, kept
    grad = frame[(frame.layer == "layer1") & (frame.quantity == "grad_norm")]
    assert grad.step.tolist() == [0]     # missing values (NaN) dropped
    assert len(frame) == 3 + 1 + 1


def test_outputs_frame_has_one_row_per_step_sample_unit():
    trace = _small_trace()
    frame = trace.outputs_frame()
    assert len(frame) == 3 * 3 * 2
    at_two = frame[frame.step == 2]
    assert (at_two.value == 2.0).all()
    assert sorted(at_two["sample"].unique().tolist()) == [0, 1, 2]
    assert sorted(at_two["unit"].unique().tolist()) == [0, 1]


def test_empty_trace_frames_and_series():
    trace = Trace(RunInfo(name="empty"))
    assert trace.frame().empty and list(trace.frame().columns) == ["run", "step", "layer", "quantity", "value"]
    assert trace.outputs is None and trace.outputs_frame().empty
    steps, values = trace.series("loss")
    assert steps.size == 0 and values.size == 0
    assert not trace.has("loss")


def test_series_events_and_layers():
    trace = _small_trace()
    steps, values = trace.series("weight_norm", "layer2")
    assert steps.tolist() == [0, 1, 2] and np.isnan(values[:2]).all() and values[2] == 2.0
    assert trace.layers == ["layer1", "layer2"]
    trace.add_event("gradcheck", {"params": []}, step=2)
    trace.add_event("data", {"n_samples": 3})
    assert [e.step for e in trace.events_of("gradcheck")] == [2]
    assert trace.events_of("data")[0].data["n_samples"] == 3
    assert "run-a" in repr(trace)


def test_frame_of_a_long_run_is_pandas_and_bounded():
    recorder = Recorder(dense_steps=64, max_recorded=256)
    for step in range(50_000):
        if recorder.wants(step):
            recorder.record(step, {(MODEL, "loss"): 1.0 / (step + 1)})
    frame = Trace(RunInfo(name="long"), recorder).frame()
    assert isinstance(frame, pd.DataFrame)
    assert len(frame) <= 256
