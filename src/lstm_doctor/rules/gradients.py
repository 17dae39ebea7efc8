"""T303 vanishing-gradients and T304 exploding-gradients, judged on the training-run instruments.

Evidence comes from ``probes/gradients.py`` (norms per step and per layer) and
``probes/memory_length.py`` (the input gradient at every time step); each rule
stays silent when its evidence was not measured.
"""

from __future__ import annotations

from lstm_doctor.evidence import Evidence
from lstm_doctor.findings import Finding
from lstm_doctor.rules.progress import best_over
from lstm_doctor.rules.registry import rule

# T303
VANISHED = 1e-7  # mean |gradient| of a recurrent layer: SageMaker Debugger's vanishing_gradient default
LAYER_FADE = 0.01  # first recurrent layer's RMS gradient over the last's: two orders of magnitude
PERIOD_REACH = 0.5  # memory shorter than half the data's dominant period, while the model does not beat seasonal naive
WINDOW_REACH = 0.25  # memory shorter than a quarter of the window, while the model does not learn
NOT_LEARNING = 0.9  # best validation loss at or above 90% of a baseline's: no real improvement on it
INERT = 0.01  # outputs varying under 1% of the targets' no longer depend on the inputs
# T304
FAR_GAIN = 10.0  # before training, the oldest inputs' gradient this many times the last step's
LAYER_GAIN = 100.0  # first recurrent layer's RMS gradient over the last's
SPIKE = 50.0  # a step's gradient norm over the median of the 50 steps before it


def _ratio_text(x: float) -> str:
    return f"{x:,.0f}x" if x >= 10 else f"{x:.2g}x"


def _norms_read(ev: Evidence) -> dict[str, int] | None:
    """How many steps had their total gradient norm read, of how many, when not every step's was (``watch`` thins them)."""
    steps = ev.get("grad_norm_steps")
    if not steps:
        return None
    total = max(ev.get("optimizer_steps") or ev.get("steps_run") or 0, steps[-1] + 1)
    return {"grad_norms_read": len(steps), "optimizer_steps": total} if len(steps) < total else None


def _layer_means(ev: Evidence) -> dict[str, float]:
    """Mean |gradient| of each recurrent layer (median over sampled steps)."""
    per_layer = ev.get("grad_mean_abs_per_layer") or {}
    return {k: per_layer[k] for k in ev.get("grad_recurrent_layers") or [] if per_layer.get(k) is not None}


@rule("T303")
def vanishing_gradients(ev: Evidence) -> Finding | None:
    """What it means
      The training signal dies before it reaches the parts of the model that
      need it. Across time: the loss barely feels inputs more than a few steps
      back, so the model cannot learn anything that depends on them (a season,
      an event early in the sequence). Across layers: the first recurrent layers
      get gradients orders of magnitude smaller than the last, so they hardly
      train. An LSTM's cell path is meant to carry gradients far back; saturated
      gates, a forget gate near 0, a plain tanh RNN or a deep stack break it.

    How it is measured
      Across time: on 32 fixed training windows, the gradient of the loss with
      respect to every input step, |dL/dx_t| (norm over features), divided by
      the gradient at the window's last step; the median over windows per lag
      is the relative gradient. The memory length is the largest lag still at
      1% or more: an input that moves the loss a hundred times less than the
      latest one is lost in mini-batch noise. Measured before training and at
      the end of the run; the end counts, unless the trained model's outputs
      vary less than 1% as much as the targets: then they no longer depend on
      the inputs, the gradients are round-off, and the untrained model's
      memory is read instead. Fires when the memory is shorter than
      half the data's dominant period (when the period fits in the window)
      while the best validation loss stays at 90% or more of the seasonal-naive
      forecast's (the model cannot use the last period, and it shows); or,
      without a period, when the memory is shorter than a quarter of the
      window while the best validation loss stays at 90% or more of the best
      constant prediction's (not learning, and three quarters of every window
      never reach the weights).
      Across layers: the RMS gradient of the first recurrent layer over that of
      the last (directions pooled, median over sampled steps); fires below
      0.01, two orders of magnitude (Glorot & Bengio 2010 describe gradients
      shrinking toward the lower layers of deep networks).
      Absolute: a recurrent layer whose mean |gradient| stays below 1e-7, the
      default threshold of SageMaker Debugger's vanishing_gradient rule.

    Example
      GunPoint (150 steps) into a tanh RNN(16) initialized with normal:0.05:
      the gradient reaches 2 steps back of 150 and the validation loss stays
      at the class-prior baseline's (0.69). Weekly CO2 fed raw (~340 ppm) into a
      4-layer LSTM: the first layer's gradients are ~3,000x smaller than the
      fourth's, because its gates are saturated.

    Fix
      Setup file:  model.cell: lstm (or gru) instead of rnn; model.forget_bias: 1.0;
                   fewer model.layers; data.scale: standard; a shorter or
                   downsampled data.window when the sequences are very long
      PyTorch:     lstm = nn.LSTM(n_in, hidden, batch_first=True)
                   h = lstm.hidden_size   # gate order i, f, g, o
                   with torch.no_grad():
                       lstm.bias_ih_l0[h:2*h].fill_(1.0); lstm.bias_hh_l0[h:2*h].zero_()
      Keras:       keras.layers.LSTM(units, unit_forget_bias=True)  # the default
                   keras.layers.GRU(units) in place of SimpleRNN
      Scaled inputs keep the gates out of saturation (see T305, D102).

    Related: T305 saturated-gates, M207 forget-bias, M205 deep-stack, D109 sequence-too-long
    """
    found: list[tuple[str, dict, float]] = []  # (clause, evidence, confidence)
    memory, window = ev.get("memory_length"), ev.get("memory_window")
    period = ev.get("dominant_period")
    learned = best_over(ev)
    when = ""
    spread = ev.get("prediction_spread")
    if spread is not None and spread < INERT and ev.get("memory_length_init") is not None:
        # The trained outputs ignore the inputs: their gradients are round-off. Read the untrained model.
        memory, when = ev["memory_length_init"], " before training"
    if memory is not None and window:
        reach = ("only the last input step" if memory == 0 else f"only the last {memory + 1} input steps") + when
        seasonal = best_over(ev, "seasonal_naive") or learned
        if period and 2 <= period < window:
            if memory < PERIOD_REACH * period and seasonal is not None and seasonal >= NOT_LEARNING:
                found.append((f"the loss feels {reach}, though the data repeats every {period} steps, and the model "
                              f"does no better than repeating the last period (best validation loss {_ratio_text(seasonal)} its)",
                              {"memory_length": memory, "dominant_period": period, "window": window,
                               "best_over_seasonal_naive": round(seasonal, 3)}, 0.75))
        elif learned is not None and learned >= NOT_LEARNING and memory < WINDOW_REACH * window:
            found.append((f"the loss feels {reach} of {window} and the model does no better than a constant "
                          f"(best validation loss {_ratio_text(learned)} the constant's)",
                          {"memory_length": memory, "window": window, "best_over_input_free": round(learned, 3)}, 0.75))
    ratio = ev.get("grad_layer_ratio")
    if ratio is not None and ratio < LAYER_FADE:
        found.append((f"the first recurrent layer gets {_ratio_text(1 / ratio)} smaller gradients than the last",
                      {"grad_layer_ratio": ratio, "threshold": LAYER_FADE}, 0.7))
    dead = {k: v for k, v in _layer_means(ev).items() if v < VANISHED}
    if dead:
        found.append((f"{len(dead)} recurrent layer(s) get a mean |gradient| below {VANISHED:g}",
                      {"grad_mean_abs_per_layer": dead, "threshold": VANISHED}, 0.8))
    if not found:
        return None
    evidence = {k: v for _, e, _ in found for k, v in e.items()}
    if ev.get("memory_relative_grad"):
        evidence["relative_grad"] = ev["memory_relative_grad"]
    summary = "Gradients vanish: " + "; ".join(c for c, _, _ in found) + "."
    return Finding.of(
        "T303", summary, evidence, confidence=max(c for _, _, c in found),
        fix="model.forget_bias: 1.0 (LSTM), an lstm or gru cell instead of rnn, fewer layers, scaled inputs",
    )


@rule("T304")
def exploding_gradients(ev: Evidence) -> Finding | None:
    """What it means
      Gradients grow out of proportion: backpropagation through time multiplies
      them by the recurrent Jacobian at every step, and when that is larger
      than 1 they grow exponentially with the distance back (Pascanu, Mikolov &
      Bengio 2013). One such step throws the weights far away; an overflow
      makes them NaN and training is over.

    How it is measured
      The total gradient norm at every step (before clipping), the norm of each
      layer on sampled steps, and the input gradient at every time step before
      training. (Around the user's own loop the total norm may be read on fewer
      steps: lstm_doctor.watch reads it every k-th step where a read is costly
      against a short step, the Keras callback on its sampled steps; spikes and
      non-finite norms are then judged among the steps read, and the finding
      says how many were.) Fires on any of:
        - a NaN or infinite gradient at any step (critical);
        - before training, the oldest quarter of the window getting at least 10x
          the gradient of the last step: the recurrence amplifies instead of
          fading (critical; a warning when the setup already clips);
        - the first recurrent layer's RMS gradient 100x the last's or more
          (critical; a warning when clipped);
        - a step whose norm is 50x the median of the 50 steps (read) before it or more,
          in a run whose best validation loss stays at 90% or more of the best
          constant prediction's (warning; info when clipped).
      The spike bar is our own measurement: healthy runs with batches of 16-32
      on sunspots, CO2, ItalyPowerDemand and GunPoint reach 30x (a small batch
      with a misclassified window), setups with exploding recurrences 77-91x;
      but a healthy LSTM on BasicMotions (40 training sequences) spiked 78x
      and learned well, so spikes count only where the model does not learn.
      SageMaker Debugger's exploding_tensor rule flags the non-finite case.

    Example
      Sunspots, standardized, into a tanh RNN(16) with weights drawn from
      normal(0, 1): before training, the gradient 21 steps back is 18x the
      last step's; norms reach 900,000 and the validation loss ends at 5.9,
      worse than predicting the mean (2.5). With init: default it learns.

    Fix
      Setup file:  training.clip_norm: 1.0; model.init: default or orthogonal;
                   a lower training.lr (T301)
      PyTorch:     loss.backward()
                   torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
                   optimizer.step()
      Keras:       keras.optimizers.Adam(learning_rate=1e-3, clipnorm=1.0)
                   keras.layers.LSTM(units, recurrent_initializer="orthogonal")
      Clipping bounds each update; a sound initialization removes the cause.

    Related: T301 learning-rate-too-high, M206 poor-initialization, M211 unbounded-recurrent-activation, D101 non-finite-values
    """
    clipped = ev.get("clip_norm") is not None
    found: list[tuple[str, dict, str, float]] = []  # (clause, evidence, severity, confidence)
    bad = ev.get("grad_nonfinite_steps") or 0
    if bad:
        found.append((f"the gradient became NaN or infinite at step {ev.get('grad_first_nonfinite')} ({bad} step(s) in all)",
                      {"grad_nonfinite_steps": bad, "grad_first_nonfinite": ev.get("grad_first_nonfinite")}, "critical", 0.95))
    gain = ev.get("memory_far_gain_init")
    if gain is not None and gain >= FAR_GAIN:
        found.append((f"before any training, the oldest inputs of each window get {_ratio_text(gain)} the gradient "
                      "of the latest one",
                      {"memory_far_gain_init": gain, "threshold": FAR_GAIN}, "warning" if clipped else "critical", 0.8))
    ratio = ev.get("grad_layer_ratio")
    if ratio is not None and ratio >= LAYER_GAIN:
        found.append((f"the first recurrent layer gets {_ratio_text(ratio)} the gradient of the last",
                      {"grad_layer_ratio": ratio, "threshold": LAYER_GAIN}, "warning" if clipped else "critical", 0.75))
    norm_steps = ev.get("grad_norm_steps")  # the step of each ratio (absent: one per step, from step 0)
    spikes = [(norm_steps[i] if norm_steps else i, r) for i, r in enumerate(ev.get("grad_spike_ratios") or [])
              if r is not None and r >= SPIKE]
    learned = best_over(ev)
    if spikes and (learned is None or learned >= NOT_LEARNING):  # Adam rides out spikes in a model that learns
        step, worst = max(spikes, key=lambda s: s[1])
        found.append((f"the gradient norm spiked to {_ratio_text(worst)} its running median at step {step} "
                      f"({len(spikes)} spike(s) of {SPIKE:g}x or more)",
                      {"spikes": len(spikes), "worst_spike": worst, "worst_spike_step": step, "threshold": SPIKE},
                      "info" if clipped else "warning", 0.6))
    if not found:
        return None
    evidence = {k: v for _, e, _, _ in found for k, v in e.items()}
    evidence.update({k: ev[k] for k in ("grad_norm_median", "grad_norm_max", "clip_norm", "clipped_fraction") if ev.get(k) is not None})
    severity = min((s for _, _, s, _ in found), key=("critical", "warning", "info").index)
    tail = ""
    read = _norms_read(ev) if {"grad_nonfinite_steps", "spikes"} & evidence.keys() else None
    if read:  # those clauses judged the steps whose norm was read
        evidence.update(read)
        tail = f"; the total norm was read on {read['grad_norms_read']:,} of {read['optimizer_steps']:,} steps"
    if clipped:
        tail += f"; clipping at {ev['clip_norm']:g} was active in {ev.get('clipped_fraction') or 0:.0%} of steps"
    summary = "Gradients explode: " + "; ".join(c for c, _, _, _ in found) + tail + "."
    return Finding.of(
        "T304", summary, evidence, severity=severity, confidence=max(c for _, _, _, c in found),
        fix="training.clip_norm: 1.0 and a sound initialization (model.init: default or orthogonal)",
    )
