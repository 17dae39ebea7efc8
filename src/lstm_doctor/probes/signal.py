"""Is there anything to learn? Small models fitted on the real targets against the same
models fitted on targets shuffled across training samples.

A shuffled-label control (the permutation test of Ojala & Garriga, 2010, run with
a recurrent model): if the target can be predicted from the inputs, a model trained
on the real pairing scores better on validation than models trained on pairings
that were destroyed on purpose (a fresh permutation of the targets across training
windows for each fit). Few fits fit the budget, so the null distribution is
summarized by its mean and spread (:func:`below_null_p_value`). The fits use a *repaired* recipe, never the user's
possibly broken settings, so that a bad learning rate or raw-scale inputs cannot
pass for "no signal": inputs and target standardized on the training part, a small
recurrent model of the setup's own cell, Adam at 3e-3, through the one training
loop ``fit``.

Evidence written: ``signal_real_loss`` and ``signal_shuffled_loss`` (validation
loss of each fit), ``signal_real_mean``, ``signal_shuffled_mean``,
``signal_p_value`` (one-sided: the real fits score lower than a shuffled one would),
``signal_input_free_loss`` (the best constant's loss on the same validation
windows), ``signal_loss`` (mse | bce | ce), ``signal_fits``, ``signal_steps``,
``signal_windows``, ``signal_cell``. Plot: ``signal``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import stats

from lstm_doctor.config import ModelConfig
from lstm_doctor.data.windows import SequenceData, Windows, moments
from lstm_doctor.models import RecurrentModel
from lstm_doctor.objective import Objective
from lstm_doctor.probes.baselines import constant_output
from lstm_doctor.probes.context import ProbeContext
from lstm_doctor.training import fit, seed_everything

# The repaired recipe. Small and short on purpose: the question is whether the
# inputs say anything about the target, not how well a tuned model does.
HIDDEN = 16
LR = 3e-3
BATCH = 32
MAX_TRAIN = 1024  # training windows drawn for the fits
MAX_VAL = 512  # validation windows they are scored on
LOSS = {"regression": "mse", "binary": "bce", "multiclass": "ce"}
MIN_SHUFFLED = 3  # a spread needs a few shuffled fits; fewer leave the test undecided


def _sample(w: Windows, limit: int, rng: np.random.Generator) -> Windows:
    idx = np.arange(len(w)) if len(w) <= limit else np.sort(rng.choice(len(w), size=limit, replace=False))
    x, y, lengths = w.batch(torch.from_numpy(idx))
    return Windows(x.clone(), y.clone(), lengths=None if lengths is None else lengths.clone())


def standardized(w: Windows, x: tuple[torch.Tensor, torch.Tensor],
                 y: tuple[torch.Tensor, torch.Tensor] | None = None) -> Windows:
    """Materialized windows ``w`` with inputs standardized by ``x`` = (mean, std), non-finite inputs zeroed,
    and the targets by ``y`` when given (a regression target); windows with a non-finite target dropped."""
    inputs = torch.nan_to_num(((w.inputs.double() - x[0]) / x[1]).float(), nan=0.0, posinf=0.0, neginf=0.0)
    targets = ((w.targets.double() - y[0]) / y[1]).float() if y is not None else w.targets
    ok = torch.isfinite(targets.reshape(len(targets), -1)).all(dim=1) if y is not None else torch.ones(len(targets), dtype=torch.bool)
    return Windows(inputs[ok], targets[ok], lengths=None if w.lengths is None else w.lengths[ok])


def repaired_data(data: SequenceData, seed: int) -> SequenceData:
    """A subsample of the windows, inputs (and a regression target) standardized with
    training statistics; windows with a non-finite target are dropped."""
    rng = np.random.default_rng(seed)
    train, val = _sample(data.train, MAX_TRAIN, rng), _sample(data.val, MAX_VAL, rng)
    x = moments(torch.from_numpy(train.input_rows()))
    y = moments(train.targets.reshape(-1, train.targets.shape[-1])) if data.task == "regression" else None
    return SequenceData(standardized(train, x, y), standardized(val, x, y), data.task, list(data.feature_names),
                        list(data.target_names), classes=data.classes, per_step=data.per_step, horizon=data.horizon,
                        split=data.split)


def below_null_p_value(real: list[float], shuffled: list[float]) -> float:
    """One-sided p-value that the real fits score lower than fits on a random pairing.

    The real pairing is one draw from the null (if there is no signal), however many
    times it is fitted: its fits differ only by initialization, so a two-sample test
    (Welch, Mann-Whitney) that treats them as independent draws would find a
    "difference" between one pairing and the others far too often. Instead the mean
    of the real fits is compared with the distribution of the shuffled fits (each
    on its own permutation) by a t prediction interval: t = (mean_shuffled -
    mean_real) / (sd_shuffled * sqrt(1 + 1/n)), n - 1 degrees of freedom. Under the
    null the real mean varies no more than one shuffled fit, so the test holds its
    level.
    """
    n, centre, spread = len(shuffled), float(np.mean(shuffled)), float(np.std(shuffled, ddof=1))
    gap = centre - float(np.mean(real))
    if spread == 0:
        return 0.0 if gap > 0 else 1.0
    return float(stats.t.sf(gap / (spread * math.sqrt(1 + 1 / n)), df=n - 1))


def _tiled(w: Windows, steps: int) -> Windows:
    """The training windows repeated so that one epoch holds every step of the fit:
    ``fit`` then validates once, at the end, instead of after every short epoch."""
    reps = max(1, math.ceil(steps * BATCH / max(len(w), 1)))
    return w.subset(torch.arange(len(w)).repeat(reps))


def _cell(ctx: ProbeContext) -> str:
    if ctx.setup.config is not None:
        return ctx.setup.config.model.cell
    cells = [c for c in ctx.evidence.get("cells") or [] if c in ("lstm", "gru", "rnn")]
    return cells[0] if cells else "lstm"


def signal(ctx: ProbeContext) -> None:
    setup, ev, budget = ctx.setup, ctx.evidence, ctx.budget
    data = repaired_data(setup.data, setup.seed)
    if len(data.train) < 4 or len(data.val) < 2:
        return
    objective = Objective(LOSS[data.task], data.task, per_step=data.per_step)
    cell = _cell(ctx)
    config = ModelConfig(cell=cell, hidden=HIDDEN, readout="true-end" if data.train.lengths is not None else "last")
    rng = np.random.default_rng(setup.seed + 1)
    scores: dict[str, list[float]] = {"real": [], "shuffled": []}
    for i in range(budget.signal_fits):
        # Each shuffled fit gets its own permutation: together they sample the null.
        perm = torch.from_numpy(rng.permutation(len(data.train)))
        shuffled = Windows(data.train.inputs, data.train.targets[perm], lengths=data.train.lengths)
        for name, train in (("real", data.train), ("shuffled", shuffled)):
            if ctx.time_left() <= 0:
                break
            seed = setup.seed + i  # the same start and batch order for both arms
            seed_everything(seed)
            model = RecurrentModel(data.n_features, data.n_outputs, config, data.per_step).to(setup.device)
            arm = SequenceData(**{**data.__dict__, "train": _tiled(train, budget.signal_steps)})
            result = fit(model, objective, torch.optim.Adam(model.parameters(), lr=LR), arm, epochs=1, batch_size=BATCH,
                         seed=seed, max_steps=budget.signal_steps, deadline=ctx.deadline)
            loss = result.val[-1]["loss"] if result.val else float("nan")
            if result.stopped == "completed" and math.isfinite(loss):
                scores[name].append(loss)
    real, fake = scores["real"], scores["shuffled"]
    y_val, lengths = data.val.labels()
    free = float(objective(constant_output(data, objective), y_val, lengths))
    ev.update(signal_real_loss=real, signal_shuffled_loss=fake, signal_input_free_loss=free, signal_loss=objective.name,
              signal_fits=budget.signal_fits, signal_steps=budget.signal_steps, signal_windows=len(data.train), signal_cell=cell)
    if len(real) < 2 or len(fake) < MIN_SHUFFLED:
        return
    p = below_null_p_value(real, fake)
    ev.update(signal_p_value=p, signal_real_mean=float(np.mean(real)), signal_shuffled_mean=float(np.mean(fake)))
    ctx.plots["signal"] = {"real": real, "shuffled": fake, "p_value": p, "input_free": free, "loss": objective.name,
                           "linear_skill": ev.get("linear_skill")}
