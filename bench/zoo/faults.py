"""Fault injectors: pure functions from a healthy case to a broken one.

Each takes ``(case, level, rng)`` and returns a new :class:`Case`; the input case
and its arrays are never modified. ``level`` is the fault's strength (a subtle
and an obvious value per fault, chosen in ``scenarios.py``); ``rng`` is seeded
from the scenario so that a run repeats exactly.

Where a fault concerns the inputs or the target alone, the injector first gives
the target a column of its own and pre-scales with training statistics, so the
other side stays as a healthy pipeline would feed it.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from bench.zoo.case import Case
from bench.zoo.datasets import PERIOD

Injector = Callable[[Case, Any, np.random.Generator], Case]


class Inert(Exception):
    """The fault cannot be injected into this dataset: the broken case would equal the healthy one
    (a min-max scaler fitted on all rows is the training rows' own when they hold every extreme).
    Such a case has no fault to find; the runner records it apart and leaves it out of the scores."""


# ------------------------------------------------------------------ shared steps


def _stats(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
    return mean, np.where(std > 0, std, 1.0)


def _real_steps(X: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    if lengths is None:
        return X.reshape(-1, X.shape[-1])
    return X[np.arange(X.shape[1])[None, :] < lengths[:, None]]


def own_target(case: Case) -> Case:
    """A table whose target sits in a column of its own (a copy of the original),
    so inputs and target can be broken separately."""
    if not case.is_table or case.data["target"] not in case.feature_columns():
        return case
    frame = case.frame()
    name = f"{case.data['target']}_target"
    frame[name] = frame[case.data["target"]]
    return case.with_("target in its own column", source=frame, data={"target": name})


def prescaled(case: Case) -> Case:
    """Inputs (and a regression target) standardized with training statistics by
    the case itself, and the setup's own scaling switched off."""
    if case.is_table:
        case = own_target(case)
        frame = case.frame()
        cols = case.feature_columns() + [case.data["target"]]
        mean, std = _stats(frame[cols].to_numpy(dtype=float)[: case.train_rows()])
        frame[cols] = (frame[cols].to_numpy(dtype=float) - mean) / std
        return case.with_("standardized by hand", source=frame, data={"scale": "none"})
    arrays = case.arrays()
    mean, std = _stats(_real_steps(arrays["X"], arrays.get("lengths")))
    for key in ("X", "X_val"):
        arrays[key] = ((arrays[key] - mean) / std).astype(np.float32)
    return case.with_("standardized by hand", source=arrays, data={"scale": "none"})


def _map_inputs(case: Case, fn: Callable[[np.ndarray], np.ndarray], change: str) -> Case:
    """Apply ``fn`` to every input value (after pre-scaling), training and validation."""
    case = prescaled(case)
    if case.is_table:
        frame = case.frame()
        cols = case.feature_columns()
        frame[cols] = fn(frame[cols].to_numpy(dtype=float))
        return case.with_(change, source=frame)
    arrays = case.arrays()
    for key in ("X", "X_val"):
        arrays[key] = fn(arrays[key])
    return case.with_(change, source=arrays)


def _same_steps(case: Case, before: int) -> Case:
    """More epochs for fewer training samples: the setup keeps the number of
    optimizer steps it had with ``before`` samples, so a smaller dataset does not
    also become a too-few-steps fault (T311/T312)."""
    batch, epochs = int(case.training["batch_size"]), int(case.training["epochs"])
    steps = -(-before // batch) * epochs
    now = -(-len(case.source["y"]) // batch)
    return case.with_("epochs for the same steps", training={"epochs": -(-steps // now)})


def _per_sample(case: Case, fn: Callable[[dict[str, np.ndarray], str], None], change: str) -> Case:
    """Apply ``fn(arrays, suffix)`` to the training ("") and validation ("_val") parts."""
    arrays = case.arrays()
    for suffix in ("", "_val"):
        fn(arrays, suffix)
    return case.with_(change, source=arrays)


# ------------------------------------------------------------------ data faults (D1xx)


def nan_values(case: Case, fraction: float, rng: np.random.Generator) -> Case:
    """D101: a share of input values replaced by NaN (a failed join, a sensor gap)."""
    def holes(x: np.ndarray) -> np.ndarray:
        x = np.array(x, dtype=np.float32 if x.ndim == 3 else float)
        mask = rng.random(x.shape) < fraction
        mask.flat[rng.integers(mask.size)] = True  # at least one
        x[mask] = np.nan
        return x
    return _map_inputs(case, holes, f"{fraction:.1%} of inputs NaN")


def unscaled_inputs(case: Case, level: tuple[float, float], rng: np.random.Generator) -> Case:
    """D102: inputs fed in raw units: ``x * mult + offset`` instead of unit scale."""
    mult, offset = level
    case = _map_inputs(case, lambda x: (x * mult + offset).astype(x.dtype), f"inputs x{mult:g} + {offset:g}")
    if case.is_table:  # the target stays on unit scale
        case = case.with_("target standardized", data={"scale_target": "standard"})
    return case


def scale_disparity(case: Case, ratio: float, rng: np.random.Generator) -> Case:
    """D103: features on scales ``ratio`` apart (every other feature shrunk), none of
    them large: the largest stays at 5x unit scale."""
    def spread(x: np.ndarray) -> np.ndarray:
        factors = np.where(np.arange(x.shape[-1]) % 2 == 0, 5.0, 5.0 / ratio)
        return (x * factors).astype(x.dtype)
    return _map_inputs(case, spread, f"features {ratio:g}x apart")


def unscaled_target(case: Case, level: tuple[float, float], rng: np.random.Generator) -> Case:
    """D104: a regression target in raw units, ``y * mult + offset``, inputs scaled."""
    mult, offset = level
    case = prescaled(case)
    frame = case.frame()
    target = case.data["target"]
    frame[target] = frame[target] * mult + offset
    return case.with_(f"target x{mult:g} + {offset:g}", source=frame)


def constant_features(case: Case, count: int, rng: np.random.Generator) -> Case:
    """D105: ``count`` extra input features that never change."""
    if case.is_table:
        frame = case.frame()
        names = [f"const{j}" for j in range(count)]
        for name in names:
            frame[name] = 1.0
        return case.with_(f"{count} constant feature(s)", source=frame, data={"features": case.feature_columns() + names})
    def add(arrays: dict[str, np.ndarray], s: str) -> None:
        X = arrays["X" + s]
        arrays["X" + s] = np.concatenate([X, np.ones((*X.shape[:2], count), dtype=X.dtype)], axis=-1)
    return _per_sample(case, add, f"{count} constant feature(s)")


def outliers(case: Case, sigmas: float, rng: np.random.Generator) -> Case:
    """D106: 0.1% of input values (at least 3) pushed ``sigmas`` standard deviations out."""
    def spikes(x: np.ndarray) -> np.ndarray:
        x = np.array(x, copy=True)
        k = max(3, int(x.size * 0.001))
        idx = rng.choice(x.size, size=k, replace=False)
        x.flat[idx] = sigmas * rng.choice([-1.0, 1.0], size=k)
        return x
    # Outliers enter before the setup's own scaler, which then has to live with them.
    case = _map_inputs(case, spikes, f"{sigmas:g}-sigma outliers")
    return case.with_("setup scales", data={"scale": "standard"})


def trend(case: Case, rise: float, rng: np.random.Generator) -> Case:
    """D107: a linear trend that lifts the series by ``rise`` standard deviations over
    its length, so validation lies above anything training saw."""
    frame = case.frame()
    cols = sorted(set(case.feature_columns() + [case.data["target"]]))
    values = frame[cols].to_numpy(dtype=float)
    ramp = np.linspace(0.0, rise, len(frame))[:, None] * values[: case.train_rows()].std(axis=0)
    frame[cols] = values + ramp
    return case.with_(f"trend of {rise:g} sd", source=frame)


def natural(case: Case, level: Any, rng: np.random.Generator) -> Case:
    """No injection: the dataset itself has the fault (weekly CO2's trend, 400-step leaves)."""
    return case


def short_window(case: Case, share: float, rng: np.random.Generator) -> Case:
    """D108: a window covering only ``share`` of the series' dominant period."""
    period = PERIOD[case.dataset]
    window = max(2, int(round(period * share)))
    return case.with_(f"window {window} (period {period})", data={"window": window})


def stretch(case: Case, steps: int, rng: np.random.Generator) -> Case:
    """Sequences resampled (linear interpolation) to ``steps`` steps: the same
    shapes, far longer to carry through time (D109, and T303 for a plain RNN)."""
    def resample(arrays: dict[str, np.ndarray], s: str) -> None:
        X = arrays["X" + s]
        old = np.linspace(0.0, 1.0, X.shape[1])
        new = np.linspace(0.0, 1.0, steps)
        out = np.empty((X.shape[0], steps, X.shape[2]), dtype=np.float32)
        for i in range(X.shape[0]):
            for j in range(X.shape[2]):
                out[i, :, j] = np.interp(new, old, X[i, :, j])
        arrays["X" + s] = out
        arrays.pop("lengths" + s, None)
    return _per_sample(case, resample, f"stretched to {steps} steps")


def no_signal(case: Case, how: str, rng: np.random.Generator) -> Case:
    """D110: targets unrelated to the inputs: ``shuffled`` (a pipeline bug that
    permutes labels against inputs) or ``noise`` (random targets)."""
    if case.is_table:
        case = own_target(case)
        frame = case.frame()
        y = frame[case.data["target"]].to_numpy(dtype=float)
        frame[case.data["target"]] = rng.permutation(y) if how == "shuffled" else rng.normal(y.mean(), y.std(), len(y))
        return case.with_(f"target {how}", source=frame)
    def scramble(arrays: dict[str, np.ndarray], s: str) -> None:
        y = arrays["y" + s]
        arrays["y" + s] = rng.permutation(y) if how == "shuffled" else rng.choice(np.unique(arrays["y"]), size=len(y))
    return _per_sample(case, scramble, f"labels {how}")


def imbalance(case: Case, majority: float, rng: np.random.Generator) -> Case:
    """D111: the other classes subsampled (training and validation alike) until the
    largest class holds ``majority`` of the samples."""
    def subsample(arrays: dict[str, np.ndarray], s: str) -> None:
        y = arrays["y" + s]
        classes, counts = np.unique(y, return_counts=True)
        big = classes[np.argmax(counts)]
        others = np.flatnonzero(y != big)
        keep_others = max(len(classes) - 1, int(round(counts.max() * (1 - majority) / majority)))
        keep = np.sort(np.r_[np.flatnonzero(y == big), rng.choice(others, size=min(keep_others, len(others)), replace=False)])
        for key in ("X", "y", "lengths"):
            if key + s in arrays:
                arrays[key + s] = arrays[key + s][keep]
    return _same_steps(_per_sample(case, subsample, f"majority class {majority:.0%}"), len(case.source["y"]))


def front_padding(case: Case, times: float, rng: np.random.Generator) -> Case:
    """D112: zeros padded at the start up to ``times`` the longest sequence, no
    lengths given (as Keras' pad_sequences does by default): padding dominates."""
    def pad(arrays: dict[str, np.ndarray], s: str) -> None:
        X = arrays["X" + s]
        lengths = arrays.pop("lengths" + s, np.full(len(X), X.shape[1]))
        steps = int(round(case.source["X"].shape[1] * times))
        out = np.zeros((len(X), steps, X.shape[2]), dtype=X.dtype)
        for i, n in enumerate(lengths):
            out[i, steps - n :] = X[i, :n]
        arrays["X" + s] = out
    return _per_sample(case, pad, f"front-padded to {times:g}x").with_("readout last", model={"readout": "last"})


def truncated(case: Case, resolution: float, rng: np.random.Generator) -> Case:
    """D113: standardized inputs multiplied by ``resolution`` and cast to integers
    (the fractional part lost, as an integer array dtype does)."""
    case = prescaled(case)
    def cast(arrays: dict[str, np.ndarray], s: str) -> None:
        arrays["X" + s] = (arrays["X" + s] * resolution).astype(np.int64)
    return _per_sample(case, cast, f"inputs x{resolution:g} cast to int")


def scaler_on_all_rows(case: Case, kind: str, rng: np.random.Generator) -> Case:
    """D114: the user scaled the whole series (validation included) before the
    split, then fed it with the setup's scaling off."""
    frame = case.frame()
    cols = sorted(set(case.feature_columns() + [case.data["target"]]))
    values = frame[cols].to_numpy(dtype=float)
    if kind == "standard":
        frame[cols] = (values - values.mean(axis=0)) / values.std(axis=0)
    else:
        lo, hi = values.min(axis=0), values.max(axis=0)
        train = values[: case.train_rows()]
        if np.array_equal(train.min(axis=0), lo) and np.array_equal(train.max(axis=0), hi):
            raise Inert("the training rows hold the smallest and largest value of every column: "
                        "a min-max scaler fitted on all rows equals one fitted on the training rows")
        frame[cols] = (values - lo) / (hi - lo)
    return case.with_(f"{kind} scaler fitted on all rows", source=frame, data={"scale": "none"})


def windows_random_split(case: Case, stride: int, rng: np.random.Generator) -> Case:
    """D114: the series cut into overlapping windows by the user (every ``stride``
    steps), then split at random into X and X_val: validation windows share rows
    with training windows."""
    case = prescaled(case)
    frame, w = case.frame(), int(case.data["window"])
    x = frame[case.feature_columns()].to_numpy(dtype=np.float32)
    y = frame[case.data["target"]].to_numpy(dtype=np.float32)
    starts = np.arange(0, len(x) - w, stride)
    X = np.stack([x[s : s + w] for s in starts])
    Y = y[starts + w]
    order = rng.permutation(len(starts))
    n_val = int(round(len(order) * 0.2))
    va, tr = np.sort(order[:n_val]), np.sort(order[n_val:])
    arrays = {"X": X[tr], "y": Y[tr], "X_val": X[va], "y_val": Y[va]}
    return case.with_(f"windows every {stride} step(s), random split", source=arrays,
                      data={"features": None, "target": None, "time": None})


def random_split(case: Case, val_fraction: float, rng: np.random.Generator) -> Case:
    """D115: a random split of a series' windows (validation windows fall between
    training windows: not a forecast)."""
    return case.with_(f"random split, {val_fraction:.0%} validation", data={"split": "random", "val_fraction": val_fraction})


def few_samples(case: Case, level: tuple[int, int], rng: np.random.Generator) -> Case:
    """D116: only ``n`` training samples for a model of ``hidden`` units."""
    n, hidden = level
    arrays = case.arrays()
    keep = np.sort(rng.choice(len(arrays["X"]), size=n, replace=False))
    for key in ("X", "y", "lengths"):
        if key in arrays:
            arrays[key] = arrays[key][keep]
    smaller = case.with_(f"{n} training samples, hidden {hidden}", source=arrays, model={"hidden": hidden})
    return _same_steps(smaller, len(case.source["y"]))


# ------------------------------------------------------------------ model faults (M2xx)


def output_mismatch(case: Case, level: str, rng: np.random.Generator) -> Case:
    """M201: an output activation that the loss and target cannot work with.

    Regression (standardized target, half of it negative): ``subtle`` is a ReLU
    output, ``obvious`` a sigmoid. Classification: ``subtle`` puts a sigmoid or
    softmax before a loss that applies it again, ``obvious`` a ReLU before it, so
    no logit can go negative.
    """
    if case.data.get("task", "regression") == "regression":
        act = "relu" if level == "subtle" else "sigmoid"
    elif level == "subtle":
        act = "sigmoid" if case.data["task"] == "binary" else "softmax"
    else:
        act = "relu"
    return case.with_(f"{act} output with {case.training['loss']}", model={"output_activation": act})


def metrics(case: Case, names: list[str], rng: np.random.Generator) -> Case:
    """M202: metrics that mean nothing for the task (accuracy on a regression)."""
    return case.with_(f"metrics {names}", training={"metrics": list(names)})


def model(case: Case, settings: dict[str, Any], rng: np.random.Generator) -> Case:
    """A model section change (M203 hidden 1, M205 8 layers, M206 init zeros, M207
    forget bias, M211 ReLU recurrence, M213 dropout 0.8, ...)."""
    return case.with_(", ".join(f"{k} {v}" for k, v in settings.items()), model=settings)


def training(case: Case, settings: dict[str, Any], rng: np.random.Generator) -> Case:
    """A training section change (T301 lr x1000, T302 SGD 1e-5, T311 batch 1, T312 one epoch, ...)."""
    return case.with_(", ".join(f"{k} {v}" for k, v in settings.items()), training=settings)


def tail_padding(case: Case, times: float, rng: np.random.Generator) -> Case:
    """M209: sequences cut to random lengths (half to all of their steps) and padded
    at the end to ``times`` the longest, lengths given, but the model reads the last
    step, which is padding."""
    def pad(arrays: dict[str, np.ndarray], s: str) -> None:
        X = arrays["X" + s]
        lengths = arrays.get("lengths" + s)
        if lengths is None:
            lengths = rng.integers(X.shape[1] // 2, X.shape[1] + 1, size=len(X))
        steps = int(round(case.source["X"].shape[1] * times))
        out = np.zeros((len(X), steps, X.shape[2]), dtype=X.dtype)
        for i, n in enumerate(lengths):
            out[i, :n] = X[i, :n]
        arrays["X" + s], arrays["lengths" + s] = out, np.asarray(lengths, dtype=np.int64)
    return _per_sample(case, pad, f"end-padded to {times:g}x").with_("readout last", model={"readout": "last"})


def per_step_labels(case: Case, level: Any, rng: np.random.Generator) -> Case:
    """M210: a sequence label copied to every step, so the model is trained per step
    for a label that belongs to the whole sequence."""
    def spread(arrays: dict[str, np.ndarray], s: str) -> None:
        arrays["y" + s] = np.repeat(arrays["y" + s][:, None], arrays["X" + s].shape[1], axis=1)
    return _per_sample(case, spread, "labels repeated per step")


def long_echo(case: Case, lag: int, rng: np.random.Generator) -> Case:
    """T303 on the echo task: the target repeats the input ``lag`` steps back, with a
    window just long enough, for a plain tanh RNN."""
    frame = case.frame()
    x = frame["x"].to_numpy(dtype=float)
    frame["echo"] = np.r_[np.zeros(lag), x[:-lag]]
    frame = frame.iloc[lag:].reset_index(drop=True)  # rows before the first echo
    return case.with_(f"echo after {lag} steps, window {lag + 8}", source=frame,
                      data={"window": lag + 8}, model={"cell": "rnn"})
