"""`run_fits`: the one definition of "the run fits its data", and severities that follow it.

Traces are built by hand (see tests/test_rules.py), so every number the judgement sees
is chosen here and the expected answers follow from the documented thresholds.
"""

from __future__ import annotations

import numpy as np

from netdoctor.config import DEFAULT_THRESHOLDS as TH
from netdoctor.rules import run_rules
from netdoctor.rules._common import accuracy_allowed, run_fits
from netdoctor.trace import MODEL
from netdoctor.types import Severity

from test_rules import N, init_event, make_trace

FALLING = 0.69 * np.exp(-np.linspace(0, 4, N))   # ends at 2% of its start
STUCK = np.full(N, 0.69)


def blobs(n_per_class: int, spread: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = np.array([[2.0, 0.0], [-2.0, 0.0]])
    x = np.concatenate([c + spread * rng.normal(size=(n_per_class, 2)) for c in centres])
    y = np.repeat([0.0, 1.0], n_per_class)[:, None]
    return x, y


def test_a_falling_loss_with_a_regression_task_fits():
    assert run_fits(make_trace({(MODEL, "probe_loss"): FALLING}, task="regression"), TH).fits is True
    assert run_fits(make_trace({(MODEL, "probe_loss"): STUCK}, task="regression"), TH).fits is False


def test_a_classifier_must_also_reach_the_accuracy_the_data_allows():
    x, y = blobs(20, 0.3)           # separable: a neighbour vote gets them all right
    good = make_trace({(MODEL, "probe_loss"): FALLING, (MODEL, "accuracy"): 1.0}, inputs=x, targets=y)
    fit = run_fits(good, TH)
    assert fit.fits is True and fit.accuracy_allowed == 1.0
    # The loss fell, but half the inputs are still wrong: it learned something, it does not fit.
    half = make_trace({(MODEL, "probe_loss"): FALLING, (MODEL, "accuracy"): 0.5}, inputs=x, targets=y)
    assert run_fits(half, TH).fits is False


def test_overlapping_classes_allow_less_than_full_accuracy():
    x, y = blobs(60, 2.0)           # centres 4 apart, noise 2: the classes overlap
    labels = y[:, 0].astype(int)
    allowed = accuracy_allowed(make_trace(inputs=x, targets=y), TH, labels)
    assert 0.6 < allowed < 0.95
    # The best any classifier gets here is ~0.84 (Phi(1)): a run at that accuracy fits ...
    trace = make_trace({(MODEL, "probe_loss"): FALLING, (MODEL, "accuracy"): 0.84}, inputs=x, targets=y)
    assert run_fits(trace, TH).fits is True
    # ... one barely above chance does not
    trace = make_trace({(MODEL, "probe_loss"): FALLING, (MODEL, "accuracy"): 0.6}, inputs=x, targets=y)
    assert run_fits(trace, TH).fits is False


def test_a_loss_that_turns_nan_never_fits_and_no_loss_is_unknown():
    broken = FALLING.copy()
    broken[-10:] = np.nan
    assert run_fits(make_trace({(MODEL, "probe_loss"): broken}), TH).fits is False
    assert run_fits(make_trace(), TH).fits is None
    exploded = FALLING.copy()
    exploded[N // 2] = np.inf      # an infinite loss once is a failure, even if numbers return
    assert run_fits(make_trace({(MODEL, "probe_loss"): exploded}, task="regression"), TH).fits is False


def test_steps_that_did_not_measure_the_probe_loss_are_no_nan():
    # A framework run measures the probe batch every few steps: the steps between hold
    # NaN in the probe_loss column. That is no loss gone NaN; the run still fits.
    sparse = FALLING.copy()
    sparse[np.arange(N) % 4 != 0] = np.nan
    sparse[-1] = FALLING[-1]       # (the last step is always measured)
    assert run_fits(make_trace({(MODEL, "probe_loss"): sparse}, task="regression"), TH).fits is True


def test_on_a_run_that_fits_symptoms_are_warnings_and_code_faults_stay_errors():
    x, y = blobs(20, 0.3)
    # A first loss 20x ln 2 (ND103 error by its bands) on a run that then fits ...
    loss = np.concatenate([[20 * np.log(2)], FALLING[1:] * 0.01])
    gradcheck = ("gradcheck", {"loss_kind": "bce", "params": [
        {"layer": "layer2", "param": "weight", "rel_err": 0.5, "cosine": 0.5, "scale": 0.5}]}, {"step": 1})
    series = {(MODEL, "probe_loss"): loss, (MODEL, "accuracy"): 1.0}
    fitted = run_rules(make_trace(series, inputs=x, targets=y, events=[gradcheck]))
    severity = {f.code: f.severity for f in fitted.findings}
    assert severity["ND103"] == Severity.WARNING
    assert severity["ND203"] == Severity.ERROR       # wrong gradients are wrong whether or not it fits
    [nd103] = [f for f in fitted.findings if f.code == "ND103"]
    assert nd103.evidence["run_fits"] is True
    # ... and the same first loss on a run that stays stuck is an error.
    stuck = run_rules(make_trace({(MODEL, "probe_loss"): np.concatenate([[20 * np.log(2)], STUCK[1:] * 20]),
                                  (MODEL, "accuracy"): 0.5}, inputs=x, targets=y))
    assert {f.code: f.severity for f in stuck.findings}["ND103"] == Severity.ERROR


def test_init_scale_far_off_is_an_error_only_on_a_run_that_fails():
    tiny = [init_event("layer1", fan_in=2, fan_out=16, w_std=0.01, w_min=-0.03, w_max=0.03),
            init_event("layer2", fan_in=16, fan_out=1, w_std=0.01, w_min=-0.03, w_max=0.03)]
    x, y = blobs(20, 0.3)
    trains = run_rules(make_trace({(MODEL, "probe_loss"): FALLING, (MODEL, "accuracy"): 1.0},
                                  inputs=x, targets=y, events=tiny), select=["ND403"])
    [finding] = trains.findings                      # one cause: both layers, one finding
    assert finding.severity == Severity.WARNING and finding.evidence["layers"] == ["layer1", "layer2"]
    fails = run_rules(make_trace({(MODEL, "probe_loss"): STUCK, (MODEL, "accuracy"): 0.5},
                                 inputs=x, targets=y, events=tiny), select=["ND403"])
    assert [f.severity for f in fails.findings] == [Severity.ERROR]
