"""Readers for CSV, Parquet and NPZ files; every failure becomes an InputError."""

from __future__ import annotations

import csv
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from lstm_doctor.errors import InputError

TABLE_SUFFIXES = {".csv", ".parquet", ".pq"}
NPZ_KEYS = {"X", "y", "lengths", "X_val", "y_val", "lengths_val"}


def check_path(path: Path) -> None:
    if not path.exists():
        raise InputError(f"Data file {path} does not exist. Check the path (relative paths in a setup file are read from the setup file's folder).")
    if path.is_dir():
        raise InputError(f"{path} is a folder; give a .csv, .parquet or .npz file.")
    if path.suffix.lower() not in TABLE_SUFFIXES | {".npz"}:
        raise InputError(f"{path} has suffix '{path.suffix}'; lstm-doctor reads .csv, .parquet and .npz files.")


def _csv_header(path: Path) -> list[str]:
    """The CSV's header as written: pandas renames a repeated name ``a`` to ``a.1``."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return next(csv.reader(fh), [])


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file as a DataFrame with at least one row."""
    from pyarrow import ArrowException

    check_path(path)
    try:
        if path.suffix.lower() == ".csv":
            frame = pd.read_csv(path, encoding="utf-8-sig")
            header = _csv_header(path)
        else:
            frame = pd.read_parquet(path)
            header = [str(c) for c in frame.columns]
    except pd.errors.EmptyDataError:
        raise InputError(f"{path} is empty: it has no header and no rows.") from None
    except UnicodeDecodeError as err:
        raise InputError(f"{path} is not UTF-8 text (byte {err.start}: {err.reason}). Save it as UTF-8 CSV, or convert it to Parquet.") from None
    except pd.errors.ParserError as err:
        raise InputError(f"{path} could not be parsed as CSV: {str(err).strip()}. Rows must have as many fields as the header.") from None
    except (OSError, ValueError, ArrowException, csv.Error) as err:
        raise InputError(f"{path} could not be read as {path.suffix.lstrip('.').upper()}: {str(err).splitlines()[0] if str(err) else type(err).__name__}.") from None
    dup = sorted({c for c in header if header.count(c) > 1})
    if dup:
        raise InputError(f"{path} has duplicate column names {dup}; give each column a unique name.")
    if frame.shape[0] == 0:
        raise InputError(f"{path} has a header but no data rows.")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an .npz file: X, y and the optional lengths / validation arrays."""
    check_path(path)
    how = "Save it with numpy.savez(path, X=X, y=y); object arrays are not supported."
    try:
        loaded = np.load(path, allow_pickle=False)
        arrays = None
        if isinstance(loaded, np.lib.npyio.NpzFile):  # else a lone .npy array under an .npz name
            with loaded as archive:
                arrays = {k: archive[k] for k in archive.files}
    # A damaged archive fails in zipfile, zlib or numpy's header parser, by many names.
    except (OSError, ValueError, EOFError, NotImplementedError, zipfile.BadZipFile, zlib.error) as err:
        raise InputError(f"{path} could not be read as .npz ({type(err).__name__}: {err}). {how}") from None
    if arrays is None:
        raise InputError(f"{path} holds a single array, not an .npz archive of named arrays. {how}")
    unknown = sorted(set(arrays) - NPZ_KEYS)
    missing = sorted({"X", "y"} - set(arrays))
    if missing:
        raise InputError(f"{path} lacks array(s) {missing}; it holds {sorted(arrays)}. An .npz setup needs X (samples, steps, features) and y, optionally lengths, X_val, y_val, lengths_val.")
    if unknown:
        raise InputError(f"{path} holds unexpected array(s) {unknown}. Allowed names: {sorted(NPZ_KEYS)}.")
    if ("X_val" in arrays) != ("y_val" in arrays):
        raise InputError(f"{path} has only one of X_val and y_val; give both, or neither to let lstm-doctor split.")
    return arrays
