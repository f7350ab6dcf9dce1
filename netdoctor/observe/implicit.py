"""Models whose output the code never keeps, recognised from their updates.

Linear and logistic regression are often written with the prediction inside the
gradient expression, ``grad_m = -2 * np.mean(X * (Y - (m * X + c)))``, or point by
point in a loop (``b_grad += -(2/N) * (y - (m * x + b))``). No array ever holds the
output, so no forward pass can be seen (see :mod:`.chain`). The updates still show
the model. Between two visits of one place in the training loop the parameters move
by -lr times the gradient of the loss, taken at their values of the first visit.

A *hypothesis* says which arrays are the weight and the bias, which unchanging data
are the inputs and which the targets, and whether the output is linear or a sigmoid
trained on MSE or cross-entropy. Its gradient can be computed from the data. A
hypothesis is taken when that gradient is parallel to the parameters' change (one
rate for weight and bias together) at CONFIRMATIONS successive steps, with the same
rate each time. A one-parameter model (``w * x``, no bias) has no direction to
compare, so only the constant rate speaks for it, over more steps.

Per-sample code (``for x in xs: train(x, 3 * x)``) holds no data set at all: its one
sample is a local of the step. The design is then that sample, read from the
program at one of the two visits (the update between them used it): the change
of one visit to the next is -lr times the gradient on that single sample.

Code whose gradient is wrong (a missing factor on the bias, a derivative left out)
matches no hypothesis: such a model stays unobserved rather than wrongly identified.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from .arrays import Found, Path, fingerprint
from .chain import ChainSpec, LayerSpec, _looks_like_setting, _looks_like_weight

MAX_PARAM_SIZE = 4096      # a weight vector of at most this many inputs
MIN_SAMPLES = 4            # data with fewer samples than this are not a training set
MAX_COLUMNS = 8            # a table of inputs and targets side by side has at most this many columns
MAX_PLACES = 256           # places (lines, calls) remembered while no model shows
MAX_HYPOTHESES = 400       # hypotheses tried at one change
# Hypotheses are made afresh at most this many times at one place: a place inside a
# per-sample loop sees its arrays change at every visit, but a place whose visits are
# one step apart shows a model within its first few steps.
ATTEMPTS_PER_PLACE = 6
CONFIRMATIONS = 3          # steps at which a hypothesis must hold (the first included)
SCALAR_CONFIRMATIONS = 4   # ... for a model of one number (no direction to compare)
COS_MIN = 1 - 1e-6         # |cosine| between the change and the gradient
RATE_RTOL = 1e-5           # the rate's relative drift between steps

# (output function, loss) pairs tried; the loss names are those of :mod:`netdoctor.losses`.
FORMS = (("identity", "mse"), ("sigmoid", "bce"), ("sigmoid", "mse"))
ORDERS = ("joint", "w_first", "b_first")   # see Hypothesis.order


@dataclass
class Hypothesis:
    w: Path
    b: Path | None
    x: Path
    y: Path
    op: str                  # how the weight meets the input (see chain.OPS)
    function: str            # "identity" or "sigmoid"
    loss: str                # "mse" or "bce"
    w_shape: tuple
    b_shape: tuple | None
    # When the bias's gradient is taken: "joint" (both gradients at the old values), or
    # after the weight's update ("w_first": ``m -= ...`` runs before ``c``'s gradient is
    # formed, so ``c`` sees the new ``m``), or the other way round ("b_first").
    order: str = "joint"
    # Where the inputs and targets are read: "store" (a data set unchanged between visits,
    # read now), or one sample held by the step, read at the visit "now" or "before".
    when: str = "store"
    rate: float = 0.0
    held: int = 1            # steps at which it held
    # The parameters' values ([w] or [w, b]) at each visit since the first step it explains:
    # the steps seen while the model was being recognised are recorded, not lost.
    history: list[list[np.ndarray]] = field(default_factory=list)
    # For a one-sample design: the (inputs, targets) rows each step of `history` used.
    samples: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)

    def values(self, snap: "_Snapshot") -> list[np.ndarray]:
        return [snap.small[self.w.key()]] + ([snap.small[self.b.key()]] if self.b is not None else [])

    def key(self) -> tuple:
        return (self.w.key(), self.b.key() if self.b else None, self.x.key(), self.y.key(), self.op,
                self.function, self.loss, self.order, self.when)

    def spec(self) -> ChainSpec:
        layer = LayerSpec(W=self.w, op=self.op, x=self.x, b=self.b,
                          function=None if self.function == "identity" else self.function,
                          w_shape=self.w_shape, b_shape=self.b_shape, computed=True)
        return ChainSpec(layers=[layer])


@dataclass
class ImplicitModel:
    """A model recognised from its updates, and where one step of it is counted."""

    chain: ChainSpec
    site: tuple              # the place whose visits are one step apart
    targets: Path
    loss: str
    history: list[list[np.ndarray]]   # parameter values at each visit of the site, oldest first
    # One-sample designs: the (inputs, targets) rows of each step in `history` (else empty).
    samples: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


@dataclass
class _Snapshot:
    small: dict[tuple, np.ndarray] = field(default_factory=dict)   # path key -> copy (parameters)
    digests: dict[tuple, tuple] = field(default_factory=dict)      # path key -> (shape, digest)
    found: dict[tuple, Found] = field(default_factory=dict)
    number: int = 0          # which visit of its place


class ImplicitSearch:
    """Remembers the program's small arrays at each place, and tries hypotheses when a
    place is visited again with parameters moved."""

    def __init__(self) -> None:
        self._last: dict[tuple, _Snapshot] = {}
        self._pending: dict[tuple, list[Hypothesis]] = {}
        self._attempts: dict[tuple, int] = {}
        self.tried = 0

    def visit(self, key: tuple, found: dict[int, Found], number: int,
              not_data: tuple[set[tuple], ...] = (), not_samples: tuple[set[tuple], ...] = ()
              ) -> ImplicitModel | None:
        """Look at the program at the `number`-th visit of place `key`; arrays whose path keys
        are in one of the `not_data` sets are never taken for a data set's inputs or targets,
        those in one of the `not_samples` sets never for one step's sample."""
        now = _snapshot(found)
        now.number = number
        before = self._last.get(key)
        if before is None and len(self._last) >= MAX_PLACES:
            return None
        self._last[key] = now
        if before is None or before.number != number - 1:
            return None   # (visits in between were not looked at: more than one step apart)
        moved = [k for k, a in now.small.items() if k in before.small and a.dtype.kind == "f"
                 and before.small[k].shape == a.shape and not np.array_equal(before.small[k], a)]
        if not moved:
            return None
        pending = self._pending.get(key)
        if pending:
            kept = []
            for h in pending:
                design = _design(h, before, now)
                rate = None if design is None else _rate(h, before, now, *design)
                if rate is not None and _size(h) == 1 and _same_change(h, before, now):
                    rate = None   # (one number moving by a constant step: any constant gradient fits)
                if rate is not None and abs(rate - h.rate) <= RATE_RTOL * abs(h.rate):
                    h.held += 1
                    h.history.append(h.values(now))
                    if h.when != "store":
                        h.samples.append(design)
                    kept.append(h)
                    if h.held >= (SCALAR_CONFIRMATIONS if _size(h) == 1 else CONFIRMATIONS) \
                            and (h.when == "store" or _targets_vary(h.samples)):
                        return ImplicitModel(chain=h.spec(), site=key, targets=h.y, loss=h.loss,
                                             history=h.history, samples=h.samples)
            self._pending[key] = kept
            if kept:
                return None
        attempts = self._attempts[key] = self._attempts.get(key, 0) + 1
        self._pending[key] = self._hypotheses(before, now, moved, not_data, not_samples) \
            if attempts <= ATTEMPTS_PER_PLACE else []
        return None

    # -- hypotheses ------------------------------------------------------------------------------
    def _hypotheses(self, before: _Snapshot, now: _Snapshot, moved: list[tuple],
                    not_data: tuple[set[tuple], ...] = (), not_samples: tuple[set[tuple], ...] = ()
                    ) -> list[Hypothesis]:
        # (Names that usually hold settings are not ruled out: ``c`` is an intercept in
        # ``m * x + c``, and a decaying rate fails the gradient test by itself.)
        params = [k for k in moved if before.small[k].size <= MAX_PARAM_SIZE and not now.found[k].path.in_data]
        weights = [k for k in params if _vector_like(before.small[k].shape)]
        biases = [k for k in params if before.small[k].size == 1]
        # Data stay put: same values at both visits (a table rebuilt each call counts as put).
        data = [f for k, f in now.found.items()
                if k not in moved and not any(k in keys for keys in not_data)
                and before.digests.get(k) == now.digests.get(k)
                and f.array.ndim in (1, 2) and f.array.shape[0] >= 1 and f.array.size >= MIN_SAMPLES
                and f.array.dtype.kind in "fiub" and not _looks_like_setting(f.name)]
        # A weight-like name first: the cheap and likely hypotheses are tried first.
        weights.sort(key=lambda k: not _looks_like_weight(now.found[k].name))
        out: list[Hypothesis] = []
        tried = 0
        # Data sets first, for every weight and bias: one step's own sample is looked at only
        # when no data set explains the change (a sample's few numbers fit more by chance).
        for per_sample in (False, True):
            if out:
                break
            tried = self._try(out, tried, per_sample, weights, biases, data, before, now, moved, not_samples)
        self.tried += tried
        return out

    def _try(self, out, tried, per_sample, weights, biases, data, before, now, moved, not_samples) -> int:
        for wk in weights:
            w_shape = before.small[wk].shape
            d = int(np.prod(w_shape)) if w_shape else 1
            for bk in [None] + [k for k in biases if k != wk]:
                designs = _sample_designs(d, w_shape, {wk, bk}, before, now, moved, not_samples) if per_sample \
                    else ((x, y, X, Y, samples, "store") for x, y, X, Y, samples in _designs(d, data))
                for x_path, y_path, X, Y, samples, when in designs:
                    op = _op(w_shape, samples)
                    if op is None:
                        continue
                    for (function, loss), order in itertools.product(FORMS, ORDERS if bk else ORDERS[:1]):
                        # (Cross-entropy's gradient X.T @ (p - y) is tried whatever the targets
                        # hold: code that trains a sigmoid on -1/1 labels is recognised, and
                        # the unreachable targets are then judged.)
                        h = Hypothesis(w=now.found[wk].path, b=now.found[bk].path if bk else None, x=x_path,
                                       y=y_path, op=op, function=function, loss=loss, w_shape=w_shape,
                                       b_shape=before.small[bk].shape if bk else None, order=order,
                                       when=when)
                        tried += 1
                        rate = _rate(h, before, now, X, Y)
                        if rate is not None:
                            h.rate = rate
                            h.history = [h.values(before), h.values(now)]
                            h.samples = [(X, Y)] if when != "store" else []
                            out.append(h)
                    if len(out) > 16 or tried > MAX_HYPOTHESES:
                        return tried
        return tried


def _snapshot(found: dict[int, Found]) -> _Snapshot:
    snap = _Snapshot()
    for f in found.values():
        a = f.array
        if a.dtype.kind not in "fiub" or a.size == 0:
            continue
        key = f.path.key()
        snap.found[key] = f
        if a.size <= MAX_PARAM_SIZE and a.dtype.kind == "f":
            snap.small[key] = np.array(a, dtype=np.float64, copy=True)
        snap.digests[key] = fingerprint(a)[1:]   # values, not identity
    return snap


def _same_change(h: Hypothesis, before: _Snapshot, now: _Snapshot) -> bool:
    """Whether a one-number model moved by the same step as at its previous visit."""
    if len(h.history) < 2:
        return False
    previous = float(h.history[-1][0].reshape(-1)[0] - h.history[-2][0].reshape(-1)[0])
    change = float((now.small[h.w.key()] - before.small[h.w.key()]).reshape(-1)[0])
    return abs(change - previous) <= RATE_RTOL * max(abs(change), 1e-300)


def _vector_like(shape: tuple) -> bool:
    return len(shape) <= 1 or (len(shape) == 2 and min(shape) == 1)


def _size(h: Hypothesis) -> int:
    return (int(np.prod(h.w_shape)) if h.w_shape else 1) + (1 if h.b is not None else 0)


def _op(w_shape: tuple, samples: str) -> str | None:
    """The chain's op for a weight of this shape meeting inputs kept this way."""
    if samples == "vec":
        return "sx" if int(np.prod(w_shape) if w_shape else 1) == 1 and len(w_shape) == 0 else None
    if samples == "rows":
        if len(w_shape) == 1:
            return "xw"
        if len(w_shape) == 2:
            return "xW" if w_shape[1] == 1 else "xWt"
        return None
    if len(w_shape) == 2:   # samples in columns
        return "Wtx" if w_shape[1] == 1 else "Wx"
    return None


def _designs(d: int, data: list[Found]):
    """(input path, target path, X rows (n, d), Y (n,), samples) for d inputs per sample."""
    by_n: dict[int, list[tuple[Path, np.ndarray]]] = {}

    def add_target(path: Path, y: np.ndarray) -> None:
        by_n.setdefault(len(y), []).append((path, y))

    inputs: list[tuple[Path, np.ndarray, str]] = []
    for f in data:
        a = np.asarray(f.array, dtype=np.float64)
        if a.ndim == 1:
            add_target(f.path, a)
            if d == 1:
                inputs.append((f.path, a.reshape(-1, 1), "vec"))
            continue
        n, k = a.shape
        if k == 1:
            add_target(f.path, a[:, 0])
        if n == 1:
            add_target(f.path, a[0])
        if k == d and n >= MIN_SAMPLES:
            inputs.append((f.path, a, "rows"))
        if n == d and k >= MIN_SAMPLES and d >= 1:
            inputs.append((f.path, a.T, "cols"))
        if 2 <= k <= MAX_COLUMNS and k - 1 == d and n >= MIN_SAMPLES:
            # Inputs and targets side by side in one table.
            for j in range(k):
                rest = tuple(c for c in range(k) if c != j)
                y_path = Path(f.path.root, f.path.steps + (("column", j),))
                if d == 1:
                    x_path = Path(f.path.root, f.path.steps + (("column", rest[0]),))
                    yield x_path, y_path, a[:, rest], a[:, j], "vec"
                else:
                    x_path = Path(f.path.root, f.path.steps + (("column", rest),))
                    yield x_path, y_path, a[:, rest], a[:, j], "rows"
    for x_path, X, samples in inputs:
        for y_path, y in by_n.get(X.shape[0], []):
            if y_path.key() == x_path.key():
                continue
            yield x_path, y_path, X, y, samples


MAX_SAMPLE_CANDIDATES = 12   # arrays tried as one sample's inputs (and as its target)
_NAME_HINTS_X = ("x", "input", "feature", "sample")
_NAME_HINTS_Y = ("y", "t", "target", "label", "expected", "truth")


def _sample_designs(d: int, w_shape: tuple, own: set, before: _Snapshot, now: _Snapshot,
                    moved: list[tuple], not_samples: tuple[set[tuple], ...]):
    """One-sample designs (input path, target path, X (1, d), Y (1,), samples, when): a
    sample of d inputs and its one target, both held by the program at one visit.

    Per-sample code makes its sample afresh at each step, so the data change between the
    visits like the parameters do (they are not ruled out as such); the weight and bias
    of the hypothesis, the network's known parameters and names of settings are."""
    if _hidden_weights(now, moved, own):
        return
    for when, snap in (("now", now), ("before", before)):
        xs, ys = [], []
        for k, f in snap.found.items():
            a = f.array
            if k in own or k not in snap.small or any(k in keys for keys in not_samples) \
                    or _looks_like_setting(f.name) or not np.all(np.isfinite(snap.small[k])):
                continue
            if a.size == d and (a.ndim <= 1 or min(a.shape) == 1):
                xs.append(f)
            if a.size == 1:
                ys.append(f)
        xs.sort(key=lambda f: -_hint(f.name, _NAME_HINTS_X))
        ys.sort(key=lambda f: -_hint(f.name, _NAME_HINTS_Y))
        for fx in xs[:MAX_SAMPLE_CANDIDATES]:
            # (A column (d, 1) with a weight (1, d) meets it as W @ x; otherwise as rows.)
            samples = "cols" if fx.array.ndim == 2 and fx.array.shape[1] == 1 and d > 1 else (
                "vec" if d == 1 and len(w_shape) == 0 else "rows")
            X = snap.small[fx.path.key()].reshape(1, d)
            for fy in ys[:MAX_SAMPLE_CANDIDATES]:
                if fy.path.key() == fx.path.key():
                    continue
                yield fx.path, fy.path, X, snap.small[fy.path.key()].reshape(1), samples, when


def _targets_vary(samples: list[tuple[np.ndarray, np.ndarray]]) -> bool:
    """Whether one-sample steps showed at least two targets. A number that stays put while
    the steps go on (a label of another data set, a setting) fits as any model's target:
    the parameters move for their own reasons (an accumulator summing a mini-batch's
    gradients moves "along" those gradients), and a constant target explains nothing."""
    return len({float(np.asarray(Y).reshape(-1)[0]) for _, Y in samples}) >= 2


def _hidden_weights(now: _Snapshot, moved: list[tuple], own: set) -> bool:
    """Whether another lasting array (an attribute, a global) moved that is more than one
    number: a weight matrix of a layer before this one, whose output would then pass
    for one sample's inputs (a network's last layer is no model on its own)."""
    for k in moved:
        f = now.found[k]
        if k not in own and f.path.root.kind in ("object", "globals") and f.array.ndim == 2 \
                and min(f.array.shape) > 1:
            return True
    return False


def _hint(name: str, hints: tuple[str, ...]) -> int:
    leaf = name.rsplit(".", 1)[-1].lower()
    return sum(1 for h in hints if leaf == h or leaf.startswith(h))


def _residual(h: Hypothesis, w: np.ndarray, b: np.ndarray | None, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """d loss / d z per sample, at parameters (w, b)."""
    with np.errstate(all="ignore"):
        z = X @ w.reshape(-1) + (0.0 if b is None else float(b.reshape(-1)[0]))
        if h.function == "sigmoid":
            p = 1.0 / (1.0 + np.exp(-z))
            return p - Y if h.loss == "bce" else (p - Y) * p * (1 - p)
        return z - Y


def _gradient(h: Hypothesis, w0: np.ndarray, b0: np.ndarray | None, X: np.ndarray, Y: np.ndarray,
              w1: np.ndarray | None = None, b1: np.ndarray | None = None) -> np.ndarray:
    """The gradient of a step from (w0, b0), each part taken where the hypothesis's order
    says (w1, b1: the values after the step, for the parts updated one after the other)."""
    r = _residual(h, w0, b0, X, Y)
    with np.errstate(all="ignore"):
        if b0 is None:
            return X.T @ r
        r_w = _residual(h, w0, b1, X, Y) if h.order == "b_first" else r
        r_b = _residual(h, w1, b0, X, Y) if h.order == "w_first" else r
        return np.concatenate([X.T @ r_w, [r_b.sum()]])


def _rate(h: Hypothesis, before: _Snapshot, now: _Snapshot,
          X: np.ndarray | None = None, Y: np.ndarray | None = None) -> float | None:
    """The learning rate by which the change is -rate x this hypothesis's gradient (None if
    the change is not along the gradient)."""
    wk, bk = h.w.key(), h.b.key() if h.b is not None else None
    if wk not in before.small or wk not in now.small or (bk is not None and (bk not in before.small
                                                                          or bk not in now.small)):
        return None
    if X is None or Y is None:
        design = _design(h, before, now)
        if design is None:
            return None
        X, Y = design
    w0, w1 = before.small[wk], now.small[wk]
    b0, b1 = (before.small[bk], now.small[bk]) if bk is not None else (None, None)
    g = _gradient(h, w0, b0, X, Y, w1, b1)
    delta = np.concatenate([(w1 - w0).reshape(-1)] + ([(b1 - b0).reshape(-1)] if bk is not None else []))
    gg, dd = float(g @ g), float(delta @ delta)
    if not (math.isfinite(gg) and math.isfinite(dd)) or gg == 0 or dd == 0:
        return None
    dg = float(delta @ g)
    if g.size > 1 and abs(dg) / math.sqrt(gg * dd) < COS_MIN:
        return None
    return -dg / gg


def _design(h: Hypothesis, before: _Snapshot, now: _Snapshot) -> tuple[np.ndarray, np.ndarray] | None:
    """The hypothesis's inputs (rows) and targets (1-D) for the step from `before` to `now`."""
    if h.when != "store":
        snap = before if h.when == "before" else now
        fx, fy = snap.found.get(h.x.key()), snap.found.get(h.y.key())
        if fx is None or fy is None:
            return None
        d = int(np.prod(h.w_shape)) if h.w_shape else 1
        if fx.array.size != d or fy.array.size != 1:
            return None
        return np.asarray(fx.array, dtype=np.float64).reshape(1, d), np.asarray(fy.array, dtype=np.float64).reshape(1)
    X = _data(h.x, now.found.get(h.x.key()), now, h.op)
    Y = _data(h.y, now.found.get(h.y.key()), now, None)
    if X is None or Y is None or len(X) != len(Y):
        return None
    return X, Y


def _data(path: Path, f: Found | None, now: _Snapshot, op: str | None) -> np.ndarray | None:
    """The array a hypothesis's data path reaches now, in rows form (targets: 1-D)."""
    steps = path.steps
    column = steps[-1][1] if steps and steps[-1][0] == "column" else None
    if column is not None:
        table = now.found.get(Path(path.root, steps[:-1]).key())
        if table is None:
            return None
        a = np.asarray(table.array, dtype=np.float64)
        part = a[:, column if isinstance(column, int) else list(column)]
    elif f is not None:
        part = np.asarray(f.array, dtype=np.float64)
    else:
        return None
    if op is None:   # targets: one per sample
        return part.reshape(-1) if part.ndim == 1 or 1 in part.shape else None
    if op == "sx":
        return part.reshape(-1, 1) if part.ndim == 1 else None
    if op in ("Wtx", "Wx"):
        return part.T if part.ndim == 2 else None
    return part if part.ndim == 2 else None
