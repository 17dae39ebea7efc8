"""Keras fits of the faulty and healthy setups of tests/test_integrations.py, in a process of their own (one backend each).

Usage: KERAS_BACKEND=tensorflow python tests/keras_fits.py CASES.npz [case ...]
CASES.npz holds each case's windows as ``<case>.x``, ``<case>.y``, ``<case>.x_val``,
``<case>.y_val`` and its epochs as ``<case>.epochs``: the very arrays the PyTorch
routes train on. Prints one JSON line: {case: {"codes": [...], "severities": [...], "steps": n, ...}}.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)
BATCH, EVERY = 16, 10


def model_for(case: str, steps: int, features: int) -> keras.Model:
    """What a Keras user writes for each case (the PyTorch models of test_integrations.py)."""
    small = keras.initializers.RandomNormal(stddev=0.01)  # "initialize the weights small", N(0, 0.01)
    layers = {
        "raw": [keras.layers.LSTM(16)],
        "explode": [keras.layers.SimpleRNN(16)],
        "vanish": [keras.layers.LSTM(16, return_sequences=i < 3, kernel_initializer=small, recurrent_initializer=small,
                                     bias_initializer=small, unit_forget_bias=False)
                   for i in range(4)],
        "overfit": [keras.layers.LSTM(32)],
        "healthy": [keras.layers.GRU(16)],
    }[case]
    model = keras.Sequential([keras.Input((steps, features)), *layers, keras.layers.Dense(1)])
    optimizer = {"explode": keras.optimizers.SGD(0.5), "vanish": keras.optimizers.Adam(1e-3),
                 "raw": keras.optimizers.Adam(1e-3)}.get(case, keras.optimizers.Adam(1e-2))
    model.compile(optimizer=optimizer, loss="mse")
    return model


def fit(arrays: np.lib.npyio.NpzFile, case: str) -> dict:
    from lstm_doctor.integrations.keras import DoctorCallback

    x, y, xv, yv = (arrays[f"{case}.{k}"] for k in ("x", "y", "x_val", "y_val"))
    keras.utils.set_random_seed(0)
    model = model_for(case, *x.shape[1:])
    probe = (x[:32], y[:32]) if keras.backend.backend() == "tensorflow" else None  # torch: the first batch is caught
    path = os.path.join(tempfile.mkdtemp(), "report.json")
    callback = DoctorCallback(every=EVERY, probe=probe, path=path)
    model.fit(x, y, validation_data=(xv, yv), epochs=int(arrays[f"{case}.epochs"]), batch_size=BATCH, verbose=0,
              callbacks=[callback])
    ev = callback.ctx.evidence
    with open(path) as fh:
        written = json.load(fh)
    return {"codes": callback.report.codes(), "severities": [f.severity for f in callback.report.findings],
            "steps": ev["optimizer_steps"], "sequence": ev.get("steps"), "validations": len(ev["val_history"]), "gates": bool(ev.get("gate_saturation")),
            "memory": ev.get("memory_length") is not None, "written": written["findings"] == callback.report.to_dict()["findings"]}


if __name__ == "__main__":
    with np.load(sys.argv[1]) as data:
        print(json.dumps({case: fit(data, case) for case in sys.argv[2:]}))
