"""Starts a training thread and never joins it: Python still waits for it."""
import threading
import time

from tiny_training import train


def slow_train():
    time.sleep(0.3)
    train(9)


threading.Thread(target=slow_train).start()
