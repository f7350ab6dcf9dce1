"""`netdoctor demo`: the seed's XOR network beside its fix, and the JSON contract."""

from __future__ import annotations

import json

import numpy as np
import pytest

from netdoctor.cli import main
from netdoctor.commands import demo
from netdoctor.types import Severity


@pytest.fixture(scope="module")
def report():
    return demo.demo_report()


def test_the_original_reproduces_the_seed_configuration():
    original, fixed = demo.demo_models()
    assert original.layers == [2, 2, 2, 2] and fixed.layers == [2, 2, 2, 2]
    assert original.faults == ("double_sigmoid",) and fixed.faults == ()
    assert (original.init, fixed.init) == ("uniform01", "normal")
    assert original.batch_size == 1 == fixed.batch_size  # per-sample updates, as in the question
    assert original.activation == original.output == "sigmoid"
    # the activation really is 1/(1+sigmoid(-z)): computed here from its definition
    z = np.linspace(-4, 4, 9)
    assert np.allclose(original.layer_function(0)(z), 1 / (1 + 1 / (1 + np.exp(z))))


def test_the_original_is_stuck_at_one_half_and_the_fix_learns_xor():
    original, fixed = demo.demo_models()
    original.fit(demo.XOR_X, demo.XOR_Y, demo.EPOCHS)
    fixed.fit(demo.XOR_X, demo.XOR_Y, demo.EPOCHS)
    targets = np.eye(2)[demo.XOR_Y]
    assert np.all(np.abs(original.predict(demo.XOR_X) - 0.5) < 0.01)
    assert np.all(np.abs(fixed.predict(demo.XOR_X) - targets) < 0.02)


def test_both_runs_complete(report):
    assert list(report.runs) == ["original", "fixed"]
    steps = demo.EPOCHS * 4
    for trace in report.runs.values():
        assert trace.info.status == "completed" and trace.info.steps == steps


def test_original_has_output_pinned_and_activation_mismatch_errors(report):
    errors = report.codes("original", at_least=Severity.ERROR)
    assert {"ND101", "ND303"} <= errors, f"errors on original: {sorted(errors)}"


def test_fixed_has_no_error(report):
    errors = [f for f in report.findings_for("fixed") if f.is_error]
    assert not errors, [f"{f.code} {f.message}" for f in errors]


def test_demo_json_follows_the_contract(capsys):
    status = main(["demo", "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    assert status == 1  # the original has errors
    assert set(data) >= {"netdoctor", "runs", "findings"}
    assert set(data["runs"]) == {"original", "fixed"}
    for run in data["runs"].values():
        assert run["status"] in ("completed", "crashed", "timeout", "stopped")
        assert isinstance(run["steps"], int) and run["steps"] > 0
    assert data["findings"], "the original must have findings"
    for finding in data["findings"]:
        assert set(finding) >= {"code", "symbol", "severity", "run", "message", "layer", "step",
                                "location", "evidence", "fix"}
        assert finding["severity"] in ("error", "warning", "info")
        assert finding["run"] in ("original", "fixed")
    original_errors = {f["code"] for f in data["findings"] if f["run"] == "original" and f["severity"] == "error"}
    assert {"ND101", "ND303"} <= original_errors
    assert not [f for f in data["findings"] if f["run"] == "fixed" and f["severity"] == "error"]


def test_demo_text_and_file_output(tmp_path, capsys):
    target = tmp_path / "demo.json"
    status = main(["demo", "--epochs", "50", "-o", str(target)])
    assert status == 1
    data = json.loads(target.read_text())
    assert data["runs"]["original"]["steps"] == 200
    assert "original" in capsys.readouterr().err  # the verdict still reaches the terminal


def test_demo_rejects_nonsense_epochs(capsys):
    assert main(["demo", "--epochs", "0"]) == 2
    assert "epochs" in capsys.readouterr().err


def test_demo_select_limits_the_rules(capsys):
    status = main(["demo", "--epochs", "50", "--select", "ND303", "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    assert {f["code"] for f in data["findings"]} == {"ND303"}
    assert status == 1
    assert main(["demo", "--select", "ND999"]) == 2
