"""Facts about already-windowed sequences (arrays ``(samples, steps, features)``).

Padding, sequence lengths, the layout of the axes, and whether the samples are
sliding windows of one series and overlap across the split. Facts only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# At most this many sequences are read for correlations and per-sequence ACFs.
SAMPLE_SEQUENCES = 2_000
# Windows "overlap" when they share this many consecutive steps (fewer when sequences are short).
FRAGMENT_STEPS = 8
# A run at the start or end counts as padding when this share of the sequences
# end (start) with at least two steps of the same repeated row.
PAD_SEQUENCE_SHARE = 0.10
# A repeated edge row of different values (padding scaled per feature) that also makes up
# more than this share of the real steps is data that repeats (a quantized sensor at rest).
MIXED_ROW_IN_DATA = 0.01


def _sample(n: int, size: int) -> np.ndarray:
    """Evenly spread indices, at most ``size`` of them."""
    return np.unique(np.linspace(0, n - 1, min(n, size)).astype(np.int64))


def _rows_equal(x: np.ndarray, row: np.ndarray) -> np.ndarray:
    """``(samples, steps)``: the step equals ``row`` feature by feature (NaN matches NaN)."""
    return ((x == row) | (np.isnan(x) & np.isnan(row))).all(axis=2)


def _single_value(values: np.ndarray) -> float | None:
    """The one value every entry holds (NaN counts as a value), or None."""
    if values.size == 0:
        return None
    first = values.flat[0]
    same = np.isnan(values).all() if np.isnan(first) else np.all(values == first)
    return float(first) if same else None


def _edge_run(eq: np.ndarray) -> np.ndarray:
    """Length of the run of True at the start of each row of ``eq``."""
    return np.where(eq.all(axis=1), eq.shape[1], np.argmin(eq, axis=1))


def _pad_candidate(x: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The commonest row at one edge and each sequence's run of it, if it looks like padding.

    The row, not one value: a pad value scaled feature by feature (standardized
    after padding) becomes a row of different values, the same at every padded step."""
    edge = np.ascontiguousarray(x[:, -1, :] if side == "post" else x[:, 0, :])
    keys = edge.view(np.dtype((np.void, edge.dtype.itemsize * edge.shape[1]))).ravel()  # rows as bytes: NaN == NaN
    _, first, counts = np.unique(keys, return_index=True, return_counts=True)
    row = edge[first[np.argmax(counts)]]
    eq = _rows_equal(x, row)
    run = _edge_run(eq[:, ::-1] if side == "post" else eq)
    if np.mean(run >= 2) < PAD_SEQUENCE_SHARE:
        return None
    return row, run


def padding(x: np.ndarray, lengths: np.ndarray | None) -> dict[str, Any]:
    """Padding structure of ``x`` ``(samples, steps, features)``.

    With ``lengths`` the padded steps are those past each length; the pad value is
    reported when they all hold one value. Without, padding is a run of one repeated
    row (all 0, -1 or NaN, or such a row scaled feature by feature) at the end ("post")
    or start ("pre") of at least 10% of the sequences, two steps or longer: how
    ``pad_sequences`` and zero-filled arrays look, before or after scaling.

    Returns ``side`` (post | pre | None), ``value`` (None when the pad row holds different
    values per feature, as after scaling the padded arrays), ``lengths_given``,
    ``padded_share`` (share of all steps that are padding), ``padded_sequences``
    (share of sequences with any), ``pad_value_in_data`` (share of the real steps
    that equal the pad row) and ``lengths`` (min / median / max real length).
    """
    n, steps, _ = x.shape
    none = {"side": None, "value": None, "lengths_given": False, "padded_share": 0.0, "padded_sequences": 0.0,
            "pad_value_in_data": None, "lengths": {"min": steps, "median": steps, "max": steps}}
    if lengths is not None:
        real = np.arange(steps)[None, :] < lengths[:, None]
        value = _single_value(x[~real])
        row = None if value is None else np.full(x.shape[2], value)
        side = "post" if (~real).any() else None
        run = steps - lengths
    else:
        found = [c for c in ((s, _pad_candidate(x, s)) for s in ("post", "pre")) if c[1] is not None]
        if not found:
            return none
        side, (row, run) = max(found, key=lambda c: c[1][1].sum())
        value = _single_value(row)  # None: a row of different values (padding scaled per feature)
        offsets = np.arange(steps)[None, :]
        real = offsets < (steps - run)[:, None] if side == "post" else offsets >= run[:, None]
    in_data = None
    if row is not None and real.any():
        in_data = float(_rows_equal(x, row)[real].mean())
        if lengths is None and value is None and in_data > MIXED_ROW_IN_DATA:
            return none
    real_lengths = steps - run
    return {
        "side": side,
        "value": value,
        "lengths_given": lengths is not None,
        "padded_share": float(run.sum() / (n * steps)),
        "padded_sequences": float(np.mean(run > 0)),
        "pad_value_in_data": in_data,
        "lengths": {"min": int(real_lengths.min()), "median": float(np.median(real_lengths)), "max": int(real_lengths.max())},
    }


def _adjacent_corr(a: np.ndarray, b: np.ndarray) -> float | None:
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if a.size < 3 or a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def layout(x: np.ndarray) -> dict[str, Any]:
    """Shape and smoothness of each axis, for telling (samples, steps, features) from (samples, features, steps).

    Along a real time axis neighbouring values are strongly correlated; along a
    feature axis usually not. ``adjacent_step_corr`` correlates x[:, t, f] with
    x[:, t+1, f], ``adjacent_feature_corr`` x[:, t, f] with x[:, t, f+1] (None where
    the axis has one entry).
    """
    s = x[_sample(len(x), SAMPLE_SEQUENCES)].astype(np.float64)
    _, steps, features = x.shape
    return {
        "steps": steps,
        "features": features,
        "adjacent_step_corr": _adjacent_corr(s[:, :-1, :].ravel(), s[:, 1:, :].ravel()) if steps > 1 else None,
        "adjacent_feature_corr": _adjacent_corr(s[:, :, :-1].ravel(), s[:, :, 1:].ravel()) if features > 1 else None,
    }


def sliding_window_share(x: np.ndarray) -> float | None:
    """Share of consecutive samples where sample i+1 is sample i moved on by one step.

    Near 1 means the samples are the stride-1 sliding windows of one series, in order.
    """
    if len(x) < 2 or x.shape[1] < 2:
        return None
    return float(np.mean((x[1:, :-1, :] == x[:-1, 1:, :]).all(axis=(1, 2))))


def first_feature_sequences(x: np.ndarray, lengths: np.ndarray | None, size: int = 100) -> list[np.ndarray]:
    """The first feature of up to ``size`` evenly spread sequences, padding cut off."""
    idx = _sample(len(x), size)
    return [x[i, : (lengths[i] if lengths is not None else x.shape[1]), 0] for i in idx]


def series_of_windows(x: np.ndarray) -> np.ndarray:
    """The first feature's series behind stride-1 sliding windows ``x``."""
    return np.concatenate([x[:, 0, 0], x[-1, 1:, 0]])


def _fragment_hashes(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """An exact hash of every run of ``k`` consecutive steps, and which runs vary (are not one repeated row).

    The float32 bit patterns are mixed with odd 64-bit multipliers (arithmetic wraps
    modulo 2**64), so equal runs hash equal and different runs practically never do.
    """
    rng = np.random.default_rng(12345)
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    feature_mix = rng.integers(1, 2**63, size=x.shape[2], dtype=np.uint64) | np.uint64(1)
    step_mix = rng.integers(1, 2**63, size=k, dtype=np.uint64) | np.uint64(1)
    row = (bits * feature_mix).sum(axis=2, dtype=np.uint64)
    m = x.shape[1] - k + 1
    frag = np.zeros((len(x), m), dtype=np.uint64)
    for j in range(k):
        frag += row[:, j : j + m] * step_mix[j]
    same_next = (x[:, 1:] == x[:, :-1]).all(axis=2)
    flat = np.cumsum(np.pad(same_next, ((0, 0), (1, 0))), axis=1)
    varies = (flat[:, k - 1 : k - 1 + m] - flat[:, :m]) < (k - 1)
    return frag, varies


def window_overlap(train: np.ndarray, val: np.ndarray) -> float | None:
    """Share of validation sequences whose later steps a training sequence also holds.

    A validation sequence leaks when some training sequence holds one of its runs
    of ``FRAGMENT_STEPS`` consecutive steps (half the sequence when shorter) at an
    earlier position than the validation sequence does: that training sequence
    starts later in time and reads this one's future. Sharing only the early
    steps (a training sequence that ends where validation begins) is history any
    forecast sees, not a leak. Runs of one repeated row (padding, flat stretches)
    are skipped. None for sequences under 4 steps or integer-valued inputs, where
    equal runs need not mean copied data.
    """
    steps = train.shape[1]
    if steps < 4 or np.all(train == np.round(train)):
        return None
    k = min(FRAGMENT_STEPS, steps // 2)
    t_hash, t_ok = _fragment_hashes(train, k)
    v = val[_sample(len(val), 5 * SAMPLE_SEQUENCES)]
    v_hash, v_ok = _fragment_hashes(v, k)
    # Each distinct training run with the earliest position it holds in any training sequence.
    # (Sorted lookups: np.isin hashes and is ~100x slower here.)
    positions = np.broadcast_to(np.arange(t_hash.shape[1]), t_hash.shape)[t_ok]
    hashes = t_hash[t_ok]
    if hashes.size == 0:
        return 0.0
    order = np.argsort(hashes, kind="stable")
    hashes, positions = hashes[order], positions[order]
    first = np.r_[0, np.flatnonzero(np.diff(hashes)) + 1]
    known, earliest = hashes[first], np.minimum.reduceat(positions, first)
    at = np.clip(np.searchsorted(known, v_hash), 0, known.size - 1)
    own = np.arange(v_hash.shape[1])[None, :]
    leak = (known[at] == v_hash) & v_ok & (earliest[at] < own)
    return float(leak.any(axis=1).mean())


def starts_overlap(train_starts: np.ndarray, val_starts: np.ndarray, span: int) -> float:
    """Share of validation windows (by start row) that a later training window reads into.

    A training window starting d rows after a validation window, 0 < d < window +
    horizon, reads that window's later rows and, as soon as d reaches the horizon,
    its target. Training windows that end before a validation window starts share
    nothing with it.
    """
    t = np.sort(train_starts)
    nxt = np.searchsorted(t, val_starts, side="right")
    after = t[np.clip(nxt, 0, len(t) - 1)] - val_starts
    return float(np.mean((nxt < len(t)) & (after > 0) & (after < span)))
