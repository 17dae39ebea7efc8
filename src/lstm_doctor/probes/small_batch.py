"""Fit a small batch: can the model memorise a handful of training windows?

Karpathy's "overfit one batch": a working model with far more parameters than
examples drives the loss on a few windows to nearly nothing. A fresh model is
trained on ``WINDOWS`` training windows twice, through the one training loop:
at the user's own optimizer, learning rate, batch size and clipping, and with
a sound recipe (Adam at ``SOUND_LR``, gradients clipped at 1, the whole
handful in every step, inputs and a regression target standardized by the
handful's own statistics; same model and loss). Both are scored, in eval
mode, on the windows they were fed after every pass. Standardizing makes the
sound recipe's failure mean a broken pipeline (T309), not unscaled data,
which D102 and D104 report.

The probe only measures; the T309 rule judges. The yardstick is the best
constant's loss on the handful: a model whose output ignores its input can
reach it but never go below it, while any model that uses its input goes
below it at once, even on a task too hard to memorise within the budget.

Evidence written: ``small_batch_size``, ``small_batch_steps``,
``small_batch_constant_loss``, ``small_batch_user_loss`` and
``small_batch_user_best`` and ``small_batch_user_peak`` (final, lowest and
highest loss at the user's settings), ``small_batch_sound_loss``,
``small_batch_sound_best`` and ``small_batch_sound_peak`` (the sound recipe),
``small_batch_sound_constant_loss`` (the constant's loss on the standardized handful,
the sound recipe's yardstick), ``small_batch_sound_lr``. A run that diverged has a NaN final loss; a run in which the
model raised fails the probe (the report notes it) and writes nothing.
Plot ``small_batch``: ``loss`` (the user's settings), ``sound_loss``, ``constant_loss``,
``sound_constant_loss``.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from lstm_doctor.budget import Workload
from lstm_doctor.data.windows import SequenceData, Windows, moments
from lstm_doctor.objective import Objective
from lstm_doctor.probes.baselines import constant_output
from lstm_doctor.probes.context import ProbeContext
from lstm_doctor.probes.signal import standardized
from lstm_doctor.training import Callback, TrainResult, TrainState, fit

WINDOWS = 16  # a handful: memorising them needs no generalization at all
# Adam at 1e-2 memorised 16 windows of sunspots, ItalyPowerDemand, GunPoint and CO2 (LSTM 16-64)
# within 200 steps; 3e-3 missed GunPoint (bench/RESULTS.md, "Training dynamics").
SOUND_LR = 1e-2
SOUND_CLIP = 1.0
SHARE = 0.1  # share of the budget's seconds for both fits
DONE = 0.01  # a run stops once its training loss is 1% of the constant's: memorised, nothing more to see


class Memorised(Callback):
    """Ends a run as soon as its training loss falls below ``level``."""

    def __init__(self, level: float) -> None:
        self.level = level

    def after_backward(self, state: TrainState) -> None:
        state.stop = state.stop or state.loss <= self.level


def _final_loss(result: TrainResult) -> float:
    """The loss on the handful when training ended; NaN when it broke down."""
    if result.stopped in ("diverged", "error") or not result.val:
        return math.nan
    return result.val[-1]["loss"]


def small_batch(ctx: ProbeContext) -> None:
    setup, ev = ctx.setup, ctx.evidence
    train = setup.data.train
    k = min(WINDOWS, len(train))
    # Evenly spaced windows: deterministic, and spread over the training part.
    handful = train.subset(torch.linspace(0, len(train) - 1, steps=k).round().long().unique())
    data = replace(setup.data, train=handful, val=handful)
    sound_data = _standardized(data)
    constants = {"user": _constant_loss(data, setup.objective), "sound": _constant_loss(sound_data, setup.objective)}
    batch = min(setup.batch_size, len(handful))
    steps = ctx.budget.affordable_steps(Workload.of(setup), ctx.budget.small_batch_steps, SHARE / 2, batch_size=batch)
    curves: dict[str, list[float]] = {}
    for name in ("user", "sound"):
        model = setup.new_model()
        params = list(model.parameters())
        if name == "sound":  # the whole handful in every step, on standardized data
            optimizer, clip, size, fed = torch.optim.Adam(params, lr=SOUND_LR), SOUND_CLIP, len(handful), sound_data
        else:
            optimizer, clip, size, fed = setup.optimizer_factory(params), setup.clip_norm, batch, data
        result = fit(model, setup.objective, optimizer, fed, epochs=math.ceil(steps / math.ceil(len(handful) / size)),
                     batch_size=size, clip_norm=clip, seed=setup.seed, max_steps=steps, deadline=ctx.deadline,
                     callbacks=[Memorised(DONE * constants[name])])
        result.raise_if_failed()  # a model that raised was not shown unable to fit (T309)
        curves[name] = [v["loss"] for v in result.val]
        finite = [v for v in curves[name] if math.isfinite(v)]
        ev[f"small_batch_{name}_loss"] = _final_loss(result)
        ev[f"small_batch_{name}_best"] = min(finite) if finite else math.nan
        ev[f"small_batch_{name}_peak"] = max(finite) if finite else math.nan
    ev.update(small_batch_size=len(handful), small_batch_steps=steps, small_batch_constant_loss=constants["user"],
              small_batch_sound_constant_loss=constants["sound"], small_batch_sound_lr=SOUND_LR)
    ctx.plots["small_batch"] = {"loss": curves["user"], "sound_loss": curves["sound"], "constant_loss": constants["user"],
                                "sound_constant_loss": constants["sound"]}


def _constant_loss(data: SequenceData, objective: Objective) -> float:
    """The best constant's loss on the handful (train and val are the handful)."""
    y, lengths = data.val.labels()
    return float(objective(constant_output(data, objective), y, lengths))


def _standardized(data: SequenceData) -> SequenceData:
    """The handful with its inputs (and a regression target) standardized by its own statistics: the sound
    recipe then tests whether the model can follow its input at all, whatever the data's scale (D102, D104)."""
    w = data.train
    x, y, lengths = w.batch(torch.arange(len(w)))
    windows = Windows(x, y, lengths=lengths)
    y_stats = moments(y.reshape(-1, y.shape[-1])) if data.task == "regression" else None
    scaled = standardized(windows, moments(torch.from_numpy(windows.input_rows())), y_stats)
    return replace(data, train=scaled, val=scaled)
