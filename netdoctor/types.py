"""The small value types every layer of netdoctor passes around.

Plain frozen dataclasses with no numpy logic, so that measuring (probes), judging
(rules) and showing (render) agree on one vocabulary without importing each other.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any, Mapping


class Severity(enum.IntEnum):
    """How bad a finding is. Ordered, so ``finding.severity >= Severity.ERROR`` works."""

    INFO = 0
    WARNING = 1
    ERROR = 2

    def __str__(self) -> str:  # "error", as written in JSON and on the command line
        return self.name.lower()

    @classmethod
    def parse(cls, value: "str | Severity") -> "Severity":
        if isinstance(value, Severity):
            return value
        try:
            return cls[str(value).strip().upper()]
        except KeyError:
            names = ", ".join(str(s) for s in cls)
            raise ValueError(f"unknown severity {value!r}; expected one of: {names}") from None


@dataclass(frozen=True)
class Location:
    """Where in the user's code a finding lives."""

    file: str
    line: int | None = None
    function: str | None = None
    # A few source lines around `line`, as (line number, text) pairs, for the report.
    source: tuple[tuple[int, str], ...] = ()

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{self.function} ({where})" if self.function else where

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "function": self.function}


def _jsonable(value: Any) -> Any:
    """Evidence holds numbers from numpy; turn them into plain JSON values (NaN -> None)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


@dataclass(frozen=True)
class Finding:
    """One verdict of one rule on one run.

    ``evidence`` holds the measured values AND the thresholds they were judged
    against, so that a reader can disagree with the verdict on the numbers.
    """

    code: str
    symbol: str
    severity: Severity
    run: str
    message: str
    layer: str | None = None
    step: int | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    fix: str = ""
    why: str = ""
    location: Location | None = None

    @property
    def is_error(self) -> bool:
        return self.severity >= Severity.ERROR

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract (see README, "JSON output")."""
        return {
            "code": self.code,
            "symbol": self.symbol,
            "severity": str(self.severity),
            "run": self.run,
            "message": self.message,
            "layer": self.layer,
            "step": None if self.step is None else int(self.step),
            "location": None if self.location is None else self.location.to_dict(),
            "evidence": _jsonable(dict(self.evidence)),
            "fix": self.fix,
            "why": self.why,
        }

    def headline(self) -> str:
        return f"{str(self.severity).upper():7s} {self.code} {self.symbol}"


RUN_STATUSES = ("completed", "crashed", "timeout", "stopped")


@dataclass
class LayerInfo:
    """What is known about one layer of the observed network, in forward order."""

    name: str
    fan_in: int | None = None
    fan_out: int | None = None
    activation: str | None = None      # declared/identified name: "sigmoid", "relu", "softmax", ...
    has_bias: bool | None = None
    is_output: bool = False
    param_names: tuple[str, ...] = ()  # e.g. ("weights_dict[1]", "bias_dict[1]") for user code
    location: Location | None = None   # where the layer's activation function lives, when known


@dataclass
class RunInfo:
    """Facts about one run that are not time series.

    Mutable on purpose: a run is described progressively while it happens
    (status and steps are only known at the end).
    """

    name: str
    status: str = "completed"          # one of RUN_STATUSES
    steps: int = 0                     # parameter updates observed
    source: str = "reference"          # "reference" (netdoctor.MLP), "script", "object", "torch" or "keras"
    script: str | None = None
    layers: list[LayerInfo] = field(default_factory=list)
    loss: str | None = None            # "mse", "bce", "ce" when known
    output: str | None = None          # output function: "sigmoid", "softmax", "linear", ...
    n_classes: int | None = None       # None for regression
    task: str | None = None            # "classification" or "regression"
    error: str | None = None           # user traceback (our frames trimmed) when status == "crashed"
    stop_reason: str | None = None     # why a run was stopped early (timeout, --max-steps, --stop-on)
    notes: list[str] = field(default_factory=list)  # e.g. role-inference ambiguity, told to the user
    extra: dict[str, Any] = field(default_factory=dict)
    # Why a part of the run could not be seen, by role name ("loss", "targets", ...; see
    # netdoctor.runstate.Role). What *was* seen is read from the recorded series.
    coverage: dict[str, str] = field(default_factory=dict)

    def layer(self, name: str) -> LayerInfo | None:
        return next((layer for layer in self.layers if layer.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "steps": int(self.steps),
            "source": self.source,
            "script": self.script,
            "layers": [
                {
                    "name": layer.name,
                    "fan_in": layer.fan_in,
                    "fan_out": layer.fan_out,
                    "activation": layer.activation,
                    "has_bias": layer.has_bias,
                    "is_output": layer.is_output,
                }
                for layer in self.layers
            ],
            "loss": self.loss,
            "output": self.output,
            "n_classes": self.n_classes,
            "task": self.task,
            "error": self.error,
            "stop_reason": self.stop_reason,
            "notes": list(self.notes),
            "settled_at_step": self.extra.get("settled_at_step"),
            # False when watching began inside a loop already running (its first steps unseen).
            "first_steps_seen": not self.extra.get("first_steps_unseen", False),
        }
