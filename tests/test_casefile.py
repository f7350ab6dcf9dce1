"""netdoctor.casefile: loading and validating case.toml."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from netdoctor.casefile import (
    DEFAULT_TIMEOUT, CaseFileError, find_cases, folders_without_case, load_case,
)

REPO = Path(__file__).resolve().parents[1]

GOOD = """
title = "XOR stuck at 0.5"
symptom = "outputs near 0.5"
original = "original.py"
fixed = "fixed.py"
expect = ["ND101", "ND303"]
style = "class"
timeout = 12
extra_healthy = ["answer.py"]
[expected_failures]
ND203 = "the hidden delta is not visible"
"""


def write_case(folder: Path, toml: str, scripts=("original.py", "fixed.py", "answer.py")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in scripts:
        (folder / name).write_text("print('hi')\n")
    path = folder / "case.toml"
    path.write_text(textwrap.dedent(toml))
    return path


def test_a_valid_case_loads_with_absolute_paths(tmp_path):
    path = write_case(tmp_path / "xor", GOOD)
    spec = load_case(path)
    assert spec.name == "xor"
    assert spec.title == "XOR stuck at 0.5"
    assert spec.original == (tmp_path / "xor" / "original.py").resolve()
    assert spec.fixed.is_absolute() and spec.fixed.name == "fixed.py"
    assert spec.expect == ("ND101", "ND303")
    assert spec.timeout == 12.0
    assert [p.name for p in spec.extra_healthy] == ["answer.py"]
    assert spec.expected_failures == {"ND203": "the hidden delta is not visible"}
    # Declared misses are checked too, after the expected codes.
    assert spec.checked_codes == ("ND101", "ND303", "ND203")
    assert spec.is_known_failure("ND203") and not spec.is_known_failure("ND101")


def test_a_folder_can_be_given_and_defaults_apply(tmp_path):
    write_case(tmp_path / "c", 'title = "t"\noriginal = "original.py"\nfixed = "fixed.py"\nexpect = ["ND101"]\n')
    spec = load_case(tmp_path / "c")
    assert spec.timeout == DEFAULT_TIMEOUT
    assert spec.extra_healthy == () and spec.expected_failures == {}
    assert spec.symptom == "" and spec.style == ""


@pytest.mark.parametrize("change, problem", [
    (("expect = [\"ND101\", \"ND303\"]", ""), "missing required key(s): expect"),
    (("style = \"class\"", "stlye = \"class\""), "unknown key(s): stlye"),
    (("expect = [\"ND101\", \"ND303\"]", "expect = []"), "non-empty list"),
    (("expect = [\"ND101\", \"ND303\"]", "expect = \"ND101\""), "non-empty list"),
    (("expect = [\"ND101\", \"ND303\"]", "expect = [\"output-pinned\"]"), "not a rule code"),
    (("expect = [\"ND101\", \"ND303\"]", "expect = [\"ND101\", \"ND101\"]"), "lists a code twice"),
    (("original = \"original.py\"", "original = \"missing.py\""), "'missing.py', which is not a file"),
    (("timeout = 12", "timeout = -1"), "positive number"),
    (("timeout = 12", "timeout = \"60\""), "positive number"),
    (("timeout = 12", "timeout = true"), "positive number"),
    (("extra_healthy = [\"answer.py\"]", "extra_healthy = \"answer.py\""), "must be a list"),
    (("extra_healthy = [\"answer.py\"]", "extra_healthy = [\"fixed.py\"]"), "distinct file names"),
    (("ND203 = \"the hidden delta is not visible\"", "ND203 = \"\""), "needs a reason"),
    (("ND203 = \"the hidden delta is not visible\"", "gradients = \"x\""), "not a rule code"),
    (("title = \"XOR stuck at 0.5\"", "title = 3"), "`title` must be a string"),
    (("symptom = \"outputs near 0.5\"", "symptom = [\"a\"]"), "`symptom` must be a string"),
])
def test_invalid_cases_say_what_is_wrong(tmp_path, change, problem):
    old, new = change
    assert old in GOOD
    path = write_case(tmp_path / "bad", GOOD.replace(old, new))
    with pytest.raises(CaseFileError) as info:
        load_case(path)
    assert problem in str(info.value)
    assert str(path.resolve()) in str(info.value) or str(path) in str(info.value)


def test_broken_toml_and_missing_file(tmp_path):
    path = write_case(tmp_path / "b", "title = \n")
    with pytest.raises(CaseFileError, match="not valid TOML"):
        load_case(path)
    with pytest.raises(CaseFileError, match="no such file"):
        load_case(tmp_path / "nowhere" / "case.toml")


def test_finding_cases_and_folders_without_one(tmp_path):
    a = write_case(tmp_path / "a", GOOD)
    b = write_case(tmp_path / "nested" / "b", GOOD)
    (tmp_path / "draft").mkdir()
    (tmp_path / "draft" / "original.py").write_text("pass\n")
    (tmp_path / "notes").mkdir()  # no Python files: not a case in the making
    assert find_cases(tmp_path) == sorted([a, b])
    assert find_cases(tmp_path / "a") == [a]
    assert find_cases(a) == [a]
    assert folders_without_case(tmp_path) == [tmp_path / "draft"]


def test_every_case_study_in_the_repository_is_valid():
    paths = find_cases(REPO / "case_studies")
    assert paths, "the corpus has no case.toml"
    for path in paths:
        spec = load_case(path)  # raises with the file and the problem
        assert (spec.folder / "README.md").is_file(), f"{spec.name} has no README.md"
