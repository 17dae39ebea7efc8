"""Reading CSV, Parquet and NPZ files into a Setup, and every way a file can be unusable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstm_doctor.data.readers import read_npz, read_table
from lstm_doctor.errors import InputError
from lstm_doctor.setups import load_setup


@pytest.fixture
def co2_csv(tmp_path, co2_frame) -> Path:
    path = tmp_path / "co2.csv"
    co2_frame.to_csv(path, index=False)
    return path


def test_csv_and_parquet_give_the_same_windows(tmp_path, co2_csv, co2_frame):
    parquet = tmp_path / "co2.parquet"
    co2_frame.to_parquet(parquet)
    a = load_setup(data=co2_csv, target="co2", time="date", window=12)
    b = load_setup(data=parquet, target="co2", time="date", window=12)
    assert len(a.data.train) == len(b.data.train) == round(2284 * 0.8) - 12 - 1 + 1
    assert np.allclose(a.data.train.all()[0].numpy(), b.data.train.all()[0].numpy())
    assert a.data.source["path"].endswith("co2.csv") and a.data.feature_names == ["co2"]


def test_setup_file_reads_data_relative_to_its_folder(tmp_path, co2_csv, monkeypatch):
    (tmp_path / "setup.yaml").write_text("data: {path: co2.csv, target: co2, time: date, window: 8}\n")
    monkeypatch.chdir("/")
    setup = load_setup(tmp_path / "setup.yaml")
    assert setup.data.steps == 8


def test_csv_with_byte_order_mark(tmp_path, co2_frame):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + co2_frame.to_csv(index=False).encode())
    assert load_setup(data=path, target="co2", time="date", window=4).data.feature_names == ["co2"]


def test_npz_with_given_validation(tmp_path, italy_power):
    path = tmp_path / "italy.npz"
    np.savez(path, **italy_power)
    setup = load_setup(data=path, task="binary")
    assert (len(setup.data.train), len(setup.data.val), setup.data.steps) == (67, 1029, 24)
    assert setup.data.split == "given" and setup.data.classes == ["1", "2"]


# ---------------------------------------------------------------- bad files


def _write(tmp_path: Path, name: str, content: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


@pytest.mark.parametrize("name, content, expected", [
    ("empty.csv", "", "is empty"),
    ("blank.csv", "\n\n\n", "is empty"),
    ("header.csv", "time,load\n", "header but no data rows"),
    ("dup.csv", "a,a,b\n1,2,3\n", r"duplicate column names \['a'\]"),
    ("ragged.csv", "a,b\n1,2\n3,4,5\n", "could not be parsed as CSV"),
    ("latin.csv", "name,v\nd\xe9bit,1\n".encode("latin-1"), "is not UTF-8"),
    ("empty.parquet", b"", "could not be read as PARQUET"),
    ("junk.parquet", b"PAR1 not really", "could not be read as PARQUET"),
])
def test_bad_table_files(tmp_path, name, content, expected):
    with pytest.raises(InputError, match=expected):
        read_table(_write(tmp_path, name, content))


def test_parquet_header_only(tmp_path):
    path = tmp_path / "none.parquet"
    pd.DataFrame({"a": pd.Series([], dtype=float)}).to_parquet(path)
    with pytest.raises(InputError, match="header but no data rows"):
        read_table(path)


@pytest.mark.parametrize("make, expected", [
    (lambda p: None, "does not exist"),
    (lambda p: p.mkdir(), "is a folder"),
])
def test_missing_path_or_folder(tmp_path, make, expected):
    make(tmp_path / "data.csv")
    with pytest.raises(InputError, match=expected):
        read_table(tmp_path / "data.csv")


def test_unsupported_suffix(tmp_path):
    with pytest.raises(InputError, match="reads .csv, .parquet and .npz"):
        read_table(_write(tmp_path, "data.xlsx", "a\n1\n"))


def _npz(tmp_path: Path, **arrays) -> Path:
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return path


def test_npz_key_errors(tmp_path):
    X, y = np.zeros((4, 3, 1)), np.zeros(4)
    with pytest.raises(InputError, match=r"lacks array\(s\) \['y'\]; it holds \['X', 'labels'\]"):
        read_npz(_npz(tmp_path, X=X, labels=y))
    with pytest.raises(InputError, match=r"unexpected array\(s\) \['extra'\]"):
        read_npz(_npz(tmp_path, X=X, y=y, extra=y))
    with pytest.raises(InputError, match="only one of X_val and y_val"):
        read_npz(_npz(tmp_path, X=X, y=y, X_val=X))


def test_npz_that_is_not_an_archive(tmp_path):
    np.save(tmp_path / "one.npy", np.zeros(3))
    (tmp_path / "one.npy").rename(tmp_path / "one.npz")
    with pytest.raises(InputError, match="single array, not an .npz archive"):
        read_npz(tmp_path / "one.npz")
    with pytest.raises(InputError, match="could not be read as .npz"):
        read_npz(_write(tmp_path, "text.npz", "X,y\n1,2\n"))


def test_damaged_npz(tmp_path):
    path = tmp_path / "ok.npz"
    np.savez_compressed(path, X=np.random.default_rng(0).normal(size=(20, 5, 2)), y=np.arange(20.0))
    blob = bytearray(path.read_bytes())
    outcomes = set()
    for at in range(0, len(blob), 11):  # flip one byte at a time across the whole archive
        damaged = bytearray(blob)
        damaged[at] ^= 0xFF
        path.write_bytes(bytes(damaged))
        try:
            read_npz(path)
            outcomes.add("read")
        except InputError:
            outcomes.add("InputError")
    assert "InputError" in outcomes and outcomes <= {"read", "InputError"}


def test_object_arrays_are_refused(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, X=np.array([[1, "a"]], dtype=object), y=np.zeros(1))
    with pytest.raises(InputError, match="object arrays are not supported"):
        read_npz(path)


# ---------------------------------------------------------------- columns and windows


@pytest.mark.parametrize("options, expected", [
    (dict(target="co3"), r"target column\(s\) \['co3'\] not found. The file has columns \['date', 'co2'\]"),
    (dict(target="co2", features=["co2", "temp"]), r"feature column\(s\) \['temp'\] not found"),
    (dict(target="co2", time="when"), r"time/series_id column\(s\) \['when'\] not found"),
    (dict(target="co2", window=3000), "no complete window.*window \\+ horizon = 3001.*longest series has 2284 rows"),
    (dict(target="co2", window=1820), "the validation part has no complete window"),
    (dict(target="co2", features="date"), "feature column 'date' is not numeric \\(e.g. '1958-03-29'\\)"),
    (dict(target=None), "no target given"),
])
def test_column_and_window_errors(co2_csv, options, expected):
    with pytest.raises(InputError, match=expected):
        load_setup(data=co2_csv, **options)


def test_no_numeric_feature(tmp_path):
    path = _write(tmp_path, "text.csv", "when,what\n" + "".join(f"d{i},w{i}\n" for i in range(30)))
    with pytest.raises(InputError, match="no numeric feature column"):
        load_setup(data=path, target="what", task="multiclass", window=2)


def test_no_data_file_given():
    with pytest.raises(InputError, match="No data file was given"):
        load_setup(target="y")
