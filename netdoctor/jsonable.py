"""netdoctor's results as JSON data and back: non-finite floats, findings, nested values.

What travels between machines (a task's answer) is JSON text, never pickled
netdoctor objects; these are the conversions both ends share.
"""

from __future__ import annotations

import math
from typing import Any


def encode_float(value: float | None) -> float | str | None:
    """A float for JSON: NaN and infinities become the strings "nan", "inf", "-inf"."""
    if value is None or math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def decode_float(value: float | str | None) -> float | None:
    return None if value is None else float(value)


def finding_from_dict(data: dict[str, Any]):
    """A Finding back from its JSON form (``Finding.to_dict``)."""
    from .types import Finding, Location, Severity

    where = data["location"]
    return Finding(
        code=data["code"], symbol=data["symbol"], severity=Severity.parse(data["severity"]), run=data["run"],
        message=data["message"], layer=data["layer"], step=data["step"], evidence=data["evidence"],
        fix=data["fix"], why=data["why"],
        location=None if where is None else Location(where["file"], where["line"], where["function"]),
    )


def to_plain(value: Any) -> Any:
    """`value` with every Finding as ``{"finding": Finding.to_dict()}``, lists and dicts walked."""
    from .types import Finding

    if isinstance(value, Finding):
        return {"finding": value.to_dict()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    return value


def from_plain(value: Any) -> Any:
    """:func:`to_plain` undone (its lists stay lists)."""
    if isinstance(value, dict):
        if set(value) == {"finding"}:
            return finding_from_dict(value["finding"])
        return {k: from_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_plain(v) for v in value]
    return value
