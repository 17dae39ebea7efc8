"""How far training got below the input-free baseline: shared by the rules that ask whether the model learned.

No rules here; the other rule modules import these two readings of the evidence.
"""

from __future__ import annotations

import math

from lstm_doctor.evidence import Evidence

INPUT_FREE = ("mean", "majority")  # the baselines that ignore the inputs (probes/baselines.py)


def input_free_loss(ev: Evidence) -> float | None:
    """Validation loss of the best constant prediction (training mean or class priors), if measured."""
    losses = ev.get("baseline_loss") or {}
    found = [losses[k] for k in INPUT_FREE if isinstance(losses.get(k), (int, float)) and math.isfinite(losses[k])]
    return min(found) if found else None


def best_over_input_free(ev: Evidence) -> float | None:
    """The best validation loss of the instrumented run over the input-free baseline's (1 = no better than a constant)."""
    base = input_free_loss(ev)
    val = [h.get("loss") for h in ev.get("val_history") or []]
    val = [v for v in val if isinstance(v, (int, float)) and math.isfinite(v)]
    if base is None or base <= 0 or not val:
        return None
    return min(val) / base
