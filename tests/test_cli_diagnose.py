"""`netdoctor diagnose` end to end: a real process, real streams, real exit statuses.

Runs use the stand-in observer of tests/scripts/stub_observer.py (chosen through
the NETDOCTOR_OBSERVER environment variable), so that these tests check the
command and the runner, not the inference engine. The last tests use the real
observer on the seed's case study and are skipped until it exists.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import shutil
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = Path(__file__).resolve().parent / "scripts"
STUB = f"{SCRIPTS / 'stub_observer.py'}:Observer"
SEED_CASE = ROOT / "case_studies" / "xor_stuck_at_half"


def _env(observer: str | None = STUB) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("NETDOCTOR_OBSERVER", None)
    if observer:
        env["NETDOCTOR_OBSERVER"] = observer
    return env


def netdoctor(*args: str, observer: str | None = STUB, timeout: float = 120, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "netdoctor.cli", "diagnose", *map(str, args)],
        capture_output=True, text=True, env=_env(observer), timeout=timeout,
        stdin=subprocess.DEVNULL, cwd=cwd,
    )


def script(name: str) -> str:
    return str(SCRIPTS / name)


def one_line_error(result) -> str:
    """The single `netdoctor: ...` line a usage error must produce, and nothing else."""
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("netdoctor: "), result.stderr
    return lines[0]


# --- the report and the exit status -------------------------------------------------------


def test_a_healthy_script_gives_a_text_report_and_exit_0():
    result = netdoctor(script("train_ok.py"), "-q", "--", "8")
    assert result.returncode == 0, result.stderr
    assert "trained 8 steps" in result.stdout  # the script's own output is not lost
    assert "completed" in result.stdout and "8 steps" in result.stdout


def test_an_error_finding_gives_exit_1_and_fail_on_is_respected():
    result = netdoctor(script("diverges.py"), "-q", "--format", "json")
    assert result.returncode == 1
    assert "ND106" in {f["code"] for f in json.loads(result.stdout)["findings"]}
    result = netdoctor(script("diverges.py"), "-q", "--select", "ND101")  # ND106 not selected
    assert result.returncode == 0, result.stdout


def test_json_on_stdout_stays_parseable_while_the_script_prints():
    result = netdoctor(script("prints_megabytes.py"), "-q", "--format", "json", "--", "500")
    report = json.loads(result.stdout)  # nothing but the JSON on stdout
    assert report["runs"]["original"]["status"] == "completed"
    assert result.stderr.count("x" * 999 + "\n") == 500  # the prints moved to stderr, intact


def test_a_crashing_script_is_reported_and_exits_2():
    result = netdoctor(script("crashes.py"), "-q", "--format", "json")
    assert result.returncode == 2
    run = json.loads(result.stdout)["runs"]["original"]
    assert run["status"] == "crashed" and run["steps"] == 7
    assert run["error"].rstrip().endswith("ValueError: batch 3 is missing")
    assert "netdoctor/observe" not in run["error"]
    assert "ValueError: batch 3 is missing" in result.stderr  # told on the terminal too


def test_arguments_after_double_dash_reach_the_script():
    result = netdoctor(script("show_context.py"), "-q", "--", "--epochs", "3", "-v")
    seen = json.loads(result.stdout.splitlines()[0])
    assert seen["argv"][1:] == ["--epochs", "3", "-v"]


def test_compare_puts_both_runs_in_one_report():
    result = netdoctor(script("diverges.py"), "--compare", script("train_ok.py"), "-q", "--format", "json")
    report = json.loads(result.stdout)
    assert set(report["runs"]) == {"original", "fixed"}
    assert report["runs"]["original"]["script"] == str(SCRIPTS / "diverges.py")
    assert report["runs"]["fixed"]["script"] == str(SCRIPTS / "train_ok.py")
    codes = {(f["run"], f["code"]) for f in report["findings"]}
    assert ("original", "ND106") in codes and ("fixed", "ND106") not in codes


# --- stopping -------------------------------------------------------------------------------


def test_timeout_stops_an_endless_script_and_still_reports():
    result = netdoctor(script("loops_forever.py"), "-q", "--timeout", "1", "--format", "json")
    # What was seen is judged, but a run cut short is only partly observed: exit 3, not 0.
    assert result.returncode == 3, result.stderr
    run = json.loads(result.stdout)["runs"]["original"]
    assert run["status"] == "timeout" and run["steps"] > 0 and run["state"] == "partly observed"


def test_max_steps_and_stop_on_say_how_many_steps_it_took():
    run = json.loads(netdoctor(script("train_ok.py"), "-q", "--max-steps", "12",
                               "--format", "json", "--", "400").stdout)["runs"]["original"]
    assert run["status"] == "stopped" and run["steps"] == 12
    run = json.loads(netdoctor(script("train_ok.py"), "-q", "--stop-on", "error",
                               "--format", "json", "--", "400").stdout)["runs"]["original"]
    assert run["status"] == "stopped" and "after 5 steps" in run["stop_reason"]


def test_ctrl_c_stops_the_script_and_still_reports(tmp_path):
    shutil.copy(SCRIPTS / "tiny_training.py", tmp_path)
    marker = tmp_path / "started"
    endless = tmp_path / "endless.py"
    endless.write_text(
        # the marker is written once steps were taken, so the signal never comes before the first
        "import pathlib\nfrom tiny_training import compute_loss, update\n"
        "step = 0\nwhile True:\n    compute_loss(1.0)\n    step = update(step)\n"
        f"    if step == 20:\n        pathlib.Path({str(marker)!r}).write_text('yes')\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "netdoctor.cli", "diagnose", str(endless), "-q", "--format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the script never started"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    run = json.loads(out)["runs"]["original"]
    assert run["status"] == "stopped" and "interrupted" in run["stop_reason"]
    assert run["steps"] > 0


# --- what is refused, in one line, before anything runs ---------------------------------------


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.py", "", "is empty"),
        ("notes.txt", "Remember to lower the learning rate.\n", "is not a Python script"),
        ("broken.py", "for i in range(3)\n    print(i)\n", "syntax error in"),
    ],
)
def test_files_that_are_not_scripts_get_one_line_and_exit_2(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    result = netdoctor(path)
    assert message in one_line_error(result)
    assert result.stdout == ""


def test_a_missing_file_or_a_folder_gets_one_line_and_exit_2(tmp_path):
    assert "no such file" in one_line_error(netdoctor(tmp_path / "nope.py"))
    assert "is a folder" in one_line_error(netdoctor(tmp_path))
    assert "no such file" in one_line_error(netdoctor(script("train_ok.py"), "--compare", tmp_path / "nope.py"))


def test_output_never_overwrites_the_script_being_diagnosed(tmp_path):
    shutil.copy(SCRIPTS / "tiny_training.py", tmp_path)
    target = tmp_path / "train.txt"  # a Python script whose name looks like a report
    source = (SCRIPTS / "train_ok.py").read_text()
    target.write_text(source)
    result = netdoctor(target, "-o", target)
    assert "refusing to overwrite" in one_line_error(result)
    assert target.read_text() == source
    assert "trained" not in result.stdout  # refused before running
    assert "Python file" in one_line_error(netdoctor(script("train_ok.py"), "-o", tmp_path / "report.py"))


def test_output_file_gets_the_report_and_stdout_the_scripts_prints(tmp_path):
    report_path = tmp_path / "report.json"
    result = netdoctor(script("train_ok.py"), "-q", "-o", report_path, "--", "5")
    assert result.returncode == 0, result.stderr
    assert json.loads(report_path.read_text())["runs"]["original"]["steps"] == 5
    plain = subprocess.run([sys.executable, script("train_ok.py"), "5"], capture_output=True, text=True)
    assert result.stdout == plain.stdout  # exactly what `python train_ok.py 5` prints


def test_usage_errors_are_found_before_the_script_runs():
    assert "needs -o FILE" in one_line_error(netdoctor(script("train_ok.py"), "--format", "html"))
    assert "no rule matches" in one_line_error(netdoctor(script("train_ok.py"), "--select", "ND999x"))
    assert "--timeout" in one_line_error(netdoctor(script("train_ok.py"), "--timeout", "0"))


def test_seeds_runs_a_sweep():
    pytest.importorskip("netdoctor.sweep")
    result = netdoctor(script("train_ok.py"), "--seeds", "2", "--format", "json", "--", "30")
    assert result.returncode in (0, 1), result.stderr
    assert json.loads(result.stdout)["n"] == 2


# --- the live display ----------------------------------------------------------------------------


def _run_on_a_terminal(*args: str, timeout: float = 60) -> tuple[str, str, int]:
    """Run the command with stderr on a pseudo-terminal; return (stdout, terminal text, status)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "netdoctor.cli", "diagnose", *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, env=_env(),
    )
    os.close(slave)
    seen = bytearray()
    out: list[bytes] = []
    # stdout is drained at the same time, or a chatty script would fill its pipe and stall.
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the other end is closed, the command has ended
                break
            if not chunk:
                break
            seen += chunk
        status = proc.wait(timeout=timeout)
        reader.join(timeout=timeout)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return b"".join(out).decode(), seen.decode(errors="replace"), status


def test_progress_and_findings_are_shown_live_on_a_terminal():
    out, terminal, _ = _run_on_a_terminal(script("train_ok.py"), "--stop-on", "error", "--", "400")
    assert "original" in terminal and "step" in terminal
    assert "loss=" in terminal
    assert "ND999" in terminal  # the stub's finding, shown as it appeared
    assert "stopped" in out  # and the report on stdout


def test_script_output_passes_intact_around_the_live_display():
    out, terminal, status = _run_on_a_terminal(script("prints_megabytes.py"), "--", "300")
    assert status == 0
    assert out.count("x" * 999 + "\n") == 300


def test_no_progress_display_when_quiet_or_not_on_a_terminal():
    for extra in ([], ["-q"]):
        result = netdoctor(script("train_ok.py"), *extra, "--", "30")
        assert "\r" not in result.stderr and "steps/s" not in result.stderr
    _, terminal, _ = _run_on_a_terminal(script("train_ok.py"), "-q", "--", "30")
    assert "step" not in terminal


# --- with the real observer (skipped until netdoctor.observe.objects exists) ---------------------


def _real_observer():
    pytest.importorskip("netdoctor.observe.objects")


def test_real_observer_stop_on_error_diagnoses_the_seed_case_early():
    _real_observer()
    result = netdoctor(SEED_CASE / "original.py", "-q", "--stop-on", "error", "--format", "json",
                       observer=None, timeout=300)
    report = json.loads(result.stdout)
    run = report["runs"]["original"]
    assert run["status"] == "stopped", run
    assert run["steps"] < 2000 * 4  # the full run is 2,000 epochs of 4 samples
    assert any(f["severity"] == "error" for f in report["findings"])


def test_real_observer_flags_a_numpy_network_diverging_to_nan(tmp_path):
    _real_observer()
    diverging = tmp_path / "diverging.py"
    # A plain module-level NumPy loop whose learning rate is far too high for its
    # unscaled inputs: the loss passes 1e300 and is NaN long before epoch 200.
    diverging.write_text(
        "import numpy as np\n"
        "np.seterr(all='ignore')\n"
        "rng = np.random.default_rng(0)\n"
        "X = rng.normal(size=(16, 3)) * 100\n"
        "y = X.sum(axis=1, keepdims=True)\n"
        "W1 = rng.normal(size=(3, 8))\n"
        "b1 = np.zeros(8)\n"
        "W2 = rng.normal(size=(8, 1))\n"
        "b2 = np.zeros(1)\n"
        "lr = 10.0\n"
        "for epoch in range(200):\n"
        "    h = np.tanh(X @ W1 + b1)\n"
        "    out = h @ W2 + b2\n"
        "    loss = ((out - y) ** 2).mean()\n"
        "    d_out = 2 * (out - y) / len(X)\n"
        "    dW2 = h.T @ d_out\n"
        "    db2 = d_out.sum(0)\n"
        "    d_h = d_out @ W2.T * (1 - h ** 2)\n"
        "    dW1 = X.T @ d_h\n"
        "    db1 = d_h.sum(0)\n"
        "    W1 = W1 - lr * dW1\n"
        "    b1 = b1 - lr * db1\n"
        "    W2 = W2 - lr * dW2\n"
        "    b2 = b2 - lr * db2\n"
        "print('final loss', loss)\n"
    )
    plain = subprocess.run([sys.executable, str(diverging)], capture_output=True, text=True)
    assert plain.stdout.strip() == "final loss nan"  # the script does diverge
    result = netdoctor(diverging, "-q", "--format", "json", observer=None, timeout=300)
    report = json.loads(result.stdout)
    assert "ND106" in {f["code"] for f in report["findings"]}
    assert result.returncode == 1
