"""Starts a long-lived helper process, writes its pid (first argument: the file), and ends."""
import subprocess
import sys

from tiny_training import train

helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
with open(sys.argv[1], "w") as handle:
    handle.write(str(helper.pid))
train(2)
