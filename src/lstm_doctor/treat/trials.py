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


def run_trial(spec: TrialSpec, source: Any) -> dict[str, Any]:
    """Train once and return the final validation metrics and the curves.

    A run that diverges or raises is a result (``diverged``/``error``), not an exception.
    """
    t0 = time.perf_counter()
    config = parse_config(spec.config, f"treatment {spec.label}")
    config.training.seed = spec.seed
    try:
        setup = setup_from_config(config, raw=source, device=spec.device)
    except InputError as err:
        return {"label": spec.label, "seed": spec.seed, "error": str(err), "metrics": {}, "val_loss": [], "seconds": 0.0}
    model, result = setup.train(seed=spec.seed, max_steps=spec.max_steps)
    final: dict[str, float] = {}
    if result.stopped not in ("diverged", "error"):
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
