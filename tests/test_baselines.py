"""Baselines: input-free, persistence, seasonal-naive and linear, scored in the setup's own loss."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstm_doctor import setup_from
from lstm_doctor.budget import get_budget
from lstm_doctor.probes import ProbeContext
from lstm_doctor.probes.baselines import baselines, linear_baseline


def _run(setup, **evidence) -> ProbeContext:
    ctx = ProbeContext(setup, get_budget("quick"))
    ctx.evidence.update(evidence)
    baselines(ctx)
    return ctx


def test_period_of_real_series_and_of_noise(co2_frame, sunspots_frame):
    assert _run(setup_from(co2_frame, data={"target": "co2", "window": 60})).evidence["seasonal_period"] == 52
    sun = _run(setup_from(sunspots_frame, data={"target": "sunspots", "features": ["sunspots"], "window": 24})).evidence
    assert sun["seasonal_period"] in (10, 11)  # the ~11-year solar cycle
    assert "seasonal_naive" in sun["baselines"]
    noise = pd.DataFrame({"y": np.random.default_rng(0).normal(size=2000)})
    ev = _run(setup_from(noise, data={"target": "y", "window": 24})).evidence
    assert ev["seasonal_period"] is None and "seasonal_naive" not in ev["baselines"]


def test_seasonal_naive_is_the_value_one_season_back(co2_frame):
    setup = setup_from(co2_frame, data={"target": "co2", "window": 60, "scale": "standard"})
    ctx = _run(setup)
    ev = ctx.evidence
    assert ev["seasonal_period"] == 52 and ev["seasonal_period_source"] == "training target autocorrelation"
    assert set(ev["baseline_loss"]) == {"mean", "persistence", "seasonal_naive"}
    # Recompute in ppm from the frame: the forecast for row t is row t - 52.
    val = setup.data.val
    rows = val.starts.numpy() + 60 - 1 + 1
    co2 = co2_frame["co2"].to_numpy()
    rmse = float(np.sqrt(np.mean((co2[rows] - co2[rows - 52]) ** 2)))
    assert ev["baselines"]["seasonal_naive"]["rmse"] == pytest.approx(rmse, rel=1e-4)
    assert ev["baselines"]["seasonal_naive"]["rmse"] < ev["baselines"]["mean"]["rmse"]
    assert ctx.plots["baselines"] is ev["baselines"]


def test_seasonal_naive_needs_the_season_inside_the_window(co2_frame):
    ev = _run(setup_from(co2_frame, data={"target": "co2", "window": 48})).evidence
    assert ev["seasonal_period"] == 52 and "seasonal_naive" not in ev["baselines"]


def test_period_from_the_data_inspection_is_used(co2_frame):
    ev = _run(setup_from(co2_frame, data={"target": "co2", "window": 60}), dominant_period=26).evidence
    assert ev["seasonal_period"] == 26 and ev["seasonal_period_source"] == "data inspection"
    # The inspection found no period: none is made up here.
    ev = _run(setup_from(co2_frame, data={"target": "co2", "window": 60}), dominant_period=None).evidence
    assert ev["seasonal_period"] is None and "seasonal_naive" not in ev["baselines"]


def test_naive_forecasts_only_when_the_model_sees_the_past_target(macro_frame):
    # realgdp from other indicators only: persistence would use what the model never sees.
    setup = setup_from(macro_frame, data={"target": "realgdp", "features": ["unemp", "infl"], "window": 8, "scale": "standard"})
    ev = _run(setup).evidence
    assert set(ev["baseline_loss"]) == {"mean"} and "linear" in ev["baselines"]
    nowcast = setup_from(macro_frame, data={"target": "realgdp", "features": ["realgdp"], "window": 8, "horizon": 0})
    assert "persistence" not in _run(nowcast).evidence["baseline_loss"]


def test_linear_baseline_finds_the_signal_in_real_data(sunspots_frame, italy_power, arrow_head):
    sun = _run(setup_from(sunspots_frame, data={"target": "sunspots", "features": ["sunspots"], "window": 24})).evidence
    assert sun["linear_skill"] > 0.5 and sun["linear_p_value"] < 0.01 and sun["linear_skill_measure"] == "mse"
    # In the target's own units (sunspot numbers), between persistence and perfect.
    assert 5 < sun["baselines"]["linear"]["rmse"] < sun["baselines"]["persistence"]["rmse"]
    assert "linear" not in sun["baseline_loss"]  # a yardstick of the model, not of "not learning"
    italy = _run(setup_from(italy_power, data={"task": "binary"}, training={"loss": "bce"})).evidence
    assert italy["baselines"]["linear"]["accuracy"] > 0.9 and italy["linear_p_value"] < 1e-6
    # ArrowHead: 36 outlines of 251 steps, pooled to fit the feature cap; logistic regression is
    # overconfident (log loss above the prior's) but clearly better than chance.
    arrow = _run(setup_from(arrow_head, data={"task": "multiclass"}, training={"loss": "ce"})).evidence
    assert arrow["linear_skill_measure"] == "balanced_accuracy" and arrow["linear_skill"] > 0.3
    assert arrow["linear_p_value"] < 0.01


def test_linear_baseline_on_shuffled_labels_and_noise(italy_power):
    shuffled = dict(italy_power, y=np.random.default_rng(0).permutation(italy_power["y"]))
    ev = _run(setup_from(shuffled, data={"task": "binary"}, training={"loss": "bce"})).evidence
    assert ev["linear_skill"] < 0.05 and ev["linear_p_value"] > 0.05
    rng = np.random.default_rng(1)
    noise = {"X": rng.normal(size=(600, 16, 3)).astype(np.float32), "y": rng.normal(size=600).astype(np.float32)}
    ev = _run(setup_from(noise)).evidence
    assert ev["linear_skill"] < 0.05 and ev["linear_p_value"] > 0.05


def test_linear_outputs_follow_the_setup_head(italy_power):
    logits = setup_from(italy_power, data={"task": "binary"}, training={"loss": "bce"})
    probs = setup_from(italy_power, data={"task": "binary"}, model={"output_activation": "sigmoid"}, training={"loss": "mse"})
    out_logits = linear_baseline(logits.data, logits.objective).out
    out_probs = linear_baseline(probs.data, probs.objective).out
    assert out_logits.shape == out_probs.shape == (len(logits.data.val), 1)
    assert out_probs.min() >= 0 and out_probs.max() <= 1 and out_logits.min() < 0
    # The same decisions either way.
    assert ((out_logits > 0) == (out_probs > 0.5)).all()


def test_per_step_targets_get_a_step_by_step_linear_model():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 20, 2)).astype(np.float32)
    y = (X[..., 0] - 0.5 * X[..., 1] + 0.1 * rng.normal(size=(200, 20))).astype(np.float32)
    setup = setup_from({"X": X, "y": y})
    assert setup.data.per_step
    ev = _run(setup).evidence
    assert ev["baselines"]["linear"]["rmse"] < 0.2 and ev["linear_skill"] > 0.9
