"""The fixes lstm-doctor can try, each a pure change of the setup config.

A treatment looks at the config and the evidence and returns the change it
would make, as a nested dict of setup-file keys (``{"data": {"scale": "standard"}}``),
or None when it does not apply. Changes compose by merging, and print as the
setup-file edit a user makes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from lstm_doctor.config import SetupConfig, parse_config
from lstm_doctor.evidence import Evidence
from lstm_doctor.rules.data import BPTT_LIMIT

Change = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Treatment:
    name: str
    codes: tuple[str, ...]
    propose: Callable[[SetupConfig, Evidence], Change | None]
    pytorch: str
    keras: str


def apply_change(config: SetupConfig, change: Change) -> SetupConfig:
    """A new config with ``change`` merged in (the original is untouched)."""
    raw = config.model_dump(mode="json")
    for section, values in change.items():
        raw[section].update(values)
    return parse_config(raw, "the treated setup")


def merge(*changes: Change) -> Change:
    out: Change = {}
    for change in changes:
        for section, values in change.items():
            out.setdefault(section, {}).update(values)
    return out


def describe(change: Change) -> str:
    """``data.scale: standard, training.lr: 0.003``."""
    return ", ".join(f"{s}.{k}: {v}" for s, values in change.items() for k, v in values.items())


def _if_new(config: SetupConfig, change: Change) -> Change | None:
    """``change`` unless the config already has every value in it."""
    current = config.model_dump(mode="json")
    return None if all(current[s].get(k) == v for s, vals in change.items() for k, v in vals.items()) else change


def _scale_all(c: SetupConfig, ev: Evidence) -> Change | None:
    data = {"scale": "standard"}
    if c.data.task == "regression":
        data["scale_target"] = "standard"
    return _if_new(c, {"data": data})


def _scale_target(c: SetupConfig, ev: Evidence) -> Change | None:
    return _if_new(c, {"data": {"scale_target": "standard"}}) if c.data.task == "regression" else None


def _difference(c: SetupConfig, ev: Evidence) -> Change | None:
    if c.data.task != "regression" or c.data.horizon < 1 or ev.get("source_kind") != "table":
        return None
    return _if_new(c, {"data": {"target_transform": "difference", "scale": "standard", "scale_target": "standard"}})


def _suggested_lr(c: SetupConfig, ev: Evidence) -> Change | None:
    """The range test's rate; with data off unit scale, the rate of the sweep on the standardized
    data, which only holds together with that scaling."""
    scaled = "scaled_lr_safe_range" in ev
    lr = ev.get("scaled_lr_suggested" if scaled else "lr_suggested")
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        return None
    ratio = lr / c.training.lr
    if not (ratio > 2 or ratio < 0.5):
        return None
    rate = {"training": {"lr": float(f"{lr:.2g}")}}
    scaling = _scale_all(c, ev) if scaled else None
    return merge(scaling, rate) if scaling else rate


def _lr_down(c: SetupConfig, ev: Evidence) -> Change | None:
    return {"training": {"lr": float(f"{c.training.lr / 10:.2g}")}}


def _adam(c: SetupConfig, ev: Evidence) -> Change | None:
    return {"training": {"optimizer": "adam", "lr": 1e-3}} if c.training.optimizer in ("sgd", "rmsprop") else None


def _clip(c: SetupConfig, ev: Evidence) -> Change | None:
    return _if_new(c, {"training": {"clip_norm": 1.0}})


def _orthogonal(c: SetupConfig, ev: Evidence) -> Change | None:
    return _if_new(c, {"model": {"init": "orthogonal"}})


def _forget_bias(c: SetupConfig, ev: Evidence) -> Change | None:
    return _if_new(c, {"model": {"forget_bias": 1.0}}) if c.model.cell == "lstm" else None


def _lstm_cell(c: SetupConfig, ev: Evidence) -> Change | None:
    return {"model": {"cell": "lstm", "nonlinearity": "tanh"}} if c.model.cell == "rnn" else None


def _shallower(c: SetupConfig, ev: Evidence) -> Change | None:
    return {"model": {"layers": 2}} if c.model.layers > 2 else None


def _wider(c: SetupConfig, ev: Evidence) -> Change | None:
    return {"model": {"hidden": min(256, c.model.hidden * 4)}} if c.model.hidden < 256 else None


def _smaller(c: SetupConfig, ev: Evidence) -> Change | None:
    return {"model": {"hidden": max(8, c.model.hidden // 4)}} if c.model.hidden > 8 else None


def _regularize(c: SetupConfig, ev: Evidence) -> Change | None:
    return _if_new(c, {"model": {"dropout": max(c.model.dropout, 0.2)},
                       "training": {"weight_decay": max(c.training.weight_decay, 1e-4), "early_stopping": 3}})


def _longer_window(c: SetupConfig, ev: Evidence) -> Change | None:
    period = ev.get("dominant_period")
    if not isinstance(period, (int, float)) or period <= c.data.window or ev.get("source_kind") != "table":
        return None
    return {"data": {"window": int(math.ceil(period * 1.25))}}


# A second, stronger downsampling candidate: about 100 steps. Which one helps depends on the data
# (bench/RESULTS.md, "Treatment cases"): OSULeaf's 427 steps train best at 214 (the LSTM's reach),
# GunPoint stretched to 400 steps gains nothing at 200 and recovers its healthy accuracy at 100-50.
SHORT_SEQUENCE = 100


def _downsample(c: SetupConfig, ev: Evidence, steps_wanted: int) -> Change | None:
    """Average enough steps to leave about ``steps_wanted``, for sequences beyond the cell's reach (D109)."""
    steps = ev.get("steps")
    limit = BPTT_LIMIT.get(c.model.cell, BPTT_LIMIT["lstm"])
    if ev.get("source_kind") != "arrays" or not isinstance(steps, int) or steps <= limit or ev.get("per_step"):
        return None
    factor = math.ceil(steps / steps_wanted)
    return {"data": {"downsample": c.data.downsample * factor}} if factor > 1 else None


def _downsample_to_reach(c: SetupConfig, ev: Evidence) -> Change | None:
    """Down to the cell's reach (D109's limit, as its fix says)."""
    return _downsample(c, ev, BPTT_LIMIT.get(c.model.cell, BPTT_LIMIT["lstm"]))


def _downsample_to_short(c: SetupConfig, ev: Evidence) -> Change | None:
    change = _downsample(c, ev, SHORT_SEQUENCE)
    return change if change != _downsample_to_reach(c, ev) else None


def _true_end(c: SetupConfig, ev: Evidence) -> Change | None:
    return _if_new(c, {"model": {"readout": "true-end"}}) if ev.get("has_lengths") else None


def _class_weights(c: SetupConfig, ev: Evidence) -> Change | None:
    return _if_new(c, {"training": {"class_weights": "balanced"}}) if c.data.task != "regression" else None


def _matching_output(c: SetupConfig, ev: Evidence) -> Change | None:
    loss = {"regression": c.training.loss if c.training.loss in ("mse", "mae", "huber") else "mse",
            "binary": "bce", "multiclass": "ce"}[c.data.task]
    return _if_new(c, {"model": {"output_activation": "none"}, "training": {"loss": loss}})


def _less_dropout(c: SetupConfig, ev: Evidence) -> Change | None:
    return {"model": {"dropout": 0.1}} if c.model.dropout > 0.1 else None


def _tanh(c: SetupConfig, ev: Evidence) -> Change | None:
    return _if_new(c, {"model": {"nonlinearity": "tanh"}}) if c.model.cell == "rnn" else None


def _batch_32(c: SetupConfig, ev: Evidence) -> Change | None:
    return {"training": {"batch_size": 32}} if c.training.batch_size != 32 else None


TREATMENTS: list[Treatment] = [
    Treatment("scale-inputs-and-target", ("D102", "D103", "D104", "T305", "T307", "T313", "T303"), _scale_all,
              "x = (x - x_train.mean(0)) / x_train.std(0)   # and y likewise; invert y for metrics",
              "norm = keras.layers.Normalization(axis=-1); norm.adapt(x_train)"),
    Treatment("scale-target", ("D104", "T313"), _scale_target,
              "y = (y - y_train.mean()) / y_train.std()   # predict scaled, invert for metrics",
              "y = (y - y_train.mean()) / y_train.std()"),
    Treatment("difference-target", ("D107",), _difference,
              "target = y[t + h] - y[t]   # forecast = y[t] + prediction",
              "target = y[t + h] - y[t]   # forecast = y[t] + prediction"),
    Treatment("learning-rate-from-range-test", ("T301", "T302", "T304"), _suggested_lr,
              "torch.optim.Adam(model.parameters(), lr=SUGGESTED)", "keras.optimizers.Adam(learning_rate=SUGGESTED)"),
    Treatment("learning-rate-down-10x", ("T301", "T304"), _lr_down,
              "for g in optimizer.param_groups: g['lr'] /= 10", "optimizer.learning_rate = optimizer.learning_rate / 10"),
    Treatment("switch-to-adam", ("T302",), _adam,
              "torch.optim.Adam(model.parameters(), lr=1e-3)", "keras.optimizers.Adam(learning_rate=1e-3)"),
    Treatment("clip-gradients", ("T304", "T301"), _clip,
              "torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)   # after backward()",
              "keras.optimizers.Adam(clipnorm=1.0)"),
    Treatment("orthogonal-init", ("M206", "T303"), _orthogonal,
              "nn.init.orthogonal_(rnn.weight_hh_l0)   # each gate block", "LSTM(..., recurrent_initializer='orthogonal')"),
    Treatment("forget-bias-1", ("M207", "T303"), _forget_bias,
              "rnn.bias_ih_l0.data[H:2*H] = 1.0; rnn.bias_hh_l0.data[H:2*H] = 0.0", "LSTM(..., unit_forget_bias=True)"),
    Treatment("lstm-instead-of-rnn", ("T303", "M211"), _lstm_cell, "nn.LSTM(...) in place of nn.RNN(...)", "keras.layers.LSTM in place of SimpleRNN"),
    Treatment("fewer-layers", ("M205",), _shallower, "nn.LSTM(..., num_layers=2)", "stack at most two LSTM layers"),
    Treatment("wider-model", ("M203",), _wider, "nn.LSTM(..., hidden_size=4 * H)", "keras.layers.LSTM(4 * units)"),
    Treatment("smaller-model", ("M204", "D116"), _smaller, "nn.LSTM(..., hidden_size=H // 4)", "keras.layers.LSTM(units // 4)"),
    Treatment("regularize-and-stop-early", ("T308", "M204", "D116"), _regularize,
              "nn.Dropout(0.2) before the head; AdamW(weight_decay=1e-4); stop when val loss stalls 3 epochs",
              "LSTM(..., dropout=0.2); keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True)"),
    Treatment("window-covers-period", ("D108",), _longer_window,
              "make windows of at least the dominant period (the autocorrelation peak) in steps",
              "keras.utils.timeseries_dataset_from_array(..., sequence_length=PERIOD_PLUS)"),
    Treatment("downsample-sequences", ("D109",), _downsample_to_reach,
              "x = x.unfold(1, k, k).mean(-1)   # average every k steps",
              "keras.layers.AveragePooling1D(pool_size=k) before the LSTM"),
    Treatment("downsample-to-100-steps", ("D109",), _downsample_to_short,
              "x = x.unfold(1, k, k).mean(-1)   # average every k steps",
              "keras.layers.AveragePooling1D(pool_size=k) before the LSTM"),
    Treatment("read-out-true-end", ("M209", "D112"), _true_end,
              "nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)",
              "keras.layers.Masking(mask_value=PAD) before the LSTM"),
    Treatment("balanced-class-weights", ("D111",), _class_weights,
              "nn.CrossEntropyLoss(weight=n / (C * counts))", "model.fit(..., class_weight=balanced)"),
    Treatment("output-matches-loss", ("M201",), _matching_output,
              "logits out (no softmax/sigmoid); nn.CrossEntropyLoss / BCEWithLogitsLoss / MSELoss",
              "Dense(C) with from_logits=True losses, or a linear output with 'mse'"),
    Treatment("less-dropout", ("M213",), _less_dropout, "nn.Dropout(0.1)", "LSTM(..., dropout=0.1)"),
    Treatment("tanh-recurrence", ("M211",), _tanh, "nn.RNN(..., nonlinearity='tanh')", "SimpleRNN(activation='tanh')"),
    Treatment("batch-size-32", ("T311",), _batch_32, "DataLoader(..., batch_size=32)", "model.fit(..., batch_size=32)"),
]
