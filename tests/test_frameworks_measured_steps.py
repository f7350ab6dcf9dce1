"""A framework run measures its heavy quantities every few steps: how many a judgement needs.

`run_fits` and ND501 read levels (the loss at the end, the median update ratio) that a
handful of measured steps cannot tell. Traces are built by hand (tests/test_rules.py):
NaN is a step that did not measure the quantity, as in a framework Trace.
"""

from __future__ import annotations

import numpy as np
import pytest

from netdoctor.config import DEFAULT_THRESHOLDS as TH
from netdoctor.rules import Skip, run_rules
from netdoctor.rules._common import MIN_MEASURED_STEPS, measured_enough, run_fits
from netdoctor.trace import MODEL
from netdoctor.types import Severity

from test_rules import N, judge, make_trace

FALLING = 30.0 * np.exp(-np.linspace(0, 6, N))     # ends well under 1% of its start
SWINGING = 30.0 * (1.0 + 0.8 * np.sin(np.linspace(0, 40, N)))   # never settles


def only_at(values, steps):
    """`values` measured at `steps` only (NaN elsewhere), as a sparse schedule records them."""
    sparse = np.full(N, np.nan)
    sparse[steps] = np.asarray(values, dtype=float)[steps]
    return sparse


FEW = [0, 1, 2, 70, N - 1]                          # the step-0/1/2 and final probes, and one more


def test_a_judgement_needs_nine_measured_steps_or_every_step_of_a_shorter_run():
    long_run = make_trace(n=N)
    assert not measured_enough(MIN_MEASURED_STEPS - 1, long_run)
    assert measured_enough(MIN_MEASURED_STEPS, long_run)
    short_run = make_trace(n=5)                       # 4 steps, each measured
    assert measured_enough(4, short_run) and not measured_enough(3, short_run)


def test_a_sparse_probe_loss_that_happens_to_end_low_does_not_make_a_swinging_run_fit():
    # The probe loss caught the swing at a low point; the batch loss, measured every step, did not.
    lucky = SWINGING.copy()
    lucky[N - 1] = 1.0
    trace = make_trace({(MODEL, "probe_loss"): only_at(lucky, FEW), (MODEL, "loss"): SWINGING},
                       task="regression")
    fit = run_fits(trace, TH)
    assert fit.fits is False and "the batch loss: the probe loss was measured at only 5" in fit.reason
    assert fit.loss_end > TH.fit_loss_ratio * fit.loss_start
    # The same sparse probe loss beside a batch loss that falls: the run fits.
    falling = make_trace({(MODEL, "probe_loss"): only_at(lucky, FEW), (MODEL, "loss"): FALLING},
                         task="regression")
    assert run_fits(falling, TH).fits is True


def test_a_well_measured_probe_loss_is_still_the_one_judged():
    # Measured at every 4th step (25 values): enough; the probe loss decides, not the batch loss.
    every4 = np.arange(0, N, 4).tolist() + [N - 1]
    trace = make_trace({(MODEL, "probe_loss"): only_at(FALLING, every4), (MODEL, "loss"): SWINGING},
                       task="regression")
    assert run_fits(trace, TH).fits is True


def test_with_no_well_measured_loss_at_all_the_fit_is_unknown():
    trace = make_trace({(MODEL, "probe_loss"): only_at(FALLING, FEW)}, task="regression")
    fit = run_fits(trace, TH)
    assert fit.fits is None and "measured at only 5 of 99 steps" in fit.reason


def big_updates(steps, value=0.8):
    """update ratios of `value` (above the 0.3 error bound) for layer1 at `steps` only."""
    return {("layer1", "update_ratio"): only_at(np.full(N, value), steps)}


def test_nd501_judges_a_median_of_enough_measured_steps():
    [finding] = judge(make_trace(big_updates(list(range(1, N)))), "ND501")
    assert finding.severity == Severity.ERROR and finding.evidence["steps_judged"] == N - 1
    every10 = list(range(1, N, 10))                  # 10 measured steps: enough
    [finding] = judge(make_trace(big_updates(every10)), "ND501")
    assert finding.evidence["steps_judged"] == len(every10)


def test_nd501_says_it_was_skipped_on_three_measured_steps_of_a_long_run():
    with pytest.raises(Skip, match="measured at only 3 of 99 steps"):
        judge(make_trace(big_updates([1, 50, 98])), "ND501")
    outcome = run_rules(make_trace(big_updates([1, 50, 98])), select=["ND501"])
    assert not outcome.findings and "ND501" in outcome.skipped


def test_nd501_still_counts_bursts_however_sparse_the_measurements():
    # Two measured steps that changed the weights by 3x their size happened, whatever the
    # steps between them did.
    [finding] = judge(make_trace(big_updates([1, 2, 98], value=3.0)), "ND501")
    assert finding.severity == Severity.ERROR and finding.evidence["burst_steps"] == 3


def test_nd501_on_a_short_run_measured_at_every_step():
    [finding] = judge(make_trace({("layer1", "update_ratio"): [np.nan, 0.8, 0.8, 0.8, 0.8]}, n=5), "ND501")
    assert finding.evidence["steps_judged"] == 4


RISING = 0.2 + 0.6 * np.linspace(0, 1, N) ** 2      # climbs to 4x its start: diverging


def test_nd105_needs_enough_measured_loss_values():
    # the loss at five steps of a long run: no level can be read from it
    with pytest.raises(Skip, match="measured at only 5 of 99 steps"):
        judge(make_trace({(MODEL, "probe_loss"): only_at(RISING, FEW)}), "ND105")
    [finding] = judge(make_trace({(MODEL, "probe_loss"): RISING}), "ND105")
    assert finding.severity == Severity.ERROR


def test_a_sparse_probe_loss_gives_way_to_the_batch_loss_measured_every_step():
    # The probe loss happened to catch five rising points; the batch loss falls steadily.
    trace = make_trace({(MODEL, "probe_loss"): only_at(RISING, FEW), (MODEL, "loss"): FALLING})
    assert judge(trace, "ND105") == []


def test_nd502_judges_only_enough_measured_update_ratios():
    tiny = {("layer1", "update_ratio"): only_at(np.full(N, 1e-7), [1, 50, 98])}
    stuck = {(MODEL, "probe_loss"): np.full(N, 0.69)}
    with pytest.raises(Skip, match="measured at only 3 of 99 steps"):
        judge(make_trace({**tiny, **stuck}), "ND502")
    every = {("layer1", "update_ratio"): np.r_[np.nan, np.full(N - 1, 1e-7)]}
    [finding] = judge(make_trace({**every, **stuck}), "ND502")
    assert finding.severity == Severity.ERROR
