"""Tutorial-style PyTorch (raw ``requires_grad`` tensors, no ``nn.Module``): the forward pass.

Such a loop has no module to run a probe batch through: the network *is* the few
torch calls between the data and the loss. A ``TorchFunctionMode`` records those calls
from the moment torch is watched until the first ``backward()``; then the tape is read
backwards from the loss:

* the *cone*: the recorded calls the loss depends on through tensors that need a
  gradient; their leaves are the parameters, and the tensors that need none are data;
* the *prediction*: the latest call that every path from its own data to the loss
  passes through, and that depends on less data than the loss (the targets join
  after it): for ``loss = ((y - (w * x + b)) ** 2).mean()`` it is ``w * x + b``;
* the *inputs* and *targets*: the one data tensor the prediction depends on, and the
  one that joins after it (a tensor made from another one, ``1 - y``, is not counted).

The calls from the inputs to the prediction, and from the prediction to the loss, are
kept as two small programs, replayed under ``no_grad`` on the probe rows with the
parameters as they are (a constant with one row per sample, such as ``1 - y``, is cut
to the probe rows). Each program is checked once, on the first step: replayed on
the recorded tensors it must give the recorded prediction and loss, or it is dropped,
and the run stays "partly observed" as before. The mode is removed after the first
``backward()`` (or as soon as a module is seen), so later steps pay nothing for it.

From the programs the watcher also reads what a module net would tell it:

* the *layers* (:func:`layer_slots`): each layer's pre-activation and the tensor the
  next layer's weight is applied to, so activation statistics and the activation
  function come from the replayed forward pass;
* the *loss kind* (:func:`recognise_loss`): squared error, binary or categorical
  cross-entropy, recognised by what the loss program computes on random predictions;
* :meth:`Program.rebind`: a loop that rebinds its parameters to new tensors each step
  (``w = (w - lr * w.grad).detach().requires_grad_()``) replays with the new ones.
"""

from __future__ import annotations

import weakref
from collections import deque
from typing import Any

MAX_GRAD_CALLS = 4096   # calls on gradient-carrying tensors kept (the last forward is what counts)
MAX_DATA_CALLS = 256    # calls on data tensors kept, to tell `1 - y` from `y`
MAX_CONE = 2000         # a cone this large is not a tutorial loop: not analysed


class _Const:
    """A tensor the forward uses as it was on the first step (a constant, a mask)."""

    def __init__(self, value):
        self.value = value


class _Range(_Const):
    """A ``torch.arange`` over the recorded rows (``p[torch.arange(n), y]``): replayed over the rows given."""


class _Slot:
    """A tensor computed earlier in the same program, or one of its two inputs."""

    def __init__(self, key):
        self.key = key


class Program:
    """Recorded torch calls, replayable with other inputs and the current parameters."""

    def __init__(self, calls: list, inputs: tuple, result: int):
        self.calls = calls      # [(func, args template, kwargs template, slot key)]
        self.inputs = inputs    # slot keys fed by run()'s positional arguments
        self.result = result

    def run(self, *values, weights: dict | None = None, rows=None):
        return self.run_all(*values, weights=weights, rows=rows)[self.result]

    def run_all(self, *values, weights: dict | None = None, rows=None) -> dict:
        """Every tensor the program computes, by slot key (a layer's pre-activation too).

        `rows` = (rows of the recorded batch, the rows replayed): a constant with one row
        per sample of the recorded batch (``1 - y``, a mask) is cut to the replayed rows."""
        slots = dict(zip(self.inputs, values))
        weights = weights or {}

        def fill(x):
            if isinstance(x, _Slot):
                return slots[x.key]
            if isinstance(x, _Range) and rows is not None:
                return x.value.new_tensor(range(len(rows[1])))
            if isinstance(x, range) and rows is not None and len(x) == rows[0] and x.start == 0 and x.step == 1:
                return range(len(rows[1]))    # p[range(len(y)), y]
            if isinstance(x, _Const):
                value = weights.get(id(x.value), x.value)
                # judged on the recorded tensor: a parameter's stand-in copy needs no grad, yet is no data
                return value[rows[1]] if rows is not None and _per_row(x.value, rows[0]) else value
            if isinstance(x, (list, tuple)):
                return type(x)(fill(v) for v in x)
            if isinstance(x, dict):
                return {k: fill(v) for k, v in x.items()}
            return x

        for func, args, kwargs, key in self.calls:
            slots[key] = func(*fill(args), **fill(kwargs))
        return slots

    def rebind(self, replaced: dict) -> None:
        """Read the tensors `replaced` maps (by id of the old one) as their new ones from now on.

        A loop that rebinds its parameters (``w = (w - lr * w.grad).detach().requires_grad_()``)
        makes new tensors every step; the program must replay with those, not the first ones."""
        def visit(x):
            if isinstance(x, _Const) and id(x.value) in replaced:
                x.value = replaced[id(x.value)]
            elif isinstance(x, (list, tuple)):
                for v in x:
                    visit(v)
            elif isinstance(x, dict):
                for v in x.values():
                    visit(v)

        for _, args, kwargs, _ in self.calls:
            visit(args)
            visit(kwargs)


class Forward:
    """The network of a hand-written loop: inputs -> prediction, and prediction -> loss."""

    def __init__(self, predict: Program, loss: Program | None, inputs, targets):
        self.predict_program, self.loss_program = predict, loss
        self.inputs, self.targets = inputs, targets

    @property
    def rows(self) -> int:
        """Rows of the batch the forward pass was recorded on."""
        return int(self.inputs.shape[0])

    def predict(self, x, weights: dict | None = None, rows=None):
        return self.predict_program.run(x, weights=weights, rows=rows)

    def loss(self, pred, target, weights: dict | None = None, rows=None):
        if self.loss_program is None or target is None:
            return None
        return self.loss_program.run(pred, target, weights=weights, rows=rows)

    def rebind(self, replaced: dict) -> None:
        """The parameters were rebound to new tensors (by id of the old one): replay with those."""
        for program in (self.predict_program, self.loss_program):
            if program is not None:
                program.rebind(replaced)


def _per_row(value, rows: int) -> bool:
    """A data tensor with one row per sample of the recorded batch (never a parameter)."""
    return getattr(value, "requires_grad", True) is False and value.dim() >= 1 and value.shape[0] == rows


def _tensors(x, is_tensor):
    """The tensors among a call's arguments (nested lists/tuples/dicts too)."""
    if is_tensor(x):
        yield x
    elif isinstance(x, (list, tuple)):
        for v in x:
            yield from _tensors(v, is_tensor)
    elif isinstance(x, dict):
        for v in x.values():
            yield from _tensors(v, is_tensor)


class Tape:
    """Records torch calls through a ``TorchFunctionMode`` until told to stop."""

    def __init__(self, torch):
        self.torch = torch
        self.grad_calls: deque = deque(maxlen=MAX_GRAD_CALLS)   # (func, args, kwargs, out), strong
        self.data_calls: deque = deque(maxlen=MAX_DATA_CALLS)   # (weakref(out), ids of its tensor args)
        self.ranges: deque = deque(maxlen=MAX_DATA_CALLS)       # weakrefs to torch.arange outputs: row indices
        self.recording = False
        self._mode = None

    def start(self) -> None:
        from torch.overrides import TorchFunctionMode

        tape = self

        class Recording(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                out = func(*args, **kwargs)
                if tape.recording:
                    tape._saw(func, args, kwargs, out)
                return out

        self._mode = Recording()
        self._mode.__enter__()
        self.recording = True

    def stop(self) -> None:
        """Stop recording and forget the tape; remove the mode if it is still on top.

        (A mode pushed by the script after ours stays above it: ours is then left in
        place, passing calls through, rather than popping the script's.)
        """
        self.recording = False
        self.grad_calls.clear()
        self.data_calls.clear()
        self.ranges.clear()
        mode, self._mode = self._mode, None
        if mode is None:
            return
        from torch.overrides import _get_current_function_mode_stack

        stack = _get_current_function_mode_stack()
        if stack and stack[-1] is mode:
            mode.__exit__(None, None, None)

    def _saw(self, func, args, kwargs, out) -> None:
        torch = self.torch
        if not torch.is_tensor(out):
            return
        if out.requires_grad:
            if out.is_leaf:
                return   # a parameter being made (randn(..., requires_grad=True)): not a computation
            self.grad_calls.append((func, args, kwargs, out))
        else:
            ids = tuple(id(t) for t in _tensors((args, kwargs), torch.is_tensor))
            if ids:
                self.data_calls.append((weakref.ref(out), ids))
            elif func is torch.arange:
                # `p[torch.arange(n), y]` picks each row's class: the range is an index, not targets
                self.ranges.append(weakref.ref(out))

    # -- reading the tape at the first backward() --------------------------------------------------
    def forward_of(self, loss) -> Forward | None:
        """The forward pass that produced `loss`, checked by replaying it; None if not found."""
        try:
            return self._forward_of(loss)
        except Exception:  # noqa: BLE001 - an unreadable tape means outputs not seen, not a crash
            return None

    def _forward_of(self, loss) -> Forward | None:
        torch = self.torch
        calls = list(self.grad_calls)
        made = {id(c[3]): k for k, c in enumerate(calls)}   # outputs are held: their ids are stable
        if made.get(id(loss)) is None:
            return None
        # The cone: every recorded call the loss depends on, found backwards from it.
        cone, stack, data = set(), [made[id(loss)]], {}
        while stack:
            k = stack.pop()
            if k in cone:
                continue
            cone.add(k)
            if len(cone) > MAX_CONE:
                return None
            for t in _tensors(calls[k][1:3], torch.is_tensor):
                j = made.get(id(t))
                if j is not None and calls[j][3] is t:
                    stack.append(j)
                elif not t.requires_grad:
                    data[id(t)] = t
                elif not t.is_leaf:
                    return None   # made by a call we did not see: the tape is incomplete
        order = sorted(cone)
        deps = self._data_deps(calls, order, made, data)
        last = made[id(loss)]
        pred_k = self._prediction(calls, order, made, deps, last)
        if pred_k is None:
            return None
        pred = calls[pred_k][3]
        rows = pred.shape[0] if pred.dim() else None
        inputs = [data[i] for i in deps[pred_k] if data[i].dim() and data[i].shape[0] == rows]
        if len(inputs) != 1:
            return None
        x = inputs[0]
        ranges = self._ranges()
        joined = [data[i] for i in deps[last] - deps[pred_k]
                  if data[i].dim() and data[i].shape[0] == rows and i not in ranges]
        targets = self._originals(joined)
        y = targets[0] if len(targets) == 1 else None
        ancestors = self._ancestors(calls, order, made, pred_k)
        predict = self._program(calls, [k for k in order if k in ancestors], made, {id(x): "x"}, pred_k)
        loss_program = None
        if y is not None:
            # what the loss adds to the prediction, and any parameter-only call it shares with
            # the forward (`w.t()` in a weight penalty): replayed too, so it is never stale
            after = [k for k in order if k not in ancestors or id(x) not in deps[k]]
            loss_program = self._program(calls, after, made, {id(pred): "pred", id(y): "y"}, last,
                                         inputs=("pred", "y"))
        with torch.no_grad():
            if not _close(torch, predict.run(x), pred):
                return None
            if loss_program is not None and not _close(torch, loss_program.run(pred.detach(), y), loss):
                loss_program = None
        return Forward(predict, loss_program, x, y)

    def _ranges(self) -> set[int]:
        """Ids of the live ``torch.arange`` outputs: row indices, not data."""
        return {id(r()) for r in self.ranges if r() is not None}

    def _data_deps(self, calls, order, made, data) -> dict[int, frozenset]:
        """For each call of the cone: the ids of the data tensors it depends on."""
        torch = self.torch
        deps: dict[int, frozenset] = {}
        for k in order:
            found = set()
            for t in _tensors(calls[k][1:3], torch.is_tensor):
                j = made.get(id(t))
                if j in deps and calls[j][3] is t:
                    found |= deps[j]
                elif id(t) in data:
                    found.add(id(t))
            deps[k] = frozenset(found)
        return deps

    def _prediction(self, calls, order, made, deps, last) -> int | None:
        """The latest call, before the targets join, that all of its data passes through."""
        for k in reversed(order):
            if not deps[k] or not deps[k] < deps[last]:
                continue
            if self._dominates(calls, order, made, k, deps[k], last):
                return k
        return None

    def _dominates(self, calls, order, made, k, sources, last) -> bool:
        """Whether every path from the `sources` data tensors to the loss passes call `k`."""
        torch = self.torch
        reached: set[int] = set()     # calls reached from the sources without passing k
        for j in order:
            if j == k:
                continue
            for t in _tensors(calls[j][1:3], torch.is_tensor):
                i = made.get(id(t))
                if id(t) in sources or (i in reached and calls[i][3] is t):
                    reached.add(j)
                    break
        return last not in reached

    def _ancestors(self, calls, order, made, k) -> set[int]:
        torch = self.torch
        out, stack = set(), [k]
        while stack:
            j = stack.pop()
            if j in out:
                continue
            out.add(j)
            for t in _tensors(calls[j][1:3], torch.is_tensor):
                i = made.get(id(t))
                if i is not None and calls[i][3] is t:
                    stack.append(i)
        return out

    def _originals(self, tensors: list) -> list:
        """Drop tensors made (in a few data calls) from another one of the list: `1 - y` is `y`."""
        made_from: dict[int, tuple] = {}
        for ref, ids in self.data_calls:
            out = ref()
            if out is not None:
                made_from[id(out)] = ids
        ids = {id(t) for t in tensors}

        def derived(t) -> bool:
            frontier, seen = set(made_from.get(id(t), ())), set()
            for _ in range(4):
                if frontier & (ids - {id(t)}):
                    return True
                seen |= frontier
                frontier = {i for f in frontier for i in made_from.get(f, ())} - seen
            return False

        return [t for t in tensors if not derived(t)]

    def _program(self, calls, ks, made, named: dict, result: int, inputs=("x",)) -> Program:
        torch = self.torch
        wanted = set(ks)
        ranges = self._ranges()

        def template(x):
            if torch.is_tensor(x):
                if id(x) in named:
                    return _Slot(named[id(x)])
                j = made.get(id(x))
                if j in wanted and calls[j][3] is x:
                    return _Slot(j)
                if id(x) in ranges and x.dim() == 1:
                    return _Range(x)
                return _Const(x)   # a parameter (read as it is at replay) or a constant
            if isinstance(x, (list, tuple)):
                return type(x)(template(v) for v in x)
            if isinstance(x, dict):
                return {k: template(v) for k, v in x.items()}
            return x

        program = [(calls[k][0], template(calls[k][1]), template(calls[k][2]), k) for k in ks]
        return Program(program, inputs, result)


def _close(torch, a, b) -> bool:
    if not (torch.is_tensor(a) and torch.is_tensor(b)) or a.shape != b.shape:
        return False
    return bool(torch.allclose(a.detach().double(), b.detach().double(), rtol=1e-5, atol=1e-6, equal_nan=True))


# -- the layers of a recorded forward pass ------------------------------------------------------------

def layer_slots(program: Program, layers: list[list[Any]]) -> list[tuple[Any, Any] | None]:
    """For each layer (its parameter tensors): (pre-activation slot, the slot its weight is applied to).

    A layer's pre-activation is the first call that depends on the inputs and on all of the
    layer's parameters (``X @ W1 + b1``: the ``+ b1``); what it is applied to is the input-side
    argument of the first call combining the inputs with its weight (``h`` in ``h @ W2``). The
    next layer's input is then this layer's activation, whatever function made it -- a
    ``torch.sigmoid`` call or a hand-written ``1 / (1 + torch.exp(-z))``. None for a layer
    whose parameters the forward pass does not combine with the inputs.
    """
    on_data: set = {"x"}                 # slots that depend on the inputs
    params_of: dict[Any, set] = {"x": set()}
    entry: dict[int, Any] = {}           # id(parameter) -> first input-dependent call using it
    applied_to: dict[Any, Any] = {}      # call key -> its one input-dependent argument slot
    wanted = {id(t) for tensors in layers for t in tensors}
    for func, args, kwargs, key in program.calls:
        data_args, params = [], set()
        for x in _templates((args, kwargs)):
            if isinstance(x, _Slot):
                params |= params_of.get(x.key, set())
                if x.key in on_data:
                    data_args.append(x.key)
            elif isinstance(x, _Const) and id(x.value) in wanted:
                params.add(id(x.value))
        params_of[key] = params
        if not data_args:
            continue
        on_data.add(key)
        if len(set(data_args)) == 1:
            applied_to[key] = data_args[0]
        for p in params:
            entry.setdefault(p, key)
    out: list[tuple[Any, Any] | None] = []
    for tensors in layers:
        keys = [entry.get(id(t)) for t in tensors]
        if not tensors or any(k is None for k in keys):
            out.append(None)
            continue
        out.append((max(keys), applied_to.get(keys[0])))
    return out


def _templates(x):
    """The slots and constants of a call's argument template (nested lists/tuples/dicts too)."""
    if isinstance(x, (_Slot, _Const)):
        yield x
    elif isinstance(x, (list, tuple)):
        for v in x:
            yield from _templates(v)
    elif isinstance(x, dict):
        for v in x.values():
            yield from _templates(v)


# -- the kind of a hand-written loss -------------------------------------------------------------------

LOSS_TRIALS = 8           # random predictions the loss program is compared on
LOSS_FIT_TOL = 1e-3       # largest misfit, as a share of the loss's spread over the trials


def _labels(torch, pred, y):
    """`y` as integer class labels for `pred`'s rows (a vector or a column of them), or None."""
    if y.dim() == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if pred.dim() != 2 or pred.shape[1] < 2 or y.dim() != 1 or y.shape[0] != pred.shape[0]:
        return None
    if y.dtype.is_floating_point and not bool((y == y.round()).all()):
        return None
    labels = y.long()
    if labels.numel() and (labels.min() < 0 or labels.max() >= pred.shape[1]):
        return None
    return labels


def _cross_entropy(torch, logp, y):
    """-mean log-probability of the true class: one-hot (or soft) rows, or integer labels."""
    labels = _labels(torch, logp, y)
    if labels is not None:
        return -logp.gather(1, labels[:, None]).mean()
    if logp.dim() == 2 and logp.shape[1] >= 2 and y.shape == logp.shape:
        return -(y * logp).sum(dim=1).mean()
    return None


def _binary_cross_entropy(torch, p, y):
    if y.numel() == 0 or bool((y < 0).any() or (y > 1).any()):
        return None    # (not 0/1 targets: this is no binary cross-entropy)
    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()


def _is_log_probability(torch, pred) -> bool:
    if pred.dim() != 2 or pred.shape[1] < 2:
        return False
    return bool(((pred.double().exp().sum(dim=1) - 1).abs() < 1e-4).all())


# form -> (loss kind, what the trial predictions are, the loss of a prediction p against y)
_LOSS_FORMS = {
    "squared error": ("mse", "probability", lambda torch, p, y: ((p - y) ** 2).mean()),
    "absolute error": ("mse", "probability", lambda torch, p, y: (p - y).abs().mean()),
    "binary cross-entropy": ("bce", "probability", _binary_cross_entropy),
    "cross-entropy": ("ce", "probability", lambda torch, p, y: _cross_entropy(torch, torch.log(p), y)),
    "cross-entropy on log-probabilities": ("ce", "log-probability", _cross_entropy),
    # the prediction is the logits when the loss squashes them itself (sigmoid called twice)
    "binary cross-entropy on logits": ("bce", "logits",
                                       lambda torch, z, y: _binary_cross_entropy(torch, torch.sigmoid(z), y)),
    "cross-entropy on logits": ("ce", "logits",
                                lambda torch, z, y: _cross_entropy(torch, torch.log_softmax(z, dim=-1), y)),
}


def _trial(torch, pred, domain: str, generator):
    """A random prediction of `pred`'s shape, in the domain a loss form is defined on."""
    shape = pred.shape
    if domain == "logits":
        return (2.0 * torch.randn(shape, generator=generator, dtype=torch.float64)).to(pred.dtype)
    if domain == "log-probability":
        rows = torch.rand(shape, generator=generator, dtype=torch.float64) + 0.05
        return torch.log(rows / rows.sum(dim=-1, keepdim=True)).to(pred.dtype)
    # (0.05, 0.95): every loss of a probability is finite there, clamped or not
    return (0.05 + 0.9 * torch.rand(shape, generator=generator, dtype=torch.float64)).to(pred.dtype)


def recognise_loss(torch, forward: Forward, pred, target, rows=None) -> tuple[str, str] | None:
    """(loss kind, form) of a hand-written loss, when exactly one known kind explains it; else None.

    The loss program is replayed on random predictions; a form explains it when the
    program's loss is a positive multiple of the form's plus a constant on every trial
    (sum or mean, a factor 1/2, and a weight penalty all keep the kind). The trials are
    random, not the recorded prediction, so that two forms that agree on one prediction
    are still told apart; two kinds explaining it is ambiguous, and no kind is claimed.
    `rows` are as for :meth:`Program.run_all` when `pred` is on fewer rows than recorded.
    """
    if forward.loss_program is None or target is None or not torch.is_tensor(pred):
        return None
    kinds: dict[str, str] = {}
    with torch.no_grad():
        for form, (kind, domain, formula) in _LOSS_FORMS.items():
            if domain == "log-probability" and not _is_log_probability(torch, pred):
                continue   # (a loss linear in its input is a cross-entropy only on log-probabilities)
            if _explains(torch, forward, pred, target, domain, formula, rows):
                kinds.setdefault(kind, form)
    if len(kinds) != 1:
        return None
    return next(iter(kinds.items()))


def _explains(torch, forward: Forward, pred, target, domain: str, formula, rows=None) -> bool:
    import numpy as np

    generator = torch.Generator().manual_seed(0)
    program, candidate = [], []
    try:
        for _ in range(LOSS_TRIALS):
            p = _trial(torch, pred, domain, generator)
            value, reference = forward.loss(p, target, rows=rows), formula(torch, p, target)
            if reference is None or not torch.is_tensor(value) or value.numel() != 1:
                return False
            program.append(float(value.reshape(())))
            candidate.append(float(reference.reshape(())))
    except Exception:  # noqa: BLE001 - a form that does not apply to these shapes does not explain it
        return False
    L, C = np.array(program), np.array(candidate)
    if not (np.isfinite(L).all() and np.isfinite(C).all()) or L.std() == 0 or C.std() == 0:
        return False
    scale, offset = np.polyfit(C, L, 1)
    misfit = np.abs(L - (scale * C + offset)).max()
    return bool(scale > 0 and misfit <= LOSS_FIT_TOL * L.std())
