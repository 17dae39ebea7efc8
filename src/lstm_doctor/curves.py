"""Measures of loss curves, shared by the symptom and the training-dynamics rules.

Plain functions of lists of numbers: no evidence keys, no judgments. Every
level is a median over a stretch of the curve, so that one noisy batch or one
lucky validation pass does not move it.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

SPIKE_FACTOR = 2.0  # a validation loss more than double its recent level is a spike
SPIKE_HISTORY = 5  # evaluations that make the recent level


def finite(values: Iterable) -> list[float]:
    return [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def rolling_median(values: Iterable[float], half: int) -> np.ndarray:
    """Centred rolling median over ``2 * half + 1`` points (fewer at the ends): no lag, robust to spikes."""
    x = np.asarray(list(values), dtype=float)
    return np.array([np.median(x[max(0, i - half) : i + half + 1]) for i in range(len(x))])


def head_level(values: list[float], fraction: float = 0.05) -> float:
    """Median of the first ``fraction`` of the curve (at least 3 points)."""
    return float(np.median(values[: max(3, int(len(values) * fraction))]))


def tail_level(values: list[float], fraction: float = 0.1) -> float:
    """Median of the last ``fraction`` of the curve (at least 3 points)."""
    return float(np.median(values[-max(3, int(len(values) * fraction)) :]))


def quarter_medians(values: list[float]) -> list[float]:
    """Medians of the curve's four quarters (needs at least 8 points)."""
    return [float(np.median(q)) for q in np.array_split(np.asarray(values, dtype=float), 4)]


def spike_count(values: list[float]) -> int:
    """Points more than ``SPIKE_FACTOR`` times the median of the ``SPIKE_HISTORY`` before them."""
    return sum(1 for i in range(1, len(values))
               if values[i] > SPIKE_FACTOR * float(np.median(values[max(0, i - SPIKE_HISTORY) : i])))


def swings(values: list[float]) -> tuple[float, float] | None:
    """How much the curve's second half moves between consecutive points: (median |log change|,
    median |change|). None under 12 points. A log change of 0.2 is a typical move of ~20%."""
    half = [v for v in values[len(values) // 2 :] if v > 0]
    if len(half) < 6:
        return None
    return float(np.median(np.abs(np.diff(np.log(half))))), float(np.median(np.abs(np.diff(half))))


def lowest_level(values: list[float]) -> float:
    """Minimum of the curve under a rolling median over a fifth of it: one lucky point does not count."""
    return float(rolling_median(values, max(2, len(values) // 10)).min())


def train_rise(train: list[float]) -> tuple[float, float]:
    """How far the smoothed training loss ends above its lowest point: (end / lowest, (end - lowest) / start)."""
    smoothed = rolling_median(train, max(2, len(train) // 20))
    start, end, low = head_level(train), tail_level(train), float(smoothed.min())
    return (end / low if low > 0 else math.inf), ((end - low) / start if start > 0 else 0.0)


def relative_drop(train: list[float]) -> float:
    """Fall of the training loss from its start to its end, as a fraction of the start."""
    start = head_level(train)
    return (start - tail_level(train)) / start if start > 0 else 0.0


def overfit_rise(val: list[float], val_steps: list[int], train: list[float]) -> tuple[float, int, bool] | None:
    """How the validation loss ends against its lowest point: (end level over lowest level,
    index of the lowest, whether the training loss fell by 5% or more since then).

    The lowest level is the minimum of a rolling median over a fifth of the curve
    (a single lucky evaluation does not count); the end level the median of the
    last fifth. None with fewer than 6 evaluations or when the lowest point is
    among the last three (a rise needs a few evaluations to be seen).
    """
    if len(val) < 6:
        return None
    smoothed = rolling_median(val, max(2, len(val) // 10))
    best = int(np.argmin(smoothed))
    if best >= len(val) - 3 or smoothed[best] <= 0:
        return None
    rise = tail_level(val, 0.2) / lowest_level(val)
    improved = bool(train) and tail_level(train) < 0.95 * tail_level(train[: max(3, val_steps[best])])
    return rise, best, improved


def late_share(val: list[float]) -> float | None:
    """Share of the validation loss's whole fall made in the last quarter of the curve: from the
    third quarter's median to the last's, over the first point down to the last quarter's median.
    None under 8 points or without a fall. An exponential approach that has run three time
    constants makes about 10% of its fall in its last quarter, a straight line 25%."""
    if len(val) < 8:
        return None
    q = quarter_medians(val)
    total = val[0] - q[3]
    return (q[2] - q[3]) / total if total > 0 else None
