"""NETDOCTOR_SEED and rounding-level perturbation (netdoctor.seeding)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from netdoctor.seeding import perturb_weights, seed_from_environment

# What a script that fixes its own seed draws, after the process was seeded.
DRAW = ("import numpy as np; from netdoctor.seeding import {how}; {call}; "
        "np.random.seed(0); print(np.random.rand())")


def _draw(how: str, call: str, env_seed: str | None) -> float:
    env = {k: v for k, v in os.environ.items() if k != "NETDOCTOR_SEED"}
    if env_seed is not None:
        env["NETDOCTOR_SEED"] = env_seed
    out = subprocess.run([sys.executable, "-c", DRAW.format(how=how, call=call)],
                         capture_output=True, text=True, env=env, check=True)
    return float(out.stdout)


def test_the_environment_seed_gives_the_sweeps_run_of_that_seed():
    from_env = _draw("seed_from_environment", "seed_from_environment()", "3")
    as_sweep = _draw("install_seed", "install_seed(3)", None)
    assert from_env == as_sweep
    assert _draw("seed_from_environment", "seed_from_environment()", "4") != from_env
    # unset: the script's own seed is left alone
    assert _draw("seed_from_environment", "seed_from_environment()", None) == np.random.RandomState(0).rand()


def test_a_bad_environment_seed_is_a_clear_error():
    for bad in ("abc", "-2", "1.5"):
        with pytest.raises(ValueError, match="NETDOCTOR_SEED"):
            seed_from_environment({"NETDOCTOR_SEED": bad})
    assert seed_from_environment({"NETDOCTOR_SEED": "  "}) is None


def test_perturbation_is_rounding_level_and_keeps_exact_zeros():
    weights = np.linspace(-1, 1, 50).reshape(5, 10)
    zeros = np.zeros(4)
    before = weights.copy()
    perturb_weights([weights, zeros], seed=1)
    change = np.abs(weights - before)[before != 0] / np.abs(before[before != 0])
    assert 0 < change.max() < 1e-10
    assert not zeros.any()
    again = before.copy()
    perturb_weights([again], seed=1)
    assert np.array_equal(again, weights)            # reproducible for a seed
