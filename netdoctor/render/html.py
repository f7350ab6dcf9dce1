"""One self-contained HTML file: verdict first, findings side by side, pictures inline.

Built with a Jinja2 template (``templates/report.html.j2``) with autoescape on,
never by string concatenation, because nearly every string in a report comes
from user code: run names, printed output, exception messages, paths, source
lines. Images are PNG/GIF bytes inlined as base64 ``data:`` URIs; the page has
inline CSS only, no JavaScript, and a Content-Security-Policy that forbids
scripts and network loads, so it opens offline and cannot run injected code.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from .._version import __version__
from . import verdict as verdict_mod

TEMPLATE = "report.html.j2"
NO_PICTURES = "Pictures were not drawn for this view (pictures=False)."


@dataclass(frozen=True)
class _InlinePicture:
    """A Picture as the template sees it: data URIs instead of bytes."""

    name: str
    title: str
    caption: str
    drawn: bool
    note: str | None
    png_uri: str | None
    gif_uri: str | None


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def _code_spans(text: Any):
    """Rule prose with its ``code`` marks as <code>; every piece escaped by markupsafe."""
    from markupsafe import Markup, escape

    return Markup("").join(
        Markup("<code>%s</code>") % piece if is_code else escape(piece)
        for is_code, piece in verdict_mod.code_marks(str(text))
    )


@lru_cache(maxsize=1)
def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=True,  # every {{ value }} is escaped; the template has no |safe
        undefined=jinja2.StrictUndefined,  # a typo in the template fails loudly in tests
        trim_blocks=False,
        lstrip_blocks=False,
    )
    env.filters["code_spans"] = _code_spans
    return env


def render(report, pictures: bool = True, **_: Any) -> str:
    """The report as one HTML document (also what a notebook displays)."""
    from . import plots

    shown = [_inline(p) for p in plots.gallery(report)] if pictures else []
    return render_with(report, shown, pictures_note="" if pictures else NO_PICTURES)


def render_with(report, pictures: list, pictures_note: str = "") -> str:
    template = _environment().get_template(TEMPLATE)
    return template.render(
        verdict=verdict_mod.build(report),
        pictures=pictures,
        pictures_note=pictures_note,
        run_names=list(report.runs),
        thresholds=[(k, verdict_mod.format_value(v)) for k, v in report.thresholds.to_dict().items()],
        version=__version__,
    )


def _inline(picture) -> _InlinePicture:
    return _InlinePicture(
        name=picture.name,
        title=picture.title,
        caption=picture.caption,
        drawn=picture.drawn,
        note=picture.note,
        png_uri=data_uri(picture.png, "image/png") if picture.png else None,
        gif_uri=data_uri(picture.gif, "image/gif") if picture.gif else None,
    )
