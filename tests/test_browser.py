"""The HTML report in a real browser (Debian's Chromium through Playwright): no console errors,
every plot drawn, a hostile column name inert, readable on a phone.

Skips when Chromium or Playwright is missing on a developer's machine; fails in CI (CI=true).
To refresh the README's screenshot of the demo's report:
    LSTM_DOCTOR_SCREENSHOT=docs/report.png .venv/bin/pytest tests/test_browser.py -k demo
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sample_reports import XSS_IMG, XSS_SCRIPT, examined_with_hostile_names, full_report

from lstm_doctor.render.plots import PLOTS

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
IN_CI = os.environ.get("CI") == "true"


def _missing(what: str) -> None:
    message = f"{what} is needed for the browser test"
    if IN_CI:
        pytest.fail(message + " (CI=true: .ci/run installs chromium; the dev extra installs playwright)")
    pytest.skip(message + ": apt-get install chromium; pip install playwright")


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        _missing("Chromium (/usr/bin/chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, headless=True, args=FLAGS)
        yield b
        b.close()


class Opened:
    """A report opened in a fresh page, with everything the page said or tried."""

    def __init__(self, browser, path: Path, width: int = 1280):
        self.page = browser.new_page(viewport={"width": width, "height": 900})
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(path.resolve().as_uri(), wait_until="load")

    def plots(self) -> dict[str, dict]:
        """Per figure: the drawn size of its SVG and how many visible, non-empty paths it has."""
        return self.page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('figure.plot')].map(f => {
            const svg = f.querySelector('svg'); const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
            const paths = svg ? [...svg.querySelectorAll('path')].filter(p => {
                const b = p.getBBox(); return p.getAttribute('d') && (b.width > 0 || b.height > 0); }).length : 0;
            return [f.dataset.plot, {width: box.width, height: box.height, paths: paths}]; }))""")

    def injected(self) -> dict[str, int]:
        return self.page.evaluate("""() => ({
            elements: document.querySelectorAll('script, img, iframe, object, embed, foreignObject').length,
            handlers: [...document.querySelectorAll('*')].filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length,
            svgs: document.querySelectorAll('svg').length })""")

    def close(self) -> None:
        self.page.close()


def _expected_plots(probes: dict) -> set[str]:
    """The plot keys whose probe entry the report holds (data holds two plots)."""
    data = probes.get("data") or {}
    return {key for key, source, *_ in PLOTS
            if (source == "data" and data.get(key)) or (source != "data" and probes.get(source))}


def _assert_clean(opened: Opened) -> None:
    assert opened.errors == [] and opened.dialogs == []
    assert all(url.startswith(("file:", "data:", "about:")) for url in opened.requests), opened.requests


def _assert_drawn(plots: dict[str, dict]) -> None:
    for key, p in plots.items():
        assert p["width"] > 200 and p["height"] > 100 and p["paths"] >= 3, (key, p)


def test_a_real_report_with_a_hostile_column_name(browser, tmp_path):
    report = examined_with_hostile_names()
    path = tmp_path / "report.html"
    report.save_html(path)
    opened = Opened(browser, path)
    _assert_clean(opened)
    plots = opened.plots()
    assert set(plots) == _expected_plots(report.probes) and "loss_curve" in plots
    _assert_drawn(plots)
    inert = opened.injected()
    assert inert["elements"] == 0 and inert["handlers"] == 0 and inert["svgs"] == len(plots)
    text = opened.page.inner_text("body")
    assert XSS_SCRIPT in text and "Symptom:" in text  # the names are shown, as text
    opened.close()


def test_every_plot_of_a_full_report_on_a_laptop_and_a_phone(browser, tmp_path):
    report = full_report(XSS_IMG)
    path = tmp_path / "full.html"
    report.save_html(path)
    for width in (1280, 390):
        opened = Opened(browser, path, width)
        _assert_clean(opened)
        plots = opened.plots()
        assert set(plots) == {key for key, *_ in PLOTS} | {"treatment-0"}
        _assert_drawn(plots)
        assert opened.injected() == {"elements": 0, "handlers": 0, "svgs": len(plots)}
        # Nothing wider than the screen: no sideways scrolling on a phone.
        assert opened.page.evaluate("document.documentElement.scrollWidth") <= width
        assert opened.page.evaluate("s => [...document.querySelectorAll('svg text')].some(t => t.textContent.includes(s))",
                                    XSS_IMG)
        opened.close()


@pytest.mark.skipif(not os.environ.get("LSTM_DOCTOR_SCREENSHOT"), reason="refreshes docs/report.png on request only")
def test_the_demo_report_and_its_screenshot(browser, tmp_path, monkeypatch):
    """Runs `lstm-doctor demo`, opens its report.html, checks it and saves the screenshots."""
    import json

    from typer.testing import CliRunner

    from lstm_doctor.cli import app

    target = Path(os.environ["LSTM_DOCTOR_SCREENSHOT"]).resolve()
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    probes = json.loads((tmp_path / "report.json").read_text())["probes"]
    opened = Opened(browser, tmp_path / "report.html", 1100)
    _assert_clean(opened)
    assert opened.page.is_visible("#verdict")
    plots = opened.plots()
    assert set(plots) == _expected_plots(probes)
    _assert_drawn(plots)
    # Two pictures for the README: the verdict with the top findings, and the first measurements.
    opened.page.screenshot(path=str(target), full_page=True, clip={"x": 0, "y": 0, "width": 1100, "height": 1000})
    top = opened.page.locator("h2", has_text="Measurements").bounding_box()["y"]
    opened.page.screenshot(path=str(target.with_name(f"{target.stem}-plots{target.suffix}")), full_page=True,
                           clip={"x": 0, "y": top - 10, "width": 1100, "height": 1300})
    opened.close()
