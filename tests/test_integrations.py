"""The Lightning and Keras callbacks report the training-dynamics findings examine_model reports, on the same faults.

Faults on the yearly sunspot windows (tests/test_examine_model.py): raw counts
(0-190) into an LSTM (saturated gates T305, collapsed predictions T307) and a
vanilla RNN under SGD at 0.5 (divergence T301, exploding gradients T304,
saturation T305). Each callback must find the codes it has evidence for and
no dynamics code examine_model does not find. Keras runs in a subprocess per
backend (the backend is fixed per process).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lstm_doctor import examine_model
from test_examine_model import Forecaster, criticals, sunspot_windows

DYNAMICS = {"T301", "T303", "T304", "T305", "T306", "T307", "T308"}
# What every route must find on each fault (the codes whose evidence all of them have).
EXPECTED = {"raw": {"T305", "T307"}, "explode": {"T301", "T304", "T305"}}
CELLS = {"raw": nn.LSTM, "explode": nn.RNN, "healthy": nn.GRU}
OPTIMIZERS = {"raw": lambda p: torch.optim.Adam(p, lr=1e-3), "explode": lambda p: torch.optim.SGD(p, lr=0.5),
              "healthy": lambda p: torch.optim.Adam(p, lr=1e-2)}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def windows(sunspots_frame, case: str):
    (x, y), (xv, yv) = sunspot_windows(sunspots_frame)
    if case == "raw":
        x, y, xv, yv = (t * 50 + 80 for t in (x, y, xv, yv))
    return (x, y), (xv, yv)


@pytest.fixture(scope="module")
def examined(sunspots_frame) -> dict[str, set[str]]:
    """examine_model's dynamics codes for each fault: the reference."""
    found = {}
    for case in EXPECTED:
        torch.manual_seed(0)
        model = Forecaster(CELLS[case])
        train, val = windows(sunspots_frame, case)
        report = examine_model(model, train, val, loss=nn.MSELoss(), optimizer=OPTIMIZERS[case](model.parameters()),
                               task="regression", epochs=10, batch_size=16)
        found[case] = set(report.codes()) & DYNAMICS
    return found


def lightning_fit(sunspots_frame, case: str, callbacks: list, seed: int = 0):
    import lightning.pytorch as L

    class LitForecaster(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = Forecaster(CELLS[case])

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return nn.functional.mse_loss(self(x), y)

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", nn.functional.mse_loss(self(x), y))

        def configure_optimizers(self):
            return OPTIMIZERS[case](self.parameters())

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    L.seed_everything(seed, verbose=False)
    module = LitForecaster()
    train, val = windows(sunspots_frame, case)
    trainer = L.Trainer(max_epochs=10, callbacks=callbacks, enable_progress_bar=False, enable_model_summary=False,
                        logger=False, enable_checkpointing=False, deterministic=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, DataLoader(TensorDataset(*train), batch_size=16, shuffle=True), DataLoader(TensorDataset(*val), batch_size=64))
    return module


@pytest.mark.parametrize("case", ["raw", "explode"])
def test_lightning_reports_the_dynamics_examine_model_reports(sunspots_frame, examined, case):
    from lstm_doctor.integrations.lightning import DoctorCallback

    callback = DoctorCallback(every=10)
    lightning_fit(sunspots_frame, case, [callback])
    got = set(callback.report.codes()) & DYNAMICS
    assert EXPECTED[case] <= examined[case], examined
    assert EXPECTED[case] <= got <= examined[case], (got, examined[case])
    ev = callback.watch.evidence
    assert ev.steps == 150 and len(ev.val_history) == 10  # every step and validation of the fit was seen


def test_lightning_healthy_fit_is_clean_and_trains_as_without_the_callback(sunspots_frame, tmp_path):
    from lstm_doctor.integrations.lightning import DoctorCallback

    path = tmp_path / "report.json"
    callback = DoctorCallback(every=5, path=path)
    watched = lightning_fit(sunspots_frame, "healthy", [callback])
    plain = lightning_fit(sunspots_frame, "healthy", [])
    assert not criticals(callback.report), callback.report.findings
    assert json.loads(path.read_text())["setup"]["source"] == "lightning"
    assert all(torch.equal(a, b) for a, b in zip(watched.state_dict().values(), plain.state_dict().values()))


def keras_fits(backend: str, *cases: str) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, str(Path(__file__).parent / "keras_fits.py"), *cases], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", ["tensorflow", "torch"])
def test_keras_reports_the_dynamics_examine_model_reports(examined, backend):
    pytest.importorskip("keras")
    pytest.importorskip("tensorflow" if backend == "tensorflow" else "torch")
    fits = keras_fits(backend, "raw", "explode", "healthy")
    for case, expected in EXPECTED.items():
        got = set(fits[case]["codes"]) & DYNAMICS
        assert expected <= got <= examined[case], (case, got, examined[case])
    assert "critical" not in fits["healthy"]["severities"], fits["healthy"]
    assert all(f["steps"] == 150 and f["validations"] == 10 and f["written"] for f in fits.values())
    assert fits["raw"]["gates"] and fits["healthy"]["memory"]
