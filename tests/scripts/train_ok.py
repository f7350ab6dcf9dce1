"""Trains for N steps (first argument, default 20) and prints a line per step."""
import sys

from tiny_training import train

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 20
final = train(steps)
print(f"trained {steps} steps, final loss {final:.4f}")
