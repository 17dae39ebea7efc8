"""A case: data in memory plus the three setup-file sections, before it becomes a Setup.

Fault injectors (``faults.py``) map one case to another without touching the
original, so a healthy case and every broken variant of it can coexist.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import numpy as np
import pandas as pd

from lstm_doctor import Setup, setup_from

Source = pd.DataFrame | dict[str, np.ndarray]


@dataclass(frozen=True, eq=False)
class Case:
    """Data (a frame of rows or a dict of arrays like an .npz) and its setup sections."""

    source: Source
    data: Mapping[str, Any]
    model: Mapping[str, Any]
    training: Mapping[str, Any]
    dataset: str = ""
    # What was done to the healthy case, in order (for the results table).
    changes: tuple[str, ...] = field(default=())

    def with_(self, change: str, *, source: Source | None = None, data: Mapping[str, Any] | None = None,
              model: Mapping[str, Any] | None = None, training: Mapping[str, Any] | None = None) -> "Case":
        """A new case with ``source`` replaced and the sections updated (merged key by key)."""
        return replace(
            self,
            source=self.source if source is None else source,
            data={**self.data, **(data or {})},
            model={**self.model, **(model or {})},
            training={**self.training, **(training or {})},
            changes=self.changes + (change,),
        )

    @property
    def is_table(self) -> bool:
        return isinstance(self.source, pd.DataFrame)

    def arrays(self) -> dict[str, np.ndarray]:
        """A copy of the array source (for injectors that edit arrays)."""
        if self.is_table:
            raise TypeError("this case holds a table, not arrays")
        return {k: np.array(v, copy=True) for k, v in self.source.items()}

    def frame(self) -> pd.DataFrame:
        """A copy of the table source (for injectors that edit rows)."""
        if not self.is_table:
            raise TypeError("this case holds arrays, not a table")
        return self.source.copy()

    def feature_columns(self) -> list[str]:
        return list(self.data["features"])

    def train_rows(self) -> int:
        """Rows of a table that fall in the training part of a temporal split."""
        return int(round(len(self.source) * (1 - float(self.data.get("val_fraction", 0.2)))))

    def setup(self) -> Setup:
        return setup_from(self.source, data=dict(self.data), model=dict(self.model), training=dict(self.training))
