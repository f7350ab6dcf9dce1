"""Case studies: load and validate a ``case.toml``.

A case study is a folder holding a training script and a ``case.toml`` saying
what netdoctor must find. There are two kinds.

A **buggy case**: a known-bad script, its corrected version, and the codes the
bad one must be flagged with::

    title = "XOR stuck at 0.5: sigmoid applied twice"
    symptom = "both outputs read ~0.501 for every input"
    original = "original.py"          # the known-bad script
    fixed = "fixed.py"                # the corrected script: must be observed and healthy
    expect = ["ND101", "ND303"]       # codes the original must all be flagged with (any severity)
    expect_any = ["ND201", "ND403"]   # optional: and at least one of these
    style = "class with dicts of arrays, per-sample SGD"
    timeout = 60                      # seconds per script run
    extra_healthy = ["answer.py"]     # optional: more scripts that must be observed and healthy
    requires = ["torch"]              # optional: modules the scripts import (missing -> skipped)
    [expected_failures]               # optional: known misses, code = "reason"
    ND203 = "the hidden delta is a local variable the observer cannot see"

At least one of ``expect`` and ``expect_any`` is given. ``expect_any`` is for a
bug whose root cause shows as one of several codes (a vanishing gradient seen
either in the gradients or in the initial scale): the case passes when any one
of them is flagged. It holds two codes or more, none of them in ``expect``.

A **healthy-only case**: a correct implementation, with no original::

    title = "Book-style network, list-of-arrays updates"
    healthy = ["network.py"]          # every script listed must be observed and healthy
    style = "..."
    timeout = 60

A healthy-only case has none of ``original``, ``fixed``, ``expect``,
``expect_any``, ``extra_healthy`` and ``expected_failures``.

"Healthy" (for ``fixed``, ``extra_healthy`` and ``healthy``) means observed --
netdoctor saw training steps -- finished normally, and without an error-severity
finding: a script nothing could be seen of is not called healthy.

``[known_unseen]`` (either kind of case) declares, as data, that netdoctor cannot yet
observe a healthy-side script in full: ``"fixed.py" = "reason"``. Such a script must
still have no error finding; that it is not (fully) observed is an expected failure,
and a strict one: once netdoctor sees it, the declaration must go.

``expected_failures`` declares, as data, that netdoctor currently misses a code
on this original (the case study is right, the detector is not there yet). Such
a code is still checked, but a miss is an expected failure (pytest xfail), not a
regression. A declared code need not be repeated in ``expect``; it may not be a
member of ``expect_any`` (a group is met by any of its codes, so one declared
miss in it says nothing).

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
_REQUIRED = ("title",)
_BUGGY = ("original", "fixed", "expect", "expect_any", "extra_healthy", "expected_failures")
_HEALTHY_ONLY = ("healthy",)
_OPTIONAL = ("symptom", "style", "timeout", "known_unseen", "requires")
_KNOWN = _REQUIRED + _BUGGY + _HEALTHY_ONLY + _OPTIONAL


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
    original: Path | None          # None in a healthy-only case
    fixed: Path | None             # None in a healthy-only case
    expect: tuple[str, ...] = ()
    symptom: str = ""
    style: str = ""
    timeout: float = DEFAULT_TIMEOUT
    extra_healthy: tuple[Path, ...] = ()
    expected_failures: dict[str, str] = field(default_factory=dict)
    expect_any: tuple[str, ...] = ()   # at least one of these must be flagged on the original
    healthy: tuple[Path, ...] = ()     # a healthy-only case's scripts
    known_unseen: dict[str, str] = field(default_factory=dict)   # healthy-side file name -> why not seen yet
    requires: tuple[str, ...] = ()     # modules the scripts import; the case is skipped without them

    def missing_requirements(self) -> list[str]:
        """The modules in `requires` that cannot be imported here."""
        import importlib.util

        return [name for name in self.requires if importlib.util.find_spec(name) is None]

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def healthy_only(self) -> bool:
        """A correct implementation with no original: its scripts must only be healthy."""
        return self.original is None

    @property
    def healthy_scripts(self) -> dict[str, Path]:
        """label -> script for every script that must be healthy: "fixed" and the extras,
        or a healthy-only case's scripts named after their files."""
        if self.healthy_only:
            return {path.name: path for path in self.healthy}
        assert self.fixed is not None
        return {"fixed": self.fixed, **{path.name: path for path in self.extra_healthy}}

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


class _Fields:
    """The raw table of one case.toml, with typed readers that fail with the file's name."""

    def __init__(self, path: Path, data: dict[str, Any]):
        self.path, self.data, self.folder = path, data, path.parent

    def fail(self, problem: str):
        raise CaseFileError(self.path, problem)

    def script(self, key: str, value: Any) -> Path:
        if not isinstance(value, str) or not value.strip():
            self.fail(f"`{key}` must be a file name (a non-empty string)")
        file = (self.folder / value).resolve()
        if not file.is_file():
            self.fail(f"`{key}` names {value!r}, which is not a file in {self.folder}")
        return file

    def scripts(self, key: str) -> tuple[Path, ...]:
        names = self.data.get(key, [])
        if not isinstance(names, list):
            self.fail(f"`{key}` must be a list of file names")
        return tuple(self.script(key, name) for name in names)

    def codes(self, key: str) -> tuple[str, ...]:
        """A list of rule codes; () when the key is absent, an error when present but empty."""
        value = self.data.get(key, [])
        if not isinstance(value, list) or (key in self.data and not value):
            self.fail(f"`{key}` must be a non-empty list of rule codes, e.g. [\"ND101\"]")
        for code in value:
            if not isinstance(code, str) or not _CODE.match(code):
                self.fail(f"`{key}` holds {code!r}, which is not a rule code of the form ND123")
        if len(set(value)) != len(value):
            self.fail(f"`{key}` lists a code twice")
        return tuple(value)


def _validate(path: Path, data: dict[str, Any]) -> CaseSpec:
    fields = _Fields(path, data)
    fail = fields.fail

    missing = [] if "title" in data else ["title"]
    if "healthy" not in data:
        missing += [key for key in ("original", "fixed") if key not in data]
        if "expect" not in data and "expect_any" not in data:
            missing.append("expect")
    if missing:
        fail(f"missing required key(s): {', '.join(missing)}"
             + ("" if missing == ["title"] else " (or `healthy` for a healthy-only case)"))
    unknown = sorted(set(data) - set(_KNOWN))
    if unknown:
        # A typo such as `expects` would otherwise silently check nothing.
        fail(f"unknown key(s): {', '.join(unknown)} (known keys: {', '.join(_KNOWN)})")

    for key in ("title", "symptom", "style"):
        if key in data and not isinstance(data[key], str):
            fail(f"`{key}` must be a string, not {type(data[key]).__name__}")
    if not data["title"].strip():
        fail("`title` is empty")

    timeout = data.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not (
        math.isfinite(timeout) and timeout > 0
    ):
        fail(f"`timeout` must be a positive number of seconds, not {timeout!r}")

    requires = data.get("requires", [])
    if not isinstance(requires, list) or not all(isinstance(r, str) and r.strip() for r in requires):
        fail("`requires` must be a list of module names, e.g. [\"torch\"]")
    common = dict(name=path.parent.name, path=path, title=data["title"].strip(),
                  symptom=data.get("symptom", ""), style=data.get("style", ""),
                  timeout=float(timeout), requires=tuple(r.strip() for r in requires))
    spec = _healthy_only_case(fields, common) if "healthy" in data else _buggy_case(fields, common)
    unseen = data.get("known_unseen", {})
    if not isinstance(unseen, dict):
        fail("`known_unseen` must be a table: [known_unseen] then \"script.py\" = \"reason\"")
    names = {path.name for path in spec.healthy_scripts.values()}
    for script, reason in unseen.items():
        if script not in names:
            fail(f"`known_unseen` names {script!r}, which is not one of the case's healthy-side scripts "
                 f"({', '.join(sorted(names))})")
        if not isinstance(reason, str) or not reason.strip():
            fail(f"`known_unseen.{script}` needs a reason (a non-empty string)")
    if unseen:
        import dataclasses

        spec = dataclasses.replace(spec, known_unseen=dict(unseen))
    return spec


def _healthy_only_case(fields: _Fields, common: dict[str, Any]) -> CaseSpec:
    mixed = [key for key in _BUGGY if key in fields.data]
    if mixed:
        fields.fail(f"a healthy-only case (`healthy`) has no {', '.join(mixed)}: a case is either "
                    "buggy (original, fixed, expect) or healthy-only (healthy)")
    healthy = fields.scripts("healthy")
    if not healthy:
        fields.fail("`healthy` must name at least one script")
    # Each script's run is named after its file.
    if len({p.name for p in healthy}) != len(healthy):
        fields.fail("`healthy` lists a file name twice")
    return CaseSpec(original=None, fixed=None, healthy=healthy, **common)


def _buggy_case(fields: _Fields, common: dict[str, Any]) -> CaseSpec:
    fail = fields.fail
    original = fields.script("original", fields.data["original"])
    fixed = fields.script("fixed", fields.data["fixed"])

    expect = fields.codes("expect")
    expect_any = fields.codes("expect_any")
    if len(expect_any) == 1:
        fail("`expect_any` needs two codes or more (one of them must be flagged); "
             "a single code belongs in `expect`")
    both = [code for code in expect_any if code in expect]
    if both:
        fail(f"{', '.join(both)} is in both `expect` and `expect_any`")

    extra_paths = fields.scripts("extra_healthy")
    labels = [p.name for p in extra_paths]
    # Each script's run is named after its file; "original"/"fixed" are taken.
    if len(set(labels)) != len(labels) or {p.name for p in (original, fixed)} & set(labels):
        fail("`extra_healthy` scripts need distinct file names, other than the original's and the fixed one's")

    failures = fields.data.get("expected_failures", {})
    if not isinstance(failures, dict):
        fail("`expected_failures` must be a table: [expected_failures] then CODE = \"reason\"")
    for code, reason in failures.items():
        if not _CODE.match(code):
            fail(f"`expected_failures` names {code!r}, which is not a rule code of the form ND123")
        if not isinstance(reason, str) or not reason.strip():
            fail(f"`expected_failures.{code}` needs a reason (a non-empty string)")
        if code in expect_any:
            fail(f"`expected_failures` names {code}, a member of `expect_any`: a group is met by "
                 "any of its codes, so drop the code from the group instead")

    return CaseSpec(
        original=original,
        fixed=fixed,
        expect=expect,
        expect_any=expect_any,
        extra_healthy=extra_paths,
        expected_failures=dict(failures),
        **common,
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
