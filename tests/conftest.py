"""Shared fixtures: small real datasets that ship inside PyPI packages, and setup builders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

# One thread: the tests' models are tiny, and on a busy 2-core machine two threads spin-wait on
# each other (measured: test_training + test_models 66 s / 26 s CPU with two, 16 s / 10 s CPU with one).
torch.set_num_threads(1)

# Every report that lstm_doctor.examine returns in this run must match the report's JSON schema.
from report_schema_guard import reports_match_schema  # noqa: E402,F401


@pytest.fixture(scope="session")
def co2_frame() -> pd.DataFrame:
    """Weekly CO2 (ppm) at Mauna Loa, 2284 rows, gaps interpolated (statsmodels)."""
    import statsmodels.api as sm

    frame = sm.datasets.co2.load_pandas().data
    return frame.interpolate(limit_direction="both").rename_axis("date").reset_index()


@pytest.fixture(scope="session")
def sunspots_frame() -> pd.DataFrame:
    """Yearly sunspot numbers 1700-2008, 309 rows (statsmodels)."""
    import statsmodels.api as sm

    return sm.datasets.sunspots.load_pandas().data.rename(columns={"YEAR": "year", "SUNACTIVITY": "sunspots"})


@pytest.fixture
def sunspots_csv(tmp_path, sunspots_frame) -> Path:
    """The sunspots frame as a CSV file in the test's own folder (for the command line)."""
    path = tmp_path / "sunspots.csv"
    sunspots_frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def macro_frame() -> pd.DataFrame:
    """US quarterly macro data, 203 x 14 (statsmodels)."""
    import statsmodels.api as sm

    return sm.datasets.macrodata.load_pandas().data


def _aeon(loader_name: str) -> dict[str, np.ndarray]:
    import aeon.datasets as ds

    loader = getattr(ds, loader_name)
    X, y = loader(split="train")
    Xv, yv = loader(split="test")
    # aeon gives (cases, channels, length); the model wants (cases, length, channels).
    return {"X": np.transpose(X, (0, 2, 1)).astype(np.float32), "y": y, "X_val": np.transpose(Xv, (0, 2, 1)).astype(np.float32), "y_val": yv}


@pytest.fixture(scope="session")
def italy_power() -> dict[str, np.ndarray]:
    """ItalyPowerDemand (UCR): 67 train / 1029 test, 24 steps, 2 classes (aeon)."""
    return _aeon("load_italy_power_demand")


@pytest.fixture(scope="session")
def gunpoint() -> dict[str, np.ndarray]:
    """GunPoint (UCR): 50 train / 150 test, 150 steps, 2 classes (aeon)."""
    return _aeon("load_gunpoint")


@pytest.fixture(scope="session")
def arrow_head() -> dict[str, np.ndarray]:
    """ArrowHead (UCR): 36 train / 175 test, 251 steps, 3 classes (aeon)."""
    return _aeon("load_arrow_head")
