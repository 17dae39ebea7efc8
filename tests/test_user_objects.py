"""Nothing the user owns is changed: the caller's random state, DataFrame, setup and files
(``examine`` and the command line), the user's data, loss, model modes and hooks
(``examine_model``), and the random streams of a watched loop (``watch``).

tests/test_examine_model.py already checks the user's weights, gradients, optimizer
moments, eval mode and torch/NumPy/Python random state under ``examine_model``, and
tests/test_watch.py that a watched loop trains exactly like an unwatched one (weights,
torch random state, optimizer state, hooks); these tests fill the gaps.
"""

from __future__ import annotations

import random
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lstm_doctor
from lstm_doctor import cli, examine_model, watch
from lstm_doctor.budget import BUDGETS
from small_cli import SMALL


def random_states() -> tuple:
    return torch.get_rng_state(), np.random.get_state(), random.getstate()


def same_states(a: tuple, b: tuple) -> bool:
    return (torch.equal(a[0], b[0]) and a[1][0] == b[1][0] and np.array_equal(a[1][1], b[1][1]) and a[1][2:] == b[1][2:]
            and a[2] == b[2])


def test_examine_leaves_the_callers_random_state_frame_and_setup_as_they_were(sunspots_frame):
    frame = sunspots_frame.copy()
    setup = lstm_doctor.setup_from(frame, data={"target": "sunspots", "time": "year", "window": 8, "scale": "standard"},
                                   model={"hidden": 8, "dropout": 0.2}, training={"epochs": 3})
    config = setup.config.model_dump()
    tensors = [t.clone() for w in (setup.data.train, setup.data.val) for t in (w.inputs, w.targets, w.starts)]
    torch.manual_seed(123), np.random.seed(123), random.seed(123)
    before = random_states()

    report = lstm_doctor.examine(setup, budget=SMALL)

    assert report.status == "complete"
    # Before the fix, examine left the generators seeded by its last probe.
    assert same_states(before, random_states())
    pd.testing.assert_frame_equal(frame, sunspots_frame)
    assert setup.config.model_dump() == config
    assert all(torch.equal(a, b) for a, b in zip(tensors, (t for w in (setup.data.train, setup.data.val)
                                                           for t in (w.inputs, w.targets, w.starts))))
    setup.new_model()  # the check can fail: building a model seeds the generators
    assert not same_states(before, random_states())


class Tagger(nn.Module):
    """A GRU classifier with dropout, counting its calls."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(1, 8, batch_first=True)
        self.drop = nn.Dropout(0.3)
        self.head = nn.Linear(8, 2)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.head(self.drop(self.rnn(x)[0][:, -1]))


def hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


def test_examine_model_leaves_the_users_data_modes_flags_loss_and_optimizer_settings(italy_power):
    x, y = italy_power["X"].copy(), italy_power["y"].astype(int) - 1
    xv, yv = italy_power["X_val"][:200].copy(), italy_power["y_val"][:200].astype(int) - 1
    x0, y0, xv0 = x.copy(), y.copy(), xv.copy()
    torch.manual_seed(0)
    model = Tagger()
    model.rnn.bias_hh_l0.requires_grad_(False)  # a deliberate choice of the user's
    model.drop.eval()  # a mode set on purpose on one module
    flags = [p.requires_grad for p in model.parameters()]
    modes = [m.training for m in model.modules()]
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05, momentum=0.9)
    settings = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    loss = nn.CrossEntropyLoss(label_smoothing=0.1)
    loader = DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=16)  # shares x's memory

    report = examine_model(model, loader, (xv, yv), loss=loss, optimizer=optimizer, task="multiclass", epochs=5,
                           budget=SMALL)

    assert report.status == "complete"
    assert np.array_equal(x, x0) and np.array_equal(y, y0) and np.array_equal(xv, xv0)
    assert model.calls == 0 and hooks(model) == 0  # only copies were run
    assert [p.requires_grad for p in model.parameters()] == flags and [m.training for m in model.modules()] == modes
    assert loss.reduction == "mean" and loss.label_smoothing == 0.1
    assert [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups] == settings
    assert not optimizer.state  # never stepped


def loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor, w=None) -> None:
    """A user's loop that draws from NumPy (shuffling) and Python's random (augmentation)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):
        for start in range(0, len(x), 16):
            idx = torch.from_numpy(np.random.permutation(len(x))[:16])
            xb = x[idx] * (1 + 0.05 * random.random())
            optimizer.zero_grad()
            out = model(xb)
            loss = nn.functional.cross_entropy(out, y[idx])
            loss.backward()
            optimizer.step()
            if w is not None:
                w.log(loss, out, y[idx])


def test_a_watched_loop_draws_the_same_numpy_and_python_random_numbers(italy_power):
    x, y = torch.tensor(italy_power["X"]), torch.tensor(italy_power["y"].astype(int) - 1)
    ends = []
    for watched in (False, True):
        torch.manual_seed(0), np.random.seed(0), random.seed(0)
        model = Tagger()
        if watched:
            with watch(model, every=2) as w:  # every other step: many chances to draw
                loop(model, x, y, w)
            w.report()
        else:
            loop(model, x, y)
        ends.append((random_states(), [p.detach().clone() for p in model.parameters()], model.training))
    (plain, plain_weights, plain_mode), (seen, seen_weights, seen_mode) = ends
    assert same_states(plain, seen)
    assert all(torch.equal(a, b) for a, b in zip(plain_weights, seen_weights))
    assert plain_mode and seen_mode


def test_the_command_line_writes_its_reports_and_touches_nothing_else(monkeypatch, capsys, tmp_path, sunspots_frame):
    monkeypatch.setitem(BUDGETS, "quick", SMALL)
    sunspots_frame.to_csv(tmp_path / "sunspots.csv", index=False)
    (tmp_path / "setup.yaml").write_text(yaml.safe_dump({"data": {"path": "sunspots.csv", "target": "sunspots", "time": "year",
                                                                  "window": 8}, "model": {"hidden": 8}, "training": {"epochs": 3}}))
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()}
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["lstm-doctor", "examine", "--config", "setup.yaml", "--json", "out/report.json",
                                      "--html", "out/report.html", "--write-setup", "out/fixed.yaml"])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code in (0, 1), capsys.readouterr().err
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir() if p.name != "out"}
    assert after == before
    # No --treat: no recommended setup is written, only the two reports (and no temporary file).
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.html", "report.json"]
