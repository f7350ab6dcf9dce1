"""What function is this, really? Match a function's behaviour against a catalogue.

A user's ``activationFunction`` may be named "sigmoid" and be something else: the
seed's ``1/(1+expit(-x))`` maps 0 to 0.667 and never goes below 0.5. We evaluate
the function (or take (z, a) pairs observed while the user's code ran) and compare
it with known functions AND known mistakes, so a report can say "behaves like
1/(1+sigmoid(-z))" and how to fix it.

Two catalogues, chosen by role:

* ``"hidden"`` / ``"output"``: activation functions, z -> a.
* ``"derivative"``: the factor backprop multiplies dL/da by, as a function of z.

Matching is by the largest absolute difference on the points seen; a candidate
within ``Thresholds.activation_match_tol`` matches. When the inputs cannot tell two
candidates apart (e.g. only positive z: relu = identity) nothing is claimed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

import numpy as np

from . import activations as act
from .config import DEFAULT_THRESHOLDS

Array = np.ndarray

ROLES = ("hidden", "output", "derivative")
GRID = np.linspace(-8.0, 8.0, 160)  # even count: no point sits exactly on a kink at 0
# The same values shuffled into rows of 4 "classes", so row- and column-wise softmax differ.
GRID_2D = GRID[np.random.default_rng(0).permutation(GRID.size)].reshape(40, 4)
MIN_DISTINCT = 3        # fewer distinct inputs than this cannot identify a function
KINK = 1e-9             # derivatives are not compared at |z| below this (relu's kink)
LEAKY_SLOPES = (0.01, 0.5)  # a fitted leaky slope is clipped into this range (0.01: the usual one)


# --- known mistakes, as functions (the reference MLP's faults use them too) ----------------


def double_sigmoid(z: Array) -> Array:
    """1/(1+sigmoid(-z)): the seed's ``1/(1+expit(-x))``; 0 -> 2/3, range (0.5, 1)."""
    return 1.0 / (1.0 + act.sigmoid(-z))


def double_sigmoid_derivative(z: Array) -> Array:
    """g(z)(1 - g(z)) for g = double_sigmoid: the seed's derivative of its faulty g."""
    g = double_sigmoid(z)
    return g * (1.0 - g)


def sigmoid_of_sigmoid(z: Array) -> Array:
    return act.sigmoid(act.sigmoid(z))


def softmax_columns(z: Array) -> Array:
    """Softmax normalised over axis 0: over the batch when samples are in rows."""
    return act.softmax(z, axis=0)


# --- catalogue ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    name: str
    function: Callable[[Array], Array]
    description: str
    mistake: bool = False
    fix: str = ""
    kind: str = "elementwise"  # or "rows" / "columns" for softmax-like functions
    aliases: tuple[str, ...] = ()


_SIGMOID_ONCE = "apply the sigmoid once: expit(z) or 1/(1 + np.exp(-z))"

FUNCTIONS: tuple[Entry, ...] = (
    Entry("sigmoid", act.sigmoid, "the sigmoid 1/(1 + e^-z)"),
    Entry("tanh", act.tanh, "tanh"),
    Entry("relu", act.relu, "ReLU max(z, 0)"),
    Entry("leaky_relu", act.leaky_relu, "leaky ReLU (small slope for z < 0)"),
    Entry("softplus", act.softplus, "softplus log(1 + e^z)"),
    Entry("identity", act.linear, "the identity (a linear layer)", aliases=("linear",)),
    Entry("softmax", act.softmax, "softmax over each sample's units", kind="rows"),
    Entry(
        "double_sigmoid",
        double_sigmoid,
        "1/(1+sigmoid(-z)): the sigmoid formula wrapped around a function that already is the "
        "sigmoid (e.g. 1/(1+expit(-x))); it never goes below 0.5, so targets under 0.5 are "
        "unreachable",
        mistake=True,
        fix=f"{_SIGMOID_ONCE}, not 1/(1 + expit(-z))",
    ),
    Entry(
        "sigmoid_of_sigmoid",
        sigmoid_of_sigmoid,
        "sigmoid applied twice, sigmoid(sigmoid(z)): maps 0 to 0.622, range (0.5, 0.731)",
        mistake=True,
        fix=_SIGMOID_ONCE,
    ),
    Entry(
        "softmax_wrong_axis",
        softmax_columns,
        "softmax normalised over the batch axis: each unit sums to 1 across samples, a "
        "sample's outputs do not",
        mistake=True,
        fix="normalise over each sample's units: e / e.sum(axis=1, keepdims=True) with samples "
        "in rows (axis=0 when samples are in columns)",
        kind="columns",
    ),
)

DERIVATIVES: tuple[Entry, ...] = (
    Entry("sigmoid", act.sigmoid_derivative, "the sigmoid's derivative s(z)(1 - s(z))"),
    Entry("tanh", act.tanh_derivative, "tanh's derivative 1 - tanh(z)^2"),
    Entry("relu", act.relu_derivative, "ReLU's derivative: 1 for z > 0, else 0"),
    Entry("leaky_relu", act.leaky_relu_derivative, "leaky ReLU's derivative: 1 for z > 0, else a small slope"),
    Entry("softplus", act.sigmoid, "softplus' derivative, the sigmoid"),
    Entry(
        "sigmoid_derivative_of_activation",
        lambda z: act.sigmoid_derivative(act.sigmoid(z)),
        "sigmoid'(sigmoid(z)): the derivative evaluated at the activation a = sigmoid(z) "
        "instead of at z; it stays within 0.235..0.25 whatever z is",
        mistake=True,
        fix="evaluate the derivative at the pre-activation, sigmoid'(z), or write it from the "
        "activation as a * (1 - a)",
    ),
    Entry(
        "tanh_derivative_of_activation",
        lambda z: act.tanh_derivative(act.tanh(z)),
        "tanh'(tanh(z)): the derivative evaluated at the activation a = tanh(z) instead of at z",
        mistake=True,
        fix="evaluate the derivative at the pre-activation, 1 - tanh(z)**2, or write it from the "
        "activation as 1 - a**2",
    ),
    Entry(
        "missing_derivative",
        act.linear_derivative,
        "constantly 1: the activation's derivative is missing from backprop (right only for a "
        "linear layer)",
        mistake=True,
        fix="multiply by the activation's derivative: delta = (delta_next @ W.T) * f'(z)",
        aliases=("identity", "linear"),
    ),
    Entry(
        "double_sigmoid_derivative",
        double_sigmoid_derivative,
        "g(z)(1 - g(z)) with g = 1/(1+sigmoid(-z)): the sigmoid-derivative formula applied to "
        "the doubled sigmoid",
        mistake=True,
        fix=f"fix the activation ({_SIGMOID_ONCE}); its derivative is then s(z)(1 - s(z))",
    ),
    Entry(
        "sigmoid_derivative_given_z",
        lambda z: z * (1.0 - z),
        "z(1 - z): the sigmoid's derivative written for the activation (a(1 - a)) but given z",
        mistake=True,
        fix="pass the activation a = sigmoid(z), or compute sigmoid(z) * (1 - sigmoid(z))",
    ),
    Entry(
        "tanh_derivative_given_z",
        lambda z: 1.0 - z * z,
        "1 - z^2: tanh's derivative written for the activation (1 - a^2) but given z",
        mistake=True,
        fix="pass the activation a = tanh(z), or compute 1 - np.tanh(z)**2",
    ),
)


def catalogue(role: str) -> tuple[Entry, ...]:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of: {', '.join(ROLES)}")
    return DERIVATIVES if role == "derivative" else FUNCTIONS


# --- result -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identification:
    identified: str | None          # best catalogue match within tolerance, None if none/ambiguous
    max_err: float                  # largest |difference| from the best candidate
    f0: float                       # value at z = 0 (NaN when unknown)
    range: tuple[float, float]      # smallest and largest value seen
    mistake: bool                   # the match is a known mistake
    description: str
    fix: str
    # name -> max |difference|, best first; aliases included ("linear" beside "identity")
    candidates: Mapping[str, float] = field(default_factory=dict, compare=False)
    # a few observed (z, f(z)) pairs, spread over the inputs seen, for a reader to check by hand
    samples: tuple[tuple[float, float], ...] = field(default=(), compare=False)

    def error_vs(self, name: str) -> float:
        """Max |difference| from the catalogue entry `name` (NaN if it was not compared)."""
        return float(self.candidates.get(name, np.nan))


def _failed(description: str) -> Identification:
    return Identification(None, np.nan, np.nan, (np.nan, np.nan), False, description, "", {})


def unconfirmed(ident: Identification, description: str) -> Identification:
    """The same measurements with nothing named: the evidence did not settle it."""
    return replace(ident, identified=None, mistake=False, description=description, fix="")


SAMPLE_PAIRS = 4


def sample_pairs(Z: Array, A: Array, mask: Array, worst: Array | None = None) -> tuple[tuple[float, float], ...]:
    """Up to SAMPLE_PAIRS observed (z, a) pairs: the input nearest 0, the smallest and the
    largest input, and the pair farthest from the best match (`worst`: |difference| per entry)."""
    z, a = Z[mask].reshape(-1), A[mask].reshape(-1)
    if z.size == 0:
        return ()
    picks = [int(np.argmin(np.abs(z))), int(np.argmin(z)), int(np.argmax(z))]
    if worst is not None and worst.size == z.size and np.isfinite(worst).any():
        picks.append(int(np.nanargmax(worst)))
    else:
        picks.append(int(np.argmin(np.abs(z - np.median(z)))))
    chosen = list(dict.fromkeys(picks))[:SAMPLE_PAIRS]
    chosen.sort(key=lambda i: z[i])
    return tuple((float(z[i]), float(a[i])) for i in chosen)


# --- matching -----------------------------------------------------------------------------------


def _leaky_slope(z: Array, a: Array, role: str) -> float:
    """The negative-side slope the data shows, so leaky ReLUs of any common slope match."""
    neg = z < -KINK
    if not neg.any():
        return act.LEAKY_SLOPE
    if role == "derivative":
        slope = float(np.median(a[neg]))
    else:
        slope = float(np.sum(a[neg] * z[neg]) / np.sum(z[neg] * z[neg]))
    return float(np.clip(slope, *LEAKY_SLOPES)) if np.isfinite(slope) else act.LEAKY_SLOPE


def _candidate_values(entry: Entry, Z: Array, mask: Array, role: str, A: Array) -> Array | None:
    """The entry's values on Z, or None when Z's shape cannot show this kind of function."""
    if entry.kind == "elementwise":
        if entry.name == "leaky_relu":
            slope = _leaky_slope(Z[mask], A[mask], role)
            return (act.leaky_relu_derivative if role == "derivative" else act.leaky_relu)(Z, slope)
        return entry.function(Z)
    if Z.ndim != 2 or Z.shape[1] < 2:
        return None  # softmax needs several units per sample
    if entry.kind == "columns" and (Z.shape[0] < 2 or not np.isfinite(Z).all()):
        return None  # needs whole, finite columns
    return entry.function(Z)


def _match(Z: Array, A: Array, role: str, tol: float, f0: float) -> Identification:
    mask = np.isfinite(Z) & np.isfinite(A)
    if role == "derivative":
        mask &= np.abs(Z) > KINK
    if Z.ndim == 2:  # a softmax row with a non-finite entry cannot be compared at all
        mask &= np.isfinite(Z).all(axis=1, keepdims=True) & np.isfinite(A).all(axis=1, keepdims=True)
    if not mask.any():
        where = " away from the kink at 0" if role == "derivative" else ""
        return _failed(f"no finite (input, output) pairs{where} to compare")
    seen = A[mask]
    value_range = (float(seen.min()), float(seen.max()))

    errors: dict[str, float] = {}
    entries: dict[str, Entry] = {}
    with np.errstate(all="ignore"):
        for entry in catalogue(role):
            values = _candidate_values(entry, Z, mask, role, A)
            if values is None:
                continue
            diff = np.abs(values[mask] - seen)
            err = float(diff.max()) if np.isfinite(diff).all() else np.inf
            errors[entry.name] = err
            entries[entry.name] = entry
    ranked = sorted(errors, key=errors.get)
    candidates = {}
    for name in ranked:
        candidates[name] = errors[name]
        for alias in entries[name].aliases:
            candidates.setdefault(alias, errors[name])

    best = ranked[0]
    best_err = errors[best]
    close = [name for name in ranked if errors[name] <= tol]
    n_distinct = len(np.unique(Z[mask]))

    with np.errstate(all="ignore"):
        best_values = _candidate_values(entries[best], Z, mask, role, A)
        worst = None if best_values is None else np.abs(best_values[mask] - seen)
    samples = sample_pairs(Z, A, mask, worst)

    def result(identified, description, fix="", mistake=False):
        return Identification(identified, best_err, f0, value_range, mistake, description, fix, candidates,
                              samples)

    if n_distinct < MIN_DISTINCT:
        return result(None, f"only {n_distinct} distinct input value(s): too few to identify the function")
    if not close:
        return result(None, f"matches no known function; closest: {best} (max error {best_err:.3g})")
    # Inputs that cannot separate two candidates (e.g. only z > 0: relu = identity) prove neither.
    if len(close) > 1 and errors[close[1]] <= 2 * best_err + tol / 10:
        return result(None, f"these inputs cannot tell apart: {', '.join(close)}")
    entry = entries[best]
    return result(best, f"behaves like {entry.description}", entry.fix, entry.mistake)


# --- entry points -------------------------------------------------------------------------------


def _call(f: Callable, Z: Array) -> tuple[Array | None, str]:
    """f(Z) as a float array of Z's shape, or (None, why not). Never raises."""
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            out = f(Z.copy())  # a copy: some functions modify their input in place
            if isinstance(out, (tuple, list)) and out and np.shape(out[0]) == Z.shape:
                out = out[0]  # e.g. `return a, cache`
            out = np.asarray(out, dtype=np.float64)
    except (Exception, SystemExit) as exc:  # user code may even call exit()
        return None, f"{type(exc).__name__}: {exc}"
    if out.shape != Z.shape:
        if out.size != Z.size:
            return None, f"returned shape {out.shape} for input shape {Z.shape}"
        out = out.reshape(Z.shape)
    return out, ""


def _tolerance(tol: float | None) -> float:
    return DEFAULT_THRESHOLDS.activation_match_tol if tol is None else float(tol)


def identify_callable(f: Callable, role: str, *, samples_axis: int = 0, tol: float | None = None) -> Identification:
    """Evaluate `f` on z in [-8, 8] and name what it computes.

    Tried first on a (samples, units) grid, so softmax-like functions show which axis
    they normalise; then on a flat vector and a column, for functions that only take
    those. ``samples_axis=1`` is for code that keeps samples in columns.
    """
    catalogue(role)
    why = "no attempt"
    for Z in (GRID_2D, GRID, GRID[:, None]):
        arg = Z.T if (samples_axis == 1 and Z.ndim == 2) else Z
        out, why = _call(f, arg)
        if out is None:
            continue
        A = out.T if (samples_axis == 1 and Z.ndim == 2) else out
        zero, _ = _call(f, np.zeros_like(arg))
        f0 = float(np.mean(zero)) if zero is not None and np.isfinite(zero).all() else np.nan
        return _match(Z, A, role, _tolerance(tol), f0)
    return _failed(f"could not evaluate the function: {why}")


def _f0_from_pairs(z: Array, a: Array) -> float:
    at_zero = np.abs(z) < KINK
    if at_zero.any():
        return float(np.mean(a[at_zero]))
    below, above = z < 0, z > 0
    if below.any() and above.any():  # interpolate between the nearest points around 0
        i = np.argmax(np.where(below, z, -np.inf))
        j = np.argmin(np.where(above, z, np.inf))
        if z[j] - z[i] <= 1.0:
            return float(a[i] + (a[j] - a[i]) * (0.0 - z[i]) / (z[j] - z[i]))
    return np.nan


def identify_pairs(z, a, role: str, *, samples_axis: int = 0, tol: float | None = None) -> Identification:
    """Name the function from observed (z, a) arrays of the same shape (e.g. captured
    while the user's code ran). NaN/Inf entries are ignored; few or constant inputs
    give ``identified=None`` with a description saying why."""
    catalogue(role)
    try:
        Z = np.asarray(z, dtype=np.float64)
        A = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        return _failed(f"not numeric arrays: {exc}")
    if Z.shape != A.shape:
        return _failed(f"input shape {Z.shape} and output shape {A.shape} differ")
    if Z.size == 0:
        return _failed("no (input, output) pairs")
    if Z.ndim == 0 or Z.ndim > 2:
        Z, A = Z.reshape(-1), A.reshape(-1)
    elif Z.ndim == 2 and samples_axis == 1:
        Z, A = Z.T, A.T
    finite = np.isfinite(Z) & np.isfinite(A)
    f0 = _f0_from_pairs(Z[finite], A[finite])  # read entry by entry, as for an elementwise f
    return _match(Z, A, role, _tolerance(tol), f0)
