"""Prints what a script expects to see, as JSON, for the runner to be checked against."""
import json
import os
import sys

import tiny_training  # a neighbour module: the script's folder must be importable

print(json.dumps({
    "name": __name__,
    "file": __file__,
    "argv": sys.argv,
    "cwd": os.getcwd(),
    "path0": sys.path[0],
    "neighbour": tiny_training.__file__,
    "main_is_me": sys.modules["__main__"].__dict__ is globals(),
    "mplbackend": os.environ.get("MPLBACKEND"),
}))
