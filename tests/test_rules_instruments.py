"""T303-T307 on hand-made evidence: each condition fires, and a near miss stays silent."""

from __future__ import annotations

import pytest

from lstm_doctor.evidence import Evidence
from lstm_doctor.findings import Finding
from lstm_doctor.rank import rank
from lstm_doctor.rules import page
from lstm_doctor.rules.activity import dead_units, prediction_collapse, saturated_gates
from lstm_doctor.rules.gradients import exploding_gradients, vanishing_gradients

CODES = ("T303", "T304", "T305", "T306", "T307")


def learning(best: float, base: float = 1.0, **more) -> Evidence:
    """Evidence of a run whose best validation loss is ``best`` against an input-free baseline ``base``."""
    return Evidence(input_free_loss=base, baseline_loss={"mean": base, "persistence": base / 10},
                    val_history=[{"loss": base * 1.2}, {"loss": best}], **more)


@pytest.mark.parametrize("code", CODES)
def test_every_page_has_the_fixed_sections(code):
    text = page(code)
    for section in ("What it means", "How it is measured", "Example", "Fix", "Setup file:", "PyTorch:", "Keras:", "Related:"):
        assert section in text, (code, section)


def test_silent_when_nothing_was_measured():
    ev = Evidence()
    assert all(check(ev) is None for check in (vanishing_gradients, exploding_gradients, saturated_gates, dead_units, prediction_collapse))


# T303 vanishing-gradients

def test_t303_memory_far_shorter_than_the_period():
    def ev(memory, period, seasonal_naive):
        found = learning(0.5, memory_length=memory, memory_window=48, dominant_period=period)
        found["baseline_loss"]["seasonal_naive"] = seasonal_naive
        return found

    found = vanishing_gradients(ev(4, 24, 0.52))  # best 0.5: no real gain on repeating the last period
    assert found.code == "T303" and found.evidence["dominant_period"] == 24
    assert "last 5 input steps" in found.summary and "every 24 steps" in found.summary
    # Near misses: the memory reaches half the period; the model clearly beats seasonal naive
    # (a healthy sunspots LSTM: memory 5 of an 11-year cycle, validation loss 0.29 against 0.99).
    assert vanishing_gradients(ev(12, 24, 0.52)) is None
    assert vanishing_gradients(ev(4, 24, 1.7)) is None
    # A period longer than the window is D108's business, not a memory fault.
    assert vanishing_gradients(ev(4, 52, 0.52)) is None


def test_t303_short_memory_counts_only_when_the_model_does_not_learn():
    stuck = vanishing_gradients(learning(0.99, memory_length=2, memory_window=150))
    assert stuck is not None and stuck.evidence["best_over_input_free"] == 0.99
    # Same short memory, but the model beats the constant: the data may need no more.
    assert vanishing_gradients(learning(0.5, memory_length=2, memory_window=150)) is None
    # Not learning, but the gradient reaches a quarter of the window.
    assert vanishing_gradients(learning(0.99, memory_length=38, memory_window=150)) is None


def test_t303_reads_the_untrained_memory_when_the_outputs_ignore_the_inputs():
    # A target in the thousands: the trained model's outputs are constant (spread 2.5e-6) and its
    # end-of-run memory (0) says nothing; before training the LSTM reached 7 steps of 24.
    inert = learning(28.9, memory_length=0, memory_length_init=7, memory_window=24, prediction_spread=2.5e-6)
    assert vanishing_gradients(inert) is None
    # A plain RNN that never reached the echo 40 steps back: 9 of 48 before training.
    echo = learning(0.998, memory_length=4, memory_length_init=9, memory_window=48, prediction_spread=0.0075)
    assert "last 10 input steps before training" in vanishing_gradients(echo).summary


def test_t303_across_layers_and_absolute():
    assert vanishing_gradients(Evidence(grad_layer_ratio=0.003)).evidence["grad_layer_ratio"] == 0.003
    assert vanishing_gradients(Evidence(grad_layer_ratio=0.02)) is None
    tiny = Evidence(grad_recurrent_layers=["rnn.l0"], grad_mean_abs_per_layer={"rnn.l0": 5e-8, "head": 1e-9})
    assert vanishing_gradients(tiny).evidence["grad_mean_abs_per_layer"] == {"rnn.l0": 5e-8}
    # The head is no recurrent layer, and 2e-7 is above SageMaker's 1e-7.
    near = Evidence(grad_recurrent_layers=["rnn.l0"], grad_mean_abs_per_layer={"rnn.l0": 2e-7, "head": 1e-9})
    assert vanishing_gradients(near) is None


# T304 exploding-gradients

def test_t304_non_finite_gradient_is_critical():
    found = exploding_gradients(Evidence(grad_nonfinite_steps=3, grad_first_nonfinite=41, grad_spike_ratios=[]))
    assert found.severity == "critical" and "step 41" in found.summary
    assert exploding_gradients(Evidence(grad_nonfinite_steps=0, grad_spike_ratios=[])) is None


def test_t304_growth_through_time_before_training():
    found = exploding_gradients(Evidence(memory_far_gain_init=18.0, memory_window=22))
    assert found.severity == "critical" and "18x" in found.summary
    assert exploding_gradients(Evidence(memory_far_gain_init=9.5, memory_window=22)) is None
    # The setup already clips: still a fault, no longer critical.
    assert exploding_gradients(Evidence(memory_far_gain_init=18.0, clip_norm=1.0, clipped_fraction=0.4)).severity == "warning"


def test_t304_spikes_need_fifty_times_the_running_median():
    found = exploding_gradients(Evidence(grad_spike_ratios=[None, 1.0, 77.5, 2.0]))
    assert found.severity == "warning" and found.evidence["worst_spike_step"] == 2
    assert exploding_gradients(Evidence(grad_spike_ratios=[None, 1.0, 30.0, 2.0])) is None  # healthy small-batch noise
    assert exploding_gradients(Evidence(grad_spike_ratios=[80.0], clip_norm=1.0, clipped_fraction=0.01)).severity == "info"
    # A healthy LSTM on BasicMotions spiked 78x and learned well: Adam rode it out.
    assert exploding_gradients(learning(0.36, grad_spike_ratios=[None, 1.0, 77.7])) is None
    assert exploding_gradients(learning(0.95, grad_spike_ratios=[None, 1.0, 77.7])).code == "T304"


def test_t304_on_norms_read_every_few_steps_names_the_steps_read():
    # Norms read every 4th step (watch, short steps): the spike's step is the step read, and the summary says so.
    thinned = Evidence(grad_spike_ratios=[None] * 12 + [80.0, 1.0], grad_norm_steps=list(range(0, 56, 4)), optimizer_steps=57)
    found = exploding_gradients(thinned)
    assert found.evidence["worst_spike_step"] == 48 and found.evidence["grad_norms_read"] == 14
    assert "read on 14 of 57 steps" in found.summary
    # Every step read: nothing added.
    every = exploding_gradients(Evidence(grad_spike_ratios=[None, 1.0, 77.5], grad_norm_steps=[0, 1, 2], optimizer_steps=3))
    assert every.evidence["worst_spike_step"] == 2 and "read on" not in every.summary and "grad_norms_read" not in every.evidence


def test_t304_across_layers():
    assert exploding_gradients(Evidence(grad_layer_ratio=5742.0)).evidence["grad_layer_ratio"] == 5742.0
    assert exploding_gradients(Evidence(grad_layer_ratio=17.0)) is None


# T305 saturated-gates

def test_t305_a_layer_over_half_saturated():
    shares = {"layer0.input": 0.875, "layer0.forget": 1.0, "layer0.cell": 1.0, "layer0.output": 1.0,
              "layer1.input": 0.0, "layer1.forget": 0.0, "layer1.cell": 0.0, "layer1.output": 0.0}
    found = saturated_gates(learning(1.3, gate_saturation=shares, prediction_loss=1.3, cell_norm=16.8))
    assert found.evidence["saturated_share"] == {"layer0": round((0.875 + 1 + 1) / 3, 3)}
    assert found.confidence > 0.8 and "no better than a constant" in found.summary
    near = dict(shares, **{"layer0.input": 0.4, "layer0.cell": 0.5, "layer0.output": 0.5})
    assert saturated_gates(Evidence(gate_saturation=near)) is None


def test_t305_forget_and_update_gates_near_one_are_memory_not_saturation():
    lstm = {"layer0.input": 0.1, "layer0.forget": 1.0, "layer0.cell": 0.2, "layer0.output": 0.1}
    gru = {"layer0.reset": 0.1, "layer0.update": 1.0, "layer0.new": 0.3}
    assert saturated_gates(Evidence(gate_saturation=lstm)) is None
    assert saturated_gates(Evidence(gate_saturation=gru)) is None


def test_t305_leaves_a_plain_rnn_to_t306_and_t303():
    # A plain RNN has no gates; its pinned tanh is reported as stuck units (T306) and vanishing gradients (T303).
    assert saturated_gates(Evidence(gate_saturation={"layer0.tanh": 0.68})) is None
    lstm_on_top = {"layer0.tanh": 0.1, "layer1.input": 0.9, "layer1.forget": 0.9, "layer1.cell": 0.9, "layer1.output": 0.9}
    assert saturated_gates(Evidence(gate_saturation=lstm_on_top)).evidence["layer"] == "layer1"


# T306 dead-units

def test_t306_more_than_half_a_layer_dead():
    found = dead_units(Evidence(dead_units={"layer0": 13, "layer1": 0}, hidden_units={"layer0": 16, "layer1": 16}))
    assert "13 of the 16 units in layer0 are constant or stuck" in found.summary
    assert dead_units(Evidence(dead_units={"layer0": 8}, hidden_units={"layer0": 16})) is None  # exactly half


# T307 prediction-collapse

def test_t307_regression_constant_at_the_baseline():
    found = prediction_collapse(learning(2.46, base=2.46, prediction_spread=0.0, prediction_loss=2.46))
    assert found.severity == "critical" and found.evidence["prediction_spread"] == 0.0
    # Cautious but useful: small spread with a loss far below the constant's (an undertrained trend model).
    assert prediction_collapse(learning(0.89, base=5.97, prediction_spread=0.0997, prediction_loss=0.89)) is None
    assert prediction_collapse(learning(2.4, base=2.46, prediction_spread=0.2, prediction_loss=2.4)) is None


def test_t307_classification_probabilities_that_do_not_move():
    flat = learning(0.696, base=0.693, prediction_spread=0.003, prediction_loss=0.696, predicted_class_share=1.0,
                    predicted_class="1", majority_share=0.501)  # ItalyPowerDemand at lr 1e-5
    found = prediction_collapse(flat)
    assert "class 1 for 100%" in found.summary and found.evidence["majority_share"] == 0.501
    # A healthy model's probabilities follow the labels.
    assert prediction_collapse(Evidence(flat, prediction_spread=0.95, prediction_loss=0.116)) is None
    # Flat at the end, but 18% below the constant earlier in the run: drifted back, not collapsed
    # (a GunPoint control of the fault zoo).
    drifted = learning(0.568, base=0.693, prediction_spread=0.0675, prediction_loss=0.692, predicted_class_share=0.983,
                       predicted_class="2", majority_share=0.517)
    assert prediction_collapse(drifted) is None


def test_ranking_puts_saturation_before_its_consequences():
    ev = learning(130.0, gate_saturation={"layer0.input": 0.9, "layer0.cell": 1.0, "layer0.output": 1.0},
                  prediction_loss=130.0, prediction_spread=1e-7, memory_length=0, memory_window=48,
                  dead_units={"layer0": 13}, hidden_units={"layer0": 16})
    found = [f for f in (check(ev) for check in (vanishing_gradients, saturated_gates, dead_units, prediction_collapse)) if f]
    codes = [f.code for f in rank(found)]
    assert codes[0] == "T305" and codes[-1] == "T307" and set(codes) == {"T303", "T305", "T306", "T307"}


def test_pinned_gates_come_before_a_small_batch_that_cannot_be_fitted():
    pinned = {"layer0.input": 0.9, "layer0.forget": 0.9, "layer0.cell": 0.95, "layer0.output": 0.9}
    saturated = saturated_gates(learning(2.0, base=0.69, gate_saturation=pinned, prediction_loss=2.0))
    unfit = Finding.of("T309", "Even on 16 training windows ...", confidence=0.85)
    assert saturated.confidence == unfit.confidence and [f.code for f in rank([unfit, saturated])] == ["T305", "T309"]


def test_gates_pinned_from_the_start_are_not_blamed_on_exploding_gradients():
    # LSTM weights drawn at sd 3: gates 60% pinned before and after training, gradients explode,
    # and the model predicts a constant (a T305 case of the fault zoo).
    pinned = {"layer0.input": 0.55, "layer0.forget": 0.5, "layer0.cell": 0.7, "layer0.output": 0.55}
    ev = learning(6.2, base=1.0, gate_saturation=pinned, gate_saturation_init=pinned, prediction_loss=6.2)
    saturated = saturated_gates(ev)
    assert saturated.severity == "critical" and saturated.evidence["share_before_training"] == 0.6
    exploding = exploding_gradients(Evidence(grad_layer_ratio=5742.0))
    assert [f.code for f in rank([exploding, saturated])] == ["T305", "T304"]  # critical, more confident
    # Saturated by the updates (under a quarter before training): the explosion explains it.
    driven = saturated_gates(learning(6.2, base=1.0, gate_saturation=pinned, prediction_loss=6.2,
                                      gate_saturation_init={k: 0.1 for k in pinned}))
    assert [f.code for f in rank([driven, exploding])] == ["T304", "T305"]
    # Pinned while the model still learns: a warning.
    assert saturated_gates(learning(0.3, base=1.0, gate_saturation=pinned, prediction_loss=0.3)).severity == "warning"


def test_weights_far_off_scale_explain_a_range_test_that_wants_a_far_higher_rate():
    # Logits 75x too large at init: the range test's suggestion is the rate that shrinks them (zoo T313 cases).
    low = Finding.of("T302", "The learning rate 0.003 is 123x below the suggested 0.37.", confidence=0.85)
    init = Finding.of("M206", "Input weights have 84x the default std.", confidence=0.75)
    assert [f.code for f in rank([low, init])] == ["M206", "T302"]


def test_reading_out_padding_comes_before_how_much_padding_there_is_and_after_integer_truncation():
    readout = Finding.of("M209", "100% of the sequences end in padding and the model reads the last step.")
    padding = Finding.of("D112", "73% of all steps are padding.")
    assert [f.code for f in rank([padding, readout])] == ["M209", "D112"]
    # Inputs cast to integers turn small values into zeros that look like padding (zoo D113 cases).
    cast = Finding.of("D113", "'x0' holds only the integers -3..3.", confidence=0.8)
    assert [f.code for f in rank([readout, padding, cast])][0] == "D113"
