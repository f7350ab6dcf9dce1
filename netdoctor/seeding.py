"""Seeding a script's random number generators for run ``s`` of a sweep.

Run ``s`` starts numpy's global RNG and Python's ``random`` module from ``s``, and
``np.random.default_rng()`` without a seed returns generators derived from ``s``.
A script that fixes its own seed would give the same run every time, so its calls
``np.random.seed(k)``, ``random.seed(k)`` and ``np.random.default_rng(k)`` are given
a seed derived from both ``(s, k)``: runs still differ across the sweep, and each
run is reproducible. The same holds for ``torch.manual_seed(k)`` and
``keras.utils.set_random_seed(k)`` once the script imports torch or Keras (and torch
starts from ``s`` when the script does not seed it). Not varied:
``RandomState(k)``/``Generator(PCG64(k))`` objects the script builds itself, and other
libraries' generators.

The patches are process-wide: install them in the process that runs the script.
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np

# Tags keep the derived seeds of different kinds of call apart.
_TAG_FRESH, _TAG_INT, _TAG_SEQUENCE = 0, 1, 2


def _derived_entropy(sweep_seed: int, user_seed: Any, fresh_count: int) -> list[int] | None:
    """Entropy for a seed call the script made, or None to leave the call alone."""
    if user_seed is None:
        return [sweep_seed, _TAG_FRESH, fresh_count]
    if isinstance(user_seed, (bool, np.bool_)):
        return None
    if isinstance(user_seed, (int, np.integer)):
        return [sweep_seed, _TAG_INT, int(user_seed)] if user_seed >= 0 else None
    if isinstance(user_seed, (list, tuple, np.ndarray)):
        values = np.asarray(user_seed)
        if values.dtype.kind in "iu" and values.ndim == 1 and (values >= 0).all():
            return [sweep_seed, _TAG_SEQUENCE, *map(int, values)]
    return None  # strings, floats, generators: passed through unchanged


def _as_uint32(entropy: list[int]) -> int:
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def install_seed(seed: int) -> Callable[[], None]:
    """Seed this process's RNGs for run `seed` of a sweep; return a function that undoes it.

    Meant for the process that executes the user's script, right before it runs.
    """
    import numpy.random as npr

    seed = int(seed)
    original = {
        "np_seed": npr.seed,
        "mtrand_seed": npr.mtrand.seed,
        "default_rng": npr.default_rng,
        "py_seed": random.seed,
    }
    fresh = {"np": 0, "rng": 0, "py": 0}

    def np_seed(user_seed=None):
        entropy = _derived_entropy(seed, user_seed, fresh["np"])
        if user_seed is None:
            fresh["np"] += 1
        return original["np_seed"](user_seed if entropy is None else _as_uint32(entropy))

    def default_rng(user_seed=None):
        entropy = _derived_entropy(seed, user_seed, fresh["rng"])
        if user_seed is None:
            fresh["rng"] += 1
        if entropy is None:
            return original["default_rng"](user_seed)
        return original["default_rng"](np.random.SeedSequence(entropy))

    def py_seed(user_seed=None, version=2):
        entropy = _derived_entropy(seed, user_seed, fresh["py"])
        if user_seed is None:
            fresh["py"] += 1
        return original["py_seed"](user_seed if entropy is None else _as_uint32(entropy), version)

    original["np_seed"](_as_uint32([seed]))
    original["py_seed"](_as_uint32([seed]))
    npr.seed = np_seed
    npr.mtrand.seed = np_seed
    npr.default_rng = default_rng
    random.seed = py_seed

    undo_frameworks = _seed_frameworks(seed)

    def undo() -> None:
        npr.seed = original["np_seed"]
        npr.mtrand.seed = original["mtrand_seed"]
        npr.default_rng = original["default_rng"]
        random.seed = original["py_seed"]
        undo_frameworks()

    return undo


# Tags for the frameworks' seed calls (kept apart from numpy's and from each other).
_TAG_TORCH, _TAG_KERAS = 3, 4


def _seed_frameworks(seed: int) -> Callable[[], None]:
    """The same for torch and Keras, once (and only if) the script imports them.

    ``torch.manual_seed(k)`` and ``keras.utils.set_random_seed(k)`` get a seed derived
    from ``(seed, k)``; a script that seeds neither still starts torch's generator from
    `seed` (torch's default seed is the same in every process).
    """
    from .frameworks.lazy import forget, on_import

    restore: list[Callable[[], None]] = []

    def patch(owner: Any, attr: str, tag: int) -> None:
        original = getattr(owner, attr, None)
        if original is None or getattr(original, "_netdoctor_seeded", False):
            return

        def seeded(user_seed=None, *args, **kwargs):
            entropy = _derived_entropy(seed, user_seed, 0)
            value = user_seed if entropy is None else _as_uint32([tag, *entropy])
            return original(value, *args, **kwargs)

        seeded._netdoctor_seeded = True
        setattr(owner, attr, seeded)
        restore.append(lambda: setattr(owner, attr, original))

    def torch_imported(torch: Any) -> None:
        original = torch.manual_seed
        patch(torch, "manual_seed", _TAG_TORCH)
        original(_as_uint32([seed, _TAG_TORCH, _TAG_FRESH]))

    def keras_imported(keras: Any) -> None:
        import sys

        for name in ("keras.utils", "keras.src.utils", "keras.src.utils.rng_utils"):
            module = sys.modules.get(name)
            if module is not None:
                patch(module, "set_random_seed", _TAG_KERAS)

    on_import("torch", torch_imported)
    on_import("keras", keras_imported)

    def undo() -> None:
        forget("torch", torch_imported)
        forget("keras", keras_imported)
        while restore:
            restore.pop()()

    return undo


@contextmanager
def seeded_rngs(seed: int) -> Iterator[None]:
    """``with seeded_rngs(3): ...`` runs the block as run 3 of a sweep (see module doc)."""
    undo = install_seed(seed)
    try:
        yield
    finally:
        undo()


# --- a seed from the environment, and rounding-level noise ------------------------------------

SEED_VARIABLE = "NETDOCTOR_SEED"


def seed_from_environment(environ: Any = None) -> int | None:
    """Seed this process as run ``$NETDOCTOR_SEED`` of a sweep, when that variable is set.

    For the process that runs a user's script: ``NETDOCTOR_SEED=3 netdoctor diagnose
    train.py`` gives the run that a seed sweep would give as run 3 (see
    :func:`install_seed`), so a verdict can be checked across seeds without editing the
    script. Returns the seed used, or None when the variable is unset or empty.
    A value that is not a non-negative integer raises ValueError with a one-line message.
    """
    import os

    raw = (os.environ if environ is None else environ).get(SEED_VARIABLE, "")
    if not str(raw).strip():
        return None
    try:
        seed = int(str(raw).strip())
    except ValueError:
        raise ValueError(f"{SEED_VARIABLE}={raw!r} is not an integer seed") from None
    if seed < 0:
        raise ValueError(f"{SEED_VARIABLE}={raw!r} must be a non-negative integer")
    install_seed(seed)
    return seed


def perturb_weights(arrays: Any, seed: int, relative: float = 1e-12) -> None:
    """Multiply every entry of the float arrays in place by ``1 + relative * N(0, 1)``.

    Rounding-level noise: what a different BLAS, CPU or summation order does to initial
    weights. A verdict that changes under it is a knife-edge. Multiplicative, so exact
    zeros (and so deliberately symmetric or zero initialisations) stay what they are.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7919]))
    for array in arrays:
        if isinstance(array, np.ndarray) and array.dtype.kind == "f" and array.size:
            array *= 1.0 + relative * rng.standard_normal(array.shape)
