"""The reference :class:`netdoctor.MLP`: probes are native (:mod:`netdoctor.reference`)."""

from __future__ import annotations

from typing import Any


def accepts(target: Any, X: Any) -> bool:
    from ..mlp import MLP

    return isinstance(target, MLP)


def run(target: Any, X: Any, y: Any, epochs: int | None, *, name: str, **options: Any):
    from ..reference import run_reference

    if X is None or y is None:
        raise TypeError("diagnose(MLP, X, y, epochs=...) needs the training data X and y")
    return run_reference(target, X, y, epochs=epochs or 100, name=name, **options)
