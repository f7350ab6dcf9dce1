"""Install the framework watchers in a script's process only if the script imports one.

A ``sys.meta_path`` finder watches for the top-level imports ``torch`` and ``keras``;
once such a module has finished executing, the callbacks registered for it run (the
watcher is installed, the seeding of a sweep reaches the framework's generator). A
NumPy script never imports either, and pays nothing but one finder lookup per import.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import traceback
from typing import Any, Callable

_CALLBACKS: dict[str, list[Callable[[Any], None]]] = {}
_FINDER: "_PostImportFinder | None" = None


def on_import(name: str, callback: Callable[[Any], None]) -> None:
    """Call ``callback(module)`` once top-level module `name` is imported (now, if it is)."""
    module = sys.modules.get(name)
    if module is not None and getattr(getattr(module, "__spec__", None), "_initializing", False) is False:
        callback(module)
        return
    _CALLBACKS.setdefault(name, []).append(callback)
    _install_finder()


def forget(name: str, callback: Callable[[Any], None]) -> None:
    callbacks = _CALLBACKS.get(name, [])
    if callback in callbacks:
        callbacks.remove(callback)


class _Loader(importlib.abc.Loader):
    def __init__(self, loader: Any, name: str):
        self.loader = loader
        self.name = name

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        for callback in _CALLBACKS.pop(self.name, []):
            callback(module)

    def __getattr__(self, attr):  # get_resource_reader, is_package, ... from the real loader
        return getattr(self.loader, attr)


class _PostImportFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _CALLBACKS or "." in fullname:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _Loader(spec.loader, fullname)
        return spec


def _install_finder() -> None:
    global _FINDER
    if _FINDER is None:
        _FINDER = _PostImportFinder()
        sys.meta_path.insert(0, _FINDER)


class FrameworkHooks:
    """The watchers of one script run: installed on import, summarised at the end."""

    def __init__(self, name: str, thresholds: Any, user_files: Any, module_globals: dict,
                 *, max_steps: int | None = None, stop: Callable[[str], BaseException] | None = None,
                 on_first_step: Callable[[], None] | None = None):
        self.name = name
        self.thresholds = thresholds
        self.user_files = user_files
        self.module_globals = module_globals
        self.max_steps = max_steps
        self.stop = stop
        self.on_first_step = on_first_step
        self.torch = None
        self.keras = None
        self.notes: list[str] = []

    def install(self) -> None:
        on_import("torch", self._torch_imported)
        on_import("keras", self._keras_imported)

    def _limits(self, session) -> None:
        session.max_steps = self.max_steps
        session.stop = self.stop
        session.on_first_step = self._first_step

    def _first_step(self) -> None:
        callback, self.on_first_step = self.on_first_step, None
        if callback is not None:
            callback()

    def _torch_imported(self, module) -> None:
        try:
            from .torch_hooks import TorchWatcher

            watcher = TorchWatcher(self.name, self.thresholds, self.user_files, self.module_globals)
            self._limits(watcher.session)
            watcher.install()
            self.torch = watcher
        except Exception as exc:  # noqa: BLE001 - the script still runs, unobserved by us
            self.notes.append(f"netdoctor could not observe torch {getattr(module, '__version__', '')}: "
                              f"{type(exc).__name__}: {exc}")

    def _keras_imported(self, module) -> None:
        try:
            from .keras_callback import KerasWatcher

            watcher = KerasWatcher(self.name, self.thresholds, self.user_files)
            watcher.configure = self._limits
            watcher.install()
            self.keras = watcher
            if self.torch is not None:
                self.torch.stop_tape()   # Keras trains here: no hand-written torch loop to find
        except Exception as exc:  # noqa: BLE001
            self.notes.append(f"netdoctor could not observe keras {getattr(module, '__version__', '')}: "
                              f"{type(exc).__name__}: {exc}")

    def uninstall(self) -> None:
        forget("torch", self._torch_imported)
        forget("keras", self._keras_imported)
        for watcher in (self.keras, self.torch):
            if watcher is not None:
                try:
                    watcher.uninstall()
                except Exception:  # noqa: BLE001
                    pass

    @property
    def steps(self) -> int:
        return max([w.steps for w in (self.torch, self.keras) if w is not None] or [0])

    @property
    def active(self) -> bool:
        keras_run = self.keras.best_run() if self.keras is not None else None
        return bool((keras_run is not None and keras_run.step) or
                    (self.torch is not None and (self.torch.step or self.torch.backward_calls)))

    def finish(self, status: str, error: str | None, stop_reason: str | None):
        """The framework Trace, or None when no framework training was seen."""
        if not self.active:
            return None
        try:
            keras_run = self.keras.best_run() if self.keras is not None else None
            if keras_run is not None and keras_run.step >= (self.torch.step if self.torch else 0):
                keras_run.finish()
                trace = keras_run.session.finish(status, error=error, stop_reason=stop_reason)
            else:
                trace = self.torch.finish(status, error=error, stop_reason=stop_reason)
        except Exception:  # noqa: BLE001 - reported, and the NumPy observer's view is used instead
            self.notes.append("netdoctor failed while summarising the framework run:\n"
                              + traceback.format_exc(limit=-3))
            return None
        trace.info.notes.extend(self.notes)
        return trace
