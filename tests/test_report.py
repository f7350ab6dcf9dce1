"""Report: verdict, diff, the JSON contract, and writing files safely."""

from __future__ import annotations

import json
import os
import stat

import pytest

from netdoctor.config import Thresholds
from netdoctor.report import Report, ReportError
from netdoctor.trace import Trace
from netdoctor.types import Finding, Location, RunInfo, Severity


def _trace(name: str, steps: int = 10, status: str = "completed", script: str | None = None) -> Trace:
    from conftest import observed_trace

    return observed_trace(name, steps=steps, status=status, script=script,
                          seen=("outputs", "loss", "updates") if steps else ())


def _finding(code: str, run: str, severity=Severity.ERROR, layer=None, location=None) -> Finding:
    return Finding(code=code, symbol=f"sym-{code}", severity=severity, run=run,
                   message=f"{code} on {run}", layer=layer, location=location,
                   evidence={"value": 1.5, "nan": float("nan"), "thresholds": {"limit": 1.0}})


def test_ok_needs_no_error_finding_and_an_observed_run():
    healthy = Report([_trace("a")], [_finding("ND402", "a", Severity.WARNING)])
    assert healthy.ok and not healthy.fails("error") and healthy.fails("warning")
    assert not Report([_trace("a")], [_finding("ND101", "a")]).ok
    assert not Report([_trace("a", status="crashed")]).ok
    empty = Report([_trace("a", steps=0)])
    assert not empty.ok and empty.unobserved() == ["a"]


@pytest.mark.parametrize("blind", ["outputs", "loss", "updates"])
def test_a_run_seen_in_part_is_partly_observed_not_healthy(blind):
    from conftest import observed_trace
    from netdoctor.runstate import RunState

    seen = [role for role in ("outputs", "loss", "updates") if role != blind]
    report = Report([observed_trace("a", seen=seen)])
    assert report.state("a") is RunState.PARTLY_OBSERVED and not report.ok
    assert report.partly_observed() == ["a"]
    entry = report.to_dict()["runs"]["a"]
    assert entry["state"] == "partly observed" and entry["coverage"][blind] is not None
    assert any(blind in item["why"] for item in entry["not_judged"])
    # An error in what was seen still makes it NOT healthy: symptoms need no targets.
    flagged = Report([observed_trace("a", seen=seen)], [_finding("ND105", "a")])
    assert flagged.state("a") is RunState.NOT_HEALTHY


def test_gradients_unseen_alone_do_not_block_health():
    from conftest import observed_trace
    from netdoctor.runstate import RunState, Role

    report = Report([observed_trace("a")])
    assert report.state("a") is RunState.HEALTHY
    assert Role.GRADIENTS in report.coverage("a").missing


def test_diff_sorts_findings_into_only_a_both_only_b():
    report = Report(
        [_trace("original"), _trace("fixed")],
        [_finding("ND101", "original"), _finding("ND402", "original", layer="layer1"),
         _finding("ND402", "fixed", layer="layer1"), _finding("ND501", "fixed", Severity.WARNING)],
    )
    where = {row.code: row.where for row in report.diff().itertuples()}
    assert where == {"ND101": "only original", "ND402": "both", "ND501": "only fixed"}
    with pytest.raises(KeyError):
        report.diff("original", "nope")
    with pytest.raises(ValueError):
        Report([_trace("solo")]).diff()


def test_json_contract_is_strict_json_with_the_documented_keys():
    loc = Location(file="net.py", line=12, function="Net.act")
    report = Report([_trace("original", script="net.py")], [_finding("ND303", "original", location=loc)])
    data = json.loads(report.to_json())  # allow_nan=False inside: NaN must have been mapped
    assert set(data) >= {"netdoctor", "runs", "findings"}
    run = data["runs"]["original"]
    assert run["status"] == "completed" and run["steps"] == 10
    (f,) = data["findings"]
    assert set(f) >= {"code", "symbol", "severity", "run", "message", "layer", "step",
                      "location", "evidence", "fix"}
    assert f["severity"] == "error" and f["location"] == {"file": "net.py", "line": 12, "function": "Net.act"}
    assert f["evidence"]["nan"] is None


def test_to_frame_has_one_row_per_finding():
    report = Report([_trace("a")], [_finding("ND101", "a"), _finding("ND102", "a")])
    frame = report.to_frame()
    assert list(frame["code"]) == ["ND101", "ND102"] and set(frame["run"]) == {"a"}


def test_save_refuses_python_files_and_the_diagnosed_script(tmp_path):
    script = tmp_path / "train.py"
    script.write_text("print('hi')\n")
    report = Report([_trace("a", script=str(script))])
    for target in (script, tmp_path / "other.py"):
        with pytest.raises(ReportError):
            report.save(target, format="json")
    assert script.read_text() == "print('hi')\n"
    # the script, reached through another spelling of its path, is still protected
    with pytest.raises(ReportError):
        report.save(tmp_path / "." / "train.py", format="text")
    with pytest.raises(ReportError):
        report.save(tmp_path / "report.unknown")
    with pytest.raises(ReportError):
        report.save(tmp_path, format="json")


def test_save_is_atomic_and_readable_by_others(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("previous")
    report = Report([_trace("a")], [_finding("ND101", "a")])
    old_umask = os.umask(0o022)
    try:
        report.save(target)
    finally:
        os.umask(old_umask)
    assert json.loads(target.read_text())["findings"][0]["code"] == "ND101"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary left behind


def test_save_failure_leaves_the_old_file_untouched(tmp_path, monkeypatch):
    target = tmp_path / "report.json"
    target.write_text("previous")
    report = Report([_trace("a")])

    def explode(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C in the middle of writing

    monkeypatch.setattr("os.replace", explode)
    with pytest.raises(KeyboardInterrupt):
        report.save(target)
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_thresholds_reject_unknown_names():
    assert Thresholds().with_(pinned_std=1e-4).pinned_std == 1e-4
    with pytest.raises(ValueError, match="pinned_sdt"):
        Thresholds().with_(pinned_sdt=1e-4)


def test_severity_parse_and_order():
    assert Severity.parse("Warning") is Severity.WARNING
    assert Severity.ERROR > Severity.WARNING > Severity.INFO
    with pytest.raises(ValueError):
        Severity.parse("fatal")
