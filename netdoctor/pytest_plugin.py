"""pytest plugin: a folder of case studies becomes a test suite.

Registered through the ``pytest11`` entry point, so it is active wherever
netdoctor is installed. Point pytest at a folder of case studies::

    pytest case_studies/

and each ``case.toml`` (see :mod:`netdoctor.casefile`) is collected into items::

    case_studies/xor_stuck_at_half/case.toml::original flags ND101
    case_studies/xor_stuck_at_half/case.toml::original flags ND303
    case_studies/xor_stuck_at_half/case.toml::fixed is healthy
    case_studies/xor_stuck_at_half/case.toml::answer.py is healthy

A case with ``expect_any = ["ND201", "ND403"]`` adds one item for the group::

    case_studies/deep_narrow/case.toml::original flags one of ND201, ND403

and a healthy-only case (``healthy = ["network.py"]``, no original) has one item
per script::

    case_studies/book_network/case.toml::network.py is healthy

A script is healthy when netdoctor observed its training (a run in which no step
was seen fails: nothing was judged), the run finished normally, and no finding
reaches error severity.

One item per expected code, because known misses are declared per code
(``[expected_failures] ND203 = "reason"`` makes exactly that item an xfail) and
because a report reading "ND303 passed, ND203 xfailed" says more than one
"case failed". The items of a case share its runs: each script is diagnosed once
per session, on first need, and the result is cached. Under pytest-xdist use
``--dist loadfile`` so that a case's items stay on one worker.

A case.toml that cannot be used is a collection error naming the file and the
problem. Only files named exactly ``case.toml`` are collected; ``-p no:netdoctor``
turns the plugin off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .casefile import CASE_FILE, CaseFileError, CaseSpec, load_case

# Per-session cache of diagnosed scripts, kept on the config so that two sessions
# in one process (pytester) never share results.
_RUNS = pytest.StashKey[dict]()


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if file_path.name == CASE_FILE:
        return CaseFile.from_parent(parent, path=file_path)
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_RUNS] = {}


def _diagnosed(config: pytest.Config, spec: CaseSpec, label: str, script: Path):
    """The ScriptRun of one script of a case, diagnosed at most once per session."""
    from .testing import diagnose_script

    runs = config.stash.setdefault(_RUNS, {})
    key = (str(script), label, spec.timeout)
    if key not in runs:
        runs[key] = diagnose_script(script, label, timeout=spec.timeout)
    return runs[key]


class CaseFile(pytest.File):
    """One case.toml: collects the checks it declares."""

    def collect(self):
        try:
            spec = load_case(self.path)
        except CaseFileError as exc:
            # Shown as the collection error, without our traceback.
            raise self.CollectError(f"invalid case study: {exc}") from None
        for code in spec.checked_codes:
            item = FlagsItem.from_parent(self, name=f"original flags {code}", spec=spec, code=code)
            if spec.is_known_failure(code):
                item.add_marker(pytest.mark.xfail(reason=spec.expected_failures[code], strict=False))
            yield item
        if spec.expect_any:
            yield FlagsAnyItem.from_parent(self, name=f"original flags one of {', '.join(spec.expect_any)}",
                                           spec=spec)
        for label, script in spec.healthy_scripts.items():
            yield HealthyItem.from_parent(self, name=f"{label} is healthy", spec=spec,
                                          label=label, script=script)


class CaseItem(pytest.Item):
    def __init__(self, *, spec: CaseSpec, **kwargs: Any):
        super().__init__(**kwargs)
        self.spec = spec

    def repr_failure(self, excinfo, style=None):
        # Our assertions already say what was expected and what was seen; a
        # traceback through the plugin would only hide that.
        if isinstance(excinfo.value, AssertionError):
            return f"{self.spec.name}: {excinfo.value}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, f"{self.spec.name}::{self.name}"

    def setup(self) -> None:
        missing = self.spec.missing_requirements()
        if missing:
            pytest.skip(f"{self.spec.name} needs {', '.join(missing)}, which is not installed")


class FlagsItem(CaseItem):
    """The original script is flagged with one expected code (any severity)."""

    def __init__(self, *, code: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.code = code

    def runtest(self) -> None:
        from .testing import assert_flags

        run = _diagnosed(self.config, self.spec, "original", self.spec.original)
        assert_flags(run.require_report(), self.code, run="original")


class FlagsAnyItem(CaseItem):
    """The original script is flagged with at least one code of the `expect_any` group."""

    def runtest(self) -> None:
        from .testing import assert_flags_any

        run = _diagnosed(self.config, self.spec, "original", self.spec.original)
        assert_flags_any(run.require_report(), self.spec.expect_any, run="original")


class HealthyItem(CaseItem):
    """A fixed, extra or healthy-only script: observed, finished normally, no error-severity finding."""

    def __init__(self, *, label: str, script: Path, **kwargs: Any):
        super().__init__(**kwargs)
        self.label = label
        self.script = script

    def runtest(self) -> None:
        from .testing import assert_healthy, assert_observed

        run = _diagnosed(self.config, self.spec, self.label, self.script)
        report = run.require_report()
        assert_healthy(report, run=self.label)
        assert_observed(report, self.label)
