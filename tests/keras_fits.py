"""Faulty and healthy Keras fits on the sunspot windows, run in a subprocess per backend by test_integrations.py.

Usage: KERAS_BACKEND=tensorflow python tests/keras_fits.py raw explode healthy
Prints one JSON line: {case: {"codes": [...], "severities": [...], "steps": n, ...}}.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import statsmodels.api as sm  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


def windows(window: int = 22):
    """The standardized yearly sunspot series as sliding windows, as tests/test_examine_model.py builds them."""
    series = sm.datasets.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy(np.float32)
    cut = int(len(series) * 0.8)
    series = (series - series[:cut].mean()) / series[:cut].std()
    X = np.stack([series[i : i + window] for i in range(len(series) - window)])[:, :, None]
    y = series[window:, None]
    n = cut - window
    return X[:n], y[:n], X[n:], y[n:]


def model_for(case: str) -> keras.Model:
    cell = {"raw": keras.layers.LSTM, "explode": keras.layers.SimpleRNN, "healthy": keras.layers.GRU}[case]
    model = keras.Sequential([keras.Input((22, 1)), cell(16), keras.layers.Dense(1)])
    optimizer = {"raw": keras.optimizers.Adam(1e-3), "explode": keras.optimizers.SGD(0.5), "healthy": keras.optimizers.Adam(1e-2)}[case]
    model.compile(optimizer=optimizer, loss="mse")
    return model


def fit(case: str) -> dict:
    from lstm_doctor.integrations.keras import DoctorCallback

    x, y, xv, yv = windows()
    if case == "raw":  # sunspot numbers as counted (0-190), neither inputs nor target scaled
        x, y, xv, yv = (a * 50 + 80 for a in (x, y, xv, yv))
    keras.utils.set_random_seed(0)
    model = model_for(case)
    probe = (x[:32], y[:32]) if keras.backend.backend() == "tensorflow" else None  # torch: the first batch is caught
    path = os.path.join(tempfile.mkdtemp(), "report.json")
    callback = DoctorCallback(every=10, probe=probe, path=path)
    model.fit(x, y, validation_data=(xv, yv), epochs=10, batch_size=16, verbose=0, callbacks=[callback])
    ev = callback.ctx.evidence
    with open(path) as fh:
        written = json.load(fh)
    return {"codes": callback.report.codes(), "severities": [f.severity for f in callback.report.findings],
            "steps": ev["steps"], "validations": len(ev["val_history"]), "gates": bool(ev.get("gate_saturation")),
            "memory": ev.get("memory_length") is not None, "written": written["findings"] == callback.report.to_dict()["findings"]}


if __name__ == "__main__":
    print(json.dumps({case: fit(case) for case in sys.argv[1:]}))
