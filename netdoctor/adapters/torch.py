"""A ``torch.nn.Module`` and a callable that trains it: ``diagnose(model, lambda: train(model))``.

Global module and optimizer hooks (:mod:`netdoctor.frameworks.torch_hooks`) see any
loop and any optimizer while the call runs. Asked only when torch is imported.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any


def accepts(target: Any, X: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and callable(X) and isinstance(target, torch.nn.Module)


def run(target: Any, X: Any, y: Any, epochs: int | None, *, name: str, thresholds: Any = None,
        outputs_every: int | None = None, params_every: int | None = None, **options: Any):
    """`outputs_every`/`params_every` fix the schedule (1 = every step); default: automatic."""
    from ..frameworks.torch_hooks import TorchWatcher

    watcher = TorchWatcher(name, thresholds, None)
    watcher.session.fix_schedule(outputs_every, params_every)
    watcher.root = target
    status, error = "completed", None
    watcher.install()
    try:
        X()
    except Exception as exc:  # noqa: BLE001 - the trace so far is the report
        status, error = "crashed", "".join(traceback.format_exception(exc))
    finally:
        watcher.uninstall()
    return watcher.finish(status, error=error)
