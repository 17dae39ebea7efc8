"""examine_model on the user's own PyTorch models, written as users write them, on real data.

Faults: batch and time axes swapped (M208), parameters frozen or left out of the
optimizer (M212); the healthy versions of the same models get no critical
finding, and the user's model, optimizer and random state are left untouched.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lstm_doctor import InputError, examine_model
from lstm_doctor.budget import get_budget
from lstm_doctor.evidence import Evidence
from lstm_doctor.own_model import setup_from_model
from lstm_doctor.probes import ProbeContext
from lstm_doctor.probes.padding import padding
from lstm_doctor.rules.own_model import batch_first_mismatch, frozen_parameters
from user_models import Classifier, Forecaster, codes, criticals, sunspot_windows, ucr


def test_swapped_axes_on_italy_power_lstm_are_m208_first(italy_power):
    train, val = ucr(italy_power)
    torch.manual_seed(0)
    model = Classifier(nn.LSTM, 1, 2, batch_first=False)  # fed (batch, steps, features): the classic slip
    report = examine_model(model, train, val, loss=nn.CrossEntropyLoss(), optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
                           task="multiclass", epochs=10, batch_size=16)
    assert codes(report)[0] == "M208", report.findings
    m208 = report.findings[0]
    assert m208.severity == "critical" and m208.evidence["batch_as_time"] == ["rnn"]
    assert m208.evidence["sample_mixing"] > 0.01


def test_swapped_axes_on_sunspots_gru_are_m208_first(sunspots_frame):
    train, val = sunspot_windows(sunspots_frame)
    torch.manual_seed(0)
    model = Forecaster(nn.GRU, batch_first=False)
    loader = DataLoader(TensorDataset(*train), batch_size=16, shuffle=True)
    report = examine_model(model, loader, val, loss=nn.MSELoss(), optimizer=torch.optim.Adam(model.parameters(), lr=3e-3),
                           task="regression", epochs=8)
    assert codes(report)[0] == "M208", report.findings


def test_transposed_arrays_are_m208(italy_power):
    """aeon's (cases, channels, length) handed over untransposed: one step of 24 'features'."""
    (x, y), (xv, yv) = ucr(italy_power)
    x, xv = x.transpose(0, 2, 1), xv.transpose(0, 2, 1)
    torch.manual_seed(0)
    model = Classifier(nn.LSTM, 24, 2)
    report = examine_model(model, (x, y), (xv, yv), loss=nn.CrossEntropyLoss(),
                           optimizer=torch.optim.Adam(model.parameters(), lr=1e-2), task="multiclass", epochs=5, batch_size=16)
    assert "M208" in codes(report)[:2], report.findings


def test_optimizer_on_head_only_is_m212_first(italy_power):
    train, val = ucr(italy_power)
    torch.manual_seed(0)
    model = Classifier(nn.LSTM, 1, 2)
    optimizer = torch.optim.Adam(model.head.parameters(), lr=1e-2)  # the LSTM never trains
    report = examine_model(model, train, val, loss=nn.CrossEntropyLoss(), optimizer=optimizer, task="multiclass",
                           epochs=10, batch_size=16)
    assert codes(report)[0] == "M212", report.findings
    m212 = report.findings[0]
    assert m212.severity == "critical"
    assert set(m212.evidence["parameters_not_in_optimizer"]) == {"rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0"}


def test_frozen_gru_on_sunspots_is_m212_first(sunspots_frame):
    train, val = sunspot_windows(sunspots_frame)
    torch.manual_seed(0)
    model = Forecaster(nn.GRU)
    model.rnn.requires_grad_(False)  # left over from an experiment with a pretrained layer
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05, momentum=0.9)
    report = examine_model(model, train, val, loss=nn.MSELoss(), optimizer=optimizer, task="regression", epochs=8, batch_size=16)
    assert codes(report)[0] == "M212", report.findings
    assert set(report.findings[0].evidence["frozen_parameters"]) == {"rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0"}


def test_healthy_italy_power_gru_has_no_critical_finding(italy_power):
    train, val = ucr(italy_power)
    torch.manual_seed(0)
    model = Classifier(nn.GRU, 1, 2)
    report = examine_model(model, train, val, loss=nn.CrossEntropyLoss(), optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
                           task="multiclass", epochs=15, batch_size=16)
    assert not criticals(report), report.findings
    assert not {"M208", "M212"} & set(codes(report))
    assert report.status == "complete" and report.symptom == "healthy"


def test_healthy_sunspots_lstm_has_no_critical_finding(sunspots_frame):
    train, val = sunspot_windows(sunspots_frame)
    torch.manual_seed(0)
    model = Forecaster(nn.LSTM)
    report = examine_model(model, DataLoader(TensorDataset(*train), batch_size=16, shuffle=True),
                           DataLoader(TensorDataset(*val), batch_size=64), loss=nn.MSELoss(),
                           optimizer=torch.optim.Adam(model.parameters(), lr=1e-2), task="regression", epochs=15)
    assert not criticals(report), report.findings
    assert report.status == "complete"
    assert {"rmse", "mae"} <= set(report.probes["loss_curve"]["val"][-1])  # task metrics from the user's loss


def _rng_states():
    return torch.get_rng_state(), np.random.get_state(), random.getstate()


def test_user_objects_and_random_state_are_untouched(italy_power):
    train, val = ucr(italy_power)
    torch.manual_seed(0)
    model = Classifier(nn.LSTM, 1, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.tensor(train[0][:16], dtype=torch.float32), torch.tensor(train[1][:16])
    nn.CrossEntropyLoss()(model(x), y).backward()
    optimizer.step()  # Adam now has moments: they must survive
    model.eval()  # the user's mode must survive too
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    moments = {k: {n: t.clone() if torch.is_tensor(t) else t for n, t in s.items()} for k, s in optimizer.state_dict()["state"].items()}
    grads = [p.grad.clone() for p in model.parameters()]
    torch.manual_seed(123), np.random.seed(123), random.seed(123)
    before = _rng_states()

    examine_model(model, train, val, loss=nn.CrossEntropyLoss(), optimizer=optimizer, task="multiclass", epochs=3, batch_size=16)

    after = _rng_states()
    assert torch.equal(before[0], after[0])
    assert before[1][0] == after[1][0] and np.array_equal(before[1][1], after[1][1]) and before[1][2:] == after[1][2:]
    assert before[2] == after[2]
    assert not model.training
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters()))
    state = optimizer.state_dict()["state"]
    assert all(torch.equal(t, state[k][n]) if torch.is_tensor(t) else t == state[k][n] for k, s in moments.items() for n, t in s.items())


def test_optimizer_copies_keep_the_users_groups_and_settings():
    torch.manual_seed(0)
    model = Classifier(nn.LSTM, 1, 2)
    optimizer = torch.optim.SGD([{"params": model.rnn.parameters(), "lr": 0.1}, {"params": model.head.parameters(), "lr": 0.01}],
                                momentum=0.9, weight_decay=1e-4)
    x, y = torch.randn(20, 12, 1), torch.randint(0, 2, (20,))
    setup = setup_from_model(model, (x, y), (x, y), loss=nn.CrossEntropyLoss(), optimizer=optimizer, task="multiclass")
    copy = setup.new_model()
    rebuilt = setup.optimizer_factory(copy.parameters())
    assert type(rebuilt) is torch.optim.SGD
    assert [g["lr"] for g in rebuilt.param_groups] == [0.1, 0.01]
    assert all(g["momentum"] == 0.9 and g["weight_decay"] == 1e-4 for g in rebuilt.param_groups)
    assert [len(g["params"]) for g in rebuilt.param_groups] == [4, 2]
    assert all(p is q for p, q in zip(rebuilt.param_groups[1]["params"], copy.head.parameters()))


class PackedClassifier(nn.Module):
    """A model for variable-length sequences that takes a PackedSequence."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(1, 8, batch_first=True)
        self.head = nn.Linear(8, 2)

    def forward(self, packed):
        _, h = self.rnn(packed)
        return self.head(h[-1])


class LengthsClassifier(PackedClassifier):
    """A model whose forward takes the lengths and packs itself."""

    def forward(self, x, lengths):
        return super().forward(nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False))


def _variable_length_loader(italy_power, packed: bool):
    (x, y), _ = ucr(italy_power)
    lengths = torch.tensor([12 + i % 13 for i in range(len(x))])
    seqs = [torch.tensor(x[i, : lengths[i]], dtype=torch.float32) for i in range(len(x))]

    def collate(items):
        batch = nn.utils.rnn.pad_sequence([s for s, _, _ in items], batch_first=True)
        lens = torch.stack([n for _, _, n in items])
        labels = torch.stack([t for _, t, _ in items])
        if packed:
            return nn.utils.rnn.pack_padded_sequence(batch, lens, batch_first=True, enforce_sorted=False), labels
        return batch, labels, lens

    items = list(zip(seqs, torch.tensor(y), lengths))
    return DataLoader(items, batch_size=8, collate_fn=collate)


@pytest.mark.parametrize("packed", [True, False])
def test_variable_length_batches_train_through_the_users_call(italy_power, packed):
    """Batches padded to different lengths, packed or with lengths, are collected and fed as the model takes them."""
    model = PackedClassifier() if packed else LengthsClassifier()
    loader = _variable_length_loader(italy_power, packed)
    setup = setup_from_model(model, loader, loader, loss=nn.CrossEntropyLoss(),
                             optimizer=torch.optim.Adam(model.parameters(), lr=1e-2), task="multiclass")
    assert setup.data.train.inputs.shape == (67, 24, 1)
    assert setup.data.train.lengths.min() == 12 and setup.batch_size == 8
    _, result = setup.train(max_steps=5)
    assert result.stopped == "completed" and result.steps == 5


def test_bad_input_says_what_to_do():
    model = Classifier(nn.LSTM, 1, 2)
    optimizer = torch.optim.Adam(model.parameters())
    x, y = torch.randn(10, 12, 1), torch.randint(0, 2, (10,))
    with pytest.raises(InputError, match="task must be one of"):
        examine_model(model, (x, y), (x, y), loss=nn.CrossEntropyLoss(), optimizer=optimizer, task="classification")
    with pytest.raises(InputError, match="differ in samples"):
        examine_model(model, (x, y[:5]), (x, y), loss=nn.CrossEntropyLoss(), optimizer=optimizer, task="multiclass")
    with pytest.raises(InputError, match="failed on the first two training samples"):
        examine_model(model, (torch.randn(10, 12, 3), y), (torch.randn(10, 12, 3), y), loss=nn.CrossEntropyLoss(),
                      optimizer=optimizer, task="multiclass")
    with pytest.raises(InputError, match="class indices"):
        examine_model(model, (x, y + 0.5), (x, y + 0.5), loss=nn.CrossEntropyLoss(), optimizer=optimizer, task="multiclass")


# The rules on hand-made evidence: each with its near miss.

def test_m208_rule_fires_on_mixing_and_not_on_rounding_noise():
    assert batch_first_mismatch(Evidence(batch_as_time=[], sample_mixing=0.4)).code == "M208"
    assert batch_first_mismatch(Evidence(batch_as_time=[], sample_mixing=2e-7)) is None
    layer = {"layer": "lstm", "batch_first": False, "shape": [8, 24, 1], "time_axis_length": 8}
    found = batch_first_mismatch(Evidence(batch_as_time=["lstm"], recurrent_inputs=[layer], sample_mixing=0.0,
                                          axes_probe_batch=8, axes_probe_steps=24))
    assert found.code == "M208" and "8 samples" in found.summary


def test_m208_rule_reads_a_transposed_layout_but_not_correlated_channels():
    transposed = {"steps": 1, "features": 24, "adjacent_step_corr": None, "adjacent_feature_corr": 0.97}
    assert batch_first_mismatch(Evidence(layout_suspect=transposed)).code == "M208"
    # Six correlated sensor channels over 100 smooth steps: a real layout.
    channels = {"steps": 100, "features": 6, "adjacent_step_corr": 0.95, "adjacent_feature_corr": 0.93}
    assert batch_first_mismatch(Evidence(layout_suspect=channels)) is None


def test_m212_rule_severity_follows_what_is_frozen():
    recurrent = ["lstm.weight_ih_l0", "lstm.weight_hh_l0"]
    found = frozen_parameters(Evidence(frozen_parameters={"lstm.weight_ih_l0": 64, "lstm.weight_hh_l0": 256},
                                       recurrent_parameters=recurrent, parameter_total=400))
    assert found.code == "M212" and found.severity == "critical"
    # A frozen embedding that is a small part of the model: worth a warning, maybe deliberate.
    found = frozen_parameters(Evidence(frozen_parameters={"embed.weight": 50}, recurrent_parameters=recurrent, parameter_total=1000))
    assert found.severity == "warning"
    assert frozen_parameters(Evidence(frozen_parameters={}, parameters_not_in_optimizer={}, parameters_never_updated={},
                                      recurrent_parameters=recurrent, parameter_total=400)) is None
    # Never changed, but reached by the backward pass and given a rate: stalled (vanished gradients, tiny steps).
    tiny_steps = {"lstm.weight_hh_l0": 256}
    assert frozen_parameters(Evidence(parameters_never_updated=tiny_steps, parameters_stalled=tiny_steps,
                                      recurrent_parameters=recurrent, parameter_total=400)) is None
    assert frozen_parameters(Evidence(parameters_never_updated=tiny_steps, recurrent_parameters=recurrent,
                                      parameter_total=400)).severity == "critical"


class SoftmaxClassifier(Classifier):
    """A softmax at the end, as tutorials for probabilities show, before CrossEntropyLoss."""

    def __init__(self):
        super().__init__(nn.LSTM, 1, 2)
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x):
        return self.softmax(super().forward(x))


def test_softmax_before_cross_entropy_is_m201(italy_power):
    train, val = ucr(italy_power)
    torch.manual_seed(0)
    model = SoftmaxClassifier()
    report = examine_model(model, train, val, loss=nn.CrossEntropyLoss(), optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
                           task="multiclass", epochs=10, batch_size=16)
    m201 = next(f for f in report.findings if f.code == "M201")
    assert m201.severity == "critical" and m201.evidence["output_activation"] == "softmax" and m201.evidence["loss"] == "ce"


def _padded_italy_power(italy_power):
    """ItalyPowerDemand cut to 12-24 hours a day and zero-padded at the end, with the lengths."""
    (x, y), (xv, yv) = ucr(italy_power)
    cut = lambda a: torch.tensor([12 + i % 13 for i in range(len(a))])  # noqa: E731
    pad = lambda a, n: torch.tensor(a) * (torch.arange(24)[None, :, None] < n[:, None, None])  # noqa: E731
    n, nv = cut(x), cut(xv)
    return (pad(x, n), torch.tensor(y), n), (pad(xv, nv), torch.tensor(yv), nv)


def test_reading_the_last_padded_step_is_m209_and_packing_is_not(italy_power):
    train, val = _padded_italy_power(italy_power)
    optimizer = lambda m: torch.optim.Adam(m.parameters(), lr=1e-2)  # noqa: E731
    torch.manual_seed(0)
    last_step = Classifier(nn.GRU, 1, 2)  # forward(x) reads out[:, -1]: padding for 92% of the days
    report = examine_model(last_step, train, val, loss=nn.CrossEntropyLoss(), optimizer=optimizer(last_step),
                           task="multiclass", epochs=8, batch_size=16)
    m209 = next(f for f in report.findings if f.code == "M209")
    assert m209.severity == "critical" and m209.evidence["padding_influence"] > 0.01
    # The near miss: a model that packs its batches by the lengths ignores the padding exactly.
    packing = LengthsClassifier()
    ctx = ProbeContext(setup_from_model(packing, train, val, loss=nn.CrossEntropyLoss(), optimizer=optimizer(packing),
                                        task="multiclass"), get_budget("quick"))
    padding(ctx)
    assert ctx.evidence["padding_influence"] == 0.0 and ctx.evidence["padding_probe_sequences"] == 16
