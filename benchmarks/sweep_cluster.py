"""A seed sweep on a Dask cluster against the local process pool.

Runs one 40-run sweep of a case study's script three ways, in this process:

* on the local process pool (``netdoctor diagnose --seeds``: 2 processes on 2 cores),
* on a Dask cluster of 1 worker process, and of 2 worker processes (one thread each,
  on 127.0.0.1, started here with ``distributed.LocalCluster``),

and prints the wall times, the cluster's speed-up from 1 to 2 workers, and its
overhead per task against the pool: (cluster time - pool time) x workers / runs,
what each task costs beyond the run itself (sending the folder, the task's own
process, the JSON answer, the scheduler). It also checks that the three sweeps
give the same per-seed outcomes. No assertion on time: record the table in
benchmarks/README.md.

    python benchmarks/sweep_cluster.py
    python benchmarks/sweep_cluster.py --case dead_relu --runs 20
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import logging
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cpu_seconds() -> float:
    """CPU time of this process and of every process it started that has ended.

    The pool's processes, the cluster's workers and, through them, every run's own
    processes are waited for before a configuration's time is read, so their time is
    in it. Unlike wall time it does not grow with the other jobs on a shared machine.
    """
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(label: str, run) -> tuple[float, float, object]:
    started, cpu = time.perf_counter(), cpu_seconds()
    result = run()
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    print(f"  {label:24s} {elapsed:7.1f} s wall {cpu:7.1f} s CPU", file=sys.stderr, flush=True)
    return elapsed, cpu, result


def on_cluster(script: Path, runs: int, workers: int):
    from distributed import Client, LocalCluster

    from netdoctor.sweep import sweep

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        client.wait_for_workers(workers)
        return sweep(script, runs, executor=client.get_executor(pure=False))


def idle_cluster(workers: int) -> None:
    """Start and stop a cluster that runs nothing: its fixed cost, apart from the tasks'."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        client.wait_for_workers(workers)


def on_pool(script: Path, runs: int, processes: int):
    from netdoctor.sweep import sweep

    with futures.ProcessPoolExecutor(processes) as pool:
        return sweep(script, runs, executor=pool)


def outcomes(result) -> list[tuple]:
    return [(r.seed, r.status, r.converged, r.loss_end) for r in result.runs]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="lr_too_low", help="case study folder (default: lr_too_low)")
    parser.add_argument("--script", default="fixed.py", help="its script to sweep (default: fixed.py)")
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    logging.getLogger("distributed").setLevel(logging.ERROR)
    script = ROOT / "case_studies" / args.case / args.script
    processes = min(2, os.cpu_count() or 1)

    print(f"sweep of {script.relative_to(ROOT)}, {args.runs} runs, {os.cpu_count()} cores", file=sys.stderr)
    load_before = os.getloadavg()[0]
    t_pool, c_pool, pool = timed(f"local pool, {processes} processes", lambda: on_pool(script, args.runs, processes))
    t_one, c_one, one = timed("cluster, 1 worker", lambda: on_cluster(script, args.runs, 1))
    t_two, c_two, two = timed("cluster, 2 workers", lambda: on_cluster(script, args.runs, 2))
    t_idle, c_idle, _ = timed("cluster of 2, no task", lambda: idle_cluster(2))
    same = outcomes(pool) == outcomes(one) == outcomes(two)
    load_after = os.getloadavg()[0]

    print()
    print(f"| {args.case}/{args.script}, {args.runs} runs | wall (s) | wall per run (s) | CPU (s) | CPU per run (s) |")
    print("|---|---:|---:|---:|---:|")
    for label, t, c in ((f"local process pool ({processes})", t_pool, c_pool), ("cluster, 1 worker", t_one, c_one),
                        ("cluster, 2 workers", t_two, c_two)):
        print(f"| {label} | {t:.1f} | {t / args.runs:.2f} | {c:.1f} | {c / args.runs:.2f} |")
    print()
    print(f"speed-up of the cluster, 1 -> 2 workers (wall): {t_one / t_two:.2f}x")
    print(f"cluster (2 workers) / local pool ({processes}), wall: {t_two / t_pool:.2f}")
    print(f"overhead per task of the cluster against the pool: wall {(t_two - t_pool) * 2 / args.runs:+.2f} s "
          f"(2 at a time), CPU {(c_two - c_pool) / args.runs:+.2f} s")
    print(f"starting and stopping the 2-worker cluster alone: {t_idle:.1f} s wall, {c_idle:.1f} s CPU; "
          f"per task without it: wall {(t_two - t_idle - t_pool) * 2 / args.runs:+.2f} s, "
          f"CPU {(c_two - c_idle - c_pool) / args.runs:+.2f} s")
    print(f"converged: {pool.converged} of {pool.determined} (pool), {one.converged} (1 worker), "
          f"{two.converged} (2 workers); same per-seed outcomes: {'yes' if same else 'NO'}")
    print(f"load average (1 min) before / after: {load_before:.1f} / {load_after:.1f}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
