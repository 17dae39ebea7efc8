"""From a file (or the user's arrays) and the data section of a setup to windows."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from lstm_doctor.config import DataConfig
from lstm_doctor.data.readers import read_npz, read_table
from lstm_doctor.data.windows import AffineMap, SequenceData, Windows
from lstm_doctor.errors import InputError


def load_source(cfg: DataConfig, base_dir: Path | None = None) -> tuple[pd.DataFrame | dict[str, np.ndarray], str]:
    """The raw table or arrays behind ``cfg.path``, and the path as a name for messages."""
    if cfg.path is None:
        raise InputError("No data file was given. Pass it as the DATA argument or set data.path in the setup file.")
    path = Path(cfg.path)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if path.suffix.lower() == ".npz":
        return read_npz(path), str(path)
    return read_table(path), str(path)


def window_source(source: pd.DataFrame | dict[str, np.ndarray], cfg: DataConfig, *, seed: int = 0, name: str = "the data") -> SequenceData:
    """Window an in-memory table or array dict as ``cfg`` says.

    Treatments call this again with a changed ``cfg`` on the same source, so the
    source is never modified.
    """
    if isinstance(source, pd.DataFrame):
        return from_frame(source, cfg, seed=seed, name=name)
    return from_arrays(source, cfg, seed=seed, name=name)


def build_data(cfg: DataConfig, base_dir: Path | None = None, *, seed: int = 0) -> SequenceData:
    """Load ``cfg.path`` and window it as the setup says (faults included)."""
    source, name = load_source(cfg, base_dir)
    data = window_source(source, cfg, seed=seed, name=name)
    data.source["path"] = name
    return data


# ---------------------------------------------------------------- labels and scaling


def _class_indices(labels: np.ndarray, task: str, name: str) -> tuple[np.ndarray, list[str]]:
    flat = labels.reshape(-1)
    missing = pd.isna(flat)
    if missing.any():
        raise InputError(f"{name}: {int(missing.sum())} target label(s) are missing (NaN or empty). Drop those rows or give them a class.")
    if flat.dtype.kind == "f":
        if not np.all(np.isfinite(flat)):
            raise InputError(f"{name}: the class labels contain Inf; give every sample a class.")
        if np.all(flat == np.round(flat)) and np.all(np.abs(flat) < 2**53):  # whole numbers that int64 holds exactly
            flat = flat.astype(np.int64)
    try:
        classes, idx = np.unique(flat, return_inverse=True)
    except TypeError:  # labels of mixed types (1 and "a") cannot be ordered; compare them as text
        classes, idx = np.unique(flat.astype(str), return_inverse=True)
    if len(classes) < 2:
        raise InputError(f"{name}: the target has a single class ({_shown(classes[0])} only); a classifier needs at least two.")
    if task == "binary" and len(classes) > 2:
        raise InputError(f"{name}: task is binary but the target has {len(classes)} classes ({_preview(classes)}); use --task multiclass.")
    return idx.reshape(labels.shape).astype(np.int64), [str(c) for c in classes]


def _shown(value: object) -> str:
    """A value as the user wrote it: ``3``, not ``np.int64(3)``."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _preview(values: np.ndarray, n: int = 5) -> str:
    return ", ".join(_shown(v) for v in values[:n]) + (", ..." if len(values) > n else "")


def _fit_scaler(kind: str, rows: np.ndarray) -> AffineMap | None:
    """Scaler statistics from ``rows`` (training rows only); NaNs are ignored."""
    if kind == "none":
        return None
    scaler = StandardScaler() if kind == "standard" else MinMaxScaler()
    finite = np.where(np.isfinite(rows), rows, np.nan).astype(np.float64)
    if np.all(np.isnan(finite)):
        return None
    # An all-NaN column gets no statistics (identity below); numpy's warning about it is noise.
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        scaler.fit(finite)
    if kind == "standard":
        offset, scale = scaler.mean_, scaler.scale_
    else:
        offset, scale = scaler.data_min_, 1.0 / scaler.scale_
    offset, scale = np.nan_to_num(offset), np.nan_to_num(scale, nan=1.0)
    scale = np.where(scale == 0, 1.0, scale)
    return AffineMap(offset.astype(np.float32), scale.astype(np.float32))


def _apply(m: AffineMap | None, values: np.ndarray) -> np.ndarray:
    if m is None:
        return values
    with np.errstate(all="ignore"):
        return ((values - m.offset) / m.scale).astype(np.float32)


# ---------------------------------------------------------------- tables


def _column_check(frame: pd.DataFrame, names: list[str], role: str, name: str) -> None:
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise InputError(f"{name}: {role} column(s) {missing} not found. The file has columns {list(frame.columns)}.")


def _times(t: pd.Series, column: str, name: str) -> pd.Series:
    """The time column as numbers or datetimes, so that it orders rows."""
    if t.isna().any():
        raise InputError(f"{name}: time column '{column}' has {int(t.isna().sum())} missing value(s); every row needs a time to be ordered.")
    if pd.api.types.is_bool_dtype(t) or pd.api.types.is_complex_dtype(t):
        raise InputError(f"{name}: time column '{column}' holds {t.dtype} values; give numbers or dates.")
    if pd.api.types.is_numeric_dtype(t) or pd.api.types.is_datetime64_any_dtype(t):
        return t
    numbers = pd.to_numeric(t, errors="coerce")
    if numbers.notna().all():
        return numbers
    try:
        parsed = pd.to_datetime(t.astype(str), errors="coerce", format="mixed", utc=True)
    except (ValueError, TypeError, OverflowError):
        parsed = pd.Series(pd.NaT, index=t.index)
    if parsed.isna().any():
        bad = t[parsed.isna()].iloc[0]
        raise InputError(f"{name}: time column '{column}' has a value that is neither a number nor a date ({bad!r}). Fix or drop that row.")
    return parsed


def _order(frame: pd.DataFrame, cfg: DataConfig, name: str) -> pd.DataFrame:
    """Rows grouped by series (in order of first appearance) and ordered by time within each."""
    # Sort keys by position: the user's index may repeat labels (concatenated frames).
    keys = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    if cfg.series_id:
        ids = frame[cfg.series_id]
        if ids.isna().any():
            raise InputError(f"{name}: series_id column '{cfg.series_id}' has {int(ids.isna().sum())} missing value(s); give every row its series.")
        # Codes, not the ids themselves: ids of mixed types (1 and "a") do not sort.
        keys["series"] = pd.factorize(ids)[0]
    if cfg.time:
        keys["time"] = _times(frame[cfg.time], cfg.time, name).to_numpy()
        duplicated = keys.duplicated().to_numpy()
        if duplicated.any():
            first = _shown(frame[cfg.time].iloc[int(duplicated.argmax())])
            hint = "" if cfg.series_id else " If the file holds several series, name the column that tells them apart with --series-id."
            raise InputError(f"{name}: time column '{cfg.time}' repeats {int(duplicated.sum())} time stamp(s) within a series (e.g. {first}); "
                             f"each series needs one row per time.{hint}")
    if not len(keys.columns):
        return frame
    order = keys.sort_values(list(keys.columns), kind="stable").index.to_numpy()
    return frame.iloc[order].reset_index(drop=True)


def _numeric(frame: pd.DataFrame, cols: list[str], role: str, name: str) -> np.ndarray:
    out = np.empty((len(frame), len(cols)), dtype=np.float32)
    for j, c in enumerate(cols):
        col = frame[c]
        if pd.api.types.is_complex_dtype(col):
            raise InputError(f"{name}: {role} column '{c}' holds complex numbers; give its real and imaginary parts as two columns.")
        if pd.api.types.is_bool_dtype(col):
            col = col.astype(np.float32)
        if not pd.api.types.is_numeric_dtype(col):
            coerced = pd.to_numeric(col, errors="coerce")
            bad = col[coerced.isna() & col.notna()]
            if len(bad):
                raise InputError(f"{name}: {role} column '{c}' is not numeric (e.g. {bad.iloc[0]!r}). Encode it as numbers, or leave it out of --features.")
            col = coerced
        with np.errstate(over="ignore"):
            out[:, j] = col.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def from_frame(frame: pd.DataFrame, cfg: DataConfig, *, seed: int = 0, name: str = "the data") -> SequenceData:
    """Sliding windows over a table (one series, or a panel with ``series_id``)."""
    targets = cfg.targets
    if not targets:
        raise InputError(f"{name}: no target given. Name the column to predict with --target (or data.target).")
    _column_check(frame, targets, "target", name)
    _column_check(frame, [c for c in (cfg.time, cfg.series_id) if c], "time/series_id", name)
    if cfg.features is not None:
        _column_check(frame, cfg.features, "feature", name)
        features = list(cfg.features)
    else:
        skip = {cfg.time, cfg.series_id}
        features = [c for c in frame.columns if c not in skip and (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))]
    if not features:
        raise InputError(f"{name}: no numeric feature column found (columns: {list(frame.columns)}). Name the inputs with --features.")
    frame = _order(frame, cfg, name)
    x = _numeric(frame, features, "feature", name)
    classes = None
    if cfg.task == "regression":
        y = _numeric(frame, targets, "target", name)
    else:
        if len(targets) > 1:
            raise InputError(f"{name}: a {cfg.task} task takes one target column, not {targets}.")
        idx, classes = _class_indices(frame[targets[0]].to_numpy(), cfg.task, name)
        y = idx[:, None]

    # Segments: one per series; windows never cross a segment's end.
    if cfg.series_id:
        ids = frame[cfg.series_id].to_numpy()
        cuts = np.flatnonzero(ids[1:] != ids[:-1]) + 1
        bounds = list(zip(np.r_[0, cuts], np.r_[cuts, len(frame)]))
    else:
        bounds = [(0, len(frame))]
    if cfg.target_transform == "difference":
        y = _difference(y, bounds, cfg, name)
    span = cfg.window + cfg.horizon  # rows one window and its target occupy
    train_starts, val_starts, split_rows = [], [], []
    rng = np.random.default_rng(seed)
    all_starts = []
    for a, b in bounds:
        n = b - a
        if cfg.split == "temporal":
            cut = a + int(round(n * (1 - cfg.val_fraction)))
            split_rows.append(cut - a)
            train_starts.append(np.arange(a, cut - span + 1))
            val_starts.append(np.arange(cut, b - span + 1))
        else:
            split_rows.append(n)
            all_starts.append(np.arange(a, b - span + 1))
    if cfg.split == "random":
        starts = np.concatenate(all_starts)
        perm = rng.permutation(len(starts))
        n_val = int(round(len(starts) * cfg.val_fraction))
        val_s, train_s = np.sort(starts[perm[:n_val]]), np.sort(starts[perm[n_val:]])
    else:
        train_s, val_s = np.concatenate(train_starts), np.concatenate(val_starts)
    longest = max(b - a for a, b in bounds)
    if len(train_s) == 0 or len(val_s) == 0:
        part = "training" if len(train_s) == 0 else "validation"
        raise InputError(
            f"{name}: the {part} part has no complete window. Each window needs window + horizon = {span} consecutive rows "
            f"within the {part} part, and the longest series has {longest} rows with val_fraction {cfg.val_fraction}. "
            "Use a shorter --window, a smaller --horizon, another --val-fraction, or more data."
        )

    # Scalers see training rows only: the inputs and targets training windows use.
    used = np.zeros(len(frame), dtype=bool)
    for k in range(span):
        used[train_s + k] = True
    x_map = _fit_scaler(cfg.scale, x[used])
    x = _apply(x_map, x)
    y_map = None
    if cfg.task == "regression":
        y_map = _fit_scaler(cfg.target_scale, y[used])
        y = _apply(y_map, y)
    xt = torch.from_numpy(np.ascontiguousarray(x))
    yt = torch.from_numpy(np.ascontiguousarray(y if cfg.task == "regression" else y[:, 0]))
    mk = lambda s: Windows(xt, yt, torch.from_numpy(s.astype(np.int64)), cfg.window, cfg.horizon)
    return SequenceData(
        train=mk(train_s),
        val=mk(val_s),
        task=cfg.task,
        feature_names=features,
        target_names=targets,
        classes=classes,
        horizon=cfg.horizon,
        target_scaler=y_map,
        split=cfg.split,
        series=[(y[a:b, 0] if cfg.task == "regression" else y[a:b, 0].astype(np.float32)) for a, b in bounds],
        series_train_rows=split_rows,
        source={"kind": "table", "rows": len(frame), "series": len(bounds), "feature_dtypes": {c: str(frame[c].dtype) for c in features}},
    )


def _difference(y: np.ndarray, bounds: list[tuple[int, int]], cfg: DataConfig, name: str) -> np.ndarray:
    """Row r's target becomes its change over the horizon, y[r] - y[r - horizon], within each series."""
    if cfg.task != "regression" or cfg.horizon < 1:
        raise InputError(f"{name}: data.target_transform 'difference' needs a regression target and a horizon of at least 1.")
    out = np.full_like(y, np.nan)
    h = cfg.horizon
    for a, b in bounds:
        out[a + h : b] = y[a + h : b] - y[a : b - h]
    return out


# ---------------------------------------------------------------- arrays


def _downsample(X: np.ndarray, y: np.ndarray, lengths: np.ndarray | None, k: int, per_step: bool, name: str):
    """Average every ``k`` consecutive steps; lengths shrink to match."""
    if per_step:
        raise InputError(f"{name}: data.downsample needs one target per sequence; per-step targets would lose their alignment.")
    steps = -(-X.shape[1] // k)
    pad = steps * k - X.shape[1]
    if pad:
        X = np.concatenate([X, np.repeat(X[:, -1:], pad, axis=1)], axis=1)
    X = X.reshape(len(X), steps, k, X.shape[2]).mean(axis=2)
    return X, y, (None if lengths is None else -(-lengths // k))




def _check_arrays(X: np.ndarray, y: np.ndarray, lengths: np.ndarray | None, part: str, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    if X.dtype.kind not in "biuf":
        raise InputError(f"{name}: {part} inputs X have dtype {X.dtype}; they must be numbers.")
    if X.ndim == 2:
        X = X[:, :, None]
    if X.ndim != 3:
        raise InputError(f"{name}: {part} inputs X have shape {X.shape}; expected (samples, steps, features) or (samples, steps).")
    if 0 in X.shape:
        raise InputError(f"{name}: {part} inputs X have shape {X.shape}; every axis needs at least one entry.")
    if y.ndim == 0 or len(y) != len(X):
        raise InputError(f"{name}: {part} targets y have shape {y.shape} but X has {len(X)} samples; y needs one entry per sample (or per sample and step).")
    if y.ndim > 3:
        raise InputError(f"{name}: {part} targets y have shape {y.shape}; expected (samples,), (samples, targets) or (samples, steps[, targets]).")
    if lengths is not None:
        lengths = np.asarray(lengths)
        if lengths.shape != (len(X),) or lengths.dtype.kind not in "iu":
            raise InputError(f"{name}: {part} lengths must be integers, one per sample; got shape {lengths.shape}, dtype {lengths.dtype}.")
        if lengths.min() < 1 or lengths.max() > X.shape[1]:
            raise InputError(f"{name}: {part} lengths must lie between 1 and the {X.shape[1]} steps of X; got {lengths.min()}..{lengths.max()}.")
    return X, y, lengths


def from_arrays(arrays: dict[str, np.ndarray], cfg: DataConfig, *, seed: int = 0, name: str = "the data") -> SequenceData:
    """Already-windowed data: X ``(samples, steps, features)``, y, optional lengths and validation arrays."""
    X, y, lengths = _check_arrays(np.asarray(arrays["X"]), np.asarray(arrays["y"]), arrays.get("lengths"), "training", name)
    steps, y_shape = X.shape[1], y.shape
    if "X_val" in arrays:
        Xv, yv, lv = _check_arrays(np.asarray(arrays["X_val"]), np.asarray(arrays["y_val"]), arrays.get("lengths_val"), "validation", name)
        if Xv.shape[1:] != X.shape[1:]:
            raise InputError(f"{name}: X_val has shape {Xv.shape} but X has {X.shape}; steps and features must match.")
        if yv.shape[1:] != y.shape[1:]:
            raise InputError(f"{name}: y_val has shape {yv.shape} but y has {y.shape}; both need the same shape per sample.")
        split = "given"
    else:
        n = len(X)
        n_val = int(round(n * cfg.val_fraction))
        if n_val < 1 or n - n_val < 1:
            raise InputError(f"{name}: {n} sample(s) cannot be split into training and validation with val_fraction {cfg.val_fraction}; give more samples or X_val and y_val.")
        order = np.random.default_rng(seed).permutation(n) if cfg.split == "random" else np.arange(n)
        tr, va = np.sort(order[: n - n_val]), np.sort(order[n - n_val :])
        Xv, yv, lv = X[va], y[va], (lengths[va] if lengths is not None else None)
        X, y, lengths = X[tr], y[tr], (lengths[tr] if lengths is not None else None)
        split = cfg.split
    per_step = y.ndim >= 2 and y.shape[1] == steps and (y.ndim == 3 or steps > 1)
    if cfg.downsample > 1:
        X, y, lengths = _downsample(X, y, lengths, cfg.downsample, per_step, name)
        Xv, yv, lv = _downsample(Xv, yv, lv, cfg.downsample, per_step, name)
        steps = X.shape[1]
    classes = None
    input_dtype = str(X.dtype)
    X, Xv = X.astype(np.float32), Xv.astype(np.float32)
    if cfg.task == "regression":
        if y.dtype.kind not in "biuf" or yv.dtype.kind not in "biuf":
            raise InputError(f"{name}: a regression target must be numeric; y has dtype {y.dtype}. Use --task binary or multiclass for labels.")
        shape = lambda a: a.reshape(len(a), steps, -1) if per_step else a.reshape(len(a), -1)
        y, yv = shape(y.astype(np.float32)), shape(yv.astype(np.float32))
        target_names = [f"y{j}" for j in range(y.shape[-1])] if y.shape[-1] > 1 else ["y"]
    else:
        if y.ndim > (2 if per_step else 1) and y.shape[-1] > 1:
            raise InputError(f"{name}: a {cfg.task} target takes one class label per sample{' and step' if per_step else ''}, "
                             f"but y has shape {y_shape}. If y is one-hot, pass y.argmax(axis=-1).")
        both, classes = _class_indices(np.concatenate([y.reshape(len(y), -1), yv.reshape(len(yv), -1)]), cfg.task, name)
        y, yv = both[: len(y)], both[len(y) :]
        y, yv = (y, yv) if per_step else (y[:, 0], yv[:, 0])
        target_names = ["y"]

    def real_steps(x: np.ndarray, lens: np.ndarray | None) -> np.ndarray:
        """Rows ``(n, columns)`` of the steps that are not padding."""
        if lens is None:
            return x.reshape(-1, x.shape[-1])
        return x[np.arange(x.shape[1])[None, :] < lens[:, None]]

    x_map = _fit_scaler(cfg.scale, real_steps(X, lengths))
    X, Xv = _apply(x_map, X), _apply(x_map, Xv)
    y_map = None
    if cfg.task == "regression":
        y_map = _fit_scaler(cfg.target_scale, real_steps(y, lengths) if per_step else y)
        y, yv = _apply(y_map, y), _apply(y_map, yv)
    t = lambda a: None if a is None else torch.from_numpy(np.ascontiguousarray(a))
    return SequenceData(
        train=Windows(t(X), t(y), lengths=t(None if lengths is None else lengths.astype(np.int64))),
        val=Windows(t(Xv), t(yv), lengths=t(None if lv is None else lv.astype(np.int64))),
        task=cfg.task,
        feature_names=[f"x{j}" for j in range(X.shape[-1])],
        target_names=target_names,
        classes=classes,
        per_step=per_step,
        horizon=0,
        target_scaler=y_map,
        split=split,
        source={"kind": "arrays", "input_dtype": input_dtype, "samples": len(X) + len(Xv)},
    )
