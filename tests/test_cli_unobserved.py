"""A script in which nothing trains is not called healthy, and a crash is told as a crash."""

from __future__ import annotations

import subprocess
import sys


def _diagnose(script):
    return subprocess.run([sys.executable, "-m", "netdoctor.cli", "diagnose", str(script), "-q"],
                          capture_output=True, text=True, timeout=120)


def test_a_script_that_trains_nothing_exits_2_and_says_why(tmp_path):
    script = tmp_path / "noop.py"
    script.write_text("print('no network here')\n")
    done = _diagnose(script)
    assert done.returncode == 2
    assert "no training step was observed" in done.stderr
    assert "verdict: healthy" not in done.stdout


def test_a_crash_is_reported_as_a_crash_not_as_nothing_observed(tmp_path):
    script = tmp_path / "crash.py"
    script.write_text("raise ValueError('broken data file')\n")
    done = _diagnose(script)
    assert done.returncode == 2
    assert "ValueError: broken data file" in done.stdout + done.stderr
    assert "no training step was observed" not in done.stderr
