"""A ``keras.Model`` and the call that trains it: ``diagnose(model, lambda: model.fit(X, y))``.

Every ``Model.fit`` made while the call runs gets netdoctor's callback
(:mod:`netdoctor.frameworks.keras_callback`). Asked only when keras is imported.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any


def accepts(target: Any, X: Any) -> bool:
    keras = sys.modules.get("keras")
    return keras is not None and callable(X) and isinstance(target, keras.Model)


def run(target: Any, X: Any, y: Any, epochs: int | None, *, name: str, thresholds: Any = None,
        outputs_every: int | None = None, params_every: int | None = None, **options: Any):
    """`outputs_every`/`params_every` fix the schedule (1 = every step); default: automatic."""
    from ..frameworks.keras_callback import KerasWatcher

    watcher = KerasWatcher(name, thresholds, None)
    watcher.configure = lambda session: session.fix_schedule(outputs_every, params_every)
    return observe(watcher, X, watcher_run=lambda: watcher.run_for(target))


def observe(watcher: Any, train: Any, watcher_run: Any):
    """Run `train()` with `watcher` installed; the run's Trace (a crash is a result)."""
    status, error = "completed", None
    watcher.install()
    try:
        train()
    except Exception as exc:  # noqa: BLE001 - the trace so far is the report
        status, error = "crashed", "".join(traceback.format_exception(exc))
    finally:
        watcher.uninstall()
    run = watcher_run()
    run.finish()
    return run.session.finish(status, error=error)
