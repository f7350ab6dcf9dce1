"""The loss netdoctor records is the loss the script prints.

Each case study below prints its own loss as it trains. The script is run plainly (a
subprocess), its printed values are parsed, and they are compared with the loss series
netdoctor recorded when it observed the same script (``netdoctor.diagnose(path)``).

Aligning the two honestly:

* netdoctor's ``loss`` at step ``s`` (s >= 1) is the loss of the forward passes made
  before update ``s``, i.e. with the parameters after ``s - 1`` updates. A full-batch
  script that computes its loss from the forward pass of iteration ``i`` (before that
  iteration's update) prints what netdoctor records at step ``i + 1``.
* netdoctor records every one of the first steps and then fewer per doubling of the step
  count, so a printed iteration may fall between two recorded steps. Where the step was
  recorded the values must agree to the print's precision; where it was not, the printed
  value must lie between the two recorded neighbours (the loss moves monotonically over a
  few steps of these healthy runs), again to the print's precision.
* the last recorded step is checked on its own (the last test): netdoctor records it when
  the run ends, even when its step was not planned for recording.
* a per-sample script that prints the mean of its per-sample losses over an epoch of
  ``n`` samples prints the mean of netdoctor's losses at steps ``e*n + 1 .. (e+1)*n``;
  that is compared wherever all those steps were recorded.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import netdoctor

CASES = Path(__file__).resolve().parent.parent / "case_studies"
NUMBER = r"([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)"


@dataclass(frozen=True)
class Printed:
    folder: str
    pattern: str            # two groups: the iteration/epoch number and the loss
    per_epoch: int = 0      # samples per epoch for per-sample scripts (0: full batch)


SCRIPTS = {
    # class with W1, b1, W2, b2; full batch; MSE printed every 500 epochs
    "class_full_batch_mse": Printed("derivative_of_activation", r"epoch\s+(\d+)\s+loss\s+" + NUMBER),
    # module-level loop, in-place updates; binary cross-entropy printed every 300 iterations
    "module_loop_bce": Printed("missing_derivative", r"iter\s+(\d+)\s+cost\s+" + NUMBER),
    # class with lists of matrices, one sample per step; log-loss summed per sample, averaged per epoch
    "per_sample_lists_log_loss": Printed("wrong_layer_activation", r"epoch\s+(\d+)\s+avg log-loss\s+" + NUMBER,
                                         per_epoch=4),
    # functions + main(), `+=` with target - output; the gradient is that of the *summed*
    # squared error, the script prints the *mean* squared error every 1000 epochs
    "functions_sum_gradient_mean_print": Printed("hidden_error_from_prediction",
                                                 r"epoch\s+(\d+)\s+mean squared error\s+" + NUMBER),
}


def printed_losses(script: Path, pattern: str) -> list[tuple[int, float, float]]:
    """(iteration, value, half a unit of its last printed digit) for every printed loss."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, script.name], cwd=script.parent, capture_output=True,
                         text=True, timeout=120, env=env, check=True).stdout
    found = []
    for match in re.finditer(pattern, out):
        text = match.group(2)
        mantissa, _, exponent = text.lower().partition("e")
        decimals = len(mantissa.partition(".")[2])
        half_unit = 0.5 * 10.0 ** (-decimals + (int(exponent) if exponent else 0))
        found.append((int(match.group(1)), float(text), half_unit))
    return found


def recorded_loss(script: Path) -> dict[int, float]:
    cwd = os.getcwd()
    os.chdir(script.parent)
    try:
        report = netdoctor.diagnose(str(script), quiet=True)
    finally:
        os.chdir(cwd)
    steps, values = report.runs["original"].series("loss")
    return {int(s): float(v) for s, v in zip(steps, values) if np.isfinite(v)}


@pytest.fixture(scope="module", params=sorted(SCRIPTS))
def observed(request):
    spec = SCRIPTS[request.param]
    script = CASES / spec.folder / "fixed.py"
    return spec, printed_losses(script, spec.pattern), recorded_loss(script)


def test_the_recorded_loss_matches_the_printed_loss(observed):
    spec, printed, loss = observed
    assert len(printed) >= 3, "the script's printed losses were not found"
    last = max(loss)
    loss = {s: v for s, v in loss.items() if s != last}
    steps = np.array(sorted(loss))
    exact = bracketed = 0
    for iteration, value, half_unit in printed:
        tol = half_unit + 1e-9 * abs(value)
        if spec.per_epoch:
            wanted = range(iteration * spec.per_epoch + 1, (iteration + 1) * spec.per_epoch + 1)
            if all(s in loss for s in wanted):
                mean = float(np.mean([loss[s] for s in wanted]))
                assert abs(mean - value) <= tol, (iteration, value, mean)
                exact += 1
            continue
        step = iteration + 1
        if step in loss:
            assert abs(loss[step] - value) <= tol, (iteration, value, loss[step])
            exact += 1
            continue
        before, after = steps[steps < step], steps[steps > step]
        if not len(before) or not len(after):
            continue
        a, b = loss[int(before[-1])], loss[int(after[0])]
        assert min(a, b) - tol <= value <= max(a, b) + tol, (iteration, value, int(before[-1]), a, int(after[0]), b)
        bracketed += 1
    assert exact >= 1, "no printed loss fell on steps netdoctor recorded"
    if not spec.per_epoch:   # a per-sample epoch is whole in the trace only among the first steps
        assert exact + bracketed >= min(3, len(printed))


def test_the_last_recorded_step_holds_the_loss_of_the_last_iteration():
    script = CASES / "missing_derivative" / "fixed.py"
    spec = SCRIPTS["module_loop_bce"]
    printed = printed_losses(script, spec.pattern)
    loss = recorded_loss(script)
    iteration, value, half_unit = printed[-1]
    assert max(loss) == iteration + 1          # the loop's last iteration is the last step
    assert abs(loss[iteration + 1] - value) <= half_unit + 1e-9 * abs(value)
