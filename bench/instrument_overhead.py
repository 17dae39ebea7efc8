"""What the training-run instruments (gradients, memory length, gates, predictions) cost.

Run as ``python -m bench.instrument_overhead [--repeats N] [--steps N] [--threads N] [--skip-examine]``.

On DESIGN's typical setup (bench/examine_speed.py: ~5,000 training windows of
48 steps x 4 features, one 64-unit LSTM), it times

- the instrumented run alone: the same training steps (the quick budget's,
  or ``--steps``) with and without the instruments, alternated ``--repeats``
  times (the loss curves must be equal), and the thread time spent inside the
  instruments' hooks, which is far less noisy than a difference of two runs;
- a whole ``examine --budget quick`` with the instruments and without them
  (the four probes taken out of the pipeline).

Wall time depends on what else the machine runs, so CPU time and the load
average are printed beside it; on a busy machine ``--threads 1`` keeps torch's
worker threads from spinning against other processes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import lstm_doctor
from bench.examine_speed import daphnet, typical
from lstm_doctor.budget import Workload, get_budget
from lstm_doctor.probes import PIPELINE, ProbeContext
from lstm_doctor.probes.gates import gates
from lstm_doctor.probes.gradients import gradients
from lstm_doctor.probes.memory_length import memory_length
from lstm_doctor.probes.predictions import predictions
from lstm_doctor.training import HOOKS

INSTRUMENTS = (gradients, memory_length, gates, predictions)


def timed(fn) -> tuple[float, float, object]:
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w0, time.process_time() - c0, out


def clock_hooks(instruments: list, spent: dict[str, float]) -> None:
    """Wrap each instrument's hooks (as instance attributes, which fit calls) to add their thread time to ``spent``."""
    for instrument in instruments:
        name = type(instrument).__name__
        for hook in HOOKS:
            method = getattr(instrument, hook)

            def run(state, method=method, name=name):
                t = time.thread_time()
                method(state)
                spent[name] = spent.get(name, 0.0) + time.thread_time() - t

            setattr(instrument, hook, run)


def training_overhead(setup: lstm_doctor.Setup, steps: int, repeats: int) -> None:
    plain, probed, inside = [], [], []
    for _ in range(repeats):
        w, c, (_, bare) = timed(lambda: setup.train(max_steps=steps))
        plain.append((w, c))
        ctx = ProbeContext(setup, get_budget("quick"))
        for probe in INSTRUMENTS:
            probe(ctx)
        spent: dict[str, float] = {}
        clock_hooks(ctx.instruments, spent)
        t0 = time.thread_time()
        w, c, (_, result) = timed(lambda: setup.train(max_steps=steps, callbacks=ctx.instruments))
        run = time.thread_time() - t0
        probed.append((w, c))
        inside.append((spent, run))
        assert result.train_loss == bare.train_loss, "the instruments changed the training run"
    for label, runs in (("without instruments", plain), ("with instruments", probed)):
        wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        print(f"  {label:20s} {wall:6.1f} s wall  {cpu:6.1f} s CPU  (median of {repeats})")
    wall = statistics.median(p[0] / q[0] for p, q in zip(probed, plain)) - 1
    cpu = statistics.median(p[1] / q[1] for p, q in zip(probed, plain)) - 1
    print(f"  difference of paired runs: {wall:+.1%} wall, {cpu:+.1%} CPU (median; noisy on a busy machine)")
    hooks = statistics.median(sum(s.values()) / (run - sum(s.values())) for s, run in inside)
    names = sorted(inside[0][0])
    each = ", ".join(f"{n} {statistics.median(s[n] for s, _ in inside):.2f} s" for n in names)
    print(f"  thread time inside the instruments: {hooks:+.1%} of the training itself ({each})")


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
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    parser.add_argument("--skip-examine", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    setup = typical(daphnet())
    steps = args.steps or get_budget("quick").training_steps(Workload.of(setup))
    print(f"typical setup: {len(setup.data.train)} windows x {setup.data.steps} steps x {setup.data.n_features} features, "
          f"LSTM-64; instrumented run of {steps} steps, probe_every {get_budget('quick').probe_every}, "
          f"{torch.get_num_threads()} torch thread(s); "
          f"load average {os.getloadavg()[0]:.2f}")
    print("instrumented training run:")
    training_overhead(setup, steps, args.repeats)
    if not args.skip_examine:
        print("examine --budget quick:")
        examine_overhead(setup)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
