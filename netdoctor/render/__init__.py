"""Showing a Report: text, Markdown, HTML and pictures.

* :mod:`.verdict` decides what a report says first (root cause, where, fix) and
  groups the findings of two runs side by side; every format lays out that answer.
* :mod:`.text`, :mod:`.markdown`, :mod:`.html` lay it out; :mod:`.plots` draws the
  pictures; :mod:`.specimen` builds a synthetic report for tests and previews.

The only package that may import matplotlib (in :mod:`.plots`), and only when a
picture is actually drawn.
"""

from __future__ import annotations

import importlib
from typing import Any

FORMATS = {"text": "text", "md": "markdown", "markdown": "markdown", "html": "html"}


def render(report, format: str = "text", **options: Any) -> str:
    try:
        module_name = FORMATS[format]
    except KeyError:
        raise ValueError(f"unknown format {format!r}; expected one of: json, {', '.join(FORMATS)}") from None
    module = importlib.import_module(f"{__name__}.{module_name}")
    return module.render(report, **options)
