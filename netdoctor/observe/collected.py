"""Targets found where a step uses them, and a data set collected from the steps.

Not every program keeps a training set. Per-sample code hands one sample at a time
to its step (``for x in xs: neuron.train(x, 3 * x)``), and some code makes its data
afresh at every step (``net.train([x], [np.tanh(x)])``): no array holds the targets
of more than one step, so :func:`.data.find_dataset` finds none.

The step itself still shows its targets: it compares them with its output to form
the error, ``E = T - O`` or ``E = O - T``, and the array T is then the step's
targets. :func:`step_targets` finds T among the arrays seen during one step (the
error E is formed after the forward pass). Once that place is known, the observer
reads the inputs and targets of each step there, and :class:`StepPool` gathers them
into a :class:`.data.DataSet` "collected from steps", which serves as the data set:
the probe batch, the loss, and the data checks (ND601, ND603).
"""

from __future__ import annotations

import numpy as np

from .arrays import Found, Path, Root, from_list
from .chain import rows
from .data import DataSet, Targets

MAX_POOL = 4096            # distinct (input, target) samples kept
MAX_CANDIDATES = 64        # arrays of the output's shape compared with one another
PROBE_POOL = 64            # samples collected before the probe batch is taken from the pool
PROBE_STEPS = 32           # ... or steps seen (code that shows only a few distinct samples)


def step_targets(out_rows: np.ndarray, samples: str, arrays: list[Found], exclude: set[tuple]) -> list[Found]:
    """The arrays T that the step compares with its output O (rows form) when it forms
    the error: some other array E equals T - O or O - T. Arrays first, then Python lists
    (the same targets before the code made an array of them); empty if none is seen.

    `exclude` holds the path keys of the network's own arrays (parameters, inputs,
    activations): the output minus an activation is no error."""
    O = np.asarray(out_rows, dtype=np.float64)
    if O.size == 0 or not np.all(np.isfinite(O)):
        return []
    candidates = []
    for f in arrays:
        a = f.array
        if f.path.key() in exclude or a.dtype.kind not in "fiu" or a.size != O.size or f.path.in_data:
            continue
        r = rows(a, samples)
        if r.shape == O.shape and np.all(np.isfinite(r)):
            candidates.append((f, r))
        if len(candidates) >= MAX_CANDIDATES:
            break
    if len(candidates) < 2:
        return []
    scale = max(float(np.max(np.abs(O))), 1e-12)
    # All candidates at once (one comparison per target, not one per pair: a step shows
    # dozens of arrays of the output's shape, and np.allclose costs more than the algebra).
    C = np.stack([r for _, r in candidates])
    copies_output = _close(C, O, rtol=1e-9, atol=0) | _close(C, -O, rtol=1e-9, atol=0)
    out = []
    for index, (t, T) in enumerate(candidates):
        # (A target of all zeros makes the "error" a copy of the output: no evidence.)
        if not np.any(T) or np.array_equal(T, O):
            continue
        D = T - O
        if not np.any(D):
            continue
        tol = 1e-6 * max(scale, float(np.max(np.abs(T))))
        errors = (_close(C, D, rtol=1e-6, atol=tol) | _close(C, -D, rtol=1e-6, atol=tol)) & ~copies_output
        errors[index] = False
        if errors.any():
            out.append(t)
    return sorted(out, key=lambda f: from_list(f.array))


def _close(stack: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """For each array in `stack`, whether it is np.allclose to `b` (the same tolerance rule)."""
    within = np.abs(stack - b) <= atol + rtol * np.abs(b)
    return within.reshape(len(stack), -1).all(axis=1)


class StepPool:
    """Inputs and targets read at each step, kept in order of arrival (append only, so
    an index into one data set made from the pool stays valid in every later one)."""

    def __init__(self, inputs_name: str, targets: Path):
        self.targets = targets
        self._x_root = Root("collected", f"{inputs_name} (collected from steps)")
        self._y_root = Root("collected", f"{targets.name} (collected from steps)")
        self._x: list[np.ndarray] = []
        self._y: list[np.ndarray] = []
        self._seen: set[bytes] = set()
        self._dataset: DataSet | None = None

    def __len__(self) -> int:
        return len(self._x)

    def add(self, x_rows: np.ndarray, y_rows: np.ndarray | None) -> bool:
        """Add one forward pass's samples with their targets (rows form); False when the
        targets do not fit the inputs (one row per sample)."""
        if y_rows is None:
            return False
        x_rows, y_rows = np.asarray(x_rows, dtype=np.float64), np.asarray(y_rows, dtype=np.float64)
        if x_rows.ndim != 2 or y_rows.ndim != 2 or len(x_rows) != len(y_rows):
            return False
        if self._x and (x_rows.shape[1] != self._x[0].shape[0] or y_rows.shape[1] != self._y[0].shape[0]):
            return False
        for x, y in zip(x_rows, y_rows):
            if len(self._x) >= MAX_POOL:
                break
            key = x.tobytes() + y.tobytes()
            if key in self._seen:
                continue
            self._seen.add(key)
            self._x.append(x.copy())
            self._y.append(y.copy())
            self._dataset = None
        return True

    def ready(self, steps: int) -> bool:
        """Whether the pool is worth a probe batch after `steps` steps: enough samples, or
        enough steps that more are not coming (code that cycles over a few fixed samples)."""
        return len(self._x) >= PROBE_POOL or (steps >= PROBE_STEPS and len(self._x) > 0)

    def dataset(self) -> DataSet | None:
        """The samples collected so far as a data set (None while it is empty)."""
        if not self._x:
            return None
        if self._dataset is None:
            X = np.stack(self._x)
            Y = np.stack(self._y)
            data = DataSet(X=Found(Path(self._x_root), X), samples="rows", X_rows=X)
            data.targets = [Targets(found=Found(Path(self._y_root), Y), samples="rows", raw_rows=Y)]
            self._dataset = data
        return self._dataset

    def targets_now(self, ctx, samples: str, n: int) -> np.ndarray | None:
        """The targets the step holds now, rows form, if they are one row per sample of a
        batch of `n`."""
        arr = self.targets.array(ctx)
        if arr is None or arr.dtype.kind not in "fiub":
            return None
        Y = rows(arr, samples)
        return Y if len(Y) == n else None
