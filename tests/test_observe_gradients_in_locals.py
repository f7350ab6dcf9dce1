"""Gradients kept in the locals of the function that updates are read at its return.

``backward()`` computes ``dW2 = self.a1.T @ delta2 / m`` and ends with ``self.W2 -= lr * dW2``:
by the next forward pass, where a step is closed, its locals are gone. Read at its return,
the arrays are the gradients the code used, so the gradient check compares them with the
network's own loss, and does not have to infer them from the updates (which an adaptive
optimizer, or a wrong but positive derivative, bends the same way).

The case study derivative_of_activation is such code: its original takes the sigmoid's
slope at the activation instead of the pre-activation, its fix at the pre-activation.
"""

from __future__ import annotations

from pathlib import Path

from netdoctor.observe.script import run_script
from netdoctor.rules import run_rules
from netdoctor.types import Severity

CASE = Path(__file__).resolve().parents[1] / "case_studies" / "derivative_of_activation"


def _run(script: str):
    trace = run_script(str(CASE / script))
    errors = {f.code for f in run_rules(trace).findings if f.severity >= Severity.ERROR}
    # (Step 2's check is made while learning, before the arrays' places were known.)
    later = [e for e in trace.events_of("gradcheck") if e.step and e.step > 2]
    return later, errors


def test_the_gradients_of_a_backward_method_are_read_at_its_return():
    later, errors = _run("fixed.py")
    assert later and all(e.data["claimed"] == "gradients" for e in later)
    assert all(row["rel_err"] < 1e-6 for e in later for row in e.data["params"])
    assert "ND203" not in errors, errors


def test_a_wrong_slope_shows_in_the_gradients_read_there():
    later, errors = _run("original.py")
    assert later and all(e.data["claimed"] == "gradients" for e in later)
    assert "ND203" in errors
