"""The command line's contract: exit codes 0/1 (--fail-on), 2 for usage and input errors
(one paragraph, no traceback), 3 for internal errors; explain, rules, --ignore, --time-limit."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lstm_doctor import cli
from lstm_doctor.catalog import CODES
from lstm_doctor.findings import Finding
from lstm_doctor.report import Report


# The module, not the function of the same name that lstm_doctor exports.
EXAMINE = importlib.import_module("lstm_doctor.examine")


def run(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """``lstm-doctor ARGS`` in this process: (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["lstm-doctor", *args])
    with pytest.raises(SystemExit) as info:
        cli.main()
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


def assert_one_paragraph(err: str) -> None:
    assert err.startswith("lstm-doctor: ") and err.strip().count("\n") == 0 and "Traceback" not in err


def test_explain_a_code_and_a_name(monkeypatch, capsys):
    code, out, _ = run(monkeypatch, capsys, "explain", "D102")
    assert code == 0 and out.startswith("D102 unscaled-inputs (data, critical by default)") and "What it means" in out
    code, out, _ = run(monkeypatch, capsys, "explain", "unscaled-inputs")
    assert code == 0 and out.startswith("D102 ")


def test_explain_unknown_code(monkeypatch, capsys):
    code, _, err = run(monkeypatch, capsys, "explain", "Z999")
    assert code == 2 and "Unknown finding code 'Z999'" in err
    assert_one_paragraph(err)


def test_rules_lists_every_code(monkeypatch, capsys):
    code, out, _ = run(monkeypatch, capsys, "rules")
    assert code == 0 and all(c in out for c in CODES)


@pytest.mark.parametrize("args, expected", [
    (["examine"], "Nothing to examine"),
    (["examine", "nope.csv", "--target", "y"], "does not exist"),
    (["examine", "data.csv", "--window", "x"], "Invalid value for '--window'"),
    (["examine", "data.csv", "--windw", "3"], "No such option: --windw"),
    (["examine", "data.csv", "--task", "forecast"], "data.task (--task): Input should be 'regression', 'binary' or 'multiclass'"),
    (["examine", "data.csv", "--budget", "huge"], "Unknown budget 'huge'"),
    (["diagnose"], "No such command 'diagnose'"),
    (["explain"], "Missing argument"),
])
def test_usage_and_input_errors_exit_2_with_one_paragraph(monkeypatch, capsys, tmp_path, sunspots_frame, args, expected):
    monkeypatch.chdir(tmp_path)
    sunspots_frame.to_csv("data.csv", index=False)
    args = args + (["--target", "sunspots"] if "--target" not in args and args[:2] == ["examine", "data.csv"] else [])
    code, _, err = run(monkeypatch, capsys, *args)
    assert code == 2 and expected in err, err
    assert_one_paragraph(err)


def test_bad_setup_file_exits_2(monkeypatch, capsys, tmp_path):
    (tmp_path / "setup.yaml").write_text("data: {path: x.csv, window: 3\n")
    code, _, err = run(monkeypatch, capsys, "examine", "--config", str(tmp_path / "setup.yaml"))
    assert code == 2 and "not valid YAML" in err
    assert_one_paragraph(err)


@pytest.fixture
def fake_report(monkeypatch):
    """Replace the examination with one that returns chosen findings, recording its arguments."""
    seen: dict = {}

    def set_findings(*severities: str) -> dict:
        codes = {"critical": "D101", "warning": "D103", "info": "D105"}

        def examine(setup, **kwargs):
            seen.update(kwargs)
            return Report(symptom="not-learning", findings=[Finding.of(codes[s], f"a {s} finding") for s in severities])

        monkeypatch.setattr(EXAMINE, "examine", examine)
        return seen

    return set_findings


@pytest.mark.parametrize("severities, fail_on, expected", [
    ((), None, 0),
    (("warning",), None, 0),
    (("critical",), None, 1),
    (("warning",), "warning", 1),
    (("info",), "warning", 0),
    (("info",), "info", 1),
    (("critical", "info"), "never", 0),
])
def test_fail_on_sets_the_exit_status(monkeypatch, capsys, tmp_path, sunspots_csv, fake_report, severities, fail_on, expected):
    fake_report(*severities)
    report = tmp_path / "out" / "report.json"
    args = ["examine", str(sunspots_csv), "--target", "sunspots", "--json", str(report)]
    code, out, _ = run(monkeypatch, capsys, *args, *(["--fail-on", fail_on] if fail_on else []))
    assert code == expected
    assert len(json.loads(report.read_text())["findings"]) == len(severities)


def test_ignore_and_time_limit_reach_the_examination(monkeypatch, capsys, sunspots_csv, fake_report, tmp_path):
    seen = fake_report()
    code, _, _ = run(monkeypatch, capsys, "examine", str(sunspots_csv), "--target", "sunspots", "--ignore", "d102, T301,",
                     "--time-limit", "2.5", "--json", str(tmp_path / "r.json"))
    assert code == 0 and list(seen["ignore"]) == ["d102", "T301"] and seen["time_limit"] == 2.5


def test_internal_error_exits_3_without_traceback(monkeypatch, capsys, sunspots_csv):
    def broken(setup, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(EXAMINE, "examine", broken)
    monkeypatch.delenv("LSTM_DOCTOR_DEBUG", raising=False)
    code, _, err = run(monkeypatch, capsys, "examine", str(sunspots_csv), "--target", "sunspots")
    assert code == 3 and "internal error (ZeroDivisionError: a bug)" in err
    assert_one_paragraph(err)


def test_time_limit_zero_reports_incomplete(monkeypatch, capsys, sunspots_csv, tmp_path):
    """The real examination, stopped before any probe: the report is still written, and the exit
    status agrees with the findings in it; ignored codes never appear."""
    ignored = sorted(c for c in CODES if c.startswith("D"))
    report = tmp_path / "report.json"
    code, out, _ = run(monkeypatch, capsys, "examine", str(sunspots_csv), "--target", "sunspots", "--time", "year",
                       "--window", "8", "--time-limit", "0", "--json", str(report), "--ignore", ",".join(ignored))
    data = json.loads(report.read_text())
    assert data["status"] == "incomplete" and "Time limit" in " ".join(data["notes"])
    assert not {f["code"] for f in data["findings"]} & set(ignored)
    assert code == int(any(f["severity"] == "critical" for f in data["findings"]))


def test_installed_entry_point_exits_2_without_traceback(tmp_path):
    script = Path(sys.executable).with_name("lstm-doctor")
    proc = subprocess.run([str(script), "examine", str(tmp_path / "missing.csv"), "--target", "y"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    assert_one_paragraph(proc.stderr)
