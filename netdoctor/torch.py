"""PyTorch, wired in by hand: ``with netdoctor.torch.watch(model, optimizer) as w: train()``.

Usually not needed: ``netdoctor diagnose train.py`` and ``netdoctor.diagnose(model,
train_fn)`` install the same hooks themselves. This module's name is ``netdoctor.torch``;
it imports the real ``torch`` (absolute imports) only when used.
"""

from __future__ import annotations

from typing import Any


def watch(model: Any, optimizer: Any = None, *, name: str = "original", thresholds: Any = None):
    """Observe `model` (a ``torch.nn.Module``) while the ``with`` block trains it; ``w.report``."""
    from netdoctor.frameworks.watch import FrameworkWatch

    return FrameworkWatch(model, "torch", name=name, thresholds=thresholds, optimizer=optimizer)
