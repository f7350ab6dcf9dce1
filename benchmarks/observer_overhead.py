"""How much `netdoctor diagnose script.py` costs over `python script.py`.

The goal (issue 3): at most 2x the plain run plus a fixed start-up under 1.5 s.
For each case study's original.py (and fixed.py with --fixed), this times

* ``python script.py``                               (the plain run), and
* ``netdoctor diagnose script.py -q --format json``  (run, observe, judge, report),

each the best of --repeat runs (the least disturbed by other jobs on the machine),
and prints a Markdown table of the ratios. The fixed start-up is measured on a
script that does nothing: netdoctor's time on it minus python's.

    python benchmarks/observer_overhead.py --repeat 3
    python benchmarks/observer_overhead.py --only xor_stuck_at_half --fixed
    python benchmarks/observer_overhead.py --cases ../shared/wild/numpy --fixed --repeat 1

``--cases`` takes any folder of folders holding ``original.py`` (and ``fixed.py``),
such as a corpus of real scripts. The table also gives the step at which the
observer had settled the roles (which arrays are parameters, where the forward pass
is) and the run's verdict, read from the JSON report.

Both commands run in the case's folder with their output thrown away. No assertion
on time: the table is the result (record it in benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUDGET_FACTOR, BUDGET_STARTUP = 2.0, 1.5


def best_time(command: list[str], cwd: Path, repeat: int, env: dict[str, str], limit: float,
              ok_codes: tuple[int, ...] = (0, 1, 3), keep: list | None = None) -> float | None:
    """Fastest wall-clock time of `command` over `repeat` runs; None if it fails or overruns.

    `keep`, when given, receives the standard output of the last run."""
    best = None
    for _ in range(repeat):
        started = time.perf_counter()
        try:
            done = subprocess.run(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE if keep is not None else subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, timeout=limit)
        except subprocess.TimeoutExpired:
            return None
        elapsed = time.perf_counter() - started
        if keep is not None:
            keep[:] = [done.stdout]
        if done.returncode not in ok_codes:  # 1: findings, 3: partly observed; both are answers
            return None
        best = elapsed if best is None else min(best, elapsed)
    return best


def settled(json_text: bytes | None) -> tuple[str, str]:
    """(settled-at step, verdict) of the original run in a JSON report."""
    try:
        run = json.loads(json_text or b"")["runs"]["original"]
    except (ValueError, KeyError, TypeError):
        return "-", "-"
    step = run.get("settled_at_step")
    return ("-" if step is None else str(step)), str(run.get("state", "-"))


def diagnose_command(script: Path) -> list[str]:
    return [sys.executable, "-m", "netdoctor.cli", "diagnose", str(script), "-q", "--format", "json"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=Path, default=ROOT / "case_studies", help="folder of case studies")
    parser.add_argument("--only", nargs="*", default=None, help="case names to time (default: all)")
    parser.add_argument("--fixed", action="store_true", help="also time each case's fixed.py")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best counts")
    parser.add_argument("--limit", type=float, default=600.0, help="seconds before a run counts as failed")
    parser.add_argument("--observer", default=None,
                        help="another observer (module:Class), e.g. to time the runner alone")
    args = parser.parse_args(argv)

    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")   # threaded BLAS on 2 cores makes plain runs noisy
    if args.observer:
        env["NETDOCTOR_OBSERVER"] = args.observer

    with tempfile.TemporaryDirectory() as tmp:
        idle = Path(tmp) / "idle.py"
        idle.write_text("pass\n")
        py_idle = best_time([sys.executable, str(idle)], Path(tmp), args.repeat, env, args.limit)
        # A script that trains nothing is answered with status 2 ("no training step was
        # observed"): the right answer, and the cost of starting up.
        nd_idle = best_time(diagnose_command(idle), Path(tmp), args.repeat, env, args.limit, ok_codes=(2,))
    startup = None if py_idle is None or nd_idle is None else nd_idle - py_idle
    print(f"fixed start-up (netdoctor on an empty script minus python on it): "
          f"{'failed' if startup is None else f'{startup:.2f} s'} (budget {BUDGET_STARTUP} s)\n")

    scripts = []
    for case in sorted(p for p in args.cases.resolve().iterdir() if (p / "original.py").is_file()):
        if args.only and case.name not in args.only:
            continue
        scripts.append(case / "original.py")
        if args.fixed and (case / "fixed.py").is_file():
            scripts.append(case / "fixed.py")

    print("| script | python (s) | netdoctor (s) | ratio | budget 2x+1.5 (s) | within | roles settled at step | verdict |")
    print("|---|---:|---:|---:|---:|:---:|---:|---|")
    within = 0
    for script in scripts:
        label = f"{script.parent.name}/{script.name}"
        plain = best_time([sys.executable, str(script)], script.parent, args.repeat, env, args.limit)
        report: list = []
        observed = best_time(diagnose_command(script), script.parent, args.repeat, env, args.limit,
                             ok_codes=(0, 1, 2, 3), keep=report)
        step, verdict = settled(report[0] if report else None)
        if plain is None or observed is None:
            print(f"| {label} | {plain or 'failed'} | {observed or 'failed'} | - | - | - | {step} | {verdict} |",
                  flush=True)
            continue
        budget = BUDGET_FACTOR * plain + BUDGET_STARTUP
        ok = observed <= budget
        within += ok
        print(f"| {label} | {plain:.2f} | {observed:.2f} | {observed / plain:.1f} | {budget:.2f} | "
              f"{'yes' if ok else 'NO'} | {step} | {verdict} |", flush=True)
    print(f"\n{within} of {len(scripts)} scripts within the budget")
    return 0


if __name__ == "__main__":
    sys.exit(main())
