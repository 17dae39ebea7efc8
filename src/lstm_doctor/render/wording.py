"""Words and number formats shared by the console and HTML renderers."""

from __future__ import annotations

import math
from typing import Any

SYMPTOM_TEXT = {
    "not-learning": "the model is not learning: its validation loss stays at what a constant prediction gets",
    "learning-slowly": "the model learns, but far slower than it can",
    "unstable": "the loss oscillates or spikes without a trend",
    "diverging": "the loss rises or becomes NaN/Inf",
    "overfitting": "validation gets worse while training improves",
    "healthy": "training looks healthy",
    "unknown": "the training run did not produce a loss curve",
}
LIST_SHOWN = 6  # list items shown before "... (n values)"


def num(value: Any) -> float:
    """A report number as a float: JSON's "NaN"/"Infinity" strings and None become non-finite floats."""
    if isinstance(value, bool) or value is None:
        return math.nan
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(value, math.nan)
    return math.nan


def loss_rows(probes: dict[str, Any], baselines: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, validation scores) for the model's first and best validation, then each baseline."""
    val = [v for v in (probes.get("loss_curve") or {}).get("val") or [] if isinstance(v, dict)]
    rows: list[tuple[str, dict[str, Any]]] = []
    if val:
        rows.append(("your model, first", val[0]))
        finite = [v for v in val if math.isfinite(num(v.get("loss")))]
        if finite:
            best = min(finite, key=lambda v: num(v.get("loss")))
            rows.append((f"your model, best (step {best.get('step')})", best))
    return rows + [(f"{name} baseline", scores) for name, scores in (baselines or {}).items() if isinstance(scores, dict)]


def metric_names(rows: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """The loss, then every other metric the rows hold."""
    return ["loss"] + sorted({k for _, r in rows for k in r if k not in ("loss", "epoch", "step")})


def fmt(value: Any) -> str:
    """A value as a person reads it: 4 significant digits, NaN/Inf spelled out, short lists inline."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        shown = ", ".join(fmt(v) for v in value[:LIST_SHOWN])
        return f"[{shown}, ... ({len(value)} values)]" if len(value) > LIST_SHOWN else f"[{shown}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {fmt(v)}" for k, v in value.items()) + "}"
    return str(value)


def evidence_items(evidence: dict[str, Any], prefix: str = "", depth: int = 2) -> list[tuple[str, str]]:
    """A finding's evidence as (dotted key, formatted value) pairs; nested dicts are flattened ``depth`` deep."""
    items: list[tuple[str, str]] = []
    for key, value in evidence.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and depth > 0:
            items += evidence_items(value, f"{name}.", depth - 1)
        else:
            items.append((name, fmt(value)))
    return items
