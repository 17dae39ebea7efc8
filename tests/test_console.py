"""The terminal verdict: the answer first, the evidence after; 80 columns; plain text in logs."""

from __future__ import annotations

import io

from rich.console import Console
from sample_reports import XSS_SCRIPT, full_report

from lstm_doctor.render.console import render
from lstm_doctor.report import Report


def printed(report: Report, *, terminal: bool = False, width: int = 80) -> str:
    buf = io.StringIO()
    render(report, Console(file=buf, width=width, force_terminal=terminal, color_system="standard" if terminal else None))
    return buf.getvalue()


def test_the_verdict_comes_first():
    lines = printed(full_report()).splitlines()
    assert lines[0].startswith("Symptom: not-learning (the model is not learning")
    text = "\n".join(lines)
    cause, fix = text.index("Most likely cause: D102 unscaled-inputs"), text.index("Fix: data.scale: standard")
    assert cause < fix < text.index("Validation") < text.index("Findings (3)") < text.index("Treatments")


def test_findings_show_rank_severity_key_numbers_and_fix():
    text = printed(full_report(), width=100)
    d102 = text[text.index("1  D102"):text.index("2  D111")]
    assert "critical" in d102 and "evidence: feature_scale." in d102 and "= 340.2" in d102
    assert "fix: data.scale: standard" in d102
    assert "verified by retraining (scale-inputs): val_rmse 3.1 -> 0.92" in d102
    assert text.index("2  D111") < text.index("3  T305")


def test_baselines_beside_the_model_loss():
    text = printed(full_report())
    table = text[text.index("Validation"):text.index("Findings")]
    rows = {line.split("  ")[0].strip(): line.split()[-2:] for line in table.splitlines() if "  " in line.strip()}
    assert rows["your model, best (step 500)"] == ["0.4213", "0.1"]
    assert rows["mean baseline"] == ["1", "1"] and rows["persistence baseline"] == ["0.4", "0.63"]
    assert "The probe ran 500 of the 1000 steps your training plans" in text


def test_treatments_before_and_after():
    text = printed(full_report())
    row = next(line for line in text.splitlines() if line.lstrip().startswith("scale-inputs"))
    assert row.split() == ["scale-inputs", "D102,", "T305", "val_rmse", "3.1", "0.92", "0.001", "yes"]


def test_fits_80_columns_plain_in_logs_colour_on_a_terminal():
    plain = printed(full_report())
    assert max(len(line.rstrip()) for line in plain.splitlines()) <= 80
    assert "\x1b[" not in plain
    assert all(ord(c) < 128 for line in plain.splitlines() if "---" in line for c in line)  # ASCII rules in logs
    coloured = printed(full_report(), terminal=True)
    assert "\x1b[" in coloured


def test_user_strings_are_not_read_as_markup():
    report = full_report("[bold]col[/bold]")
    assert "[bold]col[/bold]" in printed(report, width=100)
    assert XSS_SCRIPT in printed(full_report(), width=100)


def test_an_empty_report_says_so():
    text = printed(Report(symptom="unknown", status="incomplete", notes=["Time limit reached before the baselines probe."]))
    assert text.splitlines()[0].startswith("Symptom: unknown")
    assert "Status: incomplete. Time limit reached" in text and "No findings" in text
