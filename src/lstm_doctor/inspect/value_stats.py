"""Statistics of one column of values, as the model is fed them. Facts only, no judgments."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# Medians, MADs and distinct counts are read from an evenly strided sample of at most this
# many values, which keeps a million-row column to a few tens of milliseconds; means,
# extremes and tails use every value.
ROBUST_SAMPLE = 200_000
# The tail whose share of the squared deviations is reported (1% of the values).
TAIL_FRACTION = 0.01
# Consistency constants: 1.4826 * MAD and 1.2533 * mean absolute deviation estimate a
# normal standard deviation (Iglewicz & Hoaglin 1993, the modified z-score).
MAD_TO_SD = 1.4826
MEAN_AD_TO_SD = 1.2533
# A column whose ``magnitude`` exceeds this is off unit scale: an offset or spread that
# large saturates tanh and sigmoid gates fed by default-initialized weights.
UNIT_SCALE_LIMIT = 10.0


def column_stats(values: np.ndarray) -> dict[str, Any] | None:
    """Mean, spread, extremes and tail weight of the finite ``values``; None when there are none.

    ``magnitude`` is max(|median|, std): how far the values sit from unit scale,
    whether by offset or by spread. ``robust_z_max`` is the largest |x - median| in
    robust standard deviations (the MAD, or the mean absolute deviation when the MAD
    is 0). ``tail_share`` is the share of the squared deviations from the mean that
    the most extreme 1% of values carry (about 0.08 for normal data). ``distinct``
    counts distinct values in the sample.

    >>> column_stats(np.array([1.0, 2.0, 3.0, 4.0]))["median"]
    2.5
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    sample = v[:: max(1, v.size // ROBUST_SAMPLE)]
    median = float(np.median(sample))
    dev = np.abs(sample - median)
    robust_sd = float(np.median(dev)) * MAD_TO_SD or float(np.mean(dev)) * MEAN_AD_TO_SD
    mean, std = float(v.mean()), float(v.std())
    sq = (v - mean) ** 2
    total = float(sq.sum())
    k = max(1, math.ceil(TAIL_FRACTION * v.size))
    tail = float(np.partition(sq, v.size - k)[-k:].sum()) / total if total > 0 else 0.0
    lo, hi = float(v.min()), float(v.max())
    return {
        "mean": mean,
        "std": std,
        "median": median,
        "min": lo,
        "max": hi,
        "magnitude": max(abs(median), std),
        "robust_sd": robust_sd,
        "robust_z_max": max(hi - median, median - lo) / robust_sd if robust_sd > 0 else 0.0,
        "tail_share": tail,
        "integer_valued": bool(np.all(v == np.round(v))),
        "distinct": int(np.count_nonzero(np.diff(np.sort(sample)))) + 1,
        "count": int(v.size),
    }


def columns_stats(rows: np.ndarray, names: list[str]) -> dict[str, dict[str, Any]]:
    """:func:`column_stats` of each column of ``rows`` ``(n, columns)``, by name (columns with no finite value left out)."""
    out = {}
    for j, name in enumerate(names):
        stats = column_stats(rows[:, j])
        if stats is not None:
            out[name] = stats
    return out


def range_shift(train: dict[str, Any], values: np.ndarray) -> dict[str, float] | None:
    """Where ``values`` (validation) lie relative to the training column summarized by ``train``.

    ``outside_share``: share of the values outside the training [min, max];
    ``excess``: the farthest distance beyond that range, in training standard deviations;
    ``shift``: (mean - training mean) / training std.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    lo, hi, sd = train["min"], train["max"], train["std"] or 1.0
    beyond = np.maximum(v - hi, lo - v)
    return {
        "outside_share": float(np.mean(beyond > 0)),
        "excess": float(max(beyond.max(), 0.0) / sd),
        "shift": float((v.mean() - train["mean"]) / sd),
    }


def nonfinite_counts(rows: np.ndarray, names: list[str]) -> dict[str, int]:
    """Count of NaN or Inf values per column of ``rows`` ``(n, columns)``."""
    bad = ~np.isfinite(rows.reshape(len(rows), -1))
    return {name: int(bad[:, j].sum()) for j, name in enumerate(names)}
