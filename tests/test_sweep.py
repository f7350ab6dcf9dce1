"""netdoctor.sweep: seeding, judging convergence, running seeds on executors."""

from __future__ import annotations

import concurrent.futures as futures
import json
import random
import textwrap

import numpy as np
import pytest

from netdoctor.sweep import SeedRun, SweepResult, judge_run, seeded_rngs, sweep


# -- seeding a script's generators ---------------------------------------------------------
def draws_after_fixed_seed() -> tuple[float, float, float]:
    """What a script that fixes its own seeds draws first."""
    np.random.seed(0)
    a = np.random.rand()
    b = np.random.default_rng(7).random()
    random.seed(3)
    return a, b, random.random()


def test_fixed_seeds_in_a_script_vary_with_the_sweep_seed_and_stay_reproducible():
    with seeded_rngs(1):
        first = draws_after_fixed_seed()
    with seeded_rngs(2):
        second = draws_after_fixed_seed()
    with seeded_rngs(1):
        again = draws_after_fixed_seed()
    assert all(x != y for x, y in zip(first, second))
    assert first == again


def test_global_generators_start_from_the_sweep_seed():
    with seeded_rngs(5):
        a = (np.random.rand(3), np.random.default_rng().random(), random.random())
    with seeded_rngs(6):
        b = (np.random.rand(3), np.random.default_rng().random(), random.random())
    with seeded_rngs(5):
        c = (np.random.rand(3), np.random.default_rng().random(), random.random())
    assert not np.array_equal(a[0], b[0]) and a[1] != b[1] and a[2] != b[2]
    assert np.array_equal(a[0], c[0]) and a[1:] == c[1:]


def test_unseeded_default_rngs_in_one_run_are_independent():
    with seeded_rngs(0):
        one, two = np.random.default_rng(), np.random.default_rng()
        assert one.random() != two.random()


def test_explicit_generator_objects_pass_through_unchanged():
    with seeded_rngs(9):
        inside = np.random.default_rng(np.random.PCG64(11)).random()
        legacy = np.random.RandomState(11).rand()
    assert inside == np.random.default_rng(np.random.PCG64(11)).random()
    assert legacy == np.random.RandomState(11).rand()


def test_everything_is_restored_afterwards():
    seed_fn, rng_fn, py_seed = np.random.seed, np.random.default_rng, random.seed
    with seeded_rngs(4):
        assert np.random.seed is not seed_fn
    assert (np.random.seed, np.random.default_rng, random.seed) == (seed_fn, rng_fn, py_seed)
    np.random.seed(0)
    assert np.random.rand() == np.random.RandomState(0).rand()


def test_bad_user_seeds_still_fail_as_numpy_says():
    with seeded_rngs(1):
        with pytest.raises(ValueError):
            np.random.seed(-1)


# -- judging one run -------------------------------------------------------------------------
def judged(report_factory, finding_factory, losses, status="completed", errors=(), ratio=0.1):
    findings = [finding_factory(code, "x", "error") for code in errors]
    report = report_factory(findings, status={"original": status}, losses={"original": losses})
    return judge_run(report, "original", index=0, seed=0, loss_ratio=ratio)


def test_a_run_converges_when_its_loss_falls_well_below_its_start(report_factory, finding_factory):
    run = judged(report_factory, finding_factory, [0.7, 0.4, 0.05])
    assert run.converged is True
    assert (run.loss_start, run.loss_end, run.loss_kind) == (0.7, 0.05, "probe_loss")


@pytest.mark.parametrize("losses, status, errors, expected, note", [
    ([0.7, 0.5, 0.35], "completed", (), False, "only fell to 0.5"),
    ([0.7, 0.01], "completed", ("ND303",), False, "ND303"),
    ([0.7, 0.01], "crashed", (), False, "crashed"),
    ([0.7, 0.01], "timeout", (), False, "timeout"),
    ([0.7, 0.01], "stopped", (), True, ""),
    ([0.7, 0.3, float("nan")], "completed", (), False, "non-finite"),
    ([], "completed", (), None, "no usable loss"),
    ([0.0, 0.0], "completed", (), None, "no usable loss"),
])
def test_runs_that_do_not_converge_say_why(report_factory, finding_factory, losses, status, errors,
                                           expected, note):
    run = judged(report_factory, finding_factory, losses, status, errors)
    assert run.converged is expected
    assert note in run.note


def test_the_ratio_is_the_criterion(report_factory, finding_factory):
    assert judged(report_factory, finding_factory, [1.0, 0.3], ratio=0.5).converged is True
    assert judged(report_factory, finding_factory, [1.0, 0.3], ratio=0.1).converged is False


# -- the result ---------------------------------------------------------------------------
def result_of(outcomes) -> SweepResult:
    runs = [SeedRun(index=i, seed=i, status="completed", converged=c, loss_start=1.0, loss_end=0.01 if c else 0.5,
                    error_codes=() if c else ("ND101",)) for i, c in enumerate(outcomes)]
    return SweepResult("xor.py", runs)


def test_zero_of_n_points_at_a_bug():
    result = result_of([False] * 6)
    assert (result.converged, result.determined, result.rate, result.all_failed) == (0, 6, 0.0, True)
    assert "look for a bug" in result.verdict()
    assert "Every run has ND101" in result.verdict()


def test_most_of_n_points_at_luck():
    result = result_of([True] * 15 + [False] * 5)
    assert result.rate == 0.75 and not result.all_failed
    assert result.verdict().startswith("15 of 20 runs converged")
    assert "bad luck" in result.verdict()
    assert "fragile" in result_of([True] * 2 + [False] * 8).verdict()
    assert "robust" in result_of([True] * 4).verdict()


def test_undetermined_runs_are_left_out_of_the_rate():
    result = result_of([True, False, None, None])
    assert (result.converged, result.determined, result.rate) == (1, 2, 0.5)
    assert "could not be judged" in result.render()
    assert result_of([None]).rate is None
    assert "cannot judge" in result_of([None]).verdict()


def test_render_and_to_dict():
    result = result_of([True, False, True])
    text = result.render("text")
    assert text.startswith("Seed sweep of xor.py: 2 of 3 runs converged (67%)")
    assert "final probe loss <= 0.1 x its first value" in text
    data = json.loads(result.render("json"))
    assert data == json.loads(json.dumps(result.to_dict()))
    assert (data["n"], data["converged"], data["rate"]) == (3, 2, pytest.approx(2 / 3))
    assert [run["converged"] for run in data["runs"]] == [True, False, True]
    assert data["failing_codes"] == {"ND101": 1}
    with pytest.raises(ValueError):
        result.render("html")


# -- running seeds ------------------------------------------------------------------------
@pytest.fixture
def script(tmp_path):
    path = tmp_path / "train.py"
    path.write_text("x = 1\n")
    return path


def test_sweep_runs_each_seed_on_the_given_executor(monkeypatch, report_factory, script):
    """A stand-in diagnosis whose loss depends on the seed it was given."""
    import netdoctor.diagnosis

    calls = []

    def fake_diagnose(target, X=None, y=None, epochs=None, *, seed=None, **options):
        calls.append((target, seed, options))
        final = 0.01 if seed % 2 == 0 else 0.6
        return report_factory([], losses={"original": [1.0, final]})

    monkeypatch.setattr(netdoctor.diagnosis, "diagnose_once", fake_diagnose)
    with futures.ThreadPoolExecutor(max_workers=1) as pool:
        result = sweep(script, 5, executor=pool, base_seed=10, timeout=3)
        assert not pool._shutdown  # the caller's executor is the caller's to close
    assert [seed for _, seed, _ in calls] == [10, 11, 12, 13, 14]
    assert all(target == str(script) for target, _, _ in calls)
    assert all(options == {"timeout": 3, "quiet": True} for _, _, options in calls)
    assert [run.seed for run in result.runs] == [10, 11, 12, 13, 14]
    assert result.converged == 3 and result.n == 5


def test_a_failing_seed_does_not_end_the_sweep(monkeypatch, report_factory, script):
    import netdoctor.diagnosis

    def fake_diagnose(target, *, seed=None, **options):
        if seed == 1:
            raise RuntimeError("the observer broke")
        return report_factory([], losses={"original": [1.0, 0.01]})

    monkeypatch.setattr(netdoctor.diagnosis, "diagnose_once", fake_diagnose)
    with futures.ThreadPoolExecutor(max_workers=1) as pool:
        result = sweep(script, 3, executor=pool)
    assert [run.status for run in result.runs] == ["completed", "failed", "completed"]
    assert result.converged == 2 and result.determined == 2
    assert "the observer broke" in result.notes[0]


@pytest.mark.parametrize("n", [0, -1, 2.5, True])
def test_sweep_needs_a_positive_count(n):
    with pytest.raises(ValueError):
        sweep("train.py", n)


def test_sweep_refuses_what_it_cannot_reseed(tmp_path):
    with pytest.raises(TypeError, match="script path or a netdoctor.MLP"):
        sweep(object(), 2, executor=futures.ThreadPoolExecutor(1))
    from netdoctor.observe.script import ScriptError

    with pytest.raises(ScriptError, match="no such file"):
        sweep(tmp_path / "missing.py", 2)


# -- real runs in worker processes -------------------------------------------------------
# A minimal observer for the script runner: it records the LOSSES list the script leaves
# in its globals as the probe loss; enough to test seeding through real child processes.
LOSS_OBSERVER = '''
from netdoctor.trace import MODEL, Trace
from netdoctor.types import RunInfo

class StopRun(BaseException):
    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason

class Observer:
    def __init__(self, *, name, module_globals=None, **ignored):
        self.name, self.globals, self.steps = name, module_globals, 0
    def install(self):
        pass
    def uninstall(self):
        pass
    def finish(self, status, *, error=None, stop_reason=None):
        trace = Trace(RunInfo(name=self.name, status=status, source="script", error=error))
        for step, loss in enumerate(self.globals.get("LOSSES", [])):
            trace.recorder.record(step, {(MODEL, "probe_loss"): loss})
        return trace
'''

LUCKY_SCRIPT = '''
import sys
import numpy as np

np.random.seed(0)            # the script fixes its seed; the sweep must still vary it
luck = np.random.rand()
with open(sys.argv[0] + ".draws", "a") as out:
    out.write(repr(luck) + "\\n")
LOSSES = list(np.geomspace(1.0, 0.01 if luck < 0.5 else 0.6, 20))
'''


def test_a_script_sweep_in_worker_processes(tmp_path):
    pytest.importorskip("netdoctor.observe.script")
    observer = tmp_path / "loss_observer.py"
    observer.write_text(textwrap.dedent(LOSS_OBSERVER))
    script = tmp_path / "lucky.py"
    script.write_text(textwrap.dedent(LUCKY_SCRIPT))
    draws_file = tmp_path / "lucky.py.draws"

    # Only a data rule, which skips for want of data: the loss alone decides here.
    result = sweep(script, 6, executor=futures.ProcessPoolExecutor(2), observer=f"{observer}:Observer",
                   select=["ND601"])
    draws = [float(x) for x in draws_file.read_text().split()]
    assert len(draws) == 6 and len(set(draws)) == 6, "every seed must draw differently"
    assert result.converged == sum(d < 0.5 for d in draws)
    assert {run.converged for run in result.runs} <= {True, False}

    draws_file.unlink()
    again = sweep(script, 6, executor=futures.ProcessPoolExecutor(2), observer=f"{observer}:Observer",
                  select=["ND601"])
    assert sorted(float(x) for x in draws_file.read_text().split()) == sorted(draws)
    assert [run.converged for run in again.runs] == [run.converged for run in result.runs]


XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_Y = np.array([0, 1, 1, 0])


def test_reference_mlp_sweep_tells_a_bug_from_a_working_net():
    mlp = pytest.importorskip("netdoctor.mlp")
    pytest.importorskip("netdoctor.reference")
    broken = mlp.MLP([2, 2, 2, 2], activation="sigmoid", output="sigmoid", loss="bce",
                     init="uniform01", batch_size=1, lr=0.5, faults=("double_sigmoid",))
    bug = sweep(broken, 4, X=XOR_X, y=XOR_Y, epochs=200)
    assert bug.all_failed, bug.render()

    working = mlp.MLP([2, 8, 1], activation="tanh", output="sigmoid", loss="bce", init="xavier", lr=0.5)
    fine = sweep(working, 4, X=XOR_X, y=XOR_Y, epochs=1500)
    assert fine.converged >= 3, fine.render()
    # Each seed built its own network: the final losses differ.
    assert len({run.loss_end for run in fine.runs}) == 4


def test_a_rebuilt_mlp_matches_the_original_except_for_its_seed():
    mlp = pytest.importorskip("netdoctor.mlp")
    from netdoctor.sweep import mlp_config

    model = mlp.MLP([2, 3, 1], activation="tanh", lr=0.05, batch_size=2, seed=4,
                    faults=("lr_too_high",))
    config = mlp_config(model)
    assert "seed" not in config
    rebuilt = mlp.MLP(**config, seed=9)
    for name in ("layers", "activation", "output", "loss", "init", "optimizer", "batch_size", "faults"):
        assert getattr(rebuilt, name) == getattr(model, name), name
    # The fault multiplied the learning rate once; the rebuilt model must not do it twice.
    assert rebuilt.lr == pytest.approx(model.lr)
    assert not np.array_equal(rebuilt.weights[0], model.weights[0])


def test_diagnose_with_seeds_returns_a_sweep():
    mlp = pytest.importorskip("netdoctor.mlp")
    import netdoctor

    model = mlp.MLP([2, 4, 1], activation="tanh", lr=0.5)
    with futures.ThreadPoolExecutor(max_workers=1) as pool:
        result = netdoctor.diagnose(model, XOR_X, XOR_Y, epochs=50, seeds=2, executor=pool)
    assert isinstance(result, SweepResult)
    assert [run.seed for run in result.runs] == [0, 1]
    with pytest.raises(TypeError, match="sweeps one target"):
        netdoctor.diagnose(model, XOR_X, XOR_Y, epochs=50, seeds=2, compare=model)


def test_progress_over_the_runs(monkeypatch, report_factory, script, capsys):
    import netdoctor.diagnosis

    monkeypatch.setattr(netdoctor.diagnosis, "diagnose_once",
                        lambda target, *, seed=None, **options: report_factory([], losses={"original": [1.0, 0.01]}))
    with futures.ThreadPoolExecutor(max_workers=1) as pool:
        sweep(script, 3, executor=pool, progress=True)
        err = capsys.readouterr().err
        assert "sweep train.py:" in err and "/3 [" in err  # a bar over the 3 runs
        sweep(script, 3, executor=pool)
        assert capsys.readouterr().err == ""


def test_portable_tasks_on_a_local_pool_give_the_same_runs(tmp_path):
    """A task that carries its folder and answers in JSON is judged as a local one."""
    pytest.importorskip("netdoctor.observe.script")
    observer = tmp_path / "loss_observer.py"
    observer.write_text(textwrap.dedent(LOSS_OBSERVER))
    folder = tmp_path / "job"
    folder.mkdir()
    script = folder / "lucky.py"
    script.write_text(textwrap.dedent(LUCKY_SCRIPT))
    options = dict(observer=f"{observer}:Observer", select=["ND601"])
    with futures.ThreadPoolExecutor(2) as pool:
        local = sweep(script, 4, executor=pool, **options)
        portable = sweep(script, 4, executor=pool, portable=True, **options)
    assert portable.runs == local.runs
    # The local runs drew in our folder; the portable ones in copies of it.
    assert len((folder / "lucky.py.draws").read_text().split()) == 4


def test_a_classifier_that_fits_its_data_converged_whatever_its_loss_ratio():
    import numpy as np
    from netdoctor.report import Report
    from netdoctor.sweep import judge_run
    from netdoctor.trace import MODEL, Recorder, Trace
    from netdoctor.types import RunInfo

    def converged(accuracy_end):
        recorder = Recorder()
        for step, loss in enumerate([0.7, 0.5, 0.25]):
            recorder.record(step, {(MODEL, "probe_loss"): loss, (MODEL, "out_mean"): 0.5,
                                   ("layer1", "update_ratio"): 1e-3,
                                   (MODEL, "accuracy"): 0.5 if step == 0 else accuracy_end})
        info = RunInfo(name="original", steps=3, task="classification", n_classes=2)
        labels = np.array([[0.0], [1.0]] * 16)     # a probe batch of two classes
        inputs = np.hstack([labels * 10, labels * 10]) + np.linspace(0, 1, 32)[:, None]   # separable
        trace = Trace(info, recorder, probe_inputs=inputs, probe_targets=labels)
        return judge_run(Report([trace]), "original", 0, 0)

    # The loss kept 0.36 of its start (above the 0.1 ratio): converged only when the
    # accuracy shows the classifier fits its data.
    fitted, stuck = converged(1.0), converged(0.5)
    assert fitted.converged is True, fitted
    assert stuck.converged is False, stuck
