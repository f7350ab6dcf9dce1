"""Helpers the test scripts import from their own folder (which must be importable).

The stub observer counts each return from ``update`` as a step and reads the loss
from ``compute_loss``.
"""


def compute_loss(loss):
    return loss


def update(step):
    return step + 1


def train(steps, growth=0.9):
    """A loss that shrinks by `growth` per step (or grows, for growth > 1)."""
    loss = 1.0
    for step in range(steps):
        compute_loss(loss)
        update(step)
        loss = loss * growth
        if loss == float("inf"):
            loss = loss - loss  # inf - inf: NaN, as a diverging network ends
    return loss
