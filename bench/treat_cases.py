"""Does ``--treat`` repair what it should, and only that? Five real cases, end to end.

Run as ``python -m bench.treat_cases [--budget quick] [--cases raw-co2,...]``; the
figures go to bench/RESULTS.md (section "Treatment cases").

- raw-co2: weekly CO2 at Mauna Loa fed raw (~340 ppm) to an LSTM, a window of
  52 weeks. Expect a verified scaling fix beating the untreated setup and the
  input-free baseline; the trending series also gets target differencing, which
  should beat persistence.
- lr-too-high: ItalyPowerDemand, standardized, Adam at lr 1.0. Expect a verified
  learning-rate fix.
- long-sequences: OSULeaf (427-step leaf outlines, its 200 training cases), an
  LSTM read over the full length; long-sequences-rnn: the same with a plain
  RNN. Expect a verified downsampling fix for both.
- no-signal: sunspots' windows with a shuffled target. Expect no verified
  treatment (no false "fix").
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import lstm_doctor


def _aeon(name: str) -> dict[str, np.ndarray]:
    import aeon.datasets as ds

    X, y = getattr(ds, name)(split="train")
    Xv, yv = getattr(ds, name)(split="test")
    t = lambda a: np.transpose(a, (0, 2, 1)).astype(np.float32)
    return {"X": t(X), "y": y, "X_val": t(Xv), "y_val": yv}


def _co2():
    import statsmodels.api as sm

    frame = sm.datasets.co2.load_pandas().data.interpolate(limit_direction="both").rename_axis("date").reset_index()
    return lstm_doctor.setup_from(frame, data={"target": "co2", "time": "date", "window": 52},
                                  model={"hidden": 32}, training={"epochs": 10})


def _lr_high():
    return lstm_doctor.setup_from(_aeon("load_italy_power_demand"), data={"task": "binary", "scale": "standard"},
                                  model={"hidden": 32}, training={"loss": "bce", "lr": 1.0, "epochs": 30})


def _long(cell: str):
    return lambda: lstm_doctor.setup_from(_aeon("load_osuleaf"), data={"task": "multiclass", "scale": "standard"},
                                          model={"cell": cell, "hidden": 32}, training={"loss": "ce", "epochs": 20})


def _no_signal():
    import statsmodels.api as sm

    frame = sm.datasets.sunspots.load_pandas().data.rename(columns={"SUNACTIVITY": "sunspots"})
    frame["target"] = np.random.default_rng(0).permutation(frame["sunspots"].to_numpy())
    return lstm_doctor.setup_from(frame, data={"target": "target", "features": ["sunspots"], "window": 11,
                                               "scale": "standard"}, model={"hidden": 16}, training={"epochs": 20})


CASES = {"raw-co2": _co2, "lr-too-high": _lr_high, "long-sequences": _long("lstm"), "long-sequences-rnn": _long("rnn"),
         "no-signal": _no_signal}


def run(name: str, budget: str) -> dict:
    t0 = time.perf_counter()
    report = lstm_doctor.examine(CASES[name](), budget=budget, treat=True)
    return {
        "case": name,
        "seconds": round(time.perf_counter() - t0, 1),
        "codes": report.codes(),
        "baselines": {k: {m: v for m, v in b.items() if m in ("rmse", "accuracy", "balanced_accuracy")}
                      for k, b in report.baselines.items()},
        "treatments": [{"name": t["name"], "verified": t["verified"], "before": round(t["metric"]["before"]["mean"], 4),
                        "after": round(t["metric"]["after"]["mean"], 4), "p": round(t["metric"]["p_value"], 4),
                        "metric": t["metric"]["name"]} for t in report.treatments],
        "recommended": report.recommended_setup is not None,
        "notes": report.notes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="quick")
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    for name in args.cases.split(","):
        print(json.dumps(run(name, args.budget)), flush=True)


if __name__ == "__main__":
    main()
