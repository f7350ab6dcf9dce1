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


# -- healthy-only cases and `expect_any` ---------------------------------------------------

HEALTHY_ONLY = """
title = "Book-style network"
healthy = ["network.py", "network2.py"]
style = "lists of arrays"
timeout = 20
"""


def test_a_healthy_only_case_has_scripts_and_no_original(tmp_path):
    path = write_case(tmp_path / "book", HEALTHY_ONLY, scripts=("network.py", "network2.py"))
    spec = load_case(path)
    assert spec.healthy_only
    assert spec.original is None and spec.fixed is None
    assert spec.expect == () and spec.expect_any == () and spec.checked_codes == ()
    assert list(spec.healthy_scripts) == ["network.py", "network2.py"]
    assert spec.healthy_scripts["network.py"] == (tmp_path / "book" / "network.py").resolve()
    assert spec.timeout == 20.0


def test_a_buggy_case_is_not_healthy_only_and_names_its_healthy_scripts(tmp_path):
    spec = load_case(write_case(tmp_path / "xor", GOOD))
    assert not spec.healthy_only
    assert list(spec.healthy_scripts) == ["fixed", "answer.py"]
    assert spec.healthy_scripts["fixed"] == spec.fixed


def test_expect_any_alone_or_beside_expect(tmp_path):
    alone = write_case(tmp_path / "a", 'title = "t"\noriginal = "original.py"\nfixed = "fixed.py"\n'
                                       'expect_any = ["ND201", "ND403"]\n')
    spec = load_case(alone)
    assert spec.expect == () and spec.expect_any == ("ND201", "ND403")
    both = write_case(tmp_path / "b", GOOD.replace('expect = ["ND101", "ND303"]',
                                                   'expect = ["ND101", "ND303"]\nexpect_any = ["ND201", "ND403"]'))
    spec = load_case(both)
    assert spec.expect == ("ND101", "ND303") and spec.expect_any == ("ND201", "ND403")
    # A group is one check of its own: it is not among the codes checked one by one.
    assert "ND201" not in spec.checked_codes


BUGGY_ANY = GOOD.replace('expect = ["ND101", "ND303"]', 'expect = ["ND101", "ND303"]\nexpect_any = ["ND201", "ND403"]')


@pytest.mark.parametrize("toml, problem", [
    (HEALTHY_ONLY + 'original = "original.py"\n', "healthy-only case"),
    (HEALTHY_ONLY + 'expect = ["ND101"]\n', "has no expect"),
    (HEALTHY_ONLY + 'extra_healthy = ["answer.py"]\n', "has no extra_healthy"),
    (HEALTHY_ONLY.replace('["network.py", "network2.py"]', "[]"), "at least one script"),
    (HEALTHY_ONLY.replace('["network.py", "network2.py"]', '"network.py"'), "must be a list"),
    (HEALTHY_ONLY.replace('"network2.py"', '"missing.py"'), "'missing.py', which is not a file"),
    (HEALTHY_ONLY.replace('"network2.py"', '"network.py"'), "twice"),
    (HEALTHY_ONLY.replace('healthy = ["network.py", "network2.py"]', ""), "missing required key(s): original, fixed, expect"),
    (BUGGY_ANY.replace('expect_any = ["ND201", "ND403"]', 'expect_any = ["ND201"]'), "two codes or more"),
    (BUGGY_ANY.replace('expect_any = ["ND201", "ND403"]', 'expect_any = []'), "non-empty list"),
    (BUGGY_ANY.replace('expect_any = ["ND201", "ND403"]', 'expect_any = ["ND201", "vanishing"]'), "not a rule code"),
    (BUGGY_ANY.replace('expect_any = ["ND201", "ND403"]', 'expect_any = ["ND201", "ND201"]'), "lists a code twice"),
    (BUGGY_ANY.replace('expect_any = ["ND201", "ND403"]', 'expect_any = ["ND201", "ND303"]'), "ND303 is in both"),
    (BUGGY_ANY.replace('ND203 = "the hidden', 'ND201 = "the hidden'), "a member of `expect_any`"),
])
def test_invalid_new_format_cases_say_what_is_wrong(tmp_path, toml, problem):
    path = write_case(tmp_path / "bad", toml,
                      scripts=("original.py", "fixed.py", "answer.py", "network.py", "network2.py"))
    with pytest.raises(CaseFileError) as info:
        load_case(path)
    assert problem in str(info.value)


def test_without_expect_a_buggy_case_needs_expect_any(tmp_path):
    path = write_case(tmp_path / "c", 'title = "t"\noriginal = "original.py"\nfixed = "fixed.py"\n')
    with pytest.raises(CaseFileError, match=r"missing required key\(s\): expect"):
        load_case(path)


def test_known_unseen_names_a_healthy_side_script_with_a_reason(tmp_path):
    from netdoctor.casefile import CaseFileError, load_case

    folder = tmp_path / "case"
    folder.mkdir()
    for name in ("original.py", "fixed.py"):
        (folder / name).write_text("pass\n")
    base = 'title = "t"\noriginal = "original.py"\nfixed = "fixed.py"\nexpect = ["ND101"]\n'
    (folder / "case.toml").write_text(base + '[known_unseen]\n"fixed.py" = "one number at a time"\n')
    assert load_case(folder).known_unseen == {"fixed.py": "one number at a time"}
    for table, problem in (('"other.py" = "x"', "not one of the case"), ('"fixed.py" = ""', "needs a reason")):
        (folder / "case.toml").write_text(base + "[known_unseen]\n" + table + "\n")
        with pytest.raises(CaseFileError, match=problem):
            load_case(folder)
