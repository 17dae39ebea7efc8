"""How far training got below the baselines: shared by the rules that ask whether the model learned.

No rules here; the other rule modules import these readings of the evidence.
"""

from __future__ import annotations

import math
from typing import Any

from lstm_doctor.evidence import Evidence

INPUT_FREE = ("mean", "majority")  # the constant predictions among the baselines


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def baseline_loss(ev: Evidence, name: str | None = None) -> float | None:
    """Validation loss of the baseline ``name`` (probes/baselines.py), by default the best constant prediction's."""
    losses = ev.get("baseline_loss") or {}
    if name is not None:
        return losses[name] if _finite(losses.get(name)) else None
    if _finite(ev.get("input_free_loss")):
        return ev["input_free_loss"]
    constant = [losses[k] for k in INPUT_FREE if _finite(losses.get(k))]
    return min(constant) if constant else None


def input_free_loss(ev: Evidence) -> float | None:
    """Validation loss of the best constant prediction (training mean or class priors), if measured."""
    return baseline_loss(ev)


def best_over(ev: Evidence, name: str | None = None) -> float | None:
    """The instrumented run's best validation loss over the baseline's (1 = no better), if both were measured."""
    base = baseline_loss(ev, name)
    val = [v for v in (h.get("loss") for h in ev.get("val_history") or []) if _finite(v)]
    if base is None or base <= 0 or not val:
        return None
    return min(val) / base
