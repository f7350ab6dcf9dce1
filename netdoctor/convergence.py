"""Whether one run converged, judged the same wherever it was made.

A run's :func:`run_summary` is plain JSON data (what convergence is judged on); a
run made on another machine sends it back, and :func:`judge_summary` judges it here
as a local run is judged (the definition of *converged* is in :mod:`netdoctor.sweep`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .jsonable import decode_float, encode_float

DEFAULT_LOSS_RATIO = 0.1
FINISHED = ("completed", "stopped")


@dataclass(frozen=True)
class SeedRun:
    """One run of a sweep."""

    index: int
    seed: int
    status: str                       # the run's status, or "failed" when it could not be made
    converged: bool | None            # None: undetermined (no loss recorded)
    loss_start: float | None = None
    loss_end: float | None = None
    loss_kind: str | None = None      # "probe_loss" or "loss": which series was compared
    error_codes: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()       # every code found, any severity
    note: str = ""                    # why it did not converge, in words



def _first_last(values: np.ndarray) -> tuple[float, float] | None:
    finite = values[np.isfinite(values)]
    if len(finite) < 2:
        return None
    return float(finite[0]), float(values[-1])  # the last value as recorded: NaN is not converged


def judge_run(report, run: str, index: int, seed: int,
              loss_ratio: float = DEFAULT_LOSS_RATIO) -> SeedRun:
    """Whether one run of a sweep converged (see the module doc for the definition)."""
    return judge_summary(run_summary(report, run), index, seed, loss_ratio)


def run_summary(report, run: str) -> dict[str, Any]:
    """What convergence is judged on, as plain JSON data (non-finite losses as strings).

    A run made on another machine sends this back; judging it there and here is
    then one and the same code (:func:`judge_summary`).
    """
    trace = report.runs[run]
    findings = report.findings_for(run)
    loss_kind, ends = None, None
    for quantity in ("probe_loss", "loss"):
        _, values = trace.series(quantity)
        ends = _first_last(values) if len(values) else None
        if ends is not None:
            loss_kind = quantity
            break
    start, end = ends if ends is not None else (None, None)
    from .rules._common import run_fits

    fits = None
    if trace.info.task == "classification":   # reached the accuracy its data allows
        try:
            fit = run_fits(trace, report.thresholds)
            fits = fit.fits if math.isfinite(fit.accuracy) else None   # judged on its accuracy too
        except Exception:  # noqa: BLE001 - a run whose fit cannot be told is judged on its loss alone
            fits = None
    return {
        "fits": fits if fits is None else bool(fits),
        "status": trace.info.status,
        "error_codes": sorted({f.code for f in findings if f.is_error}),
        "codes": sorted({f.code for f in findings}),
        "loss_kind": loss_kind,
        "loss_start": encode_float(start),
        "loss_end": encode_float(end),
    }


def judge_summary(summary: dict[str, Any], index: int, seed: int,
                  loss_ratio: float = DEFAULT_LOSS_RATIO) -> SeedRun:
    """Judge a run from its :func:`run_summary`."""
    status = summary["status"]
    error_codes = tuple(summary["error_codes"])
    start, end = decode_float(summary["loss_start"]), decode_float(summary["loss_end"])
    base = dict(index=index, seed=seed, status=status, loss_start=start, loss_end=end,
                loss_kind=summary["loss_kind"], error_codes=error_codes, codes=tuple(summary["codes"]))

    if status not in FINISHED:
        return SeedRun(converged=False, note=f"the run {status}", **base)
    if error_codes:
        return SeedRun(converged=False, note="error finding(s): " + ", ".join(error_codes), **base)
    if start is None or start <= 0:
        return SeedRun(converged=None, note="no usable loss was recorded", **base)
    if not math.isfinite(end):
        return SeedRun(converged=False, note="the loss ended non-finite", **base)
    if end > loss_ratio * start and summary.get("fits") is not True:
        # A classifier that reaches what its data allows has converged, whatever its loss
        # ratio (a sigmoid net at accuracy 1.0 may keep 0.3 x its first loss).
        return SeedRun(converged=False, note=f"the loss only fell to {end / start:.2g} x its start", **base)
    return SeedRun(converged=True, **base)
