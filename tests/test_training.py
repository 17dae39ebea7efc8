"""The one training loop: repeatability, step/epoch/validation bookkeeping, callbacks, and how runs end."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
from torch import nn

from lstm_doctor.setups import Setup, setup_from
from lstm_doctor.training import Callback, evaluate, fit

SMALL = {"hidden": 8}


@pytest.fixture
def sunspots(sunspots_frame) -> Setup:
    """Yearly sunspots, standardized, an LSTM(8): 238 training windows, 8 steps per epoch."""
    return setup_from(sunspots_frame, data={"target": "sunspots", "features": ["sunspots"], "time": "year", "window": 8,
                                            "scale": "standard"},
                      model=SMALL, training={"batch_size": 30, "epochs": 2, "lr": 0.01})


def test_same_seed_same_losses(sunspots):
    _, a = sunspots.train(seed=3)
    _, b = sunspots.train(seed=3)
    _, c = sunspots.train(seed=4)
    assert a.train_loss == b.train_loss and a.val == b.val
    assert a.train_loss != c.train_loss


def test_training_learns_on_real_data(sunspots):
    model = sunspots.new_model()
    before = evaluate(model, sunspots.objective, sunspots.data.val, sunspots.data)["loss"]
    _, result = sunspots.train(epochs=5, model=model)
    assert result.stopped == "completed" and result.val[-1]["loss"] < before


def test_epoch_and_validation_bookkeeping(sunspots):
    n = len(sunspots.data.train)
    per_epoch = math.ceil(n / 30)
    _, r = sunspots.train()
    assert (r.steps_per_epoch, r.steps, r.epochs) == (per_epoch, 2 * per_epoch, 2)
    assert len(r.train_loss) == r.steps and len(r.epoch_train_loss) == 2
    assert [(v["epoch"], v["step"]) for v in r.val] == [(1, per_epoch), (2, 2 * per_epoch)]
    assert {"loss", "rmse", "mae"} <= set(r.val[0])


def test_max_steps_cuts_mid_epoch(sunspots):
    per_epoch = math.ceil(len(sunspots.data.train) / 30)
    _, r = sunspots.train(max_steps=per_epoch + 3, epochs=5)
    assert r.steps == per_epoch + 3 and r.epochs == 1  # only full passes count
    assert [(v["epoch"], v["step"]) for v in r.val] == [(1, per_epoch), (1, per_epoch + 3)]
    assert r.stopped == "completed"


def test_eval_every_never_validates_a_step_twice(sunspots):
    per_epoch = math.ceil(len(sunspots.data.train) / 30)
    cap = 3 * math.ceil((per_epoch + 1) / 3)  # validated by eval_every, mid-way through the second epoch
    assert cap % per_epoch
    _, r = sunspots.train(eval_every=3, max_steps=cap)
    steps = [v["step"] for v in r.val]
    assert steps == sorted({*range(3, cap + 1, 3), per_epoch})


class Recorder(Callback):
    def __init__(self, stop_at: int | None = None):
        self.calls: list[tuple[str, int]] = []
        self.grads_seen: list[bool] = []
        self.stop_at = stop_at

    def on_train_begin(self, state):
        self.calls.append(("begin", state.step))

    def after_backward(self, state):
        self.grads_seen.append(all(p.grad is not None for p in state.model.parameters()))
        self.calls.append(("backward", state.step))

    def after_step(self, state):
        self.calls.append(("step", state.step))
        if state.step == self.stop_at:
            state.stop = True

    def on_epoch_end(self, state):
        self.calls.append(("epoch", state.step))

    def on_train_end(self, state):
        self.calls.append(("end", state.step))


def test_callback_hooks_in_order(sunspots):
    rec = Recorder()
    _, r = sunspots.train(callbacks=[rec], epochs=1)
    per_epoch = r.steps
    kinds = [k for k, _ in rec.calls]
    assert kinds == ["begin"] + ["backward", "step"] * per_epoch + ["epoch", "end"]
    assert [s for k, s in rec.calls if k == "step"] == list(range(1, per_epoch + 1))
    assert all(rec.grads_seen)


def test_callback_stops_after_the_current_step(sunspots):
    rec = Recorder(stop_at=2)
    _, r = sunspots.train(callbacks=[rec])
    assert r.steps == 2 and r.stopped == "callback" and rec.calls[-1] == ("end", 2)
    assert r.val[-1]["step"] == 2  # the partial epoch is still validated


def test_clipping_reports_the_norm_before_clipping(sunspots):
    norms = []

    class Norms(Callback):
        def after_step(self, state):
            norms.append(state.grad_norm)

    sunspots.clip_norm = 1e-3
    sunspots.train(callbacks=[Norms()], max_steps=3)
    assert len(norms) == 3 and all(n > 1e-3 for n in norms)


def test_deadline_gives_time_limit(sunspots):
    _, r = sunspots.train(deadline=time.monotonic() - 1)
    assert r.stopped == "time-limit" and r.steps == 1


# ---------------------------------------------------------------- runs that break


def test_huge_learning_rate_diverges_without_raising(sunspots_frame):
    setup = setup_from(sunspots_frame, data={"target": "sunspots", "time": "year", "window": 8},
                       model=SMALL, training={"optimizer": "sgd", "lr": 1e6, "epochs": 3})
    _, r = setup.train()
    assert r.stopped == "diverged" and r.diverged_at is not None
    assert not math.isfinite(r.train_loss[-1]) and len(r.train_loss) == r.diverged_at + 1


def test_inf_inputs_diverge_at_once(sunspots_frame):
    frame = sunspots_frame.assign(spike=np.inf)
    setup = setup_from(frame, data={"target": "sunspots", "time": "year", "window": 8}, model=SMALL)
    _, r = setup.train()
    # Saturated gates can keep the first loss finite; its NaN gradients break the weights.
    assert r.stopped == "diverged" and r.diverged_at <= 1 and r.epochs == 0


def test_nan_in_validation_only_is_not_divergence(sunspots_frame):
    frame = sunspots_frame.copy()
    frame.loc[frame.index[-3], "sunspots"] = np.nan  # a gap in the validation years
    setup = setup_from(frame, data={"target": "sunspots", "time": "year", "window": 8, "scale": "standard"},
                       model=SMALL, training={"epochs": 2})
    _, r = setup.train()
    assert r.stopped == "completed" and r.epochs == 2 and all(math.isfinite(v) for v in r.train_loss)
    assert all(math.isnan(v["loss"]) for v in r.val)


class Broken(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, x):
        raise RuntimeError("shape trouble in forward")


def test_model_that_raises_is_recorded(sunspots):
    broken = Setup(data=sunspots.data, model_factory=Broken, objective=sunspots.objective,
                   optimizer_factory=lambda p: torch.optim.Adam(p), epochs=2, batch_size=30)
    _, r = broken.train()
    assert r.stopped == "error" and "RuntimeError: shape trouble in forward" in r.error and r.steps == 0


def test_optimizer_that_fails_is_recorded(sunspots):
    sunspots.optimizer_factory = lambda p: torch.optim.LBFGS(p)  # needs a closure
    _, r = sunspots.train()
    assert r.stopped == "error" and "closure" in r.error


def test_evaluate_restores_training_mode(sunspots):
    model = sunspots.new_model()
    model.train()
    evaluate(model, sunspots.objective, sunspots.data.val, sunspots.data)
    assert model.training


def test_fit_directly_with_a_users_model(sunspots):
    torch.manual_seed(0)
    model = nn.Sequential()  # anything taking x (batch, steps, features)

    class Mean(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return x.mean(dim=1) * self.w

    model = Mean()
    r = fit(model, sunspots.objective, torch.optim.SGD(model.parameters(), lr=0.1), sunspots.data, epochs=1, batch_size=64)
    assert r.stopped == "completed" and r.steps == math.ceil(len(sunspots.data.train) / 64) and model.w.item() != 0
