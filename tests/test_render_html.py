"""The HTML report: one self-contained, escaped file with the verdict on top."""

from __future__ import annotations

import base64
import html.parser
import os
import subprocess
import sys

import pytest

from netdoctor.render import html as html_render
from netdoctor.render import verdict
from netdoctor.render.specimen import specimen_report
from netdoctor.report import Report, ReportError
from netdoctor.trace import MODEL, Recorder, Trace
from netdoctor.types import Finding, Location, RunInfo, Severity

ATTACK = "<script>alert(1)</script>"
PNG = b"\x89PNG\r\n\x1a\n"


class _Page(html.parser.HTMLParser):
    """Every tag and attribute of a page, and its visible text."""

    def __init__(self, source: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(source)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.text.append(data)

    def all(self, tag):
        return [attrs for t, attrs in self.tags if t == tag]

    @property
    def body_text(self) -> str:
        return "".join(self.text)


@pytest.fixture(scope="module")
def specimen():
    return specimen_report(steps=40)


@pytest.fixture(scope="module")
def specimen_html(specimen):
    return specimen.render("html")


def _attacked_report() -> Report:
    """Every string that can come from user code carries markup."""
    report = specimen_report(names=(f"orig{ATTACK}", "fixed"), steps=20, boundary=False)
    trace = report.runs[f"orig{ATTACK}"]
    trace.info.notes.append(f"note {ATTACK}")
    trace.info.status = "crashed"
    trace.info.error = f"Traceback (most recent call last):\n  File \"{ATTACK}.py\"\nValueError: {ATTACK}"
    trace.info.script = f"/tmp/{ATTACK}/train.py"
    trace.info.stop_reason = f"stop {ATTACK}"
    where = Location(file=f"{ATTACK}.py", line=2, function=f"fn{ATTACK}",
                     source=((1, "def f():"), (2, f"    print('{ATTACK}')")))
    report.findings.append(Finding(
        "ND303", "activation-mismatch", Severity.ERROR, trace.name, f"message {ATTACK}",
        layer=f"layer{ATTACK}", location=where, fix=f"fix {ATTACK}", why=f"why {ATTACK}",
        evidence={f"key{ATTACK}": f"value {ATTACK}", "pinned_std": ATTACK}))
    report.skipped[trace.name] = {"ND201": f"skipped {ATTACK}"}
    report.errors[trace.name] = {f"ND9{ATTACK}": "boom"}
    return report


# -- safe to share ------------------------------------------------------------------------------------


def test_user_strings_are_escaped_everywhere():
    out = _attacked_report().render("html")
    assert ATTACK not in out
    assert "<script" not in out.lower()
    page = _Page(out)
    assert page.all("script") == []
    assert not [attrs for _, attrs in page.tags for name in attrs if name.startswith("on")]
    # The text is still there for the reader, as text.
    visible = page.body_text
    for expected in (f"message {ATTACK}", f"note {ATTACK}", f"fix {ATTACK}", f"ValueError: {ATTACK}",
                     f"print('{ATTACK}')", f"value {ATTACK}", f"skipped {ATTACK}", f"/tmp/{ATTACK}/train.py"):
        assert expected in visible, expected


def test_page_forbids_scripts_and_network_by_policy(specimen_html):
    page = _Page(specimen_html)
    policies = [a["content"] for a in page.all("meta") if a.get("http-equiv", "").lower() == "content-security-policy"]
    assert policies and "default-src 'none'" in policies[0] and "script-src" not in policies[0]


# -- self-contained -------------------------------------------------------------------------------------


def test_images_are_inline_and_decode(specimen_html):
    page = _Page(specimen_html)
    images = page.all("img")
    assert len(images) >= 7  # every panel of the specimen, plus the animated boundary
    for img in images:
        head, _, payload = img["src"].partition(",")
        assert head in ("data:image/png;base64", "data:image/gif;base64")
        data = base64.b64decode(payload, validate=True)
        assert data.startswith(PNG) or data.startswith(b"GIF89a")
        assert img.get("alt")


def test_nothing_is_fetched_from_anywhere(specimen_html):
    page = _Page(specimen_html)
    assert page.all("script") == [] and page.all("link") == [] and page.all("iframe") == []
    for _, attrs in page.tags:
        for name in ("src", "href"):
            value = attrs.get(name)
            assert value is None or value.startswith(("data:", "#")), value
    assert "@import" not in specimen_html and "url(" not in specimen_html


# -- verdict first ------------------------------------------------------------------------------------------


def test_verdict_leads_the_page(specimen, specimen_html):
    v = verdict.build(specimen)
    text = _Page(specimen_html).body_text
    assert v.title in text
    positions = [specimen_html.index(marker) for marker in ('id="verdict"', 'id="compare"', 'id="pictures"', 'id="runs"')]
    assert positions == sorted(positions)
    where = str(v.primary.where)
    assert text.index(where) < text.index("Findings side by side")
    assert "return 1 / (1 + expit(-vec))" in text[: text.index("Findings side by side")]


def test_findings_appear_in_their_column(specimen, specimen_html):
    compare = specimen_html[specimen_html.index('id="compare"'):specimen_html.index('id="details"')]
    sections = compare.split("<section>")[1:]
    assert len(sections) == 3
    for row in specimen.diff().itertuples():
        column = {"only original": 0, "both": 1, "only fixed": 2}[row.where]
        assert f">{row.code}<" in sections[column]
        assert all(f">{row.code}<" not in s for i, s in enumerate(sections) if i != column)
    # Each summary entry links to its detailed card.
    page = _Page(specimen_html)
    targets = {attrs["id"] for _, attrs in page.tags if "id" in attrs}
    links = [a["href"][1:] for a in page.all("a") if a.get("href", "").startswith("#")]
    assert len(links) == len(specimen.diff()) and set(links) <= targets


def test_missing_panels_are_listed_not_drawn():
    recorder = Recorder()
    for k in range(10):
        recorder.record(k, {(MODEL, "loss"): 1.0 - k / 20})
    report = Report([Trace(RunInfo(name="sparse", steps=10), recorder)])
    page = _Page(report.render("html"))
    assert len(page.all("img")) == 1
    assert "Left out for lack of data" in page.body_text
    assert "no probe-batch outputs recorded" in page.body_text


def test_notebook_display_is_the_html_report(specimen):
    out = specimen._repr_html_()
    assert verdict.build(specimen).title.replace("'", "&#39;") in out
    # Styles are scoped to the report, so a notebook's own styles are left alone.
    style = out[out.index("<style>"):out.index("</style>")]
    rules = [line for line in style.splitlines() if "{" in line and not line.startswith("@media")]
    assert all(line.lstrip().startswith(".ndr") for line in rules)


def test_pictures_can_be_left_out_for_speed(specimen):
    page = _Page(html_render.render(specimen, pictures=False))
    assert page.all("img") == []
    assert "pictures=False" in page.body_text


# -- writing the file ---------------------------------------------------------------------------------------------


def test_save_writes_one_file_and_refuses_to_overwrite_the_script(tmp_path):
    report = specimen_report(steps=15, boundary=False)
    target = report.save(tmp_path / "report.html")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")

    script = tmp_path / "train.txt"
    script.write_text("keep me")
    report.runs["original"].info.script = str(script)
    with pytest.raises(ReportError):
        report.save(script, format="html")
    assert script.read_text() == "keep me"


def test_a_failed_render_leaves_the_old_report_intact(tmp_path, monkeypatch):
    from netdoctor.render import plots

    target = tmp_path / "report.html"
    target.write_text("previous report")

    def interrupted(*_, **__):
        raise KeyboardInterrupt

    monkeypatch.setattr(plots, "gallery", interrupted)
    with pytest.raises(KeyboardInterrupt):
        specimen_report(steps=10).save(target)
    assert target.read_text() == "previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_demo_writes_the_seed_report(tmp_path):
    pytest.importorskip("netdoctor.commands.demo", reason="netdoctor demo is not written yet")
    target = tmp_path / "report.html"
    done = subprocess.run([sys.executable, "-m", "netdoctor.cli", "demo", "-o", str(target)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode in (0, 1), done.stderr
    page = _Page(target.read_text(encoding="utf-8"))
    assert "NOT healthy" in page.body_text
    assert page.all("img")


def test_rule_code_marks_become_code_and_stay_escaped():
    report = specimen_report(steps=10, boundary=False)
    report.findings.append(Finding("ND999", "made-up", Severity.ERROR, "original",
                                   f"use ``w = rng.normal(0, 1)`` not ``{ATTACK}``; unpaired ``mark"))
    out = html_render.render(report, pictures=False)
    assert "<code>w = rng.normal(0, 1)</code>" in out
    assert "<code>&lt;script&gt;alert(1)&lt;/script&gt;</code>" in out
    assert ATTACK not in out
