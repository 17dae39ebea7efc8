"""Input-free and naive baselines, fitted on training windows and scored on validation.

They are the yardsticks of every later judgment: a model whose validation loss
stays at the input-free baseline's is not learning.

Evidence written: ``baseline_loss`` ({name: validation loss in the setup's own
loss}), ``baselines`` ({name: {metric: value}}).
"""

from __future__ import annotations

import math

import torch

from lstm_doctor.data.windows import SequenceData
from lstm_doctor.objective import Objective, metrics_of
from lstm_doctor.probes.context import ProbeContext


def _score(objective: Objective, data: SequenceData, out: torch.Tensor) -> dict[str, float]:
    _, y, lengths = data.val.all()
    scores = {"loss": float(objective(out, y, lengths))}
    if not objective.custom:
        scores.update(metrics_of(objective, out, y, lengths, data.target_scaler, data.n_outputs))
    return {k: v for k, v in scores.items() if math.isfinite(v)} or scores


def constant_output(data: SequenceData, objective: Objective) -> torch.Tensor:
    """The best input-free output for the loss: the training mean, or the class priors as logits."""
    _, y, _ = data.train.all()
    n_val = len(data.val)
    steps = (data.val.steps,) if data.per_step else ()
    if data.task == "regression":
        flat = y.reshape(-1, y.shape[-1]).double()
        centre = flat.nanmedian(dim=0).values if objective.name == "mae" else flat.nanmean(dim=0)
        return centre.float().expand(n_val, *steps, -1).clone()
    counts = torch.bincount(y.reshape(-1).long(), minlength=max(data.n_outputs, 2)).double()
    prior = (counts + 0.5) / (counts.sum() + 0.5 * len(counts))
    if data.task == "binary":
        logit = torch.log(prior[1] / prior[0]).float()
        if objective.threshold == 0.5:  # a sigmoid head: outputs are probabilities
            logit = prior[1].float()
        return logit.expand(n_val, *steps, 1).clone()
    return prior.log().float().expand(n_val, *steps, -1).clone()


def persistence_output(data: SequenceData) -> torch.Tensor | None:
    """Each validation window's last observed target, as the forecast ``horizon`` steps on."""
    w = data.val
    if data.task != "regression" or w.starts is None or data.per_step:
        return None
    return w.targets[w.starts + (w.window - 1)].clone()


def baselines(ctx: ProbeContext) -> None:
    setup = ctx.setup
    data, objective = setup.data, setup.objective
    found = {"mean" if data.task == "regression" else "majority": _score(objective, data, constant_output(data, objective))}
    persistence = persistence_output(data)
    if persistence is not None:
        found["persistence"] = _score(objective, data, persistence)
    ctx.evidence["baselines"] = found
    ctx.evidence["baseline_loss"] = {k: v["loss"] for k, v in found.items()}
    ctx.plots["baselines"] = found
