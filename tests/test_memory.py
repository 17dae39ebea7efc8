"""Memory: probes read targets without gathering every window's inputs (on a series those
are ``window`` times the rows). bench/memory.py measures a whole examination on a
million rows; these tests keep the fixes in place.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import lstm_doctor
from lstm_doctor.data.windows import Windows
from lstm_doctor.probes import ProbeContext
from lstm_doctor.probes.baselines import baselines
from lstm_doctor.probes.initial_loss import initial_loss
from small_cli import SMALL

STATUS = Path("/proc/self/status")


def test_labels_are_the_targets_and_lengths_that_all_gives(sunspots_frame, italy_power):
    series = lstm_doctor.setup_from(sunspots_frame, data={"target": "sunspots", "window": 8, "horizon": 3}).data.val
    lengths = torch.tensor([24 - i % 5 for i in range(len(italy_power["X"]))])
    padded = Windows(torch.from_numpy(italy_power["X"]), torch.arange(len(lengths)), lengths=lengths)
    for windows in (series, padded):
        _, y, n = windows.all()
        labels, n_labels = windows.labels()
        assert torch.equal(labels, y) and (n is None and n_labels is None or torch.equal(n, n_labels))
        assert np.array_equal(windows.target_values(), y.numpy())


def _peak() -> int:
    return int(re.search(r"^VmHWM:\s+(\d+) kB", STATUS.read_text(), re.M).group(1)) * 1024


def _setup(rows: int) -> lstm_doctor.Setup:
    """A random walk with 4 features (memory depends on the shape, not the values)."""
    walk = np.cumsum(np.random.default_rng(0).normal(size=(rows, 4)), axis=0).astype(np.float32)
    return lstm_doctor.setup_from(pd.DataFrame(walk, columns=["a", "b", "c", "d"]), data={"target": "a", "window": 48},
                                  model={"hidden": 8})


@pytest.mark.skipif(not STATUS.exists(), reason="reads the kernel's peak-memory counter (Linux)")
def test_baselines_and_initial_loss_never_gather_every_window():
    for probe in (baselines, initial_loss):
        probe(ProbeContext(_setup(2_000), SMALL))  # libraries and pools loaded on first use are not the point
    setup = _setup(400_000)
    gathered = len(setup.data.train) * 48 * 4 * 4  # what train.all() would hold: 250 MB
    for probe in (baselines, initial_loss):
        added = []
        for _ in range(2):  # the lesser of two: the allocator's pools, warm from the first, are no part of the probe
            Path("/proc/self/clear_refs").write_text("5")  # the peak counter restarts from here
            start = int(re.search(r"^VmRSS:\s+(\d+) kB", STATUS.read_text(), re.M).group(1)) * 1024
            probe(ProbeContext(setup, SMALL))
            added.append(_peak() - start)
        assert min(added) < gathered / 4, (probe.__name__, [a // 2**20 for a in added])
