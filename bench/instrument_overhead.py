"""What the training-run instruments (gradients, memory length, gates, predictions) cost.

Run as ``python -m bench.instrument_overhead [--repeats N] [--steps N] [--skip-examine]``.

On DESIGN's typical setup (bench/examine_speed.py: ~5,000 training windows of
48 steps x 4 features, one 64-unit LSTM), it times

- the instrumented run alone: the same training steps (the quick budget's,
  or ``--steps``) with and without the instruments, alternated ``--repeats``
  times (the loss curves must be equal);
- a whole ``examine --budget quick`` with the instruments and without them
  (the four probes taken out of the pipeline).

Wall time depends on what else the machine runs, so CPU time and the load
average are printed beside it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import lstm_doctor
from bench.examine_speed import daphnet, typical
from lstm_doctor.budget import Workload, get_budget
from lstm_doctor.probes import PIPELINE, ProbeContext
from lstm_doctor.probes.gates import gates
from lstm_doctor.probes.gradients import gradients
from lstm_doctor.probes.memory_length import memory_length
from lstm_doctor.probes.predictions import predictions

INSTRUMENTS = (gradients, memory_length, gates, predictions)


def timed(fn) -> tuple[float, float, object]:
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w0, time.process_time() - c0, out


def training_overhead(setup: lstm_doctor.Setup, steps: int, repeats: int) -> None:
    plain, probed = [], []
    for _ in range(repeats):
        w, c, (_, bare) = timed(lambda: setup.train(max_steps=steps))
        plain.append((w, c))
        ctx = ProbeContext(setup, get_budget("quick"))
        for probe in INSTRUMENTS:
            probe(ctx)
        w, c, (_, result) = timed(lambda: setup.train(max_steps=steps, callbacks=ctx.instruments))
        probed.append((w, c))
        assert result.train_loss == bare.train_loss, "the instruments changed the training run"
    for label, runs in (("without instruments", plain), ("with instruments", probed)):
        wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        print(f"  {label:20s} {wall:6.1f} s wall  {cpu:6.1f} s CPU  (median of {repeats})")
    wall = statistics.median(p[0] / q[0] for p, q in zip(probed, plain)) - 1
    cpu = statistics.median(p[1] / q[1] for p, q in zip(probed, plain)) - 1
    print(f"  overhead: {wall:+.1%} wall, {cpu:+.1%} CPU (median of paired runs)")


def examine_overhead(setup: lstm_doctor.Setup) -> None:
    full = list(PIPELINE)
    try:
        for label, pipeline in (("with instruments", full),
                                ("without instruments", [p for p in full if p[1] not in INSTRUMENTS])):
            PIPELINE[:] = pipeline
            w, c, report = timed(lambda: lstm_doctor.examine(setup, budget="quick"))
            run = report.timing.get("training_run_s", float("nan"))
            print(f"  {label:20s} {w:6.1f} s wall  {c:6.1f} s CPU  (training run {run:.1f} s); "
                  f"findings {[f.code for f in report.findings]}")
    finally:
        PIPELINE[:] = full


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--steps", type=int, default=None, help="fewer training steps than the quick budget's")
    parser.add_argument("--skip-examine", action="store_true")
    args = parser.parse_args()
    setup = typical(daphnet())
    steps = args.steps or get_budget("quick").training_steps(Workload.of(setup))
    print(f"typical setup: {len(setup.data.train)} windows x {setup.data.steps} steps x {setup.data.n_features} features, "
          f"LSTM-64; instrumented run of {steps} steps, probe_every {get_budget('quick').probe_every}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print("instrumented training run:")
    training_overhead(setup, steps, args.repeats)
    if not args.skip_examine:
        print("examine --budget quick:")
        examine_overhead(setup)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
