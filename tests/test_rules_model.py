"""M2xx rules: each fires on its fault and stays silent on the near miss.

Static rules are checked on facts inspected from real setups (no training);
rules that judge what training did are checked on hand-made evidence, and M203
once end to end on synthetic data where the capacity is controlled.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lstm_doctor import setup_from
from lstm_doctor.evidence import Evidence
from lstm_doctor.inspect import inspect_setup
from lstm_doctor.inspect.model_facts import model_facts
from lstm_doctor.objective import Objective
from lstm_doctor.probes import ProbeContext
from lstm_doctor.probes.baselines import baselines
from lstm_doctor.probes.training_run import training_run
from lstm_doctor.probes.wider_twin import wider_twin
from lstm_doctor.budget import get_budget
from lstm_doctor.rules import model as rules
from lstm_doctor.rules import page
from lstm_doctor.setups import Setup


def _codes(setup, data: bool = False) -> dict[str, object]:
    """Findings of the model rules on what inspection reads from ``setup`` (the data facts too
    when a rule needs them: they cost autocorrelations and stationarity tests)."""
    ev = inspect_setup(setup) if data else Evidence(model_facts(setup), task=setup.data.task)
    checks = [rules.output_loss_mismatch, rules.metric_task_mismatch, rules.deep_stack, rules.poor_initialization,
              rules.forget_bias, rules.readout_misplaced, rules.sequence_shape_mismatch,
              rules.unbounded_recurrent_activation, rules.excessive_dropout]
    return {f.code: f for f in (check(ev) for check in checks) if f is not None}


def _sun(frame, data=None, model=None, training=None):
    return setup_from(frame, data={"target": "sunspots", "features": ["sunspots"], "window": 12, **(data or {})},
                      model={"hidden": 8, **(model or {})}, training=training)


# ---------------------------------------------------------------- M201


def test_m201_sigmoid_on_raw_co2_but_not_on_minmax_target(co2_frame):
    raw = setup_from(co2_frame, data={"target": "co2", "window": 12}, model={"hidden": 8, "output_activation": "sigmoid"})
    found = _codes(raw)["M201"]
    assert found.severity == "critical" and found.evidence["target_share_outside"] == {"0..1": 1.0}
    assert "sigmoid" in found.summary and "100%" in found.summary
    scaled = setup_from(co2_frame, data={"target": "co2", "window": 12, "scale": "minmax"},
                        model={"hidden": 8, "output_activation": "sigmoid"})
    assert "M201" not in _codes(scaled)  # training targets lie in [0, 1]


def test_m201_tanh_and_relu_against_the_target_range(sunspots_frame):
    assert "M201" in _codes(_sun(sunspots_frame, {"scale": "standard"}, {"output_activation": "tanh"}))
    assert "M201" not in _codes(_sun(sunspots_frame, {"scale": "minmax"}, {"output_activation": "tanh"}))
    assert "M201" in _codes(_sun(sunspots_frame, {"scale": "standard"}, {"output_activation": "relu"}))
    assert "M201" not in _codes(_sun(sunspots_frame, {}, {"output_activation": "relu"}))  # counts are never negative


def test_m201_double_activation_and_one_output_softmax(italy_power):
    make = lambda act: setup_from(italy_power, data={"task": "binary"}, model={"hidden": 8, "output_activation": act},
                                  training={"loss": "bce"})
    assert "squashed twice" in _codes(make("sigmoid"))["M201"].summary
    assert "always exactly 1" in _codes(make("softmax"))["M201"].summary
    relu = _codes(make("relu"))["M201"]
    assert relu.severity == "critical" and "never drops under 0.5" in relu.summary
    assert _codes(make("tanh"))["M201"].severity == "warning"
    assert "M201" not in _codes(make("none"))


def test_m201_on_hand_made_evidence():
    base = dict(task="regression", n_outputs=1, target_share_outside={"0..1": 0.3, "-1..1": 0.005, "0..inf": 0.2})
    assert rules.output_loss_mismatch(Evidence(output_activation="none", loss="bce", **base)).code == "M201"
    assert rules.output_loss_mismatch(Evidence(output_activation="none", loss="mse", **base)) is None
    # 0.5% beyond tanh's reach is under the 1% line.
    assert rules.output_loss_mismatch(Evidence(output_activation="tanh", loss="mse", **base)) is None
    assert rules.output_loss_mismatch(Evidence(output_activation="log_softmax", loss="ce", task="multiclass", n_outputs=3)) is None
    assert rules.output_loss_mismatch(Evidence(output_activation=None, loss="mse", **base)) is None  # unknown head


# ---------------------------------------------------------------- M202


def test_m202_metric_task_mismatch(sunspots_frame, italy_power):
    assert "accuracy" in _codes(_sun(sunspots_frame, training={"metrics": ["accuracy"]}))["M202"].summary
    assert "M202" not in _codes(_sun(sunspots_frame, training={"metrics": ["mae", "rmse"]}))
    cls = lambda metrics: setup_from(italy_power, data={"task": "binary"}, model={"hidden": 8},
                                     training={"loss": "bce", "metrics": metrics})
    assert "M202" in _codes(cls(["MAE"]))
    assert "M202" not in _codes(cls(["accuracy", "f1"]))


# ---------------------------------------------------------------- M203


def _m203_evidence(**overrides) -> Evidence:
    train = list(np.linspace(1.0, 0.62, 60)) + [0.61] * 60  # learns, then settles
    ev = dict(hidden_sizes=[2], linear_baseline_loss=0.12, input_free_loss=1.0, train_loss_steps=train,
              val_history=[{"epoch": 1, "step": 60, "loss": 0.7}, {"epoch": 2, "step": 120, "loss": 0.62}],
              cells=["lstm"], recurrent_layers=1)
    ev.update(overrides)
    return Evidence(ev)


def test_m203_on_hand_made_evidence():
    found = rules.too_little_capacity(_m203_evidence())
    assert found.code == "M203" and "0.62" in found.summary and "0.12" in found.summary
    assert rules.too_little_capacity(_m203_evidence(hidden_sizes=[128])) is None  # wide: not a capacity problem
    assert rules.too_little_capacity(_m203_evidence(linear_baseline_loss=0.6)) is None  # linear no better
    stuck = [{"epoch": 2, "step": 120, "loss": 0.95}]
    assert rules.too_little_capacity(_m203_evidence(val_history=stuck)) is None  # never left the constant
    falling = list(np.linspace(1.0, 0.3, 120))
    assert rules.too_little_capacity(_m203_evidence(train_loss_steps=falling)) is None  # still improving
    memorized = list(np.linspace(1.0, 0.05, 60)) + [0.05] * 60
    assert rules.too_little_capacity(_m203_evidence(train_loss_steps=memorized)) is None  # overfits, not underfits


def test_m203_still_improving_but_unable_to_memorise_a_handful():
    # Still falling (T312 alone would say "train longer"), but even 16 windows cannot be memorised:
    # the sound recipe ends at 40% of a constant's loss, where a model wide enough gets under 10%.
    falling = list(np.linspace(1.0, 0.62, 120))
    handful = {"small_batch_constant_loss": 1.9, "small_batch_sound_best": 0.76}
    found = rules.too_little_capacity(_m203_evidence(train_loss_steps=falling, **handful))
    assert found.code == "M203" and found.evidence["small_batch_over_constant"] == pytest.approx(0.4)
    memorised = {"small_batch_constant_loss": 1.9, "small_batch_sound_best": 0.1}  # near miss: it can memorise
    assert rules.too_little_capacity(_m203_evidence(train_loss_steps=falling, **memorised)) is None


def test_m203_for_classes_judges_balanced_accuracy():
    base = {"majority": {"loss": 0.69, "balanced_accuracy": 0.5}, "linear": {"loss": 1.4, "balanced_accuracy": 0.95}}
    history = [{"step": 60, "loss": 0.62, "balanced_accuracy": 0.58}, {"step": 120, "loss": 0.6, "balanced_accuracy": 0.61}]
    ev = _m203_evidence(task="binary", baselines=base, val_history=history)
    found = rules.too_little_capacity(ev)
    assert found.evidence["measure"] == "balanced accuracy" and "0.61" in found.summary
    # The logistic regression's cross-entropy (1.4, overconfident) would have hidden it.
    close = [{"step": 120, "loss": 0.3, "balanced_accuracy": 0.9}]
    assert rules.too_little_capacity(_m203_evidence(task="binary", baselines=base, val_history=close)) is None


def test_m203_judges_a_narrow_model_by_its_wider_twin_trained_as_long():
    # As on BasicMotions: 2 units reach 0.61 balanced accuracy, a logistic regression only 0.59, and the run is
    # still improving (T312 alone would say "train longer"): without the twin there is nothing to report.
    base = {"majority": {"balanced_accuracy": 0.25}, "linear": {"balanced_accuracy": 0.59}}
    ev = dict(task="multiclass", baselines=base, train_loss_steps=list(np.linspace(1.4, 0.9, 120)),
              val_history=[{"step": 60, "loss": 1.1, "balanced_accuracy": 0.5}, {"step": 120, "loss": 1.0, "balanced_accuracy": 0.61}])
    assert rules.too_little_capacity(_m203_evidence(**ev)) is None

    def with_twin(twin, stopped="completed", **changes):
        return rules.too_little_capacity(_m203_evidence(**{**ev, **changes}, wider_hidden=16, wider_stopped=stopped,
                                                        wider_val_history=[{"step": 120, "loss": 0.4, "balanced_accuracy": twin}]))

    # The same setup with 16 units, trained as long, reaches 0.90: the units are what is missing.
    found = with_twin(0.9)
    assert found.evidence["yardstick"] == "wider twin" and "16 units" in found.summary and "0.90" in found.summary
    assert found.evidence["share_of_yardstick_gain"] == pytest.approx((0.61 - 0.25) / (0.9 - 0.25))
    # Stuck near chance while the twin learns: still the units (without a twin, other codes explain a constant).
    stuck = dict(val_history=[{"step": 120, "loss": 2.0, "balanced_accuracy": 0.27}], train_loss_steps=list(np.linspace(2.2, 1.9, 120)))
    assert with_twin(0.9, **stuck).code == "M203"
    assert rules.too_little_capacity(_m203_evidence(**{**ev, **stuck})) is None
    assert with_twin(0.63) is None  # the twin does no better: not the units
    # As on JapaneseVowels (9 classes): 1 unit at 0.19, the twin 0.96, a logistic regression 0.98. The linear
    # model stays the yardstick; the twin shows that the same setup learns with more units.
    vowels = dict(baselines={"majority": {"balanced_accuracy": 0.11}, "linear": {"balanced_accuracy": 0.98}},
                  val_history=[{"step": 120, "loss": 1.87, "balanced_accuracy": 0.19}], train_loss_steps=list(np.linspace(2.2, 1.9, 120)))
    found = with_twin(0.96, **vowels)
    assert found.evidence["yardstick"] == "linear" and found.evidence["twin_learns"] and "0.96" in found.summary
    assert rules.too_little_capacity(_m203_evidence(**{**ev, **vowels})) is None  # under 10% of linear's gain, alone
    assert with_twin(0.9, stopped="diverged") is None  # a twin that broke down is no yardstick


def test_the_wider_twin_is_trained_for_narrow_models_of_a_setup_file_only():
    data = _lagged_linear(n=300)

    def twin(hidden):
        setup = setup_from(data, model={"hidden": hidden}, training={"lr": 1e-2, "epochs": 3, "batch_size": 64})
        ctx = ProbeContext(setup, get_budget("quick"))
        wider_twin(ctx)
        return ctx.evidence

    ev = twin(1)
    assert ev["wider_hidden"] == 16 and ev["wider_stopped"] == "completed" and len(ev["wider_val_history"]) >= 3
    assert "wider_hidden" not in twin(8)  # 8 units for 4 features: not narrow


def _lagged_linear(n=1000, steps=12, feats=4, seed=0):
    """A target that is a fixed weighted sum of four features at several lags: linear, and
    more than a 1-unit recurrent state can carry."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, steps, feats)).astype(np.float32)
    w = rng.normal(size=(steps, feats)) * (np.arange(steps)[:, None] >= steps - 6)
    y = (X * w).sum(axis=(1, 2))
    y = y / y.std() + 0.1 * rng.normal(size=n)
    return {"X": X, "y": y.astype(np.float32)}


@pytest.mark.slow
def test_m203_end_to_end_tiny_model_loses_to_linear():
    data = _lagged_linear()

    def judge(hidden):
        setup = setup_from(data, model={"hidden": hidden}, training={"lr": 1e-2, "epochs": 30, "batch_size": 64})
        ctx = ProbeContext(setup, get_budget("quick"))
        ctx.evidence.update(model_facts(setup))
        baselines(ctx)
        training_run(ctx)
        return rules.too_little_capacity(ctx.evidence)

    found = judge(1)
    assert found.code == "M203" and found.evidence["share_of_yardstick_gain"] < 0.8
    assert judge(4) is None  # narrow too, but still improving when the run ends: more epochs first


# ---------------------------------------------------------------- M204


def _m204_evidence(**overrides) -> Evidence:
    val = [0.9, 0.6, 0.45, 0.4, 0.42, 0.5, 0.6, 0.7, 0.8, 0.9]
    ev = dict(parameters=50_000, train_target_values=200, dropout_max=0.0, weight_decay=0.0, early_stopping=None,
              val_history=[{"epoch": i + 1, "step": 10 * (i + 1), "loss": v} for i, v in enumerate(val)],
              train_loss_steps=list(np.geomspace(1.0, 0.01, 100)), cells=["lstm"], hidden_sizes=[128], recurrent_layers=2)
    ev.update(overrides)
    return Evidence(ev)


def test_m204_on_hand_made_evidence():
    found = rules.too_much_capacity(_m204_evidence())
    assert found.code == "M204" and "250" in found.summary
    assert rules.too_much_capacity(_m204_evidence(dropout_max=0.2)) is None
    assert rules.too_much_capacity(_m204_evidence(early_stopping=5)) is None
    assert rules.too_much_capacity(_m204_evidence(parameters=1_000)) is None  # 5 per value
    flat = [{"epoch": i + 1, "step": 10 * (i + 1), "loss": v} for i, v in enumerate([0.9, 0.6, 0.5, 0.45, 0.44, 0.44, 0.43, 0.43, 0.43, 0.42])]
    assert rules.too_much_capacity(_m204_evidence(val_history=flat)) is None  # no overfitting measured
    assert rules.too_much_capacity(_m204_evidence(val_history=[])) is None  # not measured: silent


# ---------------------------------------------------------------- M205


def test_m205_deep_stack(sunspots_frame):
    found = _codes(_sun(sunspots_frame, model={"layers": 5, "hidden": 4}))["M205"]
    assert found.severity == "warning" and "5 stacked" in found.summary
    assert "M205" not in _codes(_sun(sunspots_frame, model={"layers": 4, "hidden": 4}))
    assert rules.deep_stack(Evidence(recurrent_layers=8, normalization_layers=[], residual_paths=False)).severity == "critical"
    fading = rules.deep_stack(Evidence(recurrent_layers=6, normalization_layers=[], residual_paths=False, grad_layer_ratio=0.02))
    assert fading.severity == "warning" and "50x less gradient" in fading.summary
    trains = Evidence(recurrent_layers=6, normalization_layers=[], residual_paths=False, grad_layer_ratio=0.8,
                      val_history=[{"loss": 0.12}], input_free_loss=1.0, linear_baseline_loss=0.1)
    assert rules.deep_stack(trains).severity == "info"  # it reaches the linear model's level: depth is not biting
    assert rules.deep_stack(Evidence(recurrent_layers=6, normalization_layers=["LayerNorm"], residual_paths=None)) is None
    assert rules.deep_stack(Evidence(recurrent_layers=6, normalization_layers=[], residual_paths=True)) is None


# ---------------------------------------------------------------- M206


def test_m206_initialization_schemes(co2_frame):
    make = lambda init: setup_from(co2_frame, data={"target": "co2", "window": 12, "scale": "standard"},
                                   model={"hidden": 32, "init": init})
    big = _codes(make("normal:1.0"))["M206"]
    assert big.severity == "warning" and "explodes" in big.summary
    assert min(big.evidence["spectral_radius_above"].values()) > 2
    tiny = _codes(make("normal:0.001"))["M206"]
    assert "forgets" in tiny.summary
    assert _codes(make("zeros"))["M206"].severity == "critical"
    for sound in ("default", "xavier", "orthogonal", "normal:0.1"):
        assert "M206" not in _codes(make(sound)), sound


# ---------------------------------------------------------------- M207


def test_m207_forget_bias_judged_on_memory_against_the_period(sunspots_frame):
    def ev(bias, memory, period=11):
        facts = Evidence(model_facts(_sun(sunspots_frame, data={"window": 24}, model={"forget_bias": bias})))
        facts.update(memory_length=memory, dominant_period=period, steps=24)
        return facts

    found = rules.forget_bias(ev("default", memory=4))
    assert found.severity == "warning" and "remembers 4 steps" in found.summary
    assert rules.forget_bias(ev(1.0, memory=4)) is None  # already opened
    assert rules.forget_bias(ev("default", memory=15)) is None  # remembers past the period
    assert rules.forget_bias(ev("default", memory=4, period=30)) is None  # period beyond the window: D108's business
    assert rules.forget_bias(ev("default", memory=None)) is None  # not measured: silent on a default bias
    assert rules.forget_bias(ev(-3.0, memory=None)).severity == "info"
    better = ev("default", memory=4)
    better.update(val_history=[{"loss": 0.35}], input_free_loss=1.0, linear_baseline_loss=0.3)
    assert rules.forget_bias(better) is None  # 93% of a linear model's gain: memory is enough
    worse = ev("default", memory=4)
    worse.update(val_history=[{"loss": 0.6}], input_free_loss=1.0, linear_baseline_loss=0.3)
    assert rules.forget_bias(worse).severity == "warning"  # 57%
    untrained = ev("default", memory=4)
    untrained.update(val_history=[{"loss": 0.95}], input_free_loss=1.0, linear_baseline_loss=0.3)
    assert rules.forget_bias(untrained) is None  # 7%: hardly trained, its memory is an untrained model's


# ---------------------------------------------------------------- M209


def _padded(italy_power, side="post"):
    """ItalyPowerDemand cut to random lengths and zero-padded back to 24 steps."""
    rng = np.random.default_rng(0)
    X, Xv = italy_power["X"].copy(), italy_power["X_val"].copy()
    lengths, lengths_val = rng.integers(8, 25, len(X)), rng.integers(8, 25, len(Xv))
    for x, lens in ((X, lengths), (Xv, lengths_val)):
        for i, n in enumerate(lens):
            if side == "post":
                x[i, n:] = 0.0
            else:
                x[i] = np.concatenate([np.zeros_like(x[i, n:]), x[i, :n]])
    return {"X": X, "y": italy_power["y"], "X_val": Xv, "y_val": italy_power["y_val"]}, lengths, lengths_val


def test_m209_last_step_of_post_padded_sequences(italy_power):
    arrays, lengths, lengths_val = _padded(italy_power)
    make = lambda arr, readout: setup_from(arr, data={"task": "binary"}, model={"hidden": 8, "readout": readout},
                                           training={"loss": "bce"})
    codes = lambda setup: _codes(setup, data=True)
    found = codes(make(arrays, "last"))["M209"]
    assert found.evidence["padded_sequences"] > 0.8 and found.severity == "critical"
    assert "true-end needs the sequence lengths" in codes(make(arrays, "true-end"))["M209"].summary
    with_lengths = {**arrays, "lengths": lengths, "lengths_val": lengths_val}
    assert "M209" not in codes(make(with_lengths, "true-end"))
    assert "M209" in codes(make(with_lengths, "last"))  # lengths given but not used
    pre, _, _ = _padded(italy_power, side="pre")
    assert "M209" not in codes(make(pre, "last"))  # pre-padding ends on real data


def test_m209_one_direction_read():
    assert rules.readout_misplaced(Evidence(readout_directions="forward-only")).severity == "critical"
    assert rules.readout_misplaced(Evidence(readout_directions="both", readout="last", padding={"side": None})) is None


# ---------------------------------------------------------------- M210


class _LastStep(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn, self.head = nn.LSTM(1, 8, batch_first=True), nn.Linear(8, 1)

    def forward(self, x):
        return self.head(self.rnn(x)[0][:, -1])


class _EveryStep(_LastStep):
    def forward(self, x):
        return self.head(self.rnn(x)[0])


def test_m210_sequence_label_repeated_at_every_step(italy_power):
    X, labels = italy_power["X"], italy_power["y"]
    repeated = {"X": X, "y": np.repeat(labels[:, None], X.shape[1], axis=1)}
    make = lambda arrays: setup_from(arrays, data={"task": "binary"}, model={"hidden": 8}, training={"loss": "bce"})
    found = _codes(make(repeated))["M210"]
    assert found.evidence["per_step_target_constant_share"] == 1.0
    varying = {"X": X, "y": (X[..., 0] > 0).astype(int)}  # a label per hour that changes
    assert "M210" not in _codes(make(varying))


def test_m210_per_step_targets_with_a_last_step_model(italy_power):
    # Per-step regression targets: each hour's demand from the hours up to it.
    X = italy_power["X"]
    data = setup_from({"X": X, "y": X[..., 0]}, data={"val_fraction": 0.3}).data
    user = lambda factory: Setup(data=data, model_factory=factory, objective=Objective("mse", "regression", per_step=True),
                                 optimizer_factory=lambda p: torch.optim.Adam(p, lr=1e-3))
    found = _codes(user(_LastStep))["M210"]
    assert "one per sequence" in found.summary
    assert "M210" not in _codes(user(_EveryStep))
    assert rules.sequence_shape_mismatch(Evidence(output_per_step=None, target_per_step=True)) is None


# ---------------------------------------------------------------- M211 / M213


def test_m211_relu_recurrence(sunspots_frame):
    found = _codes(_sun(sunspots_frame, model={"cell": "rnn", "nonlinearity": "relu"}))["M211"]
    assert found.evidence["relu_layers"] == ["rnn"] and "rnn.l0" in found.evidence["recurrent_radius"]
    assert "M211" not in _codes(_sun(sunspots_frame, model={"cell": "rnn", "nonlinearity": "tanh"}))


def test_m213_excessive_dropout(sunspots_frame):
    found = _codes(_sun(sunspots_frame, model={"dropout": 0.8, "hidden": 16}))["M213"]
    assert "80%" in found.summary
    assert "M213" not in _codes(_sun(sunspots_frame, model={"dropout": 0.3, "hidden": 16}))
    assert rules.excessive_dropout(Evidence(dropout_max=0.5, hidden_sizes=[256])) is None  # wide enough for 0.5
    assert rules.excessive_dropout(Evidence(dropout_max=0.7, hidden_sizes=[1024])).code == "M213"
    cost = rules.excessive_dropout(Evidence(dropout_max=0.6, hidden_sizes=[32], train_loss_steps=[0.9] * 20,
                                            val_history=[{"loss": 0.4}]))
    assert "above the validation loss" in cost.summary


def test_every_model_rule_has_a_full_page():
    for code in ("M201", "M202", "M203", "M204", "M205", "M206", "M207", "M209", "M210", "M211", "M213"):
        text = page(code)
        for section in ("What it means", "How it is measured", "Example", "Fix", "Related:"):
            assert section in text, (code, section)
        assert "PyTorch:" in text and "Keras:" in text, code
