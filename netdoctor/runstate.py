"""What a run's verdict can honestly be: the one place that says "healthy".

A run is judged only on what was seen. Whether its outputs, loss and updates were
seen is read from the Trace itself (the series each producer recorded), so the
reference MLP, the script observer and any framework adapter are held to the same
bar; a producer may add *why* something is missing in ``RunInfo.coverage``.

    HEALTHY          outputs, loss and updates all observed and judged; no error finding
    NOT_HEALTHY      an error finding (what was seen is enough to say so)
    PARTLY_OBSERVED  no error in what was seen, but outputs, loss or updates were not
                     seen (or the run ran out of time): rules that need them did not run
    NOT_OBSERVED     not a single training step was seen: nothing was judged
    CRASHED          the script raised before it finished, with no error finding

``Report.ok``, the verdict line of every format, ``assert_healthy``, the sweep and the
CLI's exit status all ask :func:`run_state`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:  # pragma: no cover
    from .trace import Trace
    from .types import Finding


class RunState(str, Enum):
    HEALTHY = "healthy"
    """Outputs, loss and updates were all observed and judged, and no error was found."""
    NOT_HEALTHY = "not healthy"
    """An error finding: the network fails to learn, or the code is wrong."""
    PARTLY_OBSERVED = "partly observed"
    """No error in what was seen, but part of the run could not be seen, so not all was judged."""
    NOT_OBSERVED = "not observed"
    """No training step was seen at all: nothing was judged."""
    CRASHED = "crashed"
    """The script raised an exception before it finished (and nothing seen was an error)."""

    def __str__(self) -> str:
        return self.value


class Role(str, Enum):
    """A part of a training run that a producer may or may not have seen."""

    UPDATES = "updates"
    """Parameter updates (the steps): weights, their changes and update ratios."""
    OUTPUTS = "outputs"
    """The network's outputs on a fixed probe batch: pinned outputs, constant predictions."""
    LOSS = "loss"
    """The training loss over the steps: plateau, divergence, loss at init."""
    TARGETS = "targets"
    """The targets the outputs are compared with: reachability, label encoding, accuracy."""
    GRADIENTS = "gradients"
    """The gradients backprop computed: vanishing/exploding, the gradient check."""

    def __str__(self) -> str:
        return self.value


# Without these a run cannot be called healthy.
REQUIRED: tuple[Role, ...] = (Role.UPDATES, Role.OUTPUTS, Role.LOSS)

# Which rule families lean on which role (for telling the user what did not run).
FAMILIES_NEEDING: dict[Role, tuple[str, ...]] = {
    Role.UPDATES: ("ND4 parameters", "ND5 updates"),
    Role.OUTPUTS: ("ND1 outputs",),
    Role.LOSS: ("ND1 loss",),
    Role.TARGETS: ("ND6 data", "ND1 accuracy"),
    Role.GRADIENTS: ("ND2 gradients",),
}

# Series whose presence shows a role was seen.
_EVIDENCE: dict[Role, tuple[str, ...]] = {
    Role.OUTPUTS: ("out_mean", "out_std", "out_min", "out_max"),
    Role.LOSS: ("loss", "probe_loss"),
    Role.TARGETS: ("accuracy", "probe_loss"),
    Role.GRADIENTS: ("grad_norm", "grad_abs_mean"),
    Role.UPDATES: ("update_norm", "update_ratio", "weight_norm"),
}
_FINISHED = ("completed", "stopped")   # a run ended by --max-steps is still a full verdict


@dataclass(frozen=True)
class Coverage:
    """For each role: None when it was seen, else why it was not."""

    missing: Mapping[Role, str]

    @property
    def seen(self) -> tuple[Role, ...]:
        return tuple(role for role in Role if role not in self.missing)

    @property
    def blind_required(self) -> tuple[Role, ...]:
        return tuple(role for role in REQUIRED if role in self.missing)

    def families_not_run(self) -> list[tuple[str, str]]:
        """(rule family, why) for every family that lacked what it needs."""
        out = []
        for role, why in self.missing.items():
            for family in FAMILIES_NEEDING.get(role, ()):
                out.append((family, f"{role} not seen: {why}"))
        return out

    def to_dict(self) -> dict[str, str | None]:
        return {str(role): self.missing.get(role) for role in Role}


def coverage(trace: "Trace") -> Coverage:
    """What of `trace` was seen, from its series (and the producer's reasons)."""
    quantities = _quantities(trace)
    reasons = dict(trace.info.coverage or {})
    missing: dict[Role, str] = {}
    steps = int(trace.info.steps) > 0 or len(trace.steps) > 0
    for role in Role:
        seen = any(q in quantities for q in _EVIDENCE[role]) and (steps or role is not Role.UPDATES)
        if role is Role.TARGETS and not seen:
            seen = trace.info.extra.get("targets_seen", False) is True
        if not seen:
            missing[role] = reasons.get(str(role)) or ("no training step was seen" if not steps else "not recorded")
    return Coverage(missing)


def run_state(trace: "Trace", findings: Iterable["Finding"]) -> RunState:
    """The verdict `trace` has earned, given its own `findings` (see the module doc)."""
    info = trace.info
    if any(f.is_error for f in findings if f.run == trace.name):
        return RunState.NOT_HEALTHY
    if info.status == "crashed":
        return RunState.CRASHED
    if int(info.steps) <= 0 and len(trace.steps) == 0:
        return RunState.NOT_OBSERVED
    if info.status not in _FINISHED or coverage(trace).blind_required:
        return RunState.PARTLY_OBSERVED
    return RunState.HEALTHY


def _quantities(trace: "Trace") -> set[str]:
    """The quantities recorded with at least one finite value (a column of NaN shows nothing)."""
    out = set()
    for layer, quantity in trace.recorder.keys():
        if quantity not in out and trace.has(quantity, layer):
            out.add(quantity)
    return out
