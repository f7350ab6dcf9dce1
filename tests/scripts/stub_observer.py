"""A stand-in Observer with the interface of netdoctor.observe.objects, for the runner's tests.

It knows one convention, just enough to test processes, time limits and exit codes
without the real inference engine: a function named ``update`` in the user's files
is one parameter update (a step); a function named ``compute_loss`` that returns a
number gives the current loss. With ``stop_on`` set it declares an error finding
certain at step 5 and stops the run, as the real observer would on a doomed run.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field

from netdoctor.trace import MODEL, Recorder, Trace
from netdoctor.types import Finding, RunInfo, Severity

STOP_ON_STEP = 5


class StopRun(BaseException):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Progress:
    steps: int
    loss: float | None
    new_findings: list = field(default_factory=list)


class Observer:
    def __init__(self, *, name, thresholds, user_files, module_globals=None, roots=None,
                 roles=None, max_steps=None, stop_on=None, on_progress=None):
        self.name = name
        self.thresholds = thresholds
        self.user_files = frozenset(user_files)
        self.module_globals = module_globals
        self.max_steps = max_steps
        self.stop_on = stop_on
        self.on_progress = on_progress
        self.recorder = Recorder()
        self._steps = 0
        self._loss = None
        self._last_report = 0.0
        self._lock = threading.Lock()

    @property
    def steps(self) -> int:
        return self._steps

    def _hook(self, frame, event, arg):
        if event != "return" or frame.f_code.co_filename not in self.user_files:
            return
        name = frame.f_code.co_name
        if name == "compute_loss":
            try:
                self._loss = float(arg)
            except (TypeError, ValueError):
                pass
        elif name == "update":
            self._step()

    def _step(self):
        with self._lock:
            self._steps += 1
            if self._loss is not None and self.recorder.wants(self._steps):
                # A stand-in for an observer that sees the whole run: loss, outputs, updates.
                self.recorder.record(self._steps, {(MODEL, "loss"): self._loss, (MODEL, "out_mean"): 0.5,
                                                   ("layer1", "update_ratio"): 1e-3})
        now = time.monotonic()
        if self.stop_on is not None and self._steps >= STOP_ON_STEP:
            finding = Finding("ND999", "stub-finding", Severity.ERROR, self.name, "the stub is certain")
            self._report([finding])
            raise StopRun("stop-on")
        if now - self._last_report > 0.1 or self._steps == 1:
            self._last_report = now
            self._report([])
        if self.max_steps is not None and self._steps >= self.max_steps:
            raise StopRun("max-steps")

    def _report(self, findings):
        if self.on_progress is not None:
            self.on_progress(Progress(self._steps, self._loss, findings))

    def install(self):
        sys.setprofile(self._hook)
        threading.setprofile(self._hook)

    def uninstall(self):
        sys.setprofile(None)
        threading.setprofile(None)

    def finish(self, status, *, error=None, stop_reason=None):
        info = RunInfo(name=self.name, status=status, steps=self._steps, source="script",
                       error=error, stop_reason=stop_reason)
        names = sorted(k for k in (self.module_globals or {}) if not k.startswith("__"))
        info.extra["module_globals"] = names
        info.extra["user_files"] = sorted(self.user_files)
        return Trace(info, self.recorder)
