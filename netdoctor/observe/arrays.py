"""Finding the arrays of a running program, and reaching them again later.

A user's network keeps its arrays wherever it likes: attributes of ``self``
(``self.W1``), dicts and lists inside it (``self.weights_dict[1]``,
``self.weights[0]``), module globals (``W1``), locals of the function that runs
the training loop (``hidden_weights`` inside ``train()``), or a dict passed from
``main()`` to ``forward(params, x)``.

:func:`discover` walks such places (bounded in depth and breadth) and returns each
distinct array once, with a :class:`Path` that says how to reach it *again*: not
the array itself (code like ``W = W - lr * g`` replaces it every step) but the
way to it, e.g. "attribute ``weights_dict`` of the watched object, item ``1``".

Arrays are never copied here; :func:`fingerprint` gives a cheap digest that
changes when an array is replaced or modified in place.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np

# Breadth and depth limits of a walk: a network's arrays sit a few levels deep at most,
# and a container with thousands of entries holds data, not layers.
MAX_DEPTH = 4
MAX_ITEMS = 64
MAX_ARRAYS = 400
# A sequence longer than this is a data set (a list of samples or (x, y) pairs), not a
# network's layers: only its first DATA_HEAD items are looked at. Without this cap a
# 50,000-pair training list would fill MAX_ARRAYS before the forward pass's arrays are
# reached, and walking it at every event would cost more than the training.
LONG_SEQUENCE = 16
DATA_HEAD = 2
# Arrays up to this many elements are digested in full (and may be copied when a
# comparison needs them); bigger ones by a fixed sample of entries.
SMALL = 4096
_SAMPLE = np.random.default_rng(1234).integers(0, 2**62, size=48, dtype=np.int64)


# --- where an array lives -----------------------------------------------------------------


@dataclass(frozen=True)
class Root:
    """The start of a path.

    kind: "object" (an object we hold: the watched model, a ``self``),
          "globals" (variable `label` of a module's namespace `obj`), "local" (a local variable of the
          innermost running frame of ``code``), "result" (what ``code`` returned,
          only at its return) or "arg" (an argument of ``code``, at its call).
    """

    kind: str
    label: str                 # "" for the watched object itself; a variable name otherwise
    code: Any = None           # the code object for "local"/"result"/"arg" roots
    obj: Any = None            # the object for "object"/"globals" roots (held strongly)

    def key(self) -> tuple:
        target = id(self.obj) if self.kind in ("object", "globals") else id(self.code)
        return (self.kind, self.label, target)


@dataclass(frozen=True)
class Path:
    root: Root
    # ("attr", name) / ("item", key) / ("sample", index) / ("column", j or (j1, j2, ...)):
    # a column (or columns) of a 2-D array, as code that keeps inputs and targets side by
    # side in one table reads them (``x = points[i, 0]``).
    steps: tuple[tuple[str, Any], ...] = ()

    @property
    def in_data(self) -> bool:
        """Whether the path goes through one sample of a data set (a long list): such a
        name reaches one fixed sample, not the array a step is working on."""
        return any(kind == "sample" for kind, _ in self.steps)

    @property
    def name(self) -> str:
        """How the user would write it: ``weights_dict[1]``, ``W1``, ``params['W1']``."""
        text = self.root.label
        if self.root.kind == "result":
            text = f"{_code_name(self.root.code)}()"
        for kind, key in self.steps:
            if kind == "attr":
                text = f"{text}.{key}" if text else str(key)
            elif kind == "stack":
                text = f"{text}[:][{key!r}]"     # position `key` of every sample in a list
            elif kind == "column":
                text = f"{text}[:, {key if isinstance(key, int) else list(key)}]"
            else:
                text = f"{text}[{key!r}]"
        return text

    def key(self) -> tuple:
        return (self.root.key(), self.steps)

    def resolve(self, ctx: "Context") -> Any:
        """The value at this path now, or None when it cannot be reached."""
        value = ctx.root_value(self.root)
        for kind, key in self.steps:
            if value is None or kind == "stack":
                return None   # a stacked list of samples is made once, not reached again
            try:
                if kind == "column":
                    value = np.asarray(value)[:, key if isinstance(key, int) else list(key)]
                    continue
                value = getattr(value, key) if kind == "attr" else value[key]   # item, sample
            except Exception:  # noqa: BLE001 - a path may stop existing; that is an answer
                return None
        return value

    def array(self, ctx: "Context") -> np.ndarray | None:
        value = self.resolve(ctx)
        if isinstance(value, np.ndarray):
            return value
        if isinstance(value, (list, tuple)):
            return list_box(self, value)
        return scalar_box(self, value)


def _code_name(code: Any) -> str:
    return getattr(code, "co_qualname", None) or getattr(code, "co_name", "?")


class Context:
    """What roots mean at one moment: the running frame, and what it returned."""

    __slots__ = ("frame", "result", "_locals_cache")

    def __init__(self, frame: types.FrameType | None, result: Any = None):
        self.frame = frame
        self.result = result
        self._locals_cache: dict[int, dict] = {}

    def frame_of(self, code: Any) -> types.FrameType | None:
        frame = self.frame
        depth = 0
        while frame is not None and depth < 64:
            if frame.f_code is code:
                return frame
            frame = frame.f_back
            depth += 1
        return None

    def locals_of(self, code: Any) -> dict | None:
        cached = self._locals_cache.get(id(code))
        if cached is not None:
            return cached
        frame = self.frame_of(code)
        if frame is None:
            return None
        try:
            values = frame.f_locals
        except Exception:  # noqa: BLE001
            return None
        self._locals_cache[id(code)] = values
        return values

    def root_value(self, root: Root) -> Any:
        kind = root.kind
        if kind == "object":
            return root.obj
        if kind == "globals":
            return root.obj.get(root.label)
        if kind in ("local", "arg"):
            values = self.locals_of(root.code)
            return None if values is None else values.get(root.label)
        if kind == "result":
            if self.frame is not None and self.frame.f_code is root.code:
                return self.result
            return None
        return None


# --- scalars ---------------------------------------------------------------------------------
# A parameter may be a plain number (``w = 0.0``, ``self.c = 0``, ``np.random.randn()``). It is
# seen as a 0-d array, one per value: the same array while the number stays, a new one when
# the code rebinds the name to a new number (as ``w -= lr * dw`` does), just as
# ``W = W - lr * dW`` makes a new array. So identities and fingerprints mean the same for
# numbers as for arrays.
_BOXES: dict[tuple, tuple[Any, np.ndarray]] = {}
_MAX_BOXES = 20_000


def is_scalar(value: Any) -> bool:
    return isinstance(value, (float, int, np.floating, np.integer)) and not isinstance(value, (bool, np.bool_))


def scalar_box(path: "Path", value: Any) -> np.ndarray | None:
    """The 0-d array standing for the number `value` found at `path` (None if not a number)."""
    if not is_scalar(value):
        return None
    key = path.key()
    held = _BOXES.get(key)
    if held is not None and (held[0] is value or (type(held[0]) is type(value) and held[0] == value)):
        return held[1]
    if len(_BOXES) > _MAX_BOXES:
        _BOXES.clear()
        _INT_BOX_IDS.clear()
    if held is not None:
        _INT_BOX_IDS.discard(id(held[1]))   # (its id may be reused once the old box is gone)
    box = np.array(float(value))
    _BOXES[key] = (value, box)
    if isinstance(value, (int, np.integer)):
        _INT_BOX_IDS.add(id(box))
    return box


_INT_BOX_IDS: set[int] = set()


def from_int(a: np.ndarray) -> bool:
    """Whether `a` stands for a Python or NumPy integer: a count or a size (``n_hidden = 2``),
    never a weight (weights are drawn as floats; a bias may start as the integer 0)."""
    return id(a) in _INT_BOX_IDS


_LIST_BOXES: dict[tuple, tuple[int, np.ndarray]] = {}
_LIST_BOX_IDS: set[int] = set()
MAX_LIST_NUMBERS = 4096


def from_list(a: np.ndarray) -> bool:
    """Whether `a` stands for a Python list of numbers: data, never a parameter."""
    return id(a) in _LIST_BOX_IDS


def list_box(path: "Path", value: list | tuple) -> np.ndarray | None:
    """Data kept as plain Python lists (``[[0, 0], [0, 1], ...]``, ``[1, 0, 0, 1]``), as the
    array the code will make of it: one array per content, like :func:`scalar_box`."""
    if not value or len(value) > MAX_LIST_NUMBERS:
        return None
    first = value[0]
    if is_scalar(first):
        if not all(is_scalar(v) for v in value):
            return None
        flat = tuple(float(v) for v in value)
        shape: tuple = (len(value),)
    elif isinstance(first, (list, tuple)) and first and all(is_scalar(v) for v in first):
        width = len(first)
        if width * len(value) > MAX_LIST_NUMBERS or not all(
                isinstance(row, (list, tuple)) and len(row) == width and all(is_scalar(v) for v in row)
                for row in value):
            return None
        flat = tuple(float(v) for row in value for v in row)
        shape = (len(value), width)
    else:
        return None
    key, digest = path.key(), hash(flat)
    held = _LIST_BOXES.get(key)
    if held is not None and held[0] == digest:
        return held[1]
    if len(_LIST_BOXES) > _MAX_BOXES:
        _LIST_BOXES.clear()
        _LIST_BOX_IDS.clear()
    box = np.array(flat, dtype=np.float64).reshape(shape)
    if held is not None:
        _LIST_BOX_IDS.discard(id(held[1]))
    _LIST_BOXES[key] = (digest, box)
    _LIST_BOX_IDS.add(id(box))
    return box


# --- walking ---------------------------------------------------------------------------------


@dataclass
class Found:
    path: Path
    array: np.ndarray

    @property
    def name(self) -> str:
        return self.path.name


def is_numeric(a: np.ndarray) -> bool:
    return a.dtype.kind in "fiu" and a.size > 0


class UserTypes:
    """Which objects are the user's own (worth looking inside): instances of classes
    defined in the user's files, plus plain namespaces."""

    def __init__(self, user_files: Iterable[str]):
        self.files = set(user_files)
        self._cache: dict[type, bool] = {}

    def __call__(self, value: Any) -> bool:
        cls = type(value)
        known = self._cache.get(cls)
        if known is None:
            known = self._cache[cls] = self._is_user_class(cls)
        return known

    def _is_user_class(self, cls: type) -> bool:
        if cls is types.SimpleNamespace:
            return True
        if isinstance(cls, type) and cls.__module__ in ("builtins",):
            return False
        for attr in vars(cls).values():
            func = getattr(attr, "__func__", attr)
            code = getattr(func, "__code__", None)
            if code is not None and code.co_filename in self.files:
                return True
        module = sys.modules.get(cls.__module__)
        return getattr(module, "__file__", None) in self.files


# What a module's namespace holds that is never data: modules, classes and functions,
# numpy's included (ufuncs and dispatchers, not Python functions). ``from numpy import *``
# brings 400 of them, and each checkpoint walks the namespace.
_NOT_DATA = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType, np.ufunc, type(np.sum))


def discover(
    sources: Iterable[tuple[Root, Any]],
    is_user_object: Callable[[Any], bool],
    *,
    skip: Callable[[Any], bool] | None = None,
    max_arrays: int = MAX_ARRAYS,
) -> dict[int, Found]:
    """Every distinct numeric array reachable from `sources`, keyed by id.

    Sources are walked in the order given, so the first path to an array names it:
    put the most stable places (the watched object, module globals, the outermost
    frame) first.
    """
    found: dict[int, Found] = {}
    seen: set[int] = set()

    def visit(value: Any, root: Root, steps: tuple, depth: int) -> None:
        if len(found) >= max_arrays:
            return
        if isinstance(value, np.ndarray):
            known = found.get(id(value))
            if known is None:
                if is_numeric(value):
                    found[id(value)] = Found(Path(root, steps), value)
            elif known.path.in_data and not any(kind == "sample" for kind, _ in steps):
                found[id(value)] = Found(Path(root, steps), value)   # the name the step uses
            return
        if is_scalar(value):
            # Numbers held by the program (not loop counters: those are ints in locals).
            if (isinstance(value, (float, np.floating)) or root.kind in ("object", "globals") and steps) \
                    and len(found) < max_arrays:
                box = scalar_box(Path(root, steps), value)
                found.setdefault(id(box), Found(Path(root, steps), box))
            return
        if depth >= MAX_DEPTH or value is None or isinstance(value, (str, bytes, bool)):
            return
        if skip is not None and skip(value):
            return
        ident = id(value)
        if ident in seen:
            return
        if isinstance(value, dict):
            seen.add(ident)
            for count, (key, item) in enumerate(list(value.items())):
                if count >= MAX_ITEMS:
                    break
                if isinstance(key, (str, int)) and not (isinstance(key, str) and key.startswith("__")):
                    visit(item, root, steps + (("item", key),), depth + 1)
        elif isinstance(value, (list, tuple)):
            seen.add(ident)
            if value and (is_scalar(value[0]) or (isinstance(value[0], (list, tuple)) and value[0]
                                                 and is_scalar(value[0][0]))):
                box = list_box(Path(root, steps), value)
                if box is not None and len(found) < max_arrays:
                    found.setdefault(id(box), Found(Path(root, steps), box))
                return
            # A long list, or a list of (x, y) pairs of any length (a mini-batch), holds samples.
            pairs = isinstance(value[0], tuple) and bool(value[0]) and isinstance(value[0][0], np.ndarray) \
                if value else False
            kind = "sample" if len(value) > LONG_SEQUENCE or pairs else "item"
            for index, item in enumerate(value[:DATA_HEAD if kind == "sample" else MAX_ITEMS]):
                visit(item, root, steps + ((kind, index),), depth + 1)
        elif is_user_object(value):
            seen.add(ident)
            try:
                attrs = vars(value)
            except TypeError:
                return
            for count, (key, item) in enumerate(list(attrs.items())):
                if count >= MAX_ITEMS:
                    break
                if not key.startswith("__"):
                    visit(item, root, steps + (("attr", key),), depth + 1)

    for root, value in sources:
        if root.kind == "globals":
            # A module's namespace: its names are top-level variables, not dict items.
            seen.add(id(value))
            for key, item in list(value.items()):
                if not isinstance(key, str) or key.startswith("__"):
                    continue
                if isinstance(item, _NOT_DATA):
                    continue
                # The path is just the variable's name, written bare.
                visit(item, Root("globals", key, obj=value), (), 1)
        else:
            visit(value, root, (), 0)
    return found


# --- digests -------------------------------------------------------------------------------


def fingerprint(a: np.ndarray) -> tuple:
    """A cheap digest that changes when `a` is replaced or modified in place.

    Small arrays are hashed in full; big ones by a fixed sample of entries (an SGD
    step changes nearly every entry of a weight matrix, so a sample sees it).
    """
    if a.size <= SMALL:
        try:
            return (id(a), a.shape, hash(a.tobytes()))
        except Exception:  # noqa: BLE001
            return (id(a), a.shape, None)
    idx = _SAMPLE % a.size
    return (id(a), a.shape, hash(a.reshape(-1)[idx].tobytes()) if a.flags.c_contiguous
            else hash(a.flat[idx].tobytes()))


def small_copy(a: np.ndarray, limit: int = SMALL) -> np.ndarray | None:
    """A float64 copy of a small array (None for big ones: those are summarised, not kept)."""
    if a.size > limit:
        return None
    return np.array(a, dtype=np.float64, copy=True)
