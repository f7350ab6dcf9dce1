"""The training data of an observed program: inputs, targets, and a fixed probe batch.

Once the layer chain is known, the network's input for one step is known too (the
chain's first ``x``). The whole training set is then the array, somewhere in the
program, that holds those inputs among its rows (or columns), and the targets are
an array with one entry per sample of it that stays unchanged while training runs.

:class:`DataSet` answers "which samples are these?" for any batch (so targets can
be looked up for per-sample and mini-batch training alike), and picks a fixed probe
batch of at most 64 samples. :class:`ProbeOutputs` keeps the latest output the
network gave each probe sample, whichever step computed it: that is how XOR's four
inputs get four outputs even when training sees one sample per step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from .. import probes
from .arrays import Found
from .chain import rows
from .naming import named_as

PROBE_SIZE = 64
_NAME_HINTS_X = ("x", "input", "data", "feature", "sample", "train")
_NAME_HINTS_Y = ("y", "target", "label", "expected", "output", "truth", "t", "class")


def _hint(name: str, hints: tuple[str, ...]) -> int:
    low = name.lower()
    return sum(1 for h in hints if h in low)


@dataclass
class Targets:
    found: Found
    samples: str                   # "rows" or "cols" (or "flat" for 1-D)
    raw_rows: np.ndarray           # (n,) or (n, k) as the code holds them, samples first

    @property
    def name(self) -> str:
        return self.found.name


@dataclass
class DataSet:
    X: Found
    samples: str                   # where X keeps its samples: "rows" or "cols"
    X_rows: np.ndarray             # float64 view/copy, (n, n_in)
    targets: list[Targets] = field(default_factory=list)   # candidates, best first
    _index: dict | None = None
    _proj: np.ndarray | None = None
    _order: np.ndarray | None = None
    _keys: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.X_rows.shape[0])

    # -- which samples is a batch? ------------------------------------------------------
    def indices_of(self, batch_rows: np.ndarray) -> np.ndarray | None:
        """Indices into X of each row of a batch (rows form), or None if a row is not in X."""
        batch = np.asarray(batch_rows, dtype=np.float64)
        if batch.ndim != 2 or batch.shape[1] != self.X_rows.shape[1]:
            return None
        if batch.shape[0] == self.n and (batch is self.X_rows or np.array_equal(batch, self.X_rows)):
            return np.arange(self.n)
        if self.n <= 200_000 and batch.shape[0] <= 8:
            index = self._row_index()
            out = [index.get(row.tobytes()) for row in batch]
            return None if any(i is None for i in out) else np.asarray(out, dtype=np.int64)
        return self._by_projection(batch)

    def _row_index(self) -> dict:
        if self._index is None:
            index: dict[bytes, int] = {}
            for i, row in enumerate(np.ascontiguousarray(self.X_rows)):
                index.setdefault(row.tobytes(), i)
            self._index = index
        return self._index

    def _by_projection(self, batch: np.ndarray) -> np.ndarray | None:
        # A random projection turns each row into one number; matching numbers are then
        # confirmed row by row. O(n log n) once, O(b log n) per batch.
        if self._proj is None:
            self._proj = np.random.default_rng(7).standard_normal(self.X_rows.shape[1])
            keys = self.X_rows @ self._proj
            self._order = np.argsort(keys, kind="stable")
            self._keys = keys[self._order]
        q = batch @ self._proj
        pos = np.searchsorted(self._keys, q)
        out = np.empty(len(q), dtype=np.int64)
        for j, p in enumerate(pos):
            hit = -1
            for k in (p, p - 1, p + 1):
                if 0 <= k < self.n:
                    i = self._order[k]
                    if np.array_equal(self.X_rows[i], batch[j]):
                        hit = i
                        break
            if hit < 0:
                return None
            out[j] = hit
        return out

    # -- probe batch ------------------------------------------------------------------------
    def probe_indices(self, size: int = PROBE_SIZE) -> np.ndarray:
        labels = None
        if self.targets:
            raw = self.targets[0].raw_rows
            flat = raw.reshape(len(raw), -1)
            if flat.shape[1] == 1 and np.all(flat == np.round(flat)) and len(np.unique(flat)) <= 50:
                labels = flat[:, 0]
            elif flat.shape[1] > 1 and np.isin(flat, (0.0, 1.0)).all():
                labels = flat.argmax(axis=1)
        # Distinct inputs only: the same input twice would show the same output twice.
        _, first = np.unique(np.ascontiguousarray(self.X_rows), axis=0, return_index=True)
        distinct = np.sort(first)
        chosen = probes.probe_batch_indices(None if labels is None else labels[distinct], len(distinct), size)
        return distinct[chosen]


MAX_STACKED = 2048   # pairs of a list of (x, y) samples stacked into a data set


def stacked_pairs(arrays: Iterable[Found], ctx: Any) -> list[Found]:
    """Data kept as a list of samples (``[(x, y), ...]``, column vectors or rows) as arrays:
    the list's first MAX_STACKED items stacked, one array per position in the pair, each
    sample flattened into a row. Made once, when the data set is looked for."""
    from .arrays import Path

    out, done = [], set()
    for f in arrays:
        steps = f.path.steps
        cut = next((i for i, (kind, _) in enumerate(steps) if kind == "sample"), None)
        if cut is None:
            continue
        container = Path(f.path.root, steps[:cut])
        if container.key() in done:
            continue
        done.add(container.key())
        items = container.resolve(ctx)
        if not isinstance(items, (list, tuple)) or not items:
            continue
        first = items[0]
        width = len(first) if isinstance(first, (list, tuple)) else None
        for position in range(width or 1):
            try:
                column = [np.asarray(item[position] if width else item) for item in items[:MAX_STACKED]]
                if not all(c.shape == column[0].shape and c.dtype.kind in "fiub" for c in column):
                    continue
                stacked = np.stack([c.reshape(-1) for c in column]).astype(np.float64)
            except (TypeError, IndexError, ValueError):
                continue
            name_steps = steps[:cut] + (("stack", position),) if width else steps[:cut]
            out.append(Found(Path(f.path.root, name_steps), stacked))
    return out


def find_dataset(
    arrays: Iterable[Found],
    batch: np.ndarray,
    batch_samples: str,
    *,
    exclude: set[int],
    changing: set[int],
    targets_named: str | None = None,
) -> DataSet | None:
    """The array holding the training inputs, with its target candidates (None if not found).

    `batch` is the chain's input at a forward pass (rows form); `exclude` are the
    ids of the chain's own arrays (parameters, activations); `changing` the ids of
    arrays seen to change while training ran (targets do not).
    """
    items = [f for f in arrays if f.array.ndim in (1, 2) and f.array.size > 0]
    n_in = batch.shape[1]
    first = batch[0]
    best: tuple | None = None
    for f in items:
        a = f.array
        if id(a) in changing or id(a) in exclude:
            continue  # a data set stays put while the network trains
        if a.ndim == 1 and not (batch_samples == "vec" and n_in == 1):
            continue  # a 1-D data set holds one feature per sample: a single-input model's
        for samples in (("vec",) if a.ndim == 1 else ("rows", "cols")):
            if (samples == "rows" and a.shape[1] != n_in) or (samples == "cols" and a.shape[0] != n_in):
                continue
            Xr = rows(a, samples)
            with np.errstate(all="ignore"):
                contains = bool(np.any(np.all(Xr == first, axis=1)))
            if not contains:
                continue
            score = (Xr.shape[0], samples == batch_samples, _hint(f.name, _NAME_HINTS_X), -len(f.name))
            if best is None or score > best[0]:
                best = (score, f, samples, Xr)
    if best is None:
        return None
    _, X, samples, X_rows = best
    data = DataSet(X=X, samples=samples, X_rows=X_rows)
    data.targets = _targets_for(items, data, exclude | {id(X.array)}, changing)
    if targets_named:
        # The user named the targets: those first (and only those, if they fit the data).
        named = [t for t in data.targets if named_as(t.found.name, targets_named)]
        data.targets = named or data.targets
    return data


def _targets_for(items: list[Found], data: DataSet, exclude: set[int], changing: set[int]) -> list[Targets]:
    n = data.n
    scored = []
    for f in items:
        a = f.array
        if id(a) in exclude or id(a) in changing:
            continue
        options = []
        if a.ndim == 1 and a.shape[0] == n:
            options.append(("flat", a))
        elif a.ndim == 2:
            if a.shape[0] == n:
                options.append(("rows", a))
            if a.shape[1] == n and a.shape[0] != n:
                options.append(("cols", a.T))
        for samples, raw in options:
            # Same orientation as the inputs, and target-like names, rank first.
            score = (samples in (data.samples, "flat"), _hint(f.name, _NAME_HINTS_Y), -len(f.name))
            scored.append((score, Targets(found=f, samples=samples, raw_rows=np.asarray(raw))))
    scored.sort(key=lambda item: item[0], reverse=True)
    return [t for _, t in scored]


def as_target_matrix(raw_rows: np.ndarray, n_out: int, encoding: str) -> np.ndarray | None:
    """Targets (n, k) as the loss sees them.

    encoding "as_is": the values as held (a column of labels stays a column, and
    broadcasts against several outputs as numpy would); "onehot": integer labels in
    one column become one-hot rows of width `n_out`.
    """
    Y = np.asarray(raw_rows, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y.reshape(-1, 1)
    if encoding == "onehot":
        if Y.shape[1] != 1 or n_out < 2:
            return None
        labels = Y[:, 0]
        if not np.all(labels == np.round(labels)) or labels.min() < 0 or labels.max() >= n_out:
            return None
        return np.eye(n_out)[labels.astype(np.int64)]
    if Y.shape[1] not in (1, n_out):
        return None   # neither a column nor one value per output: not what the outputs meet
    return Y


class ProbeOutputs:
    """The latest output for each probe input (NaN until the network has seen it)."""

    def __init__(self, data: DataSet, indices: np.ndarray, n_out: int):
        self.indices = indices
        self.inputs = data.X_rows[indices]
        self.outputs = np.full((len(indices), n_out), np.nan)
        self.seen = np.zeros(len(indices), dtype=bool)   # NaN rows not yet seen are no NaN outputs
        self._slot = {int(i): k for k, i in enumerate(indices)}

    def update(self, batch_indices: np.ndarray, out_rows: np.ndarray) -> None:
        if out_rows.ndim != 2 or out_rows.shape[1] != self.outputs.shape[1] or len(batch_indices) != len(out_rows):
            return  # not this network's output for this batch
        for row, i in enumerate(batch_indices):
            k = self._slot.get(int(i))
            if k is not None:
                self.outputs[k] = out_rows[row]
                self.seen[k] = True
