"""The training-run instruments on real data: they measure what they claim, leave training untouched,
and T303-T307 fire on setups built to have each fault while staying silent on healthy ones."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from lstm_doctor import setup_from
from lstm_doctor.budget import get_budget
from lstm_doctor.objective import Objective
from lstm_doctor.probes import ProbeContext
from lstm_doctor.probes.baselines import baselines
from lstm_doctor.probes.gates import gates
from lstm_doctor.probes.gradients import gradients, layer_groups
from lstm_doctor.probes.instrument import Instrument, guarded, probing
from lstm_doctor.probes.memory_length import memory_length, memory_reach, relative_input_gradient
from lstm_doctor.probes.predictions import predictions
from lstm_doctor.probes.training_run import training_run
from lstm_doctor.rules.activity import dead_units, prediction_collapse, saturated_gates
from lstm_doctor.rules.gradients import exploding_gradients, vanishing_gradients

INSTRUMENTS = (gradients, memory_length, gates, predictions)
RULES = {"T303": vanishing_gradients, "T304": exploding_gradients, "T305": saturated_gates, "T306": dead_units,
         "T307": prediction_collapse}
SUNSPOTS = {"target": "sunspots", "features": ["sunspots"], "window": 22, "scale": "standard"}


def instrumented(setup, every: int | None = None) -> ProbeContext:
    """Baselines, the instruments and the instrumented run, as examine runs them."""
    budget = get_budget("quick")
    ctx = ProbeContext(setup, budget if every is None else dataclasses.replace(budget, probe_every=every))
    for probe in (baselines, *INSTRUMENTS, training_run):
        probe(ctx)
    return ctx


def fired(ctx: ProbeContext) -> dict[str, object]:
    found = {code: check(ctx.evidence) for code, check in RULES.items()}
    return {code: f for code, f in found.items() if f is not None}


# Measurement mechanics


def test_probing_leaves_no_trace():
    model = nn.Sequential(nn.Dropout(0.5), nn.LSTM(3, 4, num_layers=2, dropout=0.5, batch_first=True))
    model.train()
    model[0].eval()  # a mixed state must come back as it was
    before = torch.get_rng_state()
    with probing(model):
        assert not model[0].training and model[1].training and model[1].dropout == 0.0
        torch.rand(100)  # a probe that draws random numbers does not shift the run's stream
    assert torch.equal(torch.get_rng_state(), before)
    assert [m.training for m in model.modules()] == [True, False, True] and model[1].dropout == 0.5


class _Reads(nn.Module):
    """Outputs a * x[end] + b * x[end - 3], where ``end`` is each sequence's last real step."""

    def __init__(self, a: float, b: float):
        super().__init__()
        self.a, self.b = a, b
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, x, lengths=None):
        end = (lengths - 1) if lengths is not None else torch.full((len(x),), x.shape[1] - 1)
        rows = torch.arange(len(x))
        return (self.a * x[rows, end] + self.b * x[rows, end - 3]).sum(-1, keepdim=True) * self.w


@pytest.mark.parametrize("padded", [False, True])
def test_memory_length_finds_the_lag_a_model_reads(padded):
    x = torch.randn(16, 10, 2, generator=torch.Generator().manual_seed(0))
    y = torch.randn(16, 1, generator=torch.Generator().manual_seed(1))
    lengths = torch.randint(5, 11, (16,), generator=torch.Generator().manual_seed(2)) if padded else None
    obj = Objective("mse", "regression")
    # The loss gradient at lag 3 is exactly b/a times the last step's, for every window.
    far = relative_input_gradient(_Reads(1.0, 0.5), obj, x, y, lengths)
    np.testing.assert_allclose(far[[0, 3]], [1.0, 0.5])
    assert np.nansum(far[[1, 2]]) == 0 and memory_reach(far) == 3
    assert memory_reach(relative_input_gradient(_Reads(1.0, 0.005), obj, x, y, lengths)) == 0  # below 1%


def test_a_failing_instrument_is_recorded_and_training_goes_on(sunspots_frame):
    class Broken(Instrument):
        @guarded
        def after_step(self, state):
            raise ValueError("boom")

    setup = setup_from(sunspots_frame, data=SUNSPOTS, model={"hidden": 4}, training={"epochs": 2})
    ctx = ProbeContext(setup, get_budget("quick"))
    _, result = setup.train(callbacks=[Broken(ctx)])
    assert result.stopped == "completed" and result.steps == 2 * result.steps_per_epoch
    assert ctx.evidence["instrument_errors"] == {"Broken": "ValueError: boom"}


def test_layer_groups_split_layers_and_directions():
    model = setup_from({"X": np.zeros((4, 5, 2), np.float32), "y": np.zeros(4)},
                       model={"hidden": 3, "layers": 2, "bidirectional": True}).new_model()
    groups, recurrent = layer_groups(model)
    assert recurrent == ["rnn.l0", "rnn.l0_reverse", "rnn.l1", "rnn.l1_reverse"]
    assert list(groups) == recurrent + ["head"] and all(len(groups[k]) == 4 for k in recurrent)


def test_instruments_leave_the_training_run_unchanged(sunspots_frame):
    """Same loss curve, validation history and final weights with and without the instruments.

    Dropout between layers and before the head, a bidirectional stack and
    clipping make every random draw and every module mode count.
    """
    setup = setup_from(sunspots_frame, data=SUNSPOTS, model={"hidden": 8, "layers": 2, "dropout": 0.3, "bidirectional": True},
                       training={"epochs": 3, "clip_norm": 0.5, "lr": 3e-3})
    plain_model, plain = setup.train()
    ctx = ProbeContext(setup, dataclasses.replace(get_budget("quick"), probe_every=2))
    for probe in INSTRUMENTS:
        probe(ctx)
    model, probed = setup.train(callbacks=ctx.instruments)
    assert probed.train_loss == plain.train_loss and probed.val == plain.val
    for (name, a), (_, b) in zip(plain_model.state_dict().items(), model.state_dict().items()):
        assert torch.equal(a, b), name
    assert len(ctx.plots["gates"]["steps"]) > plain.steps // 4  # the probes did run, often (gates every 2 x 2 steps)


def test_clipped_fraction_follows_the_clip_norm(sunspots_frame):
    def clipped(clip):
        setup = setup_from(sunspots_frame, data=SUNSPOTS, model={"hidden": 8}, training={"epochs": 2, "clip_norm": clip})
        ctx = ProbeContext(setup, get_budget("quick"))
        gradients(ctx)
        setup.train(callbacks=ctx.instruments)
        return ctx.evidence["clipped_fraction"], ctx.plots["gradients"]["clipped_fraction"]

    assert clipped(1e-4) == (1.0, 1.0)
    assert clipped(1e4) == (0.0, 0.0)
    assert clipped(None) == (None, None)


# Real setups: healthy ones stay silent, broken ones get their finding


@pytest.fixture(scope="module")
def healthy_sunspots(sunspots_frame) -> ProbeContext:
    return instrumented(setup_from(sunspots_frame, data=SUNSPOTS, model={"hidden": 16}, training={"epochs": 30, "lr": 3e-3}))


def test_plots_have_the_documented_formats(healthy_sunspots):
    plots, ev = healthy_sunspots.plots, healthy_sunspots.evidence
    g = plots["gradients"]
    assert {"steps", "per_layer", "clipped_fraction"} <= set(g) and set(g["per_layer"]) == {"rnn.l0", "head"}
    assert g["steps"][0] == 0 and all(len(v) == len(g["steps"]) for v in g["per_layer"].values())
    assert len(g["total"]) == ev["steps_run"] == ev["grad_steps"]
    m = plots["memory_length"]
    assert m["lag"] == list(range(22)) and len(m["relative_grad"]) == 22 and m["relative_grad"][0] == 1.0
    assert m["window"] == 22 and 0 <= m["memory_length"] < 22
    gt = plots["gates"]
    assert set(gt["saturation"]) == {"layer0.input", "layer0.forget", "layer0.cell", "layer0.output"}
    assert gt["steps"][0] == 0 and gt["steps"][-1] == ev["steps_run"]
    assert all(len(v) == len(gt["steps"]) for v in gt["saturation"].values()) and len(gt["cell_norm"]) == len(gt["steps"])
    u = plots["update_ratio"]
    assert all(len(v) == len(u["steps"]) for v in u["per_layer"].values())
    assert all(1e-5 < r < 1e-1 for r in ev["update_ratio"].values())  # Adam at 3e-3 on a 16-unit LSTM


def test_healthy_sunspots_lstm_gets_none_of_them(healthy_sunspots):
    ev = healthy_sunspots.evidence
    assert ev["prediction_spread"] > 0.5 and ev["dead_unit_fraction"] == 0
    assert fired(healthy_sunspots) == {}


def test_healthy_italy_power_lstm_gets_none_of_them(italy_power):
    ctx = instrumented(setup_from(italy_power, data={"task": "binary", "scale": "standard"}, model={"hidden": 16},
                                  training={"epochs": 60, "lr": 3e-3, "loss": "bce", "batch_size": 16}))
    assert ctx.evidence["val_history"][-1]["accuracy"] > 0.9
    assert fired(ctx) == {}


def test_raw_co2_saturates_gates_kills_units_and_collapses_predictions(co2_frame):
    """CO2 in ppm (~340) as input and target, unscaled: the textbook 'my LSTM predicts a constant'."""
    ctx = instrumented(setup_from(co2_frame, data={"target": "co2", "window": 48}, model={"hidden": 16}, training={"epochs": 3}))
    found = fired(ctx)
    assert {"T305", "T306", "T307"} <= set(found)
    assert found["T305"].evidence["saturated_share"]["layer0"] > 0.9
    assert ctx.evidence["prediction_spread"] < 1e-3
    # The same data standardized: none of the three.
    scaled = instrumented(setup_from(co2_frame, data={"target": "co2", "window": 48, "scale": "standard"}, model={"hidden": 16},
                                     training={"epochs": 3}))
    assert not {"T305", "T306", "T307"} & set(fired(scaled))


def test_rnn_with_large_initial_weights_explodes(sunspots_frame):
    ctx = instrumented(setup_from(sunspots_frame, data=SUNSPOTS, model={"hidden": 16, "cell": "rnn", "init": "normal:1.0"},
                                  training={"epochs": 30, "lr": 3e-3}))
    found = fired(ctx)["T304"]
    assert found.severity == "critical" and ctx.evidence["memory_far_gain_init"] >= 10
    assert ctx.evidence["grad_norm_median"] > 100  # the healthy LSTM's median is about 0.5


def test_tanh_rnn_with_small_weights_forgets_the_long_gunpoint_gesture(gunpoint):
    """150 steps into a tanh RNN initialized with normal:0.05: the gradient reaches back 2 steps and nothing is learned."""
    ctx = instrumented(setup_from(gunpoint, data={"task": "binary"}, model={"hidden": 16, "cell": "rnn", "init": "normal:0.05"},
                                  training={"epochs": 20, "lr": 3e-3, "loss": "bce", "batch_size": 16}))
    found = fired(ctx)
    assert ctx.evidence["memory_length"] < 15 and "T303" in found
    assert "T307" in found  # one class for every window
