"""The Markdown report: report.md with its pictures in report_files/, escaped, written atomically."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from netdoctor.render import markdown, verdict
from netdoctor.render.specimen import specimen_report
from netdoctor.report import Report
from netdoctor.trace import MODEL, Recorder, Trace
from netdoctor.types import Finding, Location, RunInfo, Severity

ATTACK = "<script>alert(1)</script>"
IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    report = specimen_report(steps=30)
    target = tmp_path_factory.mktemp("md") / "report.md"
    return report, report.save(target)


def test_save_writes_markdown_and_its_pictures_beside_it(saved):
    report, path = saved
    assert path.name == "report.md"
    folder = path.with_name("report_files")
    text = path.read_text(encoding="utf-8")
    links = IMAGE_LINK.findall(text)
    assert links, "no pictures linked"
    for link in links:
        image = path.parent / unquote(link)
        assert image.parent == folder and image.is_file(), link
        head = image.read_bytes()[:8]
        assert head.startswith(b"\x89PNG") or head.startswith(b"GIF89a")
    # Every file in the folder is linked from the report: nothing stray, nothing missing.
    assert sorted(p.name for p in folder.iterdir()) == sorted(Path(unquote(l)).name for l in links)


def test_markdown_puts_the_verdict_first(saved):
    report, path = saved
    text = path.read_text(encoding="utf-8")
    v = verdict.build(report)
    first = text.splitlines()[0]
    assert first.startswith("# netdoctor: ")
    assert "ND303" in first
    order = [text.index(s) for s in ("**What you see:**", "**Why:**", "**Where:**", "**Fix:**",
                                     "## Findings side by side", "## Pictures", "## Runs")]
    assert order == sorted(order)
    assert "return 1 / (1 + expit(-vec))" in text[: text.index("## Findings side by side")]
    for row in report.diff().itertuples():
        assert row.code in text
    assert v.comparison is not None


def test_user_strings_cannot_inject_markup_or_links():
    report = specimen_report(names=(f"orig{ATTACK}", "fixed"), steps=10, boundary=False)
    run = f"orig{ATTACK}"
    report.runs[run].info.notes.append(f"see [here](http://example.invalid) {ATTACK} | a | b")
    report.runs[run].info.error = f"ValueError: {ATTACK}\n```\nbreak out of the fence"
    report.findings.append(Finding(
        "ND303", "activation-mismatch", Severity.ERROR, run, f"msg {ATTACK} *bold* _it_",
        location=Location("x.py", 2, "f", source=((1, "def f():"), (2, "    return '```' + '<b>'"))),
        fix=f"fix {ATTACK}"))
    text = markdown.render(report)
    prose, code = _split_fences(text)
    # Outside code blocks nothing is markup; inside them, text is shown literally by design.
    assert "<script" not in prose and "<b>" not in prose
    assert "[here](" not in prose and "\\[here\\](" in prose  # the note's link syntax is escaped
    assert "&lt;script&gt;" in prose
    # The fences hold: the traceback's own ``` line stays inside its block.
    assert "break out of the fence" in code
    assert "    return '```' + '<b>'" in code


def _split_fences(text: str) -> tuple[str, str]:
    """(text outside fenced blocks, text inside them), following CommonMark's fence rule:
    a block closes only on a backtick run at least as long as the one that opened it."""
    prose, code, fence = [], [], 0
    for line in text.splitlines():
        run = re.fullmatch(r"\s*(`{3,})\s*", line)
        if fence == 0 and re.match(r"\s*`{3,}", line):
            fence = len(re.match(r"\s*(`+)", line).group(1))
        elif fence and run and len(run.group(1)) >= fence:
            fence = 0
        elif fence:
            code.append(line)
        else:
            prose.append(line)
    return "\n".join(prose), "\n".join(code)


def test_markdown_without_save_says_where_pictures_go(saved):
    report, _ = saved
    text = report.render("md")
    assert IMAGE_LINK.findall(text) == []
    assert markdown.NO_PICTURES in text


def test_a_panel_without_data_is_noted_in_markdown(tmp_path):
    recorder = Recorder()
    for k in range(8):
        recorder.record(k, {(MODEL, "loss"): 1.0 / (k + 1)})
    report = Report([Trace(RunInfo(name="sparse", steps=8), recorder)])
    path = report.save(tmp_path / "r.md")
    text = path.read_text(encoding="utf-8")
    assert len(IMAGE_LINK.findall(text)) == 1
    assert "no probe\\-batch outputs recorded" in text or "no probe-batch outputs recorded" in text


def test_folder_names_with_spaces_still_link(tmp_path):
    report = specimen_report(steps=10, boundary=False)
    path = report.save(tmp_path / "my report (v2).md")
    for link in IMAGE_LINK.findall(path.read_text(encoding="utf-8")):
        assert " " not in link and "(" not in link
        assert (path.parent / unquote(link)).is_file()


def test_pictures_are_written_before_the_markdown_and_a_failure_leaves_no_report(tmp_path, monkeypatch):
    from netdoctor import report as report_module

    calls: list[str] = []
    real = report_module.write_atomic

    def failing_on_second_picture(target, data):
        calls.append(Path(target).name)
        if len(calls) == 2:
            raise OSError("disk full")
        real(target, data)

    monkeypatch.setattr(markdown, "write_atomic", failing_on_second_picture)
    with pytest.raises(OSError):
        specimen_report(steps=10, boundary=False).save(tmp_path / "report.md")
    assert not (tmp_path / "report.md").exists()
    assert calls[0].endswith(".png")


def test_rule_code_marks_become_code_spans():
    assert markdown._prose("use ``rng.normal(0, 1)`` not *x*") == "use `rng.normal(0, 1)` not \\*x\\*"
    assert markdown._prose("unpaired ``mark") == "unpaired \\`\\`mark"
    assert "<" not in markdown._prose(f"``ok`` {ATTACK}")
