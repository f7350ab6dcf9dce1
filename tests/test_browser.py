"""The HTML report in a real browser: headless Chromium driven over the DevTools protocol.

No selenium/playwright: Chromium's ``--remote-debugging-pipe`` speaks the DevTools
protocol as NUL-terminated JSON on file descriptors 3 (commands in) and 4
(replies out), so a few lines of stdlib drive it without a websocket.

The report of the seed's case (``netdoctor demo``; a synthetic stand-in of the
same shape when the demo is not available) must load with no console error,
show the verdict, decode every image, and paint a screenshot that is not blank.
A page built to fail (a blocked script, a broken image) checks that the
harness itself can see those failures.

Skipped when chromium is absent, unless NETDOCTOR_REQUIRE_BROWSER=1 (set by CI),
where a missing browser is a failure.
"""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")
SCREENSHOT_WIDTH = 1280
TIMEOUT = 60.0


def _browser() -> str | None:
    for name in BROWSER_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser_path():
    path = _browser()
    if path is None:
        if os.environ.get("NETDOCTOR_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is required (NETDOCTOR_REQUIRE_BROWSER=1) but was not found on PATH")
        pytest.skip("chromium not installed (Debian: apt-get install chromium chromium-driver)")
    return path


class DevTools:
    """A minimal DevTools-protocol client over Chromium's debugging pipe."""

    def __init__(self, executable: str, profile: Path):
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # The browser reads commands on fd 3 and writes replies on fd 4. Bash puts the
        # pipe ends there (after moving them above 10, clear of 3 and 4) and then execs it.
        child_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
        child_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
        redirect = f'exec "$@" 3<&{child_r} 4>&{child_w} {child_r}<&- {child_w}>&-'
        self.proc = subprocess.Popen(
            [
                "/bin/bash", "-c", redirect, "bash",  # bash: dash only redirects fds 0-9
                executable, "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--hide-scrollbars", "--mute-audio", f"--user-data-dir={profile}",
                "--remote-debugging-pipe", "about:blank",
            ],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(child_r, child_w),
        )
        for fd in (to_browser_r, from_browser_w, child_r, child_w):
            os.close(fd)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        self.session: str | None = None
        self.target: str | None = None

    # -- protocol -------------------------------------------------------------------------------
    def send(self, method: str, params: dict | None = None, session: str | None = "page") -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        sid = self.session if session == "page" else session
        if sid:
            message["sessionId"] = sid
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = TIMEOUT) -> dict:
        for event in self.events:
            if event.get("method") == method:
                return event
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = self._read(deadline - time.monotonic())
            self.events.append(event)
            if event.get("method") == method:
                return event
        raise TimeoutError(f"no {method} within {timeout}s")

    def _read(self, timeout: float = TIMEOUT) -> dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_browser], [], [], max(0.0, left))
            if not ready:
                raise TimeoutError("the browser did not answer")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("the browser closed the debugging pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    # -- a page ---------------------------------------------------------------------------------
    def open(self, url: str) -> None:
        if self.target is not None:  # one page at a time
            self.send("Target.closeTarget", {"targetId": self.target}, session=None)
        self.target = target = self.send("Target.createTarget", {"url": "about:blank"}, session=None)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=None)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": SCREENSHOT_WIDTH, "height": 900, "deviceScaleFactor": 1, "mobile": False})
        self.events.clear()
        self.send("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def console_errors(self) -> list[str]:
        errors = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
            elif method == "Runtime.exceptionThrown":
                errors.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                errors.append(params["entry"].get("text", ""))
        return errors

    def screenshot(self, max_height: int = 12000) -> bytes:
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": SCREENSHOT_WIDTH, "height": min(height, max_height),
                   "deviceScaleFactor": 1, "mobile": False})
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        return base64.b64decode(data)

    def close(self) -> None:
        try:
            self.send("Browser.close", session=None)
        except Exception:  # noqa: BLE001 - closing a browser that already went away
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


@pytest.fixture(scope="module")
def devtools(browser_path, tmp_path_factory):
    # One browser for the module; every test opens its own page (and its own event log).
    client = DevTools(browser_path, tmp_path_factory.mktemp("profile"))
    try:
        yield client
    finally:
        client.close()


IMAGES_STATE = """
Array.from(document.images).map(img => ({
    complete: img.complete, width: img.naturalWidth, height: img.naturalHeight,
    alt: img.alt }))
"""


def _pixels(png: bytes) -> np.ndarray:
    import matplotlib.image

    return matplotlib.image.imread(io.BytesIO(png), format="png")


def _seed_report():
    """The seed's demo report when the demo exists, else the synthetic stand-in."""
    try:
        from netdoctor.commands.demo import demo_report
    except ImportError:
        from netdoctor.render.specimen import specimen_report

        return specimen_report(), "specimen"
    return demo_report(), "demo"


@pytest.fixture(scope="module")
def seed_html(tmp_path_factory):
    report, origin = _seed_report()
    path = tmp_path_factory.mktemp("browser") / "report.html"
    report.save(path)
    return path, report, origin


def test_seed_report_in_headless_chromium(devtools, seed_html, tmp_path):
    from netdoctor.render.verdict import build

    path, report, origin = seed_html
    devtools.open(path.resolve().as_uri())

    assert devtools.console_errors() == []

    text = devtools.evaluate("document.body.innerText")
    verdict = build(report)
    assert verdict.title in text
    if verdict.primary is not None and verdict.primary.where is not None:
        assert str(verdict.primary.where) in text

    images = devtools.evaluate(IMAGES_STATE)
    assert images, "the report shows no pictures"
    undecoded = [img for img in images if not (img["complete"] and img["width"] > 0 and img["height"] > 0)]
    assert undecoded == []

    keep = os.environ.get("NETDOCTOR_KEEP_SCREENSHOT")  # a path: keep the whole page to look at
    png = devtools.screenshot(max_height=20000 if keep else 2400)
    shot = tmp_path / f"report-{origin}.png"
    shot.write_bytes(png)
    pixels = _pixels(png)[..., :3]
    assert pixels.shape[1] == SCREENSHOT_WIDTH
    # Not blank: many distinct colours and plenty of non-white pixels.
    assert (pixels < 0.9).any(axis=2).mean() > 0.02
    assert len(np.unique((pixels.reshape(-1, 3) * 255).astype(np.uint8), axis=0)) > 50
    if keep:
        shutil.copy(shot, keep)


def test_harness_sees_broken_pages(devtools, tmp_path):
    """The checks above can fail: a page with a console error, a script and a broken image."""
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'></head><body><p>nothing here</p>"
        "<script>console.error('deliberate'); undefinedFunction();</script>"
        "<img src='data:image/png;base64,bm90IGEgcG5n' alt='broken'>"
        "</body></html>",
        encoding="utf-8",
    )
    devtools.open(page.resolve().as_uri())
    errors = devtools.console_errors()
    assert any("deliberate" in e for e in errors)
    assert len(errors) >= 2  # the console.error and the thrown ReferenceError
    images = devtools.evaluate(IMAGES_STATE)
    assert images and images[0]["width"] == 0
    pixels = _pixels(devtools.screenshot())[..., :3]
    assert (pixels < 0.9).any(axis=2).mean() < 0.02  # a near-empty page counts as blank


def test_injected_markup_never_runs(devtools, tmp_path):
    """A report full of `<script>` in user strings renders them as text, and no script runs."""
    from netdoctor.render.specimen import specimen_report
    from netdoctor.types import Finding, Severity

    attack = "<script>document.title='pwned';console.error('pwned')</script><img src=x onerror=alert(1)>"
    report = specimen_report(names=(f"orig{attack}", "fixed"), steps=40, boundary=False)
    original = report.runs[f"orig{attack}"]
    original.info.notes.append(attack)
    original.info.error = f"Traceback:\n  ValueError: {attack}"
    original.info.status = "crashed"
    report.findings.append(Finding("ND101", "output-pinned", Severity.ERROR, original.name, attack))
    path = tmp_path / "attack.html"
    report.save(path)

    devtools.open(path.resolve().as_uri())
    assert devtools.console_errors() == []
    assert devtools.evaluate("document.title") != "pwned"
    assert devtools.evaluate("document.querySelectorAll('script').length") == 0
    assert devtools.evaluate("document.querySelectorAll('img[onerror]').length") == 0
    assert attack in devtools.evaluate("document.body.innerText")


def test_every_kind_of_picture_decodes(devtools, tmp_path):
    """The demo records no decision boundary; a specimen with one checks the PNG panel and the GIF."""
    from netdoctor.render.specimen import specimen_report

    path = tmp_path / "specimen.html"
    specimen_report(steps=60, histograms=True).save(path)
    devtools.open(path.resolve().as_uri())
    assert devtools.console_errors() == []
    images = devtools.evaluate(IMAGES_STATE)
    sources = devtools.evaluate("Array.from(document.images).map(img => img.src.slice(0, 15))")
    assert any(src.startswith("data:image/gif") for src in sources)
    assert len(images) == 8  # seven panels and the animation
    assert all(img["complete"] and img["width"] > 0 for img in images)
