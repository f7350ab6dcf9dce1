"""Learning what the program's arrays are, from how they behave in its first steps.

While the learner runs, every event of the user's code is a *checkpoint*: the
arrays reachable at that moment are found (:mod:`.arrays`), the layer chain is
searched among them (:mod:`.chain`), and the chain's parameters are fingerprinted.

* The **parameters** are the chain's weights and biases: arrays that persist and
  change only in the update. The first change of their fingerprints is the first
  **step**.
* A **forward site** is a checkpoint at which the chain holds, with an output
  different from the last one seen: a forward pass has just run. Steps are later
  counted there (see :mod:`.stepper`), so an update spread over several lines or
  functions still counts once.
* **Gradients** are arrays of a parameter's shape whose direction matches the
  parameter's change at the first step (``W -= lr * dW``).

Learning ends after two steps with a known forward site (or when its budget runs
out, and the report then says what could not be inferred and how to name it).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from types import CodeType
from typing import Any

import numpy as np

from .arrays import Context, Found, Path, discover, fingerprint
from .chain import ChainSearch, ChainSpec, ObservedForward, continuing_parameters, function_of, observe, rows
from .collected import step_targets
from .naming import named_as
from .implicit import ImplicitModel, ImplicitSearch

# The learning budget. A program may spend a while preparing data before it trains, and
# one step of a big network costs more than one of a small one, so the budget is counted
# afresh from the moment a network first shows, and then grows with the cost of a step:
# learning goes on while it has taken less than STEP_BUDGET_FACTOR times the cost of the
# steps seen so far (at least MAX_SECONDS).
MAX_CHECKPOINTS = 20_000     # checkpoints looked at before giving up (counted like the seconds)
MAX_SECONDS = 4.0            # CPU seconds spent learning, before a network shows and after
STEP_BUDGET_FACTOR = 4.0     # ... or this many times what the first steps took
HOT_VISITS = 32              # visits of one place looked at in full while no network shows
HOT_THINNING = 8            # ... after which one visit pair in visits / HOT_THINNING,
HOT_GAP = 512                # ... or in HOT_GAP, is looked at
UPDATES_TO_LEARN = 2         # steps watched before the sites are settled
LOST_CHECKPOINTS = 200       # checkpoints without a valid forward before searching again
QUIET_SEARCHES = 12          # fruitless searches after a whole forward pass before settling
PAST_END_STEPS = 3           # steps watched line by line for a layer past the chain's end
STAGE1_CHECKPOINTS = 300     # calls/returns looked at before every line is watched too
STAGE1_RETURNS = 3           # ... or returns of one function while no network shows
STAGE1_SECONDS = 1.5         # ... or CPU seconds
COPY_BUDGET = 2_000_000      # elements of arrays copied for later comparison
# A small parameter's gradient must show the bigger ones' learning rate this closely
# (|log ratio|): its direction alone proves nothing.
SMALL_GRAD_RATE_TOL = 1e-3
_UPDATE_WORDS = ("update", "step", "change", "velocity", "momentum", "delta_w", "deltaw")
# An array the parameter changed by exactly (W += v, W -= step) is the step itself: a
# momentum's velocity, a scaled gradient. Unless it is named as the parameter's gradient
# (dW for W: plain descent with a learning rate of 1), it is no gradient.
STEP_ITSELF_TOL = 1e-6


@dataclass
class ForwardCopy:
    """What one forward pass showed, copied (rows form)."""

    x: np.ndarray
    out: np.ndarray
    zs: list[np.ndarray]
    acts: list[np.ndarray]
    y: np.ndarray | None = None   # the targets this pass's output was compared with (rows), if seen


@dataclass
class StepRecord:
    """Everything needed to record one step after the fact."""

    step: int
    before: list[np.ndarray]
    after: list[np.ndarray]
    grads: list[np.ndarray | None]
    forwards: list[ForwardCopy]
    numbers: dict[str, float] = None   # plain numbers the cycle held (the code's loss is one)


@dataclass
class Learned:
    chain: ChainSpec
    forward_keys: set
    line_codes: set
    grad_paths: list[Path | None]
    records: list[StepRecord]
    initial: list[np.ndarray | None]
    producers: dict[int, CodeType]         # layer index -> user function that produced its activation
    derivative_of: dict[CodeType, tuple[int, str]]  # user function -> (layer, "z" | "a") it was given
    changing: set[tuple]                   # path keys seen changing (data sets do not)
    delta_factors: dict[int, tuple]        # layer -> (z, factor, delta name, producer code) from deltas
    last_found: dict[int, Found]
    steps: int
    # Where a step's targets are held: for a model recognised from its updates (its output
    # never kept, see :mod:`.implicit`) the targets its gradient was computed with, and the
    # loss that gradient is of; otherwise the array the step compared with its output (see
    # :mod:`.collected`), when no data set may hold them.
    targets: Path | None = None
    loss: str | None = None
    pending: list[ForwardCopy] | None = None   # the forward passes of the step under way
    # The forward site is the return of a function that runs one forward pass and then
    # updates the parameters (see Learner._after_update_site): its pass is the step's own.
    after_update: bool = False



def _cpu_seconds() -> float:
    # Budgets are counted in CPU time, not wall-clock time, so that a busy machine (CI
    # running tests in parallel) does not change what the observer concludes; and in this
    # thread's CPU time, not the process's: a multi-threaded BLAS spins its worker threads
    # on every matrix product, which on 2 cores doubled the count and ran a 784-30-10
    # network out of its budget before its first step was seen.
    return time.thread_time()


class Learner:
    def __init__(self, observer: Any):
        self.obs = observer
        self.started = _cpu_seconds()
        self.checkpoints = 0
        self.visits = 0                          # checkpoint visits, including those passed over
        self._budget_from = (0, self.started)   # (checkpoints, CPU seconds) when the clock started
        self._chain_since: float | None = None  # CPU seconds when a network first showed
        self._visits: dict[tuple, int] = {}     # checkpoint key -> visits while no network shows
        self._next_pair: dict[tuple, int] = {}  # ... -> the visit that starts its next looked-at pair
        self.attempts = 0
        self.stage = 1               # 1: calls, returns and module-level lines; 2: every line too
        self.stage_started = (0, self.started)
        self.chain: ChainSpec | None = None
        self.search = ChainSearch()
        self._ctx: Context | None = None
        self._key_chains: dict[tuple, ChainSpec] = {}
        self._fps: dict[tuple, tuple] = {}
        self.changing: set[tuple] = set()       # path keys seen changing once training ran
        self.changed_ever: set[tuple] = set()   # ... or at any time (to suggest names)
        self._changed = True
        self._moved = False                      # the parameters have changed at least once
        self._misses = 0                         # checkpoints in a row where the chain did not hold
        self._lost = False                       # the chain stopped holding anywhere: searching again
        self._quiet = 0                          # searches in a row that found nothing better
        self._after_move_searches = 0
        self._last_arrays: dict[tuple, np.ndarray] = {}
        self._since_arrays = 0
        self._ref_fp: tuple | None = None        # parameters at the last forward pass
        self._before: list[np.ndarray] | None = None
        self._last_out_fp: dict[str, Any] = {"A": None, "B": None}
        self._cycle_keys: dict[str, list] = {"A": [], "B": []}
        self._cycle_forwards: list[ForwardCopy] = []
        self.cycles: list[dict[str, list]] = []
        self.records: list[StepRecord] = []
        self.updates = 0
        self.grad_paths: list[Path | None] | None = None
        self._grad_ratios: dict[int, float] = {}   # each gradient array's first ratio change/array
        self.initial: dict[tuple, np.ndarray] = {}
        self._returns: dict[CodeType, int] = {}
        self.most_returns = 0
        self.producers: dict[int, CodeType] = {}        # id(array) -> user function that returned it
        self.layer_producers: dict[int, CodeType] = {}  # layer index -> that function
        self.derivative_of: dict[CodeType, tuple[int, str]] = {}
        self.last_found: dict[int, Found] = {}
        self.gave_up: str | None = None
        self._cycle_seen: dict[int, Found] = {}     # arrays seen during the current cycle
        self.delta_factors: dict[int, tuple] = {}
        self.implicit = ImplicitSearch()
        self.implicit_model: ImplicitModel | None = None   # once a model is recognised from updates
        self._forward_found: dict[int, Found] = {}   # the arrays at the cycle's last forward pass
        self.step_targets: Path | None = None         # where the step compared its output with targets
        # The last forward pass a line showed: (code, frame id, the chain named there, id and
        # fingerprint of its input and output, parameters' fingerprint); per cycle, the
        # distinct forward passes, and the returns that still held one after an update.
        self._last_forward: tuple | None = None
        self._cycle_passes: set[tuple] = set()       # output fingerprints: distinct passes
        self._cycle_after_update: set[tuple] = set()
        self.cycle_stats: list[tuple[set, set]] = []
        # Steps (counted in `updates`) until which lines are watched for a layer past the
        # chain's end; None before that was considered, 0 once it is over.
        self._past_end_until: int | None = None
        self._lines_checked = False   # whether lines_done() has been decided

    # -- budget -----------------------------------------------------------------------------
    def out_of_budget(self) -> bool:
        count, since = self._budget_from
        now = _cpu_seconds()
        seconds, checkpoints = MAX_SECONDS, MAX_CHECKPOINTS
        if self.updates and self._chain_since is not None:
            # Steps are being seen: a bigger network's steps cost more; allow for them.
            per_step = (now - self._chain_since) / self.updates
            seconds = max(seconds, STEP_BUDGET_FACTOR * per_step * UPDATES_TO_LEARN)
            checkpoints = max(checkpoints, int(STEP_BUDGET_FACTOR * (self.checkpoints - count) / self.updates
                                               * UPDATES_TO_LEARN))
        if self.checkpoints - count > checkpoints:
            self.gave_up = f"no consistent training loop found in {self.checkpoints} events of the code"
            return True
        if now - since > seconds:
            self.gave_up = f"no consistent training loop found in {seconds:.3g} s of learning"
            return True
        return False

    def _seldom(self, key: tuple) -> bool:
        """Whether to pass over this visit of a place that keeps coming back with no network
        in sight (a data-preparation loop): after HOT_VISITS visits, visits are looked at in
        pairs, the gap between two pairs growing with the visits (1/HOT_THINNING of them, at
        most HOT_GAP): a place costs ~2 x HOT_THINNING x ln(visits) looks, not a share of
        its visits. A training loop comes back too, so a network built there is still found,
        a pair or two later.
        """
        visits = self._visits[key] = self._visits.get(key, 0) + 1
        if len(self._visits) > 50_000:
            self._visits.clear()
            self._next_pair.clear()
        if visits <= HOT_VISITS:
            return False
        # (A pair, so that one step's change still shows between two visits: see :mod:`.implicit`.)
        first = self._next_pair.setdefault(key, visits)
        if visits == first:
            return False
        if visits == first + 1:
            self._next_pair[key] = visits + min(HOT_GAP, max(2, visits // HOT_THINNING))
            return False
        return True

    def learning_seconds(self) -> float:
        """CPU seconds spent learning since a network first showed (or since the start)."""
        return _cpu_seconds() - (self._chain_since if self._chain_since is not None else self.started)

    def _restart_budget(self) -> None:
        """A network showed for the first time: what came before was data preparation."""
        if self._chain_since is None:
            self._chain_since = _cpu_seconds()
            self._budget_from = (self.checkpoints, self._chain_since)

    def wants_more_lines(self) -> bool:
        """Whether calls and returns have not been enough: time to watch every line.

        That is when a function keeps returning (a loop runs) and no network shows at
        calls and returns (its algebra is inline), or after a budget of checkpoints.
        """
        if self.stage == 1 and self._past_end_until:
            return True   # a layer may follow the chain where only lines show it
        if self.stage != 1 or self.updates >= 1:
            return False  # steps are seen at calls and returns: that is enough
        if self.chain is None and self.most_returns >= STAGE1_RETURNS:
            return True
        count, since = self.stage_started
        return self.checkpoints - count > STAGE1_CHECKPOINTS or _cpu_seconds() - since > STAGE1_SECONDS

    def enter_stage2(self) -> None:
        self.stage = 2
        self.stage_started = (self.checkpoints, _cpu_seconds())

    def lines_done(self) -> bool:
        """Whether every line need no longer be watched: a step was seen, a forward pass
        completed at a call or return in its cycle (where the site is then chosen), and no
        parameter that changes like the chain's own could continue it past its end (which
        lines might still show). A mini-batch of per-sample passes costs dozens of line
        checkpoints per sample; the steps still to be watched need none of them.
        """
        if self.stage != 2 or self.updates != 1 or not self.cycles or not self.cycles[-1]["A"]:
            return False
        if self.implicit_model is not None or self._lines_checked:
            return False
        self._lines_checked = True   # (decided once, at the first step)
        return not self._continuing(self.last_found)

    def leave_stage2(self) -> None:
        self.stage = 1
        self._past_end_until = 0   # (the chain's end was looked for at lines already)

    # -- remembering calls ------------------------------------------------------------------------
    def note_return(self, code: CodeType, value: Any) -> None:
        """Remember which user function returned which array (to locate activations)."""
        count = self._returns[code] = self._returns.get(code, 0) + 1
        self.most_returns = max(self.most_returns, count)
        if isinstance(value, np.ndarray):
            self.producers[id(value)] = code
            if len(self.producers) > 4096:
                self.producers.clear()

    def note_call(self, code: CodeType, arg_ids: tuple[int, ...], ctx: Context) -> None:
        """A user function was given arrays: is it a derivative applied to a layer's z or a?"""
        if self.chain is None or not arg_ids:
            return
        for index, layer in enumerate(self.chain.layers):
            for role, path in (("z", layer.z), ("a", layer.a)):
                if path is None:
                    continue
                arr = path.array(ctx)
                if arr is not None and id(arr) in arg_ids:
                    self.derivative_of.setdefault(code, (index, role))
                    return

    # -- one checkpoint ---------------------------------------------------------------------------
    def checkpoint(self, ctx: Context, key: tuple, tier: str) -> Learned | None:
        """Look at the program now; returns what was learned once learning is complete."""
        self.visits += 1   # (every visit, looked at or passed over: the user's code is running)
        if self.chain is None:
            if self._seldom(key):
                return None
        elif not self.updates:
            self._visits[key] = self._visits.get(key, 0) + 1   # (numbered for the implicit search)
        self.checkpoints += 1
        self._ctx = ctx
        found = discover(self.obs.sources(ctx), self.obs.user_types, skip=self.obs.skip_object)
        self.last_found = found
        self._track(found)
        if self.chain is not None and len(self._cycle_seen) < 600:
            for i, f in found.items():
                self._cycle_seen.setdefault(i, f)
        if self.implicit_model is not None:
            if key != self.implicit_model.site:
                return None   # a step of a model whose output is never kept is one visit of its site
            return self._forward_at(ctx, key, tier, found)
        # (While a network in sight waits for its first step, its parameters unmoved since its
        # forward pass, the arrays that move are the step's own work, a mini-batch's gradient
        # sums: nothing for the updates to name, and costly to try at every line.)
        # (The parameters' fingerprint is taken once here, for this test and the next.)
        params_now = self._param_fingerprint(ctx) if self.chain is not None and self._ref_fp is not None else None
        waiting = params_now is not None and not self.updates and params_now == self._ref_fp
        if (self.chain is None or not self.updates) and not waiting:
            # No forward pass shows, or none that steps follow yet (a forward made only for a
            # log line every 100 epochs), but the updates may name the model: adopt it,
            # counting a step at each visit of the place where its updates were recognised.
            # (Neither the parameters of a network already in sight nor arrays that changed
            # while training ran are data.)
            params = {path.key() for path in self._param_paths()}
            model = self.implicit.visit(key, found, self._visits.get(key, 0), not_data=(self.changing, params),
                                        not_samples=(params,))
            if model is not None:
                return self._adopt_implicit(model, ctx, key, tier, found)
        # Until the parameters first move, search wherever arrays changed (the forward pass
        # is seen growing layer by layer); after that, only where a forward pass completes.
        if not self._moved and self._ref_fp is not None and params_now != self._ref_fp:
            self._moved = True   # the update has begun: the backward pass's arrays need no search
        if not self._moved:
            # (At a call the new arrays are its arguments; the return shows them too,
            # with the result: searching there suffices.)
            if self._changed and key[1] != "call":
                if self._search(found):
                    self._quiet = 0
                elif self._ref_fp is not None and (len(self._cycle_forwards) >= 2 or self.records):
                    # The chain held at two forward passes; searches that find nothing better
                    # (the backward pass's arrays) are not worth their cost for long.
                    self._quiet += 1
            if self.chain is None:
                return None
            if self._ref_fp is not None and self._quiet > QUIET_SEARCHES:
                self._moved = True
        elif self._changed and key[1] != "call" and self._after_move_searches < QUIET_SEARCHES:
            # Once training runs, look only at arrays with the chain's samples: a layer the
            # first forward pass could not show (zero weights, an all-zero input) joins it
            # as soon as it can be seen; gradients and weights are not even looked at.
            self._after_move_searches += 1
            if self._search(found, narrow=True):
                self._after_move_searches = 0
        if key[1] == "return" and self._last_forward is not None:
            self._note_after_update(ctx, key, params_now)
        forward = observe(self.chain, ctx)
        self._since_arrays += 1
        if forward is None and self._last_arrays and self._since_arrays <= 3:
            # Arrays seen last time under a name that no longer reaches them (a function's
            # result, since stored in a list): find them again by identity.
            renamed = rename(self.chain, ctx, found, self._last_arrays)
            if renamed is not self.chain:
                self.chain = renamed
                forward = observe(self.chain, ctx)
        if forward is None:
            self._misses += 1
            if self._moved and self._misses > LOST_CHECKPOINTS:
                # The chain no longer holds anywhere (e.g. a bias that was all zeros when it
                # was found has moved): search at every change again.
                self._moved = False
                self._misses = 0
                self._lost = True
                self._quiet = 0
            return None
        self._misses = 0
        self._lost = False
        # Name the chain's arrays where they are found now (a function's result becomes an
        # attribute), so that later checkpoints can reach them again.
        self.chain = rename(self.chain, ctx, found)
        self._last_arrays = chain_arrays(self.chain, ctx)   # (valid for the next few checkpoints:
        self._since_arrays = 0                              # the next forward makes new arrays)
        out_fp = fingerprint(forward.raw_out)
        if out_fp == self._last_out_fp[tier]:
            return None
        if self._changed and self._search(found, narrow=True):
            forward = observe(self.chain, ctx)
            if forward is None:
                return None
            out_fp = fingerprint(forward.raw_out)
        # A forward pass has just completed here.
        self._last_out_fp[tier] = out_fp
        self._note_producers(ctx, self.chain)
        param_fp = self._param_fingerprint(ctx)
        if self._ref_fp is None:
            self._start_cycle(ctx, found, param_fp)
        elif param_fp != self._ref_fp:
            self._step(ctx, found, param_fp)           # the parameters moved since the last forward
        self._note_pass(ctx, key, out_fp, param_fp)
        if len(self._cycle_forwards) < 64:   # (a mini-batch of per-sample forward passes)
            self._cycle_forwards.append(copy_forward(forward))
        self._forward_found = found
        if key not in self._cycle_keys[tier]:
            self._cycle_keys[tier].append(key)
            self._key_chains[key] = self.chain   # named as it resolves at this very checkpoint
        if self.updates >= UPDATES_TO_LEARN and not self._looking_past_end(found):
            return self._learned(self.cycles[-1])
        return None

    def _looking_past_end(self, found: dict[int, Found]) -> bool:
        """Whether to watch a few more steps, line by line, for a layer past the chain's end.

        A parameter that changes like the chain's own and could take its output (a matrix
        with the chain's width) says the network goes on. Calls and returns cannot show
        that layer when its function is a library one (``np.tanh``): by the time the user's
        function returns, an in-place update has changed its weights. Its lines show the
        output while the weights are still those that made it.
        """
        if self._past_end_until is None:
            if self.stage != 1 or self.implicit_model is not None:
                self._past_end_until = 0
                return False
            more = self._continuing(found)
            self._past_end_until = self.updates + PAST_END_STEPS if more else 0
        if self.updates < self._past_end_until:
            self._moved, self._quiet = False, 0   # (search this step's forward pass in full)
            return True
        self._past_end_until = 0
        return False

    # -- a forward site after the update ---------------------------------------------------------
    def _note_pass(self, ctx: Context, key: tuple, out_fp: tuple, param_fp: tuple | None) -> None:
        """Count the forward pass that completed here, and remember where a line showed it
        (see _note_after_update)."""
        self._cycle_passes.add(out_fp)
        if key[1] != "line":
            return
        chain = self.chain   # (named as it resolves here: a function's locals)
        x = chain.input.array(ctx)
        out = chain.output.array(ctx) if chain.output is not None else None
        self._last_forward = None if x is None or out is None or ctx.frame is None else (
            key[0], id(ctx.frame), chain, id(x), fingerprint(x), id(out), fingerprint(out), param_fp)

    def _note_after_update(self, ctx: Context, key: tuple, params_now: tuple | None) -> None:
        """A function returns still holding the input and output of the forward pass it ran
        (the same arrays, unchanged), while the parameters have changed since: the update
        ran inside it, after that pass. Its return then closes one step, after the update."""
        code, frame_id, chain, x_id, x_fp, out_id, out_fp, param_fp = self._last_forward
        if key[0] is not code or id(ctx.frame) != frame_id:
            return
        params = params_now if params_now is not None else self._param_fingerprint(ctx)
        if params is None or params == param_fp:
            return
        x, out = chain.input.array(ctx), chain.output.array(ctx)
        if (x is not None and out is not None and id(x) == x_id and id(out) == out_id
                and fingerprint(x) == x_fp and fingerprint(out) == out_fp):
            self._cycle_after_update.add(key)

    def _after_update_site(self, site: tuple, cycle_index: int) -> tuple | None:
        """The return to count steps at instead of a line, if that cycle shows it can be.

        Watching a function's every line costs one event per line for the whole run. When
        the line's function runs exactly one forward pass, updates the parameters and returns
        still holding that pass's input and output, its return shows the same pass once per
        step, at the cost of one event: the pass made with the parameters before the update.
        """
        if site[1] != "line" or self.chain.output is None or len(self.cycle_stats) != len(self.cycles):
            return None
        passes, after_update = self.cycle_stats[cycle_index]
        ret = (site[0], "return", 0)
        return ret if ret in after_update and len(passes) == 1 else None

    def _continuing(self, found: dict[int, Found]) -> list[Found]:
        """The parameters that change like the chain's own and could take its output."""
        x = self.chain.input.array(self._ctx) if self._ctx is not None else None
        n = rows(x, self.chain.samples).shape[0] if x is not None and x.ndim == 2 else None
        exclude = {self.chain.input.key()} | ({self.step_targets.key()} if self.step_targets else set())
        return continuing_parameters(self.chain, found.values(), self.changing, exclude=exclude,
                                     samples=n if n and n > 1 else None)

    def _find_step_targets(self, found: dict[int, Found]) -> None:
        """The array the ending cycle compared with its last output to form the error, kept
        if it was already held at that forward pass (where later steps read it)."""
        if not self._cycle_forwards or self.implicit_model is not None:
            return
        forward = self._cycle_forwards[-1]
        exclude = {p.key() for layer in self.chain.layers
                   for p in (layer.W, layer.b, layer.x, layer.z, layer.a) if p is not None}
        arrays = list(self._cycle_seen.values()) + [f for i, f in found.items() if i not in self._cycle_seen]
        # (Held at the forward pass, and where the earlier steps held theirs, if they did.)
        held = [self._forward_found[id(t.array)] for t in step_targets(forward.out, self.chain.samples, arrays, exclude)
                if id(t.array) in self._forward_found]
        if self.step_targets is not None:
            held = [f for f in held if f.path.key() == self.step_targets.key()]
        if held:
            self.step_targets = held[0].path
            forward.y = rows(held[0].array, self.chain.samples)

    def _adopt_implicit(self, model: ImplicitModel, ctx: Context, key: tuple, tier: str,
                        found: dict[int, Found]) -> Learned | None:
        """Take a model recognised from its updates, with the steps that showed it."""
        self._adopt(model.chain, found)
        self.implicit_model = model
        layer = model.chain.layers[0]
        x = layer.x.array(ctx)
        if x is None:
            return None
        X = rows(x, layer.samples)
        f = function_of(layer.function, layer.slope) if layer.function else None

        def forward(values: list[np.ndarray], sample: tuple | None = None) -> ForwardCopy:
            # (A one-sample design knows each step's own sample and target.)
            Xs, y = (X, None) if sample is None else (sample[0], sample[1].reshape(-1, 1))
            b = values[1].reshape(1, -1) if len(values) > 1 else 0.0
            with np.errstate(all="ignore"):
                z = Xs @ layer.to_io(values[0]).reshape(Xs.shape[1], -1) + b
                a = f(z) if f is not None else z
            return ForwardCopy(x=Xs, out=a, zs=[z], acts=[a], y=y)

        history = [[np.array(v, dtype=np.float64) for v in values] for values in model.history]
        for path, value in zip(self._param_paths(), history[0]):
            self.initial[path.key()] = value
        self.grad_paths = self._find_gradients(found, history[-2], history[-1])
        for step, (before, after) in enumerate(zip(history, history[1:]), start=1):
            grads: list[np.ndarray | None] = [None] * len(before)
            if step == len(history) - 1:   # the gradients held now are the last step's
                for index, path in enumerate(self.grad_paths):
                    arr = path.array(ctx) if path is not None else None
                    grads[index] = None if arr is None else np.array(arr, dtype=np.float64, copy=True)
            sample = model.samples[step - 1] if len(model.samples) >= step else None
            self.records.append(StepRecord(step, before, after, grads, [forward(before, sample)], {}))
            self.cycles.append({"A": [], "B": [], tier: [key]})
            self._key_chains[key] = self.chain
            self.updates = step
            self.obs.after_learning_step(step)
        self._before = history[-1]
        self._ref_fp = self._param_fingerprint(ctx)
        self._cycle_forwards = [forward(history[-1])]
        if self.updates >= UPDATES_TO_LEARN:
            return self._learned(self.cycles[-1])
        return None

    def _forward_at(self, ctx: Context, key: tuple, tier: str, found: dict[int, Found]) -> Learned | None:
        """A visit of an implicit model's site: its output, computed, is a new forward pass."""
        forward = observe(self.chain, ctx)
        if forward is None:
            return None
        self._last_out_fp[tier] = fingerprint(forward.raw_out)
        param_fp = self._param_fingerprint(ctx)
        if self._ref_fp is None:
            self._start_cycle(ctx, found, param_fp)
        elif param_fp != self._ref_fp:
            self._step(ctx, found, param_fp)
        if len(self._cycle_forwards) < 64:
            self._cycle_forwards.append(copy_forward(forward))
        if key not in self._cycle_keys[tier]:
            self._cycle_keys[tier].append(key)
            self._key_chains[key] = self.chain
        if self.updates >= UPDATES_TO_LEARN:
            return self._learned(self.cycles[-1])
        return None

    def _search(self, found: dict[int, Found], narrow: bool = False) -> bool:
        """Update the chain from the arrays now; True when a different network was adopted.

        `narrow` (once training runs): only look for layers that would feed the chain's
        first layer, in case the first forward pass hid one (e.g. an all-zero input).
        """
        self._changed = False
        self.attempts += 1
        outputs = None
        if narrow and self.chain is not None:
            first = next((f.array for f in found.values() if f.path.key() == self.chain.input.key()), None)
            if first is not None and first.ndim == 2:
                axis = 0 if self.chain.samples == "rows" else 1
                n = first.shape[axis]
                outputs = lambda f: f.array.ndim == 2 and f.array.shape[axis] == n   # noqa: E731
            else:
                outputs = lambda f: f.array.ndim == 1   # noqa: E731
        spec = self.search.update(found, self.obs.recent_calls(), params=self.obs.named_param_ids(found),
                                  outputs=outputs)
        if spec is None:
            return False
        output = self.obs.named_output()
        if output is not None and not named_as(spec.output.name, output):
            return False   # the user named the network's output: only a chain ending there counts
        if self.chain is None or spec.score() > self.chain.score() or (
                self._lost and spec.score() == self.chain.score() and not _same_params(spec, self.chain)):
            # (A chain that stopped holding gives way to one as good that holds now: parameters
            # first seen as globals may be rebound as a function's locals, ``W1 = W1 - lr * dW1``.)
            self._adopt(spec, found)
            return True
        if spec.score() == self.chain.score() and _same_params(spec, self.chain):
            self.chain = _merge_names(self.chain, spec, self._ctx)   # the same network, better named
        return False

    def _track(self, found: dict[int, Found]) -> None:
        for f in found.values():
            key = f.path.key()
            fp = fingerprint(f.array)
            old = self._fps.get(key)
            if old != fp:
                if old is not None:
                    self.changed_ever.add(key)
                    if self._moved or self.records:
                        # (Data prepared before training, X = (X - mean) / std, is still data.)
                        self.changing.add(key)
                self._fps[key] = fp
                self._changed = True
                self._note_initial(key, f.array, old)

    def _note_initial(self, key: tuple, array: np.ndarray, old: tuple | None) -> None:
        """Keep each array's value from before training: the first value seen, replaced when
        a new array takes the place (re-initialised) while no parameter has moved yet;
        changes in place (updates) never replace it."""
        if array.dtype.kind != "f" or array.size > COPY_BUDGET // 8:
            return
        if key in self.initial and (self._moved or self.records or old is None or old[0] == id(array)):
            return
        self.initial[key] = np.array(array, dtype=np.float64, copy=True)

    def _adopt(self, spec: ChainSpec, found: dict[int, Found]) -> None:
        if self._past_end_until:
            self._past_end_until = 0   # the longer network was found: learn it as usual
        self.chain = spec
        self._restart_budget()
        self._adopt_reset()

    def _adopt_reset(self) -> None:
        self._ref_fp = None
        self._before = None
        self._cycle_keys = {"A": [], "B": []}
        self._cycle_forwards = []
        self._last_out_fp = {"A": None, "B": None}
        self.cycles = []
        self.cycle_stats = []
        self._cycle_passes, self._cycle_after_update = set(), set()
        self._last_forward = None
        self.records = []
        self.updates = 0
        self.grad_paths = None
        self._grad_ratios: dict[int, float] = {}
        self.layer_producers = {}

    def _start_cycle(self, ctx: Context, found: dict[int, Found], param_fp: tuple | None) -> None:
        self._ref_fp = param_fp
        self._before = self._param_copies(ctx)

    def _param_paths(self) -> list[Path]:
        return self.chain.param_paths() if self.chain is not None else []

    def _param_fingerprint(self, ctx: Context) -> tuple | None:
        fps = []
        for path in self._param_paths():
            arr = path.array(ctx)
            if arr is None:
                return None
            fps.append(fingerprint(arr))
        return tuple(fps)

    def _param_copies(self, ctx: Context) -> list[np.ndarray] | None:
        out = []
        for path in self._param_paths():
            arr = path.array(ctx)
            if arr is None:
                return None
            out.append(np.array(arr, dtype=np.float64, copy=True))
        return out

    def _note_producers(self, ctx: Context, chain: ChainSpec) -> None:
        """Which user function returned each layer's activation (the seed's outputFunction)."""
        for index, layer in enumerate(chain.layers):
            if layer.a is None or index in self.layer_producers:
                continue
            arr = layer.a.array(ctx)
            code = self.producers.get(id(arr)) if arr is not None else None
            if code is not None:
                self.layer_producers[index] = code

    def _step(self, ctx: Context, found: dict[int, Found], param_fp: tuple) -> None:
        """The parameters changed between two forward passes: one update (a step)."""
        after = self._param_copies(ctx)
        if after is None or self._before is None:
            self._start_cycle(ctx, found, param_fp)
            return
        self.updates += 1
        self._after_move_searches = 0
        if self.grad_paths is None:
            # The gradient may be gone by now (a mini-batch's sums start again from zeros
            # before the next forward pass): arrays seen during the cycle count too.
            self.grad_paths = self._find_gradients({**self._cycle_seen, **found}, self._before, after)
        grads = []
        for index, path in enumerate(self.grad_paths):
            arr = path.array(ctx) if path is not None else None
            grad = None if arr is None else np.array(arr, dtype=np.float64, copy=True)
            if grad is not None and self.updates > 1 and not _aligned(after[index] - self._before[index], grad):
                # A chance alignment at the first step (small arrays): not this parameter's gradient.
                self._drop_gradient(index)
                grad = None
            grads.append(grad)
        self._check_gradient_rates(grads, after)
        numbers = {f.name: float(f.array) for f in {**self._cycle_seen, **found}.values()
                   if f.array.ndim == 0 and f.array.dtype.kind == "f" and f.path.key() not in
                   {p.key() for p in self._param_paths()}}
        self.records.append(StepRecord(self.updates, self._before, after, grads, self._cycle_forwards,
                                       dict(list(numbers.items())[:64])))
        if self._cycle_forwards:
            self._read_deltas(self._before, after, self._cycle_forwards[-1], found)
            self._find_step_targets(found)
        self._cycle_seen = {}
        self.cycles.append(self._cycle_keys)
        self.cycle_stats.append((self._cycle_passes, self._cycle_after_update))
        self._cycle_keys = {"A": [], "B": []}
        self._cycle_passes, self._cycle_after_update = set(), set()
        self._cycle_forwards = []
        self._before = after
        self._ref_fp = param_fp
        self.obs.after_learning_step(self.updates)

    def _read_deltas(self, before, after, forward: ForwardCopy, found: dict[int, Found]) -> None:
        """The derivative factor each hidden layer's delta shows (see :mod:`.deltas`)."""
        from .deltas import derivative_factors

        chain = self.chain
        weights_io, claimed_io, index = [], [], 0
        for layer in chain.layers:
            W0, W1 = before[index], after[index]
            index += 2 if layer.b is not None else 1
            weights_io.append(layer.to_io(W0))
            claimed_io.append(layer.to_io(W1 - W0))
        acts_in = [forward.x] + forward.acts[:-1]
        candidates = list(self._cycle_seen.values()) + [f for i, f in found.items() if i not in self._cycle_seen]
        try:
            factors = derivative_factors(chain, acts_in, forward.zs, weights_io, claimed_io, candidates)
        except Exception:  # noqa: BLE001 - an optional probe
            return
        for layer, (z, factor, delta) in factors.items():
            if layer not in self.delta_factors:
                self.delta_factors[layer] = (z, factor, delta.name, self.producers.get(id(delta.array)))

    def _drop_gradient(self, index: int) -> None:
        self.grad_paths[index] = None
        for record in self.records:
            record.grads[index] = None

    def _check_gradient_rates(self, grads: list[np.ndarray | None], after: list[np.ndarray]) -> None:
        """A parameter's gradient array keeps its ratio to the change (the learning rate)
        from step to step. An array that lines up with the change by shape alone does not:
        with one input feature, a layer's weight change is its bias gradient times the
        input, so the bias gradient also lines up with the weight's change, at a ratio that
        follows the input (and flips its sign with it). Such an array is dropped when it
        drifts while another parameter's ratio holds (a learning-rate schedule moves all)."""
        ratios: dict[int, float] = {}
        for index, grad in enumerate(grads):
            if grad is None:
                continue
            g = grad.reshape(-1)
            gg = float(np.dot(g, g))
            d = (after[index] - self._before[index]).reshape(-1)
            if gg > 0 and math.isfinite(gg) and d.shape == g.shape:
                ratios[index] = float(np.dot(d, g)) / gg
        first = self._grad_ratios
        steady = {i for i, r in ratios.items() if i in first and _rate_distance(r, first[i]) <= SMALL_GRAD_RATE_TOL}
        for index, ratio in ratios.items():
            if index not in first:
                first[index] = ratio
            elif index not in steady and (steady or (ratio > 0) != (first[index] > 0)):
                self._drop_gradient(index)
                grads[index] = None

    def _find_gradients(self, found: dict[int, Found], before, after) -> list[Path | None]:
        """For each parameter, the array whose direction is the parameter's change (if any).

        Small arrays (a bias of one or two units) align with many arrays by chance, so
        among aligned candidates the one whose ratio change/array equals the learning
        rate seen on the bigger parameters wins (W -= lr * dW; b -= lr * db).
        """
        excluded = {p.key() for p in self._param_paths()}
        for layer in self.chain.layers:          # activations and inputs are not gradients
            excluded |= {p.key() for p in (layer.x, layer.z, layer.a) if p is not None}
        options: list[list[tuple[float, float, Path]]] = []
        for param, old, new in zip(self._param_paths(), before, after):
            delta = (new - old).reshape(-1)
            dd = float(np.dot(delta, delta))
            found_here = []
            if dd > 0 and math.isfinite(dd):
                for f in found.values():
                    a = f.array
                    if a.shape != old.shape or f.path.key() in excluded or a.dtype.kind != "f":
                        continue
                    if any(word in f.name.lower() for word in _UPDATE_WORDS):
                        continue  # the step itself (lr * g), not the gradient
                    g = a.astype(np.float64).reshape(-1)
                    gg = float(np.dot(g, g))
                    if gg == 0 or not math.isfinite(gg):
                        continue
                    dg = float(np.dot(delta, g))
                    cos = abs(dg) / math.sqrt(dd * gg)
                    if cos >= 0.999 and (abs(abs(dg / gg) - 1) > STEP_ITSELF_TOL
                                         or _gradient_name_of(f.name, param.name)):
                        found_here.append((cos, dg / gg, f.path))
            options.append(found_here)
        # The learning rate as the bigger parameters show it (their alignment is no accident).
        rates = [max(opts, key=lambda o: o[0])[1] for old, opts in zip(before, options) if opts and old.size >= 4]
        rate = float(np.median(rates)) if rates else None
        out: list[Path | None] = []
        for path, old, opts in zip(self._param_paths(), before, options):
            if not opts:
                out.append(None)
            elif rate is None or rate == 0:
                # Without a rate to compare with, only a big array's alignment means something,
                # or, for a small one (a scalar w), a name that says it is w's gradient (dw).
                if old.size >= 4:
                    out.append(max(opts, key=lambda o: o[0])[2])
                else:
                    out.append(next((o[2] for o in opts if _gradient_name_of(o[2].name, path.name)), None))
            elif old.size >= 4:
                out.append(min(opts, key=lambda o: _rate_distance(o[1], rate))[2])
            else:
                # A one- or two-entry array lines up with any change of its shape (a 1x1 target
                # y does with a 1x1 bias's step): only the learning rate itself, or a name that
                # says so, picks its gradient; with neither, the change stands for it.
                out.append(next((o[2] for o in sorted(opts, key=lambda o: _rate_distance(o[1], rate))
                                 if _rate_distance(o[1], rate) <= SMALL_GRAD_RATE_TOL
                                 or _gradient_name_of(o[2].name, path.name)), None))
        return out

    def partial(self) -> Learned | None:
        """What was learned so far, for a run that ended while learning."""
        if self.chain is None:
            return None
        return self._learned(self.cycles[-1] if self.cycles else self._cycle_keys)

    def _learned(self, cycle: dict[str, list]) -> Learned:
        # The first checkpoint where a forward pass was complete after a step: one site, so
        # that each forward is handled once (later checkpoints of the same pass add nothing).
        ordered = cycle["A"] or cycle["B"]
        keys = set(ordered[:1])
        chain = self._key_chains.get(ordered[0], self.chain) if ordered else self.chain
        after_update = None
        if ordered and not cycle["A"] and self.implicit_model is None and cycle is (self.cycles or [None])[-1]:
            after_update = self._after_update_site(ordered[0], len(self.cycles) - 1)
            if after_update is not None:
                keys = {after_update}
        activation_codes = set(self.layer_producers.values()) | {
            l.function_code for l in self.chain.layers if l.function_code is not None}
        derivatives = {c: v for c, v in self.derivative_of.items() if c not in activation_codes}
        if self.implicit_model is not None:
            derivatives = {}   # (its gradient is the one recognised: a function given z is a log line's)
        return Learned(
            chain=chain, forward_keys=keys, line_codes={k[0] for k in keys if k[1] == "line"},
            grad_paths=self.grad_paths or [None] * len(self._param_paths()),
            records=self.records,
            initial=[self.initial.get(path.key()) for path in self._param_paths()],
            producers=dict(self.layer_producers), derivative_of=derivatives,
            changing=set(self.changing), last_found=self.last_found, steps=self.updates,
            delta_factors=dict(self.delta_factors),
            targets=self.implicit_model.targets if self.implicit_model else self.step_targets,
            loss=self.implicit_model.loss if self.implicit_model else None,
            pending=list(self._cycle_forwards), after_update=after_update is not None,
        )


def _gradient_name_of(name: str, param: str) -> bool:
    """Whether `name` reads as the gradient of the parameter called `param`: dw, dW1, grad_w,
    w_grad, dJ_dw, dL_dw (leaf names compared, case kept apart from the 'd')."""
    def leaf(text: str) -> str:
        return text.rsplit(".", 1)[-1].split("[")[0].strip("'\"")

    g, p = leaf(name), leaf(param)
    forms = {"d" + p, "d_" + p, "grad_" + p, p + "_grad", "dJ_d" + p, "dL_d" + p, "dj_d" + p, "dl_d" + p,
             "grad" + p, "g" + p, "nabla_" + p}
    return g in forms or g.lower() in {f.lower() for f in forms if not f.startswith("d" + p)}


def _rate_distance(ratio: float, rate: float) -> float:
    if ratio == 0 or (ratio > 0) != (rate > 0):
        return math.inf
    return abs(math.log(abs(ratio) / abs(rate)))


def _aligned(delta: np.ndarray, grad: np.ndarray) -> bool:
    """Whether a parameter's change points along (or against) an array: |cos| >= 0.999."""
    d, g = delta.reshape(-1), grad.reshape(-1)
    dd, gg = float(np.dot(d, d)), float(np.dot(g, g))
    if dd == 0 and gg == 0:
        return True
    if dd == 0 or gg == 0 or not (math.isfinite(dd) and math.isfinite(gg)):
        return False
    return abs(float(np.dot(d, g))) / math.sqrt(dd * gg) >= 0.999


# How long a name keeps reaching an array: attributes and globals outlive a function's
# locals, which outlive the value a function has just returned.
_STABILITY = {"object": 0, "globals": 0, "local": 1, "arg": 1, "result": 2}


def chain_arrays(spec: ChainSpec, ctx: Context) -> dict[tuple, np.ndarray]:
    """The arrays each of the chain's paths reaches now (by path key)."""
    out = {}
    for layer in spec.layers:
        for path in (layer.W, layer.x, layer.b, layer.z, layer.a):
            if path is not None:
                arr = path.array(ctx)
                if arr is not None:
                    out[path.key()] = arr
    return out


def rename(spec: ChainSpec, ctx: Context, found: dict[int, Found],
           last: dict[tuple, np.ndarray] | None = None) -> ChainSpec:
    """The chain with each path replaced by the best path to the same array now (the
    array the path reaches, or with `last`, the array it reached last time)."""
    import dataclasses

    changed = False
    # An array plays one role in the chain: a name already held by another role is not
    # taken (a function's argument `x` is a layer's z in one call and its activation in the
    # next, as in ``nonlin(x)`` and ``nonlin(x, deriv=True)``).
    held = [p.key() for l in spec.layers for p in (l.W, l.x, l.b, l.z, l.a) if p is not None]

    def better(path: Path | None) -> Path | None:
        nonlocal changed
        if path is None:
            return None
        arr = path.array(ctx)
        by_identity = False
        if arr is None and last is not None and path.root.kind == "result":
            arr, by_identity = last.get(path.key()), True
        f = found.get(id(arr)) if arr is not None else None
        if f is None or f.path.key() == path.key():
            return path
        if by_identity and f.path.root.kind not in ("object", "globals"):
            # A function's result is found again only where it lasts (an attribute, a list
            # in one): an outer function's local is reassigned later, after the forward pass.
            return path
        if _STABILITY[f.path.root.kind] > _STABILITY[path.root.kind] and path.array(ctx) is not None:
            return path   # never trade a lasting name for a passing one (a function's result)
        if f.path.key() in held:
            return path
        changed = True
        return f.path

    layers = [dataclasses.replace(l, W=better(l.W), x=better(l.x), b=better(l.b), z=better(l.z), a=better(l.a))
              for l in spec.layers]
    return dataclasses.replace(spec, layers=layers) if changed else spec


def _merge_names(current: ChainSpec, other: ChainSpec, ctx: Context) -> ChainSpec:
    """`current`, taking `other`'s name for an array where that name lasts at least as long,
    or where the current name reaches nothing now."""
    import dataclasses

    def pick(mine: Path | None, theirs: Path | None) -> Path | None:
        if mine is None or theirs is None:
            return mine if theirs is None else theirs
        if mine.array(ctx) is None or _STABILITY[theirs.root.kind] <= _STABILITY[mine.root.kind]:
            return theirs
        return mine

    layers = [dataclasses.replace(a, W=pick(a.W, b.W), x=pick(a.x, b.x), b=pick(a.b, b.b), z=pick(a.z, b.z),
                                  a=pick(a.a, b.a), function=b.function or a.function,
                                  function_code=b.function_code or a.function_code)
              for a, b in zip(current.layers, other.layers)]
    return dataclasses.replace(current, layers=layers)


def _same_params(a: ChainSpec, b: ChainSpec) -> bool:
    return [p.key() for p in a.param_paths()] == [p.key() for p in b.param_paths()]


def copy_forward(forward: ObservedForward) -> ForwardCopy:
    return ForwardCopy(
        x=np.array(forward.x, dtype=np.float64, copy=True),
        out=np.array(forward.acts[-1], dtype=np.float64, copy=True),
        zs=[np.array(z, dtype=np.float64, copy=True) for z in forward.zs],
        acts=[np.array(a, dtype=np.float64, copy=True) for a in forward.acts],
    )
