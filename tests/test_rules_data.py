"""D1xx rules: on hand-made evidence (positive and near-miss), then end to end on real datasets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstm_doctor.evidence import Evidence
from lstm_doctor.inspect import inspect_setup
from lstm_doctor.rules import RULES, page
from lstm_doctor.rules import data as rules
from lstm_doctor.setups import setup_from

MY_CODES = [f"D1{n:02d}" for n in range(1, 17) if n != 10]


def d_findings(setup) -> dict:
    """The D1xx findings (D110 aside) on a setup's inspected evidence, by code."""
    ev = inspect_setup(setup)
    out = {}
    for code in MY_CODES:
        found = RULES[code].check(ev)
        if found is not None:
            out[code] = found
    return out


def stats(magnitude=1.0, std=1.0, distinct=1000, tail_share=0.08, median=0.0, lo=-3.0, hi=3.0, mean=0.0):
    return {"mean": mean, "std": std, "median": median, "min": lo, "max": hi, "magnitude": magnitude, "robust_sd": std,
            "robust_z_max": 3.0, "tail_share": tail_share, "integer_valued": False, "distinct": distinct, "count": 1000}


# ---------------------------------------------------------------- documentation pages


@pytest.mark.parametrize("code", MY_CODES)
def test_every_page_has_the_fixed_sections(code):
    text = page(code)
    for section in ("What it means", "How it is measured", "Example", "Fix", "Setup file:", "PyTorch:", "Keras:", "Related:"):
        assert section in text, f"{code} page lacks {section!r}"
    assert text.index("What it means") < text.index("How it is measured") < text.index("Example") < text.index("Fix")


# ---------------------------------------------------------------- hand-made evidence


def test_d101_any_non_finite_value():
    ev = Evidence(nonfinite={"train_inputs": {"x": 3, "z": 0}, "val_inputs": {"x": 0}, "train_targets": {"y": 0},
                             "val_targets": {"y": 0}, "values": {"train_inputs": 1000}})
    f = rules.non_finite_values(ev)
    assert f.code == "D101" and f.severity == "critical" and "3 of 1,000" in f.summary
    ev["nonfinite"]["train_inputs"]["x"] = 0
    assert rules.non_finite_values(ev) is None


def test_d102_scale_bounds_and_embedding():
    assert rules.unscaled_inputs(Evidence(feature_scale={"x": 150.0})).severity == "critical"
    assert rules.unscaled_inputs(Evidence(feature_scale={"x": 50.0, "z": 1.0})).severity == "warning"
    assert rules.unscaled_inputs(Evidence(feature_scale={"x": 9.5})) is None
    # A model whose predictions collapsed makes a moderate offset critical.
    assert rules.unscaled_inputs(Evidence(feature_scale={"x": 50.0}, prediction_spread=0.02)).severity == "critical"
    assert rules.unscaled_inputs(Evidence(feature_scale={"x": 5000.0}, model_embeds_inputs=True)) is None


def test_d103_ratio_of_feature_scales():
    ev = Evidence(feature_stats={"big": stats(magnitude=50.0, std=50.0), "small": stats()})
    f = rules.feature_scale_disparity(ev)
    assert f.code == "D103" and f.evidence["ratio"] == pytest.approx(50.0)
    ev = Evidence(feature_stats={"big": stats(magnitude=9.0, std=9.0), "small": stats()})
    assert rules.feature_scale_disparity(ev) is None
    # A rare 0/1 flag has a tiny std but its values are at unit scale.
    flag = stats(magnitude=0.07, std=0.07, distinct=2, lo=0.0, hi=1.0)
    assert rules.feature_scale_disparity(Evidence(feature_stats={"flag": flag, "x": stats()})) is None


def test_d104_judged_for_the_loss():
    co2 = Evidence(task="regression", loss="mse", target_scale={"co2": 332.0}, target_stats={"co2": stats(332, 13, mean=334, median=332)})
    f = rules.unscaled_target(co2)
    assert f.severity == "critical" and f.evidence["initial_mse"] == pytest.approx(13**2 + 334**2)
    mae = Evidence(task="regression", loss="mae", user_lr=1e-3, target_scale={"y": 50.0}, target_stats={"y": stats(50, 5, mean=50, median=50)})
    f = rules.unscaled_target(mae)
    assert f.severity == "warning" and "50,000 Adam steps" in f.summary
    assert rules.unscaled_target(Evidence(task="regression", target_scale={"y": 9.0})) is None
    assert rules.unscaled_target(Evidence(task="binary", target_scale={"y": 500.0})) is None


def test_d105_constant_features():
    f = rules.constant_feature(Evidence(feature_stats={"id": stats(std=0.0, mean=7.0), "x": stats()}))
    assert f.severity == "info" and "'id'" in f.summary
    every = rules.constant_feature(Evidence(feature_stats={"id": stats(std=0.0, mean=7.0)}))
    assert every.severity == "warning"
    assert rules.constant_feature(Evidence(feature_stats={"x": stats(std=1e-6)})) is None


def test_d106_tail_share():
    f = rules.outliers(Evidence(task="regression", feature_stats={"x": stats(tail_share=0.9)}))
    assert f.severity == "info" and "90%" in f.summary
    assert rules.outliers(Evidence(feature_stats={"x": stats(tail_share=0.45)})) is None
    assert rules.outliers(Evidence(feature_stats={"flag": stats(tail_share=0.99, distinct=2)})) is None
    target = rules.outliers(Evidence(task="regression", loss="mse", target_stats={"y": stats(tail_share=0.7)}))
    assert target.severity == "warning"


def test_d107_range_and_tests():
    def ranges(share):
        return {"targets": {"y": {"outside_share": share, "excess": 1.0, "shift": 2.0}}, "features": {}}

    assert rules.non_stationary(Evidence(val_range=ranges(0.85))).severity == "warning"
    assert rules.non_stationary(Evidence(val_range=ranges(0.15))) is None
    drifting = {"adf_p": 0.6, "kpss_p": 0.01, "points": 500}
    assert rules.non_stationary(Evidence(val_range=ranges(0.05), stationarity=drifting)).severity == "info"
    assert rules.non_stationary(Evidence(val_range=ranges(0.05), stationarity={"adf_p": 0.03, "kpss_p": 0.01})) is None


def test_d108_period_against_window_and_horizon():
    f = rules.window_too_short(Evidence(dominant_period=52, steps=48, horizon=1))
    assert f.code == "D108" and f.evidence["window_needed"] == 52
    assert rules.window_too_short(Evidence(dominant_period=52, steps=52, horizon=1)) is None
    # The value one period back is already in a 10-step window when the target lies 2 steps on.
    assert rules.window_too_short(Evidence(dominant_period=11, steps=10, horizon=2)) is None
    assert rules.window_too_short(Evidence(dominant_period=None, steps=10)) is None


def test_d109_limit_per_cell():
    assert rules.sequence_too_long(Evidence(steps=301, cells=["lstm"])).evidence["limit"] == 300
    assert rules.sequence_too_long(Evidence(steps=300, cells=["lstm"])) is None
    assert rules.sequence_too_long(Evidence(steps=51, cells=["rnn"])).evidence["cell"] == "rnn"
    assert rules.sequence_too_long(Evidence(steps=301)) is not None  # unknown model: the LSTM bound


def test_d111_dominance():
    assert rules.class_imbalance(Evidence(class_counts={"a": 80, "b": 20})).severity == "warning"
    assert rules.class_imbalance(Evidence(class_counts={"a": 79, "b": 21})) is None
    assert rules.class_imbalance(Evidence(class_counts={"a": 74, "b": 13, "c": 13})) is not None
    assert rules.class_imbalance(Evidence(class_counts={"a": 72, "b": 14, "c": 14})) is None
    weighted = rules.class_imbalance(Evidence(class_counts={"a": 95, "b": 5}, class_weights="balanced"))
    assert weighted.severity == "info"


def test_d112_dominating_or_ambiguous_padding():
    def pad(share, in_data, lengths_given=False):
        return {"side": "post", "value": 0.0, "lengths_given": lengths_given, "padded_share": share, "padded_sequences": 1.0,
                "pad_value_in_data": in_data, "lengths": {"min": 5, "median": 10.0, "max": 20}}

    assert rules.padding_problems(Evidence(steps=40, padding=pad(0.6, 0.0))).code == "D112"
    assert rules.padding_problems(Evidence(steps=40, padding=pad(0.45, 0.0))) is None
    assert rules.padding_problems(Evidence(steps=40, padding=pad(0.2, 0.05))) is not None
    assert rules.padding_problems(Evidence(steps=40, padding=pad(0.2, 0.05, lengths_given=True))) is None
    assert rules.padding_problems(Evidence(padding={"side": None})) is None


def test_d113_integer_values_with_a_cast_clue():
    ints = {"input_dtype": "int32", "features": {"x0": {"distinct": 7, "min": -3.0, "max": 3.0}}}
    assert rules.truncated_values(Evidence(integer_inputs=ints)).severity == "warning"
    assert rules.truncated_values(Evidence(integer_inputs=ints, padding={"side": "post"})).severity == "critical"
    wide = {"input_dtype": "int32", "features": {"x0": {"distinct": 300, "min": 0.0, "max": 5000.0}}}
    assert rules.truncated_values(Evidence(integer_inputs=wide)) is None
    flags = {"input_dtype": "int64", "features": {"x0": {"distinct": 2, "min": -1.0, "max": 1.0}}}
    assert rules.truncated_values(Evidence(integer_inputs=flags)) is None
    counts = {"input_dtype": "int64", "features": {"x0": {"distinct": 9, "min": 0.0, "max": 8.0}}}
    assert rules.truncated_values(Evidence(integer_inputs=counts, padding={"side": "post"})) is None
    floats = {"input_dtype": "float32", "features": {"x0": {"distinct": 7, "min": -3.0, "max": 3.0}}}
    assert rules.truncated_values(Evidence(integer_inputs=floats, padding={"side": None})) is None
    assert rules.truncated_values(Evidence(integer_inputs=ints, model_embeds_inputs=True)) is None


def test_d114_overlap_or_scaler_leak():
    assert rules.split_leakage(Evidence(val_window_overlap=0.5)).code == "D114"
    assert rules.split_leakage(Evidence(val_window_overlap=0.05, scaled_with_validation={})) is None
    leak = {"x": {"kind": "standard", "all_rows": {"mean": 0.0, "std": 1.0, "min": -2, "max": 3},
                  "training_rows": {"mean": -0.3, "std": 0.8, "min": -2, "max": 2}}}
    f = rules.split_leakage(Evidence(val_window_overlap=0.0, scaled_with_validation=leak))
    assert "'x' was scaled" in f.summary


def test_d115_random_split_of_a_series():
    assert rules.shuffled_time_split(Evidence(split="random", source_kind="table")).code == "D115"
    assert rules.shuffled_time_split(Evidence(split="temporal", source_kind="table")) is None
    assert rules.shuffled_time_split(Evidence(split="random", source_kind="arrays", sliding_window_share=0.0)) is None
    assert rules.shuffled_time_split(Evidence(split="random", source_kind="arrays", sliding_window_share=0.8)) is not None
    given = Evidence(split="given", source_kind="arrays", sliding_window_share=0.9, val_window_overlap=0.7)
    assert rules.shuffled_time_split(given) is not None
    given["val_window_overlap"] = 0.0
    assert rules.shuffled_time_split(given) is None


def test_d116_ratio_and_what_training_showed():
    f = rules.too_few_samples(Evidence(parameters=1233, n_train=67))
    assert f.severity == "info" and f.evidence["ratio"] == pytest.approx(1233 / 67)
    assert rules.too_few_samples(Evidence(parameters=600, n_train=67)) is None
    rising = [{"loss": 0.5}, {"loss": 0.3}, {"loss": 0.45}]
    assert rules.too_few_samples(Evidence(parameters=1233, n_train=67, val_history=rising)).severity == "warning"
    # Per-step targets: every step is a target value.
    assert rules.too_few_samples(Evidence(parameters=1233, n_train=67, per_step=True, steps=24)) is None


# ---------------------------------------------------------------- real data, end to end


@pytest.fixture(scope="module")
def co2_raw() -> pd.DataFrame:
    import statsmodels.api as sm

    return sm.datasets.co2.load_pandas().data.rename_axis("date").reset_index()


CO2 = {"target": "co2", "time": "date", "window": 52}
SMALL = {"hidden": 8}


def test_co2_raw_unscaled_then_scaled(co2_frame):
    raw = d_findings(setup_from(co2_frame, data=CO2, model=SMALL))
    assert raw["D102"].severity == "critical" and raw["D104"].severity == "critical"
    scaled = d_findings(setup_from(co2_frame, data={**CO2, "scale": "standard"}, model=SMALL))
    assert "D102" not in scaled and "D104" not in scaled
    # CO2 keeps rising: its trend is genuinely outside the training range either way.
    assert scaled["D107"].severity == "warning"


def test_co2_with_its_gaps(co2_raw):
    found = d_findings(setup_from(co2_raw, data={**CO2, "scale": "standard"}, model=SMALL))
    assert found["D101"].severity == "critical" and "59" in found["D101"].summary


def test_co2_random_split_leaks(co2_frame):
    shuffled = d_findings(setup_from(co2_frame, data={**CO2, "scale": "standard", "split": "random"}, model=SMALL))
    assert {"D114", "D115"} <= set(shuffled)
    temporal = d_findings(setup_from(co2_frame, data={**CO2, "scale": "standard"}, model=SMALL))
    assert not {"D114", "D115"} & set(temporal)


def test_macro_scale_disparity(macro_frame):
    cols = {"target": "infl", "features": ["realgdp", "infl", "unemp"], "window": 8}
    assert "D103" in d_findings(setup_from(macro_frame, data=cols, model=SMALL))
    assert "D103" not in d_findings(setup_from(macro_frame, data={**cols, "scale": "standard"}, model=SMALL))


def test_sunspots_window_against_the_solar_cycle(sunspots_frame):
    data = {"target": "sunspots", "features": ["sunspots"], "time": "year", "scale": "standard"}
    assert "D108" in d_findings(setup_from(sunspots_frame, data={**data, "window": 5}, model=SMALL))
    # Period 11, horizon 1: a window of 11 holds the value one cycle back.
    assert "D108" not in d_findings(setup_from(sunspots_frame, data={**data, "window": 11}, model=SMALL))


def test_healthy_sunspots_has_no_warning(sunspots_frame):
    data = {"target": "sunspots", "features": ["sunspots"], "time": "year", "window": 12, "scale": "standard"}
    found = d_findings(setup_from(sunspots_frame, data=data, model=SMALL))
    assert [f.code for f in found.values() if f.severity != "info"] == []


def test_healthy_italy_power_has_no_warning(italy_power):
    found = d_findings(setup_from(italy_power, data={"task": "binary"}, model=SMALL, training={"loss": "bce"}))
    assert [f.code for f in found.values() if f.severity != "info"] == []


def test_gunpoint_length_per_cell(gunpoint):
    binary = {"task": "binary"}
    assert "D109" in d_findings(setup_from(gunpoint, data=binary, model={"hidden": 8, "cell": "rnn"}, training={"loss": "bce"}))
    assert "D109" not in d_findings(setup_from(gunpoint, data=binary, model=SMALL, training={"loss": "bce"}))


def test_italy_power_made_imbalanced(italy_power):
    y = italy_power["y"]
    keep = np.r_[np.flatnonzero(y == "1"), np.flatnonzero(y == "2")[:6]]
    skewed = {**italy_power, "X": italy_power["X"][keep], "y": y[keep]}
    f = d_findings(setup_from(skewed, data={"task": "binary"}, model=SMALL, training={"loss": "bce"}))["D111"]
    assert f.evidence["majority_share"] == pytest.approx(34 / 40)
    assert "85%" in f.summary


def _pad_gunpoint(gunpoint, lengths, value, dtype=np.float32):
    X = gunpoint["X"].copy()
    for i, n in enumerate(lengths):
        X[i, n:] = value
    return {**gunpoint, "X": X.astype(dtype), "X_val": gunpoint["X_val"].astype(dtype)}


def test_gunpoint_padding(gunpoint):
    rng = np.random.default_rng(0)
    short = _pad_gunpoint(gunpoint, rng.integers(20, 61, size=len(gunpoint["X"])), 0.0)
    f = d_findings(setup_from(short, data={"task": "binary"}, model=SMALL, training={"loss": "bce"}))["D112"]
    assert f.evidence["padding"]["padded_share"] > 0.5
    # A third padded, with a pad value that never occurs in the data: nothing to flag.
    mild = _pad_gunpoint(gunpoint, rng.integers(90, 111, size=len(gunpoint["X"])), -10.0)
    assert "D112" not in d_findings(setup_from(mild, data={"task": "binary"}, model=SMALL, training={"loss": "bce"}))


def test_gunpoint_truncated_by_an_integer_pad(gunpoint):
    lengths = np.random.default_rng(1).integers(100, 151, size=len(gunpoint["X"]))
    # What pad_sequences(seqs) does by default: pad, and cast to int32.
    cast = _pad_gunpoint(gunpoint, lengths, 0.0, dtype=np.int32)
    assert d_findings(setup_from(cast, data={"task": "binary"}, model=SMALL, training={"loss": "bce"}))["D113"].severity == "critical"
    kept = _pad_gunpoint(gunpoint, lengths, 0.0)
    assert "D113" not in d_findings(setup_from(kept, data={"task": "binary"}, model=SMALL, training={"loss": "bce"}))


def test_arrow_head_is_small_for_its_model(arrow_head):
    mc = {"task": "multiclass"}
    f = d_findings(setup_from(arrow_head, data=mc, model={"hidden": 16}, training={"loss": "ce"}))["D116"]
    assert f.severity == "info" and f.evidence["training_values"] == 36
    assert "D116" not in d_findings(setup_from(arrow_head, data=mc, model={"hidden": 4}, training={"loss": "ce"}))
