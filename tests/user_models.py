"""Models and data as users write them, shared by the tests of examine_model, watch and the framework callbacks.

The data builders prepare the bundled real datasets (tests/conftest.py) the way
a user does before training: standardized with training statistics only,
sliding windows, 0-based class indices. They return NumPy arrays, so a Keras
fit in another process can be handed the very same windows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

Split = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


class Classifier(nn.Module):
    """The classic user model: a recurrent layer (or stack) and a linear head on the last step."""

    def __init__(self, cell: type[nn.RNNBase], features: int, classes: int, batch_first: bool = True, hidden: int = 16,
                 layers: int = 1):
        super().__init__()
        self.rnn = cell(features, hidden, num_layers=layers, batch_first=batch_first)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


class Forecaster(Classifier):
    """One series in, its next value out."""

    def __init__(self, cell: type[nn.RNNBase], batch_first: bool = True, **kwargs):
        super().__init__(cell, 1, 1, batch_first, **kwargs)


def ucr(arrays: dict) -> Split:
    """Standardized inputs and 0-based class indices, as a user prepares a UCR set."""
    mean, std = arrays["X"].mean(), arrays["X"].std()
    labels = sorted(set(arrays["y"]))
    index = lambda y: np.array([labels.index(v) for v in y])  # noqa: E731
    return ((arrays["X"] - mean) / std, index(arrays["y"])), ((arrays["X_val"] - mean) / std, index(arrays["y_val"]))


def _windows(table: np.ndarray, target: int, window: int, train_rows: int) -> Split:
    """Sliding windows over ``table`` (rows, columns) standardized on its first ``train_rows`` rows; the target is the next row's column."""
    table = (table - table[:train_rows].mean(axis=0)) / table[:train_rows].std(axis=0)
    X = np.stack([table[i : i + window] for i in range(len(table) - window)]).astype(np.float32)
    y = table[window:, target : target + 1].astype(np.float32)
    n = train_rows - window
    return (X[:n], y[:n]), (X[n:], y[n:])


def sunspot_arrays(frame: pd.DataFrame, window: int = 22) -> Split:
    """Windows over the standardized yearly sunspot series (training statistics only), the last 20% for validation."""
    series = frame["sunspots"].to_numpy(np.float32)[:, None]
    return _windows(series, 0, window, int(len(series) * 0.8))


def sunspot_windows(frame: pd.DataFrame, window: int = 22) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """:func:`sunspot_arrays` as tensors."""
    (x, y), (xv, yv) = sunspot_arrays(frame, window)
    return (torch.tensor(x), torch.tensor(y)), (torch.tensor(xv), torch.tensor(yv))


GROWTH = ["realgdp", "realcons", "realinv", "realgovt", "realdpi", "cpi", "m1", "pop"]
RATES = ["tbilrate", "unemp", "infl", "realint"]


def macro_growth_arrays(frame: pd.DataFrame, window: int = 8) -> Split:
    """Next quarter's real GDP growth from 8 quarters of all 12 US macro series (levels as growth rates), standardized."""
    table = frame[GROWTH].pct_change().join(frame[RATES]).dropna().to_numpy(np.float64)
    return _windows(table, 0, window, int(len(table) * 0.8))


def codes(report) -> list[str]:
    return [f.code for f in report.findings]


def criticals(report) -> list[str]:
    return [f.code for f in report.findings if f.severity == "critical"]
