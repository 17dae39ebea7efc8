"""Facts about the data as the model is fed it (after the user's own scaling, if any).

Facts only: the D1xx rules judge them. Statistics are of the training part unless
named otherwise; "inputs" are every input step the windows feed (padding left out
when ``lengths`` say where it is), "targets" the windows' targets.

Evidence written:
  ``task``, ``n_train``, ``n_val``, ``steps``, ``horizon``, ``features``, ``targets``,
  ``classes``, ``per_step``, ``split``, ``source_kind``,
  ``scale`` (the setup's data.scale, None for the user's own data pipeline),
  ``class_weights`` (the setup's training.class_weights, None for the user's own loss),
  ``feature_stats`` / ``target_stats`` ({name: :func:`column_stats`}: mean, std, median,
  min, max, magnitude, robust_sd, robust_z_max, tail_share, integer_valued, distinct, count;
  targets for regression only), ``feature_scale`` / ``target_scale`` ({name: magnitude}),
  ``nonfinite`` ({"train_inputs"|"val_inputs"|"train_targets"|"val_targets": {name: count},
  "values": {part: values counted}}),
  ``class_counts`` / ``class_counts_val`` ({class: count}, classification),
  ``val_range`` ({"features"|"targets": {name: {outside_share, excess, shift}}}),
  ``scaled_with_validation`` ({feature: {...}}: features standardized or min-max scaled
  with statistics that include the validation rows; only when the setup does not scale),
  ``acf`` ({lags, values, band, period, points, of (the column), source, window, horizon}),
  ``dominant_period``, ``stationarity`` ({adf_p, kpss_p, points}, tables),
  ``val_window_overlap`` (share of validation windows sharing steps with a training window),
  arrays only: ``padding`` (see :func:`sequence_facts.padding`), ``sequence_lengths``,
  ``layout_suspect`` ({steps, features, adjacent_step_corr, adjacent_feature_corr}),
  ``sliding_window_share``, ``integer_inputs`` ({input_dtype, features: {name: {distinct, min, max}}}).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lstm_doctor.data.windows import SequenceData, Windows
from lstm_doctor.inspect import autocorrelation, sequence_facts
from lstm_doctor.inspect.value_stats import columns_stats, nonfinite_counts, range_shift
from lstm_doctor.setups import Setup

# Tolerances of the "scaled with validation statistics" signature: float32 data
# standardized on some rows has mean 0 and std 1 on exactly those rows to ~1e-6.
EXACT = 1e-3
# ...and the training rows alone must be visibly off, or the leak changed nothing.
VISIBLE = 1e-2
# Sliding windows of one series, in order, when this share of neighbours are shifted copies.
SLIDING = 0.9


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _target_rows(w: Windows, data: SequenceData) -> np.ndarray:
    """Targets as rows: ``(n, targets)`` for regression, a flat array of class indices otherwise (padding left out)."""
    y = w.target_values()
    if data.per_step and w.lengths is not None:
        y = y[np.arange(y.shape[1])[None, :] < _np(w.lengths)[:, None]]
    if data.task == "regression":
        return y.reshape(-1, len(data.target_names))
    return y.reshape(-1)


def _value_facts(data: SequenceData, x_train: np.ndarray, x_val: np.ndarray) -> dict[str, Any]:
    names = data.feature_names
    y_train, y_val = _target_rows(data.train, data), _target_rows(data.val, data)
    stats = columns_stats(x_train, names)
    facts: dict[str, Any] = {
        "feature_stats": stats,
        "feature_scale": {n: s["magnitude"] for n, s in stats.items()},
        "val_range": {"features": {n: r for j, n in enumerate(names) if n in stats and (r := range_shift(stats[n], x_val[:, j]))}},
    }
    regression = data.task == "regression"
    targets = data.target_names if regression else ["label"]
    col = (lambda y: y) if regression else (lambda y: y[:, None].astype(np.float64))
    facts["nonfinite"] = {
        "train_inputs": nonfinite_counts(x_train, names),
        "val_inputs": nonfinite_counts(x_val, names),
        "train_targets": nonfinite_counts(col(y_train), targets),
        "val_targets": nonfinite_counts(col(y_val), targets),
        "values": {"train_inputs": len(x_train), "val_inputs": len(x_val), "train_targets": len(y_train), "val_targets": len(y_val)},
    }
    if regression:
        t_stats = columns_stats(y_train, targets)
        facts["target_stats"] = t_stats
        facts["target_scale"] = {n: s["magnitude"] for n, s in t_stats.items()}
        facts["val_range"]["targets"] = {n: r for j, n in enumerate(targets) if n in t_stats and (r := range_shift(t_stats[n], y_val[:, j]))}
    else:
        k = len(data.classes or [])
        count = lambda y: {c: int(v) for c, v in zip(data.classes or [], np.bincount(y.astype(np.int64), minlength=k))}
        facts["class_counts"] = count(y_train)
        facts["class_counts_val"] = count(y_val)
    return facts


def _scaled_with_validation(data: SequenceData, train: np.ndarray, val: np.ndarray) -> dict[str, Any]:
    """Features whose scaling was fitted on training and validation rows together.

    Standardized: mean 0 and std 1 over all rows to within ``EXACT`` while the
    training rows alone are off by more than ``VISIBLE``. Min-max: exactly 0 and 1
    over all rows while the training rows miss one of them.
    """
    # A table's windows read one row table (all rows); arrays hold each part apart.
    rows = _np(data.train.inputs) if data.train.starts is not None else np.concatenate([train, val])
    found = {}
    with np.errstate(all="ignore"):
        for j, name in enumerate(data.feature_names):
            a, t = rows[:, j].astype(np.float64), train[:, j].astype(np.float64)
            a, t = a[np.isfinite(a)], t[np.isfinite(t)]
            if a.size < 2 or t.size < 2 or a.size == t.size:
                continue
            pooled = {"mean": a.mean(), "std": a.std(), "min": a.min(), "max": a.max()}
            alone = {"mean": t.mean(), "std": t.std(), "min": t.min(), "max": t.max()}
            standard = abs(pooled["mean"]) < EXACT and abs(pooled["std"] - 1) < EXACT and (
                abs(alone["mean"]) > VISIBLE or abs(alone["std"] - 1) > VISIBLE)
            minmax = abs(pooled["min"]) < 1e-6 and abs(pooled["max"] - 1) < 1e-6 and (
                alone["min"] > VISIBLE or alone["max"] < 1 - VISIBLE)
            if standard or minmax:
                found[name] = {"kind": "standard" if standard else "minmax",
                               "all_rows": {k: float(v) for k, v in pooled.items()},
                               "training_rows": {k: float(v) for k, v in alone.items()}}
    return found


def _table_series_facts(data: SequenceData) -> dict[str, Any]:
    """ACF, period and stationarity of the training series; overlap of the split's windows."""
    facts: dict[str, Any] = {}
    tr, va = data.train, data.val
    facts["val_window_overlap"] = sequence_facts.starts_overlap(_np(tr.starts), _np(va.starts), tr.window + tr.horizon)
    series = data.series or []
    of = data.target_names[0]
    if data.task != "regression":  # labels have no useful period; the first input does
        bounds = np.cumsum([0] + [len(s) for s in series])
        inputs = _np(tr.inputs[:, 0])
        series = [inputs[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        of = data.feature_names[0]
    train_parts = [s[:n] for s, n in zip(series, data.series_train_rows or [len(s) for s in series])]
    profile = autocorrelation.series_acf(train_parts, tr.window)
    if train_parts:
        test = autocorrelation.stationarity(max(train_parts, key=len))
        if test is not None:
            facts["stationarity"] = test
    if profile is not None:
        facts["acf"] = {**profile, "of": of, "source": "series"}
    return facts


def _array_facts(data: SequenceData, feature_stats: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Padding, lengths, layout, sliding-window structure, overlap and integer values of arrays."""
    tr, va = data.train, data.val
    x = _np(tr.inputs)
    lengths = None if tr.lengths is None else _np(tr.lengths)
    pad = sequence_facts.padding(x, lengths)
    facts: dict[str, Any] = {
        "padding": pad,
        "has_lengths": lengths is not None,
        "sequence_lengths": pad["lengths"],
        "layout_suspect": sequence_facts.layout(x),
        "sliding_window_share": sequence_facts.sliding_window_share(x),
        "val_window_overlap": sequence_facts.window_overlap(x, _np(va.inputs)),
    }
    if (facts["sliding_window_share"] or 0.0) >= SLIDING:
        profile = autocorrelation.series_acf([sequence_facts.series_of_windows(x)], tr.steps)
        source = "series rebuilt from sliding windows"
    else:
        profile = autocorrelation.sequences_acf(sequence_facts.first_feature_sequences(x, lengths))
        source = "within sequences"
    if profile is not None:
        facts["acf"] = {**profile, "of": data.feature_names[0], "source": source}
    facts["integer_inputs"] = {
        "input_dtype": data.source.get("input_dtype"),
        "features": {n: {"distinct": s["distinct"], "min": s["min"], "max": s["max"]} for n, s in feature_stats.items() if s["integer_valued"]},
    }
    return facts


def data_facts(setup: Setup) -> dict[str, Any]:
    """Every fact listed in this module's docstring, for ``setup``'s data as fed."""
    d = setup.data
    facts: dict[str, Any] = {
        "task": d.task,
        "n_train": len(d.train),
        "n_val": len(d.val),
        "steps": d.steps,
        "horizon": d.horizon,
        "features": list(d.feature_names),
        "targets": list(d.target_names),
        "classes": d.classes,
        "per_step": d.per_step,
        "split": d.split,
        "source_kind": d.source.get("kind"),
        "scale": setup.config.data.scale if setup.config is not None else None,
        # How the loss treats the classes decides whether an imbalance still matters.
        "class_weights": setup.config.training.class_weights if setup.config is not None else None,
    }
    # Read once: on a million-row table gathering a part's rows takes about a second.
    x_train, x_val = d.train.input_rows(), d.val.input_rows()
    facts.update(_value_facts(d, x_train, x_val))
    if facts["scale"] in (None, "none"):  # the setup's own scalers fit on training rows only
        facts["scaled_with_validation"] = _scaled_with_validation(d, x_train, x_val)
    facts.update(_table_series_facts(d) if d.train.starts is not None else _array_facts(d, facts["feature_stats"]))
    if "acf" in facts:
        facts["acf"].update(window=d.steps, horizon=d.horizon)
        facts["dominant_period"] = facts["acf"]["period"]
    return facts
