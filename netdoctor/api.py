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

from typing import Any

from .diagnosis import diagnose_once
from .report import Report


def diagnose(model: Any, X: Any = None, y: Any = None, epochs: int | None = None, *,
             compare: Any = None, seeds: int | None = None, **options: Any) -> Report:
    """Run `model` under observation and judge it; optionally beside `compare`.

    For a :class:`netdoctor.MLP`, `X` and `y` are the training data and `epochs`
    the epochs to train. For your own object, `X` is a callable that trains it.
    For a script, `X`/`y` are unused. Extra keyword options go to the observer
    (e.g. ``stride=``, ``timeout=``, ``max_steps=``); ``thresholds=`` and ``select=``
    (rule codes or families) go to the judging, and with ``compare=`` the second
    target may have its own ``compare_X=``/``compare_y=`` and the two runs
    ``names=`` (default ``("original", "fixed")``); see
    :func:`netdoctor.diagnosis.diagnose_once`.

    ``seeds=N`` runs a script or MLP N times with different random seeds and
    returns a :class:`netdoctor.sweep.SweepResult` (the convergence rate) instead;
    ``executor=`` then says where the runs are made (e.g. a Dask cluster's
    ``client.get_executor()``; see :func:`netdoctor.sweep.sweep`).
    """
    if seeds is not None:
        if compare is not None:
            raise TypeError("seeds= sweeps one target; sweep the original and the fix separately")
        from .sweep import sweep

        for beside_a_fix in ("compare_X", "compare_y", "names"):   # meaningless for one target
            options.pop(beside_a_fix, None)
        return sweep(model, seeds, X=X, y=y, epochs=epochs, **options)
    return diagnose_once(model, X, y, epochs, compare=compare, **options)


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

