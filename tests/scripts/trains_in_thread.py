"""Trains in a worker thread, as a GUI or a server might."""
import threading

from tiny_training import train

worker = threading.Thread(target=train, args=(25,))
worker.start()
worker.join()
print("thread done")
