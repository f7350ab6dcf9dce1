"""Writing a report the way every sub-command does: format, destination, exit status."""

from __future__ import annotations

import sys
from pathlib import Path

from ..report import Report, ReportError, SAVE_FORMATS

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_PARTLY = 0, 1, 2, 3


def emit(report: Report, fmt: str | None, output: str | None, fail_on: str = "error",
         *, verbose: bool = False) -> int:
    """Print or save `report`; return 0 when nothing is at or above `fail_on`, else 1."""
    text_options = {"verbose": True} if verbose else {}  # -v: also the info findings
    if output:
        fmt = fmt or SAVE_FORMATS.get(Path(output).suffix.lower()) or "text"
        try:
            path = report.save(output, format=fmt)
        except (ReportError, OSError) as exc:
            print(f"netdoctor: {exc}", file=sys.stderr)
            return EXIT_USAGE
        print(f"netdoctor: report written to {path}", file=sys.stderr)
        if fmt != "text":  # still give the verdict in the terminal
            print(report.render("text", **text_options), file=sys.stderr)
    else:
        fmt = fmt or "text"
        if fmt not in ("text", "json"):
            print(f"netdoctor: --format {fmt} needs -o FILE", file=sys.stderr)
            return EXIT_USAGE
        sys.stdout.write(report.render(fmt, **(text_options if fmt == "text" else {})) + "\n")
        sys.stdout.flush()
    if report.fails(fail_on):
        return EXIT_FINDINGS
    for name in report.unobserved():
        # No finding because nothing was seen is not a clean bill of health. (A run that
        # crashed has already been told as a crash, with its traceback.)
        if report.runs[name].info.status == "crashed":
            return EXIT_USAGE
        script = report.runs[name].info.script or name
        print(
            f"netdoctor: no training step was observed in {script}; nothing was judged "
            "(see the notes above for how to name the model's arrays)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    partly = report.partly_observed()
    if partly:
        # No error in what was seen is not health either: part of the run was not judged.
        names = ", ".join(report.runs[name].info.script or name for name in partly)
        print(f"netdoctor: {names} was only partly observed; no error in what was seen, but not all of it "
              "was judged (exit status 3; see 'not judged' above)", file=sys.stderr)
        return EXIT_PARTLY
    return EXIT_OK
