"""Input-free, naive and linear baselines, fitted on training windows and scored on validation.

They are the yardsticks of every later judgment: a model whose validation loss
stays at the input-free baseline's is not learning; a model that a linear model
on the same window beats has not learned what the data offers.

- ``mean`` (regression) or ``majority`` (classification): the best constant output.
- ``persistence``: the last observed target, ``horizon`` steps on (forecasting).
- ``seasonal_naive``: the target one season before, when the season fits in the window.
- ``linear``: ridge regression or logistic regression on the flattened window.

The naive forecasts are only offered when the model sees the past target (the
target is one of its input features, and ``horizon >= 1``): a yardstick that uses
what the model cannot see would call a sound model "not learning".

Evidence written: ``baseline_loss`` ({name: validation loss in the setup's own
loss} for the input-free and naive baselines, not the linear model), ``baselines``
({name: {"loss", metric: value}}, all of them), ``input_free_loss``,
``linear_baseline_loss``, ``linear_skill`` and ``linear_p_value`` (how clearly the
linear model beats the input-free baseline; see :class:`LinearBaseline`),
``linear_skill_measure`` (mse | balanced_accuracy),
``seasonal_period`` (the period used, and where it came from: ``seasonal_period_source``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from lstm_doctor.data.windows import SequenceData, Windows
from lstm_doctor.inspect import autocorrelation
from lstm_doctor.objective import Objective, metrics_of
from lstm_doctor.probes.context import ProbeContext

# The linear model's budget: at most this many training windows and inputs per
# window, so that it fits in well under a second on 5,000 windows x 48 steps x 4 features.
LINEAR_MAX_ROWS = 5000
LINEAR_MAX_INPUTS = 256
# Validation windows scored per chunk: each chunk passes through ~4 float64 copies (15 MB at
# 10,000 windows of 48 x 4); 2,000 keeps the linear baseline's peak at 38 MB instead of 65 (bench/memory.py).
_CHUNK = 2_000


def _score(objective: Objective, data: SequenceData, out: torch.Tensor) -> dict[str, float]:
    y, lengths = data.val.labels()
    scores = {"loss": float(objective(out, y, lengths))}
    if not objective.custom:
        scores.update(metrics_of(objective, out, y, lengths, data.target_scaler, data.n_outputs))
    return {k: v for k, v in scores.items() if math.isfinite(v)} or scores


def class_prior(data: SequenceData) -> torch.Tensor:
    """Training class frequencies, smoothed so that no class has probability 0."""
    y, _ = data.train.labels()
    counts = torch.bincount(y.reshape(-1).long(), minlength=max(data.n_outputs, 2)).double()
    return (counts + 0.5) / (counts.sum() + 0.5 * len(counts))


def class_output(objective: Objective, task: str, prob: torch.Tensor) -> torch.Tensor:
    """Class probabilities ``(..., classes)`` as the setup's model outputs them."""
    prob = prob.double().clamp(1e-7, 1 - 1e-7)
    if task == "binary":
        p1 = prob[..., 1:2]
        # A sigmoid head outputs probabilities (threshold 0.5); otherwise logits.
        return (p1 if objective.threshold == 0.5 else torch.log(p1 / (1 - p1))).float()
    return prob.log().float()


def constant_output(data: SequenceData, objective: Objective) -> torch.Tensor:
    """The best input-free output for the loss: the training mean, or the class priors as logits."""
    y, _ = data.train.labels()
    n_val = len(data.val)
    steps = (data.val.steps,) if data.per_step else ()
    if data.task == "regression":
        flat = y.reshape(-1, y.shape[-1]).double()
        centre = flat.nanmedian(dim=0).values if objective.name == "mae" else flat.nanmean(dim=0)
        return centre.float().expand(n_val, *steps, -1).clone()
    return class_output(objective, data.task, class_prior(data)).expand(n_val, *steps, -1).clone()


def sees_past_target(data: SequenceData) -> bool:
    """True when the model is fed the target's own past (it is an input feature) and forecasts ahead."""
    return data.train.starts is not None and not data.per_step and data.horizon >= 1 and set(data.target_names) <= set(data.feature_names)


def persistence_output(data: SequenceData) -> torch.Tensor | None:
    """Each validation window's last observed target, as the forecast ``horizon`` steps on."""
    w = data.val
    if data.task != "regression" or not sees_past_target(data):
        return None
    return w.targets[w.starts + (w.window - 1)].clone()


def training_period(data: SequenceData) -> int | None:
    """The dominant period of the training target series, as the data inspection finds it
    (:func:`lstm_doctor.inspect.autocorrelation.series_acf`), for setups inspected without it."""
    parts = [s[:n] for s, n in zip(data.series or [], data.series_train_rows or [])]
    profile = autocorrelation.series_acf(parts, data.train.window) if parts else None
    return None if profile is None else profile["period"]


def seasonal_naive_output(data: SequenceData, period: int | None) -> torch.Tensor | None:
    """The target one season (``period``) before each forecast, or None when that step is not in the window."""
    w = data.val
    if data.task != "regression" or not sees_past_target(data) or not period or period < 2:
        return None
    lag = period * math.ceil(data.horizon / period)  # whole seasons back from the forecast step
    if lag > w.window - 1 + data.horizon:  # not among the steps the model is fed
        return None
    return w.targets[w.starts + (w.window - 1 + data.horizon - lag)].clone()


def _window_inputs(w: Windows, idx: torch.Tensor) -> np.ndarray:
    """Windows ``idx`` as flat rows; long windows are averaged over time segments
    (the last step kept on its own) so that a row has at most ``LINEAR_MAX_INPUTS`` values."""
    x, _, _ = w.batch(idx)
    x = x.double().numpy()
    n, steps, feats = x.shape
    if steps * feats > LINEAR_MAX_INPUTS:
        segments = max(1, LINEAR_MAX_INPUTS // feats - 1)
        pooled = [part.mean(axis=1) for part in np.array_split(x[:, :-1], min(segments, steps - 1), axis=1)]
        x = np.stack(pooled + [x[:, -1]], axis=1)
    return x.reshape(n, -1)


def _design(data: SequenceData, w: Windows, idx: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear-model rows, targets and a validity mask for windows ``idx``.

    Per-step targets are modelled step by step (the input at a step to its target);
    otherwise the whole window predicts the target.
    """
    if data.per_step:
        x, y, lengths = w.batch(idx)
        real = torch.ones(x.shape[:2], dtype=torch.bool) if lengths is None else torch.arange(x.shape[1])[None, :] < lengths[:, None]
        rows, targets = x.reshape(-1, x.shape[-1]).double().numpy(), y.reshape(x.shape[0] * x.shape[1], -1).double().numpy()
        keep = real.reshape(-1).numpy()
    else:
        _, y, _ = w.batch(idx)
        rows, targets = _window_inputs(w, idx), y.reshape(len(idx), -1).double().numpy()
        keep = np.ones(len(idx), dtype=bool)
    keep &= np.isfinite(targets).all(axis=1)
    return np.nan_to_num(rows, nan=0.0, posinf=0.0, neginf=0.0), targets, keep


@dataclass
class LinearBaseline:
    """A linear model's validation outputs and how clearly it beats the input-free baseline.

    ``skill``: for regression 1 - MSE / input-free MSE (per standardized target);
    for classification the chance-corrected balanced accuracy (0 at chance, 1
    perfect). ``p_value``: one-sided, that the linear model beats the input-free
    baseline: a paired t-test on per-sample squared errors (regression, the
    Diebold-Mariano comparison without its autocorrelation correction), or an exact
    McNemar test on which samples each gets right (classification; Dietterich 1998).
    """

    out: torch.Tensor
    skill: float
    p_value: float
    measure: str


def _regression_comparison(pred: np.ndarray, centre: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    lin, free = (pred - true) ** 2, (centre - true) ** 2
    spread = free.mean(axis=0)
    spread = np.where(spread > 0, spread, 1.0)
    lin, free = (lin / spread).mean(axis=1), (free / spread).mean(axis=1)
    skill = float(1 - lin.mean() / free.mean()) if free.mean() > 0 else 0.0
    diff = free - lin
    p = float(stats.ttest_1samp(diff, 0.0, alternative="greater").pvalue) if diff.std() > 0 else (0.0 if diff.mean() > 0 else 1.0)
    return skill, p


def _class_comparison(pred: np.ndarray, majority: int, true: np.ndarray) -> tuple[float, float]:
    present = np.unique(true)
    recall = np.mean([np.mean(pred[true == c] == c) for c in present])
    chance = 1.0 / len(present)
    skill = float((recall - chance) / (1 - chance)) if len(present) > 1 else 0.0
    lin_right, free_right = pred == true, true == majority
    wins, losses = int(np.sum(lin_right & ~free_right)), int(np.sum(~lin_right & free_right))
    p = float(stats.binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue) if wins + losses else 1.0
    return skill, p


def linear_baseline(data: SequenceData, objective: Objective, seed: int = 0) -> LinearBaseline | None:
    """A linear model on each training window, its validation outputs in the setup's
    output format, and how clearly it beats the input-free baseline.

    BLAS runs on one thread: these matrices are small, and two threads fighting
    over two busy cores made the ridge fit ten times slower in our measurements.
    """
    with threadpool_limits(1):
        return _linear_baseline(data, objective, seed)


def _linear_baseline(data: SequenceData, objective: Objective, seed: int) -> LinearBaseline | None:
    rng = np.random.default_rng(seed)
    n = len(data.train)
    cap = max(1, LINEAR_MAX_ROWS // data.steps) if data.per_step else LINEAR_MAX_ROWS  # per-step: a row per step
    idx = torch.from_numpy(np.sort(rng.choice(n, size=min(n, cap), replace=False)))
    rows, targets, keep = _design(data, data.train, idx)
    if keep.sum() < 4:
        return None
    rows, targets = rows[keep], targets[keep]
    scaler = StandardScaler().fit(rows)
    regression = data.task == "regression"
    if regression:
        model = RidgeCV(alphas=np.logspace(-3, 3, 7)).fit(scaler.transform(rows), targets)
    else:
        labels = targets[:, 0].astype(np.int64)
        if len(np.unique(labels)) < 2:
            return None
        model = LogisticRegression(max_iter=200).fit(scaler.transform(rows), labels)
        prior = class_prior(data).numpy()
    outs, preds, trues = [], [], []
    val = data.val
    for start in range(0, len(val), _CHUNK):
        chunk = torch.arange(start, min(start + _CHUNK, len(val)))
        vrows, vtargets, vkeep = _design(data, val, chunk)
        z = scaler.transform(vrows)
        if regression:
            pred = model.predict(z).reshape(len(z), -1)
        else:
            pred = np.full((len(z), len(prior)), 1e-7)
            pred[:, model.classes_] = model.predict_proba(z)
        outs.append(torch.from_numpy(pred))
        preds.append(pred[vkeep]), trues.append(vtargets[vkeep])
    shape = (len(val), val.steps, -1) if data.per_step else (len(val), -1)
    pred, true = np.concatenate(preds), np.concatenate(trues)
    if not len(true):
        return None
    if regression:
        skill, p = _regression_comparison(pred, targets.mean(axis=0), true)
        return LinearBaseline(torch.cat(outs).float().reshape(shape), skill, p, "mse")
    skill, p = _class_comparison(pred.argmax(axis=1), int(prior.argmax()), true[:, 0].astype(np.int64))
    return LinearBaseline(class_output(objective, data.task, torch.cat(outs).reshape(shape)), skill, p, "balanced_accuracy")


def baselines(ctx: ProbeContext) -> None:
    setup, ev = ctx.setup, ctx.evidence
    data, objective = setup.data, setup.objective
    free_name = "mean" if data.task == "regression" else "majority"
    found = {free_name: _score(objective, data, constant_output(data, objective))}
    persistence = persistence_output(data)
    if persistence is not None:
        found["persistence"] = _score(objective, data, persistence)
    if data.task == "regression" and sees_past_target(data):
        if "dominant_period" in ev:  # measured by the data inspection (None: no significant period)
            period, source = ev["dominant_period"], "data inspection"
        else:
            period, source = training_period(data), "training target autocorrelation"
        ev["seasonal_period"] = period
        ev["seasonal_period_source"] = source if period else None
        seasonal = seasonal_naive_output(data, period)
        if seasonal is not None:
            found["seasonal_naive"] = _score(objective, data, seasonal)
    ev["baseline_loss"] = {k: v["loss"] for k, v in found.items()}
    ev["input_free_loss"] = found[free_name]["loss"]
    linear = linear_baseline(data, objective, seed=setup.seed)
    if linear is not None:
        found["linear"] = _score(objective, data, linear.out)
        ev.update(linear_baseline_loss=found["linear"]["loss"], linear_skill=linear.skill, linear_p_value=linear.p_value,
                  linear_skill_measure=linear.measure)
    ev["baselines"] = found
    ctx.plots["baselines"] = found
