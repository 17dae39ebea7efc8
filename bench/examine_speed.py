"""How long ``examine --budget quick`` takes, against the DESIGN budget.

Run as ``python -m bench.examine_speed`` (options: ``--skip-full``, ``--calibrate``).

Two setups on real sensor data (aeon's Daphnet S06R02E0: accelerometers on a
walking person, 7,040 rows x 9 channels; we forecast the ankle's forward
acceleration one step ahead from the ankle's three axes and the thigh's forward
axis, standardized):

- typical: DESIGN's typical setup, 6,300 rows -> ~5,000 training windows of 48
  steps x 4 features, one 64-unit LSTM, Adam 1e-3, batch 32, 20 epochs.
  Budget: 30 s of wall time.
- large: the same data into a 2-layer 128-unit LSTM for 60 epochs, a training
  of well over 2.5 minutes. Budget: a fifth of the setup's own training time,
  which is estimated from 200 measured training steps (running it all would
  take an hour).

Wall time depends on what else the machine runs, so CPU time and the load
average are printed beside it; with ``--threads 1`` the CPU time is what the
wall time would be on an idle machine with one core. ``--calibrate`` compares the budget's cost model
(lstm_doctor/budget.py) with measured thread time per training step.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd
import torch

import lstm_doctor
from lstm_doctor.budget import Workload, get_budget

FEATURES = ["ankle_fwd", "ankle_vert", "ankle_lat", "thigh_fwd"]


def daphnet(rows: int = 6300) -> pd.DataFrame:
    """The first ``rows`` samples of Daphnet S06R02E0 (aeon), four accelerometer channels."""
    from aeon.datasets import load_daphnet_s06r02e0

    x, _ = load_daphnet_s06r02e0()
    return pd.DataFrame(np.asarray(x[:rows, :4], dtype=np.float32), columns=FEATURES)


def typical(frame: pd.DataFrame) -> lstm_doctor.Setup:
    return lstm_doctor.setup_from(frame, data={"target": "ankle_fwd", "window": 48, "scale": "standard"},
                                  model={"hidden": 64}, training={"epochs": 20})


def large(frame: pd.DataFrame) -> lstm_doctor.Setup:
    return lstm_doctor.setup_from(frame, data={"target": "ankle_fwd", "window": 48, "scale": "standard"},
                                  model={"hidden": 128, "layers": 2}, training={"epochs": 60})


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def examine_timed(setup: lstm_doctor.Setup) -> dict:
    (w0, c0) = clock()
    report = lstm_doctor.examine(setup, budget="quick")
    w1, c1 = clock()
    return {"wall_s": w1 - w0, "cpu_s": c1 - c0, "symptom": report.symptom, "status": report.status,
            "codes": [f.code for f in report.findings], "timing": report.timing}


def own_training_s(setup: lstm_doctor.Setup, measure_steps: int | None) -> tuple[float, float, str]:
    """Wall and CPU time of the setup's own training: all of it, or ``measure_steps`` steps scaled to the planned ones."""
    work = Workload.of(setup)
    w0, c0 = clock()
    setup.train(max_steps=measure_steps)
    w1, c1 = clock()
    scale, how = 1.0, "measured"
    if measure_steps is not None and measure_steps < work.planned_steps:
        scale, how = work.planned_steps / measure_steps, f"from {measure_steps} of {work.planned_steps} steps"
    return (w1 - w0) * scale, (c1 - c0) * scale, how


def calibrate() -> None:
    """Thread time per training step against the cost model, one thread, for a few shapes."""
    from lstm_doctor.config import ModelConfig
    from lstm_doctor.models import build_model

    torch.set_num_threads(1)
    print(f"{'hidden':>6} {'layers':>6} {'batch':>5} {'steps':>5} {'measured ms':>11} {'model ms':>8}")
    for hidden, layers, batch, steps in [(16, 1, 32, 48), (64, 1, 32, 48), (64, 1, 8, 48), (64, 1, 128, 48),
                                         (128, 1, 32, 48), (64, 2, 32, 48), (64, 1, 32, 150), (256, 1, 32, 48)]:
        model = build_model(ModelConfig(hidden=hidden, layers=layers), 4, 1)
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        x, y = torch.randn(batch, steps, 4), torch.randn(batch, 1)
        for i in range(23):
            if i == 3:
                t0 = time.thread_time()
            opt.zero_grad()
            ((model(x) - y) ** 2).mean().backward()
            opt.step()
        measured = (time.thread_time() - t0) / 20
        params = sum(p.numel() for p in model.parameters())
        work = Workload(params, layers, steps, batch, 0, 0, 0)
        print(f"{hidden:>6} {layers:>6} {batch:>5} {steps:>5} {measured * 1e3:>11.2f} {work.step_seconds() * 1e3:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-full", action="store_true", help="estimate the typical setup's training from 300 steps")
    parser.add_argument("--calibrate", action="store_true", help="only compare the cost model with measured steps")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.calibrate:
        calibrate()
        return
    frame = daphnet()
    budget = get_budget("quick")
    print(f"torch threads {torch.get_num_threads()}, load average before: {os.getloadavg()[0]:.2f}")
    for name, build, measure, limit in (("typical", typical, 300 if args.skip_full else None, None),
                                        ("large", large, 200, 0.2)):
        setup = build(frame)
        work = Workload.of(setup)
        own_wall, own_cpu, how = own_training_s(setup, measure)
        result = examine_timed(setup)
        print(f"\n{name}: {len(setup.data.train)} training windows x {setup.data.steps} steps x "
              f"{setup.data.n_features} features, {work.params:,} parameters, {work.planned_steps} planned steps")
        print(f"  own training ({how}): {own_wall:.1f} s wall, {own_cpu:.1f} s CPU; "
              f"cost model: {work.training_seconds():.1f} s")
        for clock_name, own, took in (("wall", own_wall, result["wall_s"]), ("CPU", own_cpu, result["cpu_s"])):
            allowed = 30.0 if limit is None else max(30.0, limit * own)
            print(f"  examine quick, {clock_name}: {took:.1f} s; allowed {allowed:.1f} s -> "
                  f"{'OK' if took <= allowed else 'OVER'}")
        print(f"  instrumented run: {budget.training_steps(work)} of {work.planned_steps} steps; "
              f"symptom {result['symptom']}, findings {result['codes']}, status {result['status']}")
        print("  probes: " + ", ".join(f"{k[:-2]} {v:.1f}" for k, v in result["timing"].items() if k.endswith("_s")))
        print(f"  load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
