"""The Observer: turns a running program netdoctor did not write into a Trace.

It is driven by the interpreter hook (:mod:`.hook`) and works in two phases:

1. **learning** (:mod:`.learn`): every event of the user's code is a checkpoint at
   which the program's arrays are found and the layer chain is inferred from their
   values; two steps later the roles (parameters, gradients, activations, the
   forward pass's checkpoints) are settled;
2. **running** (:mod:`.stepper`): only the forward checkpoints are looked at, and
   each step is measured into a :class:`netdoctor.trace.Recorder` in the same
   vocabulary as the reference runner's.

Where a role cannot be inferred the trace says so (``RunInfo.notes`` and a
"roles" event telling how to name it); it never guesses silently.

The runner (:mod:`.script`) owns processes, files, time and exit codes; this
module owns what the arrays mean. :func:`observe_call` and :class:`Watch` serve
``diagnose(obj, train)`` and ``with watch(obj): ...`` in a notebook.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from types import CodeType, FrameType
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from ..config import DEFAULT_THRESHOLDS, Thresholds
from ..trace import Event, Recorder, Trace
from ..types import Finding, Location, RunInfo, Severity
from .arrays import Context, Found, Root, UserTypes
from .functions import FunctionWatch, bound_callable
from .hook import Hook
from .learn import Learned, Learner
from .stepper import Tracker, gradient_holders
from .verdicts import EarlyVerdicts, stops

PROGRESS_INTERVAL = 0.1   # seconds between progress reports (at most ~10 a second)
MAX_OBJECT_ROOTS = 8


class StopRun(BaseException):
    """Raised inside the user's code to end a run early ("max-steps", "stop-on", "timeout")."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Progress:
    steps: int
    loss: float | None
    new_findings: list[Finding] = field(default_factory=list)


class Observer:
    def __init__(
        self,
        *,
        name: str,
        thresholds: Thresholds | None = None,
        user_files: Iterable[str],
        module_globals: dict | None = None,
        roots: Mapping[str, Any] | None = None,
        roles: Mapping[str, Any] | None = None,
        max_steps: int | None = None,
        stop_on: Severity | str | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        source: str = "script",
    ):
        self.name = name
        self.thresholds = thresholds or DEFAULT_THRESHOLDS
        self.user_files = list(user_files)
        self.module_globals = module_globals
        self.roles = dict(roles or {})
        self.max_steps = max_steps
        self.stop_on = None if stop_on is None else Severity.parse(stop_on)
        self.on_progress = on_progress
        self.source = source
        self.hook = Hook(self.user_files, self.on_call, self.on_return, self.on_line)
        self.user_types = UserTypes(self.user_files)
        self.recorder = Recorder(self.thresholds.dense_steps, self.thresholds.max_recorded_steps)
        self.events: list[Event] = []
        self.notes: list[str] = []
        self.functions: dict[CodeType, FunctionWatch] = {}
        self.callables: dict[CodeType, Callable | None] = {}
        self.identified: dict[int, str] = {}
        self._pending: dict[int, tuple[FunctionWatch, Any]] = {}
        self._recent: deque = deque(maxlen=64)
        self._object_roots: list[tuple[Root, Any]] = []
        self._capturing = True
        self._routed: set = set()
        self._call_checkpoints: dict[int, int] = {}
        for label, obj in (roots or {}).items():
            self._add_root(obj, "" if len(roots or {}) == 1 else str(label))
        self.phase = "learning"
        self.learner = Learner(self)
        self.learning_seconds: float | None = None   # CPU seconds learning took, once it ended
        self._how_to_name: str | None = None
        self.tracker: Tracker | None = None
        self.learned: Learned | None = None
        self.forward_keys: set = set()
        # The same sites by (id(code), kind, line), for the running phase's hot path (a code
        # object's own hash is recomputed at every lookup; forward_keys keeps the codes alive).
        self._forward_ids: frozenset = frozenset()
        self._grad_codes: set = set()            # functions holding gradient locals (kept alive)
        self._grad_code_ids: frozenset = frozenset()   # ... by id, for the hot path
        self.verdicts = EarlyVerdicts(self.thresholds)
        self._last_progress = 0.0
        self._internal_error: str | None = None
        self._started = time.perf_counter()

    # -- the runner's interface -------------------------------------------------------------
    def install(self) -> None:
        self.hook.install()
        self.hook.trace_module_lines(True)
        self._tick_visits, self._quiet_ticks = -1, 0
        self.first_steps_unseen = False
        self.hook.set_tick(self._on_tick)

    def _on_tick(self, frame: FrameType) -> None:
        """Numpy keeps being called while no user function is: the training may be a
        loop inside one long-running function. Watch its lines once calls have shown nothing."""
        try:
            if self.phase != "learning" or self.learner.stage != 1:
                self.hook.set_tick(None)
                return
            user = self._innermost_user_frame(frame)
            if user is None:
                return   # (C calls of no user code: imports, netdoctor's own set-up)
            # (Visits of the user's code passed over as seldom count: a data-loading function
            # called 50,000 times is the user's code running, not algebra hidden in lines.)
            quiet = self.learner.visits == self._tick_visits
            self._tick_visits = self.learner.visits
            self._quiet_ticks = self._quiet_ticks + 1 if quiet else 0
            # (Two ticks in a row with no event of the user's code between them: thousands
            # of numpy calls made by lines that calls and returns do not show.)
            if self._quiet_ticks >= 2 or self.learner.wants_more_lines():
                # Watching starts inside a loop that is already running: its first steps are
                # gone, unless that loop's lines were watched already (a module-level loop).
                self.first_steps_unseen = not self.hook.wants_lines(user.f_code)
                self._enter_stage2(frame)
        except Exception:  # noqa: BLE001
            self._fail()

    def _innermost_user_frame(self, frame: FrameType | None) -> FrameType | None:
        while frame is not None and not self.hook.is_user(frame.f_code):
            frame = frame.f_back
        return frame

    def uninstall(self) -> None:
        self.hook.uninstall()

    @property
    def steps(self) -> int:
        if self.tracker is not None:
            return self.tracker.steps
        return self.learner.updates

    # -- events from the hook ----------------------------------------------------------------
    # While learning, every call and return of the user's code arrives here; once the
    # roles are known, only the forward sites and the watched functions (routed).
    def on_call(self, frame: FrameType) -> None:
        try:
            if self.phase == "learning":
                self._learn_call(frame, frame.f_code)
        except StopRun:
            raise
        except Exception:  # noqa: BLE001 - our bug must not become the user's crash
            self._fail()

    def on_return(self, frame: FrameType, value: Any) -> None:
        try:
            if self.phase == "learning":
                code = frame.f_code
                self._finish_capture(frame, value)
                self.learner.note_return(code, value)
                started = self._call_checkpoints.pop(id(frame), None)
                if (started is not None and self.learner.checkpoints == started and self.learner.chain is None
                        and not self.hook.wants_lines(code)):
                    # Nothing of the user's ran inside this call: its algebra is inline and
                    # only its lines can show a forward pass. Watch them from its next call.
                    self.hook.trace_lines(self.hook.line_codes | {code})
                self._checkpoint(Context(frame, value), (code, "return", 0), "A")
        except StopRun:
            raise
        except Exception:  # noqa: BLE001
            self._fail()

    def on_line(self, frame: FrameType) -> None:
        try:
            if self.phase == "learning":
                self._checkpoint(Context(frame), (frame.f_code, "line", frame.f_lineno), "B")
            elif self.phase == "running" and (id(frame.f_code), "line", frame.f_lineno) in self._forward_ids:
                self.tracker.on_forward(Context(frame))
        except StopRun:
            raise
        except Exception:  # noqa: BLE001
            self._fail()

    def _run_call(self, frame: FrameType) -> None:
        try:
            code = frame.f_code
            if self._capturing:
                watch = self.functions.get(code)
                if watch is not None and watch.enabled and watch.wants():
                    call = watch.start(frame)
                    if call is not None:
                        self._pending[id(frame)] = (watch, call)
            if (id(code), "call", 0) in self._forward_ids:
                self.tracker.on_forward(Context(frame))
        except StopRun:
            raise
        except Exception:  # noqa: BLE001
            self._fail()

    def _run_return(self, frame: FrameType, value: Any) -> None:
        try:
            self._finish_capture(frame, value)
            if id(frame.f_code) in self._grad_code_ids:
                self.tracker.on_grad_return(Context(frame, value))
            if (id(frame.f_code), "return", 0) in self._forward_ids:
                self.tracker.on_forward(Context(frame, value))
        except StopRun:
            raise
        except Exception:  # noqa: BLE001
            self._fail()

    def _finish_capture(self, frame: FrameType, value: Any) -> None:
        pending = self._pending.pop(id(frame), None)
        if pending is not None:
            watch, call = pending
            watch.finish(call, value)
            if self.phase == "learning":
                self._recent.append((frame.f_code, call))

    def set_capturing(self, enabled: bool) -> None:
        """Sample the watched functions' (input, output) pairs only around recorded steps."""
        if enabled != self._capturing and self.phase == "running":
            self._capturing = enabled
            self._apply_routes()

    def _apply_routes(self) -> None:
        """Route exactly the code objects the running phase needs to hear from."""
        wanted = {key[0] for key in self.forward_keys if key[1] != "line"} | self._grad_codes
        if self._capturing:
            wanted |= {code for code, w in self.functions.items() if w.enabled}
        for code in list(self._routed - wanted):
            self.hook.unroute(code)
        for code in wanted - self._routed:
            self.hook.route(code, self._run_call, self._run_return)
        self._routed = wanted

    def _fail(self) -> None:
        """An internal error: stop observing (the script runs on) and say so in the report."""
        self.hook.set_default(None, None)
        if self._internal_error is None:
            self._internal_error = traceback.format_exc(limit=-4)
            self.notes.append("netdoctor stopped observing after an internal error (a netdoctor bug; "
                              "the run itself went on):\n" + self._internal_error)
        self.phase = "stopped"
        self.hook.uninstall()

    # -- learning -----------------------------------------------------------------------------------
    def _learn_call(self, frame: FrameType, code: CodeType) -> None:
        if code.co_argcount:
            first = frame.f_locals.get(code.co_varnames[0])
            if first is not None and self.user_types(first):
                self._add_root(first, "")
        watch = self.functions.get(code)
        if watch is None:
            watch = self.functions[code] = FunctionWatch(code)
        if watch.wants():
            call = watch.start(frame)
            if call is not None:
                self._pending[id(frame)] = (watch, call)
                if code not in self.callables:
                    self.callables[code] = bound_callable(frame)
                self.learner.note_call(code, call.arg_ids, Context(frame))
        self._checkpoint(Context(frame), (code, "call", 0), "A")
        self._call_checkpoints[id(frame)] = self.learner.checkpoints

    def _checkpoint(self, ctx: Context, key: tuple, tier: str) -> None:
        learned = self.learner.checkpoint(ctx, key, tier)
        if learned is not None:
            self._start_running(learned, ctx)
        elif self.learner.out_of_budget():
            self._give_up()
        elif self.learner.wants_more_lines():
            self._enter_stage2(ctx.frame)
        elif self.learner.lines_done():
            self._leave_stage2(ctx.frame)

    def _leave_stage2(self, frame: FrameType | None) -> None:
        """The lines have shown what they could: back to calls and returns (and module-level
        lines) for the steps still to be learned, including frames running now."""
        self.learner.leave_stage2()
        self.hook.trace_all_lines(False)
        while frame is not None:
            code = frame.f_code
            if self.hook.is_user(code):
                self.hook.follow_frame(frame, self.hook.wants_lines(code))
            frame = frame.f_back

    def _enter_stage2(self, frame: FrameType | None) -> None:
        """Calls and returns did not show a forward pass: watch every line of the user's
        code (e.g. a train() that does its algebra inline), including frames running now."""
        self.learner.enter_stage2()
        self.hook.set_tick(None)
        self.hook.trace_all_lines(True)
        while frame is not None:
            if self.hook.is_user(frame.f_code):
                self.hook.follow_frame(frame, True)
            frame = frame.f_back

    def after_learning_step(self, step: int) -> None:
        if self.max_steps is not None and step >= self.max_steps:
            raise StopRun("max-steps")

    def _start_running(self, learned: Learned, ctx: Context) -> None:
        self.learned = learned
        self.learning_seconds = round(self.learner.learning_seconds(), 3)
        self.phase = "running"
        self.forward_keys = set(learned.forward_keys)
        self._forward_ids = frozenset((id(code), kind, line) for code, kind, line in self.forward_keys)
        # Functions whose locals hold the gradients: read at their return (see Tracker.on_grad_return).
        self._grad_codes = gradient_holders(learned.grad_paths)
        self._grad_code_ids = frozenset(id(code) for code in self._grad_codes)
        self.hook.trace_all_lines(False)
        self.hook.trace_module_lines(False)
        self.hook.trace_lines(learned.line_codes)
        frame = ctx.frame
        while frame is not None:
            if self.hook.is_user(frame.f_code):
                self.hook.follow_frame(frame, frame.f_code in learned.line_codes)
            frame = frame.f_back
        keep = self._layer_function_codes(learned)
        for code, watch in self.functions.items():
            watch.enabled = code in keep
        self._recent.clear()
        self.hook.set_default(None, None)
        self._apply_routes()
        self.start_context = ctx   # (the data set is looked for in the frames running now)
        self.tracker = Tracker(self, learned, self.callables)
        self.start_context = None
        self.tracker.start(ctx)
        self.after_step(self.tracker.steps, self.tracker.last_loss)

    def _layer_function_codes(self, learned: Learned) -> set:
        codes = {l.function_code for l in learned.chain.layers if l.function_code is not None}
        codes |= set(learned.producers.values())
        codes |= set(learned.derivative_of)
        return codes

    def _give_up(self) -> None:
        self.phase = "blind"
        self.hook.uninstall()
        why = self.learner.gave_up or "no training loop found"
        self.note(f"netdoctor could not tell the network's parameters and forward pass apart ({why}); {self.how_to_name()}")

    # -- what the learner asks for ---------------------------------------------------------------------
    def sources(self, ctx: Context) -> list[tuple[Root, Any]]:
        """Where to look for arrays at a checkpoint, most stable places first."""
        out: list[tuple[Root, Any]] = list(self._object_roots[:1])
        if self.module_globals is not None:
            out.append((Root("globals", "", obj=self.module_globals), self.module_globals))
        frames = []
        frame = ctx.frame
        while frame is not None and len(frames) < 32:
            if self.hook.is_user(frame.f_code) and frame.f_code.co_name != "<module>":
                frames.append(frame)
            frame = frame.f_back
        for frame in reversed(frames):
            code = frame.f_code
            for name, value in list(frame.f_locals.items()):
                if value is None or isinstance(value, (int, str, bool)):
                    continue   # (floats stay: a parameter may be a plain number)
                out.append((Root("local", name, code=code), value))
        out.extend(self._object_roots[1:])
        if ctx.result is not None and ctx.frame is not None:
            out.append((Root("result", "", code=ctx.frame.f_code), ctx.result))
        return out

    def skip_object(self, value: Any) -> bool:
        return isinstance(value, (Observer, Hook, Learner, Tracker))

    def recent_calls(self) -> list:
        return list(self._recent)

    def how_to_name(self) -> str:
        """How to name the roles, with the command line built from the arrays seen to change.

        Fixed once learning has ended (the run's description asks for it at every step)."""
        if self._how_to_name is not None:
            return self._how_to_name
        from .naming import how_to_name, suggested_roles

        script = (self.module_globals or {}).get("__file__") if self.source == "script" else None
        roles = suggested_roles(self.learner.last_found.values(), self.learner.changed_ever)
        text = how_to_name(script, roles)
        if self.phase != "learning":
            self._how_to_name = text
        return text

    def named_output(self) -> str | None:
        """The output the user named (``--net-output`` / ``watch(..., output=...)``), if any."""
        output = self.roles.get("output")
        return output if isinstance(output, str) and output else None

    def named_targets(self) -> str | None:
        """The targets the user named (``--targets`` / ``watch(..., targets=...)``), if any."""
        targets = self.roles.get("targets")
        return targets if isinstance(targets, str) and targets else None

    def named_param_ids(self, found: dict[int, Found]) -> set[int] | None:
        """Ids of the arrays the user named as parameters (watch(..., params=[...])), if any."""
        named = self.roles.get("params")
        if not named:
            return None
        names = {n for n in named if isinstance(n, str)}
        ids = {id(a) for a in named if isinstance(a, np.ndarray)}
        return {i for i, f in found.items() if f.name in names or i in ids}

    def _add_root(self, obj: Any, label: str) -> None:
        if any(existing is obj for _, existing in self._object_roots) or len(self._object_roots) >= MAX_OBJECT_ROOTS:
            return
        if self._object_roots and not label:
            label = f"<{type(obj).__name__}>"
        self._object_roots.append((Root("object", label, obj=obj), obj))

    # -- what the tracker reports ----------------------------------------------------------------------
    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def event(self, kind: str, data: dict, *, step: int | None = None, layer: str | None = None,
              location: Location | None = None) -> None:
        self.events.append(Event(kind=kind, step=step, layer=layer, data=dict(data), location=location))

    def after_step(self, step: int, loss: float | None) -> None:
        """Called after each step: progress, early verdicts, step limit."""
        if self.max_steps is not None and step >= self.max_steps:
            raise StopRun("max-steps")
        now = time.perf_counter()
        new: list[Finding] = []
        if self.stop_on is not None and self.verdicts.due(step):
            new = self.verdicts.check(step, lambda: self._build_trace("completed", final=False))
        if self.on_progress is not None and (new or now - self._last_progress >= PROGRESS_INTERVAL):
            self._last_progress = now
            try:
                self.on_progress(Progress(step, loss, new))
            except Exception:  # noqa: BLE001 - a display problem must not end the run
                pass
        stopper = stops(new, self.stop_on)
        if stopper is not None:
            self.note(f"stopped at step {step}: {stopper.code} {stopper.symbol} was already certain")
            raise StopRun("stop-on")

    # -- the result ------------------------------------------------------------------------------------
    def finish(self, status: str, *, error: str | None = None, stop_reason: str | None = None) -> Trace:
        """The run's Trace (never raises: what cannot be summarised becomes a note)."""
        self.hook.uninstall()
        if self.tracker is None and self.phase in ("learning", "stopped"):
            learned = self.learner.partial()
            if learned is not None and learned.records:
                try:
                    self.learned = learned
                    self.tracker = Tracker(self, learned, self.callables)
                    self.tracker.start(Context(None))
                except Exception:  # noqa: BLE001
                    self.tracker = None
                    self.note("netdoctor could not summarise the steps it saw:\n" + traceback.format_exc(limit=-3))
            elif self.phase == "learning":
                why = "no step (parameter update) was seen" if learned is not None else \
                    "no network (weights applied to inputs layer by layer) was found among the program's arrays"
                self.note(f"netdoctor could not observe training: {why}; {self.how_to_name()}")
        if self.tracker is not None:
            try:
                self.tracker.finish(Context(None))
            except Exception:  # noqa: BLE001
                pass
        try:
            trace = self._build_trace(status, final=True)
        except Exception:  # noqa: BLE001 - the run still gets a report
            info = RunInfo(name=self.name, status=status, steps=self.steps, source=self.source)
            info.notes = list(self.notes) + ["netdoctor failed to summarise this run:\n" + traceback.format_exc(limit=-3)]
            trace = Trace(info, self.recorder, list(self.events))
        trace.info.status = status
        trace.info.error = error
        trace.info.stop_reason = stop_reason
        return trace

    def _build_trace(self, status: str, final: bool) -> Trace:
        from .facts import describe

        return describe(self, status, final)


# --- notebooks: your own object, your own training call ------------------------------------------


def user_files_of(obj: Any, *extra: Any) -> list[str]:
    """Files holding the code of `obj`'s class (and its bases) and of the given callables."""
    files: list[str] = []

    def add(path: str | None) -> None:
        if path and path not in files:
            files.append(path)

    for cls in type(obj).__mro__:
        if cls is object:
            continue
        module = sys.modules.get(cls.__module__)
        if cls.__module__ not in ("builtins",):
            for attr in vars(cls).values():
                func = getattr(attr, "__func__", attr)
                code = getattr(func, "__code__", None)
                if code is not None:
                    add(code.co_filename)
            add(getattr(module, "__file__", None) if cls.__module__ != "__main__" else None)
    for thing in extra:
        code = getattr(thing, "__code__", None) or getattr(getattr(thing, "__func__", None), "__code__", None)
        if code is not None:
            add(code.co_filename)
    return files


def _namespace_of(obj: Any) -> dict | None:
    """The module namespace where `obj`'s class lives (a notebook's: its variables, e.g. X, y)."""
    module = sys.modules.get(type(obj).__module__)
    namespace = getattr(module, "__dict__", None)
    return namespace if isinstance(namespace, dict) else None


def observe_call(
    obj: Any,
    train: Callable[[], Any],
    *,
    name: str = "original",
    thresholds: Thresholds | None = None,
    roles: Mapping[str, Any] | None = None,
    max_steps: int | None = None,
    stop_on: Severity | str | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    **ignored: Any,
) -> Trace:
    """Run ``train()`` while observing `obj` (your network object); return the run's Trace."""
    observer = Observer(
        name=name, thresholds=thresholds, user_files=user_files_of(obj, train),
        module_globals=_namespace_of(obj), roots={"model": obj}, roles=roles,
        max_steps=max_steps, stop_on=stop_on, on_progress=on_progress, source="object",
    )
    status, error, reason = "completed", None, None
    observer.install()
    try:
        train()
    except StopRun as stop:
        reason = stop.reason
        status = "timeout" if reason == "timeout" else "stopped"
    except Exception:  # noqa: BLE001 - the user's crash is a result, reported with what was seen
        status, error = "crashed", traceback.format_exc()
    finally:
        observer.uninstall()
    return observer.finish(status, error=error, stop_reason=reason)


class Watch:
    """``with netdoctor.watch(model) as w: model.train(...)``, then ``w.report`` / ``w.trace``.

    Roles netdoctor cannot infer can be named: ``watch(model, params=[...], output=...)``.
    """

    def __init__(self, model: Any, *, name: str = "original", thresholds: Thresholds | None = None,
                 max_steps: int | None = None, stop_on: Severity | str | None = None, **roles: Any):
        self.model = model
        self.name = name
        self.thresholds = thresholds or DEFAULT_THRESHOLDS
        self.max_steps = max_steps
        self.stop_on = stop_on
        self.roles = roles
        self.trace: Trace | None = None
        self._report = None
        self._observer: Observer | None = None

    def __enter__(self) -> "Watch":
        caller = sys._getframe(1)
        files = user_files_of(self.model) + [caller.f_code.co_filename]
        self._observer = Observer(
            name=self.name, thresholds=self.thresholds, user_files=files,
            module_globals=_namespace_of(self.model), roots={"model": self.model}, roles=self.roles,
            max_steps=self.max_steps, stop_on=self.stop_on, source="object",
        )
        self._observer.install()
        # The with-block itself may hold the training loop: follow its lines while learning.
        self._observer.hook.follow_frame(caller, True)
        self._caller = caller
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        observer = self._observer
        observer.uninstall()
        self._observer.hook.follow_frame(self._caller, False)
        status, error, reason = "completed", None, None
        swallow = False
        if exc_type is not None and issubclass(exc_type, StopRun):
            reason = exc.reason
            status = "timeout" if reason == "timeout" else "stopped"
            swallow = True
        elif exc_type is not None and issubclass(exc_type, Exception):
            status = "crashed"
            error = "".join(traceback.format_exception(exc_type, exc, tb))
        self.trace = observer.finish(status, error=error, stop_reason=reason)
        return swallow

    @property
    def report(self):
        """The diagnosis of the watched run (built on first use)."""
        if self.trace is None:
            raise RuntimeError("the run is still being watched; read w.report after the with-block")
        if self._report is None:
            from ..report import Report

            self._report = Report.from_traces([self.trace], thresholds=self.thresholds)
        return self._report

    def _repr_html_(self) -> str:
        return self.report._repr_html_() if self.trace is not None else "<p>netdoctor: watching…</p>"
