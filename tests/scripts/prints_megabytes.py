"""Prints N lines of 1,000 characters (first argument, default 5,000: about 5 MB)."""
import sys

from tiny_training import train

lines = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
row = "x" * 999
for _ in range(lines):
    print(row)
train(3)
