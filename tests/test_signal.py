"""D110: the shuffled-target control and its rule, end to end on real and synthetic data."""

from __future__ import annotations

import time

import numpy as np
import pytest

import lstm_doctor
from lstm_doctor import setup_from
from lstm_doctor.budget import get_budget
from lstm_doctor.evidence import Evidence
from lstm_doctor.probes import ProbeContext
from lstm_doctor.probes.baselines import baselines
from lstm_doctor.probes.signal import repaired_data, signal
from lstm_doctor.rules import page
from lstm_doctor.rules.signal import no_learnable_signal


def _probe(setup, deadline=None) -> ProbeContext:
    ctx = ProbeContext(setup, get_budget("quick"), deadline=deadline)
    baselines(ctx)
    signal(ctx)
    return ctx


def _shuffled(arrays: dict, seed: int = 0) -> dict:
    """The labels permuted against their sequences, as a pipeline bug does."""
    return dict(arrays, y=np.random.default_rng(seed).permutation(arrays["y"]))


# ---------------------------------------------------------------- end to end: D110 first


@pytest.mark.slow
def test_noise_target_is_no_signal_ranked_above_its_scaling():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 16, 2)).astype(np.float32)
    y = (5000 + 1000 * rng.normal(size=300)).astype(np.float32)  # pure noise, and unscaled
    report = lstm_doctor.examine(setup_from({"X": X, "y": y}, model={"hidden": 8}, training={"epochs": 5}))
    codes = [f.code for f in report.findings]
    assert codes[0] == "D110", codes
    assert "D104" in codes  # the unscaled target is real, and ranked below
    top = report.findings[0]
    assert top.evidence["p_value"] >= 0.05 and top.evidence["linear_skill"] < 0.05
    assert report.probes["signal"]["p_value"] == top.evidence["p_value"]


@pytest.mark.slow
def test_labels_shuffled_against_italy_power_are_no_signal_first(italy_power):
    setup = setup_from(_shuffled(italy_power), data={"task": "binary"}, model={"hidden": 8},
                       training={"loss": "bce", "epochs": 5})
    report = lstm_doctor.examine(setup)
    assert report.findings[0].code == "D110", [f.code for f in report.findings]
    assert "shuffled across samples" in report.findings[0].summary


# ---------------------------------------------------------------- broken but learnable: no D110


def test_italy_power_at_a_tiny_learning_rate_still_has_signal(italy_power):
    setup = setup_from(italy_power, data={"task": "binary"}, model={"hidden": 8}, training={"loss": "bce", "lr": 1e-7})
    ctx = _probe(setup)
    ev, plot = ctx.evidence, ctx.plots["signal"]
    assert ev["signal_p_value"] < 0.05  # the repaired recipe ignores the user's learning rate
    assert ev["signal_real_mean"] < 0.5 * ev["signal_shuffled_mean"]
    assert no_learnable_signal(ev) is None
    fits = get_budget("quick").signal_fits
    assert len(ev["signal_real_loss"]) == len(ev["signal_shuffled_loss"]) == fits
    assert plot["real"] == ev["signal_real_loss"] and plot["shuffled"] == ev["signal_shuffled_loss"]
    assert plot["p_value"] == ev["signal_p_value"] and ev["signal_cell"] == "lstm" and ev["signal_windows"] == 67


def test_raw_scale_co2_has_signal(co2_frame):
    setup = setup_from(co2_frame, data={"target": "co2", "window": 24}, model={"hidden": 8})
    ev = _probe(setup).evidence
    assert ev["signal_p_value"] < 0.05 and ev["signal_loss"] == "mse"
    assert ev["signal_real_mean"] < ev["signal_input_free_loss"]
    assert no_learnable_signal(ev) is None


def test_time_limit_leaves_the_test_undecided(italy_power):
    setup = setup_from(italy_power, data={"task": "binary"}, training={"loss": "bce"})
    ev = _probe(setup, deadline=time.monotonic() - 1).evidence
    assert ev["signal_real_loss"] == [] and "signal_p_value" not in ev
    assert no_learnable_signal(ev) is None


def test_repaired_data_standardizes_on_training_windows(co2_frame):
    source = setup_from(co2_frame, data={"target": "co2", "window": 24}).data
    data = repaired_data(source, seed=0)
    x = data.train.inputs.reshape(-1, 1)
    assert abs(float(x.mean())) < 0.05 and abs(float(x.std()) - 1) < 0.05
    assert abs(float(data.train.targets.mean())) < 0.05
    assert len(source.train) > 1024 and len(data.train) == 1024  # subsampled
    assert len(data.val) == min(512, len(source.val))


# ---------------------------------------------------------------- the rule on hand-made evidence


def _ev(**overrides) -> Evidence:
    ev = dict(signal_p_value=0.42, signal_real_mean=1.01, signal_shuffled_mean=1.0, signal_input_free_loss=1.0,
              signal_loss="mse", signal_real_loss=[1.0] * 5, signal_shuffled_loss=[1.0] * 5, signal_cell="gru",
              linear_skill=-0.02, linear_p_value=0.7, linear_skill_measure="mse")
    ev.update(overrides)
    return Evidence(ev)


def test_rule_fires_without_signal_and_stays_silent_near_it():
    found = no_learnable_signal(_ev())
    assert found.code == "D110" and found.severity == "critical" and "GRU" in found.summary
    assert "p = 0.42" in found.summary
    assert no_learnable_signal(_ev(signal_p_value=0.04)) is None  # real beats shuffled
    assert no_learnable_signal(_ev(signal_p_value=None)) is None  # not measured


def test_linear_baseline_vetoes_only_when_clear():
    assert no_learnable_signal(_ev(linear_skill=0.3, linear_p_value=0.001)) is None
    assert no_learnable_signal(_ev(linear_skill=0.3, linear_p_value=0.2)).code == "D110"  # not significant
    assert no_learnable_signal(_ev(linear_skill=0.02, linear_p_value=0.001)).code == "D110"  # not material
    assert no_learnable_signal(_ev(linear_skill=None, linear_p_value=None)).code == "D110"  # p-value alone


def test_page():
    text = page("D110")
    for section in ("What it means", "How it is measured", "Example", "Fix", "PyTorch:", "Keras:", "Related:"):
        assert section in text
