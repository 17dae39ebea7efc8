"""Budgets: how long and how often the probes may train (quick, standard, thorough).

Caps are numbers of steps, never wall time, so that an examination repeats
exactly. They come from a cost model of one training step on the reference
machine (2 CPU cores, no GPU; bench/examine_speed.py measures it):

    seconds per step = STEP_OVERHEAD_S + steps * (LAYER_STEP_S * layers + MAC_S * batch * parameters)

A recurrent layer runs ``steps`` small sequential kernels per pass (a fixed
cost per layer and step), and each parameter is used once per sample and step
(the multiply-adds). With it, a probe asks how many steps it can afford on
*this* setup: the typical setup of DESIGN.md (5,000 windows of 48 steps, one
64-unit LSTM) then gets its whole training in ``quick``, a large model a short
part of it, and the examination stays within the DESIGN budget: 30 s on a
typical setup, at most a fifth of the setup's own training time beyond that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn

from lstm_doctor.errors import InputError

if TYPE_CHECKING:
    from lstm_doctor.setups import Setup

# Fitted to thread-time measurements of training steps (bench/examine_speed.py, bench/RESULTS.md).
STEP_OVERHEAD_S = 1.0e-3  # Python, batch gathering, optimizer bookkeeping
LAYER_STEP_S = 3.0e-5  # one recurrent layer (one direction), one time step
MAC_S = 7.0e-11  # one parameter, one sample, one time step, forward and backward
FORWARD_SHARE = 1 / 3  # an evaluation pass costs about a third of a training step per window
# Of the fraction of a long training that the examination may take, the part the budgeted probes
# spend: the rest covers what does not scale with the budget (inspection, baselines, instruments)
# and the cost model's error (within ~30% on the shapes bench/examine_speed.py --calibrate measures).
LONG_TRAINING_SHARE = 0.6


@dataclass(frozen=True)
class Budget:
    """Limits for every probe, in steps, derived from ``seconds`` on the reference machine.

    ``seconds`` is what the training probes may spend in all on a setup whose own
    training is short; for a long training the allowance grows to
    ``LONG_TRAINING_SHARE`` of ``fraction_of_training`` of it, the DESIGN rule for
    ``quick`` being at most a fifth in all. The
    instrumented run takes ``train_share`` of the allowance (the whole training
    when that fits), at most ``train_steps`` steps.
    """

    name: str
    seconds: float
    fraction_of_training: float
    train_share: float
    train_steps: int
    lr_range_steps: int
    signal_fits: int
    signal_steps: int
    small_batch_steps: int
    seeds: int
    probe_every: int

    def allowance(self, work: "Workload") -> float:
        """Reference-machine seconds the training probes may spend on this workload."""
        return max(self.seconds, LONG_TRAINING_SHARE * self.fraction_of_training * work.training_seconds())

    def affordable_steps(self, work: "Workload", nominal: int, share: float, batch_size: int | None = None) -> int:
        """``nominal`` steps, or fewer when they would cost more than ``share`` of the allowance (at least 1)."""
        return max(1, min(nominal, int(share * self.allowance(work) / work.step_seconds(batch_size))))

    def training_steps(self, work: "Workload") -> int:
        """Steps of the instrumented run at the user's settings: the whole training when affordable."""
        return min(work.planned_steps, self.affordable_steps(work, self.train_steps, self.train_share))


BUDGETS = {
    "quick": Budget("quick", seconds=25.0, fraction_of_training=0.2, train_share=0.65, train_steps=5_000,
                    lr_range_steps=300, signal_fits=5, signal_steps=150, small_batch_steps=200, seeds=1,
                    probe_every=25),
    "standard": Budget("standard", seconds=90.0, fraction_of_training=0.5, train_share=0.6, train_steps=20_000,
                       lr_range_steps=400, signal_fits=6, signal_steps=300, small_batch_steps=300, seeds=2,
                       probe_every=20),
    "thorough": Budget("thorough", seconds=600.0, fraction_of_training=1.0, train_share=0.6, train_steps=100_000,
                       lr_range_steps=500, signal_fits=10, signal_steps=600, small_batch_steps=500, seeds=3,
                       probe_every=10),
}


def get_budget(name: str | Budget) -> Budget:
    if isinstance(name, Budget):
        return name
    try:
        return BUDGETS[name]
    except KeyError:
        raise InputError(f"Unknown budget {name!r}; choose one of {', '.join(BUDGETS)}.") from None


@dataclass(frozen=True)
class Workload:
    """The sizes that set what training a setup costs."""

    params: int  # trainable parameters
    layers: int  # recurrent layers, each direction counted
    steps: int  # time steps per sequence
    batch_size: int
    planned_steps: int  # optimizer steps of the setup's full training
    epochs: int
    val_windows: int

    @classmethod
    def of(cls, setup: "Setup") -> "Workload":
        model = setup.model_factory()
        params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        layers = sum(m.num_layers * (2 if m.bidirectional else 1) for m in model.modules() if isinstance(m, nn.RNNBase))
        planned = math.ceil(len(setup.data.train) / setup.batch_size) * setup.epochs
        return cls(params, max(layers, 1), setup.data.steps, setup.batch_size, planned, setup.epochs, len(setup.data.val))

    def step_seconds(self, batch_size: int | None = None) -> float:
        """Estimated seconds of one training step on the reference machine."""
        batch = self.batch_size if batch_size is None else batch_size
        return STEP_OVERHEAD_S + self.steps * (LAYER_STEP_S * self.layers + MAC_S * batch * self.params)

    def training_seconds(self) -> float:
        """Estimated seconds of the setup's own full training (with its validation each epoch)."""
        validation = FORWARD_SHARE * MAC_S * self.params * self.steps * self.val_windows
        return self.planned_steps * self.step_seconds() + self.epochs * validation
