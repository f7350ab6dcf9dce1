"""Trains 4 steps, then leaves the way the first argument says."""
import os
import sys

from tiny_training import train

train(4)
how = sys.argv[1]
if how == "sys.exit":
    sys.exit()
elif how == "sys.exit3":
    sys.exit(3)
elif how == "exit":
    exit()
elif how == "quit":
    quit()
elif how == "os._exit":
    sys.stdout.flush()
    os._exit(0)
train(100)  # never reached
