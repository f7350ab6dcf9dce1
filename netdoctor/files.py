"""Writing files safely: the one helper the report and every renderer share.

Its own module so that :mod:`netdoctor.render` needs nothing from :mod:`netdoctor.report`
(which imports the renderers lazily): the dependency runs one way.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(target: Path, data: str | bytes) -> None:
    """Write to a temporary file beside `target`, then rename: never a half-written file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as handle:
            handle.write(data)
        # mkstemp creates the file private (0600); a report is meant to be shared,
        # so give it the permissions any new file of the user's would get.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
