"""The notebook way in gives the same diagnosis as the command line."""

from __future__ import annotations

import contextlib
import importlib.util
import io
from pathlib import Path

import numpy as np

import netdoctor as nd
from netdoctor.observe.script import run_script
from netdoctor.report import Report
from netdoctor.types import Severity

SEED = Path(__file__).resolve().parents[1] / "case_studies" / "xor_stuck_at_half" / "original.py"


def _seed_class(tmp_path):
    """The question's class, defined in a module the way a notebook cell would define it."""
    source = SEED.read_text().split("# netdoctor edit: the next lines")[0]
    path = tmp_path / "seed_cell.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("seed_cell", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_diagnose_on_the_seed_object_matches_the_cli(tmp_path):
    module = _seed_class(tmp_path)
    module.rnd.seed(0)
    data = (np.array([[0, 0], [0, 1], [1, 0], [1, 1]]), np.array([0, 1, 1, 0]))
    with contextlib.redirect_stdout(io.StringIO()):
        b = module.Backpropogation((2, 2), data, 2)
        report = nd.diagnose(b, lambda: b.train(0.1, 2000))
    cli = Report.from_traces([run_script(str(SEED))])
    errors = report.codes(at_least=Severity.ERROR)
    assert {"ND101", "ND303"} <= errors
    assert errors == cli.codes(at_least=Severity.ERROR)
    html = report._repr_html_()
    assert "ND303" in html and "activationFunction" in html  # the notebook's rich display
    assert "ND303" in str(report)
