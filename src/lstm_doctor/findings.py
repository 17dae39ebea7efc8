"""A finding: one diagnosis with its evidence, as rules produce and reports show it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from lstm_doctor.catalog import CODES, SEVERITIES


@dataclass
class Finding:
    """One diagnosis: a catalog code, how sure, what was seen and what to do.

    >>> f = Finding.of("D102", "Inputs are ~5000x unit scale.", {"feature_scale": {"x": 5120.0}}, fix="data.scale: standard")
    >>> (f.code, f.name, f.severity)
    ('D102', 'unscaled-inputs', 'critical')
    """

    code: str
    name: str
    severity: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    fix: str = ""
    confidence: float = 0.8
    rank: int = 0
    verified: dict[str, Any] | None = None

    @classmethod
    def of(cls, code: str, summary: str, evidence: dict[str, Any] | None = None, *, fix: str = "",
           severity: str | None = None, confidence: float = 0.8) -> "Finding":
        """A finding for ``code`` with the catalog's name and default severity."""
        entry = CODES[code]
        severity = severity or entry.severity
        if severity not in SEVERITIES:
            raise ValueError(f"unknown severity {severity!r}")
        return cls(code, entry.name, severity, summary, dict(evidence or {}), fix, round(float(confidence), 3))

    @property
    def family(self) -> str:
        return CODES[self.code].family

    @property
    def severity_level(self) -> int:
        """0 for critical, 1 for warning, 2 for info (lower is worse)."""
        return SEVERITIES.index(self.severity)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: d[k] for k in ("code", "name", "severity", "rank", "confidence", "summary", "evidence", "fix", "verified")}
