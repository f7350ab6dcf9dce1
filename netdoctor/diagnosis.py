"""One diagnosis: run a target under observation (and its fix beside it), judge the runs.

:func:`netdoctor.diagnose` adds the seed sweep on top (``seeds=N``); the sweep's
own runs come here, so this module knows nothing of sweeps.
"""

from __future__ import annotations

from typing import Any, Iterable

from .config import Thresholds
from .report import Report
from .trace import Trace


def _run_one(target: Any, X: Any, y: Any, epochs: int | None, name: str, options: dict) -> Trace:
    from .adapters import run

    return run(target, X, y, epochs, name=name, **options)


def diagnose_once(
    model: Any,
    X: Any = None,
    y: Any = None,
    epochs: int | None = None,
    *,
    compare: Any = None,
    compare_X: Any = None,
    compare_y: Any = None,
    names: tuple[str, str] = ("original", "fixed"),
    thresholds: Thresholds | None = None,
    select: Iterable[str] | None = None,
    **options: Any,
) -> Report:
    """:func:`netdoctor.diagnose` without ``seeds=``: one run of each target, one Report."""
    thresholds = thresholds or Thresholds()
    options = dict(options, thresholds=thresholds)
    traces = [_run_one(model, X, y, epochs, names[0], options)]
    if compare is not None:
        cx = X if compare_X is None else compare_X
        cy = y if compare_y is None else compare_y
        traces.append(_run_one(compare, cx, cy, epochs, names[1], options))
    return Report.from_traces(traces, thresholds=thresholds, select=select)
