"""The symptom on hand-made curves: each symptom, its near misses, and the precedence."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lstm_doctor.evidence import Evidence
from lstm_doctor.symptom import judge_symptom, learning_slowly, not_learning

BASE = 1.0  # the input-free baseline's validation loss in these curves


def curve(val: list[float], train: list[float] | None = None, *, per_eval: int = 10, **extra) -> Evidence:
    """Evidence of a run validated every ``per_eval`` steps that ran its whole planned training."""
    train = list(np.repeat(val, per_eval) * 0.9) if train is None else train
    history = [{"epoch": i + 1, "step": (i + 1) * per_eval, "loss": v} for i, v in enumerate(val)]
    steps = len(val) * per_eval
    ev = Evidence(val_history=history, train_loss_steps=train, baseline_loss={"mean": BASE, "persistence": 0.3},
                  stopped="completed", steps_run=steps, steps_planned=steps)
    ev.update(extra)
    return ev


def decay(n: int, start: float = 0.95, end: float = 0.3, rate: float = 5.0) -> list[float]:
    """A healthy curve: exponential approach from ``start`` to ``end``."""
    return [end + (start - end) * math.exp(-rate * i / n) for i in range(n)]


def noisy(values: list[float], scale: float, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    return [v * math.exp(scale * rng.standard_normal()) for v in values]


def test_healthy_curve() -> None:
    assert judge_symptom(curve(noisy(decay(40), 0.03))) == "healthy"


def test_unknown_without_a_validation_curve() -> None:
    assert judge_symptom(Evidence()) == "unknown"
    assert judge_symptom(curve([math.nan, math.nan])) == "unknown"


def test_non_finite_loss_is_diverging() -> None:
    ev = curve([0.9, 0.8], stopped="diverged")
    assert judge_symptom(ev) == "diverging"


def test_training_loss_climbing_back_is_diverging() -> None:
    train = decay(100, 1.0, 0.4) + [0.4 + 0.01 * i for i in range(100)]  # ends at 1.4, lowest 0.4
    assert judge_symptom(curve(decay(20, 0.95, 0.5), train)) == "diverging"


def test_noise_near_a_tiny_loss_is_not_diverging() -> None:
    # The training loss doubles from 0.01 to 0.02 at the end: noise, not a quarter of the start given back.
    train = decay(100, 1.0, 0.01, rate=10) + [0.02] * 30
    assert judge_symptom(curve(decay(20, 0.95, 0.3), train)) != "diverging"


def test_spikes_are_unstable() -> None:
    val = decay(40, 0.9, 0.3)
    for i in (12, 20, 28, 35):
        val[i] = 1.5  # five times the level around it
    assert judge_symptom(curve(val)) == "unstable"


def test_two_spikes_in_forty_evaluations_are_not_unstable() -> None:
    val = decay(40, 0.9, 0.3)
    for i in (20, 35):
        val[i] = 1.5
    assert judge_symptom(curve(val)) == "healthy"


def test_swinging_without_a_trend_is_unstable() -> None:
    val = decay(10, 0.9, 0.5) + [0.5, 0.8] * 15  # 60% swings, no progress in the second half
    assert judge_symptom(curve(val)) == "unstable"


def test_swings_on_a_falling_curve_are_not_unstable() -> None:
    # The same 25% swings, but the curve still falls 40% through its second half.
    base = decay(40, 0.9, 0.2, rate=2.0)
    val = [v * (1.25 if i % 2 else 1.0) for i, v in enumerate(base)]
    assert judge_symptom(curve(val)) != "unstable"


def test_wobbles_on_a_low_plateau_are_not_unstable() -> None:
    # A measured healthy run (ItalyPowerDemand, LSTM(16), Adam 3e-3, 15 epochs): 25% bumps at a loss of 0.1,
    # small against the fall from 0.69.
    val = [0.684, 0.656, 0.382, 0.194, 0.128, 0.111, 0.1, 0.097, 0.094, 0.127, 0.096, 0.092, 0.091, 0.118, 0.095]
    assert judge_symptom(curve(val, baseline_loss={"majority": 0.693})) == "healthy"


def test_flat_at_the_baseline_is_not_learning() -> None:
    assert judge_symptom(curve(noisy([1.0] * 30, 0.005))) == "not-learning"


def test_a_little_below_the_baseline_is_not_learning_a_lot_below_is() -> None:
    assert judge_symptom(curve(decay(30, 1.0, 0.96))) == "not-learning"
    assert judge_symptom(curve(decay(30, 1.0, 0.9))) == "healthy"


def test_a_neutral_output_that_beats_the_training_priors_is_the_constant_to_beat() -> None:
    # Training 90/10, validation balanced: the priors score 1.2, uniform (zero logits) 0.69.
    ev = curve(noisy([0.69] * 30, 0.005), baseline_loss={"majority": 1.2}, zero_output_loss=0.693)
    assert judge_symptom(ev) == "not-learning"


def test_capped_run_that_will_get_below_the_baseline_is_learning_slowly() -> None:
    # 100 of 1,000 planned steps: falling 0.002 per step from 1.2, the line crosses 0.95 long before the end.
    val = [1.2 - 0.02 * i for i in range(10)]
    ev = curve(val, steps_planned=1000)
    assert not not_learning(ev) and learning_slowly(ev)
    assert judge_symptom(ev) == "learning-slowly"


def test_capped_flat_run_is_not_learning() -> None:
    ev = curve([1.01, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], steps_planned=5000)
    assert judge_symptom(ev) == "not-learning"


def test_rising_validation_with_falling_training_is_overfitting() -> None:
    val = decay(15, 0.9, 0.3) + [0.3 + 0.02 * i for i in range(1, 16)]  # ends ~0.6, twice its lowest
    train = list(np.linspace(0.9, 0.01, 300))
    assert judge_symptom(curve(val, train, per_eval=10)) == "overfitting"


def test_small_rise_is_not_overfitting() -> None:
    # 10% above the lowest point: within the noise of small validation sets.
    val = decay(15, 0.9, 0.3) + [0.33] * 15
    train = list(np.linspace(0.9, 0.01, 300))
    assert judge_symptom(curve(val, train, per_eval=10)) == "healthy"


def test_rising_validation_with_training_stuck_is_not_overfitting() -> None:
    val = decay(15, 0.9, 0.3) + [0.3 + 0.02 * i for i in range(1, 16)]
    train = list(np.linspace(0.9, 0.5, 100)) + [0.5] * 200  # flat from step 100, before validation turns
    assert judge_symptom(curve(val, train, per_eval=10)) != "overfitting"


def test_falling_at_the_end_with_rates_far_below_the_suggestion_is_learning_slowly() -> None:
    val = decay(40, 0.95, 0.2, rate=1.0)  # still falling at the end
    assert judge_symptom(curve(val, user_lr=1e-4, lr_suggested=5e-3)) == "learning-slowly"


def test_falling_at_the_end_with_a_sound_rate_is_healthy() -> None:
    val = decay(40, 0.95, 0.2, rate=1.0)
    assert judge_symptom(curve(val, user_lr=1e-3, lr_suggested=5e-3)) == "healthy"


def test_a_short_capped_run_of_a_healthy_setup_is_not_learning_slowly() -> None:
    # 200 of 2,500 planned steps, still falling steeply, at a sound rate: nothing says it is slow.
    ev = curve(decay(20, 0.95, 0.3, rate=1.0), steps_planned=2500, user_lr=1e-3, lr_suggested=2e-3)
    assert judge_symptom(ev) == "healthy"


SPIKY_AT_BASELINE = [1.2, 1.1, 1.05, 1.0] + [1.0, 1.0, 3.0, 1.0] * 8
OVERFIT_AT_BASELINE = [1.05, 0.99, 0.97, 0.97, 0.97] + [0.97 + 0.05 * i for i in range(1, 11)]


@pytest.mark.parametrize("first, second, ev", [
    ("diverging", "unstable", curve([0.9, 0.8, 0.7, 0.6] + [0.5, 0.5, 1.5, 0.5] * 8, stopped="diverged")),
    ("unstable", "not_learning", curve(SPIKY_AT_BASELINE)),
    ("not-learning", "overfitting", curve(OVERFIT_AT_BASELINE, list(np.linspace(1.0, 0.1, 150)))),
])
def test_precedence(first: str, second: str, ev: Evidence) -> None:
    """A run that shows two symptoms gets the one first in FINDINGS.md's order."""
    from lstm_doctor import symptom

    assert getattr(symptom, second)(ev)
    assert judge_symptom(ev) == first


def test_overfitting_and_learning_slowly_exclude_each_other() -> None:
    # Learning slowly needs the loss still falling at the end; overfitting needs it rising.
    from lstm_doctor import symptom

    rising = curve(decay(15, 0.9, 0.3) + [0.3 + 0.02 * i for i in range(1, 16)], list(np.linspace(0.9, 0.01, 300)),
                   user_lr=1e-5, lr_suggested=1e-2)
    assert symptom.overfitting(rising) and not symptom.learning_slowly(rising)
    assert judge_symptom(rising) == "overfitting"
