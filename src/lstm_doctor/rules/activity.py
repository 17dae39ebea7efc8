"""T305 saturated-gates, T306 dead-units and T307 prediction-collapse: what the recurrent units and the outputs do.

Evidence comes from ``probes/gates.py`` (gates recomputed on a fixed batch of
training windows) and ``probes/predictions.py`` (the trained model's validation
outputs); each rule stays silent when its evidence was not measured.
"""

from __future__ import annotations

from lstm_doctor.evidence import Evidence
from lstm_doctor.findings import Finding
from lstm_doctor.rules.progress import baseline_loss, best_over, saturation_by_layer
from lstm_doctor.rules.registry import rule

# T305 / T306: a layer counts when more than half its gate activations or units are affected,
# SageMaker Debugger's threshold_layer default (50%) for saturated activations and dead ReLUs.
LAYER_SHARE = 0.5
# T307
SPREAD = 0.1  # outputs' std under a tenth of the targets'
AT_BASELINE = 0.9  # loss at or above 90% of the best constant prediction's


def _not_learning(ev: Evidence) -> bool:
    base, loss = baseline_loss(ev), ev.get("prediction_loss")
    return base is not None and loss is not None and loss >= AT_BASELINE * base


@rule("T305")
def saturated_gates(ev: Evidence) -> Finding | None:
    """What it means
      The recurrent layer's gates sit at their limits: sigmoids at 0 or 1, tanh
      at -1 or 1. There their slope is close to 0, so almost no gradient passes
      through them and the weights feeding them stop learning; the cell state
      no longer depends on the input. The usual cause is inputs far from unit
      scale; weights grown too large under a high learning rate is the other.

    How it is measured
      PyTorch's fused LSTM/GRU kernels hide their gates, so the gates of every
      layer and direction are recomputed from its own weights on 16 fixed
      training windows, before training, every 2 x probe_every steps and at
      the end (the outputs rebuilt from them match the fused layer's to 1e-10
      in float64, tests/test_gate_recompute.py). A sigmoid gate is saturated
      below 0.05 or above 0.95 (slope under 0.048, a fifth of its peak), a tanh activation
      beyond +-0.95 (slope under a tenth of its peak); Karpathy, Johnson &
      Fei-Fei (2015) chart LSTM gate saturation the same way with 0.1/0.9.
      Per layer, the mean saturated share over its gates, leaving out the
      forget (LSTM) and update (GRU) gates, whose saturation near 1 is how a
      cell remembers. Fires when a layer exceeds 50% at the end of the run,
      SageMaker Debugger's threshold_layer default for saturated activations;
      critical when the model also does no better than a constant (the
      saturation then explains that collapse, T307). The share before training
      says whether the updates saturated the gates (a learning rate, exploding
      gradients) or they started that way (inputs, initialization).
      A plain RNN has no gates: its tanh pinned at +-1 is reported as units
      stuck at their limits (T306) and, over time, vanishing gradients (T303).

    Example
      Weekly CO2 in ppm (about 340) fed raw to an LSTM(16): 88% of the input
      gate and 100% of the candidate and output gate activations are saturated
      before and after training, and the model predicts a constant. With
      data.scale: standard no gate saturates.

    Fix
      Setup file:  data.scale: standard; a lower training.lr if the gates
                   saturate only during training
      PyTorch:     x = (x - mean_train) / std_train   # statistics of the training part
      Keras:       norm = keras.layers.Normalization(axis=-1); norm.adapt(x_train)
                   model = keras.Sequential([norm, keras.layers.LSTM(units), ...])

    Related: D102 unscaled-inputs, T303 vanishing-gradients, T306 dead-units, T301 learning-rate-too-high
    """
    shares = ev.get("gate_saturation")
    if not shares:
        return None
    layers = saturation_by_layer(shares)
    hot = {layer: share for layer, share in layers.items() if share > LAYER_SHARE}
    if not hot:
        return None
    layer, worst = max(hot.items(), key=lambda kv: kv[1])
    prefix = layer + "."
    gates = {k.removeprefix(prefix): round(v, 3) for k, v in shares.items() if k.startswith(prefix)}
    stuck = _not_learning(ev)
    more = f" ({len(hot) - 1} more layer(s) likewise)" if len(hot) > 1 else ""
    effect = " and the model does no better than a constant" if stuck else ""
    at_init = saturation_by_layer(ev.get("gate_saturation_init") or {}).get(layer)
    evidence = {"saturated_share": {k: round(v, 3) for k, v in hot.items()}, "layer": layer, "gates": gates,
                "threshold": LAYER_SHARE, "cell_norm": ev.get("cell_norm"),
                "share_before_training": None if at_init is None else round(at_init, 3)}
    return Finding.of(
        "T305",
        f"{worst:.0%} of the gate activations in {layer} are pinned at their limits{more}, so little gradient "
        f"passes through them{effect}.",
        # Pinned gates behind a model stuck at a constant explain that collapse (T307, critical): as severe.
        evidence, severity="critical" if stuck else "warning", confidence=0.85 if stuck else 0.65,
        fix="data.scale: standard (and a lower training.lr if the gates saturate only during training)",
    )


@rule("T306")
def dead_units(ev: Evidence) -> Finding | None:
    """What it means
      Many hidden units of a recurrent layer output the same value whatever the
      input, or sit at +-1 whatever the input: saturated for good, or zeroed
      (a ReLU recurrence). A dead unit
      passes no information forward and no gradient back, so the layer works
      with a fraction of its width, and often none at all.

    How it is measured
      On the same 16 fixed training windows as the gate probe, each hidden
      unit's output (per layer and direction, recomputed from the weights)
      over the windows and their real steps. A unit is dead at a measurement
      when its standard deviation is below 0.001 (on the [-1, 1] scale of
      tanh and LSTM outputs), or when it is beyond +-0.95 at 99% or more of
      them: saturated, it passes no gradient (SageMaker Debugger calls a node
      saturated when it is active under its threshold_inactivity, 1%). Dead
      means dead at every measurement in the second half of the run. Fires
      when more than half the units of a layer are dead, SageMaker Debugger's
      threshold_layer default for dead ReLUs and saturated activations.

    Example
      Weekly CO2 in ppm fed raw to an LSTM(16): 13 of its 16 units are constant
      across all windows; scaled, none is.

    Fix
      Setup file:  data.scale: standard; model.init: default (never zeros);
                   a lower training.lr when units die during training
      PyTorch:     scale the inputs; re-create the layer rather than zeroing weights,
                   and avoid nn.RNN(nonlinearity="relu") with a high learning rate
      Keras:       keras.layers.Normalization before the LSTM; the default
                   initializers (glorot_uniform, orthogonal)

    Related: T305 saturated-gates, D102 unscaled-inputs, M206 poor-initialization, M211 unbounded-recurrent-activation
    """
    dead, units = ev.get("dead_units"), ev.get("hidden_units")
    if not dead or not units:
        return None
    shares = {layer: n / units[layer] for layer, n in dead.items() if units.get(layer)}
    hit = {layer: share for layer, share in shares.items() if share > LAYER_SHARE}
    if not hit:
        return None
    layer = max(hit, key=hit.get)
    more = f" ({len(hit) - 1} more layer(s) likewise)" if len(hit) > 1 else ""
    return Finding.of(
        "T306",
        f"{dead[layer]} of the {units[layer]} units in {layer} are constant or stuck at their limits whatever "
        f"the input{more}, so the layer works at a fraction of its width.",
        {"dead_units": dead, "hidden_units": units, "dead_share": {k: round(v, 3) for k, v in hit.items()},
         "threshold": LAYER_SHARE},
        confidence=0.8,
        fix="data.scale: standard, model.init: default, and a lower training.lr if units die during training",
    )


@rule("T307")
def prediction_collapse(ev: Evidence) -> Finding | None:
    """What it means
      The trained model gives (nearly) the same output for every input: the
      mean of the targets, some other constant, or the majority class. It has
      found the best answer that ignores the inputs, or not even that, and
      every window gets it. This is the end state of most "my LSTM doesn't
      learn" reports; the cause is usually ranked above it (unscaled data, a
      learning rate far off, saturated or dead units).

    How it is measured
      The model after the instrumented run predicts every validation window
      (dropout off). The spread is the standard deviation of its outputs over
      that of the targets (regression, per target; the largest counts), or of
      its predicted class probabilities over that of the one-hot labels
      (classification, averaged over classes). Fires below 0.1 while the final
      validation loss, and the best one during the run, are at 90% or more of
      the best constant prediction's. A spread under 0.1 caps the explained
      variance near 19%; the loss checks rule out a model that is merely
      cautious, and one that learned and then drifted back (unstable or
      overfitting training: T301, T308).

    Example
      Weekly CO2 in ppm (about 340) fed raw as input and target to an LSTM(16):
      the outputs vary 3e-7 as much as the targets and the validation loss is
      130x the mean baseline's. GunPoint (150 steps) into an LSTM(16): one class
      for all 150 validation windows, whose classes split 51/49.

    Fix
      Setup file:  data.scale: standard; a learning rate from the range test
                   (training.lr); remove a sigmoid/softmax before bce/ce (M201)
      PyTorch:     y = (y - y_mean) / y_std; x likewise; invert for reporting
                   nn.BCEWithLogitsLoss / nn.CrossEntropyLoss on raw logits
      Keras:       keras.layers.Normalization for inputs; scale y with training statistics
                   loss=keras.losses.BinaryCrossentropy(from_logits=True)

    Related: D102 unscaled-inputs, D104 unscaled-target, T302 learning-rate-too-low, D111 class-imbalance, M201 output-loss-mismatch
    """
    spread, base, loss = ev.get("prediction_spread"), baseline_loss(ev), ev.get("prediction_loss")
    best = best_over(ev)
    if spread is None or spread >= SPREAD:
        return None
    if base is not None and (loss is None or loss < AT_BASELINE * base or (best is not None and best < AT_BASELINE)):
        return None  # better than a constant, now or earlier in the run
    evidence = {"prediction_spread": spread, "threshold": SPREAD, "prediction_loss": loss, "input_free_loss": base,
                "best_over_input_free": best}
    versus = f"; validation loss {loss / base:.3g}x the constant baseline's" if base and loss is not None else ""
    share = ev.get("predicted_class_share")
    if share is None:
        summary = f"The model predicts nearly a constant: its outputs vary {spread:.2g} times as much as the targets{versus}."
    else:
        evidence.update(predicted_class=ev.get("predicted_class"), predicted_class_share=share,
                        majority_share=ev.get("majority_share"))
        summary = (f"The model predicts nearly a constant: class {ev.get('predicted_class')} for {share:.0%} of the "
                   f"validation windows, its probabilities varying {spread:.2g} times as much as the labels{versus}.")
    return Finding.of(
        "T307", summary, evidence, confidence=0.9 if base is not None else 0.7,
        fix="data.scale: standard for inputs (and a regression target), a learning rate from the range test, "
            "logits (no sigmoid/softmax) into bce/ce",
    )
