"""The report: the one object every renderer reads (console, JSON, HTML)."""

from __future__ import annotations

import json
import math
import os
import platform
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lstm_doctor.findings import Finding

SCHEMA = "lstm-doctor/report/v1"
STATUSES = ("complete", "incomplete", "failed")
SYMPTOMS = ("not-learning", "learning-slowly", "unstable", "diverging", "overfitting", "healthy", "unknown")


def versions() -> dict[str, str]:
    import torch

    from lstm_doctor import __version__

    return {"lstm_doctor": __version__, "torch": torch.__version__, "python": platform.python_version()}


def plain(value: Any) -> Any:
    """``value`` as JSON data. Non-finite floats become the strings "NaN",
    "Infinity" and "-Infinity" (strict JSON has no such numbers)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, (np.floating, float)):
        v = float(value)
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return v
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, Path):
        return str(value)
    return value


def write_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` so that no half-written file is ever left there."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class Report:
    """What lstm-doctor found: the symptom, ranked findings, and everything measured.

    >>> report = Report(symptom="not-learning")
    >>> report.to_dict()["schema"]
    'lstm-doctor/report/v1'
    """

    symptom: str = "unknown"
    status: str = "complete"
    findings: list[Finding] = field(default_factory=list)
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)
    probes: dict[str, Any] = field(default_factory=dict)
    treatments: list[dict[str, Any]] = field(default_factory=list)
    setup: dict[str, Any] = field(default_factory=dict)
    recommended_setup: dict[str, Any] | None = None
    timing: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=versions)

    def worst(self) -> str | None:
        """The most severe severity among the findings, or None."""
        return min(self.findings, key=lambda f: f.severity_level).severity if self.findings else None

    def codes(self) -> list[str]:
        return [f.code for f in self.findings]

    def to_dict(self) -> dict[str, Any]:
        return plain({
            "schema": SCHEMA,
            "status": self.status,
            "versions": self.versions,
            "symptom": self.symptom,
            "findings": [f.to_dict() for f in self.findings],
            "baselines": self.baselines,
            "probes": self.probes,
            "treatments": self.treatments,
            "setup": self.setup,
            "recommended_setup": self.recommended_setup,
            "timing": self.timing,
            "notes": self.notes,
        })

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def save_json(self, path: str | Path) -> None:
        write_atomic(path, self.to_json() + "\n")
