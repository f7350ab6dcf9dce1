"""How long building the report takes, against the diagnosis it reports on.

Runs a diagnosis, then builds the reports from it, in one process and in the order
a user meets them, so the first HTML build pays for importing matplotlib and Jinja2.
Prints CPU seconds and the ratio report / diagnosis; the report is "fast enough
not to matter" when the ratio stays below 1.

CPU time, not wall time: the machines this runs on are shared, and other jobs
would otherwise decide the ratio. A script is diagnosed in a child process, so
children's CPU time is counted too.

    python benchmarks/report_build.py                  # the seed's demo (netdoctor demo)
    python benchmarks/report_build.py --case           # the seed's case study, run as scripts
    python benchmarks/report_build.py --rounds 3       # cold first build, then warm ones
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
from pathlib import Path

CASE = Path(__file__).resolve().parent.parent / "case_studies" / "xor_stuck_at_half"


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(action):
    start = cpu_seconds()
    result = action()
    return result, cpu_seconds() - start


def diagnose_demo(epochs: int | None):
    from netdoctor.commands.demo import demo_report

    return demo_report(epochs)


def diagnose_case():
    from netdoctor import diagnose

    return diagnose(str(CASE / "original.py"), compare=str(CASE / "fixed.py"), quiet=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="store_true", help="diagnose the seed's case study scripts")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the report build (first is cold)")
    parser.add_argument("--epochs", type=int, default=None, help="demo epochs (default: the demo's)")
    args = parser.parse_args(argv)

    what = "case study scripts" if args.case else "demo"
    report, diagnosis = timed(diagnose_case if args.case else lambda: diagnose_demo(args.epochs))
    steps = {name: trace.info.steps for name, trace in report.runs.items()}
    print(f"diagnosis of the seed's {what} (run + observe + judge, steps {steps}): {diagnosis:.2f} s CPU")
    assert "matplotlib" not in sys.modules, "the diagnosis imported matplotlib"

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
