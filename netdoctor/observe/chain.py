"""The layer chain x -> z -> a, inferred from a program's arrays by shape and value.

At a moment when a forward pass has just run, a hand-written network's arrays
satisfy, layer after layer,

    z = x @ W + b   (or W @ x + b, x @ W.T + b, W.T @ x + b)     and     a = f(z)

with the previous layer's ``a`` as the next ``x``. :func:`find_chain` searches the
arrays found in the program for such links (exactly, up to rounding), and strings
them into the longest chain. That tells, without any naming convention, which
arrays are weights and biases (the parameters), which are pre-activations and
activations, the weight layout ((in, out) or (out, in)), where the samples are
(rows or columns), and what each layer's function is (a known function matched
by value, or a user function seen mapping that ``z`` to that ``a``).

Conventions used throughout netdoctor's observer: an array in *rows form* has
samples in rows and units in columns, ``(n, units)``; a weight in *(in, out)
form* maps rows form to rows form, ``z = x @ W + b``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import CodeType
from typing import Any, Callable, Iterable

import numpy as np

from .arrays import Context, Found, Path, from_int, from_list

# The four ways a weight matrix meets its input.
#   op     product      samples in   weight form
OPS = {
    "xW": ("x @ W", "rows", "in_out"),
    "Wx": ("W @ x", "cols", "out_in"),
    "xWt": ("x @ W.T", "rows", "out_in"),
    "Wtx": ("W.T @ x", "cols", "in_out"),
    # Single-output models whose weight is a scalar or a vector, with samples along a
    # 1-D array ("vec": one unit per sample): linear and logistic regression, one neuron.
    "sx": ("w * x", "vec", "in_out"),     # scalar w, x (n,)       -> z (n,)
    "xw": ("x @ w", "vec", "in_out"),     # vector w (d,), x (n, d) -> z (n,)
}
VEC_OPS = ("sx", "xw")
MAX_WEIGHTS = 40       # weight candidates tried at one moment
MAX_LINK_CANDIDATES = 400
MAX_VECTOR_WEIGHT = 4096   # a 1-D weight (one output unit) of at most this many inputs
# A forward pass that loops over its layers rebinds one name (``x = np.append(x, 1)``,
# ``out = f(out)``) layer after layer, so an earlier layer's input or z is unreachable by
# the time the next layer shows. A link keeps such a member (unchanged, held here) for
# this many updates, long enough for the pass to complete.
GHOST_UPDATES = 64


def relative_tolerance(*arrays: np.ndarray) -> float:
    """How closely a recomputation must agree: rounding of the least precise array."""
    lowest = min((a.dtype.itemsize for a in arrays if a.dtype.kind == "f"), default=8)
    return 1e-4 if lowest <= 4 else 1e-9


def product(op: str, W: np.ndarray, x: np.ndarray) -> np.ndarray | None:
    """W applied to x as `op` says, in float64; None when the shapes do not fit."""
    if op == "sx":
        # (One sample of one input at a time, x a single number, is not taken: three numbers
        # that happen to fit prove nothing, and one such forward pass shows no batch to probe.)
        if W.size != 1 or W.ndim > 1 or x.ndim != 1:
            return None
        return float(W.reshape(-1)[0]) * x.astype(np.float64)
    if op == "xw":
        if W.ndim != 1 or x.ndim != 2 or x.shape[1] != W.shape[0] or W.shape[0] < 2:
            return None
        return x.astype(np.float64) @ W.astype(np.float64)
    if W.ndim != 2 or x.ndim not in (1, 2):
        return None
    r, c = W.shape
    if x.ndim == 1:
        # A single sample: W @ x and x @ W.T agree, as do x @ W and W.T @ x.
        if op == "xW" and x.shape[0] == r:
            return x.astype(np.float64) @ W.astype(np.float64)
        if op == "Wx" and x.shape[0] == c:
            return W.astype(np.float64) @ x.astype(np.float64)
        return None
    if op == "xW" and x.shape[1] == r:
        return x.astype(np.float64) @ W.astype(np.float64)
    if op == "Wx" and x.shape[0] == c:
        return W.astype(np.float64) @ x.astype(np.float64)
    if op == "xWt" and x.shape[1] == c:
        return x.astype(np.float64) @ W.T.astype(np.float64)
    if op == "Wtx" and x.shape[0] == r:
        return W.T.astype(np.float64) @ x.astype(np.float64)
    return None


def bias_row_product(op: str, W: np.ndarray, x: np.ndarray) -> np.ndarray | None:
    """W applied to x when W's last row (last column, for ``Wx``) is the bias: the code
    appends a constant-1 feature to x inside the product, ``with_ones(x) @ W``, so the
    extended input is a temporary that is never seen. None when the shapes do not fit."""
    if W.ndim != 2 or x.ndim not in (1, 2):
        return None
    W = W.astype(np.float64)
    if op == "xW" and W.shape[0] >= 2:
        p = product(op, W[:-1], x)
        return None if p is None else p + W[-1]
    if op == "Wx" and W.shape[1] >= 2:
        p = product(op, W[:, :-1], x)
        return None if p is None else p + (W[:, -1] if x.ndim == 1 else W[:, -1:])
    return None


MIN_ROW_SAMPLES = 4      # samples a batch needs before a weight's last row is tried as its bias


HEAD = 16   # samples compared while searching (a link that holds on 16 samples holds)


def head(a: np.ndarray, samples: str) -> np.ndarray:
    """The first HEAD samples of `a`, in its own orientation."""
    if samples == "vec":
        return a[:HEAD] if a.ndim >= 1 else a
    if a.ndim != 2:
        return a
    return a[:HEAD] if samples == "rows" else a[:, :HEAD]


def samples_of(op: str) -> str:
    return OPS[op][1]


def rows(a: np.ndarray, samples: str) -> np.ndarray:
    """`a` in rows form (n, units) as a float64 view or copy."""
    a = np.asarray(a, dtype=np.float64)
    if samples == "vec" and a.ndim < 2:
        return a.reshape(-1, 1)       # one unit per sample
    if a.ndim == 1:
        return a.reshape(1, -1)
    if a.ndim == 0:
        return a.reshape(1, 1)
    return a.T if samples == "cols" else a


def unrows(a: np.ndarray, samples: str, like_shape: tuple) -> np.ndarray:
    """Back from rows form to the user's shape."""
    out = a.T if samples == "cols" else a
    if samples == "vec":
        return out.reshape(like_shape)
    return out.reshape(like_shape)


# --- known functions, evaluated in rows form --------------------------------------------------


def known_functions() -> list[tuple[str, Callable[[np.ndarray], np.ndarray]]]:
    """(name, f) for every catalogue function, f taking and giving rows form."""
    from .. import identify

    out = []
    for entry in identify.FUNCTIONS:
        if entry.name == "leaky_relu":
            continue  # slope varies between codes: matched separately
        out.append((entry.name, entry.function))
    return out


def function_of(name: str, slope: float | None = None) -> Callable[[np.ndarray], np.ndarray] | None:
    """The rows-form callable for a catalogue name (None if unknown)."""
    from .. import activations as act
    from .. import identify

    if name == "leaky_relu":
        s = act.LEAKY_SLOPE if slope is None else slope
        return lambda z: np.where(z > 0, z, s * z)
    for entry in identify.FUNCTIONS:
        if entry.name == name:
            return entry.function
    return None


def matches(a: np.ndarray, b: np.ndarray, rtol: float) -> bool:
    if a.shape != b.shape:
        return False
    with np.errstate(all="ignore"):
        scale = max(float(np.max(np.abs(a))) if a.size else 0.0, float(np.max(np.abs(b))) if b.size else 0.0, 1e-30)
        diff = np.abs(a - b)
        return bool(np.all(diff <= rtol * 10 * scale + 1e-300)) if np.isfinite(scale) else False


# --- the inferred structure ------------------------------------------------------------------------


@dataclass
class LayerSpec:
    W: Path
    op: str
    x: Path
    b: Path | None = None
    z: Path | None = None              # stored pre-activation (None: computed from x, W, b)
    a: Path | None = None              # stored activation (None: the layer's output is z)
    function: str | None = None        # catalogue name matched by value
    slope: float | None = None         # for a leaky ReLU
    function_code: CodeType | None = None  # user function seen computing a = f(z)
    w_shape: tuple = ()
    b_shape: tuple | None = None
    # The bias is the weight's last input row: the code extends the layer's input with a
    # constant 1 (``np.append(x, 1)``, ``np.hstack([A, ones])``) before the product.
    bias_row: bool = False
    # The code never keeps this layer's output (``grad = X.T @ (X @ w + b - y)``): it is
    # computed from x, W, b and `function` (see :mod:`.implicit`).
    computed: bool = False

    @property
    def samples(self) -> str:
        return OPS[self.op][1]

    @property
    def weight_form(self) -> str:
        return OPS[self.op][2]

    @property
    def fan_in(self) -> int:
        if self.op in VEC_OPS:
            return int(np.prod(self.w_shape)) - self.bias_row if self.w_shape else 1
        r, c = self.w_shape
        return (r if self.weight_form == "in_out" else c) - self.bias_row

    @property
    def fan_out(self) -> int:
        if self.op in VEC_OPS:
            return 1
        r, c = self.w_shape
        return c if self.weight_form == "in_out" else r

    def _full_io(self, W: np.ndarray) -> np.ndarray:
        if self.op in VEC_OPS:
            return np.asarray(W).reshape(-1, 1)
        return W if self.weight_form == "in_out" else W.T

    def to_io(self, W: np.ndarray) -> np.ndarray:
        """A weight-shaped array of the user's in (in, out) form (fan_in x fan_out), without
        the bias row when the bias is kept in the weight."""
        full = self._full_io(W)
        return full[:-1] if self.bias_row else full

    def bias_io(self, W: np.ndarray) -> np.ndarray | None:
        """The bias kept as the weight's last input row (a vector of fan_out), else None."""
        return self._full_io(W)[-1] if self.bias_row else None

    def from_io(self, W_io: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        """Back from (in, out) form (and, for a bias kept in the weight, its bias) to the
        user's weight shape."""
        if self.bias_row:
            W_io = np.vstack([W_io, np.zeros((1, W_io.shape[1])) if b is None else np.reshape(b, (1, -1))])
        if self.op in VEC_OPS:
            return np.asarray(W_io).reshape(self.w_shape)
        return W_io if self.weight_form == "in_out" else W_io.T

    @property
    def out(self) -> Path | None:
        """Where the layer's output is kept (None for a computed layer)."""
        return self.a if self.a is not None else self.z

    def param_paths(self) -> list[Path]:
        return [self.W] + ([self.b] if self.b is not None else [])


@dataclass
class ChainSpec:
    layers: list[LayerSpec]
    value_links: int = 0               # links made by equal values rather than the same array

    @property
    def input(self) -> Path:
        return self.layers[0].x

    @property
    def output(self) -> Path | None:
        """Where the network's output is kept; None when the code never keeps it."""
        return self.layers[-1].out

    @property
    def output_name(self) -> str:
        """The output's name, or for an output never kept, the expression that makes it."""
        out = self.output
        return out.name if out is not None else self.describe().split(" -> ")[-1]

    @property
    def samples(self) -> str:
        return self.layers[0].samples

    @property
    def n_in(self) -> int:
        return self.layers[0].fan_in

    @property
    def n_out(self) -> int:
        return self.layers[-1].fan_out

    def param_paths(self) -> list[Path]:
        return [p for layer in self.layers for p in layer.param_paths()]

    def score(self) -> tuple:
        # A stored activation explained by a known or observed function beats a bare z.
        with_function = sum(1 for l in self.layers if l.a is not None and (l.function or l.function_code))
        with_bias = sum(1 for l in self.layers if l.b is not None or l.bias_row)
        # W @ x and x @ W.T give the same numbers with the roles of W and x swapped; code
        # keeps one convention for all its layers, so a consistent chain is the real one.
        consistent = sum(1 for l in self.layers if l.samples == self.layers[0].samples)
        named = sum(1 for l in self.layers if _looks_like_weight(l.W.name))
        return (len(self.layers), consistent, with_function, with_bias, named, -self.value_links)

    def describe(self) -> str:
        parts = [self.input.name]
        for layer in self.layers:
            f = layer.function or (layer.function_code.co_name if layer.function_code else
                                   "linear" if layer.computed else "?")
            parts.append(f"{f}({OPS[layer.op][0].replace('W', layer.W.name).replace('w ', layer.W.name + ' ').replace('@ w', '@ ' + layer.W.name)}"
                         f"{' + ' + layer.b.name if layer.b else ''})")
        return " -> ".join(parts)


def _gone(path: Path, ctx: Context) -> bool:
    """Whether `path` named a local of a function that has returned (e.g. the argument
    of an activation function): its value is then a temporary, recomputed from x, W, b."""
    return path.root.kind in ("local", "arg", "result") and (
        path.root.kind == "result" or ctx.frame_of(path.root.code) is None)


# Numbers that configure training rather than being learned: never a scalar weight
# (``step = lr * grad`` must not read as a layer with weight lr).
_SETTINGS = {"lr", "eta", "alpha", "learning_rate", "learningrate", "rate", "lam", "lamb", "lmbda",
             "lambda_", "reg", "momentum", "mu", "beta", "beta1", "beta2", "eps", "epsilon", "decay",
             "gamma", "rho", "c", "tol", "scale", "temperature"}


def _looks_like_setting(name: str) -> bool:
    leaf = name.lower().rsplit(".", 1)[-1].split("[")[-1].strip("'\"]")
    return leaf in _SETTINGS or "learning" in leaf or leaf.endswith("_rate")


def _looks_like_bias(name: str) -> bool:
    leaf = name.lower().rsplit(".", 1)[-1].split("[")[-1].strip("'\"]")
    return leaf in ("b", "c", "bias", "intercept", "b0", "w0", "theta0") or leaf.startswith("bias")


def _looks_like_weight(name: str) -> bool:
    leaf = name.lower().rsplit(".", 1)[-1].split("[")[-1].strip("'\"]")
    return leaf.startswith("w") or "weight" in name.lower() or "kernel" in name.lower()


@dataclass
class ObservedForward:
    """A validated forward pass: arrays in rows form, as the program holds them now."""

    x: np.ndarray
    zs: list[np.ndarray]
    acts: list[np.ndarray]
    raw_x: np.ndarray
    raw_out: np.ndarray
    params: list[tuple[np.ndarray, np.ndarray | None]] = field(default_factory=list)


# --- searching ----------------------------------------------------------------------------------


@dataclass
class _Link:
    W: Found
    op: str
    x: Found
    b: Found | None
    z: Found | None                  # None: z is a temporary the code never kept
    a: Found | None = None
    function: str | None = None
    slope: float | None = None
    function_code: CodeType | None = None
    members: dict[int, tuple] = field(default_factory=dict)   # id -> fingerprint when found
    gone_since: int | None = None    # update at which its input or z stopped being reachable
    bias_row: bool = False           # W's last row is the bias (see bias_row_product)

    @property
    def out(self) -> Found:
        return self.a if self.a is not None else self.z  # type: ignore[return-value]


def _functions() -> list[tuple[str, float | None, Callable[[np.ndarray], np.ndarray]]]:
    """Catalogue functions to try as a = f(z), plus leaky ReLUs of the usual slopes."""
    out = [(name, None, f) for name, f in known_functions() if name != "identity"]
    for slope in (0.01, 0.02, 0.05, 0.1, 0.2, 0.3):
        out.append(("leaky_relu", slope, lambda z, s=slope: np.where(z > 0, z, s * z)))
    return out


def _inverses() -> list[tuple[str, float | None, Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]]]:
    """(name, slope, a -> (z, usable mask)) for functions whose z can be read back from a.

    Entries where the function is flat (saturated sigmoid, a relu's zeros) tell nothing
    about z and are masked out; the link is then confirmed forwards on all entries.
    """

    def clipped(a, lo, hi):
        return (a > lo + 1e-9) & (a < hi - 1e-9)

    def logit(p):
        return np.log(p) - np.log1p(-p)

    out = [
        ("sigmoid", None, lambda a: (logit(np.clip(a, 1e-300, 1 - 1e-16)), clipped(a, 0.0, 1.0))),
        ("tanh", None, lambda a: (np.arctanh(np.clip(a, -1 + 1e-16, 1 - 1e-16)), clipped(a, -1.0, 1.0))),
        ("relu", None, lambda a: (a, a > 0)),
        ("softplus", None, lambda a: (np.log(np.expm1(np.maximum(a, 1e-300))), a > 1e-9)),
        ("double_sigmoid", None,
         lambda a: (-logit(np.clip(1.0 / np.maximum(a, 1e-300) - 1.0, 1e-300, 1 - 1e-16)), clipped(a, 0.5, 1.0))),
        ("sigmoid_of_sigmoid", None,
         lambda a: (logit(np.clip(logit(np.clip(a, 1e-300, 1 - 1e-16)), 1e-300, 1 - 1e-16)),
                    clipped(a, 0.5, 0.7310585786300049))),
    ]
    return out


def _x_shape(op: str, W_shape: tuple, out_shape: tuple) -> tuple | None:
    """The input shape that `op` with this weight maps to `out_shape` (None if none)."""
    if op == "sx":
        return out_shape if len(W_shape) <= 1 and int(np.prod(W_shape)) == 1 and len(out_shape) == 1 else None
    if op == "xw":
        return (out_shape[0], W_shape[0]) if len(W_shape) == 1 and len(out_shape) == 1 else None
    if len(W_shape) != 2 or len(out_shape) not in (1, 2):
        return None
    r, c = W_shape
    if len(out_shape) == 1:
        if op == "xW" and out_shape[0] == c:
            return (r,)
        if op == "Wx" and out_shape[0] == r:
            return (c,)
        return None
    n0, n1 = out_shape
    if op == "xW" and n1 == c:
        return (n0, r)
    if op == "Wx" and n0 == r:
        return (c, n1)
    if op == "xWt" and n1 == r:
        return (n0, c)
    if op == "Wtx" and n0 == c:
        return (r, n1)
    return None


def _informative(a: np.ndarray) -> bool:
    """Finite and not all zero (a single value, or values not all equal): only such
    arrays can prove a link."""
    if a.size == 0 or not np.isfinite(a).all():
        return False
    return bool(a.max() > a.min()) or (a.size == 1 and a.flat[0] != 0)


class ChainSearch:
    """Incremental search for the layer chain.

    Called at every checkpoint with the arrays found there, it only examines arrays
    that are new or changed since the previous call, as possible outputs of a layer
    (a pre-activation, or an activation), and keeps the links it found while their
    arrays stay unchanged. A weight must be older than what it produced: arrays are
    aged by the call at which they last changed.
    """

    def __init__(self, params: set[int] | None = None):
        self.params = params
        self.calls_seen = 0
        self.fps: dict[int, tuple] = {}
        self.age: dict[int, int] = {}
        self.links: list[_Link] = []
        self.functions = _functions()
        self.inverses = _inverses()
        self._products_seen: dict[tuple, Any] = {}
        self._informative_seen: dict[tuple, bool] = {}
        # A one-number output (one sample, one unit) read back through f: the link's
        # roles -> the distinct values of a it has explained (see _confirmed_single).
        self._single_values: dict[tuple, set[float]] = {}
        self._best: ChainSpec | None = None

    def update(self, found: dict[int, Found], calls=(), params: set[int] | None = None,
               outputs: Callable[[Found], bool] | None = None) -> ChainSpec | None:
        """Look at the arrays now; returns the best chain. `outputs`, when given, limits
        which new arrays are tried as a layer's output (a cheaper, narrower search)."""
        from .arrays import fingerprint

        if params is not None:
            self.params = params
        self.calls_seen += 1
        now = self.calls_seen
        fps, new = {}, []
        for i, f in found.items():
            if f.array.ndim not in (0, 1, 2) or f.array.size == 0:
                continue
            fp = fingerprint(f.array)
            fps[i] = fp
            if self.fps.get(i) != fp:
                new.append(f)
                # Arrays already there at the first look count as older than anything.
                self.age[i] = now if self.fps or now > 1 else 0
        self.fps = fps
        if len(self._informative_seen) > 20_000:
            self._informative_seen.clear()
        kept = []
        for link in self.links:
            def valid(m: Found | None) -> bool:
                return m is not None and fps.get(id(m.array)) == link.members.get(id(m.array))

            def unreachable_but_intact(m: Found) -> bool:
                return id(m.array) not in fps and fingerprint(m.array) == link.members.get(id(m.array))

            core = [m for m in (link.W, link.b) if m is not None]
            if not all(valid(m) for m in core):
                continue
            ghost = False
            if not valid(link.x):
                if not unreachable_but_intact(link.x):
                    continue
                ghost = True
            if link.z is not None and not valid(link.z):
                if link.a is not None and valid(link.a):
                    # z was a temporary (e.g. a function's argument) and is gone: a still holds.
                    link.members.pop(id(link.z.array), None)
                    link.z = None
                elif link.a is None and unreachable_but_intact(link.z):
                    ghost = True   # z = f's argument, rebound to f(z): the activation may follow
                else:
                    continue
            if ghost:
                link.gone_since = now if link.gone_since is None else link.gone_since
                if now - link.gone_since > GHOST_UPDATES:
                    continue
            else:
                link.gone_since = None
            if link.a is not None and not valid(link.a):
                if link.z is None:
                    continue  # its z was read from this activation: gone with it
                # The activation was replaced (e.g. overwritten by an output function): the z stays.
                link.members.pop(id(link.a.array), None)
                link.a, link.function, link.slope, link.function_code = None, None, None, None
            # Name each array by where it is found now (a result becomes a stored attribute).
            link.W, link.x = found.get(id(link.W.array), link.W), found.get(id(link.x.array), link.x)
            link.b = None if link.b is None else found.get(id(link.b.array), link.b)
            link.z = None if link.z is None else found.get(id(link.z.array), link.z)
            link.a = None if link.a is None else found.get(id(link.a.array), link.a)
            kept.append(link)
        self.links = kept
        if outputs is not None:
            new = [f for f in new if outputs(f)]
        if new:
            with np.errstate(all="ignore"):
                self._search(found, new, list(calls))
        self._best = _longest(self.links, found) if self.links else None
        return self._best

    # -- the search proper ---------------------------------------------------------------------------
    def _search(self, found: dict[int, Found], new: list[Found], calls: list) -> None:
        items = [f for i, f in found.items() if i in self.fps]
        by_shape: dict[tuple, list[Found]] = {}
        for f in items:
            by_shape.setdefault(f.array.shape, []).append(f)
        # Arrays already placed as a z, an activation or a bias are not weights. (An input
        # may be a weight taken for an input: x @ W and W.T @ x.T show the same numbers.)
        placed = {id(m.array) for l in self.links for m in (l.z, l.a, l.b) if m is not None}
        # (Nor is what a function has just returned and nothing holds yet: a parameter is kept
        # somewhere between steps, so a value reachable only as a result is a temporary.)
        weights = [f for f in items if f.array.dtype.kind == "f" and id(f.array) not in placed
                   and not from_list(f.array) and not from_int(f.array) and f.path.root.kind != "result"
                   and (f.array.ndim == 2 or (f.array.ndim <= 1 and f.array.size <= MAX_VECTOR_WEIGHT))
                   and not (f.array.ndim == 0 and _looks_like_setting(f.name))
                   and (self.params is None or id(f.array) in self.params)]
        # Matrices first: a scalar or vector weight serves single-output models only.
        weights = sorted(weights, key=lambda f: f.array.ndim != 2)[:MAX_WEIGHTS]
        biases: dict[int, list[Found]] = {}
        for f in items:
            a = f.array
            if a.dtype.kind in "fi" and (a.ndim <= 1 or 1 in a.shape) and not from_list(a) \
                    and f.path.root.kind != "result" and (self.params is None or id(a) in self.params):
                biases.setdefault(a.size, []).append(f)
        ctx = (by_shape, weights, biases, calls)
        fresh = [f for f in new if _informative(f.array)]
        # New pre-activations first, so that a new activation can attach to a z found now.
        for N in fresh:
            for link in self._as_preactivation(N, N.array.astype(np.float64), None, ctx):
                self.links.append(link)
        # A stored z or a bias is not also an activation (a W may be a mistaken one: x @ W
        # and W.T @ x.T show the same numbers with the roles swapped).
        placed = {id(m.array) for l in self.links for m in (l.b, l.z) if m is not None}
        # Code that keeps every layer's z (the chain so far says so) makes no temporaries:
        # reading z back through the catalogue's functions would be wasted effort.
        # (A z seen only as a user function's argument is no kept z: the next layer's may
        # go to a library function, np.tanh, that shows nothing.)
        keeps_z = self._best is not None and all(l.z is not None and l.function_code is None
                                                 for l in self._best.layers)
        for N in fresh:
            if not self._attach(N, ctx) and id(N.array) not in placed and not keeps_z:
                self._as_activation_of_temporary(N, ctx)
        # A layer whose output is one value for every sample is still a layer (a saturated
        # hidden layer feeds the next one the same row for the whole batch). One value can
        # match by chance (Y.T @ X sums XOR's inputs to [1, 1]), so such an array is taken
        # only for a batch of several samples, as the result of a product whose input
        # varies, or as what a user function was seen returning.
        for N in (f for f in new if _uniform(f.array)):
            links = [link for link in self._as_preactivation(N, N.array.astype(np.float64), None, ctx)
                     if _batch_product(link, N)]
            self.links.extend(links)
            if not links and not self._attach(N, ctx, seen_called=True) and id(N.array) not in placed:
                self._as_result_of_call(N, ctx, lambda link: _batch_product(link, N))

    def _older(self, a: np.ndarray, than: np.ndarray, strict: bool) -> bool:
        aa, bb = self.age.get(id(a), 0), self.age.get(id(than), 0)
        return aa < bb or aa == 0 or (not strict and aa == bb)

    def _as_preactivation(self, N: Found, target: np.ndarray, mask, ctx, produced: Found | None = None):
        """Links with op(W, x) + b == target (on `mask`): N is their z (or, with `produced`,
        `target` is the z read back from the activation `produced`)."""
        products = list(self._products(N, target.shape, ctx, produced))
        return self._match(products, N, target, mask, ctx[2], produced)

    def _match(self, products, N, target, mask, biases, produced) -> list[_Link]:
        """The products p with target == p (+ a bias found among the arrays), all at once."""
        links = []
        for samples in ("rows", "cols", "vec"):
            group = [item for item in products if samples_of(item[1]) == samples]
            if not group:
                continue
            P = np.stack([rows(item[3], samples) for item in group])          # (m, n, units)
            T = rows(head(target, samples), samples)[None]
            D = T - P
            if mask is not None:
                D = np.where(rows(head(mask, samples), samples)[None], D, np.nan)
            rtol = max(relative_tolerance(N.array, *(item[0].array for item in group[:1])),
                       1e-6 if mask is not None else 0.0)   # z read back through f is less precise
            scale = np.maximum(np.nanmax(np.abs(P), axis=(1, 2)), np.nanmax(np.abs(np.where(np.isnan(D), np.nan, T)),
                                                                              axis=(1, 2)))
            tol = rtol * 10 * np.maximum(scale, 1e-30)                           # (m,)
            # A product negligible next to the target proves nothing (z = ~0 + b).
            significant = np.abs(P).max(axis=(1, 2)) > 1e-6 * np.nanmax(np.abs(T))
            finite = np.isfinite(D)
            absD = np.where(finite, np.abs(D), 0.0)
            no_bias = finite.any(axis=(1, 2)) & (absD.max(axis=(1, 2)) <= tol)
            first = np.argmax(finite, axis=1)                                    # (m, units)
            R = np.take_along_axis(D, first[:, None, :], axis=1)[:, 0, :]        # (m, units)
            R = np.where(finite.any(axis=1), R, np.nan)
            spread = np.where(finite, np.abs(D - R[:, None, :]), 0.0).max(axis=(1, 2))
            constant = spread <= tol
            candidates = [B for B in biases.get(R.shape[1], ()) if B is not N and B is not produced]
            hit = np.full(len(group), -1)
            if candidates and constant.any():
                Bm = np.stack([B.array.astype(np.float64).reshape(-1) for B in candidates])   # (k, units)
                close = np.abs(Bm[None, :, :] - R[:, None, :]) <= tol[:, None, None]        # (m, k, units)
                close |= np.isnan(R)[:, None, :]
                ok = close.all(axis=2) & constant[:, None]
                hit = np.where(ok.any(axis=1), np.argmax(ok, axis=1), -1)
            zeros = [B for B in candidates if not np.any(B.array)]
            for k, (W, op, x, p, row) in enumerate(group):
                if not significant[k] or (row and not no_bias[k]):
                    continue   # (a weight that carries its bias needs no other)
                single_number = x.array.ndim == 0
                if single_number and not _looks_like_weight(W.name):
                    # z = w * x + b for one sample of one input: any three numbers that happen
                    # to fit would do, so values alone prove nothing; the names must say it.
                    continue
                bias = None
                if not no_bias[k]:
                    if hit[k] < 0:
                        continue
                    bias = candidates[hit[k]]
                    if bias is W or bias is x or (single_number and not _looks_like_bias(bias.name)):
                        continue
                elif zeros and not row:
                    # z = x W exactly: either no bias, or a bias still at its initial zeros.
                    bias = _zero_bias(W, [B for B in zeros if not single_number or _looks_like_bias(B.name)])
                members = {id(m.array): self.fps[id(m.array)] for m in (W, x, N, bias, produced) if m is not None}
                if produced is None:
                    links.append(_Link(W, op, x, bias, N, members=members, bias_row=row))
                else:
                    links.append(_Link(W, op, x, bias, None, a=produced, members=members, bias_row=row))
        return links

    def _products(self, N: Found, shape: tuple, ctx, produced: Found | None):
        """(W, op, x, op(W, x)) for every weight older than N and input not newer than N."""
        by_shape, weights, _, _ = ctx
        out_array = N.array
        for W in weights:
            if W is N or W is produced or not self._older(W.array, out_array, strict=False):
                continue
            if W.array.ndim == 2 and W.array.size < 2:
                continue  # (a 1 x 1 matrix "weight" matches any pair of numbers)
            if not self._informative(W.array):
                continue  # all equal (zeros at init, sigmoid(0) everywhere): proves nothing
            shapes = [(op, False, W.array.shape) for op in OPS]
            if W.array.ndim == 2:
                r, c = W.array.shape
                shapes += [("xW", True, (r - 1, c))] if r >= 2 else []
                shapes += [("Wx", True, (r, c - 1))] if c >= 2 else []
            for op, row, w_shape in shapes:
                xs = _x_shape(op, w_shape, shape)
                if xs is None:
                    continue
                for x in by_shape.get(xs, ()):
                    if x is W or x is N or x is produced or not self._older(x.array, out_array, strict=False):
                        continue
                    if not self._informative(x.array):
                        continue
                    if row and (x.array.ndim != 2 or rows(x.array, samples_of(op)).shape[0] < MIN_ROW_SAMPLES):
                        continue   # (for one sample, a weight's free last row fits too much)
                    key = (id(W.array), self.fps.get(id(W.array)), id(x.array), self.fps.get(id(x.array)), op, row)
                    p = self._products_seen.get(key)
                    if p is None:
                        p = (bias_row_product if row else product)(op, W.array, head(x.array, samples_of(op)))
                        # An all-zero product says nothing about which arrays are linked.
                        p = p if p is not None and np.any(p) and np.isfinite(p).all() else False
                        if len(self._products_seen) > 20_000:
                            self._products_seen.clear()
                        self._products_seen[key] = p
                    if p is False:
                        continue
                    yield W, op, x, p, row

    def _informative(self, a: np.ndarray) -> bool:
        key = (id(a), self.fps.get(id(a)))
        known = self._informative_seen.get(key)
        if known is None:
            known = self._informative_seen[key] = _informative(a)
        return known

    def _match_softmax(self, products, N: Found, a: np.ndarray, samples: str, biases) -> list[_Link]:
        """Links with a = softmax(op(W, x) + b) over each sample's units.

        log(a) is z minus a per-sample constant, so z is compared after removing each
        sample's first unit from every unit: what remains is b_j - b_0 for all samples.
        """
        group = [item for item in products if samples_of(item[1]) == samples]
        if not group:
            return []
        P = np.stack([rows(item[3], samples) for item in group])            # (m, n, units)
        a = head(a, samples)
        L = np.log(rows(a, samples))[None]
        D = L - P
        Dc = D - D[:, :, :1]
        R = Dc[:, 0, :]
        scale = np.maximum(np.abs(P).max(axis=(1, 2)), np.abs(L).max())
        tol = 1e-6 * 10 * np.maximum(scale, 1e-30)
        constant = np.abs(Dc - R[:, None, :]).max(axis=(1, 2)) <= tol
        candidates = [B for B in biases.get(R.shape[1], ()) if B is not N]
        links = []
        for k, (W, op, x, p, row) in enumerate(group):
            if not constant[k]:
                continue
            bias = None
            if np.abs(R[k]).max() > tol[k] and not row:
                for B in candidates:
                    v = B.array.astype(np.float64).reshape(-1)
                    if B is not W and B is not x and np.abs((v - v[0]) - R[k]).max() <= tol[k]:
                        bias = B
                        break
                if bias is None:
                    continue
            else:
                zeros = [B for B in candidates if not np.any(B.array)]
                bias = _zero_bias(W, zeros) if zeros else None
            z = p if bias is None else p + _bias_shaped(bias.array, p.shape, samples)
            if not matches(unrows(function_of("softmax")(rows(z, samples)), samples, z.shape), a, 1e-6):
                continue
            members = {id(m.array): self.fps[id(m.array)] for m in (W, x, N, bias) if m is not None}
            links.append(_Link(W, op, x, bias, None, a=N, function="softmax", members=members, bias_row=row))
        return links

    def _attach(self, N: Found, ctx, seen_called: bool = False) -> bool:
        """N as the activation of a link's stored z: a = f(z) for a known or observed f
        (with `seen_called`, only for a user function seen computing N from z)."""
        _, _, _, calls = ctx
        attached = False
        for link in self.links:
            Z = link.z
            if Z is None or link.a is not None or Z.array.shape != N.array.shape or Z is N:
                continue
            if not self._older(Z.array, N.array, strict=False):
                continue
            samples = samples_of(link.op)
            zr, ar = rows(Z.array, samples), rows(N.array, samples)
            tol = max(relative_tolerance(Z.array, N.array), 1e-7)
            code = _call_between(calls, Z, N, tol)
            name, slope = _named(self.functions, zr, ar, tol)
            if code is None and (seen_called or name is None or N.array.size < 2 or not np.any(N.array)):
                continue  # a single value (or all zeros) matches some function by chance
            link.a, link.function, link.slope, link.function_code = N, name, slope, code
            link.members[id(N.array)] = self.fps[id(N.array)]
            attached = True
        return attached

    def _confirmed_single(self, link: _Link, value: float) -> bool:
        """Whether a link that explains a one-number activation has also explained another
        value of it with the same roles (W, x, b, f) at an earlier step.

        One number matches some f(W @ x + b) by chance, or by a copy (a bias that is a copy
        of the input); per-sample training of a one-output network shows nothing else. Two
        different values explained by the same arrays, each through a real product (x holds
        several numbers), do not happen by chance.
        """
        if np.size(link.x.array) < 2:
            return False
        key = (link.W.path.key(), link.op, link.x.path.key(),
               None if link.b is None else link.b.path.key(), link.function, link.slope)
        values = self._single_values.setdefault(key, set())
        if len(self._single_values) > 1000:
            self._single_values = {key: values}
        values.add(value)
        return len(values) >= 2

    def _as_result_of_call(self, N: Found, ctx, keep: Callable[[_Link], bool] | None = None) -> bool:
        """N as a = f(op(W, x) + b) for a user function f seen returning N: z is its argument."""
        _, _, _, calls = ctx
        for code, call in reversed(calls):
            if call.result_id == id(N.array):
                arg = next((a for a in call.args if np.shape(a) == N.array.shape), None)
                if arg is None:
                    continue
                target = np.asarray(arg, dtype=np.float64)
                links = [link for link in self._as_preactivation(N, target, None, ctx, produced=N)
                         if keep is None or keep(link)]
                for link in links:
                    samples = samples_of(link.op)
                    link.function, link.slope = _named(self.functions, rows(target, samples),
                                                       rows(N.array, samples), 1e-7)
                    link.function_code = code
                    self.links.append(link)
                if links:
                    return True
        return False

    def _as_activation_of_temporary(self, N: Found, ctx) -> None:
        """N as a = f(op(W, x) + b) where z was never kept: z is read back through f
        (or taken from a user function seen computing N)."""
        if self._as_result_of_call(N, ctx):
            return
        a = N.array.astype(np.float64)
        products = None
        for samples in ("rows", "cols"):
            if _softmax_like(a, samples):
                products = list(self._products(N, a.shape, ctx, N))
                links = self._match_softmax(products, N, a, samples, ctx[2])
                if links:
                    self.links.extend(links)
                    return
        single = a.size == 1
        for name, slope, inverse in self.inverses:
            z_hat, mask = inverse(a)
            if mask.sum() < max(1 if single else 2, a.size // 4):
                continue  # too few entries where f can be undone (all saturated, all zero)
            if products is None:
                products = list(self._products(N, a.shape, ctx, N))
                if not products:
                    return
            links = self._match(products, N, z_hat, mask, ctx[2], N)
            confirmed = []
            f = function_of(name, slope)
            for link in links:
                samples = samples_of(link.op)
                p = (bias_row_product if link.bias_row else product)(link.op, link.W.array,
                                                                     head(link.x.array, samples))
                z = p if link.b is None else p + _bias_shaped(link.b.array, p.shape, samples)
                if matches(unrows(f(rows(z, samples)), samples, z.shape), head(a, samples), 1e-6):
                    link.function, link.slope = name, slope
                    if not single or self._confirmed_single(link, float(a.flat[0])):
                        confirmed.append(link)
            if confirmed:
                self.links.extend(confirmed)
                return


def _uniform(a: np.ndarray) -> bool:
    """Several entries, all one finite value that is not 0."""
    if a.size < 2 or a.dtype.kind != "f" or not np.isfinite(a).all():
        return False
    first = a.flat[0]
    return bool(first != 0 and a.min() == a.max())


def _batch_product(link: _Link, N: Found, min_samples: int = 4) -> bool:
    """Whether a link to the one-valued array N multiplies a varying input over a batch of
    at least `min_samples` samples (N's samples, as the link lays them out)."""
    samples = samples_of(link.op)
    return (N.array.ndim == 2 and rows(N.array, samples).shape[0] >= min_samples
            and _informative(link.x.array))


def _softmax_like(a: np.ndarray, samples: str) -> bool:
    """Rows (samples) of positive values summing to 1, over at least two units."""
    if a.ndim != 2 or not np.isfinite(a).all() or a.min() <= 0:
        return False
    r = rows(a, samples)
    return r.shape[1] >= 2 and bool(np.all(np.abs(r.sum(axis=1) - 1.0) <= 1e-9))


def _zero_bias(W: Found, zeros: list[Found]) -> Found | None:
    """The all-zero array that is W's bias, judged by the names (W[1]/B[1], W1/b1, ...)."""
    # A plain number that is 0 (a counter, a running total) is a bias only if named like one.
    zeros = [B for B in zeros if B.array.ndim > 0 or _looks_like_bias(B.name)]
    best, best_score = None, 0
    for B in zeros:
        score = _affinity(W.path, B.path)
        if score > best_score:
            best, best_score = B, score
    if best is None and len(zeros) == 1:
        return zeros[0]   # the only candidate of the layer's width
    return best


def _affinity(w: Path, b: Path) -> int:
    """How much two paths look like a layer's weight and bias (0: not at all)."""
    score = 0
    if w.steps and b.steps and w.steps[-1][0] == "item" and w.steps[-1] == b.steps[-1] and w.steps != b.steps:
        score += 3                       # weights[1] / biases[1], W[0] / b[0]
    if (w.root.key() == b.root.key() and w.steps[:-1] == b.steps[:-1] and w.steps and b.steps
            and isinstance(w.steps[-1][1], int) and b.steps[-1][1] == w.steps[-1][1] + 1):
        score += 3                       # [W1, b1, W2, b2]: the bias follows its weight
    wn, bn = w.name.lower(), b.name.lower()
    digits_w = "".join(ch for ch in wn if ch.isdigit())
    digits_b = "".join(ch for ch in bn if ch.isdigit())
    if digits_w and digits_w == digits_b:
        score += 2                       # W1 / b1
    leaf = bn.rsplit(".", 1)[-1].split("[")[0].strip("'\"")
    if leaf.startswith("b") or "bias" in bn:
        score += 1
    return score if score >= 2 else 0


def _bias_row_masked(d: np.ndarray, samples: str, tol: float) -> np.ndarray | None:
    """d as one bias vector broadcast over samples (None if it varies across samples),
    ignoring NaN entries (masked out); NaN where no sample shows a unit."""
    if d.ndim == 1:
        return d
    D = d if samples == "rows" else d.T
    finite = np.isfinite(D)
    first = np.argmax(finite, axis=0)                    # the first sample showing each unit
    r = D[first, np.arange(D.shape[1])]
    r = np.where(finite.any(axis=0), r, np.nan)
    with np.errstate(all="ignore"):
        spread = np.abs(D - r[None, :])
    if np.any(spread[np.isfinite(spread)] > tol):
        return None
    return r


def _call_between(calls, Z: Found, N: Found, tol: float) -> CodeType | None:
    """A user function seen turning Z (this very array, or its values) into N.

    A call that returned this very array is preferred to one that returned equal values.
    """
    calls = sorted(calls, key=lambda item: item[1].result_id != id(N.array))
    for code, call in calls:
        if call.result is None or np.shape(call.result) != N.array.shape:
            continue
        same_result = call.result_id == id(N.array) or matches(np.asarray(call.result, dtype=np.float64),
                                                               N.array.astype(np.float64), tol)
        if not same_result:
            continue
        if id(Z.array) in call.arg_ids or any(
                np.shape(a) == Z.array.shape and matches(np.asarray(a, dtype=np.float64), Z.array.astype(np.float64), tol)
                for a in call.args):
            return code
    return None


def _named(functions, zr: np.ndarray, ar: np.ndarray, tol: float) -> tuple[str | None, float | None]:
    """The catalogue function with a = f(z) (rows form), if one matches."""
    for name, slope, f in functions:
        try:
            values = f(zr)
        except Exception:  # noqa: BLE001
            continue
        if values.shape == ar.shape and matches(values, ar, tol):
            return name, slope
    return None, None


def _bias_shaped(b: np.ndarray, shape: tuple, samples: str) -> np.ndarray:
    v = b.astype(np.float64).reshape(-1)
    if len(shape) == 1:
        return v
    return v.reshape(1, -1) if samples == "rows" else v.reshape(-1, 1)


def find_chain(
    arrays: Iterable[Found],
    calls: Iterable[tuple[CodeType, Any]] = (),
    *,
    params: set[int] | None = None,
) -> ChainSpec | None:
    """The longest layer chain the arrays satisfy right now (None if there is none).

    One-shot form of :class:`ChainSearch`. `calls` are recent user-function calls
    ``(code, Call)`` whose (argument, result) pairs may link a pre-activation to its
    activation; `params`, when given, are the ids of the only arrays that may serve
    as weights and biases (roles named by the user).
    """
    found = {id(f.array): f for f in arrays}
    return ChainSearch(params).update(found, calls)


def continuing_parameters(chain: ChainSpec, arrays: Iterable[Found], changing: set[tuple], *,
                          exclude: set[tuple] = frozenset(), samples: int | None = None) -> list[Found]:
    """Arrays that look like parameters of a layer past the chain's end, left out of it.

    Persistent (an attribute of the model or a module global), changed during training
    (`changing` holds path keys), in no role of the chain nor in `exclude`, 2-D floats
    not shaped like a placed parameter (optimiser state mirrors those), without a dimension
    of `samples` (activations kept at module level have one; weights do not), and with a
    dimension equal to the width the chain ends with: the next layer's weights, say,
    behind a library function (np.tanh) that no call event shows. A 1 x 1 array is left
    out: column-style code keeps its one-sample error and loss so (``err = t - o``), and
    the search never places a 1 x 1 weight (it fits any pair of numbers).
    """
    arrays = list(arrays)
    placed_keys = {p.key() for p in chain.param_paths()}
    placed_shapes = {tuple(f.array.shape) for f in arrays if f.path.key() in placed_keys}
    width = chain.n_out
    out = []
    for found in arrays:
        path, array = found.path, found.array
        key = path.key()
        if (path.root.kind not in ("object", "globals") or key not in changing or key in placed_keys
                or key in exclude or array.ndim != 2 or array.size < 2 or tuple(array.shape) in placed_shapes
                or width not in array.shape or (samples is not None and samples in array.shape)
                or array.dtype.kind != "f"):
            continue
        out.append(found)
    return out


def _without_ones(link: _Link) -> np.ndarray | None:
    """The link's input in rows form without a trailing constant-1 feature, if it has one
    (the code extended its input to carry the bias in the weight); else None."""
    x = rows(link.x.array, samples_of(link.op))
    if x.shape[1] < 2 or not np.all(x[:, -1] == 1.0):
        return None
    return x[:, :-1]


def _longest(links: list[_Link], found: dict[int, Found] | None = None) -> ChainSpec | None:
    """String links into chains (a link's output is the next link's input) and keep the best.

    A chain keeps one convention (where the samples are, how weights are laid out), and
    an array plays one role in it: a layer's activation is not also another's weight or
    bias. Backprop's own algebra (``dW = x.T @ delta``) yields exact links too; these
    rules keep them out of the forward chain.
    """
    produced = {id(l.out.array) for l in links if l.out is not None}
    by_input: dict[int, list[_Link]] = {}
    for l in links:
        by_input.setdefault(id(l.x.array), []).append(l)

    best: ChainSpec | None = None

    def roles(l: _Link) -> tuple[set[int], set[int]]:
        params = {id(l.W.array)} | ({id(l.b.array)} if l.b is not None else set())
        values = {id(m.array) for m in (l.x, l.z, l.a) if m is not None}
        return params, values

    def fits(path: list[_Link], l: _Link, params: set[int], values: set[int]) -> bool:
        first = path[0]
        if l.op not in _SAME_CONVENTION[first.op]:
            return False
        l_params, l_values = roles(l)
        return not (l_params & values) and not (l_values & params) and id(l.W.array) not in params

    # Links whose input is an output extended by a constant 1 (the bias kept in the weight).
    extended = [(l, x) for l in links for x in [_without_ones(l)] if x is not None]

    def augmented_after(last: _Link) -> list[_Link]:
        if not extended:
            return []
        out = rows(last.out.array, samples_of(last.op))
        return [l for l, x in extended if x.shape == out.shape and np.array_equal(x, out)]

    def extend(path: list[_Link], params: set[int], values: set[int], aug: tuple) -> None:
        nonlocal best
        last = path[-1]
        nexts = [(l, False) for l in by_input.get(id(last.out.array), []) if fits(path, l, params, values)]
        nexts += [(l, True) for l in augmented_after(last) if fits(path, l, params, values)]
        if not nexts:
            spec = _spec(path, aug, found)
            if best is None or spec.score() > best.score():
                best = spec
            return
        for l, plus_one in nexts:
            l_params, l_values = roles(l)
            extend(path + [l], params | l_params, values | l_values, aug + (plus_one,))

    def can_start(l: _Link) -> bool:
        # A link kept after its input went out of reach starts a chain only when the input
        # it was extended from ([x, 1] -> x) is still there to be the chain's input.
        return l.out is not None and (l.gone_since is None or _source_of(l, found) is not None)

    starts = [l for l in links if can_start(l) and id(l.x.array) not in produced] or \
             [l for l in links if can_start(l)]
    for l in starts[:MAX_LINK_CANDIDATES]:
        l_params, l_values = roles(l)
        if l_params & l_values:
            continue
        extend([l], l_params, l_values, (False,))
    return best


# Ops that can share a chain: the same place for the samples and the same weight layout
# (a single sample's vector fits either).
_SAME_CONVENTION = {
    "xW": {"xW"}, "Wx": {"Wx"}, "xWt": {"xWt"}, "Wtx": {"Wtx"}, "sx": {"sx", "xw"}, "xw": {"sx", "xw"},
}


def _source_of(link: _Link, found: dict[int, Found] | None) -> Found | None:
    """The array the first layer's extended input was made from ([X, 1] -> X), if found."""
    stripped = _without_ones(link)
    if stripped is None or not found:
        return None
    samples = samples_of(link.op)
    for f in found.values():
        a = f.array
        if f is link.x or a.ndim != link.x.array.ndim or a.dtype.kind not in "fiu":
            continue
        if rows(a, samples).shape == stripped.shape and np.array_equal(rows(a, samples), stripped):
            return f
    return None


def _spec(path: list[_Link], aug: tuple = (), found: dict[int, Found] | None = None) -> ChainSpec:
    layers = []
    aug = tuple(aug) + (False,) * (len(path) - len(aug))
    # One convention for the whole chain: when later layers carry their bias in the weight,
    # so does the first, if the array its input was extended from is there to be its input.
    source = None
    if not path[0].bias_row and (any(aug[1:]) or (len(path) == 1 and found)):
        source = _source_of(path[0], found)
    if source is not None:
        aug = (True,) + aug[1:]
    for index, l in enumerate(path):
        layers.append(LayerSpec(
            bias_row=aug[index] or l.bias_row,
            W=l.W.path, op=l.op, x=source.path if index == 0 and source is not None else l.x.path,
            b=l.b.path if l.b is not None else None,
            # (a z no longer reachable was a temporary: recomputed from x, W and b)
            z=l.z.path if l.z is not None and (found is None or id(l.z.array) in found) else None,
            a=l.a.path if l.a is not None else None,
            function=l.function if l.a is not None else (l.function or "identity"),
            slope=l.slope,
            function_code=l.function_code,
            w_shape=tuple(l.W.array.shape),
            b_shape=tuple(l.b.array.shape) if l.b is not None else None,
        ))
    return ChainSpec(layers=layers)


# --- checking a chain later ---------------------------------------------------------------------


def observe(spec: ChainSpec, ctx: Context, *, check: bool = True,
            weights: list[np.ndarray] | None = None) -> ObservedForward | None:
    """The chain's arrays now, in rows form; None if they are missing or (with `check`)
    no longer satisfy the links (e.g. the parameters moved since the forward pass).

    `weights` (in the order of spec.param_paths()) stand for the parameters where a value
    the code did not keep is computed: a pass seen after its update was made with them."""
    x_raw = spec.input.array(ctx)
    if x_raw is None:
        return None
    x = rows(x_raw, spec.samples)
    zs, acts, params = [], [], []
    current = x
    raw_out = None
    given = iter(weights) if weights is not None else None
    for layer in spec.layers:
        if given is None:
            W = layer.W.array(ctx)
            b = layer.b.array(ctx) if layer.b is not None else None
        else:
            W = next(given, None)
            b = next(given, None) if layer.b is not None else None
        if W is None or W.shape != layer.w_shape or (layer.b is not None and b is None):
            return None
        params.append((W, b))
        Wio = layer.to_io(W.astype(np.float64))
        if layer.bias_row:
            b = layer.bias_io(W)
        if current.shape[1] != Wio.shape[0]:
            return None
        stored_z = layer.z.array(ctx) if layer.z is not None else None
        if layer.z is not None and stored_z is None and not _gone(layer.z, ctx):
            return None  # the forward pass has not computed this layer yet
        if stored_z is not None:
            z = rows(stored_z, layer.samples)
            if check:
                expect = current @ Wio + (0.0 if b is None else b.astype(np.float64).reshape(1, -1))
                if z.shape != expect.shape or not matches(z, expect, relative_tolerance(W, stored_z)):
                    return None
        else:
            z = current @ Wio + (0.0 if b is None else b.astype(np.float64).reshape(1, -1))
        if layer.computed:
            f = function_of(layer.function, layer.slope) if layer.function else None
            with np.errstate(all="ignore"):
                a = f(z) if f is not None else z
            raw_out = None
        elif layer.a is not None:
            stored_a = layer.a.array(ctx)
            if stored_a is None:
                return None
            a = rows(stored_a, layer.samples)
            if a.shape != z.shape:
                return None
            if check and stored_z is None and layer.function is not None:
                f = function_of(layer.function, layer.slope)
                with np.errstate(all="ignore"):
                    if f is not None and not matches(f(z), a, max(relative_tolerance(W, stored_a), 1e-7)):
                        return None
            raw_out = stored_a
        else:
            a = z
            raw_out = stored_z if stored_z is not None else None
        zs.append(z)
        acts.append(a)
        current = a
    if raw_out is None:
        raw_out = acts[-1]
    return ObservedForward(x=x, zs=zs, acts=acts, raw_x=x_raw, raw_out=raw_out, params=params)
