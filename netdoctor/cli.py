"""The `netdoctor` command line.

Only argparse lives here; each sub-command's work is in :mod:`netdoctor.commands`
and is imported when that sub-command runs, so ``netdoctor --help`` stays fast.

Exit status: 0 when every run is healthy (fully observed, no finding at or above
``--fail-on``, default: error); 1 when a finding is at or above ``--fail-on``; 2 for a
usage error, a script that crashed, or one in which no training step was observed;
3 when a run was only partly observed (no error in what was seen, but its outputs,
loss or updates could not all be seen, so not all was judged).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ._version import __version__

FORMATS = ("text", "json", "md", "html")


def _add_report_options(parser: argparse.ArgumentParser, formats=FORMATS) -> None:
    parser.add_argument(
        "--format", "-f", choices=formats, default=None,
        help="report format (default: text, or taken from the -o file's suffix)",
    )
    parser.add_argument(
        "-o", "--output", metavar="FILE",
        help="write the report to FILE (.html, .md, .json, .txt) instead of standard output",
    )
    parser.add_argument(
        "--fail-on", choices=("error", "warning", "info"), default="error",
        help="exit with status 1 when a finding is at or above this severity (default: error)",
    )
    parser.add_argument(
        "--select", metavar="CODES", default=None,
        help="only these rules: comma-separated codes, symbols or prefixes (e.g. ND1,ND303)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="also show info findings")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netdoctor",
        description="Tells you why your neural network is stuck, and where in your code.",
        epilog="Start with: netdoctor demo   |   netdoctor diagnose your_script.py",
    )
    parser.add_argument("--version", action="version", version=f"netdoctor {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "diagnose", help="run a training script unmodified and diagnose it",
        description="Run SCRIPT as __main__ under observation and report what is wrong. "
        "Arguments after `--` are passed to the script.",
    )
    p.add_argument("script", help="the Python file that trains your network")
    p.add_argument("--compare", metavar="FIXED", help="also run FIXED and compare the two")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="stop each run after SECONDS and report what was seen (status: timeout)")
    p.add_argument("--max-steps", type=int, default=None, metavar="N",
                   help="stop each run after N parameter updates (status: stopped)")
    p.add_argument("--stop-on", choices=("error", "warning"), default=None,
                   help="stop a run as soon as a finding of this severity is certain")
    p.add_argument("--seeds", type=int, default=None, metavar="N",
                   help="run N times with different random seeds and report the convergence rate")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="run the --seeds sweep on a Dask cluster, e.g. tcp://HOST:8786 "
                   "(needs netdoctor[dask])")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    roles = p.add_argument_group(
        "naming roles", "when netdoctor cannot tell the network's arrays apart, name them as your code does "
        "(as watch(model, params=..., output=..., targets=...) does from Python)")
    roles.add_argument("--params", metavar="NAMES", default=None,
                       help="the parameters, comma-separated, in forward order (e.g. W1,b1,W2,b2)")
    roles.add_argument("--net-output", dest="net_output", metavar="NAME", default=None,
                       help="the array holding the network's output (e.g. A2)")
    roles.add_argument("--targets", metavar="NAME", default=None,
                       help="the array the output is compared with (e.g. y)")
    _add_report_options(p)
    p.set_defaults(handler="netdoctor.commands.diagnose:run")

    p = sub.add_parser(
        "demo", help="the XOR network stuck at 0.5, reproduced and diagnosed beside its fix",
        description="Reproduce the double-sigmoid XOR bug in the reference MLP, run the corrected "
        "configuration beside it, and report both.",
    )
    _add_report_options(p)
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: as in the case)")
    p.set_defaults(handler="netdoctor.commands.demo:run")

    p = sub.add_parser("rules", help="list the rule catalogue")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(handler="netdoctor.commands.rules:run_list")

    p = sub.add_parser("rule", help="print one rule's documentation (e.g. netdoctor rule ND101)")
    p.add_argument("code", help="rule code or symbol, e.g. ND101 or output-pinned")
    p.set_defaults(handler="netdoctor.commands.rules:run_one")

    p = sub.add_parser(
        "cases", help="run a folder of case studies and print the detection matrix",
        description="Diagnose every case study (a folder with case.toml) under DIR and print which "
        "expected codes were found or missed. Exit 1 on a miss or an unhealthy fixed version.",
    )
    p.add_argument("dir", nargs="?", default="case_studies", help="folder of case studies")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("-j", "--jobs", type=int, default=None, help="cases run in parallel (default: CPUs)")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="run the scripts on a Dask cluster, e.g. tcp://HOST:8786 (needs netdoctor[dask])")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    p.set_defaults(handler="netdoctor.commands.cases:run")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after `--` belongs to the diagnosed script, not to us.
    script_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, script_args = argv[:cut], argv[cut + 1 :]
    parser = build_parser()
    args = parser.parse_args(argv)
    args.script_args = script_args
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    module_name, func_name = args.handler.split(":")
    handler = getattr(importlib.import_module(module_name), func_name)
    try:
        return int(handler(args) or 0)
    except KeyboardInterrupt:
        print("netdoctor: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
