"""Interrupted runs stop cleanly: Ctrl-C (a real SIGINT to a running ``lstm-doctor
examine``, in training or in the treatment trials) and ``--time-limit`` (in probes or
treatments) still write the report, with ``status: incomplete`` and what was measured
so far, atomically (the JSON parses, no temporary file is left). Ctrl-C exits 130.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import lstm_doctor
from lstm_doctor import examine_model
from lstm_doctor.evidence import Evidence
from lstm_doctor.findings import Finding
from lstm_doctor.probes import ProbeContext
from lstm_doctor.probes.lr_range import lr_range
from lstm_doctor.probes.small_batch import small_batch
from lstm_doctor.report import Report
from lstm_doctor.training import TimeLimitReached
from lstm_doctor.treat.trials import TrialSpec, run_trial
from lstm_doctor.treat.verify import treat
from small_cli import SMALL

SMALL_CLI = Path(__file__).with_name("small_cli.py")


def temporary_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def interrupted_cli(tmp_path: Path, mark: str, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    """Run the command line in a process of its own and send it SIGINT once ``mark`` has started."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    report = tmp_path / "report.json"
    with open(tmp_path / "stdout.txt", "w") as out:
        proc = subprocess.Popen([sys.executable, str(SMALL_CLI), "--mark", mark, "examine", *args, "--json", str(report)],
                                stdout=out, stderr=subprocess.PIPE, text=True, env=env)
        lines = []
        for line in proc.stderr:  # the process announces the mark on stderr
            lines.append(line)
            if line.startswith(f"started {mark}"):
                proc.send_signal(signal.SIGINT)
                break
        err = "".join(lines) + proc.stderr.read()
        code = proc.wait(timeout=120)
    assert any(line.startswith(f"started {mark}") for line in lines), err
    return subprocess.CompletedProcess(proc.args, code, (tmp_path / "stdout.txt").read_text(), err), json.loads(report.read_text())


def test_ctrl_c_during_training_writes_both_reports_and_exits_130(tmp_path, sunspots_csv):
    # Raw sunspot counts: findings come from the inspection and the probes before the training run.
    proc, report = interrupted_cli(tmp_path, "training_run", str(sunspots_csv), "--target", "sunspots", "--time", "year",
                                   "--window", "8", "--hidden", "16", "--epochs", "300", "--html", str(tmp_path / "report.html"))
    assert proc.returncode == 130 and "Traceback" not in proc.stderr
    assert "interrupted" in proc.stderr and "holds what was measured" in proc.stderr
    assert report["status"] == "incomplete"
    assert "Interrupted during the training_run probe" in " ".join(report["notes"])
    assert "D102" in [f["code"] for f in report["findings"]]  # what was found before Ctrl-C is kept
    assert {"baselines", "signal"} <= set(report["probes"]) and "loss_curve" not in report["probes"]
    assert "incomplete" in (tmp_path / "report.html").read_text()
    assert not temporary_files(tmp_path)


def test_ctrl_c_during_treatment_trials_keeps_the_examination(tmp_path, sunspots_csv):
    proc, report = interrupted_cli(tmp_path, "trial", str(sunspots_csv), "--target", "sunspots", "--time", "year",
                                   "--window", "8", "--hidden", "16", "--epochs", "20", "--treat",
                                   "--write-setup", str(tmp_path / "fixed.yaml"))
    assert proc.returncode == 130 and "Traceback" not in proc.stderr
    assert report["status"] == "incomplete" and "Treatment trials were interrupted" in " ".join(report["notes"])
    assert report["findings"] and report["probes"]["loss_curve"]["train_steps"]  # the whole examination is there
    assert report["recommended_setup"] is None and not (tmp_path / "fixed.yaml").exists()
    assert not temporary_files(tmp_path)


class Interrupted(nn.Module):
    """A classifier whose 40th call raises KeyboardInterrupt, as Ctrl-C does in the middle of a probe."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(1, 8, batch_first=True)
        self.head = nn.Linear(8, 2)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls == 40:
            raise KeyboardInterrupt
        return self.head(self.rnn(x)[0][:, -1])


def test_ctrl_c_inside_a_probe_keeps_the_users_model_and_random_state(italy_power):
    torch.manual_seed(0)
    model = Interrupted()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = italy_power["X"], italy_power["y"].astype(int) - 1
    val = (italy_power["X_val"][:100], italy_power["y_val"][:100].astype(int) - 1)
    torch.manual_seed(5), np.random.seed(5), random.seed(5)
    before = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    report = examine_model(model, (x, y), val, loss=nn.CrossEntropyLoss(), optimizer=torch.optim.Adam(model.parameters()),
                           task="multiclass", epochs=5, batch_size=16, budget=SMALL)
    assert report.interrupted and report.status == "incomplete"
    assert any(n.startswith("Interrupted during the ") and n.endswith("probe; the report holds what the probes before it measured.")
               for n in report.notes), report.notes
    json.loads(report.to_json())
    assert torch.equal(before[0], torch.get_rng_state()) and np.array_equal(before[1], np.random.get_state()[1])
    assert before[2] == random.getstate()
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items()) and model.calls == 0


@pytest.fixture
def sunspots_setup(sunspots_frame) -> lstm_doctor.Setup:
    return lstm_doctor.setup_from(sunspots_frame, data={"target": "sunspots", "time": "year", "window": 8},
                                  model={"hidden": 8}, training={"epochs": 300})


@pytest.mark.parametrize("probe", [small_batch, lr_range])
def test_a_probe_cut_by_the_time_limit_writes_nothing_partial(sunspots_setup, probe):
    """Half a range test has its minimum at the cut and half a small-batch fit has not fitted:
    both would be read as findings (T301, T309); they are left out instead."""
    ctx = ProbeContext(sunspots_setup, SMALL, deadline=time.monotonic() - 1)
    with pytest.raises(TimeLimitReached, match="1 step in"):
        probe(ctx)
    assert not ctx.evidence and not ctx.plots


def test_treatment_trials_past_the_time_limit_are_not_judged(sunspots_setup):
    findings = [Finding.of("D102", "Inputs are ~80x unit scale."), Finding.of("D104", "The target is ~80x unit scale.")]
    result = treat(sunspots_setup, findings, Evidence(), SMALL, deadline=time.monotonic() - 1)
    assert not result.complete and not result.interrupted
    cut = re.match(r"Time limit reached during the treatment trials: (\d+) of (\d+) were cut short", result.notes[0])
    assert cut and cut[1] == cut[2], result.notes
    assert all(f.verified is None for f in findings) and result.recommended_setup is None


def test_a_trial_cut_by_the_time_limit_has_no_metrics(sunspots_frame):
    config = {"data": {"target": "sunspots", "window": 8}, "model": {"hidden": 8}, "training": {"epochs": 300}}
    result = run_trial(TrialSpec("untreated", config, 0, 10_000, deadline=time.time() + 0.5), sunspots_frame)
    assert result["stopped"] == "time-limit" and result["metrics"] == {} and 0 < result["steps"] < 10_000


def test_time_limit_with_treat_stops_in_time(monkeypatch, capsys, tmp_path, sunspots_csv):
    """Before, --treat ignored --time-limit: the trials ran their full course."""
    from lstm_doctor import cli
    from lstm_doctor.budget import BUDGETS

    monkeypatch.setitem(BUDGETS, "quick", SMALL)
    limit = 8.0
    monkeypatch.setattr(sys, "argv", ["lstm-doctor", "examine", str(sunspots_csv), "--target", "sunspots", "--time", "year",
                                      "--window", "8", "--hidden", "16", "--epochs", "300", "--treat", "--time-limit", str(limit),
                                      "--json", str(tmp_path / "report.json")])
    with pytest.raises(SystemExit) as info:
        cli.main()
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "incomplete"
    assert info.value.code == int(any(f["severity"] == "critical" for f in report["findings"])), capsys.readouterr().err
    if "treat_s" in report["timing"]:  # the probes finished in time, the trials did not
        assert "Time limit reached during the treatment trials" in " ".join(report["notes"])
    # The run ends at the limit, give or take a training step and the report (the inspection is not cut).
    assert report["timing"]["total_s"] < max(limit, report["timing"]["inspect_s"]) + 5


def test_an_interrupted_write_leaves_the_previous_report_and_no_temporary_file(monkeypatch, tmp_path):
    path = tmp_path / "report.json"
    Report(symptom="healthy").save_json(path)
    before = path.read_text()

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        Report(symptom="not-learning").save_json(path)
    assert path.read_text() == before and not temporary_files(tmp_path)
