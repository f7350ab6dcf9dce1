"""Any object of the user's (NumPy code) plus the call that trains it (:mod:`netdoctor.observe.objects`)."""

from __future__ import annotations

from typing import Any


def accepts(target: Any, X: Any) -> bool:
    return callable(X)


def run(target: Any, X: Any, y: Any, epochs: int | None, *, name: str, **options: Any):
    from ..observe.objects import observe_call

    return observe_call(target, X, name=name, **options)
