"""The setup file: what it accepts, and errors that name the field, the value given and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from lstm_doctor.config import SetupConfig, load_config, parse_config
from lstm_doctor.errors import InputError


def write(tmp_path: Path, text: str, name: str = "setup.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(raw: dict) -> str:
    with pytest.raises(InputError) as info:
        parse_config(raw)
    return str(info.value)


def test_full_setup_file_round_trips(tmp_path):
    path = write(tmp_path, """
data: {path: series.csv, target: load, features: [load, temp], time: timestamp, window: 48, horizon: 2,
       task: regression, scale: standard, split: temporal, val_fraction: 0.25}
model: {cell: gru, hidden: 16, layers: 2, dropout: 0.1, bidirectional: true, output_activation: tanh,
        init: "normal:0.05", readout: mean}
training: {loss: huber, metrics: [mae], optimizer: sgd, lr: 1.0e-2, batch_size: 8, epochs: 3, clip_norm: 1.0,
           weight_decay: 0.01, seed: 7}
""")
    cfg, base = load_config(path)
    assert base == tmp_path.resolve()
    assert (cfg.data.window, cfg.data.horizon, cfg.data.targets, cfg.data.val_fraction) == (48, 2, ["load"], 0.25)
    assert (cfg.model.cell, cfg.model.hidden, cfg.model.init, cfg.model.readout) == ("gru", 16, "normal:0.05", "mean")
    assert (cfg.training.loss, cfg.training.lr, cfg.training.clip_norm, cfg.training.seed) == ("huber", 0.01, 1.0, 7)


def test_empty_file_and_empty_sections_mean_defaults(tmp_path):
    assert load_config(write(tmp_path, ""))[0] == SetupConfig()
    cfg, _ = load_config(write(tmp_path, "data:\nmodel:\ntraining:\n"), {"window": 5})
    assert cfg.data.window == 5 and cfg.model == SetupConfig().model


def test_options_override_the_file(tmp_path):
    path = write(tmp_path, "data: {target: a, window: 48}\ntraining: {lr: 0.1}\n")
    cfg, _ = load_config(path, {"window": 12, "lr": None, "target": ["a", "b"]})
    assert cfg.data.window == 12 and cfg.training.lr == 0.1 and cfg.data.targets == ["a", "b"]


def test_missing_setup_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("text, expected", [
    ("data: {window: 3\n", "not valid YAML"),
    ("data:\n  window: 3\n   horizon: 1\n", "not valid YAML"),
    ("- data\n- model\n", "must hold a mapping"),
    ("just a string", "must hold a mapping"),
    ("data: 5\n", r"data: Input should be a valid dictionary \(got 5\)"),
])
def test_bad_yaml(tmp_path, text, expected):
    with pytest.raises(InputError, match=expected):
        load_config(write(tmp_path, text))


def test_setup_file_not_utf8(tmp_path):
    path = tmp_path / "setup.yaml"
    path.write_bytes("data: {target: d\xe9bit}\n".encode("latin-1"))
    with pytest.raises(InputError, match="not valid YAML"):
        load_config(path)


def test_unknown_key_names_it_and_lists_the_allowed_ones():
    msg = error_of({"data": {"windw": 3}})
    assert "data.windw: not a setup option" in msg
    assert "window" in msg.split("allowed here:")[1]
    assert "foo: not a setup option (allowed here: data, model, training)" in error_of({"foo": 1})


@pytest.mark.parametrize("raw, field, given, allowed", [
    ({"data": {"window": "long"}}, "data.window", "'long'", "valid integer"),
    ({"data": {"window": 0}}, "data.window", "0", "greater than or equal to 1"),
    ({"data": {"val_fraction": 1.5}}, "data.val_fraction", "1.5", "less than 1"),
    ({"data": {"task": "forecast"}}, "data.task", "'forecast'", "'regression', 'binary' or 'multiclass'"),
    ({"data": {"target": 5}}, "data.target", "5", "valid string; or Input should be a valid list"),
    ({"data": {"features": ["a", 3]}}, "data.features.1", "3", "valid string"),
    ({"model": {"cell": "transformer"}}, "model.cell", "'transformer'", "'lstm', 'gru' or 'rnn'"),
    ({"model": {"init": "he"}}, "model.init", "'he'", "normal:STD"),
    ({"model": {"forget_bias": "high"}}, "model.forget_bias", "'high'", "valid number"),
    ({"model": {"dropout": 1.0}}, "model.dropout", "1.0", "less than 1"),
    ({"training": {"lr": "fast"}}, "training.lr", "'fast'", "valid number"),
    ({"training": {"lr": -0.1}}, "training.lr", "-0.1", "greater than 0"),
    ({"training": {"optimizer": "lbfgs"}}, "training.optimizer", "'lbfgs'", "'adam', 'adamw', 'sgd' or 'rmsprop'"),
    ({"training": {"seed": -1}}, "training.seed", "-1", "greater than or equal to 0"),
])
def test_wrong_value_names_field_value_and_what_is_allowed(raw, field, given, allowed):
    msg = error_of(raw)
    assert f"{field}: " in msg and f"(got {given})" in msg and allowed in msg
    assert "\n" not in msg  # one paragraph


def test_several_errors_in_one_message():
    msg = error_of({"data": {"window": "x"}, "model": {"hidden": 0}})
    assert "data.window" in msg and "model.hidden" in msg


def test_option_that_set_a_bad_value_is_named():
    with pytest.raises(InputError, match=r"data\.window \(--window\): .*\(got 'x'\)"):
        load_config(None, {"window": "x"})


@pytest.mark.parametrize("raw, expected", [
    ({"data": {"task": "multiclass"}, "training": {"loss": "bce"}}, "'bce' cannot score a multiclass"),
    ({"data": {"task": "regression"}, "training": {"loss": "ce"}}, "'ce' needs class labels"),
    ({"data": {"task": "binary"}, "training": {"loss": "ce"}}, "one logit per class"),
    ({"model": {"cell": "gru", "forget_bias": 1.0}}, "forget_bias applies to LSTM cells only"),
    ({"model": {"cell": "lstm", "nonlinearity": "relu"}}, "nonlinearity applies to `cell: rnn` only"),
])
def test_combinations_that_cannot_run(raw, expected):
    assert expected in error_of(raw)


def test_faults_that_are_findings_are_accepted():
    # Taken as the user has it: these are for the rules to find, not errors.
    cfg = parse_config({"data": {"task": "binary", "scale": "none"}, "model": {"output_activation": "sigmoid", "init": "zeros"},
                        "training": {"loss": "mse", "lr": 1e-9, "metrics": ["accuracy"]}})
    assert cfg.model.output_activation == "sigmoid" and cfg.training.lr == 1e-9
    assert parse_config({"model": {"cell": "rnn", "nonlinearity": "relu"}}).model.nonlinearity == "relu"
    assert parse_config({"model": {"forget_bias": 1}}).model.forget_bias == 1.0


@pytest.mark.parametrize("scheme, ok", [("normal:0.1", True), ("normal:.5", True), ("normal:1e-3", True),
                                        ("normal:", False), ("normal:-1", False), ("normal:x", False)])
def test_init_normal_std(scheme, ok):
    if ok:
        assert parse_config({"model": {"init": scheme}}).model.init == scheme
    else:
        assert "model.init" in error_of({"model": {"init": scheme}})
