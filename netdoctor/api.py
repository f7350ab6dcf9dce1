"""`diagnose()` and `watch()`: the notebook entry points.

One function, three kinds of target, one engine behind them:

* a reference :class:`netdoctor.MLP` with data: ``diagnose(model, X, y, epochs=500)``
* a script path: ``diagnose("train.py")`` (as ``netdoctor diagnose train.py``)
* any object of the user's plus the call that trains it:
  ``diagnose(net, lambda: net.train(0.1, 2000))``

``compare=`` takes a second target of the same kind (the corrected version); both
runs land in one Report (``report.diff()`` lists what differs).
"""

from __future__ import annotations

import os
from typing import Any, Iterable

from .config import Thresholds
from .report import Report
from .trace import Trace


def _is_script(target: Any) -> bool:
    return isinstance(target, (str, os.PathLike))


def _run_one(target: Any, X: Any, y: Any, epochs: int | None, name: str, options: dict) -> Trace:
    from .mlp import MLP

    if isinstance(target, MLP):
        from .reference import run_reference

        if X is None or y is None:
            raise TypeError("diagnose(MLP, X, y, epochs=...) needs the training data X and y")
        return run_reference(target, X, y, epochs=epochs or 100, name=name, **options)
    if _is_script(target):
        from .observe.script import run_script

        return run_script(os.fspath(target), name=name, **options)
    if callable(X):
        from .observe.objects import observe_call

        return observe_call(target, X, name=name, **options)
    raise TypeError(
        "diagnose() takes a netdoctor.MLP with X and y, a script path, "
        "or your model object and a callable that trains it: diagnose(net, lambda: net.train(...))"
    )


def diagnose(
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
    seeds: int | None = None,
    **options: Any,
) -> Report:
    """Run `model` under observation and judge it; optionally beside `compare`.

    For a :class:`netdoctor.MLP`, `X` and `y` are the training data and `epochs`
    the epochs to train. For your own object, `X` is a callable that trains it.
    For a script, `X`/`y` are unused. Extra keyword options go to the observer
    (e.g. ``stride=``, ``timeout=``, ``max_steps=``).

    ``seeds=N`` runs a script or MLP N times with different random seeds and
    returns a :class:`netdoctor.sweep.SweepResult` (the convergence rate) instead;
    ``executor=`` then says where the runs are made (e.g. a Dask cluster's
    ``client.get_executor()``; see :func:`netdoctor.sweep.sweep`).
    """
    if seeds is not None:
        if compare is not None:
            raise TypeError("seeds= sweeps one target; sweep the original and the fix separately")
        from .sweep import sweep

        return sweep(model, seeds, X=X, y=y, epochs=epochs, thresholds=thresholds, select=select, **options)
    thresholds = thresholds or Thresholds()
    options = dict(options, thresholds=thresholds)
    traces = [_run_one(model, X, y, epochs, names[0], options)]
    if compare is not None:
        cx = X if compare_X is None else compare_X
        cy = y if compare_y is None else compare_y
        traces.append(_run_one(compare, cx, cy, epochs, names[1], options))
    return Report.from_traces(traces, thresholds=thresholds, select=select)


def watch(model: Any, **roles: Any):
    """Observe your own model object while you train it, in a ``with`` block.

        with netdoctor.watch(net) as w:
            net.train(0.1, 2000)
        w.report

    Roles the observer cannot infer can be named: ``watch(net, params=[...], output=..., targets=...)``.
    """
    from .observe.objects import Watch

    return Watch(model, **roles)

