"""Case studies: load and validate a ``case.toml``.

A case study is a folder holding a known-bad training script, its corrected
version and a ``case.toml`` saying what netdoctor must find::

    title = "XOR stuck at 0.5: sigmoid applied twice"
    symptom = "both outputs read ~0.501 for every input"
    original = "original.py"          # the known-bad script
    fixed = "fixed.py"                # the corrected script: must be healthy
    expect = ["ND101", "ND303"]       # codes the original must be flagged with (any severity)
    style = "class with dicts of arrays, per-sample SGD"
    timeout = 60                      # seconds per script run
    extra_healthy = ["answer.py"]     # optional: more scripts that must be healthy
    requires = ["torch"]              # optional: modules the scripts import (missing -> skipped)
    [expected_failures]               # optional: known misses, code = "reason"
    ND203 = "the hidden delta is a local variable the observer cannot see"

``expected_failures`` declares, as data, that netdoctor currently misses a code
on this original (the case study is right, the detector is not there yet). Such
a code is still checked, but a miss is an expected failure (pytest xfail), not a
regression. A declared code need not be repeated in ``expect``.

This module only reads and checks the file: running a case lives in
:mod:`netdoctor.testing`. Paths in the result are absolute.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CASE_FILE = "case.toml"
DEFAULT_TIMEOUT = 60.0

_CODE = re.compile(r"^ND[1-9]\d\d$")
_REQUIRED = ("title", "original", "fixed", "expect")
_OPTIONAL = ("symptom", "style", "timeout", "extra_healthy", "expected_failures", "requires")


class CaseFileError(ValueError):
    """A case.toml that cannot be used; the message names the file and the problem."""

    def __init__(self, path: Path | str, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass(frozen=True)
class CaseSpec:
    """What one case study declares, validated."""

    name: str                      # the folder's name, e.g. "xor_stuck_at_half"
    path: Path                     # the case.toml itself
    title: str
    original: Path
    fixed: Path
    expect: tuple[str, ...]
    symptom: str = ""
    style: str = ""
    timeout: float = DEFAULT_TIMEOUT
    extra_healthy: tuple[Path, ...] = ()
    expected_failures: dict[str, str] = field(default_factory=dict)
    requires: tuple[str, ...] = ()

    def missing_requirements(self) -> list[str]:
        """The modules in `requires` that cannot be imported here."""
        import importlib.util

        return [name for name in self.requires if importlib.util.find_spec(name) is None]

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def checked_codes(self) -> tuple[str, ...]:
        """Every code the original is checked for: `expect`, then declared misses not in it."""
        extra = [code for code in self.expected_failures if code not in self.expect]
        return self.expect + tuple(extra)

    def is_known_failure(self, code: str) -> bool:
        return code in self.expected_failures


def load_case(path: str | Path) -> CaseSpec:
    """Read and validate one case.toml (or the folder holding it).

    Raises :class:`CaseFileError` with one clear sentence for anything wrong:
    unreadable TOML, a missing or unknown key, a value of the wrong type, a code
    that is not of the form ND123, or a script that does not exist.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CASE_FILE
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise CaseFileError(path, "no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise CaseFileError(path, f"not valid TOML: {exc}") from None
    return _validate(path.resolve(), data)


def _validate(path: Path, data: dict[str, Any]) -> CaseSpec:
    def fail(problem: str):
        raise CaseFileError(path, problem)

    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        fail(f"missing required key(s): {', '.join(missing)}")
    unknown = sorted(set(data) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        # A typo such as `expects` would otherwise silently check nothing.
        known = ", ".join(_REQUIRED + _OPTIONAL)
        fail(f"unknown key(s): {', '.join(unknown)} (known keys: {known})")

    for key in ("title", "symptom", "style"):
        if key in data and not isinstance(data[key], str):
            fail(f"`{key}` must be a string, not {type(data[key]).__name__}")
    if not data["title"].strip():
        fail("`title` is empty")

    folder = path.parent

    def script(key: str, value: Any) -> Path:
        if not isinstance(value, str) or not value.strip():
            fail(f"`{key}` must be a file name (a non-empty string)")
        file = (folder / value).resolve()
        if not file.is_file():
            fail(f"`{key}` names {value!r}, which is not a file in {folder}")
        return file

    original = script("original", data["original"])
    fixed = script("fixed", data["fixed"])

    expect = data["expect"]
    if not isinstance(expect, list) or not expect:
        fail("`expect` must be a non-empty list of rule codes, e.g. [\"ND101\"]")
    for code in expect:
        if not isinstance(code, str) or not _CODE.match(code):
            fail(f"`expect` holds {code!r}, which is not a rule code of the form ND123")
    if len(set(expect)) != len(expect):
        fail("`expect` lists a code twice")

    timeout = data.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not (
        math.isfinite(timeout) and timeout > 0
    ):
        fail(f"`timeout` must be a positive number of seconds, not {timeout!r}")

    extras = data.get("extra_healthy", [])
    if not isinstance(extras, list):
        fail("`extra_healthy` must be a list of file names")
    extra_paths = tuple(script("extra_healthy", name) for name in extras)
    labels = [p.name for p in extra_paths]
    # Each script's run is named after its file; "original"/"fixed" are taken.
    if len(set(labels)) != len(labels) or {p.name for p in (original, fixed)} & set(labels):
        fail("`extra_healthy` scripts need distinct file names, other than the original's and the fixed one's")

    failures = data.get("expected_failures", {})
    if not isinstance(failures, dict):
        fail("`expected_failures` must be a table: [expected_failures] then CODE = \"reason\"")
    for code, reason in failures.items():
        if not _CODE.match(code):
            fail(f"`expected_failures` names {code!r}, which is not a rule code of the form ND123")
        if not isinstance(reason, str) or not reason.strip():
            fail(f"`expected_failures.{code}` needs a reason (a non-empty string)")

    requires = data.get("requires", [])
    if not isinstance(requires, list) or not all(isinstance(r, str) and r.strip() for r in requires):
        fail("`requires` must be a list of module names, e.g. [\"torch\"]")

    return CaseSpec(
        name=folder.name,
        path=path,
        title=data["title"].strip(),
        original=original,
        fixed=fixed,
        expect=tuple(expect),
        symptom=data.get("symptom", ""),
        style=data.get("style", ""),
        timeout=float(timeout),
        extra_healthy=extra_paths,
        expected_failures=dict(failures),
        requires=tuple(r.strip() for r in requires),
    )


def find_cases(root: str | Path) -> list[Path]:
    """Every case.toml under `root` (or `root` itself when it is a case), sorted by path."""
    root = Path(root)
    if root.is_file():
        return [root] if root.name == CASE_FILE else []
    if (root / CASE_FILE).is_file():
        return [root / CASE_FILE]
    return sorted(root.rglob(CASE_FILE))


def folders_without_case(root: str | Path) -> list[Path]:
    """Sub-folders of `root` holding Python files but no case.toml: cases not yet declared."""
    root = Path(root)
    if not root.is_dir() or (root / CASE_FILE).is_file():
        return []
    return sorted(
        sub for sub in root.iterdir()
        if sub.is_dir() and not (sub / CASE_FILE).exists() and any(sub.glob("*.py"))
    )
