"""Pictures of a report: one matplotlib Figure per panel, runs side by side.

The only module of netdoctor that imports matplotlib, and only inside the
functions that draw, so ``import netdoctor`` and the text report never pay for
it. Figures are ``matplotlib.figure.Figure`` objects drawn on the Agg canvas,
never pyplot: a caller owns what it gets and can change it.

Every panel declares what it needs from a trace (series of :data:`QUANTITIES`,
probe-batch outputs, event kinds). A run that lacks it gets a note in its place;
a panel no run can feed is left out of the report with a note (:func:`gallery`)
and :func:`figure` raises :class:`MissingData` naming what was missing.

Runs are columns sharing their y axes, and a layer or probe sample has the same
colour in every column, so the original and its fix compare at a glance.

Optional events this module draws when a producer records them
-------------------------------------------------------------------

``boundary`` (step set) — the model's predictions on a grid over a 2-D input
space, for decision-boundary pictures and the animated GIF::

    data = {
        "step": 120,              # the parameter update the grid was evaluated after
        "xx": [[...], ...],       # 2-D grid of the first input feature (np.meshgrid)
        "yy": [[...], ...],       # 2-D grid of the second input feature, same shape
        "zz": [[...], ...],       # model score on the grid, same shape: the probability
                                  # of class 1 (sigmoid output, or output unit 1 of a
                                  # 2-unit one-hot/softmax net); for more classes, the
                                  # predicted class index
        "level": 0.5,             # optional: where the decision boundary is drawn
    }

``activation_hist`` (step and layer set) — a histogram of one layer's
activations, so the activations panel can show real distributions::

    data = {"edges": [...n + 1 bin edges...], "counts": [...n counts...]}

Without it the activations panel shows the recorded mean ± std per layer and
says so; it never invents a distribution.
"""

from __future__ import annotations

import io
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..trace import MODEL, Trace

# Public panel names, in the order reports show them.
PANELS: tuple[str, ...] = (
    "loss",
    "outputs",
    "grad_norm",
    "saturation",
    "update_ratio",
    "activations",
    "boundary",
)

DPI = 80                    # report pictures: sharp enough, small enough to inline
GIF_DPI = 64
COLUMN_WIDTH = 4.4          # inches per run
ROW_HEIGHT = 2.7
MAX_SAMPLES_DRAWN = 8       # probe samples drawn in the outputs panel
MAX_UNITS_DRAWN = 4
BOUNDARY_COLUMNS = 3        # decision boundary at this many steps side by side
GIF_MAX_FRAMES = 16
GIF_FRAME_MS = 350

UNIT_STYLES = ("-", "--", ":", "-.")
LAYER_CMAP = "tab10"
SAMPLE_CMAP = "Dark2"
HEAT_CMAP = "Reds"
BOUNDARY_CMAP = "RdBu_r"
BAND_COLOUR = "#2ca02c"
PIN_COLOUR = "0.45"


class MissingData(LookupError):
    """No run of the report holds what a panel needs; the message says what is missing."""


@dataclass(frozen=True)
class Picture:
    """One panel as the HTML and Markdown reports show it: an image, or why there is none."""

    name: str
    title: str
    caption: str
    png: bytes | None = None
    gif: bytes | None = None        # only the boundary panel animates
    note: str | None = None         # set when the panel was left out

    @property
    def drawn(self) -> bool:
        return self.png is not None


@dataclass(frozen=True)
class Panel:
    name: str
    title: str
    caption: str
    quantities: tuple[str, ...] = ()    # any of these, at any layer, feeds the panel
    events: tuple[str, ...] = ()        # ... or any of these event kinds
    outputs: bool = False               # needs probe-batch outputs
    draw: Callable[..., None] | None = None

    def missing(self, trace: Trace) -> str | None:
        """Why this run cannot be drawn (None when it can)."""
        if self.outputs:
            return None if trace.outputs is not None and trace.outputs.size else "no probe-batch outputs recorded"
        if any(_has_quantity(trace, q) for q in self.quantities):
            return None
        if any(trace.events_of(kind) for kind in self.events):
            return None
        wanted = [*self.quantities, *(f"'{kind}' events" for kind in self.events)]
        return "no " + " or ".join(wanted) + " recorded"


# -- public ---------------------------------------------------------------------------------


def figure(report, name: str, *, runs: Sequence[str] | None = None, **options: Any):
    """The Figure of one panel (see :data:`PANELS`) for the report's runs, side by side.

    ``runs`` picks and orders the columns (default: every run). Options:
    ``steps`` (boundary: how many steps side by side).
    """
    panel = _panel(name)
    traces = _traces(report, runs)
    notes = {t.name: panel.missing(t) for t in traces}
    if all(notes.values()):
        raise MissingData(f"panel {name!r}: " + "; ".join(f"{run}: {why}" for run, why in notes.items()))
    _, matplotlib = _mpl()
    with matplotlib.rc_context(_STYLE), np.errstate(over="ignore", invalid="ignore"):
        fig = _new_figure(1, len(traces))  # panels resize it to their grid
        panel.draw(fig, traces, notes, _Context(report, traces), **options)
    return fig


def available(report, runs: Sequence[str] | None = None) -> dict[str, str | None]:
    """Panel name -> None when it can be drawn, else a note saying why not. No drawing."""
    traces = _traces(report, runs)
    out: dict[str, str | None] = {}
    for name in PANELS:
        panel = _panel(name)
        notes = [panel.missing(t) for t in traces]
        out[name] = None if not all(notes) else f"{panel.title} left out: " + "; ".join(
            f"{t.name}: {why}" for t, why in zip(traces, notes)
        )
    return out


def gallery(report, *, dpi: int = DPI, animate: bool = True) -> list[Picture]:
    """Every panel as PNG bytes (plus the boundary GIF), or a note when it was left out."""
    pictures = []
    for name, note in available(report).items():
        panel = _panel(name)
        if note:
            pictures.append(Picture(name, panel.title, panel.caption, note=note))
            continue
        try:
            png = to_png(figure(report, name), dpi)
            gif = boundary_gif(report) if name == "boundary" and animate else None
        except Exception as exc:  # noqa: BLE001 - one broken picture must not cost the whole report
            note = f"{panel.title} could not be drawn (netdoctor error, please report it): {type(exc).__name__}: {exc}"
            pictures.append(Picture(name, panel.title, panel.caption, note=note))
            continue
        pictures.append(Picture(name, panel.title, panel.caption, png=png, gif=gif))
    return pictures


def to_png(fig, dpi: int = DPI) -> bytes:
    buffer = io.BytesIO()
    with np.errstate(over="ignore", invalid="ignore"):  # huge values on a log axis: drawn, not warned about
        # Light compression: a third faster to write than the default, files barely larger.
        fig.savefig(buffer, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


def boundary_gif(report, *, runs: Sequence[str] | None = None, dpi: int = GIF_DPI,
                 max_frames: int = GIF_MAX_FRAMES) -> bytes | None:
    """An animated GIF of the decision boundary evolving, runs side by side (None without data)."""
    traces = [t for t in _traces(report, runs) if _boundaries(t)]
    if not traces:
        return None
    Figure, matplotlib = _mpl()
    from matplotlib.animation import PillowWriter
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    frames_per_run = {t.name: _boundaries(t) for t in traces}
    n_frames = min(max(len(events) for events in frames_per_run.values()), max_frames)
    scale = _BoundaryScale.of(frames_per_run.values())
    with matplotlib.rc_context(_STYLE), np.errstate(over="ignore", invalid="ignore"):
        fig = Figure()
        FigureCanvasAgg(fig)
        grid = _grid(fig, 1, len(traces), height=2.6, width=2.6, sharey=True)
        _finish(fig, grid)
        axes = grid[0]
        writer = PillowWriter(fps=1000 / GIF_FRAME_MS)
        with tempfile.TemporaryDirectory(prefix="netdoctor-gif-") as folder:
            path = Path(folder) / "boundary.gif"
            views = [_BoundaryView(ax, t, frames_per_run[t.name][0], scale) for ax, t in zip(axes, traces)]
            for ax in axes:
                ax.set_aspect("equal", adjustable="box")
                # Every frame is a full redraw: without ticks it is a third of the work.
                # The still panel above the animation carries the axes' scale.
                ax.set_xticks([])
                ax.set_yticks([])
            with writer.saving(fig, str(path), dpi):
                for frame in range(n_frames):
                    for view, trace in zip(views, traces):
                        events = frames_per_run[trace.name]
                        event = events[_spread_index(frame, n_frames, len(events))]
                        view.show(event)
                        _title(view.ax, f"{trace.name} — step {_event_step(event)}")
                    writer.grab_frame()
            return path.read_bytes()


# -- shared drawing helpers -------------------------------------------------------------------

_STYLE = {
    # Run and layer names come from user code: a "$" in them must print, not start math text.
    "text.parse_math": False,
    "font.size": 8.5,
    "axes.titlesize": 9.5,
    "axes.labelsize": 8.5,
    "legend.fontsize": 7.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "y",  # horizontal lines read values; vertical ones only cost drawing time
    "grid.alpha": 0.25,
}


def _mpl():
    # Imported here, not at module top: drawing is the only thing that needs matplotlib.
    import matplotlib
    from matplotlib.figure import Figure

    return Figure, matplotlib


# Fixed margins in inches. Matplotlib's automatic layouts measure every tick label
# and cost more than the drawing itself; these panels have predictable furniture.
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_BOTTOM, MARGIN_TOP = 0.85, 0.2, 0.55, 0.4
ROW_GAP, COLUMN_GAP = 0.55, 0.25
COLORBAR_ROOM = 0.95


def _new_figure(rows: int, cols: int, height: float = ROW_HEIGHT):
    Figure, _ = _mpl()
    return Figure(figsize=(COLUMN_WIDTH * cols + MARGIN_LEFT + MARGIN_RIGHT, height * rows + 0.6))


def _grid(fig, rows: int, cols: int, height: float = ROW_HEIGHT, sharey: Any = "row",
          width: float = COLUMN_WIDTH, sharex: Any = False):
    from matplotlib.ticker import MaxNLocator

    fig.set_size_inches(width * cols + MARGIN_LEFT + MARGIN_RIGHT,
                        height * rows + MARGIN_BOTTOM + MARGIN_TOP + ROW_GAP * (rows - 1))
    axes = fig.subplots(rows, cols, squeeze=False, sharey=sharey, sharex=sharex)
    for ax in axes.flat:
        # Four ticks say as much as nine; every tick is five artists to build and draw,
        # and building ticks is the largest single cost of a panel.
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.yaxis.set_major_locator(MaxNLocator(4))
    return axes


def _finish(fig, axes, legend: tuple | None = None, right: float = 0.0, top: float = 0.0) -> None:
    """Place the axes with fixed margins, widening the figure for a legend or colour bar."""
    rows, cols = np.shape(axes)
    for row in np.atleast_2d(axes):
        # Runs share a y axis whose labels only the first column shows; when that column is
        # a note, the first drawn column must show them.
        drawn = [ax for ax in row if not getattr(ax, "netdoctor_note", False)]
        if drawn and drawn[0] is not row[0]:
            drawn[0].tick_params(labelleft=True)
    legend_width = _legend_width(*legend[1:3]) if legend else 0.0
    width, height = fig.get_size_inches()
    width += legend_width + right
    fig.set_size_inches(width, height)
    fig.subplots_adjust(
        left=MARGIN_LEFT / width,
        right=1 - (MARGIN_RIGHT + legend_width + right) / width,
        bottom=MARGIN_BOTTOM / height,
        top=1 - (MARGIN_TOP + top) / height,
        wspace=COLUMN_GAP * cols / max(1e-9, width - MARGIN_LEFT - MARGIN_RIGHT - legend_width - right),
        hspace=ROW_GAP * rows / max(1e-9, height - MARGIN_BOTTOM - MARGIN_TOP - top),
    )
    if legend:
        handles, labels, title = legend
        anchor_x = 1 - (legend_width + right) / width
        fig.legend(handles, labels, title=title, loc="upper left", bbox_to_anchor=(anchor_x, 1 - MARGIN_TOP / height),
                   frameon=False, alignment="left")


def _legend_width(labels: list[str], title: str | None) -> float:
    """Inches a legend needs: estimated from its longest text, without a costly measuring pass."""
    longest = max([len(str(label)) for label in labels] + [len(title or "") - 4])
    return 0.75 + longest * 0.075


def _colorbar(fig, mappable, axes_row, label: str) -> None:
    """A colour bar in the room `_finish(right=COLORBAR_ROOM)` left to the right of a row."""
    boxes = [ax.get_position() for ax in axes_row]
    x1 = max(b.x1 for b in boxes)
    y0, y1 = min(b.y0 for b in boxes), max(b.y1 for b in boxes)
    width = fig.get_size_inches()[0]
    cax = fig.add_axes([x1 + 0.15 / width, y0, 0.14 / width, y1 - y0])
    fig.colorbar(mappable, cax=cax, label=label)


class _Context:
    """What every panel needs to keep colours and scales the same across runs."""

    def __init__(self, report, traces: list[Trace]):
        self.report = report
        self.thresholds = report.thresholds
        layers: dict[str, None] = {}
        for trace in traces:
            for layer in trace.layers:
                layers.setdefault(layer)
        self.layers = list(layers)

    def layer_colour(self, layer: str):
        from matplotlib import colormaps

        cmap = colormaps[LAYER_CMAP]
        index = self.layers.index(layer) if layer in self.layers else len(self.layers)
        return cmap(index % cmap.N)


def _sample_colour(index: int):
    from matplotlib import colormaps

    cmap = colormaps[SAMPLE_CMAP]
    return cmap(index % cmap.N)


def _note(ax, text: str) -> None:
    """Stand-in for a run that cannot be drawn: a visible sentence, not an empty frame."""
    # tick_params, not set_ticks: ticks are shared with the other runs' axes, their look is not.
    ax.tick_params(left=False, labelleft=False, bottom=False, labelbottom=False)
    ax.netdoctor_note = True  # _finish gives the shared y labels to the next drawn axes
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes,
            color="0.35", fontsize=8.5)


def _has_quantity(trace: Trace, quantity: str) -> bool:
    layers = [MODEL, *trace.layers]
    return any(_finite(trace, quantity, layer)[0].size for layer in layers)


def _finite(trace: Trace, quantity: str, layer: str = MODEL) -> tuple[np.ndarray, np.ndarray]:
    steps, values = trace.series(quantity, layer)
    keep = np.isfinite(values)
    return steps[keep], values[keep]


def _first_nonfinite_step(trace: Trace) -> int | None:
    """First step whose loss turned NaN/Inf after being finite (or the model's nonfinite count)."""
    candidates = []
    steps, loss = trace.series("loss")
    finite = np.isfinite(loss)
    if finite.any():
        # NaN before the first finite value means "not recorded yet", not a blow-up.
        later = np.flatnonzero(~finite & (np.arange(loss.size) > np.argmax(finite)))
        if later.size:
            candidates.append(int(steps[later[0]]))
    steps, counts = trace.series("nonfinite")
    flagged = np.flatnonzero(np.nan_to_num(counts) > 0)
    if flagged.size:
        candidates.append(int(steps[flagged[0]]))
    return min(candidates) if candidates else None


def _step_axis(ax, bottom_row: bool = True) -> None:
    if bottom_row:
        _xlabel(ax, "step (parameter updates)")


def _title_runs(axes_row, traces: list[Trace]) -> None:
    for ax, trace in zip(axes_row, traces):
        status = trace.info.status
        _title(ax, trace.name if status == "completed" else f"{trace.name} ({status})")


def _xlabel(ax, text: str) -> None:
    # Fixed offsets from the axes, in inches: automatic placement measures every tick label.
    from matplotlib.transforms import ScaledTranslation

    ax.set_xlabel(text)
    ax.xaxis.set_label_coords(0.5, 0, transform=ax.transAxes + ScaledTranslation(
        0, -0.25, ax.figure.dpi_scale_trans))


def _ylabel(ax, text: str) -> None:
    from matplotlib.transforms import ScaledTranslation

    ax.set_ylabel(text)
    ax.yaxis.set_label_coords(0, 0.5, transform=ax.transAxes + ScaledTranslation(
        -0.5, 0, ax.figure.dpi_scale_trans))


def _title(ax, text: str) -> None:
    # A fixed title height: left to itself matplotlib measures every tick label to place it.
    ax.set_title(text, y=1.0, pad=5)


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _power_of_ten(value: float, _position=None) -> str:
    """'10⁻³' in plain Unicode: the default math-text labels cost a parser run per label."""
    if value <= 0 or not math.isfinite(value):
        return ""
    exponent = math.log10(value)
    if abs(exponent - round(exponent)) > 1e-9:
        return f"{value:.2g}"
    return "10" + str(int(round(exponent))).translate(_SUPERSCRIPT)


def _log_y(ax) -> None:
    from matplotlib.ticker import FuncFormatter, NullLocator

    ax.set_yscale("log")
    ax.yaxis.set_minor_locator(NullLocator())  # minor ticks cost more to draw than they tell
    ax.yaxis.set_major_formatter(FuncFormatter(_power_of_ten))


def _legend(axes, title: str | None = None) -> tuple | None:
    """(handles, labels, title) for one figure legend, from the first axes with labelled artists."""
    for ax in np.ravel(axes):
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            return handles, labels, title
    return None


def _log_ok(values: list[np.ndarray]) -> bool:
    joined = np.concatenate([v for v in values if v.size]) if any(v.size for v in values) else np.empty(0)
    return bool(joined.size) and bool((joined > 0).all())


# -- panels ------------------------------------------------------------------------------------


def _draw_loss(fig, traces, notes, ctx, **_):
    with_accuracy = any(_finite(t, "accuracy")[0].size for t in traces)
    rows = 2 if with_accuracy else 1
    axes = _grid(fig, rows, len(traces))
    _title_runs(axes[0], traces)
    loss_values = [_finite(t, q)[1] for t in traces for q in ("loss", "probe_loss")]
    log = _log_ok(loss_values)
    for col, trace in enumerate(traces):
        ax = axes[0][col]
        if notes[trace.name] or not (_finite(trace, "loss")[0].size or _finite(trace, "probe_loss")[0].size):
            _note(ax, f"{trace.name}: {notes[trace.name] or 'no loss recorded'}")
        else:
            has_probe = _finite(trace, "probe_loss")[0].size > 0
            steps, loss = _finite(trace, "loss")
            if steps.size:
                ax.plot(steps, loss, color="C0", lw=0.8 if has_probe else 1.4,
                        alpha=0.35 if has_probe else 1.0, label="loss (batch of each step)")
            if has_probe:
                steps, loss = _finite(trace, "probe_loss")
                ax.plot(steps, loss, color="C0", lw=1.6, label="loss on the probe batch")
            bad = _first_nonfinite_step(trace)
            if bad is not None:
                ax.axvline(bad, color="C3", lw=1, ls="--", label="first NaN/Inf")
            if log:
                _log_y(ax)
        if col == 0:
            _ylabel(ax, "loss" + (" (log)" if log else ""))
        _step_axis(ax, rows == 1)
        if with_accuracy:
            ax = axes[1][col]
            steps, acc = _finite(trace, "accuracy")
            if steps.size:
                ax.plot(steps, acc, color="C2", lw=1.4, label="accuracy (probe batch)")
                ax.set_ylim(-0.05, 1.05)
                ax.set_yticks([0, 0.5, 1])
            else:
                _note(ax, "no accuracy recorded")
            if col == 0:
                _ylabel(ax, "accuracy")
            _step_axis(ax)
    _finish(fig, axes, legend=_legend(axes))


def _probe_label(trace: Trace, sample: int) -> str:
    inputs = trace.probe_inputs
    if inputs is None:
        return f"sample {sample}"
    row = np.asarray(inputs)[sample].reshape(-1)
    if row.size > 4:
        return f"sample {sample}"
    return "x=(" + ", ".join(f"{v:g}" for v in row) + ")"


def _probe_targets(trace: Trace, n_samples: int, n_units: int) -> np.ndarray | None:
    """Targets laid out like the outputs (samples, units), or None when they do not fit."""
    if trace.probe_targets is None:
        return None
    targets = np.asarray(trace.probe_targets, dtype=float)
    if targets.shape[:1] != (n_samples,):
        return None
    targets = targets.reshape(n_samples, -1)
    if targets.shape[1] == n_units:
        return targets
    if targets.shape[1] == 1 and n_units > 1:  # class labels for a one-hot output
        labels = targets[:, 0]
        if np.all(labels == np.round(labels)) and labels.min() >= 0 and labels.max() < n_units:
            return np.eye(n_units)[labels.astype(int)]
    return None


def _draw_outputs(fig, traces, notes, ctx, **_):
    axes = _grid(fig, 1, len(traces), height=ROW_HEIGHT + 0.6)
    _title_runs(axes[0], traces)
    for col, trace in enumerate(traces):
        ax = axes[0][col]
        if notes[trace.name]:
            _note(ax, f"{trace.name}: {notes[trace.name]}")
            continue
        outputs = trace.outputs
        steps = trace.steps
        n_samples, n_units = outputs.shape[1], outputs.shape[2]
        shown_samples = min(n_samples, MAX_SAMPLES_DRAWN)
        shown_units = min(n_units, MAX_UNITS_DRAWN)
        targets = _probe_targets(trace, n_samples, n_units)
        for s in range(shown_samples):
            for u in range(shown_units):
                label = _probe_label(trace, s) + (f", unit {u}" if n_units > 1 else "")
                ax.plot(steps, outputs[:, s, u], color=_sample_colour(s),
                        ls=UNIT_STYLES[u % len(UNIT_STYLES)], lw=1.3, label=label)
                if targets is not None and steps.size:
                    ax.plot([steps[-1]], [targets[s, u]], marker="o", ms=6, mfc="none",
                            mec=_sample_colour(s), ls="none")
        lo, hi = np.nanmin(outputs), np.nanmax(outputs)
        if np.isfinite(lo) and np.isfinite(hi) and lo >= -1e-9 and hi <= 1 + 1e-9:
            # Probabilities: a pin at 0.5 should stand out against the full [0, 1] range.
            ax.axhline(0.5, color=PIN_COLOUR, lw=0.8, ls=(0, (1, 2)), zorder=0)
            ax.set_ylim(-0.04, 1.04)
            ax.set_yticks([0, 0.25, 0.5, 0.75, 1])
        dropped = []
        if shown_samples < n_samples:
            dropped.append(f"{shown_samples} of {n_samples} probe samples")
        if shown_units < n_units:
            dropped.append(f"{shown_units} of {n_units} output units")
        if dropped:
            ax.text(0.01, 0.01, "showing " + ", ".join(dropped), transform=ax.transAxes,
                    fontsize=7, color="0.4")
        if col == 0:
            _ylabel(ax, "output on each probe input")
        _step_axis(ax)
    _finish(fig, axes, legend=_legend(axes, title="probe input (○ = target)"))


def _draw_per_layer(fig, traces, notes, ctx, quantity: str, ylabel: str, band=None, error_band=None):
    axes = _grid(fig, 1, len(traces))
    _title_runs(axes[0], traces)
    all_values = [_finite(t, quantity, layer)[1] for t in traces for layer in t.layers]
    log = _log_ok([v[v > 0] for v in all_values]) and any(v.size for v in all_values)
    for col, trace in enumerate(traces):
        ax = axes[0][col]
        if col == 0:
            _ylabel(ax, ylabel + (" (log)" if log else ""))
        drawn = False
        zero_layers = []
        for layer in trace.layers:
            steps, values = _finite(trace, quantity, layer)
            if not steps.size:
                continue
            if log:
                positive = values > 0
                if not positive.all():
                    zero_layers.append(layer)
                steps, values = steps[positive], values[positive]
            ax.plot(steps, values, color=ctx.layer_colour(layer), lw=1.3, label=layer)
            drawn = True
        if not drawn:
            _note(ax, f"{trace.name}: {notes[trace.name] or f'no per-layer {quantity} recorded'}")
            continue
        if band is not None:
            ax.axhspan(band[0], band[1], color=BAND_COLOUR, alpha=0.13, lw=0,
                       label=f"healthy band [{band[0]:g}, {band[1]:g}]")
        if error_band is not None:
            for edge in error_band:
                ax.axhline(edge, color="C3", lw=0.8, ls=":")
        if log:
            _log_y(ax)
        if zero_layers:
            ax.text(0.01, 0.01, "exactly 0 at some steps (not drawn on log scale): " + ", ".join(zero_layers),
                    transform=ax.transAxes, fontsize=7, color="C3")
        _step_axis(ax)
    _finish(fig, axes, legend=_legend(axes))


def _draw_grad_norm(fig, traces, notes, ctx, **_):
    _draw_per_layer(fig, traces, notes, ctx, "grad_norm", "weight-gradient norm")


def _draw_update_ratio(fig, traces, notes, ctx, **_):
    t = ctx.thresholds
    _draw_per_layer(fig, traces, notes, ctx, "update_ratio", "|update| / |weights|",
                    band=t.update_ratio_warn, error_band=t.update_ratio_error)


def _step_edges(steps: np.ndarray) -> np.ndarray:
    """Cell edges for a heatmap over (possibly thinned) recorded steps."""
    steps = steps.astype(float)
    if steps.size == 1:
        return np.array([steps[0] - 0.5, steps[0] + 0.5])
    middle = (steps[:-1] + steps[1:]) / 2
    return np.concatenate([[steps[0] - (middle[0] - steps[0])], middle, [steps[-1] + (steps[-1] - middle[-1])]])


_HEAT_ROWS = {
    "sat_frac": "saturated fraction (|z| ≥ {z:g})",
    "dead_frac": "dead-unit fraction",
}


def _draw_saturation(fig, traces, notes, ctx, **_):
    from matplotlib import colormaps

    quantities = [q for q in _HEAT_ROWS if any(_has_quantity(t, q) for t in traces)]
    layers = ctx.layers
    axes = _grid(fig, len(quantities), len(traces), height=max(1.6, 0.45 * len(layers) + 1.1), sharey=True)
    _title_runs(axes[0], traces)
    cmap = colormaps[HEAT_CMAP].with_extremes(bad="0.92")
    axes[0][0].set_ylim(-0.5, len(layers) - 0.5)
    axes[0][0].invert_yaxis()  # first layer on top, like reading the network forwards
    meshes = []
    for row, quantity in enumerate(quantities):
        mesh = None
        for col, trace in enumerate(traces):
            ax = axes[row][col]
            if col == 0:
                _ylabel(ax, _HEAT_ROWS[quantity].format(z=ctx.thresholds.saturation_z))
            steps = trace.steps
            if not steps.size or not _has_quantity(trace, quantity):
                _note(ax, f"{trace.name}: no {quantity} recorded")
                continue
            grid = np.full((len(layers), steps.size), np.nan)
            for i, layer in enumerate(layers):
                values = trace.recorder.column(layer, quantity)
                if values is not None:
                    grid[i] = values
                if not np.isfinite(grid[i]).any():  # say so, rather than leave a grey band to guess at
                    ax.text(float(steps.mean()), i, "not recorded", ha="center", va="center",
                            fontsize=7.5, color="0.4")
            mesh = ax.pcolormesh(_step_edges(steps), np.arange(len(layers) + 1) - 0.5,
                                 np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=1, shading="flat")
            ax.set_yticks(range(len(layers)), layers)
            ax.grid(False)
            _step_axis(ax, row == len(quantities) - 1)
        meshes.append(mesh)
    _finish(fig, axes, right=COLORBAR_ROOM)
    for row, mesh in enumerate(meshes):
        if mesh is not None:
            _colorbar(fig, mesh, axes[row], "fraction")


def _activation_hists(trace: Trace) -> dict[str, list]:
    by_layer: dict[str, list] = {}
    for event in trace.events_of("activation_hist"):
        if event.layer is None or "edges" not in event.data or "counts" not in event.data:
            continue
        by_layer.setdefault(event.layer, []).append(event)
    for events in by_layer.values():
        events.sort(key=lambda e: -1 if e.step is None else e.step)
    return by_layer


def _draw_activations(fig, traces, notes, ctx, **_):
    if any(_activation_hists(t) for t in traces):
        _draw_activation_histograms(fig, traces, ctx)
    else:
        _draw_activation_moments(fig, traces, notes, ctx)


def _draw_activation_histograms(fig, traces, ctx):
    """Each run's recorded histograms, every layer in one axes: dashed first, solid last."""
    from matplotlib.lines import Line2D

    axes = _grid(fig, 1, len(traces), height=ROW_HEIGHT + 0.3, sharey=True)
    _title_runs(axes[0], traces)
    for col, trace in enumerate(traces):
        ax = axes[0][col]
        hists = _activation_hists(trace)
        if not hists:
            _note(ax, f"{trace.name}: no activation histograms recorded")
            continue
        for layer in ctx.layers:
            events = hists.get(layer, [])
            if not events:
                continue
            for event, style in ((events[0], "--"), (events[-1], "-")):
                edges = np.asarray(event.data["edges"], dtype=float)
                counts = np.asarray(event.data["counts"], dtype=float)
                ax.stairs(counts, edges, color=ctx.layer_colour(layer), ls=style, lw=1.3)
        first = min(e[0].step for e in hists.values() if e[0].step is not None) if hists else None
        last = max(e[-1].step for e in hists.values() if e[-1].step is not None) if hists else None
        ax.text(0.99, 0.97, f"steps {first} → {last}", transform=ax.transAxes, ha="right", va="top",
                fontsize=7, color="0.35")
        _xlabel(ax, "activation")
        if col == 0:
            _ylabel(ax, "count")
    handles = [Line2D([], [], color=ctx.layer_colour(layer)) for layer in ctx.layers]
    handles += [Line2D([], [], color="0.3", ls="--"), Line2D([], [], color="0.3", ls="-")]
    labels = [*ctx.layers, "first recorded step", "last recorded step"]
    _finish(fig, axes, legend=(handles, labels, None))


def _draw_activation_moments(fig, traces, notes, ctx):
    """Only mean and std were recorded: draw exactly those, first step against last."""
    layers = ctx.layers
    axes = _grid(fig, 1, len(traces), sharey=True)
    _title_runs(axes[0], traces)
    for col, trace in enumerate(traces):
        ax = axes[0][col]
        drawn = False
        for which, offset, fill in (("first", -0.12, "none"), ("last", 0.12, None)):
            for i, layer in enumerate(layers):
                steps, mean = trace.series("act_mean", layer)
                _, std = trace.series("act_std", layer)
                ok = np.flatnonzero(np.isfinite(mean))
                if not ok.size:
                    continue
                k = ok[0] if which == "first" else ok[-1]
                # A std that is not a valid spread (NaN, negative) is left undrawn, not guessed.
                spread = std[k] if std.size > k and np.isfinite(std[k]) and std[k] >= 0 else None
                colour = ctx.layer_colour(layer)
                ax.errorbar(i + offset, mean[k], yerr=spread, fmt="o", color=colour, capsize=3,
                            mfc=fill if fill else colour,
                            label=f"{which} recorded step" if i == 0 else None)
                drawn = True
        if not drawn:
            _note(ax, f"{trace.name}: {notes[trace.name] or 'no activation statistics recorded'}")
            continue
        ax.set_xticks(range(len(layers)), layers)
        ax.set_xlim(-0.6, len(layers) - 0.4)
        if col == 0:
            _ylabel(ax, "activation mean ± 1 std")
    fig.suptitle("recorded: each layer's activation mean ± 1 std (no histograms)", fontsize=8, color="0.3")
    _finish(fig, axes, legend=_legend(axes), top=0.2)


# -- decision boundary ---------------------------------------------------------------------------


def _boundaries(trace: Trace) -> list:
    events = [e for e in trace.events_of("boundary") if {"xx", "yy", "zz"} <= set(e.data)]
    return sorted(events, key=_event_step)


def _event_step(event) -> int:
    step = event.data.get("step", event.step)
    return -1 if step is None else int(step)


def _spread_index(i: int, n_out: int, n_in: int) -> int:
    """The i-th of n_out picks spread evenly over n_in items (first and last included)."""
    if n_out <= 1 or n_in <= 1:
        return n_in - 1 if n_out == 1 else 0
    return int(round(i * (n_in - 1) / (n_out - 1)))


@dataclass(frozen=True)
class _BoundaryScale:
    lo: float
    hi: float

    @classmethod
    def of(cls, event_lists) -> "_BoundaryScale":
        lows, highs = [], []
        for events in event_lists:
            for event in events:
                zz = np.asarray(event.data["zz"], dtype=float)
                finite = zz[np.isfinite(zz)]
                if finite.size:
                    lows.append(finite.min())
                    highs.append(finite.max())
        lo, hi = (min(lows), max(highs)) if lows else (0.0, 1.0)
        if lo >= 0 and hi <= 1:  # probabilities: always the full range, so 0.5 looks like 0.5
            return cls(0.0, 1.0)
        if math.isclose(lo, hi):
            return cls(lo - 0.5, hi + 0.5)
        return cls(lo, hi)


class _BoundaryView:
    """One run's decision boundary in one axes; `show` swaps in another step cheaply.

    A colour mesh (not filled contours: a GIF frame then costs an array swap, not
    a re-triangulation) with the decision level drawn as a black contour line.
    """

    def __init__(self, ax, trace: Trace, event, scale: _BoundaryScale):
        self.ax = ax
        self.level = float(event.data.get("level", 0.5))
        self.line = None
        xx = np.asarray(event.data["xx"], dtype=float)
        yy = np.asarray(event.data["yy"], dtype=float)
        # One flat cell per grid point: exactly the values the model gave, and the cheapest
        # to draw and compress (smooth shading tripled the cost and the file size).
        self.mesh = ax.pcolormesh(xx, yy, self._z(event), cmap=BOUNDARY_CMAP, vmin=scale.lo, vmax=scale.hi,
                                  shading="auto")
        self.xx, self.yy = xx, yy
        ax.grid(False)
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.yaxis.set_major_locator(MaxNLocator(4))
        self._points(trace)
        self.show(event, first=True)

    @staticmethod
    def _z(event):
        return np.ma.masked_invalid(np.asarray(event.data["zz"], dtype=float))

    def show(self, event, first: bool = False) -> None:
        zz = self._z(event)
        if not first:
            self.mesh.set_array(zz)
        if self.line is not None:
            self.line.remove()
            self.line = None
        if zz.count() and zz.min() < self.level < zz.max():
            self.line = self.ax.contour(self.xx, self.yy, zz, levels=[self.level], colors="k", linewidths=1.2)

    def _points(self, trace: Trace) -> None:
        inputs, targets = trace.probe_inputs, trace.probe_targets
        if inputs is None or np.asarray(inputs).ndim != 2 or np.asarray(inputs).shape[1] != 2:
            return
        points = np.asarray(inputs, dtype=float)
        colours = "k"
        if targets is not None:
            t = np.asarray(targets, dtype=float)
            t = t.argmax(axis=1) if t.ndim == 2 and t.shape[1] > 1 else t.reshape(-1)
            if t.shape[0] == points.shape[0]:
                colours = [BOUNDARY_POINT_COLOURS[int(v > 0.5)] for v in t]
        # White and black dots stay visible on both ends of the red-blue colour map.
        self.ax.scatter(points[:, 0], points[:, 1], c=colours, edgecolors="k", linewidths=1.2, s=46, zorder=3)


BOUNDARY_POINT_COLOURS = ("white", "black")  # class 0, class 1


def _draw_boundaries(fig, traces, notes, ctx, steps: int = BOUNDARY_COLUMNS, **_):
    per_run = {t.name: _boundaries(t) for t in traces}
    columns = max(1, min(steps, max(len(v) for v in per_run.values())))
    scale = _BoundaryScale.of(per_run.values())
    axes = _grid(fig, len(traces), columns, height=2.5, width=2.5, sharey=True, sharex=True)
    mappable = None
    for row, trace in enumerate(traces):
        events = per_run[trace.name]
        for col in range(columns):
            ax = axes[row][col]
            if not events:
                _note(ax, f"{trace.name}: {notes[trace.name] or 'no boundary events'}" if col == 0 else "")
                continue
            event = events[_spread_index(col, columns, len(events))]
            mappable = _BoundaryView(ax, trace, event, scale).mesh
            _title(ax, f"{trace.name} — step {_event_step(event)}")
            ax.set_aspect("equal", adjustable="box")
    _finish(fig, axes, right=COLORBAR_ROOM)
    if mappable is not None:
        _colorbar(fig, mappable, axes.ravel(), "model score (class 1)")


# -- registry -------------------------------------------------------------------------------------

_PANELS: dict[str, Panel] = {
    panel.name: panel
    for panel in (
        Panel("loss", "Loss and accuracy",
              "Training loss over steps (and probe-batch accuracy for classifiers). "
              "A stuck network stays flat; a healthy one falls.",
              quantities=("loss", "probe_loss"), draw=_draw_loss),
        Panel("outputs", "Outputs on the probe inputs",
              "Each line is the network's output for one probe input (and output unit); "
              "circles mark the targets. Lines pinned at one value do not depend on the input.",
              outputs=True, draw=_draw_outputs),
        Panel("grad_norm", "Gradient norm per layer",
              "L2 norm of each layer's weight gradient, log scale. Layers far below the others "
              "learn nothing (vanishing); growth without bound is exploding.",
              quantities=("grad_norm",), draw=_draw_grad_norm),
        Panel("saturation", "Saturated and dead units",
              "Per layer and step: the fraction of saturated pre-activations and of dead units. "
              "Dark cells are units that pass almost no gradient; grey cells were not recorded.",
              quantities=("sat_frac", "dead_frac"), draw=_draw_saturation),
        Panel("update_ratio", "Update / weight ratio",
              "Size of each step's weight change relative to the weights. The shaded band is the "
              "healthy range (Thresholds.update_ratio_warn); dotted lines are the error limits.",
              quantities=("update_ratio",), draw=_draw_update_ratio),
        Panel("activations", "Activations, first step against last",
              "How each layer's activations are distributed at the first and at the last "
              "recorded step.",
              quantities=("act_mean",), events=("activation_hist",), draw=_draw_activations),
        Panel("boundary", "Decision boundary",
              "The model's score over the 2-D input space at a few steps; the black line is the "
              "decision boundary; dots are the probe inputs (white: class 0, black: class 1).",
              events=("boundary",), draw=_draw_boundaries),
    )
}
assert tuple(_PANELS) == PANELS


def _panel(name: str) -> Panel:
    try:
        return _PANELS[name]
    except KeyError:
        raise KeyError(f"no panel {name!r}; panels are: {', '.join(PANELS)}") from None


def _traces(report, runs: Sequence[str] | None) -> list[Trace]:
    names = list(report.runs) if runs is None else list(runs)
    unknown = [n for n in names if n not in report.runs]
    if unknown:
        raise KeyError(f"no run {unknown[0]!r}; runs are: {', '.join(report.runs)}")
    return [report.runs[n] for n in names]
