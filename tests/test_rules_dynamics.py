"""Rules T301, T302, T308-T313 on hand-made evidence, and the probes that feed them on real data."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import lstm_doctor
from lstm_doctor.budget import BUDGETS, Budget, Workload
from lstm_doctor.evidence import Evidence
from lstm_doctor.objective import Objective, make_optimizer
from lstm_doctor.probes import ProbeContext
from lstm_doctor.probes.baselines import baselines
from lstm_doctor.probes.initial_loss import initial_loss
from lstm_doctor.probes.lr_range import lr_range
from lstm_doctor.probes.small_batch import small_batch
from lstm_doctor.probes.training_run import training_run
from lstm_doctor.rules import dynamics
from lstm_doctor.setups import Setup
from lstm_doctor.symptom import judge_symptom


def run(val: list[float], train: list[float] | None = None, per_eval: int = 10, **extra) -> Evidence:
    """Evidence of a training run that covered its planned steps, validated every ``per_eval`` steps."""
    train = list(np.repeat(val, per_eval) * 0.9) if train is None else train
    steps = len(val) * per_eval
    ev = Evidence(val_history=[{"epoch": i + 1, "step": (i + 1) * per_eval, "loss": v} for i, v in enumerate(val)],
                  train_loss_steps=train, baseline_loss={"mean": 1.0}, stopped="completed",
                  steps_run=steps, steps_planned=steps)
    ev.update(extra)
    return ev


def falling(n: int, start: float = 0.95, end: float = 0.3, rate: float = 5.0) -> list[float]:
    return [end + (start - end) * math.exp(-rate * i / n) for i in range(n)]


SPIKY = [0.9, 0.7, 0.5, 0.4] + [0.4, 0.4, 1.6, 0.4] * 8

# --- T301 -----------------------------------------------------------------------------------


def test_t301_rate_above_the_safe_range_with_spikes() -> None:
    f = dynamics.learning_rate_too_high(run(SPIKY, user_lr=1.0, lr_safe_range=[1e-3, 0.05], lr_suggested=5e-3))
    assert f.code == "T301" and f.severity == "critical"
    assert "20x the top" in f.summary and "spikes" in f.summary
    assert f.fix == "training.lr: 0.005"


def test_t301_rate_above_the_range_whose_run_trains_well_is_silent() -> None:
    ev = run(falling(30), user_lr=0.1, lr_safe_range=[1e-3, 0.05], lr_suggested=5e-3, lr_range_min_loss=0.25)
    assert dynamics.learning_rate_too_high(ev) is None


def test_t301_run_far_above_the_sweep_minimum() -> None:
    # Validation looks calm, but training ends at 3x the loss the range test reached.
    ev = run(falling(30, 0.9, 0.6), user_lr=1.0, lr_safe_range=[1e-3, 0.05], lr_suggested=5e-3,
             lr_range_min_loss=0.2)
    f = dynamics.learning_rate_too_high(ev)
    assert f is not None and f.evidence["final_train_over_sweep_min"] == pytest.approx(0.54 / 0.2, rel=0.05)
    # Near miss: a tiny training set, memorised by the run (and by the sweep even more): no overshooting.
    fitted = run(falling(30), user_lr=3e-3, lr_suggested=8e-4, lr_safe_range=[4e-4, 10.0],
                 train_loss_steps=[2e-4] * 300, lr_range_min_loss=2e-6, baseline_loss={"majority": 2.2})
    assert dynamics.learning_rate_too_high(fitted) is None


def test_t301_well_above_the_suggestion_inside_the_range_with_spikes() -> None:
    ev = run(SPIKY, user_lr=0.1, lr_safe_range=[1e-3, 0.2], lr_suggested=0.02)
    f = dynamics.learning_rate_too_high(ev)
    assert f is not None and f.confidence == 0.7 and "5x the suggested 0.02" in f.summary
    ev.update(user_lr=0.05)  # 2.5x: near miss
    assert dynamics.learning_rate_too_high(ev) is None


def test_t301_run_whose_updates_saturate_the_gates() -> None:
    # Validation looks fine, but the gates went from free at init to pinned: the updates did it.
    lstm = {"layer0.input": 0.55, "layer0.forget": 0.5, "layer0.cell": 0.45, "layer0.output": 0.7}
    free = dict.fromkeys(lstm, 0.0)
    ev = run(falling(30), user_lr=0.1, lr_safe_range=[2e-3, 0.06], lr_suggested=7e-3, lr_range_min_loss=0.25,
             gate_saturation=lstm, gate_saturation_init=free)
    f = dynamics.learning_rate_too_high(ev)
    assert f is not None and "into saturation" in f.summary and f.evidence["gate_saturation"]["layer"] == "layer0"
    # Near misses: pinned from the start (the inputs or the init did it), or at a rate near the suggestion.
    assert dynamics.learning_rate_too_high(Evidence(ev, gate_saturation_init=lstm)) is None
    assert dynamics.learning_rate_too_high(Evidence(ev, user_lr=0.01)) is None


def test_t301_without_a_suggestion_the_small_batch_overshoots() -> None:
    ev = run([0.69, 0.72, 0.70, 0.69] * 5, user_lr=1.0, lr_suggested=None, lr_safe_range=None, baseline_loss={"majority": 0.69},
             small_batch_size=16, small_batch_constant_loss=0.693, small_batch_user_peak=2.69, small_batch_sound_peak=0.693)
    f = dynamics.learning_rate_too_high(ev)
    assert f is not None and f.confidence == 0.6 and "jumps to 2.69" in f.summary
    # Near miss: the sound recipe jumps as high from the same weights, so the start is to blame, not the rate.
    assert dynamics.learning_rate_too_high(Evidence(ev, small_batch_sound_peak=2.5)) is None


def test_t301_on_off_scale_data_judges_the_rate_by_the_sweep_on_standardized_data() -> None:
    # A target in the thousands: on the raw data Adam's range reaches 3.0 (the steps that move the head
    # there), so a rate of 1.0 looks fine; on the standardized data the loss is lowest at 0.05.
    ev = run([1.0] * 30, flat_train(0.02), user_lr=1.0, lr_safe_range=[1e-3, 3.0], lr_suggested=0.8,
             lr_range_min_loss=1e-3, baseline_loss={"mean": 1.0})
    assert dynamics.learning_rate_too_high(ev) is None
    ev.update(scaled_lr_safe_range=[1e-3, 0.05], scaled_lr_suggested=7e-3, scaled_lr_range_drop=0.6)
    f = dynamics.learning_rate_too_high(ev)
    assert f is not None and "20x the top" in f.summary and "standardized" in f.summary
    assert f.evidence["on_standardized_data"] and f.fix == "training.lr: 0.007"
    # The run's loss is in the raw units: it is not compared with the standardized sweep's.
    assert f.evidence["final_train_over_sweep_min"] is None and "does no better than a constant" in f.summary
    assert dynamics.learning_rate_too_high(Evidence(ev, user_lr=0.01)) is None  # inside the standardized range


def test_t301_divergence_within_the_safe_range_is_not_the_rate() -> None:
    ev = run([0.9, 0.8], stopped="diverged", diverged_at=12, user_lr=1e-3, lr_safe_range=[1e-4, 1e-2], lr_suggested=1e-3)
    assert dynamics.learning_rate_too_high(ev) is None
    ev.update(user_lr=0.5)
    assert dynamics.learning_rate_too_high(ev).confidence == 0.9


def test_t301_divergence_without_a_range_test() -> None:
    f = dynamics.learning_rate_too_high(run([0.9], stopped="diverged", diverged_at=3))
    assert f is not None and f.confidence == 0.6 and "step 3" in f.summary

# --- T302 -----------------------------------------------------------------------------------


def flat_train(drop: float, n: int = 300) -> list[float]:
    return list(np.linspace(1.0, 1.0 - drop, n))


def test_t302_far_below_and_barely_moving() -> None:
    ev = run([1.0] * 30, flat_train(0.05), user_lr=1e-5, lr_suggested=0.06, lr_range_drop=0.36)
    f = dynamics.learning_rate_too_low(ev)
    assert f.code == "T302" and f.severity == "critical" and f.evidence["ratio"] == 6000.0


def test_t302_near_miss_ratio() -> None:
    ev = run([1.0] * 30, flat_train(0.05), user_lr=1e-3, lr_suggested=2e-2, lr_range_drop=0.36)  # 20x
    assert dynamics.learning_rate_too_low(ev) is None


def test_t302_near_miss_the_loss_moves() -> None:
    # 30x below the suggestion, but the run's loss fell 30% against the sweep's 36%: it learns.
    ev = run(falling(30), flat_train(0.3), user_lr=1e-4, lr_suggested=3e-3, lr_range_drop=0.36)
    assert dynamics.learning_rate_too_low(ev) is None


def test_t302_without_a_suggestion_the_small_batch_is_the_witness() -> None:
    ev = run([0.69] * 30, flat_train(0.01), user_lr=1e-4, lr_suggested=None, small_batch_size=16,
             small_batch_constant_loss=0.693, small_batch_user_best=0.69, small_batch_sound_best=0.006,
             small_batch_sound_lr=1e-2)
    f = dynamics.learning_rate_too_low(ev)
    assert f is not None and f.confidence == 0.7 and "not even on 16 training windows" in f.summary
    # Near misses: the user's settings do move the small batch, or the recipe cannot fit it either.
    assert dynamics.learning_rate_too_low(Evidence(ev, small_batch_user_best=0.5)) is None
    assert dynamics.learning_rate_too_low(Evidence(ev, small_batch_sound_best=0.69)) is None


def test_t302_on_off_scale_data_judges_the_rate_by_the_sweep_on_standardized_data() -> None:
    # On the raw target the sweep falls 70% at rates near 1.4 (moving the head to the thousands); on the
    # standardized data 3e-3 is already the rate where it falls: no rate to raise.
    ev = run([1.0] * 30, flat_train(0.02), user_lr=3e-3, lr_suggested=1.4, lr_range_drop=0.7, lr_range_min_loss=0.4,
             scaled_lr_suggested=4e-3, scaled_lr_safe_range=[1e-4, 0.05], scaled_lr_range_drop=0.5)
    assert dynamics.learning_rate_too_low(ev) is None
    ev.update(user_lr=1e-5)  # SGD-like steps: 400x below the standardized suggestion
    f = dynamics.learning_rate_too_low(ev)
    assert f is not None and f.evidence["on_standardized_data"] and "standardized" in f.summary


def test_t302_a_sweep_that_only_undoes_a_bad_start_suggests_nothing() -> None:
    # Weights far off scale: the sweep's loss falls 89% from 13.9, but only to 1.54, above a constant's 0.69,
    # so no rate made the model learn; a sweep that gets below the constant does suggest a rate.
    ev = run([3.0] * 30, flat_train(0.09), user_lr=3e-3, lr_suggested=0.37, lr_range_drop=0.89, lr_range_min_loss=1.54,
             baseline_loss={"majority": 0.693})
    assert dynamics.learning_rate_too_low(ev) is None
    assert dynamics.learning_rate_too_low(Evidence(ev, lr_range_min_loss=0.5)) is not None


def test_t302_capped_run_is_extrapolated_to_the_planned_training() -> None:
    # 300 of 3,000 planned steps with a 2% drop: even ten times that (20%) beats a quarter of 36%.
    ev = run([1.0] * 30, flat_train(0.02), user_lr=1e-5, lr_suggested=1e-2, lr_range_drop=0.36)
    ev.update(steps_planned=3000)
    assert dynamics.learning_rate_too_low(ev) is None
    ev.update(steps_planned=600)
    assert dynamics.learning_rate_too_low(ev) is not None

# --- T308 -----------------------------------------------------------------------------------


def test_t308_overfitting() -> None:
    val = falling(15, 0.9, 0.3) + [0.3 + 0.02 * i for i in range(1, 16)]
    f = dynamics.overfitting_rule(run(val, list(np.linspace(0.9, 0.01, 300))))
    assert f.code == "T308" and f.severity == "warning" and f.evidence["rise"] >= 1.2
    assert f.fix.startswith("training.epochs: ")


def test_t308_near_miss() -> None:
    val = falling(15, 0.9, 0.3) + [0.33] * 15
    assert dynamics.overfitting_rule(run(val, list(np.linspace(0.9, 0.01, 300)))) is None

# --- T309 -----------------------------------------------------------------------------------


def test_t309_cannot_get_below_a_constant() -> None:
    ev = Evidence(small_batch_constant_loss=0.856, small_batch_sound_best=0.856, small_batch_size=16,
                  small_batch_steps=200, small_batch_sound_lr=1e-2)
    f = dynamics.cannot_fit_small_batch(ev)
    assert f.code == "T309" and f.severity == "critical"


def test_t309_near_miss_and_divergence() -> None:
    ev = Evidence(small_batch_constant_loss=1.0, small_batch_sound_best=0.95, small_batch_size=16, small_batch_steps=200)
    assert dynamics.cannot_fit_small_batch(ev) is None  # below the constant: the output follows the input
    ev.update(small_batch_sound_best=math.nan)
    assert dynamics.cannot_fit_small_batch(ev) is not None  # the sound recipe broke down

# --- T310 -----------------------------------------------------------------------------------


def test_t310_never_or_rarely_reset() -> None:
    f = dynamics.gradient_accumulation(Evidence(zero_grad_calls=0, optimizer_steps=500))
    assert f.code == "T310" and f.severity == "critical" and f.summary.startswith("Gradients are reset never")
    assert dynamics.gradient_accumulation(Evidence(zero_grad_calls=2, optimizer_steps=2000)) is not None


def test_t310_direct_checks_outweigh_the_call_count() -> None:
    # zero_grad called every step, but on another optimizer: the gradients still pile up.
    ev = Evidence(zero_grad_calls=100, optimizer_steps=100, grad_reset_checks=4, grad_accumulated_checks=4)
    assert dynamics.gradient_accumulation(ev) is not None
    ev.update(grad_accumulated_checks=1)
    assert dynamics.gradient_accumulation(ev) is None


def test_t310_deliberate_accumulation_is_fine() -> None:
    assert dynamics.gradient_accumulation(Evidence(zero_grad_calls=125, optimizer_steps=1000)) is None  # every 8 steps
    assert dynamics.gradient_accumulation(Evidence(zero_grad_calls=0, optimizer_steps=5)) is None  # too few to judge
    # An examination of a setup has no watcher: ``steps`` there is the window length.
    assert dynamics.gradient_accumulation(Evidence(steps=48)) is None

# --- T311 -----------------------------------------------------------------------------------


def test_t311_tiny_batches_with_an_unstable_run() -> None:
    f = dynamics.batch_size(run(SPIKY, batch_size=2, n_train=500))
    assert f.code == "T311" and "unstable" in f.summary


def test_t311_tiny_batches_with_a_healthy_run_are_only_worth_knowing() -> None:
    f = dynamics.batch_size(run(falling(30), batch_size=2, n_train=500))
    assert f.severity == "info" and "16x the steps" in f.summary


AT_BASELINE = [0.696, 0.695, 0.695, 0.694, 0.694, 0.693, 0.692, 0.69]


def test_t311_too_few_steps_from_a_batch_of_most_windows() -> None:
    ev = run(AT_BASELINE, per_eval=3, batch_size=64, n_train=67, baseline_loss={"majority": 0.693})
    f = dynamics.batch_size(ev)
    assert f.severity == "warning" and "24 optimizer steps" in f.summary
    assert f.fix == "training.batch_size: 4 or more training.epochs"


def test_t311_few_steps_from_a_moderate_batch_are_too_few_epochs() -> None:
    ev = run(AT_BASELINE, per_eval=3, batch_size=32, n_train=67, baseline_loss={"majority": 0.693}, epochs=8)
    assert dynamics.batch_size(ev) is None
    f = dynamics.too_few_epochs(ev)
    assert f is not None and "24 optimizer steps" in f.summary and f.fix == "training.epochs: 34"


def test_t311_few_steps_that_converged_are_fine() -> None:
    ev = run(falling(8, 0.9, 0.2, rate=12.0), per_eval=3, batch_size=64, n_train=67)
    assert dynamics.batch_size(ev) is None
    assert dynamics.too_few_epochs(ev) is None

# --- T312 -----------------------------------------------------------------------------------


def test_t312_still_improving_at_the_end() -> None:
    f = dynamics.too_few_epochs(run(falling(20, 0.95, 0.1, rate=1.0), epochs=20))
    assert f.code == "T312" and f.severity == "info" and f.fix == "training.epochs: 40"


def test_t312_a_long_run_creeping_towards_the_constant_is_silent() -> None:
    creeping = [1.2 - 0.2 * (1 - math.exp(-i / 20)) for i in range(40)]  # 1.2 down to ~1.03, baseline 1.0
    ev = run(creeping, epochs=40)
    assert dynamics.too_few_epochs(ev) is None


def test_t312_converged_or_capped_is_silent() -> None:
    assert dynamics.too_few_epochs(run(falling(20, 0.95, 0.1, rate=8.0), epochs=20)) is None
    capped = run(falling(20, 0.95, 0.1, rate=1.0), epochs=20)
    capped.update(steps_planned=2000)
    assert dynamics.too_few_epochs(capped) is None

# --- T313 -----------------------------------------------------------------------------------


def test_t313_outputs_far_from_neutral() -> None:
    f = dynamics.bad_initial_loss(Evidence(initial_loss=9.9, zero_output_loss=2.5, expected_initial_loss=2.4))
    assert f.code == "T313" and f.evidence["over_neutral"] == pytest.approx(3.96)


def test_t313_outputs_far_too_large_behind_a_run_stuck_at_a_constant_are_critical() -> None:
    start = Evidence(initial_loss=12.8, zero_output_loss=0.693, expected_initial_loss=0.693)
    learns = dynamics.bad_initial_loss(Evidence(run(falling(30, 0.95, 0.3)), **start))
    stuck = dynamics.bad_initial_loss(Evidence(run([1.0] * 30, flat_train(0.01)), **start))
    assert learns.severity == "warning" and stuck.severity == "critical" and "no better than a constant" in stuck.summary
    # A target far from where outputs start (D104's effect) stays a warning: D104 is the critical finding.
    offset = Evidence(run([1.0] * 30, flat_train(0.01)), initial_loss=1.33e5, zero_output_loss=1.335e5,
                      expected_initial_loss=1001.0)
    assert dynamics.bad_initial_loss(offset).severity == "warning"


def test_t313_targets_far_from_any_untrained_output() -> None:
    f = dynamics.bad_initial_loss(Evidence(initial_loss=1.33e5, zero_output_loss=1.335e5, expected_initial_loss=1001.0))
    assert f is not None and "far from where an untrained output starts" in f.summary


def test_t313_near_misses() -> None:
    assert dynamics.bad_initial_loss(Evidence(initial_loss=0.75, zero_output_loss=0.693, expected_initial_loss=0.693)) is None
    # min-max scaled target: the neutral output is 2.75x the constant's, below 10x
    assert dynamics.bad_initial_loss(Evidence(initial_loss=1.2, zero_output_loss=1.24, expected_initial_loss=0.45)) is None
    assert dynamics.bad_initial_loss(Evidence(initial_loss=math.nan, zero_output_loss=1.0, expected_initial_loss=1.0)) is None

# --- Real data ------------------------------------------------------------------------------


def sunspots(frame: pd.DataFrame, model: dict | None = None, **training) -> lstm_doctor.Setup:
    return lstm_doctor.setup_from(frame, data={"target": "sunspots", "features": ["sunspots"], "window": 22,
                                                "scale": "standard"},
                                  model={"hidden": 16, **(model or {})}, training={"epochs": 40, **training})


def italy(arrays: dict, **training) -> lstm_doctor.Setup:
    return lstm_doctor.setup_from(arrays, data={"task": "binary"}, model={"hidden": 16},
                                  training={"loss": "bce", "batch_size": 16, "epochs": 60, **training})


class IgnoresInput(nn.Module):
    """A model whose output is a learned constant, whatever the input."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(x.shape[0], 1)


def probe(setup: lstm_doctor.Setup, *probes, budget: Budget = BUDGETS["quick"]) -> Evidence:
    ctx = ProbeContext(setup, budget)
    for p in probes:
        p(ctx)
    return ctx.evidence


def test_t301_first_for_adam_at_lr_1_on_italy_power(italy_power: dict) -> None:
    report = lstm_doctor.examine(italy(italy_power, lr=1.0))
    assert report.findings[0].code == "T301"
    assert report.findings[0].severity == "critical"


def test_t301_for_sgd_at_lr_10_on_sunspots(sunspots_frame: pd.DataFrame) -> None:
    ev = probe(sunspots(sunspots_frame, optimizer="sgd", lr=10.0), baselines, training_run, lr_range)
    assert judge_symptom(ev) == "diverging"
    f = dynamics.learning_rate_too_high(ev)
    assert f.confidence == 0.9 and "non-finite" in f.summary


def test_t302_first_for_sgd_at_lr_1e5_on_sunspots(sunspots_frame: pd.DataFrame) -> None:
    report = lstm_doctor.examine(sunspots(sunspots_frame, optimizer="sgd", lr=1e-5))
    assert report.symptom == "not-learning"
    assert report.findings[0].code == "T302"
    assert "T301" not in [f.code for f in report.findings]


@pytest.mark.parametrize("which", ["sunspots", "italy_power"])
def test_healthy_setups(which: str, sunspots_frame: pd.DataFrame, italy_power: dict) -> None:
    setup = sunspots(sunspots_frame, lr=3e-3) if which == "sunspots" else italy(italy_power, lr=3e-3)
    report = lstm_doctor.examine(setup)
    assert report.symptom == "healthy"
    assert not [f.code for f in report.findings if f.severity == "critical"]
    assert not {"T301", "T302", "T309", "T313"} & {f.code for f in report.findings}


def test_a_capped_run_of_a_healthy_setup_is_not_called_slow(sunspots_frame: pd.DataFrame) -> None:
    setup = sunspots(sunspots_frame, lr=3e-3)
    budget = replace(BUDGETS["quick"], train_share=0.008)  # ~115 of the 320 planned steps
    assert budget.training_steps(Workload.of(setup)) < 0.5 * Workload.of(setup).planned_steps
    ev = probe(setup, baselines, training_run, lr_range, budget=budget)
    assert ev.steps_run < 0.5 * ev.steps_planned
    assert judge_symptom(ev) == "healthy"


def test_small_batch_memorised_by_a_healthy_model(sunspots_frame: pd.DataFrame) -> None:
    ev = probe(sunspots(sunspots_frame, lr=3e-3), small_batch)
    assert ev.small_batch_size == 16
    assert ev.small_batch_sound_best <= 0.1 * ev.small_batch_constant_loss
    assert ev.small_batch_user_best <= 0.1 * ev.small_batch_constant_loss
    assert dynamics.cannot_fit_small_batch(ev) is None


def test_small_batch_tells_a_low_rate_from_a_broken_model(sunspots_frame: pd.DataFrame) -> None:
    ev = probe(sunspots(sunspots_frame, optimizer="sgd", lr=1e-5), small_batch)
    assert ev.small_batch_user_best > 0.9 * ev.small_batch_constant_loss  # the user's settings do not move
    assert ev.small_batch_sound_best <= 0.1 * ev.small_batch_constant_loss  # the model can learn
    assert dynamics.cannot_fit_small_batch(ev) is None


def test_small_batch_fails_on_a_model_that_ignores_its_input(sunspots_frame: pd.DataFrame) -> None:
    data = sunspots(sunspots_frame).data
    setup = Setup(data, IgnoresInput, Objective("mse", "regression"),
                  lambda params: make_optimizer("adam", params, lr=1e-3), epochs=5)
    f = dynamics.cannot_fit_small_batch(probe(setup, small_batch))
    assert f is not None and f.code == "T309"


def test_small_batch_fails_on_zero_initialized_weights(sunspots_frame: pd.DataFrame) -> None:
    ev = probe(sunspots(sunspots_frame, model={"init": "zeros"}, lr=3e-3), small_batch)
    assert dynamics.cannot_fit_small_batch(ev) is not None


def test_initial_loss_of_a_default_model_is_ln2_for_bce(italy_power: dict) -> None:
    ev = probe(italy(italy_power), initial_loss)
    assert ev.zero_output_loss == pytest.approx(math.log(2), abs=1e-4)
    assert ev.initial_loss == pytest.approx(math.log(2), rel=0.05)
    assert ev.initial_val["loss"] == ev.initial_loss
    assert dynamics.bad_initial_loss(ev) is None


def test_initial_loss_of_large_initial_weights(sunspots_frame: pd.DataFrame) -> None:
    ev = probe(sunspots(sunspots_frame, model={"hidden": 32, "init": "normal:1.0"}), initial_loss)
    assert ev.initial_loss > 2 * ev.zero_output_loss
    assert dynamics.bad_initial_loss(ev).code == "T313"


def test_initial_loss_of_an_unscaled_target(co2_frame: pd.DataFrame) -> None:
    setup = lstm_doctor.setup_from(co2_frame, data={"target": "co2", "features": ["co2"], "window": 52},
                                   model={"hidden": 16})
    ev = probe(setup, initial_loss)
    assert ev.zero_output_loss > 10 * ev.expected_initial_loss  # ppm around 340: far from an untrained output's 0
    assert dynamics.bad_initial_loss(ev) is not None
