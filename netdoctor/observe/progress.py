"""Progress of a script under observation: the messages, and the live display.

The child process (:mod:`.child`) sends one JSON line per progress report over a
pipe: steps observed, the current loss, findings that became certain. The parent
(:mod:`.script`) keeps what it heard in a :class:`ProgressLog` (if the child has to
be killed, that is all the report will have) and shows it in a :class:`LiveDisplay`,
a tqdm bar on stderr. tqdm is imported only when the display is actually shown.
"""

from __future__ import annotations

import json
import math
import os
import threading
from dataclasses import dataclass, field
from typing import Any, TextIO

# The real os._exit, kept before the child replaces it with a reporting version.
_hard_exit = os._exit

# --- the messages --------------------------------------------------------------


def encode(progress: Any) -> bytes:
    """One progress report (an Observer's Progress) as a JSON line."""
    loss = getattr(progress, "loss", None)
    try:
        loss = None if loss is None else float(loss)
    except (TypeError, ValueError):
        loss = None
    message = {
        "steps": int(getattr(progress, "steps", 0) or 0),
        "loss": loss,
        "findings": [_finding_summary(f) for f in getattr(progress, "new_findings", None) or ()],
    }
    # NaN/Inf losses are information (a diverging run): json writes them as NaN/Infinity.
    return (json.dumps(message) + "\n").encode("utf-8")


def _finding_summary(finding: Any) -> dict[str, Any]:
    return {
        "code": str(getattr(finding, "code", "?")),
        "symbol": str(getattr(finding, "symbol", "")),
        "severity": str(getattr(finding, "severity", "")),
        "message": str(getattr(finding, "message", "")),
    }


def decode(line: bytes) -> dict[str, Any] | None:
    """A message, or None for a line that is not one (never raises)."""
    try:
        message = json.loads(line)
    except ValueError:
        return None
    if not isinstance(message, dict) or not isinstance(message.get("steps"), int):
        return None
    return message


class ProgressSender:
    """The child's end of the pipe: call it with an Observer's Progress."""

    def __init__(self, fd: int | None):
        self.fd = fd
        self._lock = threading.Lock()  # reports may come from a training thread

    def __call__(self, progress: Any) -> None:
        if self.fd is None:
            return
        data = encode(progress)
        with self._lock:
            try:
                os.write(self.fd, data)
            except BrokenPipeError:
                # The parent is gone (killed): nobody will read this run's report,
                # so there is no point in letting the script go on.
                _hard_exit(1)
            except OSError:
                self.fd = None


# --- the parent's side ---------------------------------------------------------------


@dataclass
class ProgressLog:
    """Everything the child has reported so far."""

    steps: int = 0
    loss: float | None = None
    losses: list[tuple[int, float]] = field(default_factory=list)  # (steps, loss), steps increasing
    findings: list[dict[str, Any]] = field(default_factory=list)

    def add(self, message: dict[str, Any]) -> None:
        self.steps = max(self.steps, int(message["steps"]))
        loss = message.get("loss")
        if isinstance(loss, (int, float)):
            self.loss = float(loss)
            if not self.losses or self.steps > self.losses[-1][0]:
                self.losses.append((self.steps, float(loss)))
        self.findings.extend(f for f in message.get("findings") or () if isinstance(f, dict))


def _format_loss(loss: float | None) -> str:
    if loss is None:
        return ""
    return f"loss={loss:.4g}" if math.isfinite(loss) else f"loss={loss}"


class LiveDisplay:
    """A tqdm bar on stderr for one run, and a way to print the script's output above it.

    When disabled (``-q``, stderr not a terminal, or a library call) nothing is drawn
    and the script's output, if it passes through here, is written straight through.
    """

    def __init__(self, name: str, *, enabled: bool, stream: TextIO, total: int | None = None):
        self.name = name
        self.stream = stream
        self.bar = None
        self._lock = threading.RLock()
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, desc=name, unit=" steps", file=stream, leave=False,
                dynamic_ncols=True, mininterval=0.1,
            )

    def update(self, message: dict[str, Any]) -> None:
        if self.bar is None:
            return
        with self._lock:
            steps = int(message["steps"])
            if steps > self.bar.n:
                self.bar.update(steps - self.bar.n)
            loss = message.get("loss")
            if isinstance(loss, (int, float)):
                self.bar.set_postfix_str(_format_loss(float(loss)), refresh=False)
            for finding in message.get("findings") or ():
                headline = f"{str(finding.get('severity', '')).upper():7s} {finding.get('code')} {finding.get('symbol')}"
                self.bar.write(f"{self.name}: {headline}  {finding.get('message', '')}", file=self.stream)
            self.bar.refresh()

    def write_output(self, text: str, stream: TextIO) -> None:
        """The script's own output, printed above the bar so neither garbles the other."""
        with self._lock:
            if self.bar is None:
                stream.write(text)
                stream.flush()
                return
            with self.bar.get_lock():
                self.bar.clear(nolock=True)
                stream.write(text)
                stream.flush()
                # Redraw only at the end of a line; mid-line the bar would break the text.
                if text.endswith("\n"):
                    self.bar.refresh(nolock=True)

    def close(self) -> None:
        with self._lock:
            if self.bar is not None:
                self.bar.close()
                self.bar = None
