"""Seed sweeps: is it a bug, or bad luck?

A network that fails once may be broken or merely unlucky in its random draw.
:func:`sweep` runs the same script (or reference MLP) ``n`` times with different
random seeds and counts how many runs converge::

    result = sweep("train.py", 20)
    print(result.render())        # "0 of 20 runs converged" -> look for a bug
                                  # "15 of 20 runs converged" -> a fragile set-up

**Converged**, precisely: the run finished (status "completed" or "stopped"),
it has no error-severity finding, and its final probe loss is at most
``loss_ratio`` (default 0.1) times its first recorded probe loss, or, for a classifier,
the run fits its data by the one rule every symptom rule uses (:func:`netdoctor.rules._common.run_fits`:
a classifier at the accuracy its data allows converged even if its loss kept 0.3 of
its start). The probe loss
is measured on the same fixed batch at every step, so start and end compare;
when a trace has no probe loss the training loss is used instead. A run whose
loss was never recorded (or starts at zero or below) is *undetermined* and is
left out of the rate.

**Seeding a script**: see :mod:`netdoctor.seeding`.

**Where seeds run.** On any :class:`concurrent.futures.Executor` the caller
passes (a process pool over the local cores by default). Each task must run in
its own process, or one at a time: the seeding above patches process-wide state.
On the standard library's pools a task is plain picklable data (a script path,
or an MLP's constructor arguments and the data) and its SeedRun comes back as
is. On any other executor, such as a Dask cluster's ``client.get_executor()``
(:mod:`netdoctor.distributed`), a script's task carries the script's folder, runs
in a fresh copy of it in a process of its own, and answers in JSON
(:mod:`netdoctor.portable`); the runs are judged by the same code either way, so
the per-seed outcomes are the same. A script's own output is discarded when it
runs in a worker process.
"""

from __future__ import annotations

import concurrent.futures as futures
import inspect
import json
import math
import os
import sys
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .convergence import DEFAULT_LOSS_RATIO, SeedRun, judge_run, judge_summary
from .jsonable import decode_float, encode_float
from .seeding import install_seed, seeded_rngs  # noqa: F401  (re-exported: sweep.install_seed)


@contextmanager
def discarded_output() -> Iterator[None]:
    """Point this process's standard streams at the null device for the block.

    The script runner hands a script's output straight to our streams; runs made in
    parallel would interleave it into noise. Only for worker processes (or a CLI
    that prints nothing meanwhile): the swap is process-wide.
    """
    saved = sys.stdout, sys.stderr
    with open(os.devnull, "w") as null:
        sys.stdout = sys.stderr = null
        try:
            yield
        finally:
            sys.stdout, sys.stderr = saved


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------
@dataclass
class SweepResult:
    target: str
    runs: list[SeedRun]
    base_seed: int = 0
    loss_ratio: float = DEFAULT_LOSS_RATIO
    notes: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.runs)

    @property
    def converged(self) -> int:
        return sum(run.converged is True for run in self.runs)

    @property
    def determined(self) -> int:
        return sum(run.converged is not None for run in self.runs)

    @property
    def rate(self) -> float | None:
        """Converged runs / runs whose convergence could be judged (None if none could)."""
        return self.converged / self.determined if self.determined else None

    @property
    def all_failed(self) -> bool:
        """No run converged although some could be judged: points at a bug, not at luck."""
        return self.determined > 0 and self.converged == 0

    def failing_codes(self) -> list[tuple[str, int]]:
        """Error codes of the runs that did not converge, most common first."""
        counts = Counter(code for run in self.runs if run.converged is False for code in run.error_codes)
        return counts.most_common()

    def verdict(self) -> str:
        judged, ok = self.determined, self.converged
        if judged == 0:
            return "cannot judge convergence: no run recorded a loss"
        if ok == 0:
            shared = ", ".join(code for code, count in self.failing_codes() if count == judged)
            tail = f" Every run has {shared}." if shared else ""
            return (f"no run converged (0 of {judged}): the failure does not depend on the random "
                    f"draw, so look for a bug.{tail}")
        if ok == judged:
            return f"every run converged ({ok} of {judged}): the set-up is robust to the random draw"
        if ok * 2 >= judged:
            return (f"{ok} of {judged} runs converged: the code can learn; the failures are bad luck "
                    "of the draw, a sign of a fragile set-up (initialisation, learning rate, epochs)")
        return (f"only {ok} of {judged} runs converged: the code can learn, but the set-up is fragile; "
                "check the initialisation scale, the learning rate and the number of epochs")

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "n": self.n,
            "converged": self.converged,
            "determined": self.determined,
            "rate": self.rate,
            "base_seed": self.base_seed,
            "criterion": {
                "loss_ratio": self.loss_ratio,
                "definition": _criterion_text(self.loss_ratio),
            },
            "verdict": self.verdict(),
            "failing_codes": dict(self.failing_codes()),
            "runs": [_jsonable_run(run) for run in self.runs],
            "notes": list(self.notes),
        }

    def render(self, fmt: str = "text") -> str:
        if fmt == "json":
            return json.dumps(self.to_dict(), indent=2, allow_nan=False)
        if fmt != "text":
            raise ValueError(f"unknown format {fmt!r} for a seed sweep; expected text or json")
        return _render_text(self)

    def __str__(self) -> str:
        return self.render("text")


def _criterion_text(loss_ratio: float) -> str:
    return (f"finished, no error finding, and final probe loss <= {loss_ratio:g} x its first value, "
            "or, for a classifier, the run fits its data (Thresholds: fit_loss_ratio, fit_accuracy_share)")


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _jsonable_run(run: SeedRun) -> dict[str, Any]:
    data = asdict(run)
    data["loss_start"] = _finite_or_none(run.loss_start)
    data["loss_end"] = _finite_or_none(run.loss_end)
    data["error_codes"] = list(run.error_codes)
    data["codes"] = list(run.codes)
    return data


def _fmt_loss(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}"


def _render_text(result: SweepResult) -> str:
    rate = "" if result.rate is None else f" ({result.rate:.0%})"
    lines = [
        f"Seed sweep of {result.target}: {result.converged} of {result.determined} runs converged{rate}",
        f"  converged = {_criterion_text(result.loss_ratio)}",
        "",
        f"  {'seed':>5}  {'status':10s} {'loss start -> end':24s} {'converged':10s} error findings",
    ]
    for run in result.runs:
        loss = f"{_fmt_loss(run.loss_start)} -> {_fmt_loss(run.loss_end)}"
        verdict = {True: "yes", False: "no", None: "?"}[run.converged]
        errors = ", ".join(run.error_codes) or "-"
        lines.append(f"  {run.seed:>5}  {run.status:10s} {loss:24s} {verdict:10s} {errors}")
        if run.note and run.converged is not True:
            lines.append(f"  {'':>5}  {run.note}")
    undetermined = result.n - result.determined
    if undetermined:
        lines.append(f"  ({undetermined} run(s) could not be judged and are left out of the rate)")
    lines.append("")
    lines.append("Verdict: " + result.verdict())
    lines.extend("Note: " + note for note in result.notes)
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Judging one run
# --------------------------------------------------------------------------------------
# --------------------------------------------------------------------------------------
# Running a sweep
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _SeedTask:
    """Everything one seed's run needs, as picklable data."""

    index: int
    seed: int
    loss_ratio: float
    options: dict[str, Any]
    parent_pid: int = 0               # the sweeping process: its output is left alone
    script: str | None = None
    mlp_class: type | None = None
    mlp_config: dict[str, Any] | None = None
    X: Any = None
    y: Any = None
    epochs: int | None = None


def _run_seed(task: _SeedTask) -> SeedRun:
    """Run one seed (in a worker process) and judge it."""
    from .diagnosis import diagnose_once as diagnose

    try:
        if task.script is not None:
            # The script runner executes the script in a process of its own and
            # calls install_seed(seed) there, right before the script starts.
            if os.getpid() != task.parent_pid:  # a worker process: n scripts' prints would interleave
                with discarded_output():
                    report = diagnose(task.script, seed=task.seed, **task.options)
            else:
                report = diagnose(task.script, seed=task.seed, **task.options)
        else:
            model = task.mlp_class(**dict(task.mlp_config, seed=task.seed))
            report = diagnose(model, task.X, task.y, task.epochs, **task.options)
        run = next(iter(report.runs))
        return judge_run(report, run, task.index, task.seed, task.loss_ratio)
    except Exception as exc:  # noqa: BLE001 - one broken run must not end the sweep
        return SeedRun(index=task.index, seed=task.seed, status="failed", converged=None,
                       note=f"{type(exc).__name__}: {exc}")


def mlp_config(model: Any) -> dict[str, Any]:
    """The constructor arguments that rebuild `model` (a reference MLP) with another seed.

    Read from the attributes named like the constructor's parameters (a ``config``
    dict on the model wins when present). A fault may rescale a number while the
    model is built (``lr_too_high`` multiplies the learning rate): such a value is
    divided back, so that the rebuilt model matches the original. ``seed`` is left
    out: the sweep sets it.
    """
    cls = type(model)
    stored = getattr(model, "config", None)
    if isinstance(stored, dict):
        config = dict(stored)
    else:
        config = {}
        for name, param in inspect.signature(cls.__init__).parameters.items():
            if name in ("self", "seed") or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            if hasattr(model, name):
                config[name] = getattr(model, name)
    config.pop("seed", None)

    trial = cls(**config)
    for name, value in config.items():
        built = getattr(trial, name, value)
        if isinstance(value, float) and isinstance(built, float) and built != value and value and built:
            config[name] = value * (value / built)  # undo the construction-time rescaling
    check = cls(**config)
    drifted = [name for name, value in config.items()
               if isinstance(value, float) and not math.isclose(getattr(check, name, value), getattr(model, name, value))]
    if drifted:
        raise ValueError(f"cannot rebuild this model with another seed: {', '.join(drifted)} would differ")
    return config


def _tasks(target: Any, n: int, base_seed: int, loss_ratio: float, X: Any, y: Any,
           epochs: int | None, options: dict[str, Any]) -> tuple[str, list[_SeedTask]]:
    seeds = [(index, base_seed + index) for index in range(n)]
    if isinstance(target, (str, os.PathLike)):
        from .observe.script import check_script

        script = os.fspath(check_script(target))  # a missing file is one clear error, not n failed runs
        tasks = [_SeedTask(i, s, loss_ratio, options, os.getpid(), script=script) for i, s in seeds]
        return Path(script).name, tasks
    from .mlp import MLP

    if isinstance(target, MLP):
        if X is None or y is None:
            raise TypeError("sweep(MLP, n, X=..., y=..., epochs=...) needs the training data X and y")
        config = mlp_config(target)
        tasks = [
            _SeedTask(i, s, loss_ratio, options, os.getpid(), mlp_class=type(target), mlp_config=config,
                      X=X, y=y, epochs=epochs)
            for i, s in seeds
        ]
        return f"{type(target).__name__}({config.get('layers')})", tasks
    raise TypeError(
        "sweep() takes a script path or a netdoctor.MLP; an object of your own cannot be "
        "rebuilt with a new seed (run your code under a script instead)"
    )


def sweep(target: Any, n: int, *, executor: futures.Executor | None = None, base_seed: int = 0,
          loss_ratio: float = DEFAULT_LOSS_RATIO, X: Any = None, y: Any = None,
          epochs: int | None = None, progress: bool = False, portable: bool | None = None,
          **diagnose_options: Any) -> SweepResult:
    """Run `target` `n` times with seeds ``base_seed .. base_seed + n - 1``; count convergence.

    `target` is a script path or a reference :class:`netdoctor.MLP` (with ``X``,
    ``y``, ``epochs``). Seeds run on `executor` (a process pool over the local
    cores when None; yours is not shut down). Other keywords go to
    :func:`netdoctor.diagnose` (``timeout=``, ``max_steps=``, ``thresholds=``, ...).

    ``progress=True`` shows a progress bar over the runs on stderr. ``portable``:
    whether each task carries the script's folder and answers in plain JSON (see
    :mod:`netdoctor.portable`); by default it does on any executor other than
    the standard library's process and thread pools, which share our filesystem,
    e.g. a cluster's ``client.get_executor()``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"a sweep needs a positive number of seeds, not {n!r}")
    if not loss_ratio > 0:
        raise ValueError("loss_ratio must be positive")
    options = dict(diagnose_options)
    options.setdefault("quiet", True)
    label, tasks = _tasks(target, n, int(base_seed), float(loss_ratio), X, y, epochs, options)
    if portable is None:
        portable = not isinstance(executor, (futures.ProcessPoolExecutor, futures.ThreadPoolExecutor, type(None)))
    submit_all = _portable_submitter(tasks) if portable else _local_submitter(tasks)

    own = executor is None
    if own:
        executor = futures.ProcessPoolExecutor(max_workers=max(1, min(n, os.cpu_count() or 1)))
    try:
        runs = _collect(tasks, submit_all(executor), label, progress)
    finally:
        if own:
            executor.shutdown(wait=True, cancel_futures=True)
    notes = []
    failed = [run for run in runs if run.status == "failed"]
    if failed:
        notes.append(f"{len(failed)} run(s) could not be made; first problem: {failed[0].note}")
    return SweepResult(label, runs, base_seed=int(base_seed), loss_ratio=float(loss_ratio), notes=notes)


# A submitter sends every task to an executor and returns, per task, its future and
# the function that turns the future's value into the task's SeedRun.
_Submitted = list[tuple[futures.Future, Callable[[Any], SeedRun]]]


def _local_submitter(tasks: list[_SeedTask]) -> Callable[[futures.Executor], _Submitted]:
    def submit_all(executor: futures.Executor) -> _Submitted:
        return [(executor.submit(_run_seed, task), lambda run: run) for task in tasks]
    return submit_all


def _portable_submitter(tasks: list[_SeedTask]) -> Callable[[futures.Executor], _Submitted]:
    """Tasks that carry the script's folder (or the MLP and its data) and answer in JSON."""
    from .portable import answer_from_json, bundle_folder, run_portable

    if tasks[0].script is None:  # a reference MLP: its task is data already; only the answer changes
        def submit_mlp(executor: futures.Executor) -> _Submitted:
            return [(executor.submit(_run_seed_json, task), _seed_run_from_json) for task in tasks]
        return submit_mlp

    script = Path(tasks[0].script)
    bundle = bundle_folder(script.parent)  # refused here, before anything is sent, when too big
    relative = script.relative_to(bundle.folder).as_posix()

    def judge(task: _SeedTask) -> Callable[[str], SeedRun]:
        def judged(text: str) -> SeedRun:
            answer = answer_from_json(text, bundle.folder)
            if "error" in answer:
                return SeedRun(index=task.index, seed=task.seed, status="failed", converged=None,
                               note=answer["error"])
            return judge_summary(answer["summary"], task.index, task.seed, task.loss_ratio)
        return judged

    def submit_all(executor: futures.Executor) -> _Submitted:
        submitted = []
        for task in tasks:
            job = {"kind": "seed", "script": relative, "seed": task.seed, "options": task.options}
            submitted.append((executor.submit(run_portable, job, bundle.files), judge(task)))
        return submitted
    return submit_all


def _collect(tasks: list[_SeedTask], submitted: _Submitted, label: str, progress: bool) -> list[SeedRun]:
    """Every task's SeedRun in seed order, as they finish; a task that failed is a failed run."""
    from tqdm.auto import tqdm

    index_of = {future: i for i, (future, _) in enumerate(submitted)}
    runs: dict[int, SeedRun] = {}
    with tqdm(total=len(tasks), desc=f"sweep {label}", unit="run", disable=not progress,
              file=sys.stderr, leave=False) as bar:
        for future in futures.as_completed(index_of):
            i = index_of[future]
            task, (_, to_run) = tasks[i], submitted[i]
            try:
                runs[i] = to_run(future.result())
            except Exception as exc:  # noqa: BLE001 - e.g. a task that could not be pickled, a lost worker
                runs[i] = SeedRun(index=task.index, seed=task.seed, status="failed", converged=None,
                                  note=f"{type(exc).__name__}: {exc}")
            bar.update(1)
    return [runs[i] for i in range(len(tasks))]


def _run_seed_json(task: _SeedTask) -> str:
    """:func:`_run_seed`, answered as JSON text (plain data for any executor)."""
    data = asdict(_run_seed(task))
    data["loss_start"], data["loss_end"] = encode_float(data["loss_start"]), encode_float(data["loss_end"])
    return json.dumps(data, allow_nan=False)


def _seed_run_from_json(text: str) -> SeedRun:
    data = json.loads(text)
    data["loss_start"], data["loss_end"] = decode_float(data["loss_start"]), decode_float(data["loss_end"])
    data["error_codes"], data["codes"] = tuple(data["error_codes"]), tuple(data["codes"])
    return SeedRun(**data)
