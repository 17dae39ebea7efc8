"""The Lightning and Keras callbacks report the training-dynamics findings examine_model reports, on the same faults.

One faulty setup per training-dynamics code, on bundled real data (tests/user_models.py), written three ways as
users write them: a PyTorch model for examine_model, the same model in a LightningModule, and its Keras twin
(TensorFlow backend for every case; Keras' torch backend, whose recurrent layers run step by step in Python on
a CPU, for one fault and the healthy fit):

- raw: sunspot numbers as counted (0-190) into an LSTM: saturated gates (T305), collapsed predictions (T307).
- explode: a tanh RNN under SGD at 0.5: divergence (T301), exploding gradients (T304).
- vanish: four stacked LSTMs initialized from N(0, 0.01): the first layer gets thousands of times smaller
  gradients than the last (T303).
- overfit: next quarter's GDP growth from 8 quarters of 12 macro series (154 windows) into an LSTM(32) for 40
  epochs: the validation loss rises from its lowest point while the training loss falls to ~0 (T308).

Each callback must find the codes listed for the fault, and no training-dynamics code examine_model does not
find. What a callback cannot see, by design, is left out of the expected codes:
- neither callback retrains, so T301 from the learning-rate range test or the small-batch test, and T302, are
  examine_model's alone; the callbacks give T301 when the loss diverges;
- neither callback fits baselines, so T303 across time (memory shorter than the data's period while the model
  does no better than seasonal naive) is examine_model's alone; the callbacks give T303 across layers;
- Keras hands callbacks no gradients: its callback computes them on a probe batch every ``every`` batches, so
  a gradient spike between two of those (T304) is seen only when the gradients stay large or turn non-finite.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lstm_doctor import examine_model
from lstm_doctor.budget import get_budget
from user_models import Classifier, Forecaster, criticals, macro_growth_arrays, sunspot_arrays

DYNAMICS = {"T301", "T302", "T303", "T304", "T305", "T306", "T307", "T308"}
# examine_model's quick budget without the shuffled-target control: that probe judges the data (D110) and
# feeds no training-dynamics rule, and it would take half of each examination here.
NO_SIGNAL = replace(get_budget("quick"), signal_fits=0)
EVERY = 10  # the sampled steps of every route: tests/keras_fits.py samples as often


def _small_init(model: nn.Module) -> nn.Module:
    for p in model.rnn.parameters():  # "initialize the weights small": N(0, 0.01)
        nn.init.normal_(p, std=0.01)
    return model


@dataclass(frozen=True)
class Case:
    data: str  # "sunspots", "raw sunspots" or "macro"
    model: Callable[[], nn.Module]
    optimizer: Callable[..., torch.optim.Optimizer]
    epochs: int
    expected: frozenset[str]  # what every route must find


CASES = {
    "raw": Case("raw sunspots", lambda: Forecaster(nn.LSTM), lambda p: torch.optim.Adam(p, lr=1e-3), 10,
                frozenset({"T305", "T307"})),
    "explode": Case("sunspots", lambda: Forecaster(nn.RNN), lambda p: torch.optim.SGD(p, lr=0.5), 10,
                    frozenset({"T301", "T304"})),
    "vanish": Case("sunspots", lambda: _small_init(Forecaster(nn.LSTM, layers=4)), lambda p: torch.optim.Adam(p, lr=1e-3), 10,
                   frozenset({"T303"})),
    "overfit": Case("macro", lambda: Classifier(nn.LSTM, 12, 1, hidden=32), lambda p: torch.optim.Adam(p, lr=1e-2), 25,
                    frozenset({"T308"})),
    "healthy": Case("sunspots", lambda: Forecaster(nn.GRU), lambda p: torch.optim.Adam(p, lr=1e-2), 10, frozenset()),
}
FAULTS = [c for c in CASES if CASES[c].expected]


@pytest.fixture(scope="module")
def arrays(sunspots_frame, macro_frame) -> dict[str, tuple]:
    """Each case's (x, y), (x_val, y_val) as NumPy arrays: the same windows for every route."""
    sunspots = sunspot_arrays(sunspots_frame)
    raw = tuple(tuple(a * 50 + 80 for a in split) for split in sunspots)  # sunspot numbers as counted, nothing scaled
    data = {"sunspots": sunspots, "raw sunspots": raw, "macro": macro_growth_arrays(macro_frame)}
    return {name: data[case.data] for name, case in CASES.items()}


def tensors(split: tuple) -> tuple:
    return tuple(tuple(torch.tensor(a) for a in part) for part in split)


@pytest.fixture(scope="module")
def examined(arrays) -> dict[str, set[str]]:
    """examine_model's training-dynamics codes for each fault: the reference."""
    found = {}
    for name in FAULTS:
        case = CASES[name]
        torch.manual_seed(0)
        model = case.model()
        train, val = tensors(arrays[name])
        report = examine_model(model, train, val, loss=nn.MSELoss(), optimizer=case.optimizer(model.parameters()),
                               task="regression", epochs=case.epochs, batch_size=16, budget=NO_SIGNAL)
        found[name] = set(report.codes()) & DYNAMICS
    return found


def lightning_fit(arrays, name: str, callbacks: list, seed: int = 0):
    import lightning.pytorch as L

    case = CASES[name]

    class LitForecaster(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = case.model()

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return nn.functional.mse_loss(self(x), y)

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", nn.functional.mse_loss(self(x), y))

        def configure_optimizers(self):
            return case.optimizer(self.parameters())

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    L.seed_everything(seed, verbose=False)
    module = LitForecaster()
    train, val = tensors(arrays[name])
    trainer = L.Trainer(max_epochs=case.epochs, callbacks=callbacks, enable_progress_bar=False, enable_model_summary=False,
                        logger=False, enable_checkpointing=False, deterministic=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, DataLoader(TensorDataset(*train), batch_size=16, shuffle=True), DataLoader(TensorDataset(*val), batch_size=64))
    return module


def test_every_fault_gives_examine_model_its_code(examined):
    """The reference itself: each fault is what it claims to be."""
    for name in FAULTS:
        assert CASES[name].expected <= examined[name], (name, examined[name])


@pytest.mark.parametrize("name", FAULTS)
def test_lightning_reports_the_dynamics_examine_model_reports(arrays, examined, name):
    from lstm_doctor.integrations.lightning import DoctorCallback

    # Sampling every EVERY steps exactly: the default spacing follows measured time, and this comparison must repeat.
    callback = DoctorCallback(every=EVERY, max_overhead=None)
    lightning_fit(arrays, name, [callback])
    got = set(callback.report.codes()) & DYNAMICS
    assert CASES[name].expected <= got <= examined[name], (got, examined[name])
    ev = callback.watch.evidence
    steps = CASES[name].epochs * -(-len(arrays[name][0][0]) // 16)
    assert ev.optimizer_steps == steps and len(ev.val_history) == CASES[name].epochs  # every step and validation of the fit was seen
    assert ev.steps == arrays[name][0][0].shape[1]  # "steps" is the sequence length, as for examine_model (D109 reads it)


def test_lightning_healthy_fit_is_clean_and_trains_as_without_the_callback(arrays, tmp_path):
    from lstm_doctor.integrations.lightning import DoctorCallback

    path = tmp_path / "report.json"
    callback = DoctorCallback(every=5, path=path)  # the default spacing: it may widen, and must leave no trace either way
    watched = lightning_fit(arrays, "healthy", [callback])
    plain = lightning_fit(arrays, "healthy", [])
    assert not criticals(callback.report), callback.report.findings
    assert json.loads(path.read_text())["setup"]["source"] == "lightning"
    assert all(torch.equal(a, b) for a, b in zip(watched.state_dict().values(), plain.state_dict().values()))


# Keras' torch backend steps its recurrent layers in Python: one fault and the healthy fit there, every case on TensorFlow.
KERAS_CASES = {"tensorflow": list(CASES), "torch": ["explode", "healthy"]}


def keras_fits(arrays, tmp_path: Path, backend: str) -> dict:
    cases = KERAS_CASES[backend]
    data = tmp_path / "cases.npz"
    np.savez(data, **{f"{name}.{key}": a for name in cases for key, a in zip(("x", "y", "x_val", "y_val"),
                                                                             (*arrays[name][0], *arrays[name][1]))},
             **{f"{name}.epochs": CASES[name].epochs for name in cases})
    here = Path(__file__).parent
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": os.pathsep.join(filter(None, [str(here), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, str(here / "keras_fits.py"), str(data), *cases], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", list(KERAS_CASES))
def test_keras_reports_the_dynamics_examine_model_reports(arrays, examined, tmp_path, backend):
    pytest.importorskip("keras")
    pytest.importorskip("tensorflow" if backend == "tensorflow" else "torch")
    fits = keras_fits(arrays, tmp_path, backend)
    for name, fit in fits.items():
        got = set(fit["codes"]) & DYNAMICS
        if name == "healthy":
            assert "critical" not in fit["severities"], fit
        else:
            assert CASES[name].expected <= got <= examined[name], (name, got, examined[name])
        steps = CASES[name].epochs * -(-len(arrays[name][0][0]) // 16)
        assert fit["sequence"] == arrays[name][0][0].shape[1]
        assert fit["steps"] == steps and fit["validations"] == CASES[name].epochs and fit["written"], (name, fit)
    assert fits["healthy"]["memory"] and (backend != "tensorflow" or fits["raw"]["gates"])
