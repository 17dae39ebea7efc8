"""A Setup: everything needed to train, taken as the user has it (faults included)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

import numpy as np
import torch
from torch import nn

from lstm_doctor.config import SetupConfig, load_config
from lstm_doctor.data import SequenceData
from lstm_doctor.data.build import load_source, window_source
from lstm_doctor.models import build_model, check_size
from lstm_doctor.objective import Objective, balanced_weights, make_optimizer
from lstm_doctor.training import Callback, EarlyStopping, TrainResult, fit, resolve_device, seed_everything

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Setup:
    """Data, a model factory, the loss, an optimizer factory and training settings.

    Built from a setup file (:func:`load_setup`) or from the user's own objects.
    ``train()`` builds a fresh model from the factory, so repeated trials never
    share weights.
    """

    data: SequenceData
    model_factory: Callable[[], nn.Module]
    objective: Objective
    optimizer_factory: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
    epochs: int = 20
    batch_size: int = 32
    clip_norm: float | None = None
    seed: int = 0
    early_stopping: int | None = None
    config: SetupConfig | None = None
    device: torch.device = field(default_factory=resolve_device)
    # The table or arrays the data was windowed from, as loaded: treatments
    # re-window it under a changed config (and ship it to remote workers).
    raw: Any = field(default=None, repr=False)

    def new_model(self, seed: int | None = None) -> nn.Module:
        seed_everything(self.seed if seed is None else seed)
        return self.model_factory().to(self.device)

    def train(
        self,
        *,
        seed: int | None = None,
        epochs: int | None = None,
        max_steps: int | None = None,
        eval_every: int | None = None,
        callbacks: Iterable[Callback] = (),
        deadline: float | None = None,
        progress: bool | str = False,
        model: nn.Module | None = None,
    ) -> tuple[nn.Module, TrainResult]:
        """Train a fresh model (or ``model``) with this setup's settings."""
        seed = self.seed if seed is None else seed
        model = self.new_model(seed) if model is None else model
        optimizer = self.optimizer_factory(model.parameters())
        if self.early_stopping:
            callbacks = [*callbacks, EarlyStopping(self.early_stopping)]
        result = fit(
            model, self.objective, optimizer, self.data,
            epochs=self.epochs if epochs is None else epochs, batch_size=self.batch_size, clip_norm=self.clip_norm,
            seed=seed, max_steps=max_steps, eval_every=eval_every, callbacks=list(callbacks),
            deadline=deadline, progress=progress,
        )
        return model, result


def setup_from_config(config: SetupConfig, base_dir: Path | None = None, *, data: SequenceData | None = None,
                      raw: Any = None, device: Any = None) -> Setup:
    """Build a Setup from a validated config.

    The data is windowed from ``raw`` (an in-memory table or array dict) when
    given, else loaded from ``config.data.path``; ``data`` skips both.
    """
    if data is None:
        if raw is None:
            raw, name = load_source(config.data, base_dir)
        else:
            name = "the data"
        data = window_source(raw, config.data, seed=config.training.seed, name=name)
        data.source.setdefault("path", name)
    m, t = config.model, config.training
    check_size(m, data.n_features, data.n_outputs)
    threshold = 0.5 if m.output_activation == "sigmoid" else 0.0
    weights = None
    if t.class_weights == "balanced" and data.task != "regression":
        weights = balanced_weights(torch.as_tensor(data.train.target_values()), max(data.n_outputs, 2))
    return Setup(
        data=data,
        model_factory=lambda: build_model(m, data.n_features, data.n_outputs, data.per_step),
        objective=Objective(t.loss, data.task, per_step=data.per_step, threshold=threshold, class_weights=weights),
        optimizer_factory=lambda params: make_optimizer(t.optimizer, params, lr=t.lr, weight_decay=t.weight_decay),
        epochs=t.epochs,
        batch_size=t.batch_size,
        clip_norm=t.clip_norm,
        seed=t.seed,
        early_stopping=t.early_stopping,
        config=config,
        device=resolve_device(device),
        raw=raw,
    )


def load_setup(path: str | Path | None = None, *, data: str | Path | None = None, **overrides: Any) -> Setup:
    """A Setup from a setup file and/or options, as the CLI builds it.

    >>> setup = load_setup(data="series.csv", target="load", window=48)  # doctest: +SKIP
    """
    config, base = load_config(path, overrides)
    if data is not None:
        config.data.path = str(Path(data).resolve())
    return setup_from_config(config, base)


def setup_from(
    source: "pd.DataFrame | dict[str, np.ndarray]",
    *,
    data: dict[str, Any] | None = None,
    model: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    device: Any = None,
) -> Setup:
    """A Setup from data already in memory: a DataFrame (sliding windows) or a
    dict of arrays like an .npz (``X``, ``y``, optional ``lengths``, ``X_val``, ``y_val``).

    The three dicts are the setup file's sections.

    >>> setup = setup_from(frame, data={"target": "load", "window": 48}, training={"lr": 1e-3})  # doctest: +SKIP
    """
    import pandas as pd

    from lstm_doctor.config import parse_config
    from lstm_doctor.data.readers import NPZ_KEYS
    from lstm_doctor.errors import InputError

    config = parse_config({"data": data or {}, "model": model or {}, "training": training or {}})
    if isinstance(source, dict):
        unknown = set(source) - NPZ_KEYS
        if unknown or not {"X", "y"} <= set(source):
            raise InputError(f"Arrays must be given as X, y and optionally {sorted(NPZ_KEYS - {'X', 'y'})}; got {sorted(source)}.")
        source = {k: np.asarray(v) for k, v in source.items()}
    elif not isinstance(source, pd.DataFrame):
        raise InputError(f"setup_from takes a pandas DataFrame or a dict of arrays, not {type(source).__name__}.")
    return setup_from_config(config, raw=source, device=device)
