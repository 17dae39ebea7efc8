"""Hypothesis strategies for malformed and odd inputs, kept in the repo so that failures reproduce.

Each strategy draws a *case*: the bytes of a file (CSV, Parquet or NPZ) and the setup
options to read it with, or a setup dict. Cases mix well-formed data (so that many
end in a loaded Setup and the windowing is exercised) with every kind of damage a
user's file can carry: wrong dtypes, ragged rows, empty files, one row, all-NaN
columns, Inf, huge magnitudes, duplicate or missing time stamps, non-UTF-8 text,
unknown keys and wrong types in the setup, windows longer than the data, a
validation part that ends up empty, a single class.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

NAMES = ["t", "y", "x", "load", "temp", "id", "label", "d\u00e9bit", "a b", "1"]
TASKS = ["regression", "binary", "multiclass"]
LOSS_OF = {"regression": "mse", "binary": "bce", "multiclass": "ce"}


@dataclass
class FileCase:
    """A data file's name and bytes, and the setup sections to read it with."""

    name: str
    content: bytes
    data: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- values


def one_in(draw, k: int) -> bool:
    """True about once in ``k`` draws. Hypothesis leans to the simplest choice (the first)
    and to bounds, so a rare event is the last choice, not the first."""
    return draw(st.sampled_from(range(k))) == k - 1


JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
    st.lists(st.integers(-3, 3), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
SPECIAL_CELLS = ["", "NA", "nan", "inf", "-inf", "1e308", "-1e400", "abc", "2024-01-01", "2024-13-45", "1,5", '"q"', "True", " "]


def _float_text(v: float) -> str:
    return repr(v) if np.isfinite(v) else str(v)


NUMBER_CELLS = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.floats(-1e6, 1e6, allow_nan=False).map(_float_text),
    st.floats(allow_nan=True, allow_infinity=True).map(_float_text),  # huge magnitudes, NaN, Inf
)
ANY_CELL = st.one_of(NUMBER_CELLS, st.sampled_from(SPECIAL_CELLS), st.text(max_size=4))


@st.composite
def _column(draw, kind: str, n: int) -> list[str]:
    """The cells of one CSV column of ``kind``.

    Bulk values come from a numpy generator seeded by one drawn integer (drawing each
    cell through hypothesis costs more than loading the file); the damage, drawn by
    hypothesis, stays small and reproducible.
    """
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "time":
        start = draw(st.integers(0, 5))
        times = list(range(start, start + n))
        if n > 1 and one_in(draw, 4):  # a duplicate, a gap or a missing stamp
            i = draw(st.integers(0, n - 1))
            times[i] = draw(st.sampled_from([times[max(i - 1, 0)], times[i] + 1000, ""]))
        if draw(st.booleans()):
            return [str(pd.Timestamp("2024-01-01") + pd.Timedelta(days=t)) if t != "" else "" for t in times]
        return [str(t) for t in times]
    if kind == "label":
        labels = draw(st.lists(st.sampled_from(["a", "b", "c", "1", "0", "2.0"]), min_size=1, max_size=3, unique=True))
        return list(rng.choice(labels, size=n))
    if kind == "series":
        return list(rng.choice(["s1", "s2"], size=n)) if draw(st.booleans()) else ["s1"] * (n // 2) + ["s2"] * (n - n // 2)
    if kind == "constant":
        return [draw(st.sampled_from(["nan", "7", ""]))] * n
    if kind == "junk":
        return draw(st.lists(ANY_CELL, min_size=n, max_size=n))
    # numeric, now and then with a special cell
    cells = [f"{v:.3f}" for v in rng.normal(0, draw(st.sampled_from([1.0, 100.0, 1e5])), size=n)]
    while n and one_in(draw, 3):
        cells[draw(st.integers(0, n - 1))] = draw(st.one_of(NUMBER_CELLS, st.sampled_from(SPECIAL_CELLS)))
    return cells


@st.composite
def csv_case(draw) -> FileCase:
    """A CSV file as bytes (sometimes ragged, empty, header-only or not UTF-8) and options to read it."""
    n_cols = draw(st.integers(1, 5))
    header = draw(st.lists(st.sampled_from(NAMES), min_size=n_cols, max_size=n_cols, unique=not one_in(draw, 10)))
    kinds = draw(st.lists(st.sampled_from(["numeric"] * 6 + ["time", "time", "label", "label", "series", "constant", "junk"]),
                          min_size=n_cols, max_size=n_cols))
    n = draw(st.sampled_from([0, 1, 2, 3])) if one_in(draw, 6) else draw(st.integers(4, 60))
    columns = [draw(_column(k, n)) for k in kinds]
    rows = [list(r) for r in zip(*columns)] if n else []
    if rows and one_in(draw, 10):  # a ragged row
        r = rows[draw(st.integers(0, len(rows) - 1))]
        r.append("9") if draw(st.booleans()) else r.pop()
    text = ",".join(header) + "\n" + "".join(",".join(r) + "\n" for r in rows)
    encoding = draw(st.sampled_from(["utf-8"] * 7 + ["utf-8-sig", "latin-1", "utf-16"]))
    content = text.encode(encoding, errors="replace")
    if one_in(draw, 12):
        content = draw(st.sampled_from([b"", b"\n\n", content[: len(content) // 2], content + b"\xff\xfe\x00"]))
    return FileCase("data.csv", content, *_table_options(draw, header, kinds, n))


def _table_options(draw, header: list[str], kinds: list[str], n: int) -> tuple[dict, dict, dict]:
    """Setup sections for a table: mostly sensible (columns that exist, short windows), sometimes not."""
    names = header + ["missing"]
    task = draw(st.sampled_from(["regression", "regression", "binary", "multiclass"]))
    labels = [h for h, k in zip(header, kinds) if k == "label"]
    data: dict[str, Any] = {
        "target": draw(st.sampled_from(labels if task != "regression" and labels and not one_in(draw, 4) else names)),
        "task": task,
        "window": draw(st.integers(1, 2 * n + 2)) if one_in(draw, 5) else draw(st.integers(1, 6)),
        "horizon": draw(st.integers(0, 3)),
        "val_fraction": draw(st.floats(0.01, 0.99)) if one_in(draw, 4) else draw(st.sampled_from([0.2, 0.3, 0.5])),
        "scale": draw(st.sampled_from(["none", "standard", "minmax"])),
        "split": draw(st.sampled_from(["temporal", "temporal", "random"])),
    }
    if one_in(draw, 3):
        data["features"] = draw(st.lists(st.sampled_from(names), min_size=0, max_size=3))
    for role, kind in (("time", "time"), ("series_id", "series")):
        matching = [h for h, k in zip(header, kinds) if k == kind]
        if matching and not one_in(draw, 3):
            data[role] = draw(st.sampled_from(matching))
    training = {"loss": LOSS_OF[task], "seed": draw(st.integers(0, 3))}
    return data, {"hidden": 4}, training


# ---------------------------------------------------------------- parquet


@st.composite
def _frame_column(draw, n: int) -> pd.Series:
    kind = draw(st.sampled_from(["float"] * 4 + ["int", "bool", "string", "datetime", "datetime", "category", "all_nan", "nullable_int"]))
    if kind == "float":
        wild = one_in(draw, 3)  # NaN, Inf and huge magnitudes, or plain numbers
        values = draw(hnp.arrays(np.float64, n, elements=st.floats(allow_nan=wild, allow_infinity=wild, min_value=None if wild else -10,
                                                                   max_value=None if wild else 10)))
        return pd.Series(values)
    if kind == "int":
        return pd.Series(draw(hnp.arrays(np.int64, n, elements=st.integers(-(2**62), 2**62) | st.integers(0, 3))))
    if kind == "nullable_int":
        return pd.Series([draw(st.none() | st.integers(0, 5)) for _ in range(n)], dtype="Int64")
    if kind == "bool":
        return pd.Series(draw(hnp.arrays(np.bool_, n)))
    if kind == "string":
        return pd.Series([draw(st.sampled_from(["a", "b", "2024-01-02", "3.5", ""])) for _ in range(n)], dtype=object)
    if kind == "datetime":
        days = draw(st.lists(st.integers(0, 5 * n + 1), min_size=n, max_size=n, unique=not one_in(draw, 4)))
        return pd.Series(pd.Timestamp("2020-01-01") + pd.to_timedelta(days, unit="D"))
    if kind == "category":
        return pd.Series(pd.Categorical([draw(st.sampled_from(["x", "y"])) for _ in range(n)]))
    return pd.Series(np.full(n, np.nan))


@st.composite
def parquet_case(draw) -> FileCase:
    """A Parquet file of columns of many dtypes (sometimes truncated) and options to read it."""
    n = draw(st.sampled_from([0, 1, 2])) if one_in(draw, 6) else draw(st.integers(3, 40))
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True))
    frame = pd.DataFrame({name: draw(_frame_column(n)) for name in names})
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    content = buffer.getvalue()
    if one_in(draw, 8):
        content = content[: draw(st.integers(0, len(content) - 1))]
    kinds = ["time" if pd.api.types.is_datetime64_any_dtype(frame[c]) else "label" if frame[c].dtype == object
             else "numeric" for c in names]
    return FileCase("data.parquet", content, *_table_options(draw, names, kinds, n))


# ---------------------------------------------------------------- npz

FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=32) | st.floats(-5, 5, width=32)


@st.composite
def _coherent_arrays(draw) -> tuple[dict[str, np.ndarray], str]:
    """X, y (and maybe lengths, X_val, y_val) that fit together, as users save them."""
    n, steps, features = draw(st.integers(1, 12)), draw(st.integers(1, 6)), draw(st.integers(1, 3))
    task = draw(st.sampled_from(TASKS))
    n = n if one_in(draw, 4) else n + 4  # mostly enough samples to split
    X = draw(hnp.arrays(np.float32, (n, steps, features), elements=FLOATS))
    per_step = draw(st.booleans())
    shape = (n, steps) if per_step else (n,)
    if task == "regression":
        y = draw(hnp.arrays(np.float64, shape + draw(st.sampled_from([(), (1,), (2,)])), elements=FLOATS))
    else:
        y = draw(hnp.arrays(np.int64, shape, elements=st.integers(0, 1 if task == "binary" else 3), fill=st.nothing()))
    arrays = {"X": X, "y": y}
    if one_in(draw, 3):
        low = 0 if one_in(draw, 4) else 1  # sometimes a length out of range
        arrays["lengths"] = draw(hnp.arrays(np.int64, n, elements=st.integers(low, steps + (not low))))
    if one_in(draw, 3):
        m = draw(st.integers(1, 6))
        arrays["X_val"] = draw(hnp.arrays(np.float32, (m, steps, features), elements=FLOATS))
        arrays["y_val"] = y[:1].repeat(m, axis=0) if draw(st.booleans()) else draw(hnp.arrays(y.dtype, (m,), elements=st.integers(0, 2)))
    return arrays, task


@st.composite
def _chaotic_arrays(draw) -> tuple[dict[str, np.ndarray], str]:
    """Arrays of any dtype and shape, under the right or wrong names."""
    dtypes = st.sampled_from([np.float32, np.float64, np.int64, np.int8, np.bool_, np.complex64, np.dtype("U3"), np.dtype("M8[D]")])
    shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)
    keys = draw(st.lists(st.sampled_from(["X", "y", "X", "y", "lengths", "X_val", "y_val", "lengths_val", "extra"]), max_size=5, unique=True))
    return {k: draw(hnp.arrays(draw(dtypes), draw(shapes))) for k in keys}, draw(st.sampled_from(TASKS))


@st.composite
def npz_case(draw) -> FileCase:
    """An .npz archive (sometimes damaged) and options to read it."""
    arrays, task = draw(_chaotic_arrays() if one_in(draw, 4) else _coherent_arrays())
    buffer = io.BytesIO()
    (np.savez_compressed if draw(st.booleans()) else np.savez)(buffer, **arrays)
    content = buffer.getvalue()
    if one_in(draw, 8):
        content = bytearray(content)
        at = draw(st.integers(0, len(content) - 1))
        content[at] ^= draw(st.integers(1, 255))
        content = bytes(content)
    data = {"task": task, "val_fraction": draw(st.sampled_from([0.2, 0.5]) | st.floats(0.01, 0.99)),
            "split": draw(st.sampled_from(["temporal", "random"])), "scale": draw(st.sampled_from(["none", "standard", "minmax"]))}
    return FileCase("data.npz", content, data, {"hidden": 4}, {"loss": LOSS_OF[task]})


# ---------------------------------------------------------------- setup dicts

# field -> (valid values, values of the right type that are not allowed)
FIELDS: dict[str, dict[str, tuple[st.SearchStrategy, st.SearchStrategy]]] = {
    "data": {
        "target": (st.sampled_from(["y", "x", ["y", "x"]]), st.sampled_from(["nope", [], ["y", "nope"]])),
        "features": (st.sampled_from([["x"], ["x", "y"], "x"]), st.sampled_from([[], ["t", "nope"]])),
        "time": (st.just("t"), st.sampled_from(["y", "nope"])),
        "series_id": (st.just("s"), st.sampled_from(["nope", "t"])),
        "window": (st.integers(1, 12), st.integers(-2, 0) | st.integers(40, 400)),
        "horizon": (st.integers(0, 5), st.integers(-1, -1) | st.integers(40, 300)),
        "task": (st.just("regression"), st.sampled_from(["binary", "multiclass", "forecast"])),
        "scale": (st.sampled_from(["none", "standard", "minmax"]), st.just("robust")),
        "scale_target": (st.sampled_from(["none", "standard"]), st.just("log")),
        "split": (st.sampled_from(["temporal", "random"]), st.just("kfold")),
        "val_fraction": (st.floats(0.1, 0.5), st.floats(-0.5, 0) | st.floats(0.95, 1.5)),
        "target_transform": (st.sampled_from(["none", "difference"]), st.just("log")),
        "downsample": (st.just(1), st.integers(-1, 0)),
        "path": (st.just("data.csv"), st.sampled_from(["nope.csv", "data.txt", ".", ""])),
    },
    "model": {
        "cell": (st.sampled_from(["lstm", "gru", "rnn"]), st.just("tcn")),
        "hidden": (st.integers(1, 16), st.integers(-1, 0) | st.just(10**6)),
        "layers": (st.integers(1, 3), st.just(0)),
        "dropout": (st.floats(0, 0.9), st.floats(-0.5, -0.01) | st.floats(1, 1.5)),
        "bidirectional": (st.booleans(), st.just("maybe")),
        "output_activation": (st.sampled_from(["none", "sigmoid", "softmax", "relu", "tanh"]), st.just("gelu")),
        "init": (st.sampled_from(["default", "orthogonal", "xavier", "zeros", "normal:0.1"]), st.sampled_from(["normal:", "he"])),
        "forget_bias": (st.sampled_from(["default", 1.0, -3]), st.just("x")),
        "readout": (st.sampled_from(["last", "mean", "true-end"]), st.just("first")),
        "nonlinearity": (st.just("tanh"), st.just("relu")),
    },
    "training": {
        "loss": (st.sampled_from(["mse", "mae", "huber", "bce"]), st.sampled_from(["ce", "hinge"])),
        "metrics": (st.sampled_from([[], ["accuracy"], ["mae"]]), st.just("mae")),
        "optimizer": (st.sampled_from(["adam", "adamw", "sgd", "rmsprop"]), st.just("lbfgs")),
        "lr": (st.floats(1e-6, 10) | st.just(1e6), st.floats(-1, 0)),
        "batch_size": (st.integers(1, 500), st.just(0)),
        "epochs": (st.integers(1, 50), st.just(0)),
        "clip_norm": (st.none() | st.floats(0.01, 5), st.floats(-1, 0)),
        "weight_decay": (st.floats(0, 1), st.floats(-1, -0.01)),
        "seed": (st.integers(0, 2**32 - 1), st.just(-1) | st.just(2**33)),
        "class_weights": (st.sampled_from(["none", "balanced"]), st.just("inverse")),
        "early_stopping": (st.none() | st.integers(1, 3), st.just(0)),
    },
}


@st.composite
def _section(draw, fields: dict[str, tuple[st.SearchStrategy, st.SearchStrategy]], required: tuple[str, ...] = ()) -> Any:
    if one_in(draw, 25):
        return draw(JUNK)  # the whole section is not a mapping
    out: dict[Any, Any] = {}
    names = [*required, *draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=7, unique=True))]
    for name in dict.fromkeys(names):
        valid, invalid = fields[name]
        out[name] = draw(JUNK) if one_in(draw, 30) else draw(invalid) if one_in(draw, 25) else draw(valid)
    if one_in(draw, 15):
        out[draw(st.sampled_from(["windw", "lr", "hidden_size", "epoch"]))] = draw(JUNK)  # misplaced or misspelt key
    return out


@st.composite
def setup_dict(draw) -> dict[str, Any]:
    """A setup file's content: sections with valid values, wrong types, unknown keys."""
    raw = {name: draw(_section(fields, ("target",) if name == "data" else ())) for name, fields in FIELDS.items()
           if not one_in(draw, 8)}
    if one_in(draw, 20):
        raw[draw(st.sampled_from(["optimizer", "Data", "extra"]))] = draw(JUNK)
    return raw


YAML_TEXT = st.text(alphabet=st.sampled_from(list("data:model{}[]-#'\" \n\t,:&*!|>%@`0123456789window")), max_size=60)
