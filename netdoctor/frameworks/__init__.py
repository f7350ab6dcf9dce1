"""Observing PyTorch and Keras training: hooks that fill a Trace in netdoctor's vocabulary.

Nothing here imports a framework at import time. The pieces:

* :mod:`.session` -- a framework-neutral run: schedule, Recorder, events, RunInfo.
  Both framework watchers feed it; it is the one place a framework Trace is built.
* :mod:`.tensor_stats` -- parameter/gradient/update statistics from sums a framework
  computes on its own device (only a few scalars come to the CPU per recorded step).
* :mod:`.torch_hooks` -- global module forward hooks, optimizer step hooks, and a
  ``Tensor.backward`` wrapper for hand-written loops (``w.data.sub_(lr * w.grad)``).
* :mod:`.keras_callback` -- a callback added to every ``Model.fit``.
* :mod:`.lazy` -- installs the watchers in a script's process only when the script
  imports torch or keras, so NumPy scripts pay nothing.
* :mod:`.sites` -- the user's line that built a layer, a loss or an optimizer.
"""

from __future__ import annotations

# What to install when a script uses a framework netdoctor cannot load (one line each).
INSTALL_HINT = {
    "torch": "pip install 'netdoctor[torch]'  (or: pip install torch)",
    "keras": "pip install 'netdoctor[keras]'  (and a backend: pip install torch, then KERAS_BACKEND=torch)",
}



def missing_framework_hint(error: str | None) -> str | None:
    """One line saying what to install, when a script died importing a framework."""
    import re

    last = (error or "").strip().splitlines()[-1:] or [""]
    match = re.search(r"No module named '([\w.]+)'", last[0])
    if match is None:
        return None
    top = match.group(1).split(".")[0]
    if top == "tensorflow" and "keras" in (error or ""):
        top = "keras"
    hint = INSTALL_HINT.get(top)
    return None if hint is None else f"the script uses {top}, which is not installed here: {hint}"


# Process-wide flags shared by the watchers. A Keras fit on the torch backend runs torch
# modules, backward() and optimizer code: the torch watcher stands aside meanwhile.
STATE = {"keras_fits": 0}
