"""netdoctor: tells you why your neural network is stuck, and where in your code.

    >>> import netdoctor as nd
    >>> model = nd.MLP([2, 4, 1], activation="tanh", output="sigmoid", loss="bce")
    >>> report = nd.diagnose(model, X, y, epochs=500)
    >>> print(report)

The public names are imported lazily, so ``import netdoctor`` stays cheap and never
imports matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._version import __version__

_PUBLIC = {
    "diagnose": "netdoctor.api",
    "watch": "netdoctor.api",
    "MLP": "netdoctor.mlp",
    "Trace": "netdoctor.trace",
    "Report": "netdoctor.report",
    "Finding": "netdoctor.types",
    "Location": "netdoctor.types",
    "Severity": "netdoctor.types",
    "Thresholds": "netdoctor.config",
    "faults": "netdoctor.faults",
}

__all__ = ["__version__", *_PUBLIC]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from . import faults
    from .api import diagnose, watch
    from .config import Thresholds
    from .mlp import MLP
    from .report import Report
    from .trace import Trace
    from .types import Finding, Location, Severity


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'netdoctor' has no attribute {name!r}")
    value = importlib.import_module(module)
    if name != "faults":
        value = getattr(value, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
