"""`netdoctor diagnose SCRIPT [--compare FIXED]`: run training scripts unmodified, report.

Everything that can be wrong with the command line (a missing file, a folder, an
empty or non-Python file, a syntax error, ``-o`` pointing at the script itself) is
found before any script runs, and told in one line: ``netdoctor: ...``, exit 2.

Exit status: 0 when no finding is at or above ``--fail-on``; 1 when one is; 2 for a
usage error, or when a script crashed (the report of what was seen up to the crash
is still written).

The runs are named "original" and "fixed" (the JSON contract); their paths are in
each run's ``script``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..config import Thresholds
from ..adapters import run as run_adapter
from ..observe.script import RunnerError, ScriptError, check_script
from ..report import ReportError, SAVE_FORMATS, protect_inputs, write_atomic
from .output import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, emit

RUN_NAMES = ("original", "fixed")


class UsageError(Exception):
    """A problem with the command line, told in one line before anything runs."""


def run(args) -> int:
    try:
        scripts = _scripts(args)
        fmt = _check_output(args, scripts)
        select = _selection(args.select)
        options = _run_options(args, fmt)
    except (UsageError, ScriptError) as exc:
        return _usage(exc)
    if args.seeds is not None:
        return _run_sweeps(args, scripts, fmt, select, options)

    traces = []
    for name, path in scripts:
        try:
            traces.append(run_adapter(path, name=name, **options))
        except ScriptError as exc:
            return _usage(exc)
        except RunnerError as exc:
            return _internal_error(path, exc, args.verbose)

    from ..report import Report

    report = Report.from_traces(traces, thresholds=options["thresholds"], select=select)
    status = emit(report, fmt, args.output, args.fail_on, verbose=args.verbose)
    crashed = [trace for trace in traces if trace.info.status == "crashed"]
    from ..frameworks import missing_framework_hint

    for trace in crashed:
        hint = missing_framework_hint(trace.info.error)
        if hint:
            print(f"netdoctor: {trace.info.script}: {hint}", file=sys.stderr)
    # The text report says so itself; a JSON report on stdout gets one line on stderr.
    for trace in crashed if fmt == "json" and not args.output else ():
        last = (trace.info.error or "").strip().splitlines()[-1:] or ["it ended abruptly"]
        print(f"netdoctor: {trace.info.script} crashed ({last[0]}); the report shows what was "
              "seen until then", file=sys.stderr)
    return EXIT_USAGE if crashed else status


# --- checking the command line --------------------------------------------------------


def _usage(exc: Exception) -> int:
    print(f"netdoctor: {exc}", file=sys.stderr)
    return EXIT_USAGE


def _internal_error(path: str, exc: RunnerError, verbose: bool) -> int:
    detail = str(exc).strip()
    last = detail.splitlines()[-1] if detail else type(exc).__name__
    print(f"netdoctor: internal error while running {path}: {last}", file=sys.stderr)
    if verbose:
        print(detail, file=sys.stderr)
    else:
        print("netdoctor: (-v shows netdoctor's traceback; please report it)", file=sys.stderr)
    return EXIT_USAGE


def _scripts(args) -> list[tuple[str, str]]:
    """(run name, path) of each script, each checked to be runnable."""
    paths = [args.script] + ([args.compare] if args.compare else [])
    for path in paths:
        check_script(path)
    return list(zip(RUN_NAMES, paths))


def _check_output(args, scripts: list[tuple[str, str]]) -> str | None:
    """The report format; refuses an -o that would overwrite a script, before it runs."""
    fmt = args.format
    if args.output:
        try:
            protect_inputs(Path(args.output), [Path(path) for _, path in scripts])
        except ReportError as exc:
            raise UsageError(str(exc)) from None
    elif fmt in ("md", "html"):
        raise UsageError(f"--format {fmt} needs -o FILE")
    if args.seeds is not None:
        chosen = fmt or (SAVE_FORMATS.get(Path(args.output).suffix.lower()) if args.output else None)
        if chosen not in (None, "text", "json"):
            raise UsageError("a seed sweep (--seeds) is reported as text or json")
    return fmt


def _selection(select: str | None) -> list[str] | None:
    if not select:
        return None
    selectors = [part.strip() for part in select.split(",") if part.strip()]
    from ..rules import select_rules

    try:
        select_rules(selectors)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
    return selectors


def _run_options(args, fmt: str | None) -> dict:
    _check_seed_variable()
    if args.timeout is not None and not args.timeout > 0:
        raise UsageError("--timeout must be a positive number of seconds")
    if args.max_steps is not None and args.max_steps < 1:
        raise UsageError("--max-steps must be at least 1")
    if args.seeds is not None and args.seeds < 1:
        raise UsageError("--seeds must be at least 1")
    if getattr(args, "scheduler", None) and args.seeds is None:
        raise UsageError("--scheduler runs the runs of a seed sweep on a cluster; give --seeds N too")
    return {
        "args": list(args.script_args or ()),
        "timeout": args.timeout,
        "max_steps": args.max_steps,
        "stop_on": args.stop_on,
        "quiet": args.quiet,
        "roles": _roles(args),
        "thresholds": Thresholds(),
        # With the JSON report on stdout, the script's prints go to stderr.
        "json_stdout": fmt == "json" and not args.output,
    }


def _check_seed_variable() -> None:
    """NETDOCTOR_SEED (the run a sweep would make as run k) must be a seed, told before anything runs."""
    import os

    from ..seeding import SEED_VARIABLE

    raw = os.environ.get(SEED_VARIABLE, "").strip()
    if raw and not (raw.isdigit()):
        raise UsageError(f"{SEED_VARIABLE}={raw!r} is not a seed: give a non-negative integer, or unset it")


def _roles(args) -> dict:
    """--params/--net-output/--targets as the observer's roles (as watch(model, params=..., ...))."""
    roles: dict = {}
    if getattr(args, "params", None) is not None:
        names = [name.strip() for name in args.params.split(",") if name.strip()]
        if not names:
            raise UsageError("--params takes the parameters' names, comma-separated (e.g. W1,b1,W2,b2)")
        roles["params"] = names
    for key, attr, example in (("output", "net_output", "A2"), ("targets", "targets", "y")):
        value = getattr(args, attr, None)
        if value is not None:
            if not value.strip() or "," in value:
                raise UsageError(f"--{attr.replace('_', '-')} takes one name (e.g. {example})")
            roles[key] = value.strip()
    return roles


# --- seed sweeps ------------------------------------------------------------------------


def _run_sweeps(args, scripts, fmt, select, options) -> int:
    try:
        from ..sweep import sweep
    except ImportError:
        print("netdoctor: --seeds is not available in this installation (netdoctor.sweep is missing)",
              file=sys.stderr)
        return EXIT_USAGE
    # Each run's own bar would garble; one bar over the sweep's runs instead.
    sweep_options = dict(options, select=select, quiet=True,
                         progress=not args.quiet and sys.stderr.isatty())
    if getattr(args, "scheduler", None):
        from ..distributed import ClusterError, cluster_executor

        try:
            with cluster_executor(args.scheduler) as executor:
                results = _sweep_all(sweep, scripts, args.seeds, dict(sweep_options, executor=executor))
        except ClusterError as exc:
            return _usage(exc)
    else:
        results = _sweep_all(sweep, scripts, args.seeds, sweep_options)
    if isinstance(results, Exception):
        return _usage(results)
    fmt = fmt or (SAVE_FORMATS.get(Path(args.output).suffix.lower()) if args.output else None) or "text"
    if fmt == "json":
        payload = {name: result.to_dict() for name, result in results.items()}
        text = json.dumps(payload if len(results) > 1 else payload["original"], indent=2, allow_nan=False)
    else:
        parts = [f"== {name}\n{result.render('text')}" if len(results) > 1 else result.render("text")
                 for name, result in results.items()]
        text = "\n\n".join(parts)
    if args.output:
        try:
            write_atomic(Path(args.output), text + "\n")
        except OSError as exc:
            return _usage(exc)
        print(f"netdoctor: report written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    if all(run.status == "failed" for result in results.values() for run in result.runs):
        print("netdoctor: no run of the sweep could be made", file=sys.stderr)
        return EXIT_USAGE
    # A sweep in which no run converged points at a bug: that is a finding.
    return EXIT_FINDINGS if results["original"].all_failed else EXIT_OK


def _sweep_all(sweep, scripts, seeds: int, sweep_options: dict):
    """name -> SweepResult for each script, or the (one-line) problem that stopped them."""
    results = {}
    for name, path in scripts:
        try:
            results[name] = sweep(path, seeds, **sweep_options)
        except (ScriptError, ValueError) as exc:  # incl. a folder too big to send to a worker
            return exc
    return results
