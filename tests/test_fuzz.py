"""Reliability: over a thousand generated files and setups, each ends in a loaded Setup or a clear
InputError (and through the CLI in exit 0/1 or 2 with one paragraph), never another exception.

The strategies live in tests/strategies.py; runs are derandomized, so a failure reproduces
on every run and hypothesis prints the smallest case it found.
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from strategies import YAML_TEXT, FileCase, csv_case, npz_case, parquet_case, setup_dict

from lstm_doctor import cli
from lstm_doctor.errors import InputError
from lstm_doctor.setups import Setup, load_setup, setup_from

FUZZ = settings(deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=list(HealthCheck))


def outcome(make: Callable[[], Setup]) -> str:
    """'loaded' (with windows that batch) or 'error' (an InputError of one paragraph); anything else fails."""
    try:
        setup = make()
    except InputError as err:
        message = str(err)
        assert message and "\n" not in message, repr(message)
        return "error"
    data = setup.data
    assert len(data.train) >= 1 and len(data.val) >= 1
    for part in (data.train, data.val):
        x, y, lengths = part.batch(torch.arange(min(len(part), 3)))
        assert x.shape[1:] == (data.steps, data.n_features) and len(y) == len(x)
        assert lengths is None or len(lengths) == len(x)
    return "loaded"


def write_setup(folder: Path, case: FileCase) -> Path:
    (folder / case.name).write_bytes(case.content)
    path = folder / "setup.yaml"
    path.write_text(yaml.safe_dump({"data": {"path": case.name, **case.data}, "model": case.model, "training": case.training}))
    return path


def fuzz_files(strategy, examples: int) -> Counter:
    seen: Counter = Counter()

    @settings(FUZZ, max_examples=examples)
    @given(strategy)
    def run(case: FileCase) -> None:
        with tempfile.TemporaryDirectory() as folder:
            seen[outcome(lambda: load_setup(write_setup(Path(folder), case)))] += 1

    run()
    return seen


def assert_both_outcomes(seen: Counter) -> None:
    # A fuzzer that never loads a file (or never fails) is not exploring the input space.
    total = sum(seen.values())
    assert seen["loaded"] >= 0.1 * total and seen["error"] >= 0.1 * total, seen


def test_csv_files():
    assert_both_outcomes(fuzz_files(csv_case(), 400))


def test_parquet_files():
    assert_both_outcomes(fuzz_files(parquet_case(), 220))


def test_npz_files():
    assert_both_outcomes(fuzz_files(npz_case(), 330))


GOOD_CSV = "t,s,x,y\n" + "".join(f"{i},s{i // 150},{np.sin(i / 3):.4f},{np.cos(i / 3):.4f}\n" for i in range(300))


def test_setup_files():
    seen: Counter = Counter()

    @settings(FUZZ, max_examples=300)
    @given(setup_dict())
    def run(raw: dict[str, Any]) -> None:
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "data.csv").write_text(GOOD_CSV)
            if isinstance(raw.get("data"), dict):
                raw["data"].setdefault("path", "data.csv")
            path = Path(folder) / "setup.yaml"
            path.write_text(yaml.safe_dump(raw, allow_unicode=True))
            seen[outcome(lambda: load_setup(path))] += 1

    run()
    assert_both_outcomes(seen)


def test_setup_dicts_in_memory():
    frame = __import__("pandas").read_csv(io.StringIO(GOOD_CSV))

    @settings(FUZZ, max_examples=60)
    @given(setup_dict())
    def run(raw: dict[str, Any]) -> None:
        sections = {k: raw.get(k) for k in ("data", "model", "training")}
        if isinstance(sections["data"], dict):
            sections["data"].pop("path", None)
        outcome(lambda: setup_from(frame, **sections))

    run()


def test_malformed_yaml_text():
    @settings(FUZZ, max_examples=60)
    @given(YAML_TEXT)
    def run(text: str) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "setup.yaml"
            path.write_text(text)
            outcome(lambda: load_setup(path))

    run()


# ---------------------------------------------------------------- through the command line

FLAGS = {"target": "--target", "features": "--features", "time": "--time", "series_id": "--series-id", "window": "--window",
         "horizon": "--horizon", "task": "--task", "scale": "--scale", "split": "--split", "val_fraction": "--val-fraction",
         "hidden": "--hidden", "loss": "--loss", "seed": "--seed"}


def cli_args(case: FileCase, path: Path, report: Path) -> list[str]:
    args = ["examine", str(path), "--time-limit", "0", "--fail-on", "never", "--json", str(report)]
    for key, value in {**case.data, **case.model, **case.training}.items():
        args += [FLAGS[key], ",".join(value) if isinstance(value, list) else str(value)]
    return args


def run_cli(args: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["lstm-doctor", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as info:
            cli.main()
    finally:
        sys.argv = argv
    return info.value.code, err.getvalue()


def test_cli_loading_stage():
    """A sample through `examine --time-limit 0`: data loading and inspection, no probes."""
    codes: Counter = Counter()

    @settings(FUZZ, max_examples=30)
    @given(csv_case() | npz_case())
    def run(case: FileCase) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / case.name
            path.write_bytes(case.content)
            code, err = run_cli(cli_args(case, path, Path(folder) / "report.json"))
            codes[code] += 1
            assert code in (0, 2), err
            if code == 2:
                assert err.startswith("lstm-doctor: ") and err.strip().count("\n") == 0 and "Traceback" not in err, err
            else:
                assert (Path(folder) / "report.json").is_file()

    run()
    assert codes[0] and codes[2], codes
