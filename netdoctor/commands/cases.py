"""`netdoctor cases [DIR]`: diagnose a folder of case studies, print the detection matrix.

One row per case: each checked code found (+), missed (-) or a declared known
miss (~), and an `expect_any` group as ``any(+ND201 -ND403)`` (met when one of
its codes is found); error findings on the original beyond the expected codes;
error findings (or a failed or unobserved run) on the fixed version and on the
other healthy scripts (extra ones, or a healthy-only case's scripts).
Totals: recall on the expected codes (an `expect_any` group counts as one) and
how many fixed versions and other healthy scripts are unhealthy.

Exit status: 0 when every expected code is found (declared misses aside), every
`expect_any` group is met and every healthy script is observed and healthy; 1
otherwise (or when a case.toml is invalid); 2 when DIR holds no case study. The
scripts' own output is discarded.
"""

from __future__ import annotations

import concurrent.futures as futures
import datetime
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .._version import __version__
from ..casefile import CaseFileError, find_cases, folders_without_case, load_case
from ..sweep import discarded_output
from ..testing import CaseOutcome, run_case

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


@dataclass
class Totals:
    cases: int
    healthy_only: int     # cases with no original, only scripts that must be healthy
    checked: int          # codes checked on originals (expected + declared known misses)
    found: int
    missed: int           # regressions: not found, not declared
    known_missed: int
    healthy_checked: int  # fixed versions and extra healthy scripts
    unhealthy: int
    fixed_unhealthy: int
    invalid: int

    @property
    def recall(self) -> float | None:
        return self.found / self.checked if self.checked else None

    @property
    def ok(self) -> bool:
        return not self.missed and not self.unhealthy and not self.invalid

    def to_dict(self) -> dict:
        return {
            "cases": self.cases,
            "healthy_only_cases": self.healthy_only,
            "expected_codes": self.checked,
            "found": self.found,
            "missed": self.missed,
            "known_missed": self.known_missed,
            "recall": None if self.recall is None else round(self.recall, 4),
            "healthy_scripts": self.healthy_checked,
            "unhealthy_scripts": self.unhealthy,
            "fixed_with_errors": self.fixed_unhealthy,
            "invalid_cases": self.invalid,
            "ok": self.ok,
        }


def totals(outcomes: list[CaseOutcome], invalid: int = 0) -> Totals:
    return Totals(
        cases=len(outcomes),
        healthy_only=sum(o.spec.healthy_only for o in outcomes),
        checked=sum(len(o.spec.checked_codes) + bool(o.spec.expect_any) for o in outcomes),
        found=sum(len(o.found) + bool(o.any_found) for o in outcomes),
        missed=sum(len(o.missed) + o.any_missed for o in outcomes),
        known_missed=sum(len(o.known_missed) for o in outcomes),
        healthy_checked=sum(len(o.healthy_labels) for o in outcomes),
        unhealthy=sum(len(o.failed_healthy) for o in outcomes),
        fixed_unhealthy=sum("fixed" in o.failed_healthy for o in outcomes),
        invalid=invalid,
    )


# ------------------------------------------------------------------------------------
# Running
# ------------------------------------------------------------------------------------
def _progress(done: int, total: int, outcome: CaseOutcome, show: bool) -> None:
    if show:
        verdict = "ok" if outcome.passed else "FAIL"
        print(f"  [{done}/{total}] {outcome.spec.name:32s} {verdict:4s} {outcome.seconds:6.1f} s",
              file=sys.stderr, flush=True)


def run_case_silently(spec) -> CaseOutcome:
    """Run one case with its scripts' own output discarded.

    The script runner writes a script's output straight to our standard streams;
    pointing them at the null device for the duration keeps the matrix readable
    (``netdoctor diagnose`` on one script shows what it prints).
    """
    with discarded_output():
        return run_case(spec)


def run_all(specs, jobs: int = 1, show_progress: bool = False, executor: futures.Executor | None = None,
            portable: bool | None = None) -> list[CaseOutcome]:
    """Run every case; outcomes in the order of `specs`.

    Without `executor`: `jobs` cases at a time in worker processes of our own. With
    one (e.g. a cluster's ``client.get_executor()``), on it: a task per case that
    carries the case's folder and answers in JSON (see :mod:`netdoctor.portable`),
    unless the executor is one of the standard library's pools (``portable`` decides
    when given).
    """
    if executor is not None:
        if portable is None:
            portable = not isinstance(executor, (futures.ProcessPoolExecutor, futures.ThreadPoolExecutor))
        if portable:
            return _run_portable(specs, executor, show_progress)
        return _run_on(specs, executor, show_progress)
    if jobs <= 1 or len(specs) <= 1:
        outcomes = []
        for done, spec in enumerate(specs, 1):
            outcomes.append(run_case_silently(spec))
            _progress(done, len(specs), outcomes[-1], show_progress)
        return outcomes
    with futures.ProcessPoolExecutor(max_workers=min(jobs, len(specs))) as pool:
        return _run_on(specs, pool, show_progress)


def _run_on(specs, executor: futures.Executor, show_progress: bool) -> list[CaseOutcome]:
    results: dict[int, CaseOutcome] = {}
    pending = {executor.submit(run_case_silently, spec): i for i, spec in enumerate(specs)}
    for done, future in enumerate(futures.as_completed(pending), 1):
        results[pending[future]] = future.result()
        _progress(done, len(specs), results[pending[future]], show_progress)
    return [results[i] for i in range(len(specs))]


def _run_portable(specs, executor: futures.Executor, show_progress: bool) -> list[CaseOutcome]:
    """A task per case, carrying its folder; judged on the worker by the code that judges here."""
    from ..portable import (BundleError, TASK_MARGIN_SECONDS, answer_from_json, bundle_folder,
                            run_limit, run_portable)
    from ..testing import ScriptRun, case_scripts, judge_case, outcome_from_dict

    def refused(spec, problem: str) -> CaseOutcome:
        """Judged as a case whose scripts could not be diagnosed here is judged."""
        return judge_case(spec, {label: ScriptRun(label, path, None, problem)
                                 for label, path in case_scripts(spec).items()})

    outcomes: dict[int, CaseOutcome] = {}
    pending: dict[futures.Future, tuple[int, str]] = {}
    for i, spec in enumerate(specs):
        try:
            bundle = bundle_folder(spec.folder)
            outside = [p for p in case_scripts(spec).values() if Path(bundle.folder) not in p.parents]
            if outside:
                raise BundleError(f"{outside[0]} is outside its case's folder {bundle.folder}, "
                                  "which is all a task carries to a worker")
        except BundleError as exc:
            outcomes[i] = refused(spec, str(exc))
            continue
        scripts = len(case_scripts(spec))
        job = {"kind": "case", "script": spec.path.relative_to(bundle.folder).as_posix(), "options": {},
               "limit": scripts * run_limit(spec.timeout) + TASK_MARGIN_SECONDS}
        pending[executor.submit(run_portable, job, bundle.files)] = (i, bundle.folder)
    for done, (i, outcome) in enumerate(sorted(outcomes.items()), 1):
        _progress(done, len(specs), outcome, show_progress)

    for future in futures.as_completed(pending):
        i, folder = pending[future]
        try:
            answer = answer_from_json(future.result(), folder)
            problem = answer.get("error")
        except Exception as exc:  # noqa: BLE001 - a lost worker, a task that could not be sent
            problem = f"{type(exc).__name__}: {exc}"
        outcomes[i] = refused(specs[i], problem) if problem else outcome_from_dict(specs[i], answer["outcome"])
        _progress(len(outcomes), len(specs), outcomes[i], show_progress)
    return [outcomes[i] for i in range(len(specs))]


# ------------------------------------------------------------------------------------
# Showing
# ------------------------------------------------------------------------------------
def _codes_cell(outcome: CaseOutcome) -> str:
    if outcome.spec.healthy_only:
        return "(healthy only)"
    marks = []
    for code in outcome.spec.checked_codes:
        if code in outcome.known_missed:
            marks.append("~" + code)
        elif code in outcome.found:
            marks.append("+" + code)
        else:
            marks.append("-" + code)
    if outcome.spec.expect_any:
        group = " ".join(("+" if code in outcome.any_found else "-") + code for code in outcome.spec.expect_any)
        marks.append(f"any({group})")
    return " ".join(marks)


def _errors_cell(findings) -> str:
    return " ".join(sorted({f.code for f in findings})) or "-"


def _healthy_cell(outcome: CaseOutcome, label: str) -> str:
    if label in outcome.problems:
        return "run failed"
    if label in outcome.unobserved:
        partly = outcome.unseen_why.get(label, "").startswith("partly")
        return ("partly observed" if partly else "not observed") + (
            " (declared)" if label in outcome.known_unseen else "")
    return _errors_cell(outcome.unhealthy.get(label, []))


def render_text(root: Path, outcomes: list[CaseOutcome], invalid: list[CaseFileError],
                undeclared: list[Path]) -> str:
    t = totals(outcomes, len(invalid))
    today = datetime.date.today().isoformat()
    header = ("case", "expected (+found -missed ~known miss)", "other errors: original",
              "errors: fixed", "other healthy", "s")
    rows = []
    for o in outcomes:
        extras = [label for label in o.healthy_labels if label != "fixed"]
        sick = [label for label in extras if label in o.failed_healthy]
        extra_cell = "-" if not extras else ("ok" if not sick else " ".join(sick) + " unhealthy")
        fixed_cell = "-" if o.spec.healthy_only else _healthy_cell(o, "fixed")
        original_cell = "-" if o.spec.healthy_only else _errors_cell(o.original_errors)
        rows.append((o.spec.name, _codes_cell(o), original_cell, fixed_cell, extra_cell, f"{o.seconds:.1f}"))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells) -> str:
        left = "  ".join(f"{cell:{width}s}" for cell, width in zip(cells[:-1], widths[:-1]))
        return f"{left}  {cells[-1]:>{widths[-1]}s}"

    head = line(header)
    lines = [f"Detection matrix of {root}: {len(outcomes)} case(s), netdoctor {__version__}, {today}",
             "", head, "-" * len(head)]
    lines.extend(line(row) for row in rows)
    lines.append("")
    recall = "n/a" if t.recall is None else f"{t.recall:.0%}"
    lines.append(f"recall on expected codes: {t.found} of {t.checked} ({recall}); "
                 f"missed: {t.missed}; declared known misses: {t.known_missed}")
    lines.append(f"fixed versions not healthy (an error finding, a failed run or nothing observed): "
                 f"{t.fixed_unhealthy} of "
                 f"{t.cases - t.healthy_only}; fixed, extra and healthy-only scripts not healthy: "
                 f"{t.unhealthy} of {t.healthy_checked}")

    details = []
    for o in outcomes:
        for code in o.missed:
            details.append(f"{o.spec.name}: missed {code}")
        if o.any_missed:
            details.append(f"{o.spec.name}: missed every one of {', '.join(o.spec.expect_any)}")
        for code in o.known_missed:
            details.append(f"{o.spec.name}: known miss {code} ({o.spec.expected_failures[code]})")
        for code in o.declared_but_found:
            details.append(f"{o.spec.name}: {code} is declared a known miss but was found; "
                           "remove it from [expected_failures]")
        for label in o.failed_healthy:
            for f in o.unhealthy.get(label, []):
                details.append(f"{o.spec.name}: {label} has {f.code} {f.symbol}: {f.message}")
            if label in o.unobserved:
                why = o.unseen_why.get(label, "nothing observed")
                details.append(f"{o.spec.name}: {label}: {why}, so it cannot be called healthy")
        for label, problem in o.problems.items():
            details.append(f"{o.spec.name}: {label}: {problem}")
    for error in invalid:
        details.append(f"invalid case: {error}")
    for folder in undeclared:
        details.append(f"not a case yet (no case.toml): {folder}")
    if details:
        lines.append("")
        lines.extend(details)
    lines.append("")
    lines.append("result: " + ("ok" if t.ok else "FAIL"))
    return "\n".join(lines)


def render_json(root: Path, outcomes: list[CaseOutcome], invalid: list[CaseFileError],
                undeclared: list[Path]) -> str:
    t = totals(outcomes, len(invalid))
    payload = {
        "netdoctor": __version__,
        "date": datetime.date.today().isoformat(),
        "dir": str(root),
        "ok": t.ok,
        "totals": t.to_dict(),
        "cases": [o.to_dict() for o in outcomes],
        "invalid": [{"path": str(e.path), "problem": e.problem} for e in invalid],
        "undeclared": [str(p) for p in undeclared],
    }
    return json.dumps(payload, indent=2, allow_nan=False)


def run(args) -> int:
    """The command. ``--scheduler tcp://HOST:PORT`` runs the cases on a Dask cluster
    (:mod:`netdoctor.distributed`), with the same matrix; a cluster that cannot be
    used is one line and exit status 2."""
    root = Path(args.dir)
    if not root.exists():
        print(f"netdoctor: {root}: no such folder", file=sys.stderr)
        return EXIT_USAGE
    paths = find_cases(root)
    if not paths:
        print(f"netdoctor: no case study (a folder with case.toml) under {root}", file=sys.stderr)
        return EXIT_USAGE
    specs, invalid = [], []
    for path in paths:
        try:
            specs.append(load_case(path))
        except CaseFileError as exc:
            invalid.append(exc)
    jobs = args.jobs if args.jobs and args.jobs > 0 else (os.cpu_count() or 1)
    show = not args.quiet and sys.stderr.isatty()
    if args.scheduler:
        from ..distributed import ClusterError, cluster_executor

        try:
            with cluster_executor(args.scheduler) as executor:
                outcomes = run_all(specs, show_progress=show, executor=executor)
        except ClusterError as exc:
            print(f"netdoctor: {exc}", file=sys.stderr)
            return EXIT_USAGE
    else:
        outcomes = run_all(specs, jobs, show_progress=show)
    undeclared = folders_without_case(root)
    render = render_json if args.format == "json" else render_text
    sys.stdout.write(render(root, outcomes, invalid, undeclared) + "\n")
    sys.stdout.flush()
    return EXIT_OK if totals(outcomes, len(invalid)).ok else EXIT_FAIL
