"""Trains 7 steps, then fails inside a function of its own."""
from tiny_training import train


def load_batch(index):
    raise ValueError(f"batch {index} is missing")


train(7)
load_batch(3)
