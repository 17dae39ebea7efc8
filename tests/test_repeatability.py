"""Runs repeat: the same setup and seed give the same findings, evidence and probe numbers
on the same machine, through the Python API and through the command line in a fresh
process (its own hash seed, so nothing may hang on the order of a set of strings).
Only timing differs: ``report.timing`` and any ``*seconds`` key are left out.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import lstm_doctor
from lstm_doctor import cli
from lstm_doctor.budget import BUDGETS
from small_cli import SMALL

SMALL_CLI = Path(__file__).with_name("small_cli.py")


def without_timing(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if k != "timing" and not k.endswith("seconds")}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


def test_examine_twice_gives_the_same_report(italy_power):
    setup = lstm_doctor.setup_from(dict(italy_power), data={"task": "binary"}, model={"hidden": 8},
                                   training={"epochs": 5, "batch_size": 16})
    first = json.loads(lstm_doctor.examine(setup, budget=SMALL).to_json())
    torch.manual_seed(7), np.random.seed(7), random.seed(7)  # whatever the caller's state, the same report
    second = json.loads(lstm_doctor.examine(setup, budget=SMALL).to_json())
    assert first["findings"] and first["probes"]["signal"]["real"] and first["timing"]
    assert without_timing(first) == without_timing(second)


def test_the_command_line_in_a_fresh_process_gives_the_same_report(monkeypatch, capsys, tmp_path, sunspots_frame):
    data = tmp_path / "sunspots.csv"
    sunspots_frame.to_csv(data, index=False)
    args = ["examine", str(data), "--target", "sunspots", "--time", "year", "--window", "11", "--hidden", "8", "--epochs", "4"]
    # A fresh interpreter with its own hash seed, on one thread like this test process (conftest.py).
    env = {**os.environ, "PYTHONHASHSEED": "12345", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(SMALL_CLI), *args, "--json", str(tmp_path / "fresh.json")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode in (0, 1), proc.stderr
    monkeypatch.setitem(BUDGETS, "quick", SMALL)
    monkeypatch.setattr(sys, "argv", ["lstm-doctor", *args, "--json", str(tmp_path / "here.json")])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == proc.returncode, capsys.readouterr().err
    fresh, here = (json.loads((tmp_path / name).read_text()) for name in ("fresh.json", "here.json"))
    assert fresh["findings"] and fresh["probes"]["loss_curve"]["train_steps"]
    assert without_timing(fresh) == without_timing(here)
