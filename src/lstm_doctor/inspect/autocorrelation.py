"""Autocorrelation, dominant period and stationarity of the series the model is fed.

Facts only. The ACF is statsmodels' (FFT); stationarity is statsmodels' ADF and KPSS
tests. Long series are cut before testing so that a million rows cost well under a
second: the ACF reads the most recent ``MAX_ACF_POINTS`` contiguous training points
(lags are kept intact), the tests an evenly strided ``MAX_TEST_POINTS`` (a trend or a
unit root survives striding). ADF with its AIC lag search fits ~25 regressions; on
2,000 points and one BLAS thread that is ~0.2 s (5,000 points: ~0.5 s, and several
seconds when two BLAS threads fight over two busy cores).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.signal import detrend, find_peaks
from scipy.stats import norm
from threadpoolctl import threadpool_limits

MAX_ACF_POINTS = 20_000
MAX_TEST_POINTS = 2_000
# Lags searched: enough to see a few cycles of a season a few times the window long.
MIN_LAGS = 500
# Family-wise significance of a peak over all the lags searched (Bonferroni).
ALPHA = 0.05


def _fill_gaps(x: np.ndarray) -> np.ndarray:
    """``x`` with non-finite values linearly interpolated (ends held), so lags stay aligned."""
    x = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(x)
    if ok.all() or not ok.any():
        return x
    idx = np.arange(len(x))
    return np.interp(idx, idx[ok], x[ok])


def acf_with_band(x: np.ndarray, nlags: int) -> tuple[np.ndarray, np.ndarray]:
    """ACF of the linearly detrended ``x`` up to ``nlags``, and the half-width of its band.

    The band is Bartlett's (the variance of r_k under "no correlation beyond lag k")
    at family-wise level ``ALPHA`` over the ``nlags`` lags, so a peak above it is
    unlikely to be noise even though many lags are looked at.
    """
    from statsmodels.tsa.stattools import acf

    x = detrend(_fill_gaps(x))
    if not np.any(x):
        return np.r_[1.0, np.zeros(nlags)], np.full(nlags + 1, np.inf)
    r = np.asarray(acf(x, nlags=nlags, fft=True))
    z = norm.ppf(1 - ALPHA / (2 * nlags))
    # var(r_k) = (1 + 2 * sum_{j<k} r_j^2) / n
    var = (1 + 2 * np.r_[0.0, 0.0, np.cumsum(r[1:-1] ** 2)]) / len(x)
    return r, z * np.sqrt(var)


def dominant_period(r: np.ndarray, band: np.ndarray) -> int | None:
    """The lag of the highest significant ACF peak after the first trough, or None.

    A peak counts when it stands above the band both in height and in prominence
    (its rise above the troughs around it), so a slowly decaying ACF with wiggles
    (an AR process, a random walk) has no period.
    """
    peaks, props = find_peaks(r, prominence=0.0)
    good = [int(p) for p, prom in zip(peaks, props["prominences"]) if r[p] > band[p] and prom > band[p]]
    return max(good, key=lambda p: r[p]) if good else None


def nlags_for(n: int, window: int) -> int:
    """Lags to search: at least ``MIN_LAGS`` and four windows, at most a third of the series."""
    return int(min(max(MIN_LAGS, 4 * window), n // 3))


def series_acf(series: list[np.ndarray], window: int) -> dict[str, Any] | None:
    """ACF of the training series (averaged over a panel's series, weighted by length).

    Returns ``{"lags", "values", "band", "period", "points"}`` or None when no series
    is long enough (a few windows) to tell.
    """
    parts = [np.asarray(s, dtype=np.float64)[-MAX_ACF_POINTS:] for s in series]
    parts = [p for p in parts if len(p) >= max(3 * window, 30)]
    if not parts:
        return None
    nlags = nlags_for(min(len(p) for p in parts), window)
    if nlags < 2:
        return None
    # Heaviest first, at most 20 series: the average settles long before that.
    parts = sorted(parts, key=len, reverse=True)[:20]
    pairs = [acf_with_band(p, nlags) for p in parts]
    weights = np.array([len(p) for p in parts], dtype=np.float64)
    r = np.average([p[0] for p in pairs], axis=0, weights=weights)
    # Independent series average their noise down by sqrt(count).
    band = np.mean([p[1] for p in pairs], axis=0) / np.sqrt(len(pairs))
    return _profile(r, band, int(weights.sum()))


def sequences_acf(sequences: list[np.ndarray]) -> dict[str, Any] | None:
    """ACF within already-windowed sequences (one feature), averaged over the sequences."""
    usable = [np.asarray(s, dtype=np.float64) for s in sequences if len(s) >= 8 and np.ptp(s[np.isfinite(s)]) > 0]
    if not usable:
        return None
    nlags = min(len(s) for s in usable) // 2
    pairs = [acf_with_band(s, nlags) for s in usable]
    r = np.mean([p[0] for p in pairs], axis=0)
    band = np.mean([p[1] for p in pairs], axis=0) / np.sqrt(len(pairs))
    return _profile(r, band, sum(len(s) for s in usable))


def _profile(r: np.ndarray, band: np.ndarray, points: int) -> dict[str, Any]:
    return {
        "lags": list(range(len(r))),
        "values": [round(float(v), 4) for v in r],
        "band": [round(float(b), 4) if np.isfinite(b) else None for b in band],
        "period": dominant_period(r, band),
        "points": points,
    }


def _pvalue(result: Any) -> float:
    return float(result.pvalue if hasattr(result, "pvalue") else result[1])


def stationarity(x: np.ndarray) -> dict[str, Any] | None:
    """ADF (null: unit root) and KPSS (null: level-stationary) p-values of ``x``.

    KPSS p-values are interpolated in a table and clipped to [0.01, 0.10].
    """
    from statsmodels.tsa.stattools import adfuller, kpss

    x = _fill_gaps(x)
    x = x[:: max(1, len(x) // MAX_TEST_POINTS)]
    if len(x) < 20 or np.ptp(x) == 0:
        return None
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")  # KPSS's p-value-out-of-table notice; statsmodels deprecations
        try:
            adf = _pvalue(adfuller(x, autolag="AIC"))
            kp = _pvalue(kpss(x, regression="c", nlags="auto"))
        except (ValueError, np.linalg.LinAlgError):
            return None
    return {"adf_p": adf, "kpss_p": kp, "points": len(x)}
