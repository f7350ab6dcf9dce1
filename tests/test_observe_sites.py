"""Pointing at the user's lines: a function's `return`, a parameter's creation."""

from __future__ import annotations

import linecache
import textwrap

from netdoctor.observe.sites import init_site, return_line

SOURCE = textwrap.dedent('''\
    import numpy as np

    class Net:
        def __init__(self):
            self.W1 = np.random.randn(2, 3)   # created here
            self.weights = {}
            for i in range(1, 3):
                self.weights[i] = np.random.rand(3, 3)
            self.params = []
            self.params.append(np.zeros(4))

        def act(self, z):
            if z is None:
                return None
            return 1 / (1 + np.exp(-z))

        @staticmethod
        def nothing():
            pass

    if W2 == 3:   # a comparison, not an assignment
        pass
    W2 = np.ones((3, 1))
''')


def _write(tmp_path):
    path = tmp_path / "net.py"
    path.write_text(SOURCE)
    linecache.checkcache(str(path))
    return str(path)


def _line_of(text: str) -> int:
    return 1 + next(i for i, line in enumerate(SOURCE.splitlines()) if text in line)


def test_return_line_is_the_first_return_with_a_value(tmp_path):
    path = _write(tmp_path)
    assert return_line(path, _line_of("def act")) == _line_of("return 1 / (1 + np.exp(-z))")
    assert return_line(path, _line_of("def nothing")) is None
    assert return_line(path, 1) is None            # not a def line
    assert return_line(str(tmp_path / "missing.py"), 3) is None


def test_init_site_finds_the_line_that_creates_each_style_of_parameter(tmp_path):
    path = _write(tmp_path)
    w1 = init_site("self.W1", [path])
    assert (w1.line, w1.function) == (_line_of("self.W1 = np.random.randn"), "Net.__init__")
    assert any("np.random.randn" in text for _, text in w1.source)
    assert init_site("weights[1]", [path]).line == _line_of("np.random.rand(3, 3)")
    assert init_site("params[0]", [path]).line == _line_of("np.zeros(4)")
    w2 = init_site("W2", [path])
    assert (w2.line, w2.function) == (_line_of("W2 = np.ones"), None)  # module level


def test_init_site_never_guesses(tmp_path):
    path = _write(tmp_path)
    assert init_site("b7", [path]) is None          # no such name
    assert init_site("", [path]) is None
    assert init_site("W1", [str(tmp_path / "missing.py")]) is None
