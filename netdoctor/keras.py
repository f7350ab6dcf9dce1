"""Keras, wired in by hand: ``cb = netdoctor.keras.Callback(X, y)``; ``model.fit(X, y, callbacks=[cb])``.

Usually not needed: ``netdoctor diagnose train.py`` and ``netdoctor.diagnose(model,
lambda: model.fit(...))`` add the callback to every ``fit`` themselves. A callback
cannot see the data ``fit`` was given, so pass ``X, y`` for the probe batch and the
data checks (without them the report judges loss, weights and gradients only).
``cb.report`` judges the run. This module's name is ``netdoctor.keras``; it imports the
real ``keras`` (absolute imports) only when used.
"""

from __future__ import annotations

from typing import Any


def Callback(X: Any = None, y: Any = None, *, batch_size: int | None = None, name: str = "original",
             thresholds: Any = None):
    """netdoctor's Keras callback (a ``keras.callbacks.Callback``); ``.report`` after ``fit``."""
    from netdoctor.frameworks.keras_callback import callback_class

    callback = callback_class()(None, X, y, batch_size)
    callback.run_name, callback.thresholds = name, thresholds
    return callback
