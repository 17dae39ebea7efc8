"""Inspect facts about data, on real series (statsmodels, aeon) and on synthetic data with a known answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstm_doctor.inspect.autocorrelation import series_acf, stationarity
from lstm_doctor.inspect.data_facts import data_facts
from lstm_doctor.inspect.sequence_facts import padding, window_overlap
from lstm_doctor.inspect.value_stats import column_stats, range_shift
from lstm_doctor.setups import setup_from


@pytest.fixture(scope="module")
def co2_raw() -> pd.DataFrame:
    """Weekly CO2 as statsmodels ships it: 59 missing weeks left in."""
    import statsmodels.api as sm

    return sm.datasets.co2.load_pandas().data.rename_axis("date").reset_index()


def _sliding(series: np.ndarray, window: int) -> np.ndarray:
    """Stride-1 windows ``(n, window, 1)`` of a series, as users build them."""
    idx = np.arange(len(series) - window + 1)[:, None] + np.arange(window)
    return series[idx][:, :, None].astype(np.float32)


# ---------------------------------------------------------------- value statistics


def test_column_stats_scale_and_tails():
    rng = np.random.default_rng(0)
    normal = column_stats(rng.normal(300.0, 2.0, size=5000))
    assert normal["magnitude"] == pytest.approx(300, rel=0.01)  # the offset, not the spread
    assert normal["tail_share"] < 0.15 and normal["robust_z_max"] < 6
    spiky = rng.normal(size=5000)
    spiky[::1000] = 100.0
    s = column_stats(spiky)
    assert s["tail_share"] > 0.8 and s["robust_z_max"] > 50


def test_column_stats_ignores_non_finite_and_flags_integers():
    s = column_stats(np.array([1.0, np.nan, 2.0, np.inf, 3.0, 2.0]))
    assert s["count"] == 4 and s["integer_valued"] and s["distinct"] == 3
    assert column_stats(np.array([np.nan, np.inf])) is None
    assert not column_stats(np.array([0.5, 1.0]))["integer_valued"]


def test_range_shift_counts_values_outside_training():
    train = column_stats(np.arange(100.0))
    r = range_shift(train, np.array([50.0, 99.0, 100.0, 130.0]))
    assert r["outside_share"] == 0.5
    assert r["excess"] == pytest.approx(31 / train["std"])


# ---------------------------------------------------------------- tables, real series


def test_co2_raw_facts(co2_frame):
    f = data_facts(setup_from(co2_frame, data={"target": "co2", "time": "date", "window": 48}))
    assert f["feature_scale"]["co2"] > 300 and f["target_scale"]["co2"] > 300
    assert f["scaled_with_validation"] == {}  # raw values, not scaled at all
    assert f["dominant_period"] == 52  # weekly data, yearly cycle
    assert f["acf"]["window"] == 48 and len(f["acf"]["values"]) == len(f["acf"]["lags"])
    # A rising trend: validation lies above training; ADF keeps its unit root, KPSS rejects stationarity.
    assert f["val_range"]["targets"]["co2"]["outside_share"] > 0.5
    assert f["stationarity"]["adf_p"] > 0.05 and f["stationarity"]["kpss_p"] < 0.05
    assert f["val_window_overlap"] == 0.0  # temporal split


def test_co2_scaled_is_unit_scale_and_nan_counted(co2_frame, co2_raw):
    f = data_facts(setup_from(co2_frame, data={"target": "co2", "time": "date", "window": 48, "scale": "standard"}))
    assert f["feature_scale"]["co2"] < 2 and f["target_scale"]["co2"] < 2
    assert "scaled_with_validation" not in f  # the setup's scaler fits on training rows by construction
    raw = data_facts(setup_from(co2_raw, data={"target": "co2", "time": "date", "window": 48}))
    missing = raw["nonfinite"]["train_inputs"]["co2"] + raw["nonfinite"]["val_inputs"]["co2"]
    assert missing == int(co2_raw["co2"].isna().sum()) == 59


def test_sunspots_period_and_stationarity(sunspots_frame):
    f = data_facts(setup_from(sunspots_frame, data={"target": "sunspots", "features": ["sunspots"], "time": "year", "window": 12, "scale": "standard"}))
    assert f["dominant_period"] in (10, 11, 12)  # the ~11-year solar cycle
    assert f["stationarity"]["adf_p"] < 0.05


def test_random_split_windows_overlap(co2_frame):
    f = data_facts(setup_from(co2_frame, data={"target": "co2", "time": "date", "window": 48, "split": "random"}))
    assert f["val_window_overlap"] > 0.95


def test_macro_scaled_on_all_rows_is_detected(macro_frame):
    frame = macro_frame[["realgdp", "infl"]].copy()
    # The common leak: a scaler fitted on the whole table before the split.
    frame["realgdp"] = (frame["realgdp"] - frame["realgdp"].mean()) / frame["realgdp"].std(ddof=0)
    f = data_facts(setup_from(frame, data={"target": "infl", "window": 8}))
    assert set(f["scaled_with_validation"]) == {"realgdp"}
    assert f["scaled_with_validation"]["realgdp"]["kind"] == "standard"
    # Scaled with training rows only: no leak to find.
    train = macro_frame["realgdp"].iloc[: int(len(macro_frame) * 0.8)]
    frame["realgdp"] = (macro_frame["realgdp"] - train.mean()) / train.std(ddof=0)
    assert data_facts(setup_from(frame, data={"target": "infl", "window": 8}))["scaled_with_validation"] == {}


# ---------------------------------------------------------------- autocorrelation, synthetic


def test_period_found_only_where_there_is_one():
    rng = np.random.default_rng(1)
    t = np.arange(3000)
    seasonal = np.sin(2 * np.pi * t / 24) + 0.5 * rng.normal(size=t.size)
    assert series_acf([seasonal], window=12)["period"] == 24
    ar = np.zeros(3000)
    for i in range(1, 3000):
        ar[i] = 0.9 * ar[i - 1] + rng.normal()
    for no_cycle in (rng.normal(size=3000), ar, np.cumsum(rng.normal(size=3000))):
        assert series_acf([no_cycle], window=12)["period"] is None


def test_stationarity_tests_tell_walk_from_noise():
    rng = np.random.default_rng(2)
    walk = stationarity(np.cumsum(rng.normal(size=3000)))
    noise = stationarity(rng.normal(size=3000))
    assert walk["adf_p"] > 0.05 and walk["kpss_p"] < 0.05
    assert noise["adf_p"] < 0.05 and noise["kpss_p"] > 0.05
    assert stationarity(np.ones(100)) is None


# ---------------------------------------------------------------- arrays: padding, layout, overlap


def _padded(X: np.ndarray, lengths: np.ndarray, value: float, side: str = "post") -> np.ndarray:
    out = np.full_like(X, value)
    for i, n in enumerate(lengths):
        if side == "post":
            out[i, :n] = X[i, :n]
        else:
            out[i, X.shape[1] - n :] = X[i, :n]
    return out


def test_padding_found_without_lengths(gunpoint):
    X = gunpoint["X"]
    lengths = np.random.default_rng(0).integers(30, 151, size=len(X))
    p = padding(_padded(X, lengths, 0.0), None)
    assert p["side"] == "post" and p["value"] == 0.0 and not p["lengths_given"]
    assert p["padded_share"] == pytest.approx(1 - lengths.sum() / X.size, abs=0.01)
    pre = padding(_padded(X, lengths, -1.0, "pre"), None)
    assert pre["side"] == "pre" and pre["value"] == -1.0
    # Real GunPoint sequences are not padded.
    assert padding(X, None)["side"] is None


def test_padding_scaled_feature_by_feature_is_still_padding(gunpoint):
    # Two features, zero-padded at the front, then standardized per feature: the pad row
    # becomes (-mean/std) of each feature, a different value per feature (JapaneseVowels-like).
    X = np.concatenate([gunpoint["X"], np.gradient(gunpoint["X"], axis=1)], axis=2)
    lengths = np.random.default_rng(1).integers(30, 151, size=len(X))
    padded = _padded(X, lengths, 0.0, "pre")
    scaled = (padded - padded.mean(axis=(0, 1))) / padded.std(axis=(0, 1))
    p = padding(scaled, None)
    assert p["side"] == "pre" and p["value"] is None
    assert p["padded_share"] == pytest.approx(1 - lengths.sum() / X[..., 0].size, abs=0.01)
    assert padding(X, None)["side"] is None  # the real two-feature sequences are not padded
    # Values cast to integers repeat whole rows inside the sequences too: data at rest, not padding.
    quantized = np.round(X * 2)
    assert (quantized[:, -2] == quantized[:, -1]).all(axis=1).mean() > 0.1
    assert padding(quantized, None)["side"] is None


def test_padding_with_lengths_and_pad_value_in_data():
    rng = np.random.default_rng(3)
    counts = rng.poisson(1.0, size=(200, 40, 1)).astype(np.float32)  # zeros are real values here
    lengths = rng.integers(10, 41, size=200)
    p = padding(_padded(counts, lengths, 0.0), lengths)
    assert p["side"] == "post" and p["value"] == 0.0 and p["lengths_given"]
    assert p["pad_value_in_data"] == pytest.approx(np.exp(-1.0), abs=0.03)  # P(Poisson(1) = 0)
    assert p["lengths"]["min"] == lengths.min()


def test_array_facts_on_italy_power(italy_power):
    f = data_facts(setup_from(italy_power, data={"task": "binary"}, training={"loss": "bce"}))
    assert f["class_counts"] == {"1": 34, "2": 33}
    assert f["padding"]["side"] is None and f["sliding_window_share"] == 0.0
    assert f["val_window_overlap"] == 0.0  # separate days
    assert f["scaled_with_validation"] == {}  # each day z-normalized on its own, not with validation
    assert f["layout_suspect"]["steps"] == 24 and f["layout_suspect"]["adjacent_step_corr"] > 0.8


def test_layout_of_swapped_axes(gunpoint):
    swapped = {**gunpoint, "X": np.transpose(gunpoint["X"], (0, 2, 1)), "X_val": np.transpose(gunpoint["X_val"], (0, 2, 1))}
    f = data_facts(setup_from(swapped, data={"task": "binary"}, training={"loss": "bce"}))["layout_suspect"]
    assert f["steps"] == 1 and f["features"] == 150
    assert f["adjacent_step_corr"] is None and f["adjacent_feature_corr"] > 0.9


def test_sliding_windows_of_a_real_series(sunspots_frame):
    X = _sliding(sunspots_frame["sunspots"].to_numpy(), 12)
    y = sunspots_frame["sunspots"].to_numpy()[12:]
    shuffled = data_facts(setup_from({"X": X[:-1], "y": y}, data={"split": "random"}))
    assert shuffled["sliding_window_share"] > 0.5 and shuffled["val_window_overlap"] > 0.9
    ordered = data_facts(setup_from({"X": X[:-1], "y": y}, data={"split": "temporal"}))
    assert ordered["sliding_window_share"] > 0.99
    # Windows at the cut share past steps with training (history, as in any forecast), never future ones.
    assert ordered["val_window_overlap"] == 0.0
    assert ordered["acf"]["source"] == "series rebuilt from sliding windows"
    assert ordered["dominant_period"] in (10, 11, 12)


def test_window_overlap_is_about_the_future():
    walk = np.cumsum(np.random.default_rng(4).normal(size=400))
    windows = _sliding(walk, 20)
    train, later, earlier = windows[100:300], windows[300:], windows[:100]
    assert window_overlap(train, later) == 0.0  # they share at most history
    # The last 19 earlier windows lead into training windows; 12 of them share a run of 8 steps or more.
    assert window_overlap(train, earlier) == pytest.approx(12 / 100)
    assert window_overlap(windows[::2], windows[1::2]) == pytest.approx(1.0, abs=0.01)  # interleaved


def test_window_overlap_ignores_flat_runs_and_integers():
    flat = np.full((50, 20, 1), 0.5, dtype=np.float32)
    assert window_overlap(flat, flat.copy()) == 0.0
    ints = np.random.default_rng(4).integers(0, 3, size=(50, 20, 1)).astype(np.float32)
    assert window_overlap(ints, ints) is None


def test_integer_inputs_reported_with_dtype():
    rng = np.random.default_rng(5)
    X = np.trunc(rng.normal(size=(100, 30, 2))).astype(np.int32)
    f = data_facts(setup_from({"X": X, "y": rng.normal(size=100)}))
    assert f["integer_inputs"]["input_dtype"] == "int32"
    assert set(f["integer_inputs"]["features"]) == {"x0", "x1"}


def test_data_profile_probe_puts_scales_and_acf_into_the_plots(sunspots_frame):
    from lstm_doctor.budget import get_budget
    from lstm_doctor.probes.context import ProbeContext
    from lstm_doctor.probes.data_profile import data_profile

    setup = setup_from(sunspots_frame, data={"target": "sunspots", "features": ["sunspots"], "time": "year", "window": 12})
    ctx = ProbeContext(setup, get_budget("quick"))
    ctx.evidence.update(data_facts(setup))
    data_profile(ctx)
    plot = ctx.plots["data"]
    assert plot["feature_scale"] == ctx.evidence["feature_scale"]
    assert plot["acf"]["period"] == ctx.evidence["dominant_period"] and plot["acf"]["window"] == 12
    assert len(plot["acf"]["lags"]) == len(plot["acf"]["values"]) == len(plot["acf"]["band"])
