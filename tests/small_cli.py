"""lstm-doctor's command line in a process of its own, with the ``quick`` budget cut to a
few dozen steps per probe: for tests that start it several times (a fresh interpreter,
its own hash seed, real signals) and must stay fast.

    python tests/small_cli.py [--mark training_run|trial] examine DATA [options]

``--mark training_run`` writes "started training_run" to stderr at the instrumented
run's third step, ``--mark trial`` writes "started trial" when a treatment trial has
begun: a test that waits for the line interrupts the run right there.
"""

from __future__ import annotations

import dataclasses
import signal
import sys

from lstm_doctor.budget import BUDGETS

# Every probe runs, each for a few steps; the instrumented run gets up to a thousand.
SMALL = dataclasses.replace(BUDGETS["quick"], seconds=2.0, lr_range_steps=40, signal_fits=4, signal_steps=20,
                            small_batch_steps=30, probe_every=10)
MARK_STEP = 3


def _announce(what: str) -> None:
    print(f"started {what}", file=sys.stderr, flush=True)


def _mark_training() -> None:
    from lstm_doctor import probes
    from lstm_doctor.training import Callback

    class Announce(Callback):
        def after_step(self, state) -> None:
            if state.step == MARK_STEP:
                _announce("training_run")

    def register(ctx) -> None:
        ctx.instruments.append(Announce())

    at = [name for name, _ in probes.PIPELINE].index("training_run")
    probes.PIPELINE.insert(at, ("announce", register))


def _mark_trials() -> None:
    from lstm_doctor.treat import executors

    run_trial = executors.run_trial

    def announced(spec, source):
        _announce("trial")
        return run_trial(spec, source)

    executors.run_trial = announced


def main() -> None:
    BUDGETS["quick"] = dataclasses.replace(SMALL, name="quick")
    args = sys.argv[1:]
    if args[:1] == ["--mark"]:
        # Python ignores SIGINT when started in the background by a shell; the tests play an interactive Ctrl-C.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        {"training_run": _mark_training, "trial": _mark_trials}[args[1]]()
        args = args[2:]
    sys.argv = ["lstm-doctor", *args]
    from lstm_doctor.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
