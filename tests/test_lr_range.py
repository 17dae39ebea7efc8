"""The learning-rate range test: the valley finder on known curves, and sweeps on real data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import lstm_doctor
from lstm_doctor.budget import BUDGETS
from lstm_doctor.inspect import inspect_setup
from lstm_doctor.probes import ProbeContext
from lstm_doctor.probes.lr_range import LR_END, LR_START, Valley, combine, find_valley, lr_range, sweep
from lstm_doctor.render.plots import draw_lr_range

STEPS = 300


def rates(n: int = STEPS) -> np.ndarray:
    return np.geomspace(LR_START, LR_END, n)


def valley_curve(lrs: np.ndarray, fall: tuple[float, float], blow: float, noise: float, seed: int = 0) -> list[float]:
    """Loss 1 until ``fall[0]``, log-linear down to 0.1 at ``fall[1]``, rising fast past ``blow``, with noise."""
    x = np.log10(lrs)
    lo, hi = np.log10(fall)
    loss = np.where(x < lo, 1.0, np.where(x < hi, 1.0 - 0.9 * (x - lo) / (hi - lo), 0.1))
    loss = loss + np.where(x > np.log10(blow), 10 ** (3 * (x - np.log10(blow))) - 1, 0.0)
    rng = np.random.default_rng(seed)
    return list(loss * np.exp(noise * rng.standard_normal(len(x))))


def test_valley_of_a_known_curve() -> None:
    lrs = rates()
    v = find_valley(lrs, valley_curve(lrs, fall=(1e-4, 1e-2), blow=1e-1, noise=0.2), STEPS)
    assert v.suggested is not None
    # The middle of the descent is 1e-3; the smoothing may move the edges by a few steps.
    assert 3e-4 <= v.suggested <= 3e-3
    assert 3e-5 <= v.safe[0] <= 3e-4 and 5e-3 <= v.safe[1] <= 2e-1
    assert v.safe[0] < v.suggested < v.safe[1]


def test_flat_noise_has_no_valley() -> None:
    lrs = rates()
    losses = list(np.exp(0.3 * np.random.default_rng(1).standard_normal(STEPS)))
    assert find_valley(lrs, losses, STEPS).suggested is None


def test_a_single_lucky_batch_is_not_the_valley() -> None:
    lrs = rates()
    losses = valley_curve(lrs, fall=(1e-3, 1e-1), blow=1.0, noise=0.05)
    losses[20] = 0.01  # one batch at 1.6e-7 far below everything else
    v = find_valley(lrs, losses, STEPS)
    assert 3e-3 <= v.suggested <= 3e-2


@pytest.fixture(scope="module")
def sunspots_setup(sunspots_frame: pd.DataFrame):
    def build(**training) -> lstm_doctor.Setup:
        return lstm_doctor.setup_from(sunspots_frame, data={"target": "sunspots", "features": ["sunspots"],
                                                             "window": 22, "scale": "standard"},
                                      model={"hidden": 16}, training=training)
    return build


@pytest.fixture(scope="module")
def adam_sweep(sunspots_setup):
    return sweep(sunspots_setup(lr=1e-3), STEPS, seed=0)


def test_sweep_on_a_healthy_setup_suggests_a_sensible_rate(adam_sweep) -> None:
    lrs, losses, v = adam_sweep
    # Adam on a small LSTM trains well from ~1e-3 to ~1e-2; the suggestion lands there.
    assert 1e-3 <= v.suggested <= 3e-2
    assert v.safe[0] < v.suggested < v.safe[1]
    assert v.min_loss < 0.5 * v.start_loss  # standardized: ~1.0 down to ~0.2
    # The sweep stops once the loss has blown up, well before 10.
    assert v.stop_lr is not None and len(losses) < STEPS and lrs[-1] == v.stop_lr


def test_plain_sgd_needs_larger_rates_than_adam(sunspots_setup, adam_sweep) -> None:
    _, _, sgd = sweep(sunspots_setup(optimizer="sgd"), STEPS, seed=0)
    assert sgd.suggested > 3 * adam_sweep[2].suggested


def test_probe_evidence_and_plot(sunspots_setup) -> None:
    setup = sunspots_setup(optimizer="sgd", lr=1e-5)
    ctx = ProbeContext(setup, BUDGETS["quick"])
    lr_range(ctx)
    ev, plot = ctx.evidence, ctx.plots["lr_range"]
    assert ev.user_lr == pytest.approx(1e-5)
    assert ev.lr_suggested / ev.user_lr > 100  # plain SGD at 1e-5 is far below any working rate
    assert ev.lr_range_steps == STEPS and 0 < ev.lr_range_drop < 1
    assert set(plot) >= {"lr", "loss", "smoothed", "suggested_lr", "safe_range", "user_lr"}
    assert len(plot["lr"]) == len(plot["loss"]) == len(plot["smoothed"])
    assert plot["safe_range"] == ev.lr_safe_range and plot["suggested_lr"] == ev.lr_suggested


def test_off_scale_data_gets_a_second_sweep_on_the_standardized_data(sunspots_frame: pd.DataFrame) -> None:
    def probe(scale: str) -> ProbeContext:
        setup = lstm_doctor.setup_from(sunspots_frame, data={"target": "sunspots", "features": ["sunspots"], "window": 22,
                                                             "scale": scale}, model={"hidden": 16}, training={"lr": 1e-3})
        ctx = ProbeContext(setup, BUDGETS["quick"])
        ctx.evidence.update(inspect_setup(setup))
        lr_range(ctx)
        return ctx
    raw, fed_scaled = probe("none"), probe("standard")
    assert "scaled_lr_safe_range" not in fed_scaled.evidence  # already at unit scale: one sweep
    ev = raw.evidence
    # Counts in the hundreds: the raw sweep only finds the rates that move the head there; on the standardized
    # data Adam's valley sits where the healthy setup's does.
    assert 1e-3 <= ev.scaled_lr_suggested <= 3e-2 and 0 < ev.scaled_lr_range_drop < 1
    assert ev.scaled_lr_suggested == pytest.approx(fed_scaled.evidence.lr_suggested, rel=1.0)
    assert ev.lr_suggested is None or ev.lr_suggested > 3 * ev.scaled_lr_suggested
    # The report shows both sweeps: the one the rate findings judge by gets a plot of its own.
    assert "lr_range_standardized" in raw.plots and "lr_range_standardized" not in fed_scaled.plots
    assert raw.plots["lr_range_standardized"]["suggested_lr"] == ev.scaled_lr_suggested
    assert draw_lr_range(Figure(), raw.plots, {}, key="lr_range_standardized")


def test_seeds_are_combined_by_their_median() -> None:
    sweeps = [Valley(1e-3, (1e-4, 1e-2), 1.0, 0.2, 2.0), Valley(4e-3, (4e-4, 4e-2), 1.1, 0.3, 1.0),
              Valley(2e-3, (2e-4, 2e-2), 0.9, 0.1, None)]
    c = combine(sweeps)
    assert c.suggested == pytest.approx(2e-3) and c.safe == pytest.approx((2e-4, 2e-2))
    assert (c.start_loss, c.min_loss) == (1.0, 0.2)
    assert c.stop_lr == pytest.approx(math.sqrt(2.0))  # two of three stopped: the middle of their two rates
    # One seed of three finding a valley is not enough to suggest a rate.
    assert combine([sweeps[0], Valley(), Valley()]).suggested is None
