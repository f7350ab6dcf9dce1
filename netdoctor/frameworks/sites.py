"""Where in the user's code a layer, a loss or an optimizer was built.

A framework object is constructed deep inside the framework; the line the user
wrote is the innermost frame on the stack that belongs to the user's files (a
script run by netdoctor) or, in a notebook, the innermost frame that is neither
netdoctor's nor an installed package's.
"""

from __future__ import annotations

import linecache
import os
import sys
from pathlib import Path
from typing import Iterable

from ..types import Location

SOURCE_LINES = 5
_NETDOCTOR_DIR = str(Path(__file__).resolve().parent.parent)
_LIBRARY_MARKERS = (os.sep + "site-packages" + os.sep, os.sep + "dist-packages" + os.sep,
                    os.sep + "lib" + os.sep + "python")


class UserFiles:
    """Which files are the user's; None means "anything that is not a library"."""

    def __init__(self, files: Iterable[str] | None = None):
        self.files = None if files is None else frozenset(str(Path(f).resolve()) for f in files)
        self._cache: dict[str, bool] = {}

    def __contains__(self, filename: str) -> bool:
        known = self._cache.get(filename)
        if known is None:
            if self.files is not None:
                try:
                    known = str(Path(filename).resolve()) in self.files
                except (OSError, ValueError):
                    known = False
            else:
                known = not (filename.startswith(_NETDOCTOR_DIR) or filename.startswith("<frozen")
                             or any(m in filename for m in _LIBRARY_MARKERS))
            self._cache[filename] = known
        return known


def user_site(files: UserFiles, skip: int = 1) -> Location | None:
    """The innermost frame of the user's code on the current stack, as a Location."""
    frame = sys._getframe(skip)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename in files:
            return location(filename, frame.f_lineno, frame.f_code.co_qualname)
        frame = frame.f_back
    return None


def location(filename: str, line: int, function: str | None = None) -> Location:
    lines = linecache.getlines(filename)
    start = max(1, line - 2)
    source = tuple((k, lines[k - 1].rstrip("\n")) for k in range(start, min(len(lines), start + SOURCE_LINES - 1) + 1))
    return Location(file=filename, line=line, function=None if function == "<module>" else function,
                    source=source)
