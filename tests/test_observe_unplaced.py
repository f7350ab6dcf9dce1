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


# A class whose output layer goes through a library function (np.tanh, which no call event
# shows) and whose weights are updated in place before train() returns: at the return,
# no product of the current weights explains the output any more.
LIBRARY_OUTPUT = '''
import numpy as np

class Net:
    def __init__(self, hidden):
        self.w1 = np.random.normal(0.0, 1.0, (hidden, 1))
        self.w2 = np.random.normal(0.0, hidden ** -0.5, (1, hidden))
        self.act = lambda z: 1.0 / (1.0 + np.exp(-z))
        self.out = {out}

    def train(self, x, t):
        x = np.array([x], ndmin=2).T
        t = np.array([t], ndmin=2).T
        h = self.act(np.dot(self.w1, x))
        o = self.out(np.dot(self.w2, h))
        err = t - o
        grad_o = err * {slope}
        grad_h = np.dot(self.w2.T, grad_o) * h * (1.0 - h)
        self.w2 += 0.1 * np.dot(grad_o, h.T)
        self.w1 += 0.1 * np.dot(grad_h, x.T)

np.random.seed(3)
net = Net(6)
for step in range(1500):
    x = np.random.uniform(-1.5, 1.5)
    net.train(x, 0.8 * np.tanh(x))
'''


def test_a_layer_behind_a_library_function_is_found_on_its_lines(tmp_path):
    script = tmp_path / "library_output.py"
    script.write_text(LIBRARY_OUTPUT.format(out="np.tanh", slope="(1.0 - o ** 2)"))
    trace = run_script(str(script))
    assert _unplaced_notes(trace) == []
    (roles,) = trace.events_of("roles")
    assert roles.data["params"] == ["w1", "w2"] and roles.data["output"] == "o"
    assert [layer.activation for layer in trace.info.layers] == ["sigmoid", "tanh"]


def test_the_same_network_with_its_own_output_function_is_placed_too(tmp_path):
    # The same network with its output through the user's own function (a call event shows it).
    script = tmp_path / "user_output.py"
    script.write_text(LIBRARY_OUTPUT.format(out="lambda z: np.tanh(z)", slope="(1.0 - o ** 2)"))
    trace = run_script(str(script))
    (roles,) = trace.events_of("roles")
    assert roles.data["params"] == ["w1", "w2"] and _unplaced_notes(trace) == []
