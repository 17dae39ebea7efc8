"""Reports for the renderer and schema tests.

``full_report``: hand-made, every section filled in the formats the probes write
(DESIGN.md, the report schema), so renderers are tested on all of them whatever a
real run measures today; strings that could come from a user's data carry hostile text.
``examined_with_hostile_names``: a real examination of a small real dataset.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from lstm_doctor.budget import BUDGETS
from lstm_doctor.findings import Finding
from lstm_doctor.rank import rank
from lstm_doctor.report import Report

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = "<img src=x onerror=alert(1)>"


def full_report(hostile: str = XSS_SCRIPT) -> Report:
    rng = np.random.default_rng(0)
    steps = list(range(0, 500, 25))
    train = (2.0 * np.exp(-np.arange(500) / 150) + 0.3 + 0.05 * rng.standard_normal(500)).tolist()
    val = [{"epoch": e, "step": e * 50, "loss": 2.0 * math.exp(-e * 50 / 150) + 0.35, "rmse": 1.0 / e} for e in range(1, 11)]
    lr = np.logspace(-6, 0, 100)
    lr_loss = (1.0 - 0.6 / (1 + np.exp(-(np.log10(lr) + 3.5) * 3)) + np.where(lr > 0.05, (lr - 0.05) * 40, 0)).tolist()
    findings = rank([
        Finding.of("D102", f"Input {hostile} is ~340x unit scale; the LSTM's gates saturate.",
                   {"feature_scale": {hostile: 340.2, "temp": 1.2}, "threshold": 10, "ratio": math.inf},
                   fix="data.scale: standard\nPyTorch: x = (x - mean) / std"),
        Finding.of("T305", "Forget gates are saturated on 91% of steps.", {"saturation": {"layer0.forget": 0.91}},
                   fix="Scale the inputs (D102)."),
        Finding.of("D111", f"Class {XSS_IMG} holds 95% of samples.", {"class_share": {XSS_IMG: 0.95, "b": 0.05}}),
    ])
    findings[0].verified = {"metric": "val_rmse", "seeds": 3, "before": {"mean": 3.1, "sd": 0.05},
                            "after": {"mean": 0.92, "sd": 0.04}, "p_value": 0.001, "improved": True,
                            "treatment": "scale-inputs"}
    per_layer = {f"lstm.layer0 {hostile}": (np.exp(-np.arange(20) / 10) * 0.5).tolist(), "head": [0.2] * 20}
    setup = {"data": {"path": f"{hostile}.csv", "target": hostile, "features": [hostile, "temp"], "scale": "none",
                      "window": 12}, "model": {"cell": "lstm", "hidden": 32}, "training": {"lr": 0.001}}
    recommended = {**setup, "data": {**setup["data"], "scale": "standard"}}
    return Report(
        symptom="not-learning",
        findings=findings,
        baselines={"mean": {"loss": 1.0, "rmse": 1.0}, "persistence": {"loss": 0.4, "rmse": 0.63}},
        probes={
            "loss_curve": {"train_steps": train, "val": val, "steps_per_epoch": 50, "steps_planned": 1000,
                           "stopped": "max_steps"},
            "baselines": {"mean": {"loss": 1.0}, "persistence": {"loss": 0.4}},
            "lr_range": {"lr": lr.tolist(), "loss": lr_loss, "smoothed": lr_loss, "suggested_lr": 3e-3,
                         "safe_range": [1e-4, 1e-2], "user_lr": 1e-3},
            "lr_range_standardized": {"lr": lr.tolist(), "loss": lr_loss, "smoothed": lr_loss, "suggested_lr": 5e-3,
                                      "safe_range": [2e-4, 2e-2], "user_lr": 1e-3},
            "gradients": {"steps": steps, "per_layer": per_layer, "clipped_fraction": None},
            "memory_length": {"lag": list(range(12)), "relative_grad": (0.5 ** np.arange(12)).tolist(),
                              "memory_length": 6, "window": 12, "relative_grad_init": (0.7 ** np.arange(12)).tolist(),
                              "memory_length_init": 11, "reach": 0.01},
            "gates": {"steps": steps, "saturation": {"layer0.input": [0.2] * 20, "layer0.forget": [0.9] * 20},
                      "cell_norm": np.linspace(1, 4, 20).tolist()},
            "update_ratio": {"steps": steps, "per_layer": {"lstm.layer0": [1e-3] * 20, "head": [2e-3] * 20}},
            "data": {"feature_scale": {hostile: 340.2, "temp": 1.2, XSS_IMG: 0.5},
                     "acf": {"lags": list(range(60)), "values": np.cos(np.arange(60) * 2 * np.pi / 52).tolist(),
                             "period": 52, "window": 12}},
            "small_batch": {"loss": [1.0] * 20, "sound_loss": np.exp(-np.arange(20) / 5).tolist(), "constant_loss": 0.98},
            "signal": {"real": [0.31, 0.3, 0.33, 0.29, 0.32], "shuffled": [1.0, 0.98, 1.02, 1.01, 0.99], "p_value": 1e-4,
                       "input_free": 1.0, "loss": "mse"},
        },
        treatments=[{"name": "scale-inputs", "for": ["D102", "T305"], "change_text": f"data.scale: standard ({hostile})",
                     "metric": {"name": "val_rmse", "before": {"mean": 3.1, "sd": 0.05}, "after": {"mean": 0.92, "sd": 0.04},
                                "p_value": 0.001, "improved": True},
                     "curves": {"before": {"step": [50, 100, 150], "loss": [9.6, 9.5, 9.5]},
                                "after": {"step": [50, 100, 150], "loss": [2.0, 1.0, 0.85]}},
                     "verified": True}],
        setup=setup,
        recommended_setup=recommended,
        timing={"total_s": 12.5},
        notes=[f"A note about {hostile}."],
    )


@functools.lru_cache(maxsize=1)
def examined_with_hostile_names() -> Report:
    """A real examination (yearly sunspots, statsmodels) whose target and feature columns
    are named like script injections; cached so the test files share one run."""
    import statsmodels.api as sm

    import lstm_doctor

    frame = sm.datasets.sunspots.load_pandas().data.rename(columns={"YEAR": "year", "SUNACTIVITY": XSS_SCRIPT})
    frame[XSS_IMG] = frame[XSS_SCRIPT].shift(1).bfill()  # last year's count, as a second feature
    setup = lstm_doctor.setup_from(frame, data={"target": XSS_SCRIPT, "time": "year", "window": 11},
                                   model={"hidden": 8}, training={"epochs": 2, "batch_size": 16})
    # Every probe runs (so every plot is there to render), each for a few steps only.
    small = dataclasses.replace(BUDGETS["quick"], seconds=3.0, lr_range_steps=40, signal_fits=4, signal_steps=30,
                                small_batch_steps=30)
    return lstm_doctor.examine(setup, budget=small)
