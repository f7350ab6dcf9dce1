"""Showing a Report: text, Markdown, HTML and pictures.

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
