"""The zoo's datasets and, for each, a healthy case: a properly set up model on it.

Real data ships inside PyPI packages (aeon's UCR/UEA sets, statsmodels' series);
synthetic series exist where a fault needs control (a known period, a known
dependency length). A healthy case scales the data with training statistics,
uses Adam at a sound learning rate and a window that covers the period; the
runner checks that it really beats the baselines.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Callable

import numpy as np
import pandas as pd

from bench.zoo.case import Case

# Fixed, so that every run splits pooled classification data the same way.
_SPLIT_SEED = 20240601
_VAL_SHARE = 0.3


# ------------------------------------------------------------------ raw loaders


def _aeon(name: str) -> tuple[list[np.ndarray], np.ndarray]:
    """Train and test cases of a UCR/UEA set pooled, each as (steps, channels)."""
    import aeon.datasets as ds

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # load_osuleaf's deprecation notice
        loader = getattr(ds, name)
        X, y = loader(split="train")
        Xt, yt = loader(split="test")
    cases = [np.asarray(c, dtype=np.float32).T for c in list(X) + list(Xt)]
    return cases, np.concatenate([np.asarray(y), np.asarray(yt)])


def _split(cases: list[np.ndarray], y: np.ndarray, *, pad_to: int | None = None) -> dict[str, np.ndarray]:
    """A fixed random train/validation split of independent cases (not a series),
    padded at the end to ``pad_to`` steps with ``lengths`` when lengths differ."""
    order = np.random.default_rng(_SPLIT_SEED).permutation(len(cases))
    n_val = int(round(len(cases) * _VAL_SHARE))
    parts = {"": order[n_val:], "_val": order[:n_val]}
    lengths = np.array([len(c) for c in cases])
    ragged = pad_to is not None or len(set(lengths)) > 1
    steps = max(pad_to or 0, int(lengths.max()))
    out: dict[str, np.ndarray] = {}
    for suffix, idx in parts.items():
        X = np.zeros((len(idx), steps, cases[0].shape[1]), dtype=np.float32)
        for row, i in enumerate(idx):
            X[row, : lengths[i]] = cases[i]
        out["X" + suffix], out["y" + suffix] = X, y[idx]
        if ragged:
            out["lengths" + suffix] = lengths[idx].astype(np.int64)
    return out


@lru_cache(maxsize=None)
def classification(name: str) -> dict[str, np.ndarray]:
    """The arrays of a classification dataset (cached; callers copy before editing)."""
    loader, every = CLASSIFICATION[name]
    cases, y = _aeon(loader)
    return _split([c[::every] for c in cases], y)


@lru_cache(maxsize=None)
def series(name: str) -> pd.DataFrame:
    """The table of a forecasting dataset (cached; callers copy before editing)."""
    return SERIES[name]()


def _sunspots() -> pd.DataFrame:
    import statsmodels.api as sm

    frame = sm.datasets.sunspots.load_pandas().data
    return pd.DataFrame({"t": frame["YEAR"].astype(int), "sunspots": frame["SUNACTIVITY"].astype(float)})


def _elnino() -> pd.DataFrame:
    """Monthly sea surface temperature 1950-2010 (the yearly table laid out month by month)."""
    import statsmodels.api as sm

    wide = sm.datasets.elnino.load_pandas().data
    sst = wide.drop(columns="YEAR").to_numpy(dtype=float).reshape(-1)
    return pd.DataFrame({"t": np.arange(len(sst)), "sst": sst})


def _co2_weekly() -> pd.DataFrame:
    import statsmodels.api as sm

    frame = sm.datasets.co2.load_pandas().data.interpolate(limit_direction="both")
    return pd.DataFrame({"t": np.arange(len(frame)), "co2": frame["co2"].to_numpy(dtype=float)})


def _co2_monthly_change() -> pd.DataFrame:
    """Month-on-month change of CO2 (ppm): the trend removed, the yearly cycle kept."""
    import statsmodels.api as sm

    monthly = sm.datasets.co2.load_pandas().data["co2"].resample("MS").mean().interpolate(limit_direction="both")
    change = monthly.diff().dropna().to_numpy(dtype=float)
    return pd.DataFrame({"t": np.arange(len(change)), "co2_change": change})


def _sine() -> pd.DataFrame:
    """A noisy sine of known period 40 (the period the window must cover)."""
    rng = np.random.default_rng(7)
    t = np.arange(2000)
    return pd.DataFrame({"t": t, "wave": np.sin(2 * np.pi * t / SINE_PERIOD) + 0.2 * rng.standard_normal(len(t))})


def _lag() -> pd.DataFrame:
    """White-noise input x and a target that repeats x after LAG steps: a known dependency length."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal(3000)
    y = np.r_[np.zeros(LAG), x[:-LAG]]
    return pd.DataFrame({"t": np.arange(len(x)), "x": x, "echo": y}).iloc[LAG:].reset_index(drop=True)


SINE_PERIOD = 40
LAG = 8

# name -> (aeon loader, keep every n-th step). GunPoint and BasicMotions are
# downsampled to 50 steps: same classes, a third of the CPU time.
CLASSIFICATION: dict[str, tuple[str, int]] = {
    "italy_power": ("load_italy_power_demand", 1),
    "gunpoint": ("load_gunpoint", 3),
    "basic_motions": ("load_basic_motions", 2),
    "japanese_vowels": ("load_japanese_vowels", 1),
    "osuleaf": ("load_osuleaf", 1),
}
SERIES: dict[str, Callable[[], pd.DataFrame]] = {
    "sunspots": _sunspots,
    "elnino": _elnino,
    "co2_weekly": _co2_weekly,
    "co2_monthly_change": _co2_monthly_change,
    "sine": _sine,
    "lag": _lag,
}

# Healthy recipes. Tables: (target, features, window, epochs, hidden, lr); the
# window covers the period (sunspots ~11 years, monthly data 12, the sine 40,
# the echo LAG). Epochs, units and learning rates were raised until each control
# has real skill with two seeds (bench/zoo/runner.beats_baselines): the echo
# and the monthly CO2 change need a larger step, GunPoint 100 epochs.
_TABLE: dict[str, tuple[str, list[str], int, int, int, float]] = {
    "sunspots": ("sunspots", ["sunspots"], 22, 60, 16, 3e-3),
    "elnino": ("sst", ["sst"], 24, 20, 16, 3e-3),
    "co2_monthly_change": ("co2_change", ["co2_change"], 24, 60, 16, 1e-2),
    "sine": ("wave", ["wave"], 60, 8, 16, 3e-3),
    "lag": ("echo", ["x"], LAG + 8, 8, 32, 1e-2),
    # Weekly CO2 keeps its trend: validation lies above anything training saw (a
    # real D107), so it serves faults only, never as a healthy control.
    "co2_weekly": ("co2", ["co2"], 64, 8, 16, 3e-3),
}
# Dominant period of each series in steps (what a window should cover).
PERIOD: dict[str, int] = {"sunspots": 11, "elnino": 12, "co2_monthly_change": 12, "sine": 40, "co2_weekly": 52}
# Arrays: (epochs, learning rate).
_ARRAYS: dict[str, tuple[int, float]] = {
    "italy_power": (15, 3e-3),
    "gunpoint": (100, 3e-3),
    "basic_motions": (100, 3e-3),
    "japanese_vowels": (25, 3e-3),
    "osuleaf": (20, 3e-3),
}
DATASETS: tuple[str, ...] = tuple(_ARRAYS) + tuple(_TABLE)
# Each dataset's fixed share in the tuning/report split (scenarios.split_of).
# Written out, never derived from an order, so that adding or dropping a dataset
# can never move a case from one split to the other. A new dataset takes 0 or 1.
SPLIT_PARITY: dict[str, int] = {
    "italy_power": 0, "gunpoint": 1, "basic_motions": 0, "japanese_vowels": 1, "osuleaf": 1,
    "sunspots": 0, "elnino": 1, "co2_monthly_change": 0, "sine": 1, "lag": 0, "co2_weekly": 1,
}
# Healthy controls: the datasets whose healthy case really beats the baselines in
# the quick budget. OSULeaf (427 steps) is long enough to be a D109 case on its
# own, and weekly CO2 trends (D107).
HEALTHY: tuple[str, ...] = ("italy_power", "gunpoint", "basic_motions", "japanese_vowels",
                            "sunspots", "elnino", "co2_monthly_change", "sine", "lag")


def healthy(name: str, seed: int) -> Case:
    """The properly set up case on dataset ``name`` with training seed ``seed``."""
    if name in _TABLE:
        target, features, window, epochs, hidden, lr = _TABLE[name]
        return Case(
            source=series(name),
            data={"target": target, "features": features, "time": "t", "window": window, "horizon": 1,
                  "task": "regression", "scale": "standard", "split": "temporal", "val_fraction": 0.2},
            model={"cell": "lstm", "hidden": hidden},
            training={"loss": "mse", "optimizer": "adam", "lr": lr, "batch_size": 32, "epochs": epochs, "seed": seed},
            dataset=name,
        )
    if name not in _ARRAYS:
        raise KeyError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    arrays = classification(name)
    epochs, lr = _ARRAYS[name]
    n_classes = len(np.unique(arrays["y"]))
    task = "binary" if n_classes == 2 else "multiclass"
    return Case(
        source=arrays,
        data={"task": task, "scale": "standard"},
        model={"cell": "lstm", "hidden": 16, "readout": "true-end" if "lengths" in arrays else "last"},
        training={"loss": "bce" if task == "binary" else "ce", "optimizer": "adam", "lr": lr, "batch_size": 32,
                  "epochs": epochs, "seed": seed},
        dataset=name,
    )
