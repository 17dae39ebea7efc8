"""How far training got below the baselines: shared by the rules that ask whether the model learned.

No rules here; the other rule modules import these readings of the evidence.
"""

from __future__ import annotations

import math
from typing import Any

from lstm_doctor.evidence import Evidence

INPUT_FREE = ("mean", "majority")  # the constant predictions among the baselines
# Gates whose saturation near 1 is how the cell keeps its memory (Karpathy et al. 2015 find
# right-saturated forget gates in well-trained LSTMs): left out of the saturation average.
MEMORY_GATES = {"forget", "update"}
# A plain RNN has no gates: its saturated tanh is a unit stuck at its limits (T306), and the
# vanishing gradient it causes over time is T303's; T305 would only name it twice.
GATELESS = {"tanh"}


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


def saturation_by_layer(shares: dict[str, float]) -> dict[str, float]:
    """Mean saturated share per gated layer over its non-memory gates ({"layer0.input": ...} -> {"layer0": ...})."""
    grouped: dict[str, list[float]] = {}
    for key, share in shares.items():
        layer, _, gate = key.rpartition(".")
        if gate not in MEMORY_GATES | GATELESS and share is not None:
            grouped.setdefault(layer, []).append(share)
    return {layer: sum(v) / len(v) for layer, v in grouped.items()}


def sound_constant_loss(ev: Evidence) -> float | None:
    """Fit-a-small-batch's yardstick for its sound recipe: the best constant's loss on the handful as that
    recipe is fed it (standardized), or on the handful as the user feeds it when only that was measured."""
    value = ev.get("small_batch_sound_constant_loss")
    return value if _finite(value) else ev.get("small_batch_constant_loss")
