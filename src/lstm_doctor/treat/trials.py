"""One trial: train a (treated) setup config on the in-memory source, with one seed.

Everything a trial needs travels with it (the config as plain data and the
source table or arrays), so a trial runs the same in this process, a worker
process, or a Ray worker on another machine.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from lstm_doctor.config import parse_config
from lstm_doctor.errors import InputError
from lstm_doctor.setups import setup_from_config
from lstm_doctor.training import evaluate


@dataclass(frozen=True)
class TrialSpec:
    label: str  # "untreated" or a treatment name
    config: dict[str, Any]
    seed: int
    max_steps: int
    device: str = "cpu"
    # Wall-clock time (time.time()) past which the trial stops, cut short ("time-limit");
    # a monotonic clock means nothing in another process or on another machine.
    deadline: float | None = None


def run_trial(spec: TrialSpec, source: Any) -> dict[str, Any]:
    """Train once and return the final validation metrics and the curves.

    A run that diverges or raises is a result (``diverged``/``error``), not an exception;
    one cut short by ``spec.deadline`` (``time-limit``) has no metrics: it trained less
    than the trials it would be compared with.
    """
    t0 = time.perf_counter()
    left = None if spec.deadline is None else spec.deadline - time.time()
    if left is not None and left <= 0:  # not started: windowing the data alone may take seconds
        return {"label": spec.label, "seed": spec.seed, "metrics": {}, "val_loss": [], "val_steps": [], "stopped": "time-limit",
                "error": None, "steps": 0, "seconds": 0.0}
    config = parse_config(spec.config, f"treatment {spec.label}")
    config.training.seed = spec.seed
    try:
        setup = setup_from_config(config, raw=source, device=spec.device)
    except InputError as err:
        return {"label": spec.label, "seed": spec.seed, "error": str(err), "metrics": {}, "val_loss": [], "seconds": 0.0}
    deadline = None if spec.deadline is None else time.monotonic() + (spec.deadline - time.time())
    model, result = setup.train(seed=spec.seed, max_steps=spec.max_steps, deadline=deadline)
    final: dict[str, float] = {}
    if result.stopped not in ("diverged", "error", "time-limit"):
        # After training (early stopping restores its best weights), not the last record.
        final = evaluate(model, setup.objective, setup.data.val, setup.data)
    return {
        "label": spec.label,
        "seed": spec.seed,
        "metrics": {k: v for k, v in final.items() if isinstance(v, float) and math.isfinite(v)},
        "val_loss": [v["loss"] for v in result.val],
        "val_steps": [v["step"] for v in result.val],
        "stopped": result.stopped,
        "error": result.error,
        "steps": result.steps,
        "seconds": time.perf_counter() - t0,
    }
