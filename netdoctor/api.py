"""`diagnose()` and `watch()`: the notebook entry points.

One function, one engine behind it; :mod:`netdoctor.adapters` picks the adapter:

* a reference :class:`netdoctor.MLP` with data: ``diagnose(model, X, y, epochs=500)``
* a script path: ``diagnose("train.py")`` (as ``netdoctor diagnose train.py``)
* a Keras model or torch module plus the call that trains it:
  ``diagnose(model, lambda: model.fit(X, y, epochs=100))``
* any object of the user's plus the call that trains it:
  ``diagnose(net, lambda: net.train(0.1, 2000))``

``compare=`` takes a second target of the same kind (the corrected version); both
runs land in one Report (``report.diff()`` lists what differs).
"""

from __future__ import annotations

from typing import Any, Iterable

from .config import Thresholds
from .report import Report
from .trace import Trace


def _run_one(target: Any, X: Any, y: Any, epochs: int | None, name: str, options: dict) -> Trace:
    from .adapters import run

    return run(target, X, y, epochs, name=name, **options)


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
    A Keras model or torch module is watched through the framework's own hooks.
    """
    from .frameworks.watch import FrameworkWatch, framework_of

    framework = framework_of(model)
    if framework is not None:
        return FrameworkWatch(model, framework, **roles)
    from .observe.objects import Watch

    return Watch(model, **roles)

