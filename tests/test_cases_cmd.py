"""`netdoctor cases`: the detection matrix and its exit status."""

from __future__ import annotations

import json
import multiprocessing
import re
from pathlib import Path

import pytest
from xor_script import xor_script

from netdoctor.cli import main

SYMBOLS = {"ND101": "output-pinned", "ND303": "activation-mismatch", "ND402": "same-sign-init",
           "ND203": "gradient-mismatch", "ND501": "update-ratio-high"}


@pytest.fixture
def fake_diagnosis(monkeypatch, report_factory, finding_factory):
    """Scripts declare their diagnosis in a comment: `# findings: ND101:error ND402:warning`.

    A run has 10 observed steps unless the script says `# steps: 0` (nothing observed)."""
    import netdoctor.api

    def fake(target, X=None, y=None, epochs=None, *, names=("original", "fixed"), **options):
        text = Path(target).read_text()
        print(f"output of {Path(target).name}")  # a script's own prints must not reach the matrix
        declared = re.search(r"# findings:(.*)", text)
        run = names[0]
        findings = [finding_factory(code, SYMBOLS[code], severity, run=run, message=f"{code} seen")
                    for code, severity in (item.split(":") for item in (declared.group(1).split() if declared else []))]
        status = re.search(r"# status: (\w+)", text)
        steps = re.search(r"# steps: (\d+)", text)
        blind = steps is not None and int(steps.group(1)) == 0
        return report_factory(findings, runs=(run,), status={run: status.group(1) if status else "completed"},
                              seen={run: () if blind else ("outputs", "loss", "updates")})

    monkeypatch.setattr(netdoctor.api, "diagnose", fake)


def _codes(codes) -> str:
    return "[" + ", ".join(f'"{c}"' for c in codes) + "]"


def make_case(root: Path, name: str, expect, original: str, fixed: str, failures=None, extra=None,
              expect_any=None):
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "original.py").write_text(original)
    (folder / "fixed.py").write_text(fixed)
    toml = [f'title = "{name}"', 'original = "original.py"', 'fixed = "fixed.py"']
    if expect:
        toml.append(f"expect = {_codes(expect)}")
    if expect_any:
        toml.append(f"expect_any = {_codes(expect_any)}")
    if extra:
        for script, text in extra.items():
            (folder / script).write_text(text)
        toml.append("extra_healthy = [" + ", ".join(f'"{s}"' for s in extra) + "]")
    if failures:
        toml.append("[expected_failures]")
        toml += [f'{code} = "{reason}"' for code, reason in failures.items()]
    (folder / "case.toml").write_text("\n".join(toml) + "\n")


def make_healthy_case(root: Path, name: str, scripts: dict[str, str]):
    folder = root / name
    folder.mkdir(parents=True)
    for script, text in scripts.items():
        (folder / script).write_text(text)
    (folder / "case.toml").write_text(f'title = "{name}"\nhealthy = {_codes(scripts)}\n')


def good_corpus(root: Path) -> Path:
    make_case(root, "double_sigmoid", ["ND101", "ND303"],
              "# findings: ND101:error ND303:error ND402:warning\n", "# findings: ND402:warning\n",
              extra={"answer.py": "# findings:\n"})
    make_case(root, "known_miss", ["ND101"], "# findings: ND101:error ND501:error\n", "# findings:\n",
              failures={"ND203": "the delta is a local variable"})
    return root


def run_cases(capsys, *args):
    status = main(["cases", *map(str, args)])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_a_clean_corpus_exits_0_with_the_matrix(tmp_path, capsys, fake_diagnosis):
    status, out, _ = run_cases(capsys, good_corpus(tmp_path / "cases"), "-j", "1", "-q")
    assert status == 0, out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith(("double_sigmoid", "known_miss"))}
    assert "+ND101 +ND303" in rows["double_sigmoid"]
    assert "+ND101 ~ND203" in rows["known_miss"]
    assert "ND501" in rows["known_miss"]  # an error on the original beyond the expected codes
    assert "recall on expected codes: 3 of 4 (75%); missed: 0; declared known misses: 1" in out
    assert "fixed versions not healthy (an error finding, a failed run or nothing observed): 0 of 2" in out
    assert "known_miss: known miss ND203 (the delta is a local variable)" in out
    assert out.rstrip().endswith("result: ok")


def test_json_matrix(tmp_path, capsys, fake_diagnosis):
    status, out, err = run_cases(capsys, good_corpus(tmp_path / "cases"), "--format", "json", "-j", "1")
    assert "output of" not in out + err
    data = json.loads(out)
    assert status == 0 and data["ok"] is True
    assert data["totals"]["expected_codes"] == 4 and data["totals"]["found"] == 3
    assert data["totals"]["recall"] == 0.75
    cases = {case["case"]: case for case in data["cases"]}
    assert cases["double_sigmoid"]["found"] == ["ND101", "ND303"]
    assert cases["known_miss"]["known_missed"] == {"ND203": "the delta is a local variable"}
    assert [f["code"] for f in cases["known_miss"]["unexpected_errors_original"]] == ["ND501"]


def test_a_missed_code_exits_1(tmp_path, capsys, fake_diagnosis):
    root = good_corpus(tmp_path / "cases")
    make_case(root, "regression", ["ND303"], "# findings: ND101:error\n", "# findings:\n")
    status, out, _ = run_cases(capsys, root, "-j", "1")
    assert status == 1
    assert "-ND303" in out and "regression: missed ND303" in out
    assert out.rstrip().endswith("result: FAIL")


@pytest.mark.parametrize("fixed, shown", [
    ("# findings: ND101:error\n", "ND101"),
    ("# findings:\n# status: crashed\n", "run failed"),
])
def test_an_unhealthy_fixed_version_exits_1(tmp_path, capsys, fake_diagnosis, fixed, shown):
    root = good_corpus(tmp_path / "cases")
    make_case(root, "sick_fix", ["ND101"], "# findings: ND101:error\n", fixed)
    status, out, _ = run_cases(capsys, root, "-j", "1")
    assert status == 1
    row = next(line for line in out.splitlines() if line.startswith("sick_fix"))
    assert shown in row
    assert "fixed versions not healthy (an error finding, a failed run or nothing observed): 1 of 3" in out


def test_an_unhealthy_extra_script_exits_1(tmp_path, capsys, fake_diagnosis):
    root = tmp_path / "cases"
    make_case(root, "c", ["ND101"], "# findings: ND101:error\n", "# findings:\n",
              extra={"answer.py": "# findings: ND303:error\n"})
    status, out, _ = run_cases(capsys, root, "-j", "1")
    assert status == 1 and "answer.py unhealthy" in out


def test_a_declared_miss_that_is_found_is_reported(tmp_path, capsys, fake_diagnosis):
    root = tmp_path / "cases"
    make_case(root, "c", ["ND101"], "# findings: ND101:error ND203:error\n", "# findings:\n",
              failures={"ND203": "thought to be missed"})
    status, out, _ = run_cases(capsys, root, "-j", "1")
    assert status == 0
    assert "ND203 is declared a known miss but was found" in out


def test_an_invalid_case_toml_exits_1_and_others_still_run(tmp_path, capsys, fake_diagnosis):
    root = good_corpus(tmp_path / "cases")
    (root / "broken").mkdir()
    (root / "broken" / "case.toml").write_text('title = "x"\n')
    status, out, _ = run_cases(capsys, root, "-j", "1")
    assert status == 1
    assert "invalid case:" in out and "missing required key(s)" in out
    assert "+ND101 +ND303" in out


def test_folders_without_case_toml_are_mentioned(tmp_path, capsys, fake_diagnosis):
    root = good_corpus(tmp_path / "cases")
    (root / "draft").mkdir()
    (root / "draft" / "original.py").write_text("\n")
    status, out, _ = run_cases(capsys, root, "-j", "1")
    assert status == 0 and f"not a case yet (no case.toml): {root / 'draft'}" in out


def test_no_cases_is_a_usage_error(tmp_path, capsys):
    assert run_cases(capsys, tmp_path)[0] == 2
    status, _, err = run_cases(capsys, tmp_path / "missing")
    assert status == 2 and "no such folder" in err


@pytest.mark.skipif(multiprocessing.get_start_method() != "fork",
                    reason="the stand-in diagnosis reaches worker processes only when they are forked")
def test_parallel_and_serial_give_the_same_matrix(tmp_path, capsys, fake_diagnosis):
    root = good_corpus(tmp_path / "cases")
    make_case(root, "regression", ["ND303"], "# findings: ND101:error\n", "# findings:\n")
    serial = json.loads(run_cases(capsys, root, "--format", "json", "-j", "1")[1])
    parallel = json.loads(run_cases(capsys, root, "--format", "json", "-j", "2")[1])
    for data in (serial, parallel):
        for case in data["cases"]:
            case.pop("seconds")
    assert parallel == serial
    assert [case["case"] for case in parallel["cases"]] == ["double_sigmoid", "known_miss", "regression"]


# -- real scripts -----------------------------------------------------------------------


def test_real_cases_in_parallel(tmp_path, capsys):
    pytest.importorskip("netdoctor.observe.objects")
    root = tmp_path / "cases"
    bad = xor_script("1.0 / (1.0 + sigmoid(-z))")
    good = xor_script("sigmoid(z)")
    make_case(root, "double_sigmoid", ["ND303"], bad, good)
    make_case(root, "wrong_expectation", ["ND303"], good, good)
    status, out, _ = run_cases(capsys, root, "--format", "json", "-j", "2")
    data = json.loads(out)
    cases = {case["case"]: case for case in data["cases"]}
    assert cases["double_sigmoid"]["passed"], cases["double_sigmoid"]
    assert cases["wrong_expectation"]["missed"] == ["ND303"]
    assert status == 1


# -- healthy-only cases, `expect_any`, unobserved runs ------------------------------------


def _row(out: str, case: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(case + " "))


def test_a_healthy_only_case_passes_when_every_script_is_healthy(tmp_path, capsys, fake_diagnosis):
    root = good_corpus(tmp_path / "cases")
    make_healthy_case(root, "book", {"network.py": "# findings: ND402:warning\n", "network2.py": "# findings:\n"})
    status, out, _ = run_cases(capsys, root, "-j", "1")
    assert status == 0, out
    assert "(healthy only)" in _row(out, "book") and "ok" in _row(out, "book")
    # The healthy-only case adds two healthy scripts and no expected code, no fixed version.
    assert "recall on expected codes: 3 of 4" in out
    assert "0 of 2; fixed, extra and healthy-only scripts not healthy: 0 of 5" in out
    data = json.loads(run_cases(capsys, root, "--format", "json", "-j", "1")[1])
    assert data["totals"]["healthy_only_cases"] == 1 and data["totals"]["healthy_scripts"] == 5
    book = next(case for case in data["cases"] if case["case"] == "book")
    assert book["kind"] == "healthy-only" and book["passed"] is True


@pytest.mark.parametrize("script, shown", [
    ("# findings: ND303:error\n", "ND303"),
    ("# findings:\n# steps: 0\n", "nothing observed"),
    ("# findings:\n# status: crashed\n", "crashed"),
])
def test_a_healthy_only_case_fails_on_an_unhealthy_or_unseen_script(tmp_path, capsys, fake_diagnosis,
                                                                      script, shown):
    root = tmp_path / "cases"
    make_healthy_case(root, "book", {"network.py": "# findings:\n", "network2.py": script})
    status, out, _ = run_cases(capsys, root, "-j", "1")
    assert status == 1, out
    assert "network2.py unhealthy" in _row(out, "book")
    assert any(line.startswith("book: network2.py") and shown in line for line in out.splitlines()), out
    data = json.loads(run_cases(capsys, root, "--format", "json", "-j", "1")[1])
    assert data["ok"] is False and data["totals"]["unhealthy_scripts"] == 1


def test_an_unobserved_fixed_version_is_not_healthy(tmp_path, capsys, fake_diagnosis):
    root = tmp_path / "cases"
    make_case(root, "blind_fix", ["ND101"], "# findings: ND101:error\n", "# findings:\n# steps: 0\n")
    status, out, _ = run_cases(capsys, root, "-j", "1")
    assert status == 1
    assert "not observed" in _row(out, "blind_fix")
    data = json.loads(run_cases(capsys, root, "--format", "json", "-j", "1")[1])
    assert data["cases"][0]["unobserved"] == ["fixed"]


@pytest.mark.parametrize("findings, status, cell", [
    ("ND101:error ND203:error", 0, "+ND101 any(+ND203 -ND501)"),
    ("ND101:error ND501:warning ND203:error", 0, "+ND101 any(+ND203 +ND501)"),
    ("ND101:error ND303:error", 1, "+ND101 any(-ND203 -ND501)"),
])
def test_expect_any_is_met_by_one_code_of_the_group(tmp_path, capsys, fake_diagnosis, findings, status, cell):
    root = tmp_path / "cases"
    make_case(root, "group", ["ND101"], f"# findings: {findings}\n", "# findings:\n",
              expect_any=["ND203", "ND501"])
    got, out, _ = run_cases(capsys, root, "-j", "1")
    assert got == status, out
    assert cell in _row(out, "group")
    data = json.loads(run_cases(capsys, root, "--format", "json", "-j", "1")[1])
    case = data["cases"][0]
    assert case["missed_any"] is (status == 1)
    assert data["totals"]["expected_codes"] == 2  # ND101, and the group as one
    assert data["totals"]["found"] == (2 if status == 0 else 1)
    # The group's codes are judged, so they are not "other errors" of the original.
    assert not {f["code"] for f in case["unexpected_errors_original"]} & {"ND203", "ND501"}
    if status:
        assert "group: missed every one of ND203, ND501" in out


def test_expect_any_without_expect(tmp_path, capsys, fake_diagnosis):
    root = tmp_path / "cases"
    make_case(root, "only_group", [], "# findings: ND501:error\n", "# findings:\n", expect_any=["ND203", "ND501"])
    status, out, _ = run_cases(capsys, root, "-j", "1")
    assert status == 0, out
    assert "recall on expected codes: 1 of 1" in out


def test_real_healthy_only_case(tmp_path, capsys):
    pytest.importorskip("netdoctor.observe.objects")
    root = tmp_path / "cases"
    make_healthy_case(root, "xor_good", {"good.py": xor_script("sigmoid(z)")})
    make_healthy_case(root, "xor_bad", {"bad.py": xor_script("1.0 / (1.0 + sigmoid(-z))")})
    status, out, _ = run_cases(capsys, root, "--format", "json", "-j", "1")
    cases = {case["case"]: case for case in json.loads(out)["cases"]}
    assert cases["xor_good"]["passed"], cases["xor_good"]
    assert not cases["xor_bad"]["passed"] and cases["xor_bad"]["errors_healthy"]["bad.py"]
    assert status == 1


def test_an_unobserved_original_says_why_its_codes_were_missed(tmp_path, capsys, fake_diagnosis):
    root = tmp_path / "cases"
    make_case(root, "blind", ["ND101"], "# findings:\n# steps: 0\n", "# findings:\n")
    status, out, _ = run_cases(capsys, root, "-j", "1")
    assert status == 1
    assert "blind: missed ND101" in out
    assert any(line.startswith("blind: original: nothing observed") for line in out.splitlines()), out
