"""Windows of a sequence dataset, gathered lazily so that data is held once.

A series becomes windows by index arithmetic: window i reads rows
``starts[i] .. starts[i] + window - 1`` and its target sits ``horizon`` rows after
the last of them. Training and validation windows share one copy of the rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


def moments(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-column mean and std of ``values`` (rows, columns), ignoring non-finite entries; std 0 becomes 1."""
    v = values.double()
    v = torch.where(torch.isfinite(v), v, torch.nan)
    mean = v.nanmean(dim=0)
    std = torch.sqrt(torch.nanmean((v - mean) ** 2, dim=0))
    return torch.nan_to_num(mean), torch.where(std > 0, std, torch.ones_like(std))


@dataclass
class Windows:
    """The input sequences and targets of one split.

    ``starts is None`` means ``inputs`` is already windowed ``(samples, steps, features)``
    and ``targets`` is ``(samples, ...)``; otherwise both are row tables of a series.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    starts: torch.Tensor | None = None
    window: int = 0
    horizon: int = 0
    lengths: torch.Tensor | None = None
    # Every window of the rows as one strided view (rows - window + 1, window, features):
    # a batch is then a single index_select, no index arithmetic and no copy but the batch's.
    _view: torch.Tensor | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        if self.starts is not None and len(self.inputs) >= self.window:
            self._view = self.inputs.unfold(0, self.window, 1).transpose(1, 2)

    def __len__(self) -> int:
        return len(self.starts) if self.starts is not None else len(self.inputs)

    @property
    def steps(self) -> int:
        return self.window if self.starts is not None else self.inputs.shape[1]

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Inputs ``(B, steps, features)``, targets and lengths of windows ``idx``."""
        lengths = self.lengths[idx] if self.lengths is not None else None
        if self.starts is None:
            return self.inputs[idx], self.targets[idx], lengths
        s = self.starts[idx]
        return self._view.index_select(0, s), self.targets[s + (self.window - 1 + self.horizon)], lengths

    def all(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        return self.batch(torch.arange(len(self)))

    def labels(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Targets and lengths of every window, as :meth:`all` gives them, without gathering
        the inputs (on a series those are ``window`` times the rows: 600 MB for a million rows)."""
        if self.starts is None:
            return self.targets, self.lengths
        return self.targets[self.starts + (self.window - 1 + self.horizon)], None

    def subset(self, idx: torch.Tensor) -> "Windows":
        """The same windows restricted to ``idx`` (shares the underlying rows)."""
        if self.starts is not None:
            return Windows(self.inputs, self.targets, self.starts[idx], self.window, self.horizon)
        lengths = self.lengths[idx] if self.lengths is not None else None
        return Windows(self.inputs[idx], self.targets[idx], None, 0, 0, lengths)

    def to(self, device: torch.device | str) -> "Windows":
        move = (lambda t: None if t is None else t.to(device))
        return Windows(move(self.inputs), move(self.targets), move(self.starts), self.window, self.horizon, move(self.lengths))

    def input_rows(self) -> np.ndarray:
        """Every input step these windows feed the model, as rows ``(n, features)``.

        Padding (steps past ``lengths``) is left out; a series row is counted once.
        """
        if self.starts is not None:
            used = torch.zeros(len(self.inputs), dtype=torch.bool, device=self.inputs.device)
            for k in range(self.window):  # window is small; avoids a (N, window) index
                used[self.starts + k] = True
            return self.inputs[used].cpu().numpy()
        x = self.inputs
        if self.lengths is None:
            return x.reshape(-1, x.shape[-1]).cpu().numpy()
        mask = torch.arange(x.shape[1], device=x.device)[None, :] < self.lengths[:, None]
        return x[mask].cpu().numpy()

    def target_values(self) -> np.ndarray:
        """The targets of these windows, one entry per window (and step, if per-step)."""
        return self.labels()[0].cpu().numpy()

    def shifted(self, input_map: tuple[torch.Tensor, torch.Tensor],
                target_map: tuple[torch.Tensor, torch.Tensor] | None) -> "Windows":
        """The same windows with inputs ``(x - offset) / scale`` per feature and, given a
        ``target_map``, targets likewise per column (a new copy of the rows)."""
        def apply(values: torch.Tensor, offset: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
            return (values - offset.to(values)) / scale.to(values)
        targets = self.targets if target_map is None else apply(self.targets, *target_map)
        return Windows(apply(self.inputs, *input_map), targets, self.starts, self.window, self.horizon, self.lengths)


@dataclass
class AffineMap:
    """``original = scaled * scale + offset``, per target column."""

    offset: np.ndarray
    scale: np.ndarray

    def invert(self, values: torch.Tensor) -> torch.Tensor:
        return values * torch.as_tensor(self.scale, dtype=values.dtype, device=values.device) + torch.as_tensor(
            self.offset, dtype=values.dtype, device=values.device
        )


@dataclass
class SequenceData:
    """Everything the model is fed, split into training and validation windows."""

    train: Windows
    val: Windows
    task: str
    feature_names: list[str]
    target_names: list[str]
    classes: list[str] | None = None
    per_step: bool = False
    horizon: int = 1
    target_scaler: AffineMap | None = None
    split: str = "temporal"
    # The target series as the model is fed it, one array per series, for
    # autocorrelation and stationarity; None for data that came already windowed.
    series: list[np.ndarray] | None = None
    # Rows of each series that are training rows (same order as ``series``).
    series_train_rows: list[int] | None = None
    source: dict = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def steps(self) -> int:
        return self.train.steps

    @property
    def n_outputs(self) -> int:
        if self.task == "multiclass":
            return len(self.classes or [])
        if self.task == "binary":
            return 1
        return len(self.target_names)

    def standardized(self) -> "SequenceData":
        """A copy fed at unit scale: inputs and, for regression, targets standardized with
        the training windows' mean and standard deviation (what ``data.scale: standard``
        would feed the model). Padding steps are left out of the statistics."""
        inputs = moments(torch.from_numpy(self.train.input_rows()))
        targets = None
        if self.task == "regression":
            targets = moments(torch.from_numpy(self.train.target_values()).reshape(-1, len(self.target_names)))
        out = SequenceData(**{**self.__dict__})
        out.train, out.val = self.train.shifted(inputs, targets), self.val.shifted(inputs, targets)
        out.target_scaler = None
        return out

    def to(self, device: torch.device | str) -> "SequenceData":
        out = SequenceData(**{**self.__dict__})
        out.train, out.val = self.train.to(device), self.val.to(device)
        return out
