"""bench/lr_compare.py: the other finders see fit's batches, the case merging, the standings."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

import lstm_doctor
from bench import lr_compare as lc
from lstm_doctor.training import Callback, TrainState


@pytest.fixture(scope="module")
def sunspots_setup(sunspots_frame: pd.DataFrame) -> lstm_doctor.Setup:
    return lstm_doctor.setup_from(sunspots_frame, data={"target": "sunspots", "features": ["sunspots"], "window": 22,
                                                        "scale": "standard"},
                                  model={"hidden": 8}, training={"batch_size": 32, "seed": 3})


class Batches(Callback):
    def __init__(self) -> None:
        self.seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def after_backward(self, state: TrainState) -> None:
        self.seen.append((state.batch[0].clone(), state.batch[1].clone()))


def test_the_other_finders_get_fits_batches_in_fits_order(sunspots_setup) -> None:
    seen = Batches()
    per_epoch = math.ceil(len(sunspots_setup.data.train) / sunspots_setup.batch_size)
    sunspots_setup.train(seed=5, epochs=2, callbacks=[seen])  # two epochs: the second permutation too
    order = lc.loader(sunspots_setup, 5)
    batches = list(order) + list(order)  # one loader, two epochs: as the finders iterate it
    assert len(seen.seen) == len(batches) == 2 * per_epoch
    for (x0, y0), (x1, y1) in zip(seen.seen, batches):
        assert torch.equal(x0, x1) and torch.equal(y0, y1)
    other = next(iter(lc.loader(sunspots_setup, 6)))
    assert not torch.equal(other[0], batches[0][0])


def test_seeded_keeps_the_windows_and_changes_seed_and_rate(sunspots_setup) -> None:
    s = lc.seeded(sunspots_setup, 7, 0.02)
    assert s.data is sunspots_setup.data and s.seed == 7 and s.config.training.lr == 0.02
    assert lc.seeded(sunspots_setup, 7).config.training.lr == sunspots_setup.config.training.lr


def test_ragged_sequences_are_refused(sunspots_setup) -> None:
    from dataclasses import replace

    train = replace(sunspots_setup.data.train, lengths=torch.full((len(sunspots_setup.data.train),), 22))
    ragged = replace(sunspots_setup, data=replace(sunspots_setup.data, train=train))
    with pytest.raises(ValueError, match="one length"):
        lc.WindowBatches(ragged)


def test_log_spaced_suggestion_finds_the_steepest_fall_in_log_rate() -> None:
    lrs = np.geomspace(1e-7, 10, 200)
    x = np.log10(lrs)
    loss = 1 / (1 + np.exp(4 * (x + 3)))  # falls fastest at 1e-3 in log-rate
    rng = np.random.default_rng(0)
    noisy = loss + 0.002 * rng.standard_normal(len(x))
    assert 5e-4 <= lc.log_spaced_suggestion(list(lrs), list(noisy)) <= 2e-3
    # Against the rate itself (Lightning 2.5.3+), the same noise wins at the smallest rates.
    grad = np.gradient(noisy[10:-1], lrs[10:-1])
    assert lrs[10:-1][np.argmin(grad)] < 1e-5
    assert lc.log_spaced_suggestion([1e-3] * 5, [1.0] * 5) is None  # too few points after the skips


def test_compare_cases_merge_what_only_the_users_rate_separates() -> None:
    cases = {c.name: c for c in lc.compare_cases(("italy_power",))}
    assert set(cases) == {"italy_power adam", "italy_power sgd"}
    assert cases["italy_power adam"].user_rates == {"healthy": 3e-3, "T301 subtle": 0.1, "T301 obvious": 1.0}
    assert cases["italy_power sgd"].user_rates == {"T302 subtle": 1e-4, "T302 obvious": 1e-6}


def _runs(*values: float, none: bool = False) -> list[dict]:
    return [{"metric": v, "diverged": False, "none": none} for v in values]


def _result(metric: str, constant: float, **runs: list[dict]) -> dict:
    return {"metric": metric, "constant": constant, "runs": {n: runs.get(n, []) for n in ("a", "b", "c")}}


def test_standings_count_best_near_best_and_only_rates_that_learned() -> None:
    results = [
        # RMSE: a best, b 4% worse (near), c no better than the constant (does not count).
        _result("rmse", 10.0, a=_runs(1.0, 1.0), b=_runs(1.04, 1.04), c=_runs(9.8)),
        # Balanced accuracy: c best, a 10% worse, b suggested nothing (two seeds scored as the constant).
        _result("balanced_accuracy", 0.5, a=_runs(0.8, 0.82), b=_runs(0.5, 0.5, none=True), c=_runs(0.9)),
        # Nothing learned: no best at all.
        _result("balanced_accuracy", 0.5, a=_runs(0.5), b=_runs(0.51), c=_runs(0.5)),
    ]
    got = lc.standings(results, ("a", "b", "c"))
    assert got["a"] == {"best": 1, "near_best": 1, "learned": 2, "none": 0, "cases": 3}
    assert got["b"] == {"best": 0, "near_best": 1, "learned": 1, "none": 2, "cases": 3}
    assert got["c"] == {"best": 1, "near_best": 1, "learned": 1, "none": 0, "cases": 3}


def test_gap_is_relative_and_direction_aware() -> None:
    assert lc.gap(1.1, 1.0, "rmse") == pytest.approx(0.1)
    assert lc.gap(0.9, 1.0, "balanced_accuracy") == pytest.approx(0.1)
    assert lc.gap(0.9, 1.0, "rmse") < 0
    assert lc.gap(float("nan"), 1.0, "rmse") == math.inf


@pytest.mark.slow
def test_the_finders_run_on_a_real_setup(sunspots_setup) -> None:
    pytest.importorskip("torch_lr_finder")
    pytest.importorskip("lightning")
    tlf = lc.torch_lr_finder_lr(sunspots_setup, 40, seed=0)
    light = lc.lightning_lr(sunspots_setup, 40, seed=0)
    assert tlf.steps <= 40 and light["lightning"].steps <= 40
    for s in (tlf, light["lightning"], light["lightning-log"]):
        assert s.lr is None or 1e-7 <= s.lr <= 10
    # The range tests leave the setup's training untouched: the same seed trains the same.
    a = lc.train_at(sunspots_setup, 1e-2, 0, 20, {"rmse": 1.0, "loss": 1.0})
    b = lc.train_at(sunspots_setup, 1e-2, 0, 20, {"rmse": 1.0, "loss": 1.0})
    assert a == b and a["steps"] == 20 and not a["diverged"]


def test_a_missing_finder_stops_with_what_to_install(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "torch_lr_finder", None)  # as if not installed
    with pytest.raises(SystemExit, match=r"torch-lr-finder, which is not installed: pip install -e '\.\[bench\]'"):
        lc.require_finders()
