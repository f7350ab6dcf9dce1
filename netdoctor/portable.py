"""Tasks that carry their own files: a run made on a machine that does not share ours.

A cluster's workers need not see our filesystem. A *portable* task therefore
carries what one run needs:

* the script's folder as a :class:`Bundle`: the bytes of its files (the script,
  the modules it imports, the data files it reads), at most ``MAX_BUNDLE_BYTES``
  in all (20 MiB) and ``MAX_BUNDLE_FILES`` files; a bigger folder is refused with
  a :class:`BundleError` that says so, before anything is sent. Hidden folders,
  ``__pycache__``, virtual environments and ``node_modules`` are left out;
* a job: which script of the bundle, which seed or label, the run's options.

On the worker, :func:`run_portable` writes the bundle into a fresh temporary
folder and makes the run in a process of its own (``python -m
netdoctor.portable``) whose working directory is that copy of the folder: the
seeding of a sweep patches process-wide state, the run's output must not reach
the worker's streams, and two runs on one worker must not share a working
directory. The answer comes back as JSON text (the run's JSON report, plus the
numbers the sweep judges convergence on; a case study's outcome with its
findings), never as pickled netdoctor objects; the caller rebuilds its results
from it, with the worker's temporary folder written back as the caller's folder.

Nothing here imports Dask: any :class:`concurrent.futures.Executor` runs these
tasks (:mod:`netdoctor.distributed` connects to a Dask cluster).
"""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_BUNDLE_BYTES = 20 * 2**20
MAX_BUNDLE_FILES = 2000
_SKIPPED_DIRS = {"__pycache__", "node_modules", "venv", "site-packages", "dist-packages"}
# Beyond the run's own time limit (timeout + the runner's kill grace), how long the
# task's process may take to start and to write its answer before it is killed.
TASK_MARGIN_SECONDS = 60.0


class BundleError(ValueError):
    """A script's folder cannot travel with a task (too big, unreadable); one line for the user."""


@dataclass(frozen=True)
class Bundle:
    """A folder's files as bytes, to be rebuilt elsewhere."""

    folder: str                             # the folder on the caller's machine (absolute)
    files: tuple[tuple[str, bytes], ...]    # (path relative to the folder, POSIX style; bytes)

    @property
    def size(self) -> int:
        return sum(len(data) for _, data in self.files)


def bundle_folder(folder: str | os.PathLike, *, max_bytes: int | None = None,
                  max_files: int | None = None) -> Bundle:
    """The files under `folder`, or a BundleError when they exceed the limits (module defaults)."""
    max_bytes = MAX_BUNDLE_BYTES if max_bytes is None else max_bytes
    max_files = MAX_BUNDLE_FILES if max_files is None else max_files
    root = Path(folder).resolve()
    files: list[tuple[str, bytes]] = []
    total = 0

    def walk(directory: Path) -> None:
        nonlocal total
        try:
            entries = sorted(directory.iterdir())
        except OSError as exc:
            raise BundleError(f"cannot read the folder {directory}: {exc.strerror or exc}") from None
        for entry in entries:
            if entry.name.startswith(".") or entry.name in _SKIPPED_DIRS:
                continue
            if entry.is_dir():
                if not entry.is_symlink():  # a link back up would never end
                    walk(entry)
                continue
            if not entry.is_file():
                continue
            if len(files) >= max_files:
                raise BundleError(
                    f"{root} holds more than {max_files} files; a task carries at most {max_files} "
                    "to a worker (put the script in a folder of its own with what it reads)")
            size = entry.stat().st_size
            if total + size > max_bytes:
                raise BundleError(
                    f"{root} holds more than {max_bytes / 2**20:g} MiB of files; a task carries at most "
                    f"that to a worker (put the script in a folder of its own with what it reads)")
            try:
                data = entry.read_bytes()
            except OSError as exc:
                raise BundleError(f"cannot read {entry}: {exc.strerror or exc}") from None
            total += len(data)
            files.append((entry.relative_to(root).as_posix(), data))

    walk(root)
    return Bundle(str(root), tuple(files))


# --------------------------------------------------------------------------------------
# Plain data both ways
# --------------------------------------------------------------------------------------
def encode_float(value: float | None) -> float | str | None:
    """A float for JSON: NaN and infinities become the strings "nan", "inf", "-inf"."""
    if value is None or math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def decode_float(value: float | str | None) -> float | None:
    return None if value is None else float(value)


def finding_from_dict(data: dict[str, Any]):
    """A Finding back from its JSON form (``Finding.to_dict``)."""
    from .types import Finding, Location, Severity

    where = data["location"]
    return Finding(
        code=data["code"], symbol=data["symbol"], severity=Severity.parse(data["severity"]), run=data["run"],
        message=data["message"], layer=data["layer"], step=data["step"], evidence=data["evidence"],
        fix=data["fix"], why=data["why"],
        location=None if where is None else Location(where["file"], where["line"], where["function"]),
    )


def outcome_to_dict(outcome) -> dict[str, Any]:
    """A case's CaseOutcome as plain data, every field but its spec (the caller has it).

    Field by field, whatever fields the outcome has: findings become
    ``{"finding": Finding.to_dict()}``, lists and dicts are walked, the rest is kept.
    """
    from dataclasses import fields

    return {f.name: _plain(getattr(outcome, f.name)) for f in fields(outcome) if f.name != "spec"}


def outcome_from_dict(spec, data: dict[str, Any]):
    """The CaseOutcome of `spec` (the caller's) from :func:`outcome_to_dict`'s data."""
    from .testing import CaseOutcome

    return CaseOutcome(spec, **{name: _unplain(value) for name, value in data.items()})


def _plain(value: Any) -> Any:
    from .types import Finding

    if isinstance(value, Finding):
        return {"finding": value.to_dict()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _unplain(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"finding"}:
            return finding_from_dict(value["finding"])
        return {k: _unplain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unplain(v) for v in value]
    return value


def answer_from_json(text: str, folder: str) -> dict[str, Any]:
    """A task's answer, in which the worker's copy of the folder is named as `folder` (ours)."""
    answer = json.loads(text)
    copy = answer.get("folder")
    if copy and copy != folder:
        answer = json.loads(text.replace(json.dumps(copy)[1:-1], json.dumps(folder)[1:-1]))
    return answer


# --------------------------------------------------------------------------------------
# The task, on the worker
# --------------------------------------------------------------------------------------
def run_portable(job: dict[str, Any], files: tuple[tuple[str, bytes], ...]) -> str:
    """Make one run of `job` on the files of a Bundle; return the answer as JSON text.

    `job` is ``{"kind": "seed", "script": path in the bundle, "seed": s, "options":
    {...}}`` (one run of a sweep) or ``{"kind": "case", "script": the case.toml's
    path in the bundle, "options": {}, "limit": seconds}`` (a case study, judged
    there as :func:`netdoctor.testing.run_case` judges it here). The answer is
    ``{"folder": the temporary copy, ...}`` plus, for a seed, ``"report"`` (the JSON
    report) and ``"summary"`` (:func:`netdoctor.sweep.run_summary`), for a case
    ``"outcome"`` (:func:`outcome_to_dict`); or ``"error"`` when the run could not
    be made at all.
    """
    tmp = Path(tempfile.mkdtemp(prefix="netdoctor-task-"))
    try:
        work = tmp / "work"
        work.mkdir()
        work = work.resolve()  # as the run will see it (a temporary folder may sit behind a link)
        for relative, data in files:
            target = work / relative
            if work not in target.resolve().parents:
                return json.dumps({"folder": "", "error": f"refused a file outside the task's folder: {relative}"})
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        (tmp / "job.pkl").write_bytes(pickle.dumps(job))
        limit = job.get("limit")
        if limit is None and job["options"].get("timeout") is not None:
            limit = run_limit(job["options"]["timeout"]) + TASK_MARGIN_SECONDS
        with open(tmp / "stderr.txt", "wb") as err:
            try:
                subprocess.run([sys.executable, "-m", "netdoctor.portable", str(tmp), str(os.getpid())],
                               cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                               timeout=limit, env=_env())
            except subprocess.TimeoutExpired:
                return json.dumps({"folder": str(work), "error": f"the task did not end within {limit:g} s"})
        answer = tmp / "answer.json"
        if answer.exists():
            return answer.read_text(encoding="utf-8")
        tail = (tmp / "stderr.txt").read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:]
        return json.dumps({"folder": str(work),
                           "error": "the task's process ended without an answer" + (f": {tail[0]}" if tail else "")})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_limit(timeout: float) -> float:
    """When the script runner kills a run with this timeout at the latest (timeout + its grace)."""
    return float(timeout) * 1.1 + 5.0


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")  # one run per worker thread; BLAS threads would fight
    return env


def _die_with_parent(parent: int) -> None:  # pragma: no cover - runs in the task's process
    """Linux: the task's process goes with the worker when the worker is killed.

    Asked for by the task's process itself (a pre-exec hook is unsafe in a worker
    with threads); a worker that died before the request leaves it a new parent.
    """
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os._exit(1)


def _answer(job: dict[str, Any], script: Path) -> dict[str, Any]:
    options = dict(job["options"])
    if job["kind"] == "seed":
        from .api import diagnose
        from .sweep import run_summary

        report = diagnose(os.fspath(script), seed=job["seed"], **options)
        run = next(iter(report.runs))
        return {"report": report.to_dict(), "summary": run_summary(report, run)}
    if job["kind"] == "case":
        from .casefile import load_case
        from .testing import run_case

        return {"outcome": outcome_to_dict(run_case(load_case(script), **options))}
    raise ValueError(f"unknown kind of task {job['kind']!r}")


def _main(tmp: str, parent: int) -> None:
    """The task's own process: one run in the working directory it was started in."""
    _die_with_parent(parent)
    tmp_path = Path(tmp)
    job = pickle.loads((tmp_path / "job.pkl").read_bytes())
    script = Path.cwd() / job["script"]
    started = time.perf_counter()
    try:
        answer = _answer(job, script)
    except Exception as exc:  # noqa: BLE001 - told to the caller as this run's problem
        answer = {"error": f"{type(exc).__name__}: {exc}"}
    answer["folder"] = str(Path.cwd())
    answer["task_seconds"] = time.perf_counter() - started
    text = json.dumps(answer, allow_nan=False)
    partial = tmp_path / "answer.json.part"
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, tmp_path / "answer.json")


if __name__ == "__main__":  # pragma: no cover - the task's process
    _main(sys.argv[1], int(sys.argv[2]))
