"""run_script against scripts that misbehave: each hostile behaviour has a test.

These tests are about the runner (processes, time, streams, exit paths), so they
use a stand-in observer with the real one's interface (tests/scripts/stub_observer.py):
it counts each return from a function named ``update`` as a step and reads the
loss from ``compute_loss``. The step counts asserted below are the number of
``update`` calls each script makes, visible in its source.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from netdoctor.observe.script import RunnerError, ScriptError, check_script, run_script
from netdoctor.report import Report
from netdoctor.trace import MODEL

SCRIPTS = Path(__file__).parent / "scripts"
STUB = f"{SCRIPTS / 'stub_observer.py'}:Observer"


def run(name: str, *args: str, **options):
    options.setdefault("observer", STUB)
    return run_script(SCRIPTS / name, args=args, **options)


# --- what the script sees ---------------------------------------------------------------


def test_script_sees_what_python_would_give_it(capfd):
    trace = run("show_context.py", "--lr", "0.1 0.2")
    seen = __import__("json").loads(capfd.readouterr().out)
    script = SCRIPTS / "show_context.py"
    assert seen["name"] == "__main__"
    assert seen["main_is_me"] is True
    assert Path(seen["file"]) == script.resolve()
    assert seen["argv"] == [str(script), "--lr", "0.1 0.2"]
    assert seen["cwd"] == os.getcwd()
    assert Path(seen["path0"]) == SCRIPTS.resolve()
    assert Path(seen["neighbour"]) == (SCRIPTS / "tiny_training.py").resolve()
    assert seen["mplbackend"] == "Agg"
    assert trace.info.status == "completed"
    assert trace.info.script == str(script.resolve())


def test_the_observer_gets_the_scripts_globals_and_its_folder_as_user_code():
    trace = run("train_ok.py", "3")
    assert {"train", "steps", "final"} <= set(trace.info.extra["module_globals"])
    user_files = trace.info.extra["user_files"]
    assert str((SCRIPTS / "train_ok.py").resolve()) in user_files
    assert str((SCRIPTS / "tiny_training.py").resolve()) in user_files


def test_a_healthy_run_returns_its_partial_series():
    trace = run("train_ok.py", "6")
    assert trace.info.status == "completed"
    assert trace.info.steps == 6
    steps, losses = trace.series("loss", MODEL)
    # train() feeds compute_loss 1, 0.9, 0.81, ...: the loss seen at update k is 0.9**(k-1).
    np.testing.assert_allclose(losses, 0.9 ** (steps - 1))


# --- the script raises ------------------------------------------------------------------


def test_a_crash_keeps_the_steps_before_it_and_the_users_traceback_only():
    trace = run("crashes.py")
    info = trace.info
    assert info.status == "crashed"
    assert info.steps == 7  # train(7) ran before load_batch raised
    assert info.error.startswith("Traceback (most recent call last):")
    assert 'crashes.py", line 10, in <module>' in info.error
    assert "in load_batch" in info.error
    assert info.error.rstrip().endswith("ValueError: batch 3 is missing")
    assert "netdoctor" not in info.error  # our runner's frames are trimmed
    # and the partial trace still makes a report
    assert Report.from_traces([trace]).runs["original"].info.status == "crashed"


# --- the script ends itself -------------------------------------------------------------


@pytest.mark.parametrize("how", ["sys.exit", "exit", "quit", "os._exit"])
def test_exiting_ends_the_script_not_the_report(how):
    trace = run("exits.py", how)
    assert trace.info.status == "completed"
    assert trace.info.steps == 4  # the 100 steps after the exit never run
    assert trace.info.notes == []


def test_a_non_zero_exit_status_is_noted():
    trace = run("exits.py", "sys.exit3")
    assert trace.info.status == "completed"
    assert trace.info.extra["exit_code"] == 3
    assert any("sys.exit(3)" in note for note in trace.info.notes)


# --- the script waits for something that will not come --------------------------------------


def test_input_fails_at_once_with_a_message_naming_the_problem():
    started = time.monotonic()
    trace = run("asks_input.py", timeout=30)
    assert time.monotonic() - started < 25  # did not wait for the timeout
    assert trace.info.status == "crashed"
    assert trace.info.steps == 3
    assert "input() has nothing to read" in trace.info.error
    assert "--" in trace.info.error  # tells how to pass the value instead
    assert "child.py" not in trace.info.error  # our stand-in for input() is not shown
    assert any("input()" in note for note in trace.info.notes)


def test_plt_show_opens_no_window_and_returns(capfd):
    pytest.importorskip("matplotlib")
    trace = run("shows_plot.py", timeout=60)
    assert trace.info.status == "completed"
    assert trace.info.steps == 12  # both train(6) calls, around plt.show()
    assert "after show" in capfd.readouterr().out


def test_an_endless_loop_is_stopped_by_the_timeout_and_reported():
    started = time.monotonic()
    trace = run("loops_forever.py", timeout=1.0)
    elapsed = time.monotonic() - started
    assert trace.info.status == "timeout"
    assert trace.info.steps > 0
    assert "timeout" in trace.info.stop_reason
    assert str(trace.info.steps) in trace.info.stop_reason
    assert [e.data["reason"] for e in trace.events_of("stopped")] == ["timeout"]
    assert elapsed < 1.0 + 5.0  # the soft stop, not the hard kill at timeout + grace


def test_a_script_that_swallows_the_stop_is_ended_anyway():
    trace = run("swallows_stop.py", timeout=0.5, grace=2.0)
    assert trace.info.status == "timeout"
    assert trace.info.steps > 0
    assert any("caught netdoctor's stop" in note for note in trace.info.notes)


def test_a_script_deaf_to_the_soft_timeout_is_killed_and_still_reported():
    started = time.monotonic()
    trace = run("ignores_alarm.py", timeout=0.5, grace=1.0)
    assert time.monotonic() - started < 0.5 + 1.0 + 10  # killed, not waited for
    assert trace.info.status == "timeout"
    assert trace.info.steps >= 1  # from the progress it sent before it was killed
    assert any("killed" in note for note in trace.info.notes)
    assert trace.info.script == str((SCRIPTS / "ignores_alarm.py").resolve())


# --- output --------------------------------------------------------------------------------


def test_megabytes_of_output_all_reach_stdout(capfd):
    trace = run("prints_megabytes.py", "3000")
    out, err = capfd.readouterr()
    lines = out.splitlines()
    assert len(lines) == 3000 and all(line == "x" * 999 for line in lines)
    assert trace.info.status == "completed" and trace.info.steps == 3


def test_json_stdout_moves_the_scripts_output_to_stderr(capfd):
    run("prints_megabytes.py", "200", json_stdout=True)
    out, err = capfd.readouterr()
    assert out == ""
    assert err.count("x" * 999 + "\n") == 200


# --- numbers going bad ---------------------------------------------------------------------


def test_a_run_diverging_to_nan_is_flagged_and_the_report_renders():
    trace = run("diverges.py")
    assert trace.info.status == "completed"
    _, losses = trace.series("loss", MODEL)
    assert np.isfinite(losses[:6]).all() and np.isnan(losses[6:]).all()  # the NaN survived the trip
    report = Report.from_traces([trace])
    assert "ND106" in report.codes("original")
    assert "ND106" in report.render("text")
    assert "ND106" in report.render("json")


# --- threads --------------------------------------------------------------------------------


def test_training_in_a_thread_is_observed():
    trace = run("trains_in_thread.py")
    assert trace.info.status == "completed"
    assert trace.info.steps == 25


def test_max_steps_stops_training_in_a_thread(capfd):
    trace = run("trains_in_thread.py", max_steps=10)
    assert trace.info.status == "stopped"
    assert trace.info.steps == 10
    assert "thread done" in capfd.readouterr().out  # the main thread went on normally


def test_a_thread_the_script_never_joins_is_waited_for_like_python_does():
    trace = run("thread_not_joined.py")
    assert trace.info.status == "completed"
    assert trace.info.steps == 9


# --- stopping early ---------------------------------------------------------------------------


def test_max_steps_stops_the_run_and_says_so():
    trace = run("train_ok.py", "50", max_steps=10)
    assert trace.info.status == "stopped"
    assert trace.info.steps == 10
    assert "10" in trace.info.stop_reason
    assert [e.data["reason"] for e in trace.events_of("stopped")] == ["max-steps"]


def test_stop_on_ends_the_run_when_the_observer_is_certain():
    trace = run("train_ok.py", "500", stop_on="error")
    assert trace.info.status == "stopped"
    assert trace.info.steps == 5  # the stub is certain at step 5
    assert "after 5 steps" in trace.info.stop_reason


# --- the process dies -------------------------------------------------------------------------


def test_a_segfault_cannot_take_netdoctor_down():
    trace = run("segfaults.py")
    assert trace.info.status == "crashed"
    assert "SIGSEGV" in trace.info.error
    assert trace.info.steps >= 1


# --- our own failures ---------------------------------------------------------------------------


def test_an_observer_that_cannot_load_is_an_internal_error(tmp_path):
    with pytest.raises(RunnerError, match="NoSuchObserver"):
        run("train_ok.py", observer=f"{SCRIPTS / 'stub_observer.py'}:NoSuchObserver")


def test_values_that_cannot_travel_back_are_replaced_not_lost(tmp_path):
    observer = tmp_path / "leaky_observer.py"
    observer.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(SCRIPTS)!r})\n"
        "import stub_observer as stub\n"
        "StopRun = stub.StopRun\n"
        "class Observer(stub.Observer):\n"
        "    def finish(self, status, **kw):\n"
        "        trace = super().finish(status, **kw)\n"
        "        trace.add_event('roles', {'params': ['W'], 'oops': lambda: 0})\n"
        "        return trace\n"
    )
    trace = run("train_ok.py", "3", observer=f"{observer}:Observer")
    (event,) = trace.events_of("roles")
    assert event.data["params"] == ["W"]
    assert isinstance(event.data["oops"], str)
    assert trace.info.steps == 3


# --- files that are not scripts -------------------------------------------------------------


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.py", b"", "is empty"),
        ("blank.py", b"\n\n   \n", "is empty"),
        ("comments.py", b"# just a comment\n", "no code to run"),
        ("broken.py", b"def f(:\n    pass\n", "syntax error in"),
        ("notes.txt", b"Remember to fix the learning rate.\n", "is not a Python script"),
        ("weights.npy", b"\x93NUMPY\x01\x00\x00\x00", "is not a Python script"),
        ("model.ipynb", b'{"cells": []}', "is a notebook"),
    ],
)
def test_files_that_are_not_scripts_are_refused_before_running(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ScriptError, match=message) as caught:
        check_script(path)
    assert "\n" not in str(caught.value)


def test_missing_files_and_folders_are_refused(tmp_path):
    with pytest.raises(ScriptError, match="no such file"):
        run_script(tmp_path / "nope.py")
    with pytest.raises(ScriptError, match="is a folder"):
        run_script(tmp_path)


# --- nothing is left behind ------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"  # a zombie is dead
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_processes_the_script_leaves_running_do_not_outlive_the_run(tmp_path):
    pid_file = tmp_path / "helper.pid"
    trace = run("leaves_a_process.py", str(pid_file))
    assert trace.info.status == "completed" and trace.info.steps == 2
    helper = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _alive(helper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(helper)


def test_output_reaches_a_stdout_without_a_file_descriptor(capsys):
    # As in a notebook, where sys.stdout is an object of the kernel's, not a file.
    trace = run("train_ok.py", "4")
    assert "trained 4 steps" in capsys.readouterr().out
    assert trace.info.steps == 4
