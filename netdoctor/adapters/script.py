"""A training script, run unmodified in a child process (:mod:`netdoctor.observe.script`).

The child observes NumPy code with its profile hook, and installs the torch/Keras
watchers only if the script imports one of them (:mod:`netdoctor.frameworks.lazy`).
"""

from __future__ import annotations

import os
from typing import Any


def accepts(target: Any, X: Any) -> bool:
    return isinstance(target, (str, os.PathLike))


def run(target: Any, X: Any, y: Any, epochs: int | None, *, name: str, **options: Any):
    from ..observe.script import run_script

    return run_script(os.fspath(target), name=name, **options)
