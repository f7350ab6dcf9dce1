"""Decision-boundary material from code netdoctor did not write (2-D inputs only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from netdoctor.observe.script import run_script

CASE = Path(__file__).resolve().parents[1] / "case_studies" / "xor_stuck_at_half"
XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_CLASS = np.array([0, 1, 1, 0])


def _score_at(event, point):
    xx, yy, zz = event.data["xx"], event.data["yy"], event.data["zz"]
    i = np.argmin((xx - point[0]) ** 2 + (yy - point[1]) ** 2)
    return zz.reshape(-1)[i]


def test_the_fixed_scripts_final_boundary_separates_xor():
    trace = run_script(str(CASE / "fixed.py"))
    events = sorted(trace.events_of("boundary"), key=lambda e: e.step)
    assert len(events) >= 3 and events[-1].step == trace.info.steps
    last = events[-1]
    assert last.data["zz"].shape == last.data["xx"].shape
    # two output units: the score is class 1's output, the boundary its 0.5 level
    predicted = [int(_score_at(last, x) > last.data["level"]) for x in XOR_X]
    assert predicted == list(XOR_CLASS)


def test_the_stuck_scripts_boundary_stays_flat():
    trace = run_script(str(CASE / "original.py"))
    last = max(trace.events_of("boundary"), key=lambda e: e.step)
    zz = last.data["zz"]
    assert np.ptp(zz) < 0.05  # the same output everywhere: no boundary at all
