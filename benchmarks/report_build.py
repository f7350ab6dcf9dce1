"""How long building the report takes, against the diagnosis it reports on.

Runs the seed's demo (the XOR network stuck at 0.5 beside its fix: training both
runs and judging them), then builds the report from it, in one process and in
the order a user meets them, so the first HTML build pays matplotlib's import
and font cache. Prints seconds (CPU time of this process) and the ratio report / diagnosis; the report is
"fast enough not to matter" when the ratio stays below 1.

    python benchmarks/report_build.py            # one round
    python benchmarks/report_build.py --rounds 3 # cold first round, then warm rounds
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


def timed(action):
    """(result, CPU seconds of this process). CPU time, not wall time: the machines this
    runs on are shared, and other jobs would otherwise decide the ratio."""
    start = time.process_time()
    result = action()
    return result, time.process_time() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="repeat the report build (first is cold)")
    parser.add_argument("--epochs", type=int, default=None, help="demo epochs (default: the demo's)")
    args = parser.parse_args(argv)

    from netdoctor.commands.demo import demo_report

    report, diagnosis = timed(lambda: demo_report(args.epochs))
    steps = {name: trace.info.steps for name, trace in report.runs.items()}
    print(f"diagnosis (train + observe + judge, runs {steps}): {diagnosis:.2f} s")
    assert "matplotlib" not in sys.modules, "diagnosis imported matplotlib"

    with tempfile.TemporaryDirectory(prefix="netdoctor-bench-") as folder:
        for round_ in range(1, args.rounds + 1):
            label = "cold" if round_ == 1 else "warm"
            _, text = timed(lambda: report.render("text"))
            html, html_time = timed(lambda: report.render("html"))
            _, md_time = timed(lambda: report.save(Path(folder) / "report.md"))
            print(f"round {round_} ({label}): text {text:.3f} s, html {html_time:.2f} s "
                  f"({len(html) / 1e6:.2f} MB), md + pictures {md_time:.2f} s")
            print(f"  ratio html / diagnosis = {html_time / diagnosis:.2f}"
                  f"   text / diagnosis = {text / diagnosis:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
