"""``with netdoctor.watch(model): ...`` for a torch module or a Keras model.

The watcher is installed for the block only; ``w.report`` judges what it saw.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any


def framework_of(model: Any) -> str | None:
    """'keras', 'torch' or None; asks only frameworks that are already imported."""
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(model, keras.Model):
        return "keras"
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        return "torch"
    return None


class FrameworkWatch:
    """Observe a framework model while the ``with`` block trains it."""

    def __init__(self, model: Any, framework: str, *, name: str = "original", thresholds: Any = None,
                 optimizer: Any = None):
        self.model = model
        self.framework = framework
        self.name = name
        self.thresholds = thresholds
        self.optimizer = optimizer
        self.watcher: Any = None
        self._trace = None
        self._report = None

    def __enter__(self) -> "FrameworkWatch":
        if self.framework == "keras":
            from .keras_callback import KerasWatcher

            self.watcher = KerasWatcher(self.name, self.thresholds, None)
        else:
            import weakref

            from .torch_hooks import TorchWatcher

            self.watcher = TorchWatcher(self.name, self.thresholds, None)
            self.watcher.root = self.model
            if self.optimizer is not None:
                self.watcher.optimizers.append(weakref.ref(self.optimizer))
        self.watcher.install()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.watcher.uninstall()
        status, error = "completed", None
        if exc is not None:
            status, error = "crashed", "".join(traceback.format_exception(exc_type, exc, tb))
        if self.framework == "keras":
            run = self.watcher.run_for(self.model)
            run.finish()
            self._trace = run.session.finish(status, error=error)
        else:
            self._trace = self.watcher.finish(status, error=error)
        return False  # the user's exception, if any, is theirs

    @property
    def trace(self):
        if self._trace is None:
            raise RuntimeError("the watch has not ended yet: read .report after the with block")
        return self._trace

    @property
    def report(self):
        if self._report is None:
            from ..report import Report

            self._report = Report.from_traces([self.trace], thresholds=self.thresholds)
        return self._report

    def _repr_html_(self) -> str:
        return self.report._repr_html_()
