"""The HTML report: one self-contained page, every section drawn when measured, a short line
when not, and nothing from the user's data ever interpreted as markup."""

from __future__ import annotations

import json
import re
from collections import Counter
from html.parser import HTMLParser

import pandas as pd
import pytest
from sample_reports import XSS_IMG, XSS_SCRIPT, examined_with_hostile_names, full_report
from typer.testing import CliRunner

from lstm_doctor.render.html import render_html
from lstm_doctor.render.plots import PLOTS, draw_feature_scale, svg_of
from lstm_doctor.report import Report


class Tags(HTMLParser):
    """Every element and attribute as a browser's parser sees them, and the text inside <svg> <text>."""

    def __init__(self, page: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.svg_text: list[str] = []
        self._in_text = False
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_text = tag == "text"

    def handle_endtag(self, tag):
        self._in_text = False

    def handle_data(self, data):
        if self._in_text:
            self.svg_text.append(data)


@pytest.fixture(scope="module")
def full_page() -> str:
    return render_html(full_report())


def test_every_section_is_drawn_when_measured(full_page):
    tags = Tags(full_page)
    figures = [a["data-plot"] for t, a in tags.tags if t == "figure"]
    assert figures == [key for key, *_ in PLOTS] + ["treatment-0"]
    assert "not measured in this run" not in full_page
    # Each figure holds one SVG with drawn lines.
    for block in re.findall(r'<figure class="plot".*?</figure>', full_page, flags=re.S):
        assert block.count("<svg") == 1 and len(re.findall(r'<path [^>]*d="M', block)) >= 3
    assert 'id="verdict"' in full_page and "Most likely cause:" in full_page


def test_marks_what_a_person_looks_for(full_page):
    text = " ".join(Tags(full_page).svg_text)
    for mark in ("suggested lr 0.003", "your lr 0.001", "safe range 0.0001 to 0.01",  # lr range test
                 "memory length 6 steps", "window 12 steps",                          # memory length
                 "your window 12 steps", "dominant period 52 steps",                  # autocorrelation
                 "mean baseline (1)", "persistence baseline (0.4)",                   # loss curve
                 "p = 0.0001", "before", "after"):                                   # signal, treatment
        assert mark in text, mark


def test_findings_fold_in_their_explain_page_and_evidence(full_page):
    from lstm_doctor.rules import page

    report = full_report()
    for f in report.findings:
        block = re.search(rf'<article class="finding" id="{f.code}-{f.rank}">.*?</article>', full_page, flags=re.S)
        assert block, f.code
        first_line = page(f.code).splitlines()[0]
        assert f"<pre>{first_line}" in block.group(0).replace("&#x27;", "'")
    d102 = re.search(r'<article class="finding" id="D102-1">.*?</article>', full_page, flags=re.S).group(0)
    assert "340.2" in d102 and "Retrained with the fix" in d102 and "verified" in d102


def test_setup_as_given_and_the_recommended_change(full_page):
    assert "<h3>As given</h3>" in full_page
    assert re.search(r"<td>data\.scale</td><td>none</td><td>standard</td>", full_page)


def test_absent_measurements_get_one_short_line_each():
    page = render_html(Report(symptom="unknown"))
    absent = [a["data-absent"] for t, a in Tags(page).tags if "data-absent" in a]
    assert absent == [key for key, *_ in PLOTS]
    assert "<figure" not in page and "<svg" not in page
    assert "No treatment was tried" in page and "No recommended setup" in page and "No findings" in page


# Ways out of a text node or an attribute; one report carries them all (in column names,
# class labels, the data file's name, the setup and the notes).
HOSTILE = XSS_SCRIPT + XSS_IMG + '"><svg onload=alert(1)>' + "</text></svg><script>x()</script>"


def test_strings_from_the_data_are_text_not_markup():
    page = render_html(full_report(HOSTILE))
    tags = Tags(page)
    assert not [t for t, _ in tags.tags if t in ("script", "img", "iframe", "object", "embed")]
    assert not [(t, k) for t, a in tags.tags for k in a if k.startswith("on")]
    assert sum(t == "svg" for t, _ in tags.tags) == len(PLOTS) + 1  # no injected svg either
    assert any(HOSTILE in s for s in tags.svg_text)  # shown as text in a plot (a feature's name)...
    escaped = HOSTILE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    assert page.count(escaped) >= 3  # ...and in the findings, the setup and the notes


def test_a_dollar_sign_in_a_name_is_not_mathtext():
    probes = {"data": {"feature_scale": {"price $ (usd)": 3.0, "$x^2$": 2.0, "a\\b": 1.0, "c\\$d": 1.0}}}
    svg = svg_of(lambda fig: draw_feature_scale(fig, probes, {}), "t")
    assert {"price $ (usd)", "$x^2$", "a\\b", "c\\$d"} <= set(Tags(svg).svg_text)


def test_self_contained(full_page):
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", full_page)
    assert "<link" not in full_page and "@import" not in full_page
    assert set(re.findall(r"url\((.)", full_page)) <= {"#"}  # only references inside the page
    ids = Counter(a["id"] for _, a in Tags(full_page).tags if "id" in a)
    assert [i for i, n in ids.items() if n > 1] == []
    assert "Content-Security-Policy" in full_page and "script-src" not in full_page  # default-src 'none'


def test_a_saved_report_json_renders_the_same_page(full_page):
    """The renderer reads plain report data only, deterministically: report.json gives the same page."""
    assert render_html(json.loads(full_report().to_json())) == full_page


def test_a_real_examination_renders(tmp_path):
    report = examined_with_hostile_names()
    path = tmp_path / "report.html"
    report.save_html(path)
    page = path.read_text(encoding="utf-8")
    drawn = {a["data-plot"] for t, a in Tags(page).tags if t == "figure"}
    assert "loss_curve" in drawn
    assert {k for k in ("gradients", "gates", "memory_length", "update_ratio", "lr_range", "small_batch", "signal")
            if k in report.probes} <= drawn
    assert "<script" not in page.lower()


def test_cli_writes_the_html_report(tmp_path, sunspots_frame):
    from lstm_doctor.cli import app

    csv = tmp_path / f"{XSS_IMG.replace('/', '')}.csv"
    sunspots_frame.to_csv(csv, index=False)
    out = tmp_path / "out.html"
    result = CliRunner().invoke(app, ["examine", str(csv), "--target", "sunspots", "--time", "year", "--window", "11",
                                      "--time-limit", "0", "--json", str(tmp_path / "r.json"), "--html", str(out)])
    assert result.exit_code in (0, 1), result.output
    page = out.read_text(encoding="utf-8")
    assert 'id="verdict"' in page and "status incomplete" in page
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;.csv" in page  # the file name, as text
    assert pd.read_json(tmp_path / "r.json", typ="series")["status"] == "incomplete"
