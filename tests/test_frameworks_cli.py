"""`netdoctor diagnose` on unmodified torch/Keras scripts, and NumPy users paying nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")  # importorskip("keras") below needs a backend
SCRIPTS = Path(__file__).parent / "scripts"
ENV = dict(os.environ, OMP_NUM_THREADS="1", KERAS_BACKEND="torch")


def diagnose(script, *args):
    result = subprocess.run([sys.executable, "-m", "netdoctor.cli", "diagnose", str(SCRIPTS / script),
                             "--format", "json", *args], capture_output=True, text=True, env=ENV,
                            timeout=300)
    return result.returncode, json.loads(result.stdout) if result.stdout.strip() else None, result.stderr


def codes(report):
    return {f["code"] for f in report["findings"] if f["severity"] in ("error", "warning")}


def test_import_netdoctor_imports_no_framework():
    code = ("import sys, netdoctor, netdoctor.api, netdoctor.adapters, netdoctor.cli, "
            "netdoctor.commands.diagnose, netdoctor.frameworks.lazy; "
            "print(sorted(m for m in ('torch', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    assert out.stdout.strip() == "[]", out.stderr


def test_a_numpy_script_never_loads_the_framework_watchers():
    code = ("import runpy, sys; from netdoctor.frameworks.lazy import FrameworkHooks; "
            "h = FrameworkHooks('x', None, [], {}); h.install(); import numpy; "
            "print(h.torch is None and h.keras is None and 'netdoctor.frameworks.torch_hooks' not in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    assert out.stdout.strip() == "True", out.stderr


def test_an_unmodified_torch_script_with_accumulating_gradients():
    pytest.importorskip("torch")
    status, report, _ = diagnose("torch_grad_accumulates.py")
    assert status == 1 and "ND704" in codes(report)
    finding = next(f for f in report["findings"] if f["code"] == "ND704")
    assert finding["location"]["file"].endswith("torch_grad_accumulates.py")
    status, report, _ = diagnose("torch_grad_accumulates.py", "--", "--zero")
    assert report["runs"]["original"]["steps"] >= 50
    assert "ND704" not in codes(report), report["findings"]
    assert not any(f["severity"] == "error" for f in report["findings"]), report["findings"]
    # Tensors updated by hand, outputs never kept by the script: the forward pass is found
    # from the torch calls before the first backward(), so the outputs are seen too.
    run = report["runs"]["original"]
    assert run["state"] == "healthy" and status == 0
    assert all(run["coverage"][role] is None for role in ("outputs", "loss", "updates"))


def test_an_unmodified_keras_script():
    pytest.importorskip("torch")
    pytest.importorskip("keras")
    status, report, _ = diagnose("keras_single_softmax.py")
    assert status == 1 and "ND703" in codes(report)
    finding = next(f for f in report["findings"] if f["code"] == "ND703")
    # the line that builds the layer (the Sequential([...]) call holding Dense(1, softmax))
    assert finding["layer"] == "dense_1" and finding["location"]["file"].endswith("keras_single_softmax.py")
    status, report, _ = diagnose("keras_single_softmax.py", "--", "sigmoid")
    assert report["runs"]["original"]["steps"] == 60 and report["ok"], report["findings"]


def test_a_missing_framework_is_told_in_one_line(tmp_path):
    script = tmp_path / "needs_keras.py"
    script.write_text("import keras_is_not_here_either\n")  # a missing module that is not a framework
    out = subprocess.run([sys.executable, "-m", "netdoctor.cli", "diagnose", str(script)],
                         capture_output=True, text=True, env=ENV)
    assert "pip install" not in out.stderr
    from netdoctor.frameworks import missing_framework_hint

    hint = missing_framework_hint("Traceback ...\nModuleNotFoundError: No module named 'torch'")
    assert hint is not None and "netdoctor[torch]" in hint
