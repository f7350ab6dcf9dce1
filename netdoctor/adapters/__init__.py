"""One door per kind of model: each adapter turns "a model and its training" into a Trace.

    trace = run(target, X, y, epochs, name="original", **options)

The adapters, tried in this order (the first that accepts the target runs it):

==============  ==========================================================  ==========================
adapter         target                                                      training
==============  ==========================================================  ==========================
``reference``   a :class:`netdoctor.MLP`                                    ``X, y, epochs``
``script``      a path to a training script (run unmodified, in a child)    the script itself
``keras``       a ``keras.Model``                                           a callable: ``lambda: model.fit(...)``
``torch``       a ``torch.nn.Module``                                       a callable that trains it
``numpy``       any other object of the user's                              a callable that trains it
==============  ==========================================================  ==========================

Rules, reports and sweeps only ever see the Trace; none of them knows which adapter
ran. ``netdoctor.api.diagnose`` and ``netdoctor diagnose`` both come through here.
A framework adapter is asked only when that framework is already imported, so
``import netdoctor`` (and a NumPy user) never imports torch or keras.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..trace import Trace

ADAPTERS = ("reference", "script", "keras", "torch", "numpy")

USAGE = ("diagnose() takes a netdoctor.MLP with X and y, a script path, a keras.Model or "
         "torch.nn.Module with a callable that trains it, or your model object and a callable "
         "that trains it: diagnose(net, lambda: net.train(...))")


def adapter_for(target: Any, X: Any = None):
    """The adapter module that accepts `target` (with training `X`), or None."""
    for name in ADAPTERS:
        module = importlib.import_module(f"{__name__}.{name}")
        if module.accepts(target, X):
            return module
    return None


def run(target: Any, X: Any = None, y: Any = None, epochs: int | None = None, *,
        name: str = "original", **options: Any) -> Trace:
    """Observe one training run of `target` and return its Trace."""
    module = adapter_for(target, X)
    if module is None:
        raise TypeError(USAGE)
    return module.run(target, X, y, epochs, name=name, **options)
