"""A probe loss that stops following the network, and small steps taken many times.

Two ways a network that trains was called stuck:

* the probe-batch loss (and accuracy) repeated the same value from one recorded step to
  the next while the weights kept changing: it was read from outputs kept from earlier
  steps, not measured on the network as it is. Rules then judge the batch loss, and
  ``run_fits`` does not read the stale probe accuracy (``probe_frozen_frac``);
* per-sample SGD takes tiny steps, many of them: ND502 is an error only when all the
  steps together could not move the weights by ``update_travel_error`` of their size.

Hand-made traces (see tests/test_rules.py) check the rules on chosen numbers; the last
two tests run a per-sample network written here, one that trains and one that does not.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

import netdoctor
from netdoctor.config import DEFAULT_THRESHOLDS as TH
from netdoctor.rules import run_rules
from netdoctor.rules._common import loss_curve, probe_frozen, run_fits
from netdoctor.trace import MODEL, Recorder, Trace
from netdoctor.types import LayerInfo, RunInfo, Severity

from test_rules import N, decreasing, init_event, judge, make_trace

XOR_INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_TARGETS = np.array([[0.0], [1.0], [1.0], [0.0]])


def held(values: np.ndarray, every: int) -> np.ndarray:
    """`values` as a stale reading: each one repeated for `every` recorded steps."""
    return np.repeat(values[::every], every)[: len(values)]


def probe_trace(probe, batch, accuracy, update_norm=0.01):
    return make_trace({(MODEL, "probe_loss"): probe, (MODEL, "loss"): batch,
                       (MODEL, "accuracy"): accuracy, (MODEL, "update_norm"): update_norm},
                      inputs=XOR_INPUTS, targets=XOR_TARGETS, loss="mse")


# A stale probe: it starts at the initial loss and only now and then takes a new, still
# high value, while the batch loss the code trains on falls to 2% of its start.
STALE = held(np.linspace(0.9, 0.68, N), 10)
FALLING = decreasing(0.9, 0.02)


def test_a_probe_loss_that_repeats_while_the_weights_move_is_frozen():
    stale = probe_trace(STALE, FALLING, 0.25)
    assert probe_frozen(stale, TH)
    steps, values, source = loss_curve(stale)
    assert source.startswith("loss") and values[-1] < 0.1 * values[0]
    # A probe that changes at every step, however little, is live.
    live = probe_trace(np.linspace(0.9, 0.68, N), FALLING, 0.25)
    assert not probe_frozen(live, TH)
    assert loss_curve(live)[2] == "probe_loss"


def test_a_network_whose_weights_do_not_move_keeps_its_flat_probe_loss():
    # Nothing moves, so nothing can change the outputs: the repeated loss is a measurement.
    still = probe_trace(np.full(N, 0.25), np.full(N, 0.25), 0.5, update_norm=0.0)
    assert not probe_frozen(still, TH)
    [finding] = judge(still, "ND104")
    assert finding.severity == Severity.ERROR and finding.evidence["measured_on"] == "probe_loss"


def test_a_run_judged_by_a_frozen_probe_fits_by_the_batch_loss():
    stale = probe_trace(STALE, FALLING, 0.25)   # the stale accuracy says 1 of 4 right
    fit = run_fits(stale, TH)
    assert fit.fits is True and fit.accuracy is None
    assert judge(stale, "ND104") == []
    # The same stale probe beside a batch loss that does not fall: the run does not fit.
    stuck = probe_trace(STALE, np.full(N, 0.9), 0.25)
    assert run_fits(stuck, TH).fits is False
    [finding] = judge(stuck, "ND104")
    assert finding.evidence["measured_on"].startswith("loss")


def test_symptoms_on_a_frozen_probe_run_that_fits_are_warnings():
    positive = dict(w_min=0.001, w_max=0.1, w_mean=0.05, w_std=0.03, fan_in=16, fan_out=8)

    def with_positive_init(trace):
        for kind, data, where in (init_event("layer1", **positive), init_event("layer2", **positive)):
            trace.add_event(kind, data, **where)
        return trace

    fitted = with_positive_init(probe_trace(STALE, FALLING, 0.25))
    failed = with_positive_init(probe_trace(STALE, np.full(N, 0.9), 0.25))
    assert {f.severity for f in run_rules(fitted).findings if f.code == "ND402"} == {Severity.WARNING}
    assert {f.severity for f in run_rules(failed).findings if f.code == "ND402"} == {Severity.ERROR}


# --- ND502: small steps, few or many ------------------------------------------------------------


def spaced_trace(ratio: float, last_step: int, rows: int = 200) -> Trace:
    """`rows` recorded steps spread over 0..last_step, every layer at update ratio `ratio`."""
    info = RunInfo(name="hand-made", steps=last_step,
                   layers=[LayerInfo("layer1", activation="sigmoid", has_bias=True, is_output=False),
                           LayerInfo("layer2", activation="sigmoid", has_bias=True, is_output=True)],
                   loss="mse", output="sigmoid", task="classification")
    recorder = Recorder(max_recorded=4 * rows)
    for step in np.unique(np.linspace(0, last_step, rows).astype(int)):
        recorder.record(int(step), {("layer1", "update_ratio"): ratio, ("layer2", "update_ratio"): ratio,
                                    (MODEL, "loss"): 0.09})
    return Trace(info, recorder)


def test_nd502_small_steps_are_an_error_only_when_they_cannot_add_up():
    # 200 steps of 5e-6: the weights could move by 0.1% of their size in the whole run.
    [few] = judge(spaced_trace(5e-6, 200), "ND502")
    assert few.severity == Severity.ERROR and few.evidence["update_travel"] < TH.update_travel_error
    # 60,000 per-sample steps of 5e-6 can move them by 30%: slow, not stuck.
    [many] = judge(spaced_trace(5e-6, 60_000), "ND502")
    assert many.severity == Severity.WARNING and many.evidence["update_travel"] > TH.update_travel_error
    assert judge(spaced_trace(1e-3, 60_000), "ND502") == []


# --- a per-sample network whose probe outputs the observer keeps from earlier steps ----------------

# A 256-160-10 sigmoid network trained one 1-D sample at a time on 10 noisy prototypes,
# with all-positive initial weights (which it overcomes). Large enough that netdoctor does
# not recompute the probe batch itself, so its probe outputs are the program's own,
# refreshed only when the program shows a probe input at a recorded step.
WIDE_SCRIPT = '''
import numpy as np

rng = np.random.default_rng(0)
prototypes = rng.random((10, 256)) < 0.2
labels = rng.integers(0, 10, 500)
X = (prototypes[labels] ^ (rng.random((500, 256)) < 0.05)).astype(float)
Y = np.eye(10)[labels]


class Net:
    def __init__(self, lr):
        self.W1 = rng.random((160, 256)) / 160
        self.b1 = np.zeros(160)
        self.W2 = rng.random((10, 160)) / 10
        self.b2 = np.zeros(10)
        self.lr = lr

    def forward(self, x):
        self.h = 1 / (1 + np.exp(-(self.W1 @ x + self.b1)))
        self.o = 1 / (1 + np.exp(-(self.W2 @ self.h + self.b2)))
        return self.o

    def train_one(self, x, y):
        o = self.forward(x)
        d2 = (o - y) * o * (1 - o)
        d1 = (self.W2.T @ d2) * self.h * (1 - self.h)
        self.W2 -= self.lr * np.outer(d2, self.h)
        self.b2 -= self.lr * d2
        self.W1 -= self.lr * np.outer(d1, x)
        self.b1 -= self.lr * d1
        return float(np.mean((o - y) ** 2))


net = Net(LEARNING_RATE)
for epoch in range(6):
    losses = [net.train_one(x, y) for x, y in zip(X, Y)]
    accuracy = np.mean([np.argmax(net.forward(x)) == k for x, k in zip(X, labels)])
    print(f"epoch {epoch} loss {np.mean(losses):.5f} accuracy {accuracy:.3f}")
'''


def run_wide(tmp_path, lr: float):
    script = tmp_path / f"wide_{lr}.py"
    script.write_text(textwrap.dedent(WIDE_SCRIPT).replace("LEARNING_RATE", repr(lr)))
    report = netdoctor.diagnose(str(script), quiet=True)
    return report, report.runs["original"]


@pytest.mark.parametrize("lr, trains", [(0.3, True), (0.0003, False)])
def test_a_per_sample_network_is_judged_by_the_loss_it_trains_on(tmp_path, lr, trains):
    report, trace = run_wide(tmp_path, lr)
    errors = report.codes("original", at_least=Severity.ERROR)
    if trains:
        # The printed accuracy reaches 1.0 by epoch 2 (the probe, when its outputs are kept
        # from early steps, says far less: the batch loss decides).
        assert run_fits(trace, TH).fits is True
        assert errors == set()
        assert "ND402" in report.codes("original")        # still named, as a warning
    else:
        # lr 1e-3 of the one above: the loss stays where it started and the init is to blame.
        assert run_fits(trace, TH).fits is False
        assert "ND402" in errors
