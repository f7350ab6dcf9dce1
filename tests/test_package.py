"""The package's promises about itself: a cheap import and a fast, helpful command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

import netdoctor
from netdoctor.cli import main


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_import_does_not_pull_in_matplotlib_or_pandas():
    result = _python(
        "import sys, netdoctor\n"
        "heavy = [m for m in ('matplotlib', 'pandas') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    assert result.returncode == 0, result.stderr


def test_help_imports_no_subcommand_machinery():
    # `netdoctor --help` must answer without importing numpy, pandas or matplotlib.
    result = _python(
        "import sys\n"
        "from netdoctor.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('numpy', 'matplotlib', 'pandas') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    assert result.returncode == 0, result.stderr
    assert "diagnose" in result.stdout


def test_public_names_resolve_lazily():
    for name in netdoctor.__all__:
        assert getattr(netdoctor, name) is not None
    with pytest.raises(AttributeError):
        netdoctor.not_a_thing  # noqa: B018


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "diagnose" in capsys.readouterr().out
