"""Trains 3 steps, then its process dies of a segmentation fault."""
import os
import signal
import sys
import time

from tiny_training import train

train(3)
time.sleep(0.3)  # let the progress report reach the parent
sys.stdout.flush()
os.kill(os.getpid(), signal.SIGSEGV)
