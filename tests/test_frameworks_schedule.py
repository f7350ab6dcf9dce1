"""Which steps a framework run measures in full: the automatic schedule's decisions.

The session is driven with a fake clock, so the budget arithmetic is exact and no test
depends on how fast this machine is.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from netdoctor.frameworks import session as session_mod
from netdoctor.frameworks.session import DATA_ROWS, OBSERVE_BUDGET, FrameworkSession


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(session_mod.time, "perf_counter", fake)
    return fake


def measured_steps(session, steps, clock, *, step_seconds, part_seconds, parts):
    """Run `steps` steps; a params measurement costs `parts` pieces of `part_seconds`."""
    measured = []
    for step in range(1, steps + 1):
        first = session.wants_params(step)
        if first:
            for _ in range(parts):       # e.g. the copy before the step, the sums after it
                with session.timing("params"):
                    clock.now += part_seconds
        assert session.wants_params(step) == first   # asked again, the same answer
        clock.now += step_seconds
        session.tick()
        if first:
            measured.append(step)
    return measured


def test_a_step_chosen_for_parameters_does_not_also_choose_the_next_one():
    session = FrameworkSession("run", "torch")
    session.params_every = 4
    chosen = [step for step in range(1, 21) if session.wants_params(step) and session.wants_params(step)]
    assert chosen == [1, 5, 9, 13, 17]


def test_the_outputs_schedule_is_decided_once_per_step():
    session = FrameworkSession("run", "torch")
    session.outputs_every = 3
    chosen = []
    for step in range(1, 13):
        if session.wants_outputs(step):
            assert session.wants_outputs(step)
            chosen.append(step)
    assert chosen == [1, 4, 7, 10]


def test_a_measurement_made_in_two_parts_is_budgeted_as_their_sum(clock):
    session = FrameworkSession("run", "torch")
    step = 0.1
    part = 0.9 * OBSERVE_BUDGET * step    # each part alone fits the budget; both do not
    measured = measured_steps(session, 40, clock, step_seconds=step, part_seconds=part, parts=2)
    gaps = set(np.diff(measured[2:]))     # after the first costs are known
    assert gaps == {2}, measured


def test_a_cheap_measurement_runs_at_every_step(clock):
    session = FrameworkSession("run", "torch")
    measured = measured_steps(session, 10, clock, step_seconds=0.1,
                              part_seconds=0.1 * OBSERVE_BUDGET / 4, parts=2)
    assert measured == list(range(1, 11))


def test_the_data_facts_of_a_large_data_set_come_from_sampled_rows():
    session = FrameworkSession("run", "keras")
    session.info.output, session.info.loss = "linear", "mse"
    rng = np.random.default_rng(0)
    X = rng.normal(0, 1, (DATA_ROWS * 3, 5)).astype("float32")
    y = X @ np.arange(1.0, 6.0)
    rows = session.set_data(X, y, y[:, None], 1)
    # the probe batch is rows of the caller's X, and its targets are those rows' targets
    np.testing.assert_allclose(session.trace.probe_inputs, X[rows].astype(float))
    np.testing.assert_allclose(session.trace.probe_targets[:, 0], y[rows])
    assert session.trace.events_of("data")


torch = pytest.importorskip("torch")


def test_a_torch_run_with_a_fixed_schedule_measures_the_chosen_steps():
    import netdoctor as nd

    torch.manual_seed(0)
    X = torch.randn(32, 3)
    y = X.sum(dim=1, keepdim=True)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))

    def train():
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        for _ in range(20):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(X), y).backward()
            opt.step()

    trace = nd.diagnose(model, train, params_every=3, outputs_every=5).runs["original"]
    steps, ratio = trace.series("update_ratio", "0")
    assert list(steps[np.isfinite(ratio)]) == [3, 6, 9, 12, 15, 18]
    steps, act = trace.series("act_std", "0")
    assert list(steps[np.isfinite(act)]) == [0, 5, 10, 15, 20]   # the last step in full
    steps, loss = trace.series("loss")
    assert np.isfinite(loss).all() and len(steps) == 21


def test_a_keras_run_with_a_fixed_schedule_measures_the_chosen_steps():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    import netdoctor as nd

    keras.utils.set_random_seed(0)
    X = np.random.default_rng(0).normal(0, 1, (64, 3)).astype("float32")
    y = X.sum(axis=1)
    model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(4, activation="tanh"),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    trace = nd.diagnose(model, lambda: model.fit(X, y, epochs=5, batch_size=16, verbose=0),
                        params_every=3, outputs_every=5).runs["original"]
    name = trace.info.layers[0].name
    steps, ratio = trace.series("update_ratio", name)
    assert list(steps[np.isfinite(ratio)]) == [3, 6, 9, 12, 15, 18]
    steps, act = trace.series("act_std", name)
    assert list(steps[np.isfinite(act)]) == [0, 5, 10, 15, 20]
