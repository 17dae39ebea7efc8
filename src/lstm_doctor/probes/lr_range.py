"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates"): which step sizes make the loss fall.

A fresh model is trained with the setup's own optimizer, loss, batch size and
clipping while the learning rate grows exponentially from ``LR_START`` to
``LR_END``, one value per step, through the one training loop. The sweep stops
when the recent level of the loss (the median of the last ~10% of the sweep)
exceeds ``DIVERGE_FACTOR`` times its best, or the loss becomes non-finite:
past that point every larger rate only diverges.

Smoothing: a centred rolling median over ~10% of the sweep, so that one noisy
batch moves nothing and, unlike the usual exponential average, the curve does
not lag (a lag shifts the valley towards larger rates).

Suggestion: the valley. The steepest point of the curve, torch-lr-finder's and
Lightning's default, follows the noise of a mini-batch curve
(davidtvs/pytorch-lr-finder#106, Lightning-AI/pytorch-lightning#14248,
ourownstory/neural_prophet#892); the rate at the minimum is already at the
edge of divergence. We take the descent into the minimum, from the last point
still above 10% of the total drop (earlier dips are noise) to where 90% of it
is reached, and suggest its geometric middle, like fastai's ``valley`` (the
middle of the longest descent). The safe range runs from the descent's start
(below it, updates barely move the loss) to the minimum (above it, the loss
rises). A drop smaller than 5% of the starting loss, or than 4 standard errors
of the smoothed curve, is no valley: nothing is suggested. Several seeds are
combined by their median.

Data fed far off unit scale (a raw input or regression target, D102/D104) skews
the sweep: the loss falls at whatever rates move the gates out of saturation or
the head towards the raw target, which says nothing about the rate the data
needs once scaled. Then a second sweep runs on the data standardized with the
training statistics, so that a rate wrong for the fixed data is still found.

Evidence written: ``user_lr``, ``lr_suggested``, ``lr_safe_range`` ([lo, hi]),
``lr_range_start_loss`` and ``lr_range_min_loss`` (smoothed training loss at
the start of the sweep and at its minimum), ``lr_range_drop`` (the fall from
start to minimum as a fraction of the start), ``lr_range_stop_lr`` (the rate at
which the sweep stopped for divergence, or None), ``lr_range_steps``; with
off-scale data also ``scaled_lr_suggested``, ``scaled_lr_safe_range``,
``scaled_lr_range_drop`` and ``scaled_lr_range_stop_lr`` (the sweep on the
standardized data).
Plot ``lr_range``: ``lr``, ``loss``, ``smoothed``, ``suggested_lr``, ``safe_range``, ``user_lr``;
``lr_range_standardized`` likewise for the sweep on the standardized data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from lstm_doctor.budget import Workload
from lstm_doctor.curves import rolling_median
from lstm_doctor.inspect.value_stats import UNIT_SCALE_LIMIT
from lstm_doctor.probes.context import ProbeContext
from lstm_doctor.setups import Setup
from lstm_doctor.training import Callback, TrainState, fit

LR_START, LR_END = 1e-7, 10.0
DIVERGE_FACTOR = 4.0  # fastai's lr_find stops at 4x the best smoothed loss
MIN_DROP = 0.05  # a fall of under 5% of the starting loss is no valley: nothing to suggest
WARMUP = 5  # steps before a divergence stop may trigger
SHARE = 0.1  # share of the budget's seconds for the sweeps
NOISE_MARGIN = 4.0  # a valley must be deeper than 4 standard errors of the smoothed curve


def smoothing_half_width(steps: int) -> int:
    """Half the width of the smoothing window: ~10% of the sweep in all."""
    return max(2, steps // 20)


def smooth(losses: list[float], steps: int) -> np.ndarray:
    """Centred rolling median over ~10% of a ``steps`` sweep: robust to single-batch spikes
    and, unlike an exponential average, without lag (a lag shifts the valley to larger rates)."""
    return rolling_median(losses, smoothing_half_width(steps))


@dataclass
class Sweep(Callback):
    """Sets the rate of each step before the optimizer uses it and stops the run on divergence.

    Online, only past losses are known: the divergence test uses the median of
    the last few (one noisy batch must not end the sweep).
    """

    lrs: np.ndarray
    losses: list[float] = field(default_factory=list)
    _best: float = math.inf

    def after_backward(self, state: TrainState) -> None:
        lr = float(self.lrs[state.step])
        for group in state.optimizer.param_groups:
            group["lr"] = lr
        self.losses.append(state.loss)
        level = float(np.median(self.losses[-(2 * smoothing_half_width(len(self.lrs)) + 1) :]))
        self._best = min(self._best, level)
        if len(self.losses) > WARMUP and level > DIVERGE_FACTOR * self._best:
            state.stop = True


@dataclass
class Valley:
    """What one sweep found."""

    suggested: float | None = None
    safe: tuple[float, float] | None = None
    start_loss: float = math.nan
    min_loss: float = math.nan
    stop_lr: float | None = None


def find_valley(lrs: np.ndarray, losses: list[float], steps: int) -> Valley:
    """The suggested rate and safe range of one sweep (None without a real fall)."""
    if len(losses) <= WARMUP:
        return Valley()
    raw = np.asarray(losses, dtype=float)
    s = smooth(losses, steps)
    start = float(np.median(s[: max(3, len(s) // 10)]))  # the plateau where the rates are too small to matter
    i_min = int(np.nanargmin(s))
    found = Valley(start_loss=start, min_loss=float(s[i_min]))
    drop = start - found.min_loss
    # Mini-batch noise: the robust spread of the raw losses around the smoothed curve, shrunk
    # by the ~sqrt(window) points each smoothed value summarizes (the median's efficiency is 1/1.25).
    window = min(len(s), 2 * smoothing_half_width(steps) + 1)
    noise = 1.4826 * float(np.median(np.abs(raw[: i_min + 1] - s[: i_min + 1]))) * 1.25 / math.sqrt(window)
    if not math.isfinite(drop) or drop < max(MIN_DROP * abs(start), NOISE_MARGIN * noise) or i_min == 0:
        return found
    # The descent into the minimum begins after the last point still above 10% of the drop
    # (earlier dips are noise), and reaches 90% of the drop at i_hi.
    above = np.flatnonzero(s[:i_min] > start - 0.1 * drop)
    i_lo = int(above[-1]) + 1 if len(above) else 0
    i_hi = i_lo + int(np.argmax(s[i_lo : i_min + 1] <= start - 0.9 * drop))
    found.suggested = float(math.sqrt(lrs[i_lo] * lrs[i_hi]))
    found.safe = (float(lrs[i_lo]), float(lrs[i_min]))
    return found


def sweep(setup: Setup, steps: int, seed: int, deadline: float | None = None) -> tuple[np.ndarray, list[float], Valley]:
    """One range test on a fresh model; returns the rates tried, the losses and the valley."""
    lrs = np.geomspace(LR_START, LR_END, steps)
    # Validation does not matter here: a one-window stand-in keeps fit's epoch-end checks cheap.
    data = replace(setup.data, val=setup.data.train.subset(torch.arange(1)))
    model = setup.new_model(seed)
    optimizer = setup.optimizer_factory(model.parameters())
    tracker = Sweep(lrs)
    per_epoch = math.ceil(len(data.train) / setup.batch_size)
    result = fit(model, setup.objective, optimizer, data, epochs=math.ceil(steps / per_epoch), batch_size=setup.batch_size,
                 clip_norm=setup.clip_norm, seed=seed, max_steps=steps, callbacks=[tracker], deadline=deadline)
    result.raise_if_failed()  # a sweep cut by an exception ends at a random rate: no valley to read
    losses = tracker.losses
    valley = find_valley(lrs[: len(losses)], losses, steps)
    if result.stopped in ("diverged", "callback") and losses:
        valley.stop_lr = float(lrs[len(losses) - 1])
    return lrs[: len(losses)], losses, valley


def user_lr(setup: Setup) -> float:
    """The learning rate the setup's optimizer is built with."""
    probe = torch.nn.Linear(1, 1)
    return float(setup.optimizer_factory(probe.parameters()).param_groups[0]["lr"])


def geomedian(values: list[float]) -> float:
    """The median of rates on a log scale."""
    return float(np.exp(np.median(np.log(values))))


def combine(valleys: list[Valley]) -> Valley:
    """The seeds' sweeps as one: medians (geometric for rates); a rate only when most seeds found one."""
    found = [v for v in valleys if v.suggested is not None]
    stops = [v.stop_lr for v in valleys if v.stop_lr is not None]
    combined = Valley(start_loss=float(np.median([v.start_loss for v in valleys])),
                      min_loss=float(np.median([v.min_loss for v in valleys])),
                      stop_lr=geomedian(stops) if 2 * len(stops) > len(valleys) else None)
    if 2 * len(found) > len(valleys):
        combined.suggested = geomedian([v.suggested for v in found])
        combined.safe = (geomedian([v.safe[0] for v in found]), geomedian([v.safe[1] for v in found]))
    return combined


def _off_scale(ctx: ProbeContext) -> bool:
    """The data reaches the model far off unit scale (inputs, or a regression target)."""
    scales = [*(ctx.evidence.get("feature_scale") or {}).values()]
    if ctx.setup.data.task == "regression":
        scales += (ctx.evidence.get("target_scale") or {}).values()
    return any(s > UNIT_SCALE_LIMIT for s in scales)


def _drop(v: Valley) -> float | None:
    return (v.start_loss - v.min_loss) / abs(v.start_loss) if v.start_loss else None


def lr_range(ctx: ProbeContext) -> None:
    setup, ev = ctx.setup, ctx.evidence
    off_scale = _off_scale(ctx)
    share = SHARE / ctx.budget.seeds / (2 if off_scale else 1)
    steps = ctx.budget.affordable_steps(Workload.of(setup), ctx.budget.lr_range_steps, share)
    runs = [sweep(setup, steps, setup.seed + k, ctx.deadline) for k in range(ctx.budget.seeds)]
    found = combine([v for _, _, v in runs])
    lr = user_lr(setup)
    safe = list(found.safe) if found.safe else None
    ev.update(
        user_lr=lr,
        lr_suggested=found.suggested,
        lr_safe_range=safe,
        lr_range_start_loss=found.start_loss,
        lr_range_min_loss=found.min_loss,
        lr_range_drop=_drop(found),
        lr_range_stop_lr=found.stop_lr,
        lr_range_steps=steps,
    )
    ctx.plots["lr_range"] = _plot(runs[0], steps, found, lr)
    if off_scale:
        scaled = replace(setup, data=setup.data.standardized())
        runs = [sweep(scaled, steps, setup.seed + k, ctx.deadline) for k in range(ctx.budget.seeds)]
        fixed = combine([v for _, _, v in runs])
        ev.update(scaled_lr_suggested=fixed.suggested, scaled_lr_safe_range=list(fixed.safe) if fixed.safe else None,
                  scaled_lr_range_drop=_drop(fixed), scaled_lr_range_stop_lr=fixed.stop_lr)
        ctx.plots["lr_range_standardized"] = _plot(runs[0], steps, fixed, lr)


def _plot(run: tuple[np.ndarray, list[float], Valley], steps: int, found: Valley, lr: float) -> dict:
    """One sweep's curve with the seeds' combined suggestion and safe range."""
    lrs, losses, _ = run
    return {"lr": lrs.tolist(), "loss": losses, "smoothed": smooth(losses, steps).tolist(),
            "suggested_lr": found.suggested, "safe_range": list(found.safe) if found.safe else None, "user_lr": lr}
