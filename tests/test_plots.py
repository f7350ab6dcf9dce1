"""Pictures: every panel draws what the trace holds, shares axes across runs, and
skips itself with a note when its data is missing."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netdoctor.config import Thresholds
from netdoctor.render import plots
from netdoctor.render.specimen import LAYERS, specimen_report
from netdoctor.report import Report
from netdoctor.trace import MODEL, Recorder, Trace
from netdoctor.types import RunInfo

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report():
    return specimen_report(steps=60)


def _loss_only(name: str = "lonely", steps: int = 20) -> Trace:
    recorder = Recorder()
    for k in range(steps):
        recorder.record(k, {(MODEL, "loss"): 1.0 / (k + 1)})
    return Trace(RunInfo(name=name, steps=steps), recorder)


def _lines_by_label(ax) -> dict[str, object]:
    return {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}


# -- every panel ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", plots.PANELS)
def test_each_panel_is_a_figure_with_one_column_per_run(report, name):
    from matplotlib.figure import Figure

    fig = plots.figure(report, name)
    assert isinstance(fig, Figure)
    titles = " ".join(ax.get_title() for ax in fig.axes)
    for run in report.runs:
        assert run in titles
    assert plots.to_png(fig, dpi=40).startswith(PNG_SIGNATURE)


def test_unknown_panel_names_the_known_ones(report):
    with pytest.raises(KeyError, match="grad_norm"):
        plots.figure(report, "no-such-panel")


def test_report_figure_is_the_same_panel(report):
    fig = report.figure("grad_norm")
    assert {ax.get_title() for ax in fig.axes if ax.get_title()} == set(report.runs)


def test_matplotlib_is_imported_only_to_draw_and_pyplot_never():
    code = (
        "import sys\n"
        "from netdoctor.render import plots, text, verdict\n"
        "from netdoctor.render.specimen import specimen_report\n"
        "r = specimen_report(steps=20)\n"
        "print(r.render('text')[:10])\n"
        "assert 'matplotlib' not in sys.modules, 'text report imported matplotlib'\n"
        "for name in plots.PANELS: plots.figure(r, name)\n"
        "plots.boundary_gif(r)\n"
        "assert 'matplotlib' in sys.modules\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


# -- runs compare at a glance -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["loss", "outputs", "grad_norm", "update_ratio", "activations"])
def test_runs_share_their_y_axis(report, name):
    fig = plots.figure(report, name)
    first_row = [ax for ax in fig.axes if ax.get_title() in report.runs][:2]
    assert len(first_row) == 2
    assert first_row[0].get_shared_y_axes().joined(first_row[0], first_row[1])
    assert first_row[0].get_ylim() == first_row[1].get_ylim()


def test_a_layer_has_the_same_colour_in_every_run(report):
    fig = plots.figure(report, "grad_norm")
    left, right = (_lines_by_label(ax) for ax in fig.axes[:2])
    for layer in LAYERS:
        assert left[layer].get_color() == right[layer].get_color()
    assert len({left[layer].get_color() for layer in LAYERS}) == len(LAYERS)


def test_gradient_norm_is_drawn_on_a_log_scale_from_the_trace(report):
    fig = plots.figure(report, "grad_norm")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    steps, values = report.runs["original"].series("grad_norm", "layer2")
    line = _lines_by_label(ax)["layer2"]
    np.testing.assert_array_equal(line.get_xdata(), steps)
    np.testing.assert_array_equal(line.get_ydata(), values)


def test_every_probe_output_is_drawn_as_recorded(report):
    trace = report.runs["original"]
    fig = plots.figure(report, "outputs")
    ax = fig.axes[0]
    drawn = [line for line in ax.get_lines() if len(line.get_xdata()) == len(trace.steps)]
    n_samples, n_units = trace.outputs.shape[1:]
    assert len(drawn) == n_samples * n_units
    expected = sorted(tuple(trace.outputs[:, s, u]) for s in range(n_samples) for u in range(n_units))
    assert sorted(tuple(line.get_ydata()) for line in drawn) == expected
    # Probabilities are shown on their full range, so a pin at 0.5 reads as "half".
    low, high = ax.get_ylim()
    assert low <= 0 and high >= 1


def test_healthy_band_is_the_configured_threshold():
    from matplotlib.patches import Rectangle

    base = specimen_report(steps=30)
    band = (3e-4, 3e-2)
    report = Report(base.runs, base.findings, thresholds=Thresholds().with_(update_ratio_warn=band))
    fig = plots.figure(report, "update_ratio")
    for ax in fig.axes[:2]:
        spans = [p for p in ax.patches if isinstance(p, Rectangle)]
        assert len(spans) == 1, "expected one shaded band"
        low, high = spans[0].get_y(), spans[0].get_y() + spans[0].get_height()
        assert (low, high) == pytest.approx(band)


def test_heatmap_cells_are_the_recorded_fractions(report):
    fig = plots.figure(report, "saturation")
    ax = fig.axes[0]
    mesh = ax.collections[0]
    trace = report.runs["original"]
    cells = np.asarray(mesh.get_array()).reshape(len(LAYERS), len(trace.steps))
    for i, layer in enumerate(LAYERS):
        np.testing.assert_allclose(cells[i], trace.series("sat_frac", layer)[1])
    assert mesh.get_clim() == (0, 1)


# -- activations: histograms when recorded, otherwise only what exists --------------------------


def test_activations_without_histograms_say_so_and_draw_mean_and_std(report):
    fig = plots.figure(report, "activations")
    assert "no histograms" in fig.get_suptitle()
    trace = report.runs["original"]
    markers = [line for line in fig.axes[0].get_lines() if line.get_marker() == "o"]
    for layer in LAYERS:  # one hollow (first step) and one filled (last step) point per layer
        means = trace.series("act_mean", layer)[1]
        for recorded in (means[0], means[-1]):
            assert any(np.isclose(line.get_ydata()[0], recorded) for line in markers)


def test_activations_with_histograms_draw_them_first_and_last():
    report = specimen_report(steps=30, histograms=True)
    fig = plots.figure(report, "activations")
    from matplotlib.patches import StepPatch

    steps = [p for ax in fig.axes for p in ax.patches if isinstance(p, StepPatch)]
    assert len(steps) == 2 * len(LAYERS) * len(report.runs)
    assert "no histograms" not in (fig.get_suptitle() or "")


# -- missing data -------------------------------------------------------------------------------------


def test_a_panel_without_data_is_left_out_with_a_note():
    report = Report([_loss_only()])
    notes = plots.available(report)
    assert notes["loss"] is None
    for name in ("outputs", "grad_norm", "saturation", "update_ratio", "activations", "boundary"):
        assert notes[name] and "lonely" in notes[name]
        with pytest.raises(plots.MissingData):
            plots.figure(report, name)
    pictures = plots.gallery(report)
    assert [p.name for p in pictures if p.drawn] == ["loss"]
    assert all(p.note for p in pictures if not p.drawn)
    assert plots.boundary_gif(report) is None


def test_a_run_without_data_gets_a_note_beside_the_run_that_has_it(report):
    mixed = Report([report.runs["original"], _loss_only("no-grads")])
    fig = plots.figure(mixed, "grad_norm")
    texts = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert "no-grads" in texts and "grad_norm" in texts


def test_a_loss_that_turns_nan_is_marked_where_it_happened():
    recorder = Recorder()
    for k in range(30):
        recorder.record(k, {(MODEL, "loss"): 0.7 if k < 17 else float("nan")})
    report = Report([Trace(RunInfo(name="blowup", steps=30), recorder)])
    fig = plots.figure(report, "loss")
    marks = [line for line in fig.axes[0].get_lines() if line.get_label() == "first NaN/Inf"]
    assert marks and marks[0].get_xdata()[0] == 17


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(0.0)),
                min_size=1, max_size=12))
def test_odd_values_never_crash_a_panel(values):
    recorder = Recorder()
    for k, value in enumerate(values):
        recorder.record(k, {(MODEL, "loss"): value, ("layer1", "grad_norm"): value,
                            ("layer1", "update_ratio"): value, ("layer1", "sat_frac"): value,
                            ("layer1", "act_mean"): value, ("layer1", "act_std"): value},
                        outputs=np.full((2, 1), value))
    report = Report([Trace(RunInfo(name="odd", steps=len(values)), recorder)])
    for name, note in plots.available(report).items():
        if note is None:
            plots.to_png(plots.figure(report, name), dpi=20)


# -- decision boundary --------------------------------------------------------------------------


def test_boundary_panel_shows_a_few_steps_of_each_run(report):
    fig = plots.figure(report, "boundary", steps=3)
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titled) == 3 * len(report.runs)
    recorded = sorted(e.step for e in report.runs["fixed"].events_of("boundary"))
    shown = [int(t.rsplit("step ", 1)[1]) for t in titled if t.startswith("fixed")]
    assert shown[0] == recorded[0] and shown[-1] == recorded[-1]


def test_boundary_gif_is_an_animation_of_every_run(report):
    from PIL import Image

    gif = plots.boundary_gif(report)
    assert gif[:6] == b"GIF89a"
    image = Image.open(io.BytesIO(gif))
    frames = len(report.runs["fixed"].events_of("boundary"))
    assert image.n_frames == min(frames, plots.GIF_MAX_FRAMES)


def test_user_names_are_printed_literally_in_pictures():
    odd = r"cost $\frac{1}{$ run_1"
    report = specimen_report(names=(odd, "fixed"), steps=10)
    for name in plots.PANELS:
        fig = plots.figure(report, name)
        plots.to_png(fig, dpi=20)  # math text would fail to parse here
        titles = [ax.get_title() for ax in fig.axes]
        assert any(odd in title for title in titles), name


def test_a_panel_that_fails_is_noted_and_the_others_still_draw(monkeypatch):
    report = specimen_report(steps=10, boundary=False)
    broken = plots._PANELS["grad_norm"]

    def explode(*_, **__):
        raise RuntimeError("deliberately broken panel")

    monkeypatch.setitem(plots._PANELS, "grad_norm", plots.Panel(**{**broken.__dict__, "draw": explode}))
    pictures = {p.name: p for p in plots.gallery(report)}
    assert not pictures["grad_norm"].drawn
    assert "deliberately broken panel" in pictures["grad_norm"].note
    assert pictures["loss"].drawn and pictures["outputs"].drawn


def test_when_the_first_run_is_a_note_the_next_one_shows_the_shared_scale(report):
    mixed = Report([_loss_only("no-grads"), report.runs["original"]])
    fig = plots.figure(mixed, "grad_norm")
    note_ax, drawn_ax = fig.axes[:2]
    assert note_ax.yaxis.get_tick_params(which="major").get("labelleft") is False
    assert drawn_ax.yaxis.get_tick_params(which="major").get("labelleft") is True
