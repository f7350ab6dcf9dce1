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
netdoctor.portable_task``) whose working directory is that copy of the folder: the
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
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
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
    report) and ``"summary"`` (:func:`netdoctor.convergence.run_summary`), for a case
    ``"outcome"`` (:func:`netdoctor.testing.outcome_to_dict`); or ``"error"`` when the run could not
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
                subprocess.run([sys.executable, "-m", "netdoctor.portable_task", str(tmp), str(os.getpid())],
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
