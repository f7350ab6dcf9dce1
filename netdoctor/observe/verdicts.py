"""Early verdicts: findings that are already certain while the run is still going.

Some rules judge facts that more steps cannot change: what a user's activation
function computes (ND303/ND304), how the weights were initialised (ND401/ND402,
ND405), whether the gradients match the network's own loss at the first steps
(ND203/ND204), whether the updates go uphill (ND503), whether the targets can be
reached at all (ND601/ND603), a NaN (ND106). Those can stop a doomed run
(``--stop-on error``) in its first few dozen steps and show up in the live display.

Checks run at doubling step counts (25, 50, 100, ...), so a long run pays for a
handful of them, not one per step.
"""

from __future__ import annotations

from typing import Callable

from ..config import Thresholds
from ..trace import Trace
from ..types import Finding, Severity

EARLY_CODES = ("ND106", "ND203", "ND204", "ND303", "ND304", "ND401", "ND402", "ND405", "ND503", "ND601", "ND603")
FIRST_CHECK = 25


class EarlyVerdicts:
    def __init__(self, thresholds: Thresholds):
        self.thresholds = thresholds
        self.next_check = FIRST_CHECK
        self.reported: set[tuple[str, str | None]] = set()

    def due(self, step: int) -> bool:
        return step >= self.next_check

    def check(self, step: int, build_trace: Callable[[], Trace]) -> list[Finding]:
        """New findings of the early rules on a provisional trace of the run so far."""
        from ..rules import run_rules

        self.next_check = max(2 * self.next_check, step + 1)
        try:
            outcome = run_rules(build_trace(), self.thresholds, select=EARLY_CODES)
        except Exception:  # noqa: BLE001 - an early look must never hurt the run
            return []
        new = []
        for finding in outcome.findings:
            key = (finding.code, finding.layer)
            if key not in self.reported:
                self.reported.add(key)
                new.append(finding)
        return new


def stops(findings: list[Finding], level: Severity | None) -> Finding | None:
    """The first finding at or above `level` (the one that ends a --stop-on run), if any."""
    if level is None:
        return None
    return next((f for f in findings if f.severity >= level), None)
