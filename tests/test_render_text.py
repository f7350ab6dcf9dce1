"""The terminal summary and the verdict shared by every format: root cause first,
where it is (with the source lines), the fix, then the runs side by side."""

from __future__ import annotations

import subprocess
import sys

import pytest

from netdoctor.render import text, verdict
from netdoctor.render.specimen import specimen_report
from netdoctor.report import Report
from netdoctor.trace import Trace
from netdoctor.types import Finding, Location, RunInfo, Severity


def _finding(code, symbol, severity="error", run="original", message="m", location=None, **kw):
    return Finding(code, symbol, Severity.parse(severity), run, message, location=location, **kw)


def _report(findings, runs=("original",), **info):
    from conftest import observed_trace

    # Runs are fully observed (outputs, loss, updates) unless told `observed=False`.
    traces = []
    for name in runs:
        facts = dict(info.get(name, {}))
        observed = facts.pop("observed", True)
        traces.append(observed_trace(name, **facts) if observed else Trace(RunInfo(name=name, **facts)))
    return Report(traces, findings)


@pytest.fixture(scope="module")
def specimen():
    return specimen_report(steps=30)


# -- which finding leads --------------------------------------------------------------------------


def test_root_cause_outranks_the_symptom_it_explains():
    pinned = _finding("ND101", "output-pinned", message="outputs stay at 0.5")
    cause = _finding("ND303", "activation-mismatch", message="sigmoid twice",
                     location=Location("net.py", 12, "Net.act"))
    v = verdict.build(_report([pinned, cause]))
    assert v.primary.cause.finding is cause
    assert [s.finding for s in v.primary.symptoms] == [pinned]


def test_only_a_symptom_still_leads_when_nothing_explains_it():
    pinned = _finding("ND101", "output-pinned")
    v = verdict.build(_report([pinned]))
    assert v.primary.cause.finding is pinned
    assert v.primary.symptoms == ()


def test_a_located_cause_beats_an_unlocated_one_of_the_same_severity():
    vague = _finding("ND201", "vanishing-gradient")
    located = _finding("ND402", "same-sign-init", location=Location("net.py", 3, "Net.init"))
    assert verdict.build(_report([vague, located])).primary.cause.finding is located
    # ... but severity comes before location.
    worse = _finding("ND201", "vanishing-gradient", "error")
    milder = _finding("ND402", "same-sign-init", "warning", location=Location("net.py", 3))
    assert verdict.build(_report([milder, worse])).primary.cause.finding is worse


def test_info_findings_never_make_a_headline():
    report = _report([_finding("ND501", "update-ratio", "info")])
    v = verdict.build(report)
    assert v.ok and v.causes == ()
    assert "healthy" in v.title


def test_a_crashed_run_says_how_it_crashed():
    report = _report([], original={"status": "crashed",
                                   "error": "Traceback (most recent call last):\n  x\nValueError: shapes (2,3) (4,)"})
    v = verdict.build(report)
    assert not v.ok
    assert v.primary.crash == "ValueError: shapes (2,3) (4,)"
    assert "crashed" in v.title and "ValueError" in v.title


# -- where: source lines ----------------------------------------------------------------------------


def test_source_lines_come_from_the_finding_when_it_carries_them():
    loc = Location("gone.py", 8, "f", source=((7, "def f(x):"), (8, "    return 1 / (1 + expit(-x))")))
    ex = verdict.excerpt(loc)
    assert ex.lines == loc.source and ex.focus == 8


def test_source_lines_are_read_from_the_file_when_it_exists(tmp_path):
    script = tmp_path / "train.py"
    lines = [f"line_{n} = {n}" for n in range(1, 21)]
    script.write_text("\n".join(lines) + "\n")
    ex = verdict.excerpt(Location(str(script), 10, "main"))
    assert ex.focus == 10
    assert dict(ex.lines)[10] == lines[9]
    assert min(dict(ex.lines)) < 10 < max(dict(ex.lines))
    assert verdict.excerpt(Location(str(script), 999)) is None          # past the end
    assert verdict.excerpt(Location(str(tmp_path / "missing.py"), 3)) is None


def test_text_shows_where_with_the_offending_line_marked(tmp_path):
    script = tmp_path / "net.py"
    script.write_text("import numpy as np\n\ndef act(v):\n    return 1 / (1 + expit(-v))\n\nx = 1\n")
    cause = _finding("ND303", "activation-mismatch", message="sigmoid applied twice",
                     location=Location(str(script), 4, "act"), fix="return expit(v)")
    out = text.render(_report([cause]))
    marked = [line for line in out.splitlines() if line.lstrip().startswith(">")]
    assert len(marked) == 1 and "return 1 / (1 + expit(-v))" in marked[0] and " 4 " in marked[0]
    assert f"act ({script}:4)" in out                      # the Where line: the full path
    assert out.splitlines()[0].endswith("in act (net.py:4)")  # the headline: just the file
    assert "Fix" in out and "return expit(v)" in out


# -- evidence ---------------------------------------------------------------------------------------


def test_evidence_separates_measured_values_from_thresholds():
    measured, limits = verdict.split_evidence(
        {"out_std": 2e-5, "pinned_std": 1e-3, "threshold": 0.5, "thresholds": {"x": 1}, "f0": 0.731})
    assert {e.key for e in measured} == {"out_std", "f0"}
    assert {e.key for e in limits} == {"pinned_std", "threshold", "thresholds.x"}


def test_per_layer_evidence_shows_only_what_differs_from_the_finding():
    measured, _ = verdict.split_evidence({
        "f0": 0.667, "role": "hidden", "layers": ["layer1", "layer2"],
        "per_layer": {"layer1": {"f0": 0.667, "role": "hidden"}, "layer2": {"f0": 0.667, "role": "output"}}})
    keys = {e.key for e in measured}
    assert keys == {"f0", "role", "layers", "per_layer.layer2.role"}


@pytest.mark.parametrize("value", [2e-5, 0.731, 12345.678, -3.5e-9, 1.0])
def test_numbers_keep_four_significant_digits(value):
    assert float(verdict.format_value(value)) == pytest.approx(value, rel=5e-4)


def test_odd_evidence_values_are_still_shown():
    assert verdict.format_value(float("nan")) == "nan"
    assert verdict.format_value(float("-inf")) == "-inf"
    long = verdict.format_value("x" * 1000)
    assert len(long) <= verdict.MAX_VALUE_CHARS
    assert "100 items" in verdict.format_value(list(range(100)))


# -- the terminal report ------------------------------------------------------------------------------


def test_verdict_comes_first_then_comparison_then_runs(specimen):
    out = text.render(specimen)
    v = verdict.build(specimen)
    assert out.splitlines()[0] == f"netdoctor: {v.title}"
    assert "ND303" in out.splitlines()[0]
    order = [out.index(s) for s in ("What you see", "Why", "Where", "Fix",
                                    "== original vs fixed", "== original:", "verdict: NOT healthy")]
    assert order == sorted(order)


def test_side_by_side_groups_agree_with_report_diff(specimen):
    out = text.render(specimen, verbose=True)
    diff = specimen.diff()
    block = out[out.index("== original vs fixed"):]
    sections = {}
    for heading in ("only in original", "in both", "only in fixed"):
        start = block.index(heading)
        sections[heading] = start
    for row in diff.itertuples():
        heading = {"only original": "only in original", "both": "in both", "only fixed": "only in fixed"}[row.where]
        start = sections[heading]
        later = [s for s in sections.values() if s > start]
        segment = block[start:min(later) if later else len(block)]
        assert row.code in segment, (row.code, heading)


def test_info_findings_are_hidden_unless_verbose(specimen):
    assert "ND105" not in text.render(specimen)
    assert "ND105" in text.render(specimen, verbose=True)


def test_a_single_run_lists_its_findings():
    report = _report([_finding("ND402", "same-sign-init", "warning", message="all weights >= 0")])
    out = text.render(report)
    assert "ND402 same-sign-init" in out and "all weights >= 0" in out
    assert out.rstrip().endswith("verdict: healthy")


def test_text_report_does_not_import_matplotlib():
    code = ("import sys\nfrom netdoctor.render.specimen import specimen_report\n"
            "print(specimen_report(steps=10).render('text'))\n"
            "assert 'matplotlib' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "verdict:" in done.stdout


def test_a_run_seen_in_part_says_what_was_not_judged():
    report = _report([_finding("ND402", "same-sign-init", "warning")], original={"seen": ("outputs", "updates")})
    v = verdict.build(report)
    assert v.runs[0].state == "partly observed" and v.tone == "partly" and not v.ok
    assert "partly observed" in v.title and "loss" in v.title and "NOT healthy" not in v.title
    out = text.render(report)
    assert "not judged" in out and "ND1 loss" in out
    assert out.rstrip().endswith("verdict: partly observed: no error in what was seen, not all of it judged")


def test_a_run_where_nothing_was_observed_is_not_called_healthy():
    report = _report([], runs=("original", "fixed"), original={"notes": ["no training loop found"], "observed": False},
                     fixed={"steps": 10})
    v = verdict.build(report)
    assert "nothing observed" in v.title and "original" in v.title and "fixed" not in v.title
    assert [r.state for r in v.runs] == ["not observed", "healthy"]
    assert v.tone == "unknown"
    out = text.render(report)
    assert "original: not observed" in out


def test_a_cause_outranks_the_more_severe_finding_it_explains():
    # Raw inputs in the thousands (a warning) are why the sigmoid network's gradients vanish
    # (an error): the inputs lead, and the vanishing gradient is not the headline.
    vanishing = _finding("ND201", "vanishing-gradient", "error")
    inputs = _finding("ND602", "unscaled-inputs", "warning")
    assert verdict.build(_report([vanishing, inputs])).primary.cause.finding is inputs
    # uphill updates explain the exploding gradient
    exploding = _finding("ND202", "exploding-gradient", "error")
    uphill = _finding("ND503", "update-direction", "error")
    assert verdict.build(_report([exploding, uphill])).primary.cause.finding is uphill
    # an explanation that does not apply changes nothing: severity still decides
    milder = _finding("ND402", "same-sign-init", "warning", location=Location("net.py", 3))
    assert verdict.build(_report([milder, vanishing])).primary.cause.finding is vanishing


def test_the_cause_that_explains_others_leads_and_init_scale_explains_only_its_layers():
    # unscaled_inputs: ND602 explains the saturation and the vanishing gradient of layer1;
    # an init-scale warning on layer2 (located, same severity) explains nothing there.
    vanishing = _finding("ND201", "vanishing-gradient", "error", layer="layer1")
    saturated = _finding("ND301", "saturated-units", "warning", layer="layer1")
    inputs = _finding("ND602", "unscaled-inputs", "warning")
    init = _finding("ND403", "init-scale", "warning", layer="layer2", location=Location("net.py", 19),
                    evidence={"layers": ["layer2"]})
    v = verdict.build(_report([vanishing, saturated, inputs, init]))
    assert v.primary.cause.finding is inputs
    # on the layer it names, the init scale explains the vanishing gradient
    own = _finding("ND201", "vanishing-gradient", "error", layer="layer2")
    assert verdict.build(_report([own, init])).primary.cause.finding is init
    # tiny steps are what vanishing gradients make: the gradients lead, not the steps
    tiny_steps = _finding("ND502", "update-ratio-low", "error")
    plateau = _finding("ND104", "loss-plateau", "error")
    assert verdict.build(_report([tiny_steps, plateau, own])).primary.cause.finding is own
