"""The user's own small functions: what they compute, and where they are written.

Hand-written networks route activations through functions like the seed's
``activationFunction(self, vec)`` or ``sigmoid_prime(z)``: one array in, one array
of the same shape out. A :class:`FunctionWatch` keeps (input, output) pairs from
some of their calls (all calls at first, then ever more sparsely), so that the
function can be identified from its behaviour (:func:`netdoctor.identify.identify_pairs`)
and the report can point at the line that defines it.

Nothing here judges: identification results become "function" events that the
ND303/ND304 rules read.
"""

from __future__ import annotations

import linecache
import math
from dataclasses import dataclass, field
from types import CodeType, FrameType
from typing import Any

import numpy as np

from ..types import Location
from .sites import return_line
from .arrays import SMALL

# Calls captured in full at first; after that, one call in `stride`, the stride
# doubling every CAPTURE_BLOCK captures, until a function holds MAX_POINTS values.
CAPTURE_BLOCK = 64
MAX_POINTS = 8192
# Source lines shown with a location: the def line and the body's first lines.
SOURCE_LINES = 8

# Words in a function's name that say which activation it claims to be.
_DECLARED_WORDS = (
    ("leaky", "leaky_relu"),
    ("softmax", "softmax"),
    ("softplus", "softplus"),
    ("sigmoid", "sigmoid"),
    ("logistic", "sigmoid"),
    ("expit", "sigmoid"),
    ("tanh", "tanh"),
    ("relu", "relu"),
)
_DERIVATIVE_WORDS = ("prime", "deriv", "grad", "diff", "backward", "dsig", "d_")


def declared_name(code: CodeType) -> str | None:
    """The activation a function's name claims ("sigmoid_prime" -> "sigmoid"), if any."""
    name = code.co_name.lower()
    for word, declared in _DECLARED_WORDS:
        if word in name:
            return declared
    return None


def sounds_like_derivative(code: CodeType) -> bool:
    name = code.co_name.lower()
    return any(word in name for word in _DERIVATIVE_WORDS)


def location_of(code: CodeType) -> Location:
    """Where a function is defined: file, the def line, its qualified name, its first lines."""
    first = code.co_firstlineno
    source: list[tuple[int, str]] = []
    for number in range(first, first + SOURCE_LINES):
        text = linecache.getline(code.co_filename, number)
        if not text:
            break
        source.append((number, text.rstrip("\n")))
    # Stop at the end of the function: the first non-blank line indented like the def.
    if source:
        indent = len(source[0][1]) - len(source[0][1].lstrip())
        for k in range(1, len(source)):
            line = source[k][1]
            if line.strip() and len(line) - len(line.lstrip()) <= indent and not line.lstrip().startswith(")"):
                source = source[:k]
                break
    function = getattr(code, "co_qualname", code.co_name)
    # Point at the line that computes the value (its `return`), not at the `def`.
    line = return_line(code.co_filename, first) or first
    return Location(file=code.co_filename, line=line, function=function, source=tuple(source))


def array_arguments(frame: FrameType) -> list[tuple[str, np.ndarray]]:
    """The numeric array arguments of a call, in order (``self`` and friends skipped)."""
    code = frame.f_code
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    values = frame.f_locals
    out = []
    for name in names:
        value = values.get(name)
        if isinstance(value, np.ndarray) and value.dtype.kind in "fiu" and value.size:
            out.append((name, value))
    return out


def _copy(a: np.ndarray) -> np.ndarray:
    return np.array(a, dtype=np.float64, copy=True)


@dataclass
class Call:
    """One observed call: its array arguments (by identity and, if small, by value) and result."""

    arg_ids: tuple[int, ...]
    arg_names: tuple[str, ...]
    args: list[np.ndarray]                 # copies (small arrays) or references
    result: Any = None
    result_id: int | None = None


@dataclass
class FunctionWatch:
    """Pairs (input, output) of one user function that maps an array to a same-shape array."""

    code: CodeType
    calls: int = 0
    captured: int = 0
    inputs: list[np.ndarray] = field(default_factory=list)
    outputs: list[np.ndarray] = field(default_factory=list)
    points: int = 0
    last: Call | None = None
    same_shape: bool | None = None          # None until a call has been seen
    stride: int = 1
    enabled: bool = True

    @property
    def location(self) -> Location:
        return location_of(self.code)

    @property
    def name(self) -> str:
        return getattr(self.code, "co_qualname", self.code.co_name)

    def wants(self) -> bool:
        """Whether this call should be captured (sparse sampling, bounded memory)."""
        self.calls += 1
        if not self.enabled or self.points >= MAX_POINTS or self.same_shape is False:
            return False
        return self.calls % self.stride == 0

    def start(self, frame: FrameType) -> Call | None:
        args = array_arguments(frame)
        if not args:
            if self.calls > 4 and self.same_shape is None:
                self.same_shape = False  # takes no arrays: not an array -> array function
            return None
        return Call(
            arg_ids=tuple(id(a) for _, a in args),
            arg_names=tuple(n for n, _ in args),
            args=[_copy(a) if a.size <= SMALL else a for _, a in args],
        )

    def finish(self, call: Call, result: Any) -> None:
        out = result
        if isinstance(out, (tuple, list)) and out and isinstance(out[0], np.ndarray):
            out = out[0]  # e.g. `return a, cache`
        if not isinstance(out, np.ndarray) or out.dtype.kind not in "fiub":
            if self.same_shape is None:
                self.same_shape = False  # returns no array: not an array -> array function
            return
        call.result_id = id(out)
        call.result = _copy(out) if out.size <= SMALL else out
        self.last = call
        arg = next((a for a in call.args if a.shape == out.shape), None)
        if arg is None:
            if self.same_shape is None:
                self.same_shape = False
            return
        self.same_shape = True
        self.inputs.append(arg if arg.size <= SMALL else _copy(arg))
        self.outputs.append(call.result if out.size <= SMALL else _copy(out))
        self.points += arg.size
        self.captured += 1
        if self.captured % CAPTURE_BLOCK == 0:
            self.stride *= 2

    def pairs(self, samples_axis: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
        """All captured (input, output) values, stacked along the sample axis.

        Calls of different shapes are flattened together (elementwise functions do not
        care); for row-wise functions such as softmax, the calls of the most common
        shape are stacked as (samples, units).
        """
        if not self.inputs:
            return None
        shapes: dict[tuple, int] = {}
        for a in self.inputs:
            shapes[a.shape] = shapes.get(a.shape, 0) + 1
        common = max(shapes, key=shapes.get)
        zs = [z for z in self.inputs if z.shape == common]
        outs = [a for z, a in zip(self.inputs, self.outputs) if z.shape == common]
        if len(common) == 2:
            axis = samples_axis
            return np.concatenate(zs, axis=axis), np.concatenate(outs, axis=axis)
        return np.concatenate([z.reshape(-1) for z in zs]), np.concatenate([a.reshape(-1) for a in outs])


def function_payload(ident: Any, role: str, declared: str | None) -> dict[str, Any]:
    """The "function" event for one identification (keys as in netdoctor.trace.EVENT_KINDS)."""
    candidates = getattr(ident, "candidates", {}) or {}
    declared_err = None
    if declared is not None and declared in candidates:
        declared_err = _float(candidates[declared])
    return {
        "role": role,
        "declared": declared,
        "identified": ident.identified,
        "max_err": _float(ident.max_err),
        "declared_err": declared_err,
        "f0": _float(ident.f0),
        "range": [_float(v) for v in ident.range] if ident.range is not None else None,
        "mistake": bool(ident.mistake),
        "description": ident.description,
        "fix": ident.fix,
    }


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def bound_callable(frame: FrameType) -> Any:
    """The function object running in `frame`, bound to its ``self`` when it is a method.

    Found without searching the heap: a module-level function through the frame's
    globals, a method through its first argument. None for closures and lambdas.
    """
    code = frame.f_code
    func = frame.f_globals.get(code.co_name)
    if getattr(func, "__code__", None) is code:
        return func
    if code.co_argcount >= 1:
        first = frame.f_locals.get(code.co_varnames[0])
        method = getattr(type(first), code.co_name, None) if first is not None else None
        raw = getattr(method, "__func__", method)
        if getattr(raw, "__code__", None) is code:
            return getattr(first, code.co_name)
    return None
