"""The setup file's schema (DESIGN.md, "Setup file") and how it is read.

The schema validates what the user wrote and nothing more: faults in the setup
(no scaling, a tiny learning rate) are kept as they are, since finding them is
the point.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lstm_doctor.errors import InputError

Task = Literal["regression", "binary", "multiclass"]
Scale = Literal["none", "standard", "minmax"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Section):
    path: str | None = None
    target: str | list[str] | None = None
    features: list[str] | None = None
    time: str | None = None
    series_id: str | None = None
    window: int = Field(48, ge=1)
    horizon: int = Field(1, ge=0)
    task: Task = "regression"
    scale: Scale = "none"
    # None: the target is scaled like the inputs (when it is one of them, as with a
    # scaler fitted on the whole frame). Set it to scale the target separately.
    scale_target: Scale | None = None
    split: Literal["temporal", "random"] = "temporal"
    val_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    # Predict the change over the horizon instead of the level (tables only): the
    # error of the reconstructed forecast equals the error on the change.
    target_transform: Literal["none", "difference"] = "none"
    # Average every `downsample` consecutive steps of already-windowed sequences
    # (shortens over-long sequences; padded steps are averaged with real ones).
    downsample: int = Field(1, ge=1)

    @field_validator("target")
    @classmethod
    def _target_list(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list) and not v:
            raise ValueError("must name at least one column")
        return v

    @field_validator("features", mode="before")
    @classmethod
    def _one_feature(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v  # `features: load` means [load]

    @property
    def targets(self) -> list[str]:
        if self.target is None:
            return []
        return [self.target] if isinstance(self.target, str) else list(self.target)

    @property
    def target_scale(self) -> Scale:
        return self.scale if self.scale_target is None else self.scale_target


_INIT = re.compile(r"^(default|orthogonal|xavier|zeros|normal:(\d+(\.\d*)?|\.\d+)(e-?\d+)?)$")


class ModelConfig(_Section):
    cell: Literal["lstm", "gru", "rnn"] = "lstm"
    hidden: int = Field(64, ge=1)
    layers: int = Field(1, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    bidirectional: bool = False
    output_activation: Literal["none", "sigmoid", "softmax", "relu", "tanh"] = "none"
    init: str = "default"
    forget_bias: float | Literal["default"] = "default"
    readout: Literal["last", "mean", "true-end"] = "last"
    # Only for `cell: rnn`: the recurrence's nonlinearity (relu is M211).
    nonlinearity: Literal["tanh", "relu"] = "tanh"

    @field_validator("init")
    @classmethod
    def _init_scheme(cls, v: str) -> str:
        if not _INIT.match(v):
            raise ValueError("must be default, orthogonal, xavier, zeros or normal:STD (e.g. normal:0.1)")
        return v

    @model_validator(mode="after")
    def _options_fit_cell(self) -> "ModelConfig":
        # Silently ignoring these would report on a model other than the one described.
        if self.forget_bias != "default" and self.cell != "lstm":
            raise ValueError(f"forget_bias applies to LSTM cells only; a {self.cell.upper()} has no forget gate (leave it at 'default')")
        if self.nonlinearity != "tanh" and self.cell != "rnn":
            raise ValueError(f"nonlinearity applies to `cell: rnn` only; a {self.cell.upper()}'s gates are fixed (leave it at 'tanh')")
        return self


class TrainingConfig(_Section):
    loss: Literal["mse", "mae", "huber", "bce", "ce"] = "mse"
    metrics: list[str] = Field(default_factory=list)
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    lr: float = Field(1e-3, gt=0.0)
    batch_size: int = Field(32, ge=1)
    epochs: int = Field(20, ge=1)
    clip_norm: float | None = Field(None, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    class_weights: Literal["none", "balanced"] = "none"
    # Stop after this many epochs without a better validation loss, keeping the best weights.
    early_stopping: int | None = Field(None, ge=1)
    seed: int = Field(0, ge=0, le=2**32 - 1)


class SetupConfig(_Section):
    """A whole setup file: data, model and training sections."""

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)

    @model_validator(mode="after")
    def _loss_fits_task(self) -> "SetupConfig":
        # A mismatched loss is a finding (M201), not an error, except where the
        # loss cannot even be computed on these targets.
        task, loss = self.data.task, self.training.loss
        if task == "multiclass" and loss == "bce":
            raise ValueError("training.loss 'bce' cannot score a multiclass target; use 'ce'")
        if task == "regression" and loss == "ce":
            raise ValueError("training.loss 'ce' needs class labels; a regression target takes mse, mae or huber")
        if task == "binary" and loss == "ce":
            raise ValueError("training.loss 'ce' needs one logit per class, a binary task has one output; "
                             "use 'bce', or data.task 'multiclass' for a two-logit softmax head")
        return self


# CLI option name -> (section, field). Options override the setup file.
OVERRIDES: dict[str, tuple[str, str]] = {
    "target": ("data", "target"),
    "features": ("data", "features"),
    "time": ("data", "time"),
    "series_id": ("data", "series_id"),
    "window": ("data", "window"),
    "horizon": ("data", "horizon"),
    "task": ("data", "task"),
    "scale": ("data", "scale"),
    "split": ("data", "split"),
    "val_fraction": ("data", "val_fraction"),
    "cell": ("model", "cell"),
    "hidden": ("model", "hidden"),
    "layers": ("model", "layers"),
    "loss": ("training", "loss"),
    "optimizer": ("training", "optimizer"),
    "lr": ("training", "lr"),
    "batch_size": ("training", "batch_size"),
    "epochs": ("training", "epochs"),
    "seed": ("training", "seed"),
}


SECTIONS: dict[str, type[_Section]] = {"data": DataConfig, "model": ModelConfig, "training": TrainingConfig}


def _field_of(loc: tuple) -> tuple:
    """``("model", "forget_bias", "float")`` -> ``("model", "forget_bias")``: pydantic
    appends the union member tried; list positions (``features.0``) are kept."""
    head = loc[:2]
    return head + tuple(p for p in loc[2:] if isinstance(p, int))


def describe_validation_error(err: ValidationError, source: str | None, options: dict[str, str] | None = None) -> str:
    """One paragraph naming each bad field, the value given and what is allowed.

    ``options`` maps a field (``data.window``) to the command-line option that set it.
    """
    problems: dict[str, list[str]] = {}
    given: dict[str, Any] = {}
    for e in err.errors():
        loc = _field_of(tuple(e["loc"]))
        where = ".".join(str(p) for p in loc)
        if e["type"] == "extra_forbidden":
            known = sorted(SECTIONS[loc[0]].model_fields) if len(loc) == 2 and loc[0] in SECTIONS else list(SECTIONS)
            problems.setdefault(where, []).append(f"not a setup option (allowed here: {', '.join(known)})")
            continue
        problems.setdefault(where, []).append(re.sub(r" or instance of \w+", "", e["msg"].removeprefix("Value error, ")))
        given.setdefault(where, e.get("input"))
    parts = []
    for where, msgs in problems.items():
        value = given.get(where)
        shown = f" (got {value!r})" if where in given and not isinstance(value, dict) else ""
        option = f" ({options[where]})" if options and where in options else ""
        parts.append(f"{where}{option}: " * bool(where) + "; or ".join(dict.fromkeys(msgs)) + shown)
    return f"Invalid setup{f' in {source}' if source else ''}: " + "; ".join(parts) + ". See the setup file format in DESIGN.md or `lstm-doctor examine --help`."


def parse_config(raw: dict[str, Any], source: str | None = None, options: dict[str, str] | None = None) -> SetupConfig:
    """Validate a setup dict; an empty section (``model:`` alone in YAML) means its defaults."""
    raw = {k: ({} if v is None and k in SECTIONS else v) for k, v in raw.items()}
    try:
        return SetupConfig.model_validate(raw)
    except ValidationError as err:
        raise InputError(describe_validation_error(err, source, options)) from None


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> tuple[SetupConfig, Path]:
    """Read a setup file (optional) and apply CLI-style overrides.

    Returns the config and the folder that relative data paths are resolved against.

    >>> cfg, base = load_config(None, {"window": 24, "target": "load"})
    >>> cfg.data.window
    24
    """
    raw: dict[str, Any] = {}
    base = Path.cwd()
    source = "the options"
    if path is not None:
        p = Path(path)
        source = str(p)
        if not p.is_file():
            raise InputError(f"Setup file {p} does not exist. Pass the path of a YAML setup file with --config.")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            raise InputError(f"Setup file {p} is not valid YAML: {str(err).splitlines()[0]}. Check its indentation and quoting.") from None
        except OSError as err:
            raise InputError(f"Setup file {p} cannot be read: {err.strerror or err}.") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise InputError(f"Setup file {p} must hold a mapping with data, model and training sections, not a {type(loaded).__name__}.")
        raw = loaded
        base = p.resolve().parent
    options: dict[str, str] = {}
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        section, field = OVERRIDES[key]
        if raw.get(section) is None:
            raw[section] = {}
        if not isinstance(raw[section], dict):
            raise InputError(f"{source}: '{section}' must be a mapping of options, not {raw[section]!r}.")
        raw[section][field] = value
        options[f"{section}.{field}"] = "--" + key.replace("_", "-")
    return parse_config(raw, source, options), base
