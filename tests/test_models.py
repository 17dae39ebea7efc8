"""The built-in models (every cell, readout, head and init scheme) and the objective's shapes."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from lstm_doctor.config import ModelConfig
from lstm_doctor.data.windows import AffineMap
from lstm_doctor.errors import InputError
from lstm_doctor.models import build_model, check_size, parameter_count
from lstm_doctor.objective import Objective, metrics_of

B, T, F = 5, 7, 3


def model(per_step: bool = False, outputs: int = 2, **kw) -> nn.Module:
    torch.manual_seed(0)
    return build_model(ModelConfig(hidden=6, **kw), F, outputs, per_step).eval()


def inputs(seed: int = 0) -> torch.Tensor:
    return torch.randn(B, T, F, generator=torch.Generator().manual_seed(seed))


LENGTHS = torch.tensor([7, 1, 4, 6, 2])


@pytest.mark.parametrize("cell, bidirectional, readout", list(itertools.product(
    ["lstm", "gru", "rnn"], [False, True], ["last", "mean", "true-end"])))
def test_head_shapes_for_every_cell(cell, bidirectional, readout):
    kw = dict(cell=cell, bidirectional=bidirectional, readout=readout, layers=2)
    assert model(**kw)(inputs(), LENGTHS).shape == (B, 2)
    assert model(per_step=True, **kw)(inputs(), LENGTHS).shape == (B, T, 2)
    assert model(**kw)(inputs()).shape == (B, 2)  # lengths are optional


def test_last_readout_is_the_last_step():
    m = model()
    out, _ = m.rnn(inputs())
    assert torch.allclose(m(inputs()), m.head(out[:, -1]))


@pytest.mark.parametrize("readout", ["true-end", "mean"])
def test_padding_does_not_reach_true_end_or_masked_mean(readout):
    m = model(readout=readout)
    x = inputs()
    padded = x.clone()
    padded[torch.arange(T)[None, :] >= LENGTHS[:, None]] = 99.0  # change only the padding
    assert torch.allclose(m(x, LENGTHS), m(padded, LENGTHS), atol=1e-6)
    assert not torch.allclose(model(readout="last")(x, LENGTHS), model(readout="last")(padded, LENGTHS))


def test_true_end_reads_each_sequence_at_its_length():
    m = model(readout="true-end")
    out, _ = m.rnn(inputs())
    expected = m.head(out[torch.arange(B), LENGTHS - 1])
    assert torch.allclose(m(inputs(), LENGTHS), expected)


def test_masked_mean_readout():
    m = model(readout="mean")
    out, _ = m.rnn(inputs())
    mask = (torch.arange(T)[None, :] < LENGTHS[:, None]).float().unsqueeze(-1)
    assert torch.allclose(m(inputs(), LENGTHS), m.head((out * mask).sum(1) / LENGTHS[:, None]), atol=1e-6)


def test_bidirectional_last_reads_backward_direction_at_step_zero():
    m = model(bidirectional=True)
    out, _ = m.rnn(inputs())
    h = 6
    expected = m.head(torch.cat([out[:, -1, :h], out[:, 0, h:]], dim=1))
    assert torch.allclose(m(inputs()), expected)
    assert m.head.in_features == 2 * h


@pytest.mark.parametrize("activation, check", [
    ("sigmoid", lambda y: bool(((y > 0) & (y < 1)).all())),
    ("softmax", lambda y: torch.allclose(y.sum(-1), torch.ones(y.shape[:-1]))),
    ("relu", lambda y: bool((y >= 0).all()) and bool((y == 0).any())),
    ("tanh", lambda y: bool((y.abs() < 1).all())),
    ("none", lambda y: bool((y < 0).any()) and bool((y > 0).any())),
])
@pytest.mark.parametrize("per_step", [False, True])
def test_output_activations(activation, check, per_step):
    y = model(per_step=per_step, outputs=4, output_activation=activation, init="normal:1.0")(inputs())
    assert check(y)


def _gate_blocks(weight: torch.Tensor, gates: int) -> list[torch.Tensor]:
    return list(weight.chunk(gates, dim=0))


def test_init_zeros_and_biases():
    m = model(init="zeros", layers=2)
    assert all(torch.count_nonzero(p) == 0 for p in m.rnn.parameters())
    assert torch.count_nonzero(m.head.weight) == 0


def test_init_orthogonal_per_gate():
    m = model(init="orthogonal", cell="gru", layers=2)
    for name, p in m.rnn.named_parameters():
        if name.startswith("weight_hh"):
            for block in _gate_blocks(p.detach(), 3):
                assert torch.allclose(block @ block.T, torch.eye(6), atol=1e-5)
        if name.startswith("bias"):
            assert torch.count_nonzero(p) == 0


def test_init_xavier_bounds():
    m = build_model(ModelConfig(hidden=40, init="xavier"), 10, 1)
    w = m.rnn.weight_ih_l0.detach()
    for block in _gate_blocks(w, 4):  # each gate is its own (40 x 10) matrix
        bound = math.sqrt(6 / (40 + 10))
        assert block.abs().max() <= bound and block.abs().max() > 0.8 * bound


def test_init_normal_std():
    torch.manual_seed(0)
    m = build_model(ModelConfig(hidden=64, init="normal:0.05"), 8, 1)
    w = m.rnn.weight_hh_l0.detach()
    assert w.mean().abs() < 0.005 and w.std().item() == pytest.approx(0.05, rel=0.05)


def test_default_init_is_pytorch_default():
    m = model()
    bound = 1 / math.sqrt(6)
    assert all(p.abs().max() <= bound for p in m.rnn.parameters())
    assert m.rnn.bias_ih_l0.abs().sum() > 0


@pytest.mark.parametrize("bidirectional, layers", [(False, 1), (True, 2)])
def test_forget_bias_sets_the_forget_gate_only(bidirectional, layers):
    base = model(bidirectional=bidirectional, layers=layers)
    m = model(bidirectional=bidirectional, layers=layers, forget_bias=1.5)
    h = 6
    for (name, p), (_, p0) in zip(m.rnn.named_parameters(), base.rnn.named_parameters()):
        if name.startswith("bias"):
            forget = p[h : 2 * h]
            assert torch.all(forget == (1.5 if name.startswith("bias_ih") else 0.0)), name
            assert torch.equal(torch.cat([p[:h], p[2 * h :]]), torch.cat([p0[:h], p0[2 * h :]]))  # other gates kept


def test_forget_bias_with_another_scheme():
    m = model(init="orthogonal", forget_bias=2)
    assert torch.all(m.rnn.bias_ih_l0[6:12] == 2.0) and torch.count_nonzero(m.rnn.bias_ih_l0[:6]) == 0


def test_dropout_acts_in_training_only():
    m = model(dropout=0.5)
    x = inputs()
    assert torch.equal(m(x), m(x))
    m.train()
    assert not torch.equal(m(x), m(x))


@pytest.mark.parametrize("kw", [dict(), dict(cell="gru", layers=3, bidirectional=True), dict(cell="rnn", layers=2)])
def test_parameter_count_matches_pytorch(kw):
    cfg = ModelConfig(hidden=9, **kw)
    assert parameter_count(cfg, 4, 3) == sum(p.numel() for p in build_model(cfg, 4, 3).parameters())


def test_model_too_large_to_examine():
    with pytest.raises(InputError, match="makes a model of .* parameters"):
        check_size(ModelConfig(hidden=100_000), 4, 1)
    check_size(ModelConfig(hidden=1024, layers=4), 4, 1)


# ---------------------------------------------------------------- objective


def _targets(task: str, per_step: bool, outputs: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    shape = (B, T) if per_step else (B,)
    if task == "regression":
        return torch.randn(*shape, outputs, generator=g)
    return torch.randint(0, outputs if task == "multiclass" else 2, shape, generator=g)


CASES = [(loss, task) for task in ("regression", "binary", "multiclass") for loss in ("mse", "mae", "huber", "bce", "ce")
         if not (task == "regression" and loss == "ce") and not (task == "multiclass" and loss == "bce")
         and not (task == "binary" and loss == "ce")]


@pytest.mark.parametrize("loss, task", CASES)
@pytest.mark.parametrize("per_step", [False, True])
def test_every_loss_task_and_per_step_gives_a_scalar_that_trains(loss, task, per_step):
    outputs = {"regression": 2, "binary": 1, "multiclass": 3}[task]
    m = model(per_step=per_step, outputs=outputs)
    obj = Objective(loss, task, per_step=per_step)
    out = m(inputs())
    y = _targets(task, per_step, outputs)
    value = obj(out, y, LENGTHS if per_step else None)
    assert value.shape == () and math.isfinite(value.item())
    value.backward()
    assert m.head.weight.grad is not None and m.head.weight.grad.abs().sum() > 0
    per_sample = obj.elementwise(out, y)
    assert per_sample.shape == ((B, T) if per_step else (B,))


def test_objective_values_match_torch():
    out, y = torch.randn(B, 2), torch.randn(B, 2)
    assert torch.isclose(Objective("mse", "regression")(out, y), nn.functional.mse_loss(out, y))
    logits, labels = torch.randn(B, 1), torch.tensor([0, 1, 1, 0, 1])
    assert torch.isclose(Objective("bce", "binary")(logits, labels),
                         nn.functional.binary_cross_entropy_with_logits(logits[:, 0], labels.float()))
    logits3, labels3 = torch.randn(B, T, 3), torch.randint(0, 3, (B, T))
    assert torch.isclose(Objective("ce", "multiclass", per_step=True)(logits3, labels3),
                         nn.functional.cross_entropy(logits3.reshape(-1, 3), labels3.reshape(-1)))
    # A regression loss on class labels scores one-hot targets (Keras' mse on to_categorical labels).
    assert torch.isclose(Objective("mse", "multiclass")(logits3[:, 0], labels3[:, 0]),
                         nn.functional.mse_loss(logits3[:, 0], nn.functional.one_hot(labels3[:, 0], 3).float()))


def test_per_step_loss_skips_padding():
    out, y = torch.randn(B, T, 1), torch.randn(B, T, 1)
    mask = torch.arange(T)[None, :] < LENGTHS[:, None]
    expected = ((out - y)[mask] ** 2).mean()
    assert torch.isclose(Objective("mse", "regression", per_step=True)(out, y, LENGTHS), expected)


def test_metrics_in_the_targets_own_units():
    scaler = AffineMap(offset=torch.tensor([100.0]).numpy(), scale=torch.tensor([10.0]).numpy())
    out, y = torch.zeros(4, 1), torch.tensor([[0.1], [-0.1], [0.2], [-0.2]])
    m = metrics_of(Objective("mse", "regression"), out, y, None, scaler, 1)
    assert m["rmse"] == pytest.approx(10 * math.sqrt((0.01 + 0.01 + 0.04 + 0.04) / 4))
    assert m["mae"] == pytest.approx(1.5)


def test_classification_metrics_and_threshold():
    labels = torch.tensor([0, 0, 0, 1])
    obj = Objective("bce", "binary")
    m = metrics_of(obj, torch.full((4, 1), -1.0), labels, None, None, 2)  # always predicts 0
    assert m["accuracy"] == 0.75 and m["balanced_accuracy"] == 0.5
    probs = torch.tensor([[0.4], [0.6]])
    assert Objective("mse", "binary", threshold=0.5).decide(probs).tolist() == [0, 1]


def test_class_weighted_losses_average_over_samples():
    weights = torch.tensor([1.0, 3.0, 0.5])
    logits, labels = torch.randn(8, 3, generator=torch.Generator().manual_seed(2)), torch.tensor([0, 1, 2, 1, 0, 2, 2, 1])
    per_sample = nn.functional.cross_entropy(logits, labels, weight=weights, reduction="none")
    assert torch.isclose(Objective("ce", "multiclass", class_weights=weights)(logits, labels), per_sample.mean())
    binary = Objective("bce", "binary", class_weights=torch.tensor([1.0, 4.0]))
    logit, y = logits[:, :1], (labels > 0).long()
    expected = nn.functional.binary_cross_entropy_with_logits(logit[:, 0], y.float(), pos_weight=torch.tensor(4.0))
    assert torch.isclose(binary(logit, y), expected)
