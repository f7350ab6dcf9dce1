"""Measuring every step of a program whose roles are known, into a Trace.

After learning (:mod:`.learn`) the observer knows the layer chain, its parameters,
the checkpoints where a forward pass completes, and maybe gradient arrays. From
then on only those checkpoints matter, and they cost little:

* each **forward** (at a forward site) updates the latest output of the probe
  inputs it contains, and, when the coming step will be recorded, keeps the
  activations and the batch loss;
* a **step** is counted at a forward whose parameters differ from the previous
  forward's: an update happened in between, however many lines or functions it
  took. The step's change is measured against copies taken at the previous step
  (only when the Recorder wants the step), its gradient is read from the gradient
  arrays the code keeps (or, without them, computed by the rebuilt network);
* a few steps get a **gradient check** (:mod:`.gradients`).

Statistics come from :mod:`netdoctor.probes`, the same functions the reference
runner uses, so the same rules judge both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import CodeType
from typing import Any, Callable

import numpy as np

from .. import losses as loss_lib
from .. import probes
from ..trace import MODEL, Event, Recorder
from .arrays import Context, Found, Path, fingerprint
from .chain import ChainSpec, observe, rows
from .collected import StepPool
from .data import DataSet, ProbeOutputs, as_target_matrix, find_dataset, stacked_pairs
from .gradients import Batch, Claim, check_step
from .learn import ForwardCopy, Learned, StepRecord, copy_forward
from .rebuild import Rebuilt, layer_function

MAX_GRADCHECK_BATCHES = 64   # forwards kept for one gradient check: a mini-batch of per-sample passes
MAX_UNPLANNED_PASSES = 64    # passes of an unrecorded step kept by reference, for a run that ends on it
SENTINEL_EVERY = 16        # forwards between full parameter comparisons
# Steps recorded: all of the first DENSE_STEPS, then PER_OCTAVE per doubling of the step
# count (a long run costs a few hundred recordings, and early failures are seen in full).
DENSE_STEPS = 64
PER_OCTAVE = 32
POOL_LIMIT = 8192          # (z, a) values kept per layer for identifying its function
PROBE_FORWARD_MACS = 1 << 21  # rebuilt probe-batch forward below this many multiply-adds
BOUNDARY_MACS = 1 << 23       # decision-boundary grid forward below this many multiply-adds


@dataclass
class Cycle:
    """What the forwards since the last step showed."""

    forwards: int = 0
    first: ForwardCopy | None = None
    loss_sum: float = 0.0
    loss_n: int = 0
    forwards_kept: list[ForwardCopy] = field(default_factory=list)
    # (input, output) of the passes of a step not planned for recording, by reference (the
    # loss is worked out only if the run ends on this step: it is then recorded after all)
    unplanned: list[tuple[Any, Any]] = field(default_factory=list)


class Tracker:
    def __init__(self, observer: Any, learned: Learned, callables: dict[CodeType, Callable]):
        self.obs = observer
        self.th = observer.thresholds
        self.recorder: Recorder = observer.recorder
        self.chain: ChainSpec = learned.chain
        self.learned = learned
        self.param_paths: list[Path] = self.chain.param_paths()
        self.layer_names = [f"layer{i + 1}" for i in range(len(self.chain.layers))]
        self.param_roles: list[tuple[str, str, str]] = []
        for name, layer in zip(self.layer_names, self.chain.layers):
            self.param_roles.append((name, "weight", layer.W.name))
            if layer.b is not None:
                self.param_roles.append((name, "bias", layer.b.name))
        self.grad_paths = learned.grad_paths
        self.grad_sign = [1.0] * len(self.param_paths)
        self.steps = learned.steps
        # Step 1 may have begun before the network was recognised (part of its forward
        # passes unseen); from step 2 on every forward of a step is seen.
        self.gradcheck_steps = {2, 32, 512}
        self.gradchecked: set[int] = set()
        self.last_forward_fp = None
        self.param_fp: tuple | None = None
        self.before: list[np.ndarray] | None = None
        self.cycle = Cycle()
        self.pools: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in self.chain.layers]
        self.pool_sizes = [0] * len(self.chain.layers)
        self.nonfinite_seen = False
        self.loss_kind: str | None = None
        self.reduction: str | None = None
        self.encoding: str | None = None
        self.lr_fit: float | None = None
        self.rebuilt_verified = False
        self.last_loss: float | None = None
        # Once a step has shown the loss of the batch it trained on, `loss` is that series only:
        # a step without one (the update after the last forward pass) leaves a gap rather
        # than the probe batch's loss, which is another quantity.
        self.batch_loss_seen = False
        self.latest: list[np.ndarray] | None = None
        self._before_for_check = None
        self._forwards = 0
        self._pass_counted = False   # (a site after the update: the pass under way was counted at start)
        self._loss_rivals: tuple[str, ...] = ()   # losses that fit the code's gradients as well
        # Gradients kept in the locals of the function that updates (``dW2 = ...`` in a
        # ``backward()`` that ends with ``W2 -= lr * dW2``) are gone by the next forward pass,
        # where a step is closed: they are copied at that function's return (see on_grad_return).
        self._held_grads: dict[int, np.ndarray] = {}
        self._signs_settled = False   # whether a check from gradient arrays has settled their signs
        # The gradient arrays read at each step. At a site after the update, only those the
        # learning steps could read too: their signs were settled there (see _gradcheck), and
        # an array first seen later (a function's local, gone at the line where learning saw
        # the step) would be judged with an unsettled sign.
        self._readable_grad_paths = list(self.grad_paths)
        if learned.after_update:
            seen = [any(r.grads[i] is not None for r in learned.records) for i in range(len(self.grad_paths))]
            self._readable_grad_paths = [p if ok else None for p, ok in zip(self.grad_paths, seen)]
        self._sentinel = len(self.param_paths) - (2 if self.chain.layers[-1].b is not None else 1)
        self._sentinel_fp = None

        functions = []
        for index, layer in enumerate(self.chain.layers):
            code = learned.producers.get(index) or layer.function_code
            functions.append(layer_function(layer, callables.get(code) if code is not None else None))
        self.rebuilt = Rebuilt(self.chain, functions) if all(f is not None for f in functions) else None

        self.data = self._find_data()
        # Without a data set holding the targets, the targets are read where each step holds
        # them, and the data set is the samples collected so far (see :mod:`.collected`).
        self.pool = self._step_pool()
        self.targets = None      # rows-form target matrix for the whole data set
        self.probe: ProbeOutputs | None = None
        self.probe_targets: np.ndarray | None = None
        self._boundary_steps: set[int] = set()

    # -- setting up from what learning saw ---------------------------------------------------------
    def _find_data(self) -> DataSet | None:
        records = self.learned.records
        batch = None
        for record in records:
            if record.forwards:
                batch = record.forwards[0].x
                break
        if batch is None:
            return None
        found = self.learned.last_found
        chain_keys = {p.key() for p in self.param_paths}
        for layer in self.chain.layers:
            for p in (layer.z, layer.a):
                if p is not None:
                    chain_keys.add(p.key())
        exclude = {i for i, f in found.items() if f.path.key() in chain_keys}
        changing = {i for i, f in found.items() if f.path.key() in self.learned.changing}
        # Samples kept as a list of (x, y) pairs: stacked into arrays to look among.
        ctx = getattr(self.obs, "start_context", None) or Context(None)
        stacked = stacked_pairs(found.values(), ctx) if self._data_in_lists(found) else []
        named = self.obs.named_targets()
        derived = []
        if self.learned.targets is not None:
            # A model recognised from its updates: its inputs and targets are known (and may be
            # columns of one table, which no variable holds on its own).
            named = named or self.learned.targets.name
            for path in (self.chain.input, self.learned.targets):
                arr = path.array(ctx)
                if arr is not None and all(f.path.key() != path.key() for f in found.values()):
                    derived.append(Found(path, arr))
        return find_dataset(list(found.values()) + stacked + derived, batch, self.chain.samples, exclude=exclude,
                            changing=changing, targets_named=named)

    def _step_pool(self) -> StepPool | None:
        if (self.data is not None and self.data.targets) or self.learned.targets is None:
            return None
        pool = StepPool(self.chain.input.name, self.learned.targets)
        for record in self.learned.records:
            for fwd in record.forwards:
                if fwd.y is not None:
                    pool.add(fwd.x, fwd.y)
        self.data = pool.dataset()
        return pool

    def _collect(self, ctx: Context, xr: np.ndarray) -> np.ndarray | None:
        """This forward pass's targets (rows form), added to the pool with its inputs; once
        the pool is ready, the probe batch is taken from it."""
        y = self.pool.targets_now(ctx, self.chain.samples, len(xr))
        if y is None or y.shape[1] not in (1, self.chain.n_out) or not self.pool.add(xr, y):
            return None
        if self.probe is None and self.pool.ready(self.steps):
            self.refresh_collected()
            self._set_up_probe()
        return y

    def refresh_collected(self) -> None:
        """Make the data set the samples collected so far (for the probe, and the facts)."""
        if self.pool is None:
            return
        data = self.pool.dataset()
        if data is None:
            if self.data is None and self.probe is None and getattr(self, "_pool_noted", False):
                return
            self._pool_noted = True
            self.obs.note(f"the targets were seen where the step compares them with its output "
                          f"({self.pool.targets.name}), but could not be read at later steps: "
                          f"no probe outputs, loss or data checks")
            return
        self.data = data
        self.targets = as_target_matrix(data.targets[0].raw_rows, self.chain.n_out, self.encoding or "as_is")

    def _data_in_lists(self, found) -> bool:
        return any(f.path.in_data for f in found.values())

    def start(self, ctx: Context) -> None:
        """Record what learning saw (step 0 and its steps) and get ready for the run."""
        records = self.learned.records
        self._settle_loss(records)
        self._set_up_probe()
        for record in records:
            for fwd in record.forwards:
                self._probe_update(fwd.x, fwd.out)
        if records and records[0].forwards:
            first = records[0]
            self._record(0, None, first.before, None, first.forwards[0], self._forwards_loss(first.forwards))
        for record in records:
            step = record.step
            if step in self.gradcheck_steps and step not in self.gradchecked and step > 1:
                self._gradcheck(step, record.before, record.after, record.grads, self._batches(record.forwards))
            self._record(step, record.before, record.after, self._signed(record.grads),
                         record.forwards[0] if record.forwards else None, self._forwards_loss(record.forwards))
        self.param_fp = self._param_fp(ctx)
        sentinel = self.param_paths[self._sentinel].array(ctx)
        self._sentinel_fp = None if sentinel is None else fingerprint(sentinel)
        self.before = [np.array(a, dtype=np.float64, copy=True) for a in records[-1].after] if records else None
        if self.pool is not None and self.learned.pending:
            # Learning ended in a step whose forward pass it saw: with targets read at the steps
            # (no probe batch yet to measure the loss on), that pass's loss is the step's.
            forward = self.learned.pending[-1]
            forward.y = self.pool.targets_now(ctx, self.chain.samples, len(forward.x))
            Y = None if forward.y is None else as_target_matrix(forward.y, self.chain.n_out, self.encoding or "as_is")
            if Y is not None and self.pool.add(forward.x, forward.y):
                self.cycle.forwards += 1
                self.cycle.first = forward
                self._add_loss(self.cycle, forward.out, Y)
                # (At a site after the update, the next event shows this same pass again.)
                self._pass_counted = self.learned.after_update

    def _settle_loss(self, records: list[StepRecord]) -> None:
        """Choose the loss, reduction, target encoding and gradient signs that explain the code.

        Where the code keeps its loss in a variable, that is the loss: netdoctor then judges
        the gradients against it (a gradient of the summed loss where the code averages is
        ND204). Otherwise the loss that best explains the code's gradients is taken."""
        self._code_loss(records)
        # (Only with targets read at the steps: on stored data sets this reading has not been
        # checked yet, and there the gradient check's own choice stands.)
        if self.pool is not None and self.loss_kind is None and self.chain.n_out == 1 and self.rebuilt is not None:
            # (Before the gradient check, which then judges against the loss found here.)
            self._loss_from_rates(records)
        for record in records[1:2]:
            if not record.forwards:
                continue
            self._gradcheck(record.step, record.before, record.after, record.grads,
                            self._batches(record.forwards), settle=True)
        if self.loss_kind is None and self.learned.loss is not None:
            # (The loss whose gradient the updates follow, found with the model itself.)
            self.loss_kind = self.learned.loss
        if self.loss_kind is None:
            output = self.output_function()
            self.loss_kind = {"sigmoid": "bce", "softmax": "ce"}.get(output or "", "mse")
            self.obs.note(f"the loss was taken to be {self.loss_kind.upper()} from the output function "
                          f"({output or 'unknown'}): the code's gradients could not be compared")
        if self.encoding is None:
            self.encoding = self._default_encoding()
        if self.data is not None and self.data.targets:
            self.targets = as_target_matrix(self.data.targets[0].raw_rows, self.chain.n_out, self.encoding)

    def _loss_from_rates(self, records: list[StepRecord]) -> None:
        """One sample and one output per step: every loss's gradient then points the same
        way, so the direction cannot tell which loss the code differentiates. The rate that
        scales it can: it is the code's learning rate, the same at every step, only for the
        loss the code differentiates (a wrong one's rate drifts with the output)."""
        from .rebuild import LOSS_KINDS

        usable = []   # (record, its one forward pass, of one sample with known targets)
        for r in records:
            # (The updates themselves are compared, whether or not the code keeps gradients.)
            # The pass right before the update is the step's own (others may be a log line's
            # queries); a wrong pick holds no loss's rate, and then nothing is decided.
            last = r.forwards[-1] if r.forwards else None
            if last is not None and len(last.x) == 1 and self._batch(last).targets:
                usable.append((r, [last]))
        if len(usable) < 2:
            return
        spreads = {}
        for kind in LOSS_KINDS:
            rates = []
            for r, shown in usable:
                changes = [a - b for a, b in zip(r.after, r.before)]
                claim = Claim("updates", [None if not np.any(d) else -d for d in changes])
                try:
                    payload = check_step(self.rebuilt, r.before, self.param_roles, self._batches(shown), claim,
                                         step=r.step, kinds=(kind,), reduction=None)
                except Exception:  # noqa: BLE001 - an optional refinement
                    payload = None
                rate = None if payload is None else payload.get("lr_fit")
                if not rate:
                    break
                rates.append(rate)
            if len(rates) == len(usable):
                spreads[kind] = ((max(rates) - min(rates)) / max(abs(r) for r in rates), rates[-1])
        # Exactly one loss must hold its rate: outputs that barely move between the steps
        # (pinned at 0.5) hold every loss's rate, and then tell nothing.
        steady = [kind for kind, (spread, _) in spreads.items() if spread < 1e-3]
        if len(steady) == 1:
            best = steady[0]
            if best != self.loss_kind:
                self.loss_kind = best   # (the reduction is then chosen by the gradient check)
                self.obs.note(f"the loss is taken to be {best.upper()}: one sample per step, its gradient's "
                              f"learning rate is the same at every step")

    def _code_loss(self, records: list[StepRecord]) -> None:
        """Find the code's own loss: a number it held that equals a standard loss of the outputs.

        One equality can be chance (a learning rate of 0.5 next to an MSE of 0/1 outputs
        against 0/1 targets), so settings (lr, eta) are never losses, and a number is taken
        only when it equals the same loss at each of the next few steps where it changed (a
        number left from an earlier step, like a loss computed only when printed, is no
        evidence either way).
        """
        from .chain import _looks_like_setting as looks_like_setting
        from .rebuild import LOSS_KINDS, REDUCTIONS, loss_value

        def losses(record: StepRecord):
            """(kind, reduction, encoding, value) of every standard loss of this step's outputs."""
            for batch in self._batches(record.forwards):
                for encoding, Y in batch.targets.items():
                    if ":" in encoding:
                        continue
                    for kind in LOSS_KINDS:
                        for reduction in REDUCTIONS:
                            try:
                                with np.errstate(all="ignore"):
                                    value = loss_value(kind, reduction, batch.out, Y)
                            except ValueError:
                                continue
                            if math.isfinite(value):
                                yield kind, reduction, encoding, value

        def numbers_of(record: StepRecord) -> dict[str, float]:
            return {name: value for name, value in (record.numbers or {}).items()
                    if math.isfinite(value) and value > 0 and not looks_like_setting(name)}

        def close(v: float, value: float) -> bool:
            return abs(v - value) <= 1e-7 * max(abs(v), 1e-12)

        # Each step's numbers and standard losses, computed once.
        steps = [(numbers, list(losses(r))) for r in records[:4] if r.forwards
                 for numbers in [numbers_of(r)] if numbers]
        for i, (numbers, step_losses) in enumerate(steps):
            for kind, reduction, encoding, value in step_losses:
                for hit, v in numbers.items():
                    if not close(v, value):
                        continue
                    # The later steps where the number changed must show the same loss.
                    holds, last = True, v
                    for later_numbers, later_losses in steps[i + 1:]:
                        now = later_numbers.get(hit)
                        if now is None or now == last:
                            continue
                        last = now
                        holds &= any(close(now, other) for k, red, enc, other in later_losses
                                     if (k, red, enc) == (kind, reduction, encoding))
                    if holds:
                        self.loss_kind, self.reduction, self.encoding = kind, reduction, encoding
                        self.obs.note(f"the loss is the code's own {hit} "
                                      f"({kind.upper()}, {reduction.replace('_', ' ')} over the batch)")
                        self.obs.event("loss_source", {"name": hit, "kind": kind, "reduction": reduction})
                        return

    def _default_encoding(self) -> str:
        if self.data is None or not self.data.targets:
            return "as_is"
        onehot = as_target_matrix(self.data.targets[0].raw_rows, self.chain.n_out, "onehot")
        return "onehot" if onehot is not None else "as_is"

    def _set_up_probe(self) -> None:
        if self.pool is not None and not self.pool.ready(self.steps):
            return   # (taken once the steps have shown enough samples: see _collect)
        if self.data is None:
            self.obs.note("the training data (inputs and targets) could not be located among the "
                          "program's arrays: no probe outputs, loss or data checks")
            return
        indices = self.data.probe_indices()
        self.probe = ProbeOutputs(self.data, indices, self.chain.n_out)
        if self.targets is not None:
            Y = self.targets
            if Y.shape[1] != self.chain.n_out:
                Y = np.broadcast_to(Y, (Y.shape[0], self.chain.n_out)) if Y.shape[1] == 1 else None
            self.probe_targets = None if Y is None else np.array(Y[indices], dtype=np.float64)

    # -- the hot path: one forward pass ----------------------------------------------------------
    def on_forward(self, ctx: Context) -> None:
        x, out = self._forward_arrays(ctx)
        if out is None or x is None:
            return
        if self.learned.after_update:
            # The site follows the update (see Learner._after_update_site): the pass seen
            # here was made before it, so it belongs to the step that ends here.
            if not self._pass_counted:
                self._forward(ctx, x, out)
            self._pass_counted = False
            if self._moved(ctx):
                self._end_step(ctx)
            return
        if self._moved(ctx):
            self._end_step(ctx)
        self._forward(ctx, x, out)

    def _forward_arrays(self, ctx: Context) -> tuple[np.ndarray | None, np.ndarray | None]:
        x = self.chain.input.array(ctx)
        if self.chain.output is None:
            # The code never keeps its output: computed from the inputs and parameters.
            seen = observe(self.chain, ctx, check=False)
            out = None if seen is None else (seen.acts[-1].T if self.chain.samples == "cols" else seen.acts[-1])
        else:
            out = self.chain.output.array(ctx)
        return x, out

    def _moved(self, ctx: Context) -> bool:
        """Whether the parameters changed since the last forward pass (an update happened).

        The output layer's weight moves in every update, so it is checked first and
        alone; all parameters are compared when it moved, and every SENTINEL_EVERY
        forwards in case an update left it alone.
        """
        self._forwards += 1
        sentinel = self.param_paths[self._sentinel].array(ctx)
        if sentinel is None:
            return False
        fp = fingerprint(sentinel)
        if fp == self._sentinel_fp and self._forwards % SENTINEL_EVERY:
            return False
        self._sentinel_fp = fp
        param_fp = self._param_fp(ctx)
        if param_fp is None or param_fp == self.param_fp:
            return False
        self.param_fp = param_fp
        return True

    def _param_fp(self, ctx: Context) -> tuple | None:
        fps = []
        for path in self.param_paths:
            arr = path.array(ctx)
            if arr is None:
                return None
            fps.append(fingerprint(arr))
        return tuple(fps)

    def _upcoming_wanted(self) -> bool:
        step = self.steps + 1
        return recorded(step) or step in self.gradcheck_steps

    def _forward(self, ctx: Context, x: np.ndarray, out: np.ndarray) -> None:
        wanted = self._upcoming_wanted()
        if not wanted and len(self.cycle.unplanned) < MAX_UNPLANNED_PASSES:
            self.cycle.unplanned.append((x, out))
        if not wanted and self.rebuilt_verified:
            return  # probe outputs come from the rebuilt network at recorded steps
        samples = self.chain.samples
        xr, outr = rows(x, samples), rows(out, samples)
        indices = self._probe_update(xr, outr)
        y = self._collect(ctx, xr) if self.pool is not None else None
        if not wanted:
            return
        cycle = self.cycle
        cycle.forwards += 1
        if y is not None and outr.shape[1] == self.chain.n_out:   # (not another layer's output)
            Y = as_target_matrix(y, self.chain.n_out, self.encoding or "as_is")
            if Y is not None:
                self._add_loss(cycle, outr, Y)
        elif indices is not None and self.targets is not None and self.pool is None:
            self._add_loss(cycle, outr, self.targets[indices])
        if cycle.first is None or ((self.steps + 1) in self.gradcheck_steps
                                   and len(cycle.forwards_kept) < MAX_GRADCHECK_BATCHES):
            # (At a site after the update, the values the code did not keep are computed with
            # the parameters the pass was made with, copied before the step.)
            if self.learned.after_update and self.before is None:
                return
            seen = observe(self.chain, ctx, check=False,
                           weights=self.before if self.learned.after_update else None)
            if seen is not None:
                copy = copy_forward(seen)
                copy.y = y
                if cycle.first is None:
                    cycle.first = copy
                if (self.steps + 1) in self.gradcheck_steps and len(cycle.forwards_kept) < MAX_GRADCHECK_BATCHES:
                    cycle.forwards_kept.append(copy)

    def _probe_update(self, xr: np.ndarray, outr: np.ndarray) -> np.ndarray | None:
        if self.data is None:
            return None
        indices = self.data.indices_of(xr)
        if indices is not None and self.probe is not None:
            self.probe.update(indices, outr)
        return indices

    def _add_loss(self, cycle: Cycle, outr: np.ndarray, Y: np.ndarray) -> None:
        value = self._loss(outr, Y)
        if value is not None:
            cycle.loss_sum += value * len(outr)
            cycle.loss_n += len(outr)

    def _loss(self, outr: np.ndarray, Y: np.ndarray) -> float | None:
        """The loss of outputs against targets (NaN when the outputs are); None when the
        targets do not fit the outputs, which is netdoctor's ignorance, not the run's NaN."""
        if np.ndim(Y) != 2 or np.ndim(outr) != 2 or len(Y) != len(outr) or Y.shape[1] not in (1, outr.shape[1]):
            return None
        try:
            with np.errstate(all="ignore"):
                return float(loss_lib.get(self.loss_kind or "mse").value(outr, Y))
        except Exception:  # noqa: BLE001 - shapes the loss cannot take: no loss, not a crash
            return None

    def _forwards_loss(self, forwards: list[ForwardCopy]) -> float | None:
        if self.pool is None and (self.data is None or self.targets is None):
            return None
        total, n = 0.0, 0
        for fwd in forwards:
            if fwd.y is not None:   # (targets read at the step itself)
                Y = as_target_matrix(fwd.y, self.chain.n_out, self.encoding or "as_is")
                value = None if Y is None else self._loss(fwd.out, Y)
            elif self.pool is None:
                indices = self.data.indices_of(fwd.x)
                value = None if indices is None else self._loss(fwd.out, self.targets[indices])
            else:
                continue
            if value is None:
                continue
            total += value * len(fwd.out)
            n += len(fwd.out)
        return total / n if n else None

    # -- a step -------------------------------------------------------------------------------------
    def _end_step(self, ctx: Context) -> None:
        self.steps += 1
        step = self.steps
        cycle, self.cycle = self.cycle, Cycle()
        after = None
        if self.before is not None and (recorded(step) or step in self.gradcheck_steps):
            after = [np.array(a, dtype=np.float64, copy=True) for a in self._params(ctx)]
            grads = self._grads(ctx)
            if step in self.gradcheck_steps and cycle.forwards_kept:
                self._gradcheck(step, self.before, after, grads, self._batches(cycle.forwards_kept))
            loss = cycle.loss_sum / cycle.loss_n if cycle.loss_n else None
            self._record(step, self.before, after, self._signed(grads), cycle.first, loss)
        self.before = None
        upcoming = self._upcoming_wanted()
        if upcoming:
            self.before = after if after is not None else [
                np.array(a, dtype=np.float64, copy=True) for a in self._params(ctx)]
        self.obs.set_capturing(upcoming)
        self.obs.after_step(step, self.last_loss)

    def finish(self, ctx: Context) -> None:
        """A last update after the last forward pass still counts as a step; the last
        step is always recorded (the state the run ended in)."""
        fp = self._param_fp(ctx)
        cycle = self.cycle
        loss = cycle.loss_sum / cycle.loss_n if cycle.loss_n else self._unplanned_loss(cycle)
        if fp is not None and self.param_fp is not None and fp != self.param_fp:
            self.param_fp = fp
            self.steps += 1
            if self.before is not None:
                after = [np.array(a, dtype=np.float64, copy=True) for a in self._params(ctx)]
                self._record(self.steps, self.before, after, self._signed(self._grads(ctx)), cycle.first, loss)
        last = self.recorder.last_step
        if last is None or last < self.steps:
            current = self.latest_params(ctx)
            if current is not None:
                self._record(self.steps, None, current, None, cycle.first, loss)
        if self.latest is not None:
            self._boundary(self.steps, self.latest)  # the state the run ended in

    def _unplanned_loss(self, cycle: Cycle) -> float | None:
        """The loss of the passes of a step that was not planned for recording (the last one)."""
        if not cycle.unplanned or len(cycle.unplanned) >= MAX_UNPLANNED_PASSES:
            return None   # (none, or more than were kept)
        samples = self.chain.samples
        return self._forwards_loss([ForwardCopy(x=rows(x, samples), out=rows(out, samples), zs=[], acts=[])
                                    for x, out in cycle.unplanned])

    def _boundary(self, step: int, params: list[np.ndarray]) -> None:
        """Material for the decision-boundary pictures: the rebuilt network's outputs on a
        grid over the two input features (only for 2-D inputs, once the rebuilt network has
        been shown to reproduce the program's own outputs)."""
        if step in self._boundary_steps or self.rebuilt is None or not self.rebuilt_verified \
                or self.data is None:
            return
        grid = probes.input_grid(self.data.X_rows)
        macs = sum(l.fan_in * l.fan_out for l in self.chain.layers)
        if grid is None or macs * grid[0].size > BOUNDARY_MACS:
            return
        self._boundary_steps.add(step)
        xx, yy = grid
        try:
            _, acts = self.rebuilt.forward(self.rebuilt.from_user(params), np.column_stack([xx.ravel(), yy.ravel()]))
        except Exception:  # noqa: BLE001 - pictures are optional; never end a run for them
            return
        out = np.asarray(acts[-1], dtype=float)
        data: dict[str, Any] = {"step": step, "xx": xx, "yy": yy}
        if out.ndim != 2 or len(out) != xx.size:
            return
        if out.shape[1] == 1:
            data["zz"] = out[:, 0].reshape(xx.shape)
            if self.targets is not None and np.isfinite(self.targets).all():
                data["level"] = float((self.targets.min() + self.targets.max()) / 2)
        elif out.shape[1] == 2:
            data["zz"], data["level"] = out[:, 1].reshape(xx.shape), 0.5
        else:
            data["zz"] = np.argmax(out, axis=1).astype(float).reshape(xx.shape)
        self.obs.events.append(Event("boundary", step=step, data=data))

    def latest_params(self, ctx: Context) -> list[np.ndarray] | None:
        """The parameters now if they can be reached, else the last copies taken."""
        now = self._params(ctx)
        if all(p is not None for p in now):
            return [np.array(p, dtype=np.float64, copy=True) for p in now]
        return self.latest

    def _params(self, ctx: Context) -> list[np.ndarray]:
        return [path.array(ctx) for path in self.param_paths]

    def _grads(self, ctx: Context) -> list[np.ndarray | None]:
        out = []
        for index, path in enumerate(self._readable_grad_paths):
            arr = path.array(ctx) if path is not None else None
            if arr is None:
                out.append(self._held_grads.get(index))
                continue
            out.append(np.array(arr, dtype=np.float64, copy=True))
        self._held_grads = {}
        return out

    def on_grad_return(self, ctx: Context) -> None:
        """A function that holds gradient arrays returns: copy them for the step it ends
        (only for a step that will be recorded or checked)."""
        if not self._upcoming_wanted():
            return
        code = ctx.frame.f_code if ctx.frame is not None else None
        for index, path in enumerate(self._readable_grad_paths):
            if path is not None and path.root.code is code:
                arr = path.array(ctx)
                if arr is not None:
                    self._held_grads[index] = np.array(arr, dtype=np.float64, copy=True)

    def _signed(self, grads: list[np.ndarray | None]) -> list[np.ndarray | None]:
        return [None if g is None else (g if s > 0 else -g) for g, s in zip(grads, self.grad_sign)]

    # -- recording -------------------------------------------------------------------------------------
    def _record(self, step, before, after, grads, forward: ForwardCopy | None, loss: float | None) -> None:
        if self.recorder.last_step is not None and step <= self.recorder.last_step:
            return
        params = after if after is not None else before
        if params is None:
            return
        self.latest = params
        if step & (step - 1) == 0:  # steps 1, 2, 4, 8, ...: the boundary moves most early on
            self._boundary(step, params)
        values: dict[tuple[str, str], float] = {}
        if grads is not None and all(g is None for g in grads) and after is not None and before is not None:
            grads = self._applied_grads(before, after)
        sums = []
        index = 0
        for name, layer in zip(self.layer_names, self.chain.layers):
            W = params[index]
            Wb = before[index] if before is not None else None
            gw = grads[index] if grads is not None else None
            index += 1
            b = bb = gb = None
            if layer.b is not None:
                b = params[index]
                bb = before[index] if before is not None else None
                gb = grads[index] if grads is not None else None
                index += 1
            stats, layer_sums = probes.param_stats(
                name, _io(W, layer), b,
                grad_w=None if gw is None else _io(gw, layer),
                grad_b=gb,
                # (no change of a "parameter" whose shape changed: it was never one)
                delta_w=None if (after is None or Wb is None or Wb.shape != W.shape) else _io(W - Wb, layer),
                delta_b=None if (after is None or bb is None or b is None or bb.shape != b.shape) else b - bb,
            )
            values.update(stats)
            sums.append(layer_sums)
        values.update(probes.model_param_stats(sums))
        self._activation_values(values, params, forward)
        if loss is not None:
            values[(MODEL, "loss")] = float(loss)
            self.last_loss = float(loss)
            self.batch_loss_seen = True
        outputs = None
        from_program = False
        if self.probe is not None:
            outputs = self._probe_outputs(params)
            from_program = outputs.shape == self.probe.outputs.shape and not self.probe.seen.all() \
                and np.array_equal(outputs, self.probe.outputs, equal_nan=True)
            if from_program:
                # Per-sample code shows one probe input at a time: judge the ones seen so far
                # (a slot never shown is no NaN the network produced).
                values.update(self._output_values(outputs[self.probe.seen], self.probe.seen))
            else:
                values.update(self._output_values(outputs))
            if loss is None and not self.batch_loss_seen and (MODEL, "probe_loss") in values:
                values[(MODEL, "loss")] = values[(MODEL, "probe_loss")]
                self.last_loss = values[(MODEL, "loss")]
        self._nonfinite(step, values)
        # Per-sample outputs are kept once every probe input has been seen: a slot never
        # shown yet would read as a NaN output.
        self.recorder.record(step, values, None if from_program else outputs)

    def _activation_values(self, values, params, forward: ForwardCopy | None) -> None:
        zs = acts = None
        if self.rebuilt is not None and self.rebuilt_verified and self.probe is not None and self._small():
            try:
                zs, acts = self.rebuilt.forward(self.rebuilt.from_user(params), self.probe.inputs)
            except Exception:  # noqa: BLE001
                zs = acts = None
        if zs is None and forward is not None:
            zs, acts = forward.zs, forward.acts
        if zs is None:
            return
        last = len(self.chain.layers) - 1
        for l, name in enumerate(self.layer_names):
            stats = probes.activation_stats(
                name, zs[l], acts[l], self.activation_name(l),
                saturation_z=self.th.saturation_z, dead_active_frac=self.th.dead_active_frac,
                max_rows=32, hidden=l < last,
            )
            key = (name, "nonfinite")
            stats[key] = stats.get(key, 0.0) + values.get(key, 0.0)
            values.update(stats)
        if forward is not None:
            self._pool(forward)

    def _probe_outputs(self, params: list[np.ndarray]) -> np.ndarray:
        """The probe inputs' outputs now: from the rebuilt network once it has been shown to
        reproduce the program's own outputs, else the latest the program computed for each."""
        if self.rebuilt is not None and self.rebuilt_verified and self._small():
            try:
                _, acts = self.rebuilt.forward(self.rebuilt.from_user(params), self.probe.inputs)
                if acts[-1].shape == self.probe.outputs.shape:
                    return np.array(acts[-1], dtype=np.float64)
            except Exception:  # noqa: BLE001
                pass
        return self.probe.outputs.copy()

    def _small(self) -> bool:
        macs = sum(l.fan_in * l.fan_out for l in self.chain.layers)
        return macs * (len(self.probe.indices) if self.probe is not None else 0) <= PROBE_FORWARD_MACS

    def _output_values(self, outputs: np.ndarray, rows: np.ndarray | None = None) -> dict:
        classification = self.task() == "classification"
        Y = self.probe_targets
        if Y is not None and rows is not None:
            Y = Y[rows]
        if outputs.size == 0:
            return {}
        probe_loss = None
        if Y is not None and np.isfinite(outputs).all():
            probe_loss = self._loss(outputs, Y)
        elif Y is not None and not np.isnan(outputs).all() and not np.isfinite(outputs[~np.isnan(outputs)]).all():
            probe_loss = math.nan   # an infinite output: the loss is no number either
        lo = float(np.nanmin(Y)) if Y is not None and Y.size else 0.0
        hi = float(np.nanmax(Y)) if Y is not None and Y.size else 1.0
        return probes.output_stats(outputs, Y, loss=probe_loss, classification=classification,
                                   threshold=0.5 * (lo + hi))

    def _nonfinite(self, step: int, values: dict) -> None:
        if self.nonfinite_seen:
            return
        where = [layer for (layer, q), v in values.items() if q == "nonfinite" and v and v > 0]
        loss = values.get((MODEL, "loss"))
        if loss is not None and not math.isfinite(loss):
            where.insert(0, "loss")
        if where:
            self.nonfinite_seen = True
            tensor = where[0] if where[0] in ("loss", MODEL) else f"{where[0]}"
            layer = where[0] if where[0] in self.layer_names else None
            self.obs.event("nonfinite", {"tensor": "outputs" if tensor == MODEL else tensor, "step": step},
                           step=step, layer=layer)

    def _pool(self, forward: ForwardCopy) -> None:
        for l in range(len(self.chain.layers)):
            if self.pool_sizes[l] >= POOL_LIMIT:
                continue
            z, a = forward.zs[l], forward.acts[l]
            self.pools[l].append((z, a))
            self.pool_sizes[l] += z.size

    def _applied_grads(self, before, after) -> list[np.ndarray] | None:
        """Without gradient arrays, the gradient the code applied: -change / learning rate
        (the rate fitted by the gradient check; negative when the updates go uphill)."""
        if not self.lr_fit:
            return None
        return [(b - a) / self.lr_fit for a, b in zip(after, before)]

    # -- gradient checks ------------------------------------------------------------------------------
    def _batches(self, forwards: list[ForwardCopy]) -> list[Batch]:
        """Candidate batches for one step: each forward pass alone, and all of them together
        (code that sums per-sample gradients over an epoch updates once for all of them)."""
        # Each pass alone is tried on a few passes only: per-sample code shows one sample
        # per pass, and a step's gradient is then the union's.
        batches = [self._batch(f) for f in forwards[:8]]
        if len(forwards) > 1:
            X = np.concatenate([f.x for f in forwards])
            out = np.concatenate([f.out for f in forwards])
            _, first = np.unique(X, axis=0, return_index=True)
            keep = np.sort(first)
            y = np.concatenate([f.y for f in forwards])[keep] if all(f.y is not None for f in forwards) else None
            union = self._batch(ForwardCopy(x=X[keep], out=out[keep], zs=[], acts=[], y=y))
            batches.insert(0, union)
        return batches

    def _batch(self, forward: ForwardCopy, indices: np.ndarray | None = None) -> Batch:
        targets: dict[str, np.ndarray] = {}
        if forward.y is not None:
            # The targets the step itself compared this output with.
            for encoding in ("as_is", "onehot"):
                Y = as_target_matrix(forward.y, self.chain.n_out, encoding)
                if Y is not None:
                    targets[encoding] = Y
        elif self.data is not None and self.pool is None:
            if indices is None:
                indices = self.data.indices_of(forward.x)
            if indices is not None:
                for t in self.data.targets[:3]:
                    raw = t.raw_rows[indices]
                    for encoding in ("as_is", "onehot"):
                        Y = as_target_matrix(raw, self.chain.n_out, encoding)
                        if Y is not None:
                            key = encoding if t is self.data.targets[0] else f"{encoding}:{t.name}"
                            targets[key] = Y
        return Batch(X=forward.x, out=forward.out, targets=targets)

    def _gradcheck(self, step, before, after, grads, batches: list[Batch], settle: bool = False) -> None:
        """Check the step's gradients; with `settle`, also choose the loss, targets and signs."""
        if self.rebuilt is None or not batches or all(not b.targets for b in batches):
            return
        self.gradchecked.add(step)
        self._before_for_check = before
        changes = [a - b for a, b in zip(after, before)]
        # Gradient arrays claim the check when they cover at least half of the entries; a
        # lone bias's (one entry lines up with any change) leaves the rest to the updates,
        # which then decide alone (and an optimizer that bends them is recognised there).
        covered = sum(int(np.size(c)) for g, c in zip(grads, changes) if g is not None)
        if covered and 2 * covered >= sum(int(np.size(c)) for c in changes):
            claim = Claim("gradients", _mixed_claims(grads, self.grad_sign, changes))
        else:
            claim = Claim("updates", [None if not np.any(d) else -d for d in changes])
        if self.encoding is not None:
            for batch in batches:
                batch.targets = {k: v for k, v in batch.targets.items() if k == self.encoding} or batch.targets
        first_arrays = claim.mode == "gradients" and not settle and not self._signs_settled
        if first_arrays:
            self.reduction = None   # (settled from updates, whose size the learning rate absorbs: no reading)
        payload = self._check(step, batches, claim)
        if first_arrays and payload is not None:
            self.reduction = payload["reduction"]
        if payload is None:
            if settle:
                self.obs.note("netdoctor's rebuilt network did not reproduce the program's outputs, "
                              "so its gradients were not checked")
            return
        self.rebuilt_verified = True
        if settle:
            self.loss_kind = payload["loss_kind"]
            rivals = payload.get("loss_ambiguous")
            # (Later checks weigh the rivals again: on one sample they stay as good.)
            self._loss_rivals = tuple(k for k in rivals or () if k != self.loss_kind)
            if rivals:
                self.obs.note(f"the code's gradients fit {' and '.join(k.upper() for k in rivals)} equally well "
                              f"(one sample, one output unit): the loss was taken to be {self.loss_kind.upper()}, "
                              "and what depends on that choice (the gradients' size) was not judged")
            self.reduction = payload["reduction"]
            encoding, _, other = payload["targets"].partition(":")
            self.encoding = encoding
            if other and self.data is not None:
                # Another array explains the code's gradients better: those are its targets.
                chosen = [t for t in self.data.targets if t.name == other]
                self.data.targets = chosen + [t for t in self.data.targets if t.name != other]
                for batch in batches:
                    batch.targets = {encoding: batch.targets[payload["targets"]]} \
                        if payload["targets"] in batch.targets else batch.targets
                payload["targets"] = encoding
            self.lr_fit = payload.get("lr_fit")
        if claim.mode == "gradients" and (settle or not self._signs_settled):
            # (At the first check made from gradient arrays, also when learning could read none.)
            self._signs_settled = True
            # Some code keeps the descent direction (-g) and adds it: judge each array as
            # the gradient it stands for; a wrong sign then shows in the updates (ND503).
            by_name = {row["name"]: row for row in payload["params"]}
            flipped = False
            for i, (_, _, name) in enumerate(self.param_roles):
                row = by_name.get(name)
                if row is not None and math.isfinite(row["cosine"]) and row["cosine"] < 0:
                    self.grad_sign[i] = -1.0
                    flipped = True
            if flipped:
                claim = Claim("gradients", _mixed_claims(grads, self.grad_sign, changes))
                # (The reduction read from the unflipped arrays' negative scale was no reading.)
                self.reduction = None
                payload = self._check(step, batches, claim) or payload
                self.reduction = payload["reduction"]
        self.obs.event("gradcheck", payload, step=step)

    def _check(self, step: int, batches: list[Batch], claim: Claim) -> dict | None:
        # Once settled, later checks judge against the same loss and reduction (and the losses
        # that explained the code's gradients as well, if any: see check_step's loss_ambiguous).
        kinds = (self.loss_kind, *self._loss_rivals) if self.loss_kind else None
        try:
            return check_step(self.rebuilt, self._before_for_check, self.param_roles, batches, claim, step=step,
                              kinds=kinds, reduction=self.reduction)
        except Exception as exc:  # noqa: BLE001 - a failed check is a note, never the end of the run
            self.obs.note(f"the gradient check at step {step} failed inside netdoctor: {exc!r}")
            return None

    # -- facts for the report ----------------------------------------------------------------------------
    def activation_name(self, index: int) -> str | None:
        layer = self.chain.layers[index]
        name = self.obs.identified.get(index) or layer.function
        if name is None and layer.computed:
            return "linear"   # (recognised as linear from its updates)
        return "linear" if name == "identity" else name

    def output_function(self) -> str | None:
        return self.activation_name(len(self.chain.layers) - 1)

    def task(self) -> str | None:
        if self.data is None or not self.data.targets:
            out = self.output_function()
            return "classification" if out in ("sigmoid", "softmax") else None
        raw = np.asarray(self.data.targets[0].raw_rows, dtype=np.float64)
        whole = bool(np.all(raw == np.round(raw)))
        if self.output_function() in ("sigmoid", "softmax") or (whole and len(np.unique(raw)) <= 20):
            return "classification"
        return "regression"

    def pool_pairs(self, index: int) -> tuple[np.ndarray, np.ndarray] | None:
        pairs = self.pools[index]
        if not pairs:
            return None
        shape = pairs[0][0].shape[1]
        zs = [z for z, _ in pairs if z.shape[1] == shape]
        acts = [a for z, a in pairs if z.shape[1] == shape]
        return np.concatenate(zs), np.concatenate(acts)


def _mixed_claims(grads, signs, changes) -> list[np.ndarray | None]:
    """Gradient arrays where the code keeps them; elsewhere the change divided by the
    learning rate those arrays show (W -= lr * dW), i.e. the gradient the code applied."""
    ratios = []
    for g, s, d in zip(grads, signs, changes):
        if g is not None:
            gg = float(np.vdot(g, g))
            if gg > 0:
                ratios.append(-float(np.vdot(d, g * s)) / gg)
    rate = float(np.median(ratios)) if ratios else 0.0
    out = []
    for g, s, d in zip(grads, signs, changes):
        if g is not None:
            out.append(g * s)
        elif rate and np.any(d):
            out.append(-d / rate)
        else:
            out.append(None)
    return out


def gradient_holders(grad_paths) -> set[CodeType]:
    """The functions whose locals (or arguments) hold gradient arrays: read at their return."""
    return {path.root.code for path in grad_paths
            if path is not None and path.root.kind in ("local", "arg") and path.root.code is not None}


def recorded(step: int) -> bool:
    """Whether a step is recorded: every one of the first DENSE_STEPS, then PER_OCTAVE per doubling."""
    if step <= DENSE_STEPS:
        return True
    octave = (step // DENSE_STEPS).bit_length() - 1
    stride = max(1, (DENSE_STEPS << octave) // PER_OCTAVE)
    return step % stride == 0


def _io(W: np.ndarray, layer) -> np.ndarray:
    """A weight-shaped array in (in, out) form, as probes expect (fan_in x fan_out)."""
    return layer.to_io(W)
