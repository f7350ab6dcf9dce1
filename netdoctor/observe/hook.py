"""The interpreter hook: calls, returns and (on request) lines of the user's own code.

``sys.setprofile`` (and ``threading.setprofile``, for threads started later) sees
every function call and return, most of them numpy's or the standard library's.
Each event costs one dictionary lookup on its code object's id: the table says
which handler, if any, wants that code's calls and returns. (Not on the code
object itself: a code object's hash is recomputed from its names and constants at
every lookup, which costs more than the rest of the event. The ids stay valid
because the table keeps every code object it has seen alive.) Code outside the user's
files maps to no handler; the user's code maps to the default handlers (while
the observer learns, all of it) or to handlers routed to it explicitly (later,
only the few functions that matter). The verdict is cached per code object.

Some training loops call no function of their own between two updates (a script
with a ``for`` loop at module level, a ``train()`` that does all its algebra
inline). For those, line events are switched on for chosen code objects only:
``sys.settrace`` with a global function that declines every other frame.
"""

from __future__ import annotations

import sys
import threading
from types import CodeType, FrameType
from typing import Any, Callable, Iterable

CallHandler = Callable[[FrameType], None]
ReturnHandler = Callable[[FrameType, Any], None]
LineHandler = Callable[[FrameType], None]
TICK_EVERY = 16

class Hook:
    """Dispatches the user's call/return/line events to handlers, cheaply."""

    def __init__(self, user_files: Iterable[str], on_call: CallHandler | None,
                 on_return: ReturnHandler | None, on_line: LineHandler):
        self.user_files = frozenset(user_files)
        self._is_user: dict[CodeType, bool] = {}
        self._seen: dict[int, CodeType] = {}   # id -> code: keeps the ids below unambiguous
        self._default: tuple[CallHandler | None, ReturnHandler | None] = (on_call, on_return)
        self._routes: dict[CodeType, tuple[CallHandler | None, ReturnHandler | None]] = {}
        self._calls: dict[int, CallHandler | None] = {}      # by id(code)
        self._returns: dict[int, ReturnHandler | None] = {}  # by id(code)
        self._on_line = on_line
        self._line_codes: set[CodeType] = set()
        self._line_ids: frozenset[int] = frozenset()
        self._all_lines = False      # line events for every user frame (while learning)
        self._module_lines = False   # line events for user code at module level
        self._tracing = False
        self._installed = False
        # A loop that calls no Python function of the user's (a train() doing its algebra
        # inline) sends no call or return to learn from; its numpy calls still arrive as
        # "c_call" events. While a tick handler is set, every TICK_EVERY-th of them calls it
        # with the running frame, so the observer can decide to watch that frame's lines.
        self._on_tick: LineHandler | None = None
        self._ticks = 0

    # -- switching on and off ----------------------------------------------------------
    def install(self) -> None:
        self._installed = True
        sys.setprofile(self._profile)
        threading.setprofile(self._profile)

    def uninstall(self) -> None:
        self._installed = False
        sys.setprofile(None)
        threading.setprofile(None)
        self._stop_tracing()

    def set_tick(self, handler: LineHandler | None) -> None:
        self._on_tick = handler

    def is_user(self, code: CodeType) -> bool:
        known = self._is_user.get(code)
        if known is None:
            known = self._is_user[code] = code.co_filename in self.user_files
        return known

    # -- who gets which events -----------------------------------------------------------------
    def set_default(self, on_call: CallHandler | None, on_return: ReturnHandler | None) -> None:
        """Handlers for user code that has no route of its own."""
        self._default = (on_call, on_return)
        self._calls.clear()
        self._returns.clear()

    def route(self, code: CodeType, on_call: CallHandler | None, on_return: ReturnHandler | None) -> None:
        """Handlers for one code object (None: its calls or returns are of no interest)."""
        self._routes[code] = (on_call, on_return)
        self._calls.pop(id(code), None)
        self._returns.pop(id(code), None)

    def unroute(self, code: CodeType) -> None:
        self._routes.pop(code, None)
        self._calls.pop(id(code), None)
        self._returns.pop(id(code), None)

    def _resolve(self, code: CodeType) -> tuple[CallHandler | None, ReturnHandler | None]:
        if code in self._routes:
            handlers = self._routes[code]
        elif self.is_user(code):
            handlers = self._default
        else:
            handlers = (None, None)
        self._seen[id(code)] = code
        self._calls[id(code)], self._returns[id(code)] = handlers
        return handlers

    # -- line events ---------------------------------------------------------------------
    def trace_all_lines(self, enabled: bool) -> None:
        """Line events in every user frame started from now on (learning), or not."""
        self._all_lines = enabled
        self._update_tracing()

    def trace_module_lines(self, enabled: bool) -> None:
        """Line events in the user's module-level code (a script's top-level loop)."""
        self._module_lines = enabled
        self._update_tracing()

    @property
    def line_codes(self) -> set[CodeType]:
        return set(self._line_codes)

    def trace_lines(self, codes: Iterable[CodeType]) -> None:
        """From now on, line events only in frames of these code objects."""
        self._line_codes = set(codes)
        self._line_ids = frozenset(id(code) for code in self._line_codes)
        self._update_tracing()

    def _update_tracing(self) -> None:
        if self._all_lines or self._module_lines or self._line_codes:
            self._start_tracing()
        else:
            self._stop_tracing()

    def follow_frame(self, frame: FrameType, enabled: bool) -> None:
        """Switch line events on/off for a frame that is already running."""
        if enabled:
            self._start_tracing()
            frame.f_trace = self._line
            frame.f_trace_lines = True
        elif frame.f_trace is not None:
            frame.f_trace_lines = False
            frame.f_trace = None

    def _start_tracing(self) -> None:
        if not self._tracing and self._installed:
            self._tracing = True
            sys.settrace(self._global_trace)
            threading.settrace(self._global_trace)

    def _stop_tracing(self) -> None:
        if self._tracing:
            self._tracing = False
            sys.settrace(None)
            threading.settrace(None)

    def wants_lines(self, code: CodeType) -> bool:
        if id(code) in self._line_ids:
            return True
        if self._all_lines or (self._module_lines and code.co_name == "<module>"):
            return self.is_user(code)
        return False

    # -- the callbacks (hot path: keep them short) ---------------------------------------------
    def _profile(self, frame: FrameType, event: str, arg: Any):
        if event == "call":
            try:
                handler = self._calls[id(frame.f_code)]
            except KeyError:
                handler = self._resolve(frame.f_code)[0]
            if handler is not None:
                handler(frame)
        elif event == "return":
            try:
                handler = self._returns[id(frame.f_code)]
            except KeyError:
                handler = self._resolve(frame.f_code)[1]
            if handler is not None:
                handler(frame, arg)
        elif event == "c_call" and self._on_tick is not None:
            self._ticks += 1
            if not self._ticks % TICK_EVERY:
                self._on_tick(frame)

    def _global_trace(self, frame: FrameType, event: str, arg: Any):
        # Called for every new Python frame while tracing is on: decline all but ours.
        if self.wants_lines(frame.f_code):
            frame.f_trace_lines = True
            return self._line
        return None

    def _line(self, frame: FrameType, event: str, arg: Any):
        if event == "line":
            self._on_line(frame)
        return self._line
