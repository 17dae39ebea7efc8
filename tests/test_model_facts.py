"""Model inspection: facts read from a fresh copy of the built-in model or the user's own module."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from lstm_doctor import setup_from
from lstm_doctor.inspect.model_facts import model_facts, spectral_radius
from lstm_doctor.objective import Objective
from lstm_doctor.setups import Setup


def _co2(co2_frame, **model):
    return setup_from(co2_frame, data={"target": "co2", "window": 24}, model={"hidden": 8, **model})


def test_builtin_structure_read_from_the_model(co2_frame):
    facts = model_facts(_co2(co2_frame, layers=2, bidirectional=True, dropout=0.3, output_activation="sigmoid"))
    assert facts["cells"] == ["lstm"]
    assert facts["recurrent_layers"] == 2 and facts["hidden_sizes"] == [8, 8]
    assert facts["bidirectional"] is True
    assert facts["dropout_between_layers"] == pytest.approx(0.3) and facts["dropout_before_head"] == pytest.approx(0.3)
    assert facts["normalization_layers"] == [] and facts["residual_paths"] is False
    assert facts["output_activation"] == "sigmoid" and facts["loss"] == "mse" and facts["n_outputs"] == 1
    assert set(facts["weight_std"]) == {"rnn.l0", "rnn.l0_reverse", "rnn.l1", "rnn.l1_reverse"}
    assert facts["readout"] == "last" and facts["readout_directions"] == "both"
    # CO2 in ppm, as fed: every target is outside the sigmoid's reach.
    lo, hi = facts["target_range"]
    assert 300 < lo < hi < 400
    assert facts["target_share_outside"]["0..1"] == 1.0 and facts["target_share_outside"]["0..inf"] == 0.0
    assert facts["parameters"] == sum(p.numel() for p in _co2(co2_frame, layers=2, bidirectional=True).new_model().parameters())


def test_default_init_matches_pytorch_scale_and_radius(co2_frame):
    facts = model_facts(_co2(co2_frame, hidden=32))
    std, default = facts["weight_std"]["rnn.l0"], facts["weight_std_default"]["rnn.l0"]
    assert default == pytest.approx(1 / math.sqrt(3 * 32))
    assert 0.8 < std["recurrent"] / default < 1.2 and 0.7 < std["input"] / default < 1.3
    # U(-1/sqrt(H), 1/sqrt(H)) blocks have radius ~ 1/sqrt(3) by the circular law.
    assert set(facts["recurrent_radius"]["rnn.l0"]) == set("ifgo")
    assert all(0.3 < r < 0.9 for r in facts["recurrent_radius"]["rnn.l0"].values())
    assert abs(facts["forget_bias"]["rnn.l0"]) < 0.2
    assert facts["weights_all_zero"] == []


def test_init_schemes_and_forget_bias_are_seen(co2_frame):
    big = model_facts(_co2(co2_frame, hidden=32, init="normal:1.0"))
    assert big["weight_std"]["rnn.l0"]["recurrent"] / big["weight_std_default"]["rnn.l0"] > 8
    assert min(big["recurrent_radius"]["rnn.l0"].values()) > 3
    assert model_facts(_co2(co2_frame, init="zeros"))["weights_all_zero"] == ["rnn.l0"]
    assert model_facts(_co2(co2_frame, forget_bias=1.0))["forget_bias"]["rnn.l0"] == pytest.approx(1.0)
    assert model_facts(_co2(co2_frame, cell="gru"))["forget_bias"] == {}


def test_spectral_radius_dense_and_sparse_paths():
    rotation = torch.tensor([[0.0, -2.0], [2.0, 0.0]])  # eigenvalues +-2i
    assert spectral_radius(rotation) == pytest.approx(2.0)
    g = torch.Generator().manual_seed(0)
    big = torch.randn(260, 260, generator=g) / math.sqrt(260) * 1.5  # above the dense limit: ARPACK
    assert spectral_radius(big) == pytest.approx(float(np.abs(np.linalg.eigvals(big.double().numpy())).max()), rel=1e-2)


def test_relu_rnn_and_metrics_from_the_setup(sunspots_frame):
    setup = setup_from(sunspots_frame, data={"target": "sunspots", "features": ["sunspots"], "window": 12},
                       model={"cell": "rnn", "nonlinearity": "relu", "hidden": 8}, training={"metrics": ["accuracy"]})
    facts = model_facts(setup)
    assert facts["cells"] == ["rnn"] and facts["recurrent_nonlinearity"] == {"rnn": "relu"}
    assert set(facts["recurrent_radius"]["rnn.l0"]) == {"h"}
    assert facts["metrics"] == ["accuracy"]


class _Tagger(nn.Module):
    """A user's model: ReLU RNN, LayerNorm, dropout, a sigmoid module, one frozen weight."""

    def __init__(self, per_step: bool = False):
        super().__init__()
        self.rnn = nn.RNN(1, 8, nonlinearity="relu", batch_first=True)
        self.norm = nn.LayerNorm(8)
        self.drop = nn.Dropout(0.6)
        self.head = nn.Linear(8, 1)
        self.act = nn.Sigmoid()
        self.head.bias.requires_grad_(False)
        self.per_step = per_step

    def forward(self, x):
        out, _ = self.rnn(x)
        z = self.norm(out if self.per_step else out[:, -1])
        return self.act(self.head(self.drop(z))).squeeze(-1)


class _Functional(nn.Module):
    def __init__(self, activation):
        super().__init__()
        self.rnn, self.head, self.activation = nn.GRU(1, 4, batch_first=True), nn.Linear(4, 2), activation

    def forward(self, x):
        return self.activation(self.head(self.rnn(x)[0][:, -1]))


def _user_setup(data, factory, optimizer=lambda params: torch.optim.Adam(params, lr=1e-3, weight_decay=1e-4)):
    return Setup(data=data, model_factory=factory, objective=Objective("bce", "binary"), optimizer_factory=optimizer)


def test_user_module_facts(italy_power):
    data = setup_from(italy_power, data={"task": "binary"}, training={"loss": "bce"}).data
    facts = model_facts(_user_setup(data, _Tagger))
    assert facts["cells"] == ["rnn"] and facts["recurrent_nonlinearity"] == {"rnn": "relu"}
    assert facts["normalization_layers"] == ["LayerNorm"] and facts["residual_paths"] is None
    assert facts["dropout_max"] == pytest.approx(0.6) and facts["weight_decay"] == pytest.approx(1e-4)
    assert facts["output_activation"] == "sigmoid"  # the module's output, seen through .squeeze(-1)
    assert facts["frozen_parameters"] == {"head.bias": 1}
    assert facts["readout"] is None and facts["metrics"] is None
    assert facts["output_per_step"] is False and facts["target_per_step"] is False


def test_user_module_left_out_of_the_optimizer(italy_power):
    data = setup_from(italy_power, data={"task": "binary"}, training={"loss": "bce"}).data
    only_rnn = lambda params: torch.optim.SGD([p for p in params if p.shape != (1, 8)], lr=0.1)  # drops head.weight
    facts = model_facts(_user_setup(data, _Tagger, only_rnn))
    assert facts["parameters_not_in_optimizer"] == {"head.weight": 8}


def test_functional_activations(italy_power):
    data = setup_from(italy_power, data={"task": "binary"}, training={"loss": "bce"}).data
    assert model_facts(_user_setup(data, lambda: _Functional(lambda z: torch.softmax(z, -1))))["output_activation"] == "softmax"
    # A functional sigmoid cannot be told from a linear output by its values: unknown.
    assert model_facts(_user_setup(data, lambda: _Functional(torch.sigmoid)))["output_activation"] is None
    assert model_facts(_user_setup(data, lambda: _Functional(lambda z: z)))["output_activation"] == "none"  # the Linear's output


def test_per_step_targets_with_a_last_step_model():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 10, 1)).astype(np.float32)
    data = setup_from({"X": X, "y": (X[..., 0] > 0).astype(int)}, data={"task": "binary"}, training={"loss": "bce"}).data
    assert data.per_step
    assert model_facts(_user_setup(data, _Tagger))["output_per_step"] is False
    matched = model_facts(_user_setup(data, lambda: _Tagger(per_step=True)))
    assert matched["output_per_step"] is True and matched["target_per_step"] is True
