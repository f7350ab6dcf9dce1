"""Scripts of single-output models end to end; naming roles from the command line;
and the verdict of a run netdoctor could see only in part."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

SCALAR_FIT = """
import numpy as np
X = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
Y = 2.0 * X
w = 0.0
for epoch in range(40):
    y_pred = w * X
    loss = ((y_pred - Y) ** 2).mean()
    dw = {gradient}
    w -= 0.01 * dw
print("final_w", w)
"""
MEAN_GRADIENT = "(2 * X * (y_pred - Y)).mean()"
SUMMED_GRADIENT = "np.dot(2 * X, y_pred - Y)"        # the sum over samples: 6x the mean loss's


def _diagnose(script, *extra):
    return subprocess.run([sys.executable, "-m", "netdoctor.cli", "diagnose", str(script), "-q",
                           "--format", "json", *extra],
                          capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("gradient, flagged", [(MEAN_GRADIENT, False), (SUMMED_GRADIENT, True)])
def test_a_scalar_weight_is_observed_and_judged_against_the_codes_own_loss(tmp_path, gradient, flagged):
    done = _diagnose(_write(tmp_path, "fit.py", SCALAR_FIT.format(gradient=gradient)))
    report = json.loads(done.stdout)
    run = report["runs"]["original"]
    assert run["steps"] >= 20 and run["loss"] == "mse"
    assert run["coverage"]["loss"] is None and run["coverage"]["outputs"] is None
    codes = {f["code"] for f in report["findings"] if f["severity"] in ("warning", "error")}
    assert ("ND204" in codes) is flagged
    assert not any(f["severity"] == "error" for f in report["findings"])


INLINE_NET = """
import numpy as np
rng = np.random.default_rng(0)
X = rng.normal(size=(64, 2))
y = (X[:, :1] * X[:, 1:] > 0).astype(float)
P = [rng.normal(size=(2, 8)) * 0.5, np.zeros(8), rng.normal(size=(8, 1)) * 0.5, np.zeros(1)]
for step in range(300):
    h = np.tanh(X @ P[0] + P[1])
    out = 1 / (1 + np.exp(-(h @ P[2] + P[3])))
    d2 = (out - y) / len(X)
    d1 = (d2 @ P[2].T) * (1 - h ** 2)
    P[2] -= 0.5 * h.T @ d2; P[3] -= 0.5 * d2.sum(0)
    P[0] -= 0.5 * X.T @ d1; P[1] -= 0.5 * d1.sum(0)
print("final_out_std", out.std())
"""


def test_roles_named_on_the_command_line_are_used(tmp_path):
    script = _write(tmp_path, "inline.py", INLINE_NET)
    done = _diagnose(script, "--params", "P[0],P[1],P[2],P[3]", "--net-output", "out", "--targets", "y")
    report = json.loads(done.stdout)
    run = report["runs"]["original"]
    assert run["steps"] > 0 and run["layers"] and run["layers"][-1]["fan_out"] == 1
    roles = subprocess.run([sys.executable, "-m", "netdoctor.cli", "diagnose", str(script), "--net-output",
                            "no_such_array", "-q"], capture_output=True, text=True, timeout=180,
                           stdin=subprocess.DEVNULL)
    # An output that names nothing in the code: no chain may end there, so nothing is observed.
    assert roles.returncode == 2 and "no training step was observed" in roles.stderr


@pytest.mark.parametrize("bad", [["--params", ","], ["--net-output", "a,b"], ["--targets", " "]])
def test_malformed_role_names_are_a_usage_error(tmp_path, bad):
    script = _write(tmp_path, "inline.py", INLINE_NET)
    done = subprocess.run([sys.executable, "-m", "netdoctor.cli", "diagnose", str(script), *bad],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.startswith("netdoctor: ") and "Traceback" not in done.stderr


def test_the_nothing_observed_note_gives_a_command_built_from_what_changed(tmp_path):
    # Updates that no forward pass explains: parameters change, no network can be placed.
    script = _write(tmp_path, "opaque.py", """
        import numpy as np
        weights = np.ones((3, 3))
        for i in range(400):
            weights = weights * 0.999 + 0.001
        print("done")
    """)
    done = subprocess.run([sys.executable, "-m", "netdoctor.cli", "diagnose", str(script), "-q"],
                          capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    assert "netdoctor diagnose opaque.py --params weights" in " ".join(done.stdout.split())


PARTLY_SEEN = """
import numpy as np
rng = np.random.default_rng(1)
def batches():
    for _ in range(200):
        x = rng.normal(size=(16, 3))
        yield x, (x.sum(1, keepdims=True) > 0).astype(float)
W = rng.normal(size=(3, 1)) * 0.7   # Glorot scale for 3 -> 1
b = np.zeros(1)
for x, t in batches():
    p = 1 / (1 + np.exp(-(x @ W + b)))
    W -= 0.5 * x.T @ (p - t) / len(x)
    b -= 0.5 * (p - t).mean(0)
print("final_W", W.ravel())
"""


def test_a_run_whose_data_cannot_be_located_is_partly_observed_not_healthy(tmp_path):
    # Fresh data every step, made by a generator: no data set to find, so no probe batch.
    done = _diagnose(_write(tmp_path, "stream.py", PARTLY_SEEN))
    report = json.loads(done.stdout)
    run = report["runs"]["original"]
    assert run["steps"] > 0
    if run["state"] == "healthy":   # the outputs were seen after all: then everything was
        assert all(run["coverage"][role] is None for role in ("outputs", "loss", "updates"))
        assert done.returncode == 0
    else:
        assert run["state"] == "partly observed" and not report["ok"]
        assert done.returncode == 3 and "partly observed" in done.stderr
        assert run["not_judged"]
