"""The symptom: one word for what the loss curves show, judged against the baselines.

Precedence (FINDINGS.md): diverging, unstable, not-learning, overfitting,
learning-slowly; healthy when none applies.
"""

from __future__ import annotations

import math

from lstm_doctor.evidence import Evidence


def _finite(values) -> list[float]:
    return [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def judge_symptom(ev: Evidence) -> str:
    """The symptom of the instrumented run, or ``unknown`` when it did not run."""
    if ev.get("stopped") == "diverged":
        return "diverging"
    history = ev.get("val_history") or []
    val = _finite(h.get("loss") for h in history)
    base = _finite((ev.get("baseline_loss") or {}).values())
    if not val:
        return "unknown"
    if base:
        best_free = min(base)
        # "Not learning": the best validation loss stays within 5% of the best
        # constant (or naive) predictor's.
        if min(val) >= best_free * 0.95 - 1e-12:
            return "not-learning"
    return "healthy"
