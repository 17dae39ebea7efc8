"""What every probe receives: the setup, the budget, and where to put what it measured."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from lstm_doctor.budget import Budget
from lstm_doctor.evidence import Evidence
from lstm_doctor.setups import Setup
from lstm_doctor.training import Callback


@dataclass
class ProbeContext:
    """Shared by the probes of one examination.

    Probes measure and never judge: they write numbers into ``evidence`` (for
    rules) and plottable series into ``plots`` (the report's ``probes`` section,
    for renderers).
    """

    setup: Setup
    budget: Budget
    evidence: Evidence = field(default_factory=Evidence)
    plots: dict[str, Any] = field(default_factory=dict)
    deadline: float | None = None
    progress: bool = False
    # Callbacks that ride along the instrumented training run (gradients, gates, ...);
    # probes that run before it register them here.
    instruments: list[Callback] = field(default_factory=list)

    def time_left(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()
