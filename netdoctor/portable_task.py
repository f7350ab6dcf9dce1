"""The process a portable task runs in (``python -m netdoctor.portable_task TMP PARENT``).

:func:`netdoctor.portable.run_portable` writes the job and the bundle's files, then
starts this module in the copy of the folder; it makes the one run and writes the
answer as JSON beside the job. It sits above everything a run needs (the diagnosis,
the case-study judge), which is why it is not part of :mod:`netdoctor.portable`.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import sys
import time
from pathlib import Path
from typing import Any


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


def answer_job(job: dict[str, Any], script: Path) -> dict[str, Any]:
    options = dict(job["options"])
    if job["kind"] == "seed":
        from .convergence import run_summary
        from .diagnosis import diagnose_once as diagnose

        report = diagnose(os.fspath(script), seed=job["seed"], **options)
        run = next(iter(report.runs))
        return {"report": report.to_dict(), "summary": run_summary(report, run)}
    if job["kind"] == "case":
        from .casefile import load_case
        from .testing import outcome_to_dict, run_case

        return {"outcome": outcome_to_dict(run_case(load_case(script), **options))}
    raise ValueError(f"unknown kind of task {job['kind']!r}")


def main(tmp: str, parent: int) -> None:
    """The task's own process: one run in the working directory it was started in."""
    _die_with_parent(parent)
    tmp_path = Path(tmp)
    job = pickle.loads((tmp_path / "job.pkl").read_bytes())
    script = Path.cwd() / job["script"]
    started = time.perf_counter()
    try:
        answer = answer_job(job, script)
    except Exception as exc:  # noqa: BLE001 - told to the caller as this run's problem
        answer = {"error": f"{type(exc).__name__}: {exc}"}
    answer["folder"] = str(Path.cwd())
    answer["task_seconds"] = time.perf_counter() - started
    text = json.dumps(answer, allow_nan=False)
    partial = tmp_path / "answer.json.part"
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, tmp_path / "answer.json")


if __name__ == "__main__":  # pragma: no cover - the task's process
    main(sys.argv[1], int(sys.argv[2]))
