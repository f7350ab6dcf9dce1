"""When part of a network cannot be placed, the report says so instead of judging a part as the whole."""

from __future__ import annotations

from pathlib import Path

from netdoctor.observe.script import run_script

CASES = Path(__file__).resolve().parents[1] / "case_studies"


def _unplaced_notes(trace):
    return [n for n in trace.info.notes if "could not place" in n]


def test_a_layer_values_cannot_place_is_named_in_a_note():
    # Every weight starts at zero: all hidden units are equal, and values alone cannot
    # tell where the hidden layer ends. W2 changes in training but is left out.
    trace = run_script(str(CASES / "zero_init" / "original.py"))
    notes = _unplaced_notes(trace)
    assert notes and "W2" in notes[0] and "watch(" in notes[0]
    (roles,) = trace.events_of("roles")
    assert any("W2" in item for item in roles.data["ambiguous"])


def test_a_fully_placed_network_gets_no_such_note():
    for script in ("zero_init/fixed.py", "xor_stuck_at_half/original.py", "lr_too_low/original.py"):
        assert _unplaced_notes(run_script(str(CASES / script))) == [], script
