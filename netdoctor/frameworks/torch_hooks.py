"""PyTorch: global hooks that observe any model, any loop and any optimizer.

What is hooked, and why each:

* ``register_module_forward_pre_hook`` / ``register_module_forward_hook`` (global):
  which module the user calls (the *root*: a module with parameters called from
  outside any other module), its first input batch (the probe batch and the data
  facts), the mode it trains in, and -- during netdoctor's own probe forward only --
  every layer's input and output;
* ``register_optimizer_step_pre_hook`` / ``_post_hook`` (global): a step is one
  ``optimizer.step()``; before it the weights are copied on scheduled steps, after it
  the gradient used and the change applied are measured;
* ``torch.Tensor.backward``: the loss of each step, whether ``.grad`` still held the
  previous step's gradient (never zeroed), and, for tutorial loops with no optimizer
  (``w.data.sub_(lr * w.grad)``), the parameters themselves (the leaves of the loss's
  graph, followed by position when each update rebinds them to new tensors) and the
  steps (a backward after which the leaves moved);
* the loss functions of ``torch.nn.functional`` (which ``nn.MSELoss`` & co. call too):
  the loss kind, the prediction and target shapes (broadcasting), the targets, and
  whether a cross-entropy receives probabilities instead of logits;
* ``nn.Module.__init__`` and ``Optimizer.__init__``: the user's line that built each
  layer, loss and optimizer, for the findings' locations.

Statistics use torch operations on the tensors' own device; a few scalars come to the
CPU per recorded step (:mod:`netdoctor.frameworks.tensor_stats`). The probe batch (at
most 64 rows of the first batch) runs through the model in eval mode under
``no_grad`` at scheduled steps, and the modes are restored exactly afterwards.
"""

from __future__ import annotations

import math
import sys
import weakref
from typing import Any

import numpy as np

from . import STATE
from .session import FrameworkSession, PROBE_SIZE, layer_info
from .sites import UserFiles, location, user_site
from .tensor_stats import LayerTensors, Ops, layer_stats
from .torch_tape import Tape, layer_slots, recognise_loss
from ..trace import MODEL

DATA_ROWS = 4096          # rows of the first batch kept for the data facts
GRAD_CHECKS_DENSE = 16    # stale-gradient checks at every step for this many steps, then sparser
_LOSSES = {               # torch.nn.functional name -> (netdoctor loss kind, applies its own softmax/sigmoid)
    "mse_loss": ("mse", False),
    "l1_loss": ("mse", False),
    "smooth_l1_loss": ("mse", False),
    "huber_loss": ("mse", False),
    "binary_cross_entropy": ("bce", False),
    "binary_cross_entropy_with_logits": ("bce", True),
    "cross_entropy": ("ce", True),
    "nll_loss": ("ce", False),
}
_MODE_SENSITIVE = ("Dropout", "BatchNorm", "AlphaDropout", "InstanceNorm")


def torch_ops() -> Ops:
    """Reductions as few torch calls as possible: on small networks each call's dispatch
    costs more than its arithmetic, so sums of squares and products are one ``torch.dot``
    over flat views (no temporaries), and the scalars travel in one stacked tensor."""
    import torch

    blas = (torch.float32, torch.float64)

    def flat(x):
        return x.detach().reshape(-1)

    def dot(x, y):
        x, y = flat(x), flat(y)
        if x.dtype == y.dtype and x.dtype in blas:
            return torch.dot(x, y)
        return (x.double() * y.double()).sum()   # half precision would overflow a sum of squares

    def nonfinite(x):
        return (~torch.isfinite(x)).sum()

    def fetch(xs):
        dtype = xs[0].dtype
        if all(x.dtype == dtype and x.dim() == 0 for x in xs):
            return torch.stack(xs).tolist()
        return torch.stack([x.detach().to(torch.float64).reshape(()) for x in xs]).cpu().tolist()

    return Ops(
        sq=lambda x: dot(x, x),
        total=lambda x: x.detach().sum(),
        abs_total=lambda x: x.detach().abs().sum(),
        dot=dot,
        nonfinite=lambda x: nonfinite(x.detach()),
        size=lambda x: int(x.numel()),
        fetch=fetch,
    )


def identify_activation(z: np.ndarray, a: np.ndarray) -> str | None:
    """Which elementwise (or row-softmax) function maps `z` to `a`, or None."""
    if z.shape != a.shape or z.size == 0:
        return None
    with np.errstate(all="ignore"):
        candidates = {
            "linear": z,
            "relu": np.maximum(z, 0.0),
            "sigmoid": 1.0 / (1.0 + np.exp(-z)),
            "tanh": np.tanh(z),
            "leaky_relu": np.where(z > 0, z, 0.01 * z),
            "softmax": _softmax(z),
            "log_softmax": np.log(_softmax(z)),
        }
    scale = max(float(np.nanmax(np.abs(a))) if np.isfinite(a).any() else 1.0, 1e-6)
    best, err = None, math.inf
    for name, value in candidates.items():
        e = float(np.nanmax(np.abs(value - a))) if value.shape == a.shape else math.inf
        if e < err:
            best, err = name, e
    if best == "softmax" and z.ndim >= 2 and z.shape[-1] == 1:
        return "softmax"
    # ties (relu == linear on positive z, ...) go to the simpler function listed first
    return best if err <= 1e-4 * max(scale, 1.0) else None


def _softmax(z: np.ndarray) -> np.ndarray:
    if z.ndim < 2:
        z = z.reshape(1, -1)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _is_bias_of(p: Any, weight: Any) -> bool:
    """Whether leaf `p`, found right after `weight`, is that weight's bias.

    A vector of one of its sizes, or a row ``zeros(1, units)`` broadcast over the batch."""
    if p.dim() == 1:
        return p.shape[0] in (weight.shape[-1], weight.shape[0])
    return p.dim() == 2 and weight.dim() == 2 and p.shape[0] == 1 < weight.shape[0] and \
        p.shape[1] == weight.shape[1]


def _np(t: Any, rows: int | None = None) -> np.ndarray:
    t = t.detach()
    if rows is not None and t.ndim >= 1:
        t = t[:rows]
    return t.to("cpu").double().numpy()


class TorchWatcher:
    """Watches every torch model trained in this process; builds one Trace."""

    def __init__(self, name: str = "original", thresholds: Any = None, user_files: Any = None,
                 module_globals: dict | None = None):
        import torch

        self.torch = torch
        self.name = name
        self.files = user_files if isinstance(user_files, UserFiles) else UserFiles(user_files)
        self.session = FrameworkSession(name, "torch", thresholds)
        self.ops = torch_ops()
        self.module_globals = module_globals
        self._handles: list = []
        self._patched: list[tuple[Any, str, Any]] = []
        self.sites: dict[int, Any] = {}
        self.optimizers: list = []          # weak references, in construction order
        self.root = None
        self.depth = 0
        self.step = 0
        self.backward_calls = 0
        self.manual = False                 # steps found from hand-written updates
        self.params: list[tuple[str, Any]] | None = None
        self.layers: list[dict[str, Any]] = []
        self._first_input = None
        self._first_target = None
        self._loss_fn = None                # (original function, keyword arguments) for the probe loss
        self._loss_tensor = None
        self.tape = None                    # the calls of a loop with no module (torch_tape), until its first backward
        self.forward = None                 # that loop's forward pass, replayable on the probe rows
        self._before: dict[int, Any] | None = None
        self._stepped_since_backward = False
        self._capture: list | None = None
        self._snap: dict[int, Any] | None = None
        self._snap_grads: dict[int, Any] | None = None
        self._snap_loss = None
        self._started = False
        self._order: dict[int, int] = {}
        self._owned = weakref.WeakKeyDictionary()   # optimizer -> (its param groups, owns ours)
        self.facts = self.session.facts
        self.facts.update(backward_calls=0, optimizer_steps=0, grad_checks=0, grad_stale=0,
                          train_steps_in_eval=0, mode_sensitive=[], loss_calls=0)

    # -- installing ------------------------------------------------------------------------------
    def install(self) -> None:
        torch = self.torch
        import torch.nn.functional as F
        from torch.nn.modules import module as module_mod
        from torch.optim import optimizer as optim_mod

        self._handles = [
            module_mod.register_module_forward_pre_hook(self._pre_forward),
            module_mod.register_module_forward_hook(self._post_forward),
            optim_mod.register_optimizer_step_pre_hook(self._pre_step),
            optim_mod.register_optimizer_step_post_hook(self._post_step),
        ]
        watcher = self
        backward = torch.Tensor.backward

        def watched_backward(tensor, *args, **kwargs):
            if STATE["keras_fits"]:
                return backward(tensor, *args, **kwargs)
            watcher._before_backward(tensor)
            result = backward(tensor, *args, **kwargs)
            watcher._after_backward(tensor)
            return result

        module_init = torch.nn.Module.__init__

        def watched_module_init(module, *args, **kwargs):
            module_init(module, *args, **kwargs)
            site = user_site(watcher.files, 2)
            if site is not None:
                watcher.sites.setdefault(id(module), site)

        optim_init = torch.optim.Optimizer.__init__

        def watched_optim_init(optimizer, *args, **kwargs):
            optim_init(optimizer, *args, **kwargs)
            watcher.optimizers.append(weakref.ref(optimizer))
            site = user_site(watcher.files, 2)
            if site is not None:
                watcher.sites.setdefault(id(optimizer), site)

        if self.root is None and "keras" not in sys.modules:
            # no module yet: the network may be raw tensors, seen only as the calls they make
            self.tape = Tape(torch)
            self.tape.start()
        self._patch(torch.Tensor, "backward", watched_backward)
        self._patch(torch.nn.Module, "__init__", watched_module_init)
        self._patch(torch.optim.Optimizer, "__init__", watched_optim_init)
        for fname in _LOSSES:
            original = getattr(F, fname, None)
            if original is not None:
                self._patch(F, fname, self._loss_wrapper(fname, original))

    def _patch(self, owner: Any, attr: str, value: Any) -> None:
        self._patched.append((owner, attr, getattr(owner, attr)))
        setattr(owner, attr, value)

    def stop_tape(self) -> None:
        """No forward pass to find (a module was seen, a Keras fit trains, or it was read)."""
        if self.tape is not None:
            self.tape.stop()
            self.tape = None

    def uninstall(self) -> None:
        self.stop_tape()
        for handle in self._handles:
            handle.remove()
        self._handles = []
        for owner, attr, original in reversed(self._patched):
            setattr(owner, attr, original)
        self._patched = []

    # -- forward -------------------------------------------------------------------------------
    def _pre_forward(self, module, args):
        if STATE["keras_fits"]:
            self.stop_tape()
            return None
        if self._capture is None and self.depth == 0 and self.torch.is_grad_enabled():
            if self.root is None and any(True for _ in module.parameters()):
                self.root = module
                self.stop_tape()   # the module is the network: its hooks see the probe batch
            if module is self.root and self._first_input is None and args and self.torch.is_tensor(args[0]):
                self._first_input = args[0].detach()[:DATA_ROWS].clone()
        self.depth += 1
        return None

    def _post_forward(self, module, args, output):
        if STATE["keras_fits"]:
            return None
        self.depth = max(self.depth - 1, 0)
        if self._capture is not None:
            if self.torch.is_tensor(output) and args and self.torch.is_tensor(args[0]):
                self._capture.append((module, args[0], output))
        elif self.depth == 0 and module is self.root and self.torch.is_tensor(output):
            self._root_output = output
        return None

    # -- losses --------------------------------------------------------------------------------
    def _loss_wrapper(self, fname: str, original):
        watcher = self
        kind, own_squash = _LOSSES[fname]

        def loss(input, target, *args, **kwargs):
            if not STATE["keras_fits"] and watcher.torch.is_grad_enabled():
                watcher._saw_loss(fname, kind, own_squash, original, input, target, args, kwargs)
            return original(input, target, *args, **kwargs)

        loss.__wrapped__ = original
        loss.__name__ = fname
        return loss

    def _saw_loss(self, fname, kind, own_squash, original, input, target, args, kwargs) -> None:
        facts = self.facts
        facts["loss_calls"] += 1
        if facts.get("loss_fn") is not None:
            return
        torch = self.torch
        if not (torch.is_tensor(input) and torch.is_tensor(target)):
            return
        facts.update(loss_fn=fname, loss_kind=kind, from_logits=own_squash,
                     pred_shape=list(input.shape), target_shape=list(target.shape))
        site = user_site(self.files, 3)
        facts["loss_call_location"] = site
        # the loss module that called us, if any: its construction line is "where the loss is built"
        frame = sys._getframe(2)
        while frame is not None and frame.f_code.co_filename not in self.files:
            owner = frame.f_locals.get("self")
            if isinstance(owner, torch.nn.Module) and id(owner) in self.sites:
                facts["loss_location"] = self.sites[id(owner)]
                facts["loss_module"] = type(owner).__name__
            frame = frame.f_back
        facts.setdefault("loss_location", site)
        if kind == "mse" and tuple(input.shape) != tuple(target.shape):
            try:
                broadcast = tuple(torch.broadcast_shapes(input.shape, target.shape))
            except RuntimeError:
                broadcast = None
            facts["broadcast"] = {"pred_shape": list(input.shape), "target_shape": list(target.shape),
                                  "result_shape": None if broadcast is None else list(broadcast)}
        with torch.no_grad():
            x = input.detach()
            if kind == "ce" and x.dim() >= 2 and x.shape[-1] > 1:
                rows = x.reshape(-1, x.shape[-1])[:256].double()
                sums = rows.sum(dim=-1)
                facts["ce_input_is_probability"] = bool(((rows >= 0) & (rows <= 1)).all()
                                                        and ((sums - 1).abs() < 1e-4).all())
                facts["ce_input_is_log_probability"] = bool((rows <= 1e-6).all() and
                                                            ((rows.exp().sum(dim=-1) - 1).abs() < 1e-4).all())
            if kind == "bce":
                facts["bce_input_range"] = [float(x.min()), float(x.max())] if x.numel() else None
            t = target.detach()
            facts["target_min"] = float(t.min()) if t.numel() else math.nan
            facts["target_max"] = float(t.max()) if t.numel() else math.nan
        self._first_target = target.detach()[:DATA_ROWS].clone()
        self._loss_fn = (original, args, {k: v for k, v in kwargs.items() if k != "weight"})

    # -- backward ------------------------------------------------------------------------------
    def _before_backward(self, loss) -> None:
        self.backward_calls += 1
        self.facts["backward_calls"] = self.backward_calls
        if self.backward_calls == 1:
            self.facts["backward_location"] = user_site(self.files, 3)
        self._loss_tensor = loss
        if self.params is None:
            self._find_params(loss)
        elif self._rebind_checks > 0 and self.root is None and not self.optimizer_mode:
            self._follow_rebinding(self._leaves(loss))
        if self.tape is not None:
            self._read_tape(loss)
        if not self.optimizer_mode:
            # Parameters that moved with no optimizer step in between: a hand-written update.
            self._manual_step_check()
        if self._stepped_since_backward or (self.manual and self._moved):
            self._check_stale_grads()
        self._stepped_since_backward = False
        self._moved = False

    optimizer_mode = False   # an optimizer's step() updates the parameters (decided at its first step)

    def _after_backward(self, loss) -> None:
        if not self.optimizer_mode and self.params:
            # what the next update will use, and where the parameters stand before it
            self._snap = {id(p): p.detach().clone() for _, p in self.params}
            self._snap_grads = {id(p): None if p.grad is None else p.grad.detach().clone() for _, p in self.params}
            self._snap_loss = loss.detach()

    _moved = False

    def _find_params(self, loss) -> None:
        torch = self.torch
        if self.root is not None:
            self.params = [(n, p) for n, p in self.root.named_parameters()]
            return
        leaves = self._leaves(loss)
        names = {}
        for key, value in (self.module_globals or {}).items():
            if torch.is_tensor(value):
                names.setdefault(id(value), key)
        self.params = [(names.get(id(p), f"param{i}"), p) for i, p in enumerate(leaves)]

    def _leaves(self, loss) -> list:
        """The tensors the loss's graph accumulates gradients into, in a fixed order.

        The walk visits the graph the same way for the same code, so the k-th leaf of one
        step's loss is the k-th of the next: that is how rebound parameters are followed."""
        torch = self.torch
        leaves, seen, stack = [], set(), [getattr(loss, "grad_fn", None)]
        while stack:
            fn = stack.pop()
            if fn is None or id(fn) in seen:
                continue
            seen.add(id(fn))
            variable = getattr(fn, "variable", None)
            if variable is not None and torch.is_tensor(variable):
                leaves.append(variable)
            stack.extend(next_fn for next_fn, _ in getattr(fn, "next_functions", ()))
        leaves.reverse()
        return leaves

    # -- parameters rebound to new tensors each step ------------------------------------------------
    # ``w = (w - lr * w.grad).detach().requires_grad_()`` leaves the tensors seen at the first step
    # unchanged, so they would never move again. The leaves of each loss are compared with the
    # parameters by position; new ones take the old ones' places (names, layers, the forward pass,
    # the copies taken after the last backward). A loop that has not rebound in its first few
    # backward() calls does not, and is not walked again.
    _rebind_checks = 3

    def _follow_rebinding(self, leaves: list) -> None:
        old = [p for _, p in self.params]
        if len(leaves) == len(old) and all(a is b for a, b in zip(leaves, old)):
            if not self.facts.get("rebound_steps"):
                self._rebind_checks -= 1
            return
        if len(leaves) != len(old) or any(a.shape != b.shape for a, b in zip(leaves, old)):
            # a different network, not the same one rebound: keep what was seen, and say so
            self.facts["rebinding_unfollowed"] = True
            self._rebind_checks = 0
            return
        self._rebind({id(o): n for o, n in zip(old, leaves) if o is not n})
        self.facts["rebound_steps"] = self.facts.get("rebound_steps", 0) + 1

    def _rebind(self, replaced: dict) -> None:
        """Put new tensors (by id of the old one) in the old ones' places everywhere they are held."""
        def new(p):
            return None if p is None else replaced.get(id(p), p)

        def rekey(copies):
            return None if copies is None else {id(replaced[k]) if k in replaced else k: v
                                                for k, v in copies.items()}

        self.params = [(name, new(p)) for name, p in self.params]
        for spec in self.layers:
            spec["weight"], spec["bias"] = new(spec["weight"]), new(spec["bias"])
            spec["tensors"] = [new(p) for p in spec["tensors"]]
        self._snap, self._snap_grads = rekey(self._snap), rekey(self._snap_grads)
        if self.forward is not None:
            self.forward.rebind(replaced)

    def _rebind_from_globals(self) -> None:
        """After the last backward(): the update that followed it rebound the script's globals."""
        if not self.facts.get("rebound_steps") or not self.module_globals or not self.params:
            return
        torch = self.torch
        leaves = []
        for name, p in self.params:
            value = self.module_globals.get(name)
            leaves.append(value if torch.is_tensor(value) and value.shape == p.shape else p)
        self._follow_rebinding(leaves)

    def _read_tape(self, loss) -> None:
        """At the first backward() of a loop with no module: its forward pass, inputs and targets."""
        if self.root is None:
            self.forward = self.tape.forward_of(loss)
        self.stop_tape()
        forward = self.forward
        if forward is None:
            return
        self._first_input = forward.inputs.detach()[:DATA_ROWS].clone()
        if forward.targets is not None and self._first_target is None:
            self._first_target = forward.targets.detach()[:DATA_ROWS].clone()

    def _check_stale_grads(self) -> None:
        checks = self.facts["grad_checks"]
        if checks >= GRAD_CHECKS_DENSE and checks % 16:
            self.facts["grad_checks"] += 1   # seen, not looked at: checking costs a pass per tensor
            return
        # An optimizer's zero_grad() (or its absence) treats every tensor alike: looking at the
        # smallest gradient present tells as much as looking at all, for a fraction of a pass.
        grads = [p.grad for _, p in self.params or () if p.grad is not None]
        smallest = min(grads, key=lambda g: g.numel(), default=None)
        stale = smallest is not None and bool((smallest != 0).any())
        self.facts["grad_checks"] += 1
        self.facts["grad_checked"] = self.facts.get("grad_checked", 0) + 1
        self.facts["grad_stale"] += int(stale)

    # -- steps: optimizer ----------------------------------------------------------------------
    def _pre_step(self, optimizer, args, kwargs):
        if STATE["keras_fits"] or self.manual:
            return None   # hand-written updates were found first; an optimizer here is not the trainer
        if self.params is None:
            self.params = [(n, p) for n, p in self.root.named_parameters()] if self.root is not None else None
        if not self._owns(optimizer):
            return None
        if not self.optimizer_mode:
            self.optimizer_mode = True
            self._snap = self._snap_grads = None
            if all(ref() is not optimizer for ref in self.optimizers):
                self.optimizers.append(weakref.ref(optimizer))
        step = self.step + 1
        if step == 1:
            self._start(optimizer)
        if self.session.wants_params(step):
            with self.session.timing("params"):
                self._before = {id(p): p.detach().clone() for spec in self.layers for p in spec["tensors"]}
        else:
            self._before = None
        if self.root is not None:
            self._check_mode()
        return None

    def _post_step(self, optimizer, args, kwargs):
        if STATE["keras_fits"] or self.manual or not self._owns(optimizer):
            return None
        self.step += 1
        self.session.steps = self.step
        self.facts["optimizer_steps"] = self.step
        self._stepped_since_backward = True
        self._record_step(self.step, self._before, grads=None, loss=self._loss_tensor)
        self._before = None
        self.session.after_step(self.step)
        return None

    def _owns(self, optimizer) -> bool:
        if self.params is None:
            return True
        # asked twice a step: the answer changes only when the optimizer gains a param group
        groups = len(optimizer.param_groups)
        known = self._owned.get(optimizer)
        if known is None or known[0] != groups:
            ids = {id(p) for group in optimizer.param_groups for p in group["params"]}
            known = self._owned[optimizer] = (groups, any(id(p) in ids for _, p in self.params))
        return known[1]

    _sensitive = None

    def _check_mode(self) -> None:
        root = self.root
        if self._sensitive is None:  # the modules whose behaviour depends on the mode, once
            self._sensitive = [name for name, m in root.named_modules()
                               if type(m).__name__.startswith(_MODE_SENSITIVE)]
        sensitive = self._sensitive
        if sensitive and not root.training:
            self.facts["train_steps_in_eval"] += 1
            self.facts["mode_sensitive"] = sensitive[:5]

    # -- steps: hand-written updates -------------------------------------------------------------
    def _manual_step_check(self) -> None:
        if self._snap is None or not self.params:
            return
        moved = any(not self.torch.equal(p.detach(), self._snap[id(p)]) for _, p in self.params)
        if not moved:
            return
        self.manual = self._moved = True
        if self.step == 0:
            self._start(None, weights=self._snap)
        self.step += 1
        self.session.steps = self.step
        self._record_step(self.step, self._snap, grads=self._snap_grads, loss=self._snap_loss)
        self._snap = None  # counted; the next backward() takes a new snapshot
        self.session.after_step(self.step)

    # -- the first step: what the model is ------------------------------------------------------------
    def _start(self, optimizer, weights: dict | None = None) -> None:
        """Step 0; `weights` stand in for the parameters' values before the first update."""
        self._started = True
        torch = self.torch
        params = self.params or []
        if self.root is not None:
            self._layers_from_root()
        else:
            self._layers_from_leaves(params)
        if optimizer is not None:
            self.facts["optimizer"] = type(optimizer).__name__
            self.facts["optimizer_location"] = self.sites.get(id(optimizer))
            self.facts["lr"] = optimizer.param_groups[0].get("lr")
            owned = {id(p) for group in optimizer.param_groups for p in group["params"]}
            self.facts["params_outside_optimizer"] = [
                n for n, p in params if p.requires_grad and id(p) not in owned]
        self.facts["frozen"] = [spec["name"] for spec in self.layers if spec["frozen"]]
        values: dict = {}
        self._param_values(values, before=None, grads=None, weights=weights)
        outputs = self._probe(values, describe=True, weights=weights)
        loss = self._loss_float(self._loss_tensor if optimizer is not None else self._snap_loss)
        if loss is None:
            loss = values.get((MODEL, "probe_loss"))
        if loss is not None:
            values[(MODEL, "loss")] = loss
        self.session.record(0, values, outputs, params=True)
        for spec in self.layers:
            w, b = self._numpy_params(spec, weights)
            self.session.param_event("param_init", spec["name"], w, b, spec["activation"], 0)

    def _layers_from_root(self) -> None:
        torch = self.torch
        specs = []
        for name, module in self.root.named_modules():
            own = dict(module.named_parameters(recurse=False))
            weight = own.get("weight")
            if weight is None or weight.dim() < 2:
                continue
            bias = own.get("bias")
            specs.append({
                "name": name or type(module).__name__.lower(), "module": module, "weight": weight, "bias": bias,
                "kind": type(module).__name__, "activation": None,
                "fan_in": int(np.prod(weight.shape[1:])), "fan_out": int(weight.shape[0]),
                "location": self.sites.get(id(module)),
                "frozen": not any(p.requires_grad for p in own.values()),
                "tensors": [p for p in (weight, bias) if p is not None],
            })
        self.layers = specs

    def _layers_from_leaves(self, params) -> None:
        specs, current = [], None
        for name, p in params:
            if current is not None and current["bias"] is None and _is_bias_of(p, current["weight"]):
                current["bias"] = p
                current["tensors"].append(p)
                current["name"] = f"{current['name']}, {name}"
                continue
            current = {"name": name, "module": None, "weight": p, "bias": None, "kind": "tensor",
                       "activation": None, "fan_in": int(p.shape[0]) if p.dim() else 1,
                       "fan_out": int(p.shape[-1]) if p.dim() > 1 else 1,
                       "location": None, "frozen": False, "tensors": [p]}
            specs.append(current)
        for spec in specs:
            spec["location"] = self._tensor_site(spec["name"].split(",")[0])
        self.layers = self._in_forward_order(specs)

    def _in_forward_order(self, specs: list) -> list:
        """The layers in the order the recorded forward pass applies them, each with its slots.

        The graph walk finds the parameters in an order of its own; the last layer applied
        is the output layer, which the rules judge apart from the hidden ones."""
        for spec in specs:
            spec["slots"] = None
        if self.forward is None or not specs:
            return specs
        slots = layer_slots(self.forward.predict_program, [spec["tensors"] for spec in specs])
        for spec, found in zip(specs, slots):
            spec["slots"] = found
        if any(found is None for found in slots) or len({found[0] for found in slots}) < len(slots):
            return specs   # some layer is not on the path from inputs to prediction: no order to claim
        return sorted(specs, key=lambda spec: spec["slots"][0])

    def _tensor_site(self, name: str):
        from ..observe.sites import init_site

        try:
            return init_site(name, [f for f in (self.files.files or ())])
        except Exception:  # noqa: BLE001 - a location is a nicety
            return None

    def _describe(self) -> None:
        layers, n = self.layers, len(self.layers)
        info = [
            layer_info(s["name"], s["fan_in"], s["fan_out"], s["activation"], s["bias"] is not None,
                       k == n - 1, s["location"],
                       (f"{s['name']}.weight",) + ((f"{s['name']}.bias",) if s["bias"] is not None else ()))
            for k, s in enumerate(layers)
        ]
        rows = None if self._first_input is None else int(self._first_input.shape[0])
        sizes = [layers[0]["fan_in"]] + [s["fan_out"] for s in layers] if layers else None
        output = layers[-1]["activation"] if layers else None
        kind = self.facts.get("loss_kind")
        self.session.describe(info, loss=kind, output=output, batch_rows=rows, sizes=sizes)
        self.facts.update({
            "model": type(self.root).__name__ if self.root is not None else None,
            "layers": [{"name": s["name"], "kind": s["kind"], "units": s["fan_out"], "fan_in": s["fan_in"],
                        "activation": s["activation"], "trainable": not s["frozen"],
                        "location": s["location"]} for s in layers],
            "output_activation": output,
            "output_units": layers[-1]["fan_out"] if layers else None,
            "batch_rows": rows,
        })

    # -- measuring ------------------------------------------------------------------------------
    def _record_step(self, step: int, before: dict | None, grads: dict | None, loss) -> None:
        s = self.session
        self._flush()
        if not s.wants(step):
            self._pending = (step, loss)
            return
        self._pending = None
        values: dict = {}
        value = self._loss_float(loss)
        if value is not None:
            values[(MODEL, "loss")] = value
        params = before is not None and s.wants_params(step) or (self.manual and s.wants_params(step))
        if params:
            with s.timing("params"):
                self._param_values(values, before=before, grads=grads)
        outputs = None
        if s.wants_outputs(step):
            with s.timing("outputs"):
                outputs = self._probe(values)
        # held back until the next step: the last step of a run gets everything (finish)
        self._row = (step, values, outputs, params)

    _pending = None
    _row = None

    def _flush(self) -> None:
        if self._row is not None:
            step, values, outputs, params = self._row
            self._row = None
            self.session.record(step, values, outputs, params=params)

    def _loss_float(self, loss) -> float | None:
        if loss is None or not self.torch.is_tensor(loss) or loss.numel() != 1:
            return None
        return float(loss.detach().reshape(()))

    def _param_values(self, values: dict, before: dict | None, grads: dict | None,
                      weights: dict | None = None) -> None:
        tensors = []
        for spec in self.layers:
            w, b = spec["weight"], spec["bias"]
            if weights is not None:
                t = LayerTensors(spec["name"], weights.get(id(w), w),
                                 None if b is None else weights.get(id(b), b))
                tensors.append(t)
                continue
            t = LayerTensors(spec["name"], w, b)
            for p, gattr, dattr in ((w, "grad_w", "delta_w"), (b, "grad_b", "delta_b")):
                if p is None:
                    continue
                g = grads.get(id(p)) if grads is not None else p.grad
                if g is not None:
                    setattr(t, gattr, g)
                if before is not None and id(p) in before:
                    setattr(t, dattr, p.detach() - before[id(p)])
            tensors.append(t)
        if tensors:
            values.update(layer_stats(self.ops, tensors))

    def _numpy_params(self, spec, weights: dict | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        weights = weights or {}
        w = _np(weights.get(id(spec["weight"]), spec["weight"]))
        if spec["module"] is not None:       # torch stores (out, in); netdoctor reads (in, out)
            w = w.reshape(w.shape[0], -1).T
        else:
            w = w.reshape(-1, 1) if w.ndim < 2 else w
        b = spec["bias"]
        return w, None if b is None else _np(weights.get(id(b), b))

    def _probe(self, values: dict, describe: bool = False, weights: dict | None = None):
        """The probe batch through the model (eval mode, no_grad), layer by layer.

        `weights` stand in for the parameters' values (step 0 of a hand-written loop is
        measured after its first update, from the values copied before it)."""
        torch = self.torch
        if self._first_input is None or (self.root is None and self.forward is None):
            if describe:
                self._describe()
            return None
        probe = getattr(self, "_probe_x", None)
        if probe is None:
            idx = np.linspace(0, len(self._first_input) - 1, min(PROBE_SIZE, len(self._first_input))).round()
            self._probe_idx = np.unique(idx.astype(int))
            probe = self._probe_x = self._first_input[torch.as_tensor(self._probe_idx)]
        if self.root is None:
            return self._probe_forward(probe, values, describe, weights)
        modes = {m: m.training for m in self.root.modules()}
        self._capture = []
        try:
            with torch.no_grad():
                self.root.eval()
                out = self.root(probe)
        except Exception:  # noqa: BLE001 - a model that will not take its own first batch again
            self._capture = None
            if describe:
                self._describe()
            return None
        finally:
            for module, training in modes.items():
                module.training = training
        captured, self._capture = self._capture, None
        if not torch.is_tensor(out):
            if describe:
                self._describe()
            return None
        by_module = {}
        for module, inp, output in captured:
            by_module.setdefault(id(module), (inp, output))
        out_np = _np(out)
        layers = []
        for k, spec in enumerate(self.layers):
            pair = by_module.get(id(spec["module"]))
            if pair is None:
                continue
            z = _np(pair[1])
            if k + 1 < len(self.layers):
                nxt = by_module.get(id(self.layers[k + 1]["module"]))
                a = _np(nxt[0]) if nxt is not None else None
            else:
                a = out_np
            if describe:
                spec["activation"] = identify_activation(z, a) if a is not None else None
            layers.append((spec["name"], z, z if a is None or a.shape != z.shape else a, spec["activation"],
                           k < len(self.layers) - 1))
        if describe:
            self._describe()
            self._set_data(out_np)
        values.update(self.session.probe_values(out_np.reshape(len(out_np), -1), layers,
                                                self._probe_loss(out)))
        return out_np.reshape(len(out_np), -1)

    def _probe_forward(self, probe, values: dict, describe: bool, weights: dict | None):
        """The probe rows through a hand-written loop's recorded forward pass, layer by layer."""
        torch = self.torch
        program = self.forward.predict_program
        index = torch.as_tensor(self._probe_idx)
        rows = (self.forward.rows, index)
        try:
            with torch.no_grad():
                slots = program.run_all(probe, weights=weights, rows=rows)
                out = slots[program.result]
        except Exception:  # noqa: BLE001 - a forward that will not take fewer rows: outputs not seen
            self.forward = None
            if describe:
                self._describe()
            return None
        target = None if self._first_target is None else self._first_target[index]
        loss = self._tape_loss(out, target, weights, rows) if self._loss_fn is None else None
        out_np = _np(out)
        layers = self._tape_layers(slots, program.result, describe)
        if describe:
            self._recognise_loss(out, target, rows)
            self._describe()
            self._set_data(out_np)
        probe_loss = self._probe_loss(out) if loss is None else self._loss_float(loss)
        values.update(self.session.probe_values(out_np.reshape(len(out_np), -1), layers, probe_loss))
        return out_np.reshape(len(out_np), -1)

    def _tape_loss(self, out, target, weights, rows):
        """The recorded loss on the probe rows; None (the outputs still count) if it will not take them."""
        try:
            with self.torch.no_grad():
                return self.forward.loss(out, target, weights, rows)
        except Exception:  # noqa: BLE001 - a loss tied to the whole batch: no probe loss
            return None

    def _tape_layers(self, slots: dict, result, describe: bool) -> list:
        """Each layer's pre-activation and activation on the probe rows, from the replayed forward.

        A layer's activation is what the next layer's weight is applied to (the prediction,
        for the last layer); its function is identified from the pair, as for modules, so
        a hand-written ``1 / (1 + torch.exp(-z))`` is a sigmoid too."""
        specs, layers = self.layers, []
        for k, spec in enumerate(specs):
            found = spec.get("slots")
            if found is None:
                continue
            z_key = found[0]
            if k + 1 < len(specs):
                after = specs[k + 1].get("slots")
                a_key = None if after is None else after[1]
            else:
                a_key = result
            z = _np(slots[z_key])
            # what the next layer reads must come from this layer (not the inputs, not another branch)
            usable = isinstance(a_key, int) and a_key >= z_key and a_key in slots
            a = _np(slots[a_key]) if usable else None
            if a is not None and a.shape != z.shape:
                a = None
            if describe:
                spec["activation"] = identify_activation(z, a) if a is not None else None
            layers.append((spec["name"], z, z if a is None else a, spec["activation"], k < len(specs) - 1))
        return layers

    def _recognise_loss(self, out, target, rows) -> None:
        """The kind of a hand-written loss (no torch.nn.functional loss was called), if unambiguous."""
        if self.facts.get("loss_kind") is not None or self.forward is None:
            return
        found = recognise_loss(self.torch, self.forward, out, target, rows)
        if found is None:
            return
        kind, form = found
        self.facts.update(loss_kind=kind, loss_form=form, from_logits=form.endswith("on logits"))

    def _set_data(self, out_np: np.ndarray) -> None:
        if self._first_target is None or self._first_input is None:
            return
        X = _np(self._first_input)
        y = _np(self._first_target)
        if len(y) != len(X):
            return
        units = out_np.shape[-1] if out_np.ndim > 1 else 1
        Y = y
        labels = self._class_labels(y, units)
        if labels is not None:
            Y = np.eye(units)[labels]
        elif y.ndim == 1:
            Y = y[:, None]
        self.session.set_data(X.reshape(len(X), -1), y, Y, units, idx=self._probe_idx)

    def _class_labels(self, y: np.ndarray, units: int) -> np.ndarray | None:
        """`y` as class indices, when the loss reads it so; else None.

        A cross-entropy reads integer targets as classes; so does a loss of unknown kind
        after a softmax output (integers compared with probabilities as values would make
        every label above 1 look unreachable)."""
        kind = self.facts.get("loss_kind")
        output = self.layers[-1]["activation"] if self.layers else None
        if units < 2 or not (kind == "ce" or (kind is None and output in ("softmax", "log_softmax"))):
            return None
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1 or y.size == 0 or not np.array_equal(y, np.round(y)):
            return None
        labels = y.astype(int)
        return labels if labels.min() >= 0 and labels.max() < units else None

    def _probe_loss(self, out) -> float | None:
        if self._loss_fn is None or self._first_target is None:
            return None
        fn, args, kwargs = self._loss_fn
        try:
            target = self._first_target[self.torch.as_tensor(self._probe_idx)]
            with self.torch.no_grad():
                return float(fn(out, target, *args, **kwargs).reshape(-1).mean())
        except Exception:  # noqa: BLE001
            return None

    # -- the end ------------------------------------------------------------------------------------
    def finish(self, status: str = "completed", *, error: str | None = None, stop_reason: str | None = None):
        s = self.session
        s.max_steps = None  # the run is over: summarising must not stop it again
        if not self.optimizer_mode and self._snap is not None and self.params:
            self._rebind_from_globals()
            self._manual_step_check()      # an update after the last backward
        if not self._started and self.backward_calls and self.params:
            self._start(None)               # backward() ran, nothing ever moved
        row, self._row = self._row, None
        if row is not None:
            step, values, outputs, params = row
            if step == self.step and self._pending is None:
                if not params:
                    self._param_values(values, before=None, grads=self._snap_grads if self.manual else None)
                if outputs is None:
                    outputs = self._probe(values)
                params = True
            s.record(step, values, outputs, params=params)
        if self._pending is not None and self.step > (s.recorder.last_step or 0):
            step, loss = self._pending
            values: dict = {}
            value = self._loss_float(loss)
            if value is not None:
                values[(MODEL, "loss")] = value
            self._param_values(values, before=None, grads=None if not self.manual else self._snap_grads)
            outputs = self._probe(values)
            s.record(step, values, outputs, params=True)
        for spec in self.layers:
            w, b = self._numpy_params(spec)
            s.param_event("param_final", spec["name"], w, b, spec["activation"], self.step)
        self.facts["manual_updates"] = self.manual
        self.facts["steps"] = self.step
        s.steps = self.step
        return s.finish(status, error=error, stop_reason=stop_reason)

    @property
    def steps(self) -> int:
        return self.step
