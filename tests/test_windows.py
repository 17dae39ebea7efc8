"""Windowing by index arithmetic: exact rows, horizons, split boundaries, panels, scalers and labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from lstm_doctor.errors import InputError
from lstm_doctor.setups import setup_from


def row_frame(n: int = 40) -> pd.DataFrame:
    """A frame whose values tell the row they came from: x = row, y = 1000 + row."""
    return pd.DataFrame({"x": np.arange(n, dtype=float), "y": 1000.0 + np.arange(n)})


def rows_of(windows) -> tuple[np.ndarray, np.ndarray]:
    """(row index of every input step, row index of every target) of all windows."""
    x, y, _ = windows.all()
    return x[..., 0].numpy().astype(int), (y[:, 0].numpy() - 1000).astype(int)


def test_first_and_last_window_of_each_part_exactly():
    data = setup_from(row_frame(40), data={"target": "y", "features": ["x"], "window": 5, "horizon": 2, "val_fraction": 0.25}).data
    # 40 rows, a quarter for validation: training rows 0..29, validation rows 30..39.
    x, y = rows_of(data.train)
    assert len(x) == 30 - 5 - 2 + 1
    assert list(x[0]) == [0, 1, 2, 3, 4] and y[0] == 6  # the target sits `horizon` rows after the last input
    assert list(x[-1]) == [23, 24, 25, 26, 27] and y[-1] == 29
    xv, yv = rows_of(data.val)
    assert len(xv) == 10 - 5 - 2 + 1
    assert list(xv[0]) == [30, 31, 32, 33, 34] and yv[0] == 36
    assert list(xv[-1]) == [33, 34, 35, 36, 37] and yv[-1] == 39
    # No window crosses the boundary, neither with its inputs nor with its target.
    assert x.max() < 30 and y.max() < 30 and xv.min() >= 30 and yv.min() >= 30
    assert data.series_train_rows == [30]


def test_horizon_zero_targets_the_last_input_step():
    data = setup_from(row_frame(20), data={"target": "y", "features": ["x"], "window": 3, "horizon": 0, "val_fraction": 0.5}).data
    x, y = rows_of(data.train)
    assert np.array_equal(y, x[:, -1]) and len(x) == 10 - 3 + 1


def test_batch_picks_the_requested_windows():
    data = setup_from(row_frame(40), data={"target": "y", "features": ["x"], "window": 4}).data
    x, y, lengths = data.train.batch(torch.tensor([5, 0, 5]))
    assert x.shape == (3, 4, 1) and lengths is None
    assert x[:, 0, 0].tolist() == [5.0, 0.0, 5.0] and y[:, 0].tolist() == [1009.0, 1004.0, 1009.0]
    sub = data.train.subset(torch.tensor([2, 3]))
    assert len(sub) == 2 and sub.all()[0][0, 0, 0] == 2.0 and sub.inputs is data.train.inputs  # rows are shared


def test_input_rows_and_target_values():
    data = setup_from(row_frame(40), data={"target": "y", "window": 5, "horizon": 2, "val_fraction": 0.25}).data
    rows = data.train.input_rows()
    assert sorted(rows[:, 0].astype(int)) == list(range(0, 28))  # every fed step once, horizon gap rows not fed
    assert list(data.val.target_values()[:, 0] - 1000) == [36, 37, 38, 39]


def test_panel_windows_never_cross_series(macro_frame):
    # Two real series in long format: US real GDP and real consumption, 203 quarters each.
    long = pd.concat([
        pd.DataFrame({"series": name, "quarter": np.arange(len(macro_frame)), "value": macro_frame[name].to_numpy()})
        for name in ("realgdp", "realcons")
    ]).sample(frac=1.0, random_state=0)  # shuffled rows: ordering is lstm-doctor's job
    long["sid"] = long["series"].map({"realgdp": 0, "realcons": 1})
    data = setup_from(long, data={"target": "value", "features": ["value", "sid", "quarter"], "series_id": "series",
                                  "time": "quarter", "window": 8, "horizon": 1, "val_fraction": 0.2}).data
    per_series = 203 - round(203 * 0.2)
    assert data.series_train_rows == [per_series, per_series]
    assert len(data.train) == 2 * (per_series - 9 + 1) and len(data.val) == 2 * (203 - per_series - 9 + 1)
    for part, lo, hi in ((data.train, 0, per_series), (data.val, per_series, 203)):
        x, _, _ = part.all()
        sid, quarter = x[..., 1], x[..., 2]
        assert torch.all(sid == sid[:, :1])  # one series per window
        assert torch.all(quarter.diff(dim=1) == 1)  # consecutive, in time order
        assert quarter.min() >= lo and quarter.max() < hi
    assert np.allclose(data.series[0], macro_frame["realgdp"].to_numpy())


@pytest.mark.parametrize("kind, sk", [("standard", StandardScaler), ("minmax", MinMaxScaler)])
def test_scaler_statistics_come_from_training_rows_only(co2_frame, kind, sk):
    frame = co2_frame.assign(trend=np.arange(len(co2_frame), dtype=float))
    data = setup_from(frame, data={"target": "co2", "time": "date", "window": 12, "scale": kind}).data
    cut = round(len(frame) * 0.8)
    reference = sk().fit(frame[["co2", "trend"]].iloc[:cut].to_numpy())  # exactly the training rows
    expected = reference.transform(frame[["co2", "trend"]].to_numpy())
    x, y, _ = data.train.all()
    assert np.allclose(x[0].numpy(), expected[:12], atol=1e-4)
    xv, yv, _ = data.val.all()
    assert np.allclose(xv[-1].numpy(), expected[-13:-1], atol=1e-4)  # validation scaled with training statistics
    assert np.allclose(yv[-1, 0].item(), expected[-1, 0], atol=1e-4)
    # The target scaler maps predictions back to ppm.
    assert np.allclose(data.target_scaler.invert(yv[-1:]).item(), frame["co2"].iloc[-1], atol=1e-3)


def test_target_scaled_on_its_own(co2_frame):
    data = setup_from(co2_frame, data={"target": "co2", "time": "date", "window": 12, "scale": "none",
                                       "scale_target": "standard"}).data
    x, y, _ = data.train.all()
    assert x[0, 0, 0].item() == pytest.approx(co2_frame["co2"].iloc[0], rel=1e-6)  # inputs as given
    train_co2 = co2_frame["co2"].iloc[: round(len(co2_frame) * 0.8)]
    assert data.target_scaler.offset[0] == pytest.approx(train_co2.mean(), rel=1e-6)
    assert data.target_scaler.scale[0] == pytest.approx(train_co2.std(ddof=0), rel=1e-5)


def test_random_split_is_seeded_and_covers_every_window():
    frame = row_frame(100)
    a = setup_from(frame, data={"target": "y", "window": 5, "split": "random"}, training={"seed": 1}).data
    b = setup_from(frame, data={"target": "y", "window": 5, "split": "random"}, training={"seed": 1}).data
    c = setup_from(frame, data={"target": "y", "window": 5, "split": "random"}, training={"seed": 2}).data
    assert torch.equal(a.val.starts, b.val.starts) and not torch.equal(a.val.starts, c.val.starts)
    starts = torch.cat([a.train.starts, a.val.starts])
    assert sorted(starts.tolist()) == list(range(100 - 6 + 1)) and len(a.val) == round(95 * 0.2)


def test_rows_are_ordered_by_time():
    frame = row_frame(30).assign(t=pd.date_range("2024-01-01", periods=30, freq="h").astype(str))
    shuffled = frame.sample(frac=1.0, random_state=3)
    a = setup_from(frame, data={"target": "y", "features": ["x"], "time": "t", "window": 4}).data
    b = setup_from(shuffled, data={"target": "y", "features": ["x"], "time": "t", "window": 4}).data
    assert torch.equal(a.train.all()[0], b.train.all()[0])


@pytest.mark.parametrize("frame, options, expected", [
    (row_frame(30).assign(t=[0, 1, 1] + list(range(3, 30))), {"time": "t"}, "repeats 1 time stamp.*--series-id"),
    (row_frame(30).assign(t=["2024-01-01"] * 29 + ["soon"]), {"time": "t"}, "neither a number nor a date \\('soon'\\)"),
    (row_frame(30).assign(t=[None] + list(range(1, 30))), {"time": "t"}, "1 missing value"),
    (row_frame(30).assign(s=["a"] * 29 + [None]), {"series_id": "s"}, "series_id column 's' has 1 missing"),
])
def test_time_and_series_errors(frame, options, expected):
    with pytest.raises(InputError, match=expected):
        setup_from(frame, data={"target": "y", "features": ["x"], "window": 3, **options})


@pytest.mark.parametrize("labels, classes", [
    (["cat", "dog", "cat", "bird"], ["bird", "cat", "dog"]),
    ([2.0, 1.0, 1.0, 3.0], ["1", "2", "3"]),
    ([-1, 7, -1, 7], ["-1", "7"]),
    ([True, False, False, True], ["False", "True"]),
    ([1, "a", 1, "a"], ["1", "a"]),
])
def test_labels_of_any_type_become_indices(labels, classes):
    n = 40
    y = np.array(labels * (n // len(labels)), dtype=object if len({type(v) for v in labels}) > 1 else None)
    X = np.random.default_rng(0).normal(size=(n, 6, 2)).astype(np.float32)
    task = "binary" if len(classes) == 2 else "multiclass"
    data = setup_from({"X": X, "y": y}, data={"task": task}, training={"loss": "bce" if task == "binary" else "ce"}).data
    assert data.classes == classes
    got = np.concatenate([data.train.target_values(), data.val.target_values()])
    assert [data.classes[i] for i in got] == [str(v) if not isinstance(v, float) else str(int(v)) for v in y]


def test_table_labels_from_a_column():
    frame = row_frame(40).assign(label=np.where(np.arange(40) % 3 == 0, "up", "down"))
    data = setup_from(frame, data={"target": "label", "features": ["x"], "window": 4, "task": "binary"},
                      training={"loss": "bce"}).data
    x, y, _ = data.train.all()
    assert data.classes == ["down", "up"] and y.dtype == torch.int64
    assert torch.equal(y, ((x[:, -1, 0] + 1) % 3 == 0).long())  # label of the row after the window


@pytest.mark.parametrize("y, task, expected", [
    (np.zeros(20), "binary", "single class"),
    (np.arange(20) % 3, "binary", "task is binary but the target has 3 classes"),
    (np.where(np.arange(20) == 4, np.nan, np.arange(20) % 2), "binary", "1 target label\\(s\\) are missing"),
    (np.eye(3)[np.arange(20) % 3], "multiclass", "If y is one-hot, pass y.argmax"),
    (np.array(["a", "b"] * 10), "regression", "regression target must be numeric"),
])
def test_label_errors(y, task, expected):
    X = np.zeros((20, 4, 1), dtype=np.float32)
    loss = {"binary": "bce", "multiclass": "ce", "regression": "mse"}[task]
    with pytest.raises(InputError, match=expected):
        setup_from({"X": X, "y": y}, data={"task": task}, training={"loss": loss})


# ---------------------------------------------------------------- already-windowed arrays


def test_arrays_temporal_split_keeps_order(gunpoint):
    data = setup_from({"X": gunpoint["X"], "y": gunpoint["y"]}, data={"task": "binary", "val_fraction": 0.2},
                      training={"loss": "bce"}).data
    assert (len(data.train), len(data.val), data.steps) == (40, 10, 150)
    assert torch.allclose(data.val.inputs, torch.from_numpy(gunpoint["X"][40:]))


def test_arrays_with_given_validation(arrow_head):
    data = setup_from(arrow_head, data={"task": "multiclass"}, training={"loss": "ce"}).data
    assert (len(data.train), len(data.val), data.n_outputs, data.split) == (36, 175, 3, "given")


def test_per_step_targets_lengths_and_padding_free_scaling():
    rng = np.random.default_rng(0)
    X = rng.normal(5.0, 3.0, size=(30, 10, 2)).astype(np.float32)
    lengths = rng.integers(3, 11, size=30)
    X[np.arange(10)[None, :] >= lengths[:, None]] = 0.0  # zero padding
    y = X[..., :1].cumsum(axis=1)  # (samples, steps, 1): a target at every step
    data = setup_from({"X": X, "y": y, "lengths": lengths}, data={"scale": "standard"}).data
    assert data.per_step and data.train.steps == 10 and data.n_outputs == 1
    real = X[:24][np.arange(10)[None, :] < lengths[:24, None]]  # training samples' real steps only
    reference = StandardScaler().fit(real)
    x, yt, lens = data.train.all()
    assert torch.equal(lens, torch.from_numpy(lengths[:24]))
    assert np.allclose(x[0, : lengths[0]].numpy(), reference.transform(X[0, : lengths[0]]), atol=1e-4)
    assert yt.shape == (24, 10, 1)
    real_y = y[:24][np.arange(10)[None, :] < lengths[:24, None]]
    assert data.target_scaler.offset[0] == pytest.approx(real_y.mean(), rel=1e-4)


def test_per_step_class_labels():
    X = np.zeros((20, 6, 1), dtype=np.float32)
    y = np.tile(np.array(["a", "b", "c"])[np.arange(6) % 3], (20, 1))
    data = setup_from({"X": X, "y": y}, data={"task": "multiclass"}, training={"loss": "ce"}).data
    assert data.per_step and data.classes == ["a", "b", "c"] and data.train.all()[1].shape == (16, 6)


@pytest.mark.parametrize("arrays, expected", [
    ({"X": np.zeros((10, 4, 1)), "y": np.zeros(9)}, "X has 10 samples"),
    ({"X": np.zeros(10), "y": np.zeros(10)}, "expected \\(samples, steps, features\\)"),
    ({"X": np.zeros((10, 0, 1)), "y": np.zeros(10)}, "every axis needs at least one entry"),
    ({"X": np.array([["a"]] * 10), "y": np.zeros(10)}, "must be numbers"),
    ({"X": np.zeros((10, 4, 1)), "y": np.zeros(10), "lengths": np.full(10, 5)}, "between 1 and the 4 steps"),
    ({"X": np.zeros((10, 4, 1)), "y": np.zeros(10), "lengths": np.full(10, 2.0)}, "lengths must be integers"),
    ({"X": np.zeros((10, 4, 1)), "y": np.zeros(10), "X_val": np.zeros((3, 5, 1)), "y_val": np.zeros(3)}, "steps and features must match"),
    ({"X": np.zeros((10, 4, 1)), "y": np.zeros(10), "X_val": np.zeros((3, 4, 1)), "y_val": np.zeros((3, 2))}, "y_val has shape"),
    ({"X": np.zeros((1, 4, 1)), "y": np.zeros(1)}, "1 sample\\(s\\) cannot be split"),
    ({"X": np.zeros((10, 4, 1)), "Y": np.zeros(10)}, "Arrays must be given as X, y"),
])
def test_array_errors(arrays, expected):
    with pytest.raises(InputError, match=expected):
        setup_from(arrays)


def test_non_finite_values_are_kept_for_the_rules(co2_frame):
    frame = co2_frame.copy()
    frame.loc[5, "co2"], frame.loc[9, "co2"] = np.nan, np.inf
    data = setup_from(frame, data={"target": "co2", "time": "date", "window": 12, "scale": "standard"}).data
    x, _, _ = data.train.all()
    assert torch.isnan(x[0, 5, 0]) and torch.isinf(x[0, 9, 0])  # faults are taken as the user has them
    finite = frame["co2"].iloc[: round(len(frame) * 0.8)].replace(np.inf, np.nan).dropna()
    assert data.target_scaler.offset[0] == pytest.approx(finite.mean(), rel=1e-6)  # statistics skip them


def test_standardized_copy_matches_the_setup_scaler_and_leaves_the_data_alone(co2_frame):
    frame = co2_frame.assign(trend=np.arange(len(co2_frame), dtype=float))
    options = {"target": "co2", "time": "date", "window": 12}
    raw = setup_from(frame, data={**options, "scale": "none"}).data
    scaled = setup_from(frame, data={**options, "scale": "standard"}).data
    copy = raw.standardized()
    for part in ("train", "val"):
        (x, y, _), (xs, ys, _) = getattr(copy, part).all(), getattr(scaled, part).all()
        # Statistics of the rows the training windows read and predict, not of every training row: close, not equal.
        assert torch.allclose(x, xs, atol=0.02) and torch.allclose(y, ys, atol=0.02)
    assert copy.train.starts is not None and copy.train.inputs.shape == raw.train.inputs.shape  # still lazy rows
    assert raw.train.all()[0][0, 0, 0].item() == pytest.approx(frame["co2"].iloc[0], rel=1e-6)  # original kept


def test_standardized_copy_keeps_class_labels(italy_power):
    arrays = {"X": italy_power["X"] * 1000.0 + 5000.0, "y": italy_power["y"]}
    data = setup_from(arrays, data={"scale": "none", "task": "binary"}).data
    copy = data.standardized()
    x, y, _ = copy.train.all()
    assert abs(x.mean().item()) < 0.05 and x.std().item() == pytest.approx(1.0, abs=0.05)
    assert torch.equal(y, data.train.all()[1])
