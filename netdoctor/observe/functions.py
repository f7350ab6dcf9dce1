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
# A function is named only from pairs of at least this many calls (several steps).
MIN_CALLS_TO_NAME = 3
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


def flag_arguments(frame: FrameType) -> tuple[tuple[str, Any], ...]:
    """The call's non-array arguments that select a behaviour (``deriv=True``), as data.

    Only plain flags count — bools, small ints, short strings, None — and only those that
    differ from the function's defaults: ``nonlin(x)`` and ``nonlin(x, deriv=False)`` are
    one behaviour, ``nonlin(x, deriv=True)`` another.
    """
    code = frame.f_code
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    values = frame.f_locals
    func = frame.f_globals.get(code.co_name)
    defaults = _defaults(func if getattr(func, "__code__", None) is code else None, code)
    out = []
    for name in names:
        value = values.get(name, None)
        if isinstance(value, (bool, np.bool_)):
            value = bool(value)
        elif isinstance(value, (int, np.integer)) and -1000 < value < 1000:
            value = int(value)
        elif not ((isinstance(value, str) and len(value) <= 32) or value is None):
            continue
        if name in defaults and defaults[name] == value:
            continue
        if name not in defaults and not value:
            continue  # defaults unknown (a method): switches are off when falsy (deriv=False)
        out.append((name, value))
    return tuple(out)


def _defaults(func: Any, code: CodeType) -> dict[str, Any]:
    """Parameter defaults by name; for a method (not found by name) the plain flags default to
    falsy values, which is how derivative switches are written (``deriv=False``)."""
    if func is None:
        return {}
    names = code.co_varnames[: code.co_argcount]
    positional = getattr(func, "__defaults__", None) or ()
    out = dict(zip(names[len(names) - len(positional):], positional))
    out.update(getattr(func, "__kwdefaults__", None) or {})
    return out


def behaviour_label(flags: tuple[tuple[str, Any], ...]) -> str:
    """'deriv=True' for a call with flags, '' for the plain call."""
    return ", ".join(f"{name}={value!r}" for name, value in flags)


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
    flags: tuple[tuple[str, Any], ...] = ()   # non-default flag arguments (see flag_arguments)


@dataclass
class FunctionWatch:
    """Pairs (input, output) of one user function that maps an array to a same-shape array.

    One function called with different flags (``nonlin(x)`` as the activation and
    ``nonlin(x, deriv=True)`` as its derivative, Trask style) has several behaviours:
    each captured pair is kept with its call's flags, and :meth:`pairs` returns one
    behaviour at a time, never a mixture.
    """

    code: CodeType
    calls: int = 0
    captured: int = 0
    inputs: list[np.ndarray] = field(default_factory=list)
    outputs: list[np.ndarray] = field(default_factory=list)
    flags: list[tuple[tuple[str, Any], ...]] = field(default_factory=list)  # per captured pair
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
            flags=flag_arguments(frame),
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
        self.flags.append(call.flags)
        self.points += arg.size
        self.captured += 1
        if self.captured % CAPTURE_BLOCK == 0:
            self.stride *= 2

    def behaviours(self) -> list[tuple[tuple[str, Any], ...]]:
        """The distinct flag combinations seen, the plain call (no flags) first."""
        seen = list(dict.fromkeys(self.flags))
        return sorted(seen, key=lambda flags: (len(flags) > 0, seen.index(flags)))

    def _selected(self, behaviour: str | None) -> list[int]:
        """Indices of the captured pairs of one behaviour.

        ``None``: the plain call (flags at their defaults), else the most common one;
        ``"derivative"``: the flagged call whose flag names a derivative
        (``deriv=True``), else any flagged one, else the plain call; or a label as
        :func:`behaviour_label` writes it.
        """
        kinds = self.behaviours()
        if not kinds:
            return []
        if behaviour is None:
            chosen = kinds[0]
        elif behaviour == "derivative":
            flagged = [k for k in kinds if k]
            named = [k for k in flagged if any(_says_derivative(name) and value for name, value in k)]
            chosen = (named or flagged or kinds)[0]
        else:
            matching = [k for k in kinds if behaviour_label(k) == behaviour]
            if not matching:
                return []
            chosen = matching[0]
        return [i for i, flags in enumerate(self.flags) if flags == chosen]

    def pairs(self, samples_axis: int = 0, behaviour: str | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """The captured (input, output) values of one behaviour, stacked along the sample axis.

        Calls of different shapes are flattened together (elementwise functions do not
        care); for row-wise functions such as softmax, the calls of the most common
        shape are stacked as (samples, units). ``behaviour``: see :meth:`_selected`.
        """
        groups = self.call_groups(behaviour)
        if not groups:
            return None
        zs = [z for group in groups for z in group[0]]
        outs = [a for group in groups for a in group[1]]
        if zs[0].ndim == 2:
            return np.concatenate(zs, axis=samples_axis), np.concatenate(outs, axis=samples_axis)
        return np.concatenate([z.reshape(-1) for z in zs]), np.concatenate([a.reshape(-1) for a in outs])

    def call_groups(self, behaviour: str | None = None, n_groups: int = 1
                    ) -> list[tuple[list[np.ndarray], list[np.ndarray]]]:
        """The calls of one behaviour (of their most common shape) in call order, split into
        up to `n_groups` consecutive groups of (inputs, outputs): early, middle, late."""
        chosen = self._selected(behaviour)
        if not chosen:
            return []
        shapes: dict[tuple, int] = {}
        for i in chosen:
            shapes[self.inputs[i].shape] = shapes.get(self.inputs[i].shape, 0) + 1
        common = max(shapes, key=shapes.get)
        keep = [i for i in chosen if self.inputs[i].shape == common]
        n_groups = max(1, min(n_groups, len(keep)))
        return [([self.inputs[i] for i in part], [self.outputs[i] for i in part])
                for part in np.array_split(np.asarray(keep), n_groups) if len(part)]

    def identify(self, role: str, samples_axis: int = 0, *, behaviour: str | None = None,
                 tol: float | None = None, n_groups: int = 3, min_calls: int = MIN_CALLS_TO_NAME):
        """Identify one behaviour from its pairs, named only when several calls show it consistently.

        The pairs of all calls are identified together (the most evidence); a name needs
        at least `min_calls` captured calls (one call is one step's worth), and then each
        third of the calls (early, middle, late) is identified on its own. A group that
        names a *different* function than the whole means the behaviour changed between
        steps (or two uses were mixed): nothing is named then, and the description says
        what each group showed.
        """
        from .. import identify

        pairs = self.pairs(samples_axis, behaviour)
        if pairs is None:
            return None
        whole = identify.identify_pairs(pairs[0], pairs[1], role, samples_axis=samples_axis, tol=tol)
        if whole.identified is None:
            return whole
        calls = sum(len(group[0]) for group in self.call_groups(behaviour))
        if calls < min_calls:
            return identify.unconfirmed(
                whole, f"looks like {whole.identified} in {calls} call(s); {min_calls} are needed to name it")
        names = []
        for zs, outs in self.call_groups(behaviour, n_groups):
            if zs[0].ndim == 2:
                z, a = np.concatenate(zs, axis=samples_axis), np.concatenate(outs, axis=samples_axis)
            else:
                z, a = np.concatenate([v.reshape(-1) for v in zs]), np.concatenate([v.reshape(-1) for v in outs])
            part = identify.identify_pairs(z, a, role, samples_axis=samples_axis, tol=tol)
            names.append(part.identified)
        differing = [name for name in names if name is not None and name != whole.identified]
        if not differing:
            return whole
        shown = ", ".join(name or "unclear" for name in names)
        return identify.unconfirmed(whole, f"behaves differently from call to call (early to late: {shown})")


def _says_derivative(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _DERIVATIVE_WORDS) or lowered in ("d", "der", "derivate")


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
        # a few observed (z, f(z)) pairs, so a reader can check a mismatch by hand
        "samples": [[_float(z), _float(a)] for z, a in getattr(ident, "samples", ())],
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
