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
parameters as they are. Each program is checked once, on the first step: replayed on
the recorded tensors it must give the recorded prediction and loss, or it is dropped,
and the run stays "partly observed" as before. The mode is removed after the first
``backward()`` (or as soon as a module is seen), so later steps pay nothing for it.
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

    def run(self, *values, weights: dict | None = None):
        slots = dict(zip(self.inputs, values))
        weights = weights or {}

        def fill(x):
            if isinstance(x, _Slot):
                return slots[x.key]
            if isinstance(x, _Const):
                return weights.get(id(x.value), x.value)
            if isinstance(x, (list, tuple)):
                return type(x)(fill(v) for v in x)
            if isinstance(x, dict):
                return {k: fill(v) for k, v in x.items()}
            return x

        for func, args, kwargs, key in self.calls:
            slots[key] = func(*fill(args), **fill(kwargs))
        return slots[self.result]


class Forward:
    """The network of a hand-written loop: inputs -> prediction, and prediction -> loss."""

    def __init__(self, predict: Program, loss: Program | None, inputs, targets):
        self.predict_program, self.loss_program = predict, loss
        self.inputs, self.targets = inputs, targets

    def predict(self, x, weights: dict | None = None):
        return self.predict_program.run(x, weights=weights)

    def loss(self, pred, target, weights: dict | None = None):
        if self.loss_program is None or target is None:
            return None
        return self.loss_program.run(pred, target, weights=weights)


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
        joined = [data[i] for i in deps[last] - deps[pred_k] if data[i].dim() and data[i].shape[0] == rows]
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

        def template(x):
            if torch.is_tensor(x):
                if id(x) in named:
                    return _Slot(named[id(x)])
                j = made.get(id(x))
                if j in wanted and calls[j][3] is x:
                    return _Slot(j)
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
