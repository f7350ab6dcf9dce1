"""Telling the user how to name the roles netdoctor could not infer.

When the observer cannot place the network, the most useful sentence is the exact
command to try, built from the arrays it *did* see: those that changed while the
program ran are the likely parameters; those that stayed put and look like targets
are the likely targets. The same roles can be given from Python:
``watch(model, params=[...], output=..., targets=...)``.
"""

from __future__ import annotations

import os
import shlex
from typing import Iterable

from .arrays import Found, from_list

_TARGET_NAMES = ("y", "t", "target", "label", "labels", "targets", "y_train", "ytrain", "yt")
_OUTPUT_WORDS = ("out", "pred", "yhat", "y_hat", "a2", "a3", "output", "prob")
MAX_PARAMS = 8


def _leaf(name: str) -> str:
    return name.rsplit(".", 1)[-1].split("[")[0].strip("'\"").lower()


def suggested_roles(found: Iterable[Found], changing: set[tuple]) -> dict[str, list[str] | str]:
    """{params: [...], output: name, targets: name} guessed from what was seen (entries may be absent)."""
    params, outputs, targets = [], [], []
    for f in found:
        if f.path.in_data or f.path.root.kind == "result" or f.array.dtype.kind != "f" or from_list(f.array):
            continue   # (a Python list of numbers is data, never a parameter)
        leaf = _leaf(f.name)
        if f.path.key() in changing:
            if any(word in leaf for word in _OUTPUT_WORDS):
                outputs.append(f.name)
            elif f.array.ndim <= 2 and f.path.root.kind in ("object", "globals", "local"):
                params.append(f.name)
        elif leaf in _TARGET_NAMES:
            targets.append(f.name)
    out: dict[str, list[str] | str] = {}
    if params:
        out["params"] = params[:MAX_PARAMS]
    if outputs:
        out["output"] = outputs[0]
    if targets:
        out["targets"] = targets[0]
    return out


def how_to_name(script: str | None, roles: dict | None = None) -> str:
    """The sentence that tells how to name the roles: the command line, and the watch() call.

    The names seen are used as they are. Example names stand in only when no name was
    seen at all: a made-up output name next to real parameter names would read as
    something netdoctor saw."""
    roles = roles or {}
    seen = bool(roles.get("params"))
    params = roles.get("params") or ["W1", "b1", "W2", "b2"]
    output = roles.get("output") or (None if seen else "A2")
    targets = roles.get("targets") or (None if seen else "y")
    cli = ["netdoctor", "diagnose", os.path.basename(script) if script else "train.py", "--params", ",".join(params)]
    call = f"params={list(params)!r}"
    if output is not None:
        cli += ["--net-output", output]
        call += f", output={output!r}"
    if targets is not None:
        cli += ["--targets", targets]
        call += f", targets={targets!r}"
    guessed = "with the names netdoctor saw change" if seen else "with the names your code uses"
    text = (f"name them ({guessed}): {' '.join(shlex.quote(part) for part in cli)}  "
            f"(from Python: watch(model, {call}))")
    missing = [what for what, name in (("--net-output", output), ("--targets", targets)) if name is None]
    if missing:
        text += "; if arrays hold the network's output or the targets, add " + " / ".join(
            f"{flag} NAME" for flag in missing)
    return text


def named_as(path_name: str, wanted: str) -> bool:
    """Whether an array's path is the name the user gave (``A2`` matches ``self.A2`` too)."""
    return path_name == wanted or path_name.endswith("." + wanted) or path_name.endswith("['" + wanted + "']")
