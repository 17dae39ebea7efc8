"""Training behaviour: T301 learning-rate-too-high, T302 learning-rate-too-low, T308 overfitting,
T309 cannot-fit-small-batch, T310 gradient-accumulation, T311 batch-size, T312 too-few-epochs,
T313 bad-initial-loss.

Evidence comes from the learning-rate range test (``probes/lr_range.py``), the
instrumented run (``probes/training_run.py``), fit-a-small-batch
(``probes/small_batch.py``), the loss at initialization (``probes/initial_loss.py``)
and, for T310, the watcher of the user's own loop. The curve measures are the
symptom's (``lstm_doctor.symptom``), so a finding and the symptom never disagree
about what the curves show.
"""

from __future__ import annotations

import math

from lstm_doctor.curves import finite, late_share, overfit_rise, relative_drop, tail_level
from lstm_doctor.evidence import Evidence
from lstm_doctor.findings import Finding
from lstm_doctor.rules.progress import baseline_loss, saturation_by_layer, sound_constant_loss
from lstm_doctor.rules.registry import rule
from lstm_doctor.symptom import OVERFIT_RISE, STILL_FALLING, diverging, not_learning, overfitting, still_falling, unstable, val_curve

# T301
HIGH_RATIO = 3.0  # the user's rate over the suggestion, for a run that shows the damage
SWEEP_GAP = 1.5  # the run's final training loss over the lowest the range test reached
FITS = 0.05  # ...unless that training loss is already under this share of a constant's: it fits its data
OVERSHOOT = 2.0  # without a suggestion: the handful's loss at the user's settings, over a constant's
SATURATED = 0.5  # a layer's share of pinned gate activations at the end of the run (T305's threshold)
# T302
LOW_RATIO = 30.0  # suggestion over the user's rate
SLOW_FRACTION = 0.25  # the run's relative loss drop over the range test's
BARELY_MOVES = 0.1  # without a range-test suggestion: the run's (projected) relative drop
STUCK = 0.9  # small batch at the user's settings: still at 90% of the constant's loss
MEMORISED = 0.1  # small batch with the sound recipe: a tenth of the constant's loss
# T309
BELOW_CONSTANT = 0.98  # a model that uses its input gets below the best constant's loss at once
# T310
RARE_RESET = 50  # optimizer steps per zero_grad beyond which accumulation is no design
MIN_RESET_CHECKS = 3  # direct accumulation checks of the watcher that outweigh the zero_grad count
# T311
SMALL_BATCH = 4
FEW_STEPS = 100
LARGE_SHARE = 1 / 2  # one or two updates per epoch
# T313
INIT_FACTOR = 2.0  # the default PyTorch init stays within 10% of the neutral loss
OFFSET_FACTOR = 10.0


def _lr(x: float) -> str:
    return f"{x:.2g}"


def _gap(x: float) -> str:
    return f"{x:,.0f}x" if x >= 10 else f"{x:.2g}x"


def _overshoots_small_batch(ev: Evidence) -> bool:
    """At the user's settings the loss on the handful jumps to twice a constant's, where the sound recipe,
    from the same initial weights, never does."""
    constant, user, sound = (ev.get(k) for k in ("small_batch_constant_loss", "small_batch_user_peak",
                                                 "small_batch_sound_peak"))
    sound_constant = sound_constant_loss(ev)
    if None in (constant, user, sound, sound_constant) or not (constant > 0 and sound_constant > 0):
        return False
    return user >= OVERSHOOT * constant and sound < OVERSHOOT * sound_constant


@rule("T301")
def learning_rate_too_high(ev: Evidence) -> Finding | None:
    """What it means
      Each update overshoots. The loss jumps instead of falling, spikes and
      recovers, or grows until it becomes NaN; with Adam a too-large step can
      also throw the LSTM's gates into saturation, where the model settles on
      a poor constant-like solution and stays there.

    How it is measured
      The learning-rate range test (Smith 2017): a fresh model trained with
      your optimizer, loss and batch size while the rate grows exponentially
      from 1e-7 to 10 over a few hundred steps; the safe range runs from where
      the smoothed loss starts to fall to where it is lowest (beyond it, the
      loss rises). Fires when your rate is above that range, or 3x the
      suggested rate or more, and your training run shows the damage (the top
      of the range overstates what a constant rate stands: the sweep spends
      one step at each rate, your training thousands): it diverged (NaN or
      Inf, or the smoothed training
      loss ended 1.5x above its lowest point), is unstable (see the symptom), or
      ends at a training loss 1.5x or more the lowest the range test reached
      in its few hundred steps (unless it is under a twentieth of a constant
      prediction's: a run that fits its training data that well is not
      overshooting, and a sweep over a tiny training set memorises it), or the run drove the gates into saturation
      (T305's measure: over half of a layer's gate activations pinned at
      their limits at the end, under a quarter before training, so the
      updates did it, not the inputs). A run that diverged is enough when the range
      test could not be run or found no working rate. When the range test
      found no working rate at all, fit-a-small-batch is the witness: on 16
      training windows your settings drive the loss to twice a constant
      prediction's or more, while Adam at 1e-2 from the same weights never
      does, and the run does not learn. A rate above the range whose run
      trains well is not reported: the run is the better witness.
      When inputs or a regression target reach the model far off unit scale
      (D102, D104), the sweep on them only says which rates undo that scale;
      your rate is then judged by a second sweep on the data standardized
      with the training statistics (what the fix for D102/D104 feeds), and
      the run's loss is not compared with that sweep's.

    Example
      ItalyPowerDemand, LSTM(16), Adam at lr 1.0, batch 16: the safe range
      ends at 0.04; the validation loss bounces between 0.55 and 0.8 and the
      training loss ends at 0.68, while the range test got it to 0.21 in about
      200 steps. Sunspots, LSTM(16), SGD at lr 10: the training loss averages
      3e19 over the first epoch and is non-finite at step 14.

    Fix
      Setup file:  training.lr: the suggested rate (the middle of the range
                   test's valley), optionally training.clip_norm: 1.0
      PyTorch:     opt = torch.optim.Adam(model.parameters(), lr=suggested)
                   torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # before opt.step()
      Keras:       model.compile(optimizer=keras.optimizers.Adam(learning_rate=suggested, clipnorm=1.0), ...)
      A warm-up (a few hundred steps rising to the rate) lets larger rates work.

    Related: T304 exploding-gradients, T305 saturated-gates, T311 batch-size, T302 learning-rate-too-low
    """
    lr = ev.get("user_lr")
    suggested, safe, _, scaled = range_test(ev)
    above = lr is not None and safe is not None and lr > safe[1]
    high = above or bool(lr and suggested and lr >= HIGH_RATIO * suggested)
    evidence: dict = {"user_lr": lr, "safe_range": safe, "suggested_lr": suggested, "on_standardized_data": scaled}
    fix = f"training.lr: {_lr(suggested)}" if suggested else "lower training.lr by 10x and add training.clip_norm: 1.0"
    where = STANDARDIZED if scaled else ""
    if above:
        rate = f"The learning rate {_lr(lr)} is {_gap(lr / safe[1])} the top of the range where the loss falls ({_lr(safe[1])}{where})"
    elif high:
        rate = f"The learning rate {_lr(lr)} is {_gap(lr / suggested)} the suggested {_lr(suggested)}{where}"
    else:
        rate = "Training diverged" if lr is None else f"The learning rate {_lr(lr)} is too large"
    if ev.get("stopped") == "diverged" and (high or safe is None):
        evidence["diverged_at"] = ev.get("diverged_at")
        summary = f"{rate}: the training loss became non-finite at step {ev.get('diverged_at')}."
        return Finding.of("T301", summary, evidence, fix=fix, confidence=0.9 if high else 0.6)
    if high:
        damage = _damage(ev, evidence, compare_sweep=not scaled)
        if damage is None:
            return None
        return Finding.of("T301", f"{rate}: {damage}.", evidence, fix=fix, confidence=0.85 if above else 0.7)
    if suggested is None and _overshoots_small_batch(ev) and (diverging(ev) or unstable(ev) or not_learning(ev)):
        peak, constant = ev["small_batch_user_peak"], ev["small_batch_constant_loss"]
        evidence.update(small_batch_user_peak=peak, small_batch_constant_loss=constant,
                        small_batch_sound_peak=ev.get("small_batch_sound_peak"))
        summary = (f"The learning rate {_lr(lr)} overshoots: even on {ev.get('small_batch_size')} training windows the "
                   f"loss jumps to {peak:.3g} (a constant gets {constant:.3g}), where Adam at "
                   f"{_lr(ev.get('small_batch_sound_lr') or 1e-2)} stays below that, and the training run shows no progress.")
        return Finding.of("T301", summary, evidence, fix=fix, confidence=0.6)
    return None


STANDARDIZED = ", by a range test on your data standardized"


def range_test(ev: Evidence) -> tuple[float | None, list[float] | None, float | None, bool]:
    """The range test a rate is judged by: (suggested, safe range, relative drop, on standardized data).

    With data fed far off unit scale the sweep on the data as fed suggests whatever rates undo
    that scale (D102, D104); the sweep on the standardized data tells the rate it needs once fixed."""
    if "scaled_lr_safe_range" in ev:
        return ev.get("scaled_lr_suggested"), ev.get("scaled_lr_safe_range"), ev.get("scaled_lr_range_drop"), True
    return ev.get("lr_suggested"), ev.get("lr_safe_range"), ev.get("lr_range_drop"), False


def _saturated_in_training(ev: Evidence) -> tuple[str, float, float] | None:
    """The layer whose gates training pinned at their limits (T305's measure): over half at the end, under a
    quarter before training, so the updates did it, not the inputs. (layer, share at init, share at end)."""
    end = saturation_by_layer(ev.get("gate_saturation") or {})
    start = saturation_by_layer(ev.get("gate_saturation_init") or {})
    driven = {k: v for k, v in end.items() if v > SATURATED and start.get(k, 1.0) < SATURATED / 2}
    if not driven:
        return None
    layer = max(driven, key=driven.get)
    return layer, start[layer], driven[layer]


def _damage(ev: Evidence, evidence: dict, compare_sweep: bool = True) -> str | None:
    """What the training run shows of a too-large rate, if anything (adds its numbers to ``evidence``).
    Without ``compare_sweep`` the run's loss is not compared with the sweep's (a sweep on other data)."""
    train, low = finite(ev.get("train_loss_steps") or []), ev.get("lr_range_min_loss")
    gap = tail_level(train) / low if compare_sweep and train and low and low > 0 else None
    evidence["final_train_over_sweep_min"] = gap
    if diverging(ev):
        return "the training loss climbs back up"
    if unstable(ev):
        return "the validation loss spikes and swings"
    driven = _saturated_in_training(ev)
    if driven is not None:
        layer, start, end = driven
        evidence["gate_saturation"] = {"layer": layer, "at_init": round(start, 3), "at_end": round(end, 3)}
        return f"the updates drove the gates of {layer} into saturation ({start:.0%} of them pinned at the start, {end:.0%} at the end)"
    constant = baseline_loss(ev)
    fits = constant is not None and tail_level(train) < FITS * constant  # no overshooting rate fits this well
    if gap is not None and gap >= SWEEP_GAP and not fits:
        return f"training ends at a loss {_gap(gap)} the lowest the range test reached ({tail_level(train):.3g} vs {low:.3g})"
    if not_learning(ev):
        return "the model does no better than a constant"
    return None


@rule("T302")
def learning_rate_too_low(ev: Evidence) -> Finding | None:
    """What it means
      The updates are too small to move the weights within the training you
      run: the loss stays where it started, or creeps down so slowly that the
      epochs end long before the model has learned anything. Common with plain
      SGD at rates meant for Adam, or Adam at 1e-5 and below.

    How it is measured
      The learning-rate range test (see T301) suggests a rate in the middle of
      the stretch where the loss falls fastest. Fires when that suggestion is
      30x your rate or more (over an order of magnitude beyond the noise of
      the suggestion, which moves within ~2x between seeds) and your training
      run lowered its training loss by less than a quarter of the relative
      drop the range test achieved in a few hundred steps. When the run was
      capped below your training, its drop is extrapolated on a straight line
      to your full training (an optimistic projection: the finding only fires
      when even that falls short). A sweep whose lowest loss is still above a
      constant prediction's only undid a start far off (weights or a target
      far from unit scale): its steep fall asks for rates that start needs,
      not rates at which the model learns, and counts as no suggestion.
      When no rate of your optimizer made the loss fall within the sweep (plain
      SGD on a small classification set often does not), fit-a-small-batch is
      the witness: fires when, on 16 training windows, your settings stay at
      90% or more of a constant prediction's loss while Adam at 1e-2
      memorises them (a tenth of it), and your run's training loss moved less
      than 10%. With data far off unit scale (D102, D104), the suggestion
      comes from a sweep on the data standardized (see T301): a target in
      the thousands makes the sweep on the raw data ask for the huge steps
      that reach it, which is no reason to raise a rate that suits the
      scaled data.

    Example
      Yearly sunspots, standardized, LSTM(16) with plain SGD at lr 1e-5: in 320
      steps the training loss fell 6%, while the range test lowered it 36%
      with rates around 0.06; the validation loss stays at the mean's.
      ItalyPowerDemand, LSTM(16), plain SGD at lr 1e-4: no SGD rate up to 10
      lowers the loss within the sweep; on 16 windows your settings leave the
      loss at 0.696 (a constant gets 0.693) while Adam gets it to 0.0065.

    Fix
      Setup file:  training.lr: the suggested rate; or training.optimizer: adam
                   with training.lr: 0.001
      PyTorch:     opt = torch.optim.Adam(model.parameters(), lr=1e-3)
      Keras:       model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), ...)

    Related: T301 learning-rate-too-high, T312 too-few-epochs, D110 no-learnable-signal
    """
    lr = ev.get("user_lr")
    suggested, _, sweep_drop, scaled = range_test(ev)
    train = finite(ev.get("train_loss_steps") or [])
    if not lr or len(train) < 10:
        return None
    run, planned = ev.get("steps_run") or len(train), ev.get("steps_planned") or len(train)
    drop = max(relative_drop(train), 0.0)
    projected = min(1.0, drop * max(planned / max(run, 1), 1.0))
    evidence = {"user_lr": lr, "run_drop": round(drop, 3), "projected_drop": round(projected, 3), "steps_run": run,
                "steps_planned": planned}
    for key in ("small_batch_user_best", "small_batch_sound_best", "small_batch_constant_loss"):
        if ev.get(key) is not None:
            evidence[key] = ev[key]
    low, constant = ev.get("lr_range_min_loss"), baseline_loss(ev)
    if suggested and not scaled and isinstance(low, (int, float)) and constant is not None and low >= constant:
        suggested = None  # the sweep's fall only undid a start far off (weights or target): no rate made it learn
    if suggested:
        ratio = suggested / lr
        if ratio < LOW_RATIO or not sweep_drop or sweep_drop <= 0 or projected >= SLOW_FRACTION * sweep_drop:
            return None
        evidence.update(suggested_lr=suggested, ratio=round(ratio, 1), sweep_drop=round(sweep_drop, 3),
                        on_standardized_data=scaled)
        where = STANDARDIZED if scaled else ""
        summary = (f"The learning rate {_lr(lr)} is {_gap(ratio)} below the suggested {_lr(suggested)}{where}: in {run} "
                   f"steps the training loss fell {drop:.0%}, while the range test lowered it {sweep_drop:.0%}.")
        return Finding.of("T302", summary, evidence, fix=f"training.lr: {_lr(suggested)}", confidence=0.85)
    # No rate of this optimizer made the loss fall within the sweep: the small batch is the witness.
    constant, user, sound = (ev.get(k) for k in ("small_batch_constant_loss", "small_batch_user_best",
                                                 "small_batch_sound_best"))
    sound_constant = sound_constant_loss(ev)
    if None in (constant, user, sound, sound_constant) or not (constant > 0 and sound_constant > 0) \
            or projected >= BARELY_MOVES:
        return None
    if not (user >= STUCK * constant and sound <= MEMORISED * sound_constant):
        return None
    summary = (f"With your optimizer at lr {_lr(lr)} the loss does not move, not even on "
               f"{ev.get('small_batch_size')} training windows ({user:.3g} against a constant's {constant:.3g}), "
               f"while Adam at {_lr(ev.get('small_batch_sound_lr') or 1e-2)} memorises them ({sound / sound_constant:.0%} "
               f"of a constant's loss): "
               f"the steps are too small.")
    return Finding.of("T302", summary, evidence, fix="training.optimizer: adam with training.lr: 0.003",
                      confidence=0.7)


@rule("T308")
def overfitting_rule(ev: Evidence) -> Finding | None:
    """What it means
      The model learns the training windows, not the pattern: the training
      loss keeps falling while the validation loss, after reaching its lowest
      point, rises again. Everything trained past that point makes the model
      worse on new data.

    How it is measured
      Over the instrumented run: the lowest point of the validation loss
      smoothed by a rolling median over a fifth of the evaluations, against
      the median of the last fifth. Fires when the end is 20% or more above the
      lowest point and the training loss is lower at the end than it was then
      (Prechelt's generalization loss GL > 20, "Early stopping - but when?",
      1998; a smaller rise is within the evaluation noise of small validation
      sets). Only what the run observed is judged: a run capped below your
      training can miss overfitting that starts later.

    Example
      Yearly sunspots, windows of 10 years, a 2-layer LSTM(128), batch 16, 150
      epochs: the smoothed validation loss is lowest around epoch 21 (0.32)
      and ends at 0.48 (+49%), while the training loss falls from 0.11 to 0.001.

    Fix
      Setup file:  training.epochs: the epoch of the lowest validation loss;
                   model.dropout: 0.2; training.weight_decay: 1e-4; a smaller model.hidden
      PyTorch:     keep the weights of the best validation epoch (early stopping);
                   nn.LSTM(..., dropout=0.2) between layers, nn.Dropout before the head
      Keras:       keras.callbacks.EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True)

    Related: M204 too-much-capacity, D116 too-few-samples, D114 split-leakage
    """
    if not overfitting(ev):
        return None
    val, steps = val_curve(ev)
    rise, best, _ = overfit_rise(val, steps, finite(ev.get("train_loss_steps") or []))
    history = [h for h in ev.get("val_history") or [] if finite([h.get("loss")])]
    epoch = history[best].get("epoch")
    end = tail_level(val, 0.2)
    evidence = {"lowest_val_level": round(end / rise, 4), "end_val_level": round(end, 4), "rise": round(rise, 3),
                "lowest_at_step": steps[best], "lowest_at_epoch": epoch, "threshold": OVERFIT_RISE}
    when = f"epoch {epoch}" if epoch else f"step {steps[best]}"
    summary = (f"Validation loss is lowest around {when} and ends {rise - 1:.0%} higher while the training loss "
               f"keeps falling: the model memorises its training windows.")
    fix = f"training.epochs: {max(int(epoch), 1)} (early stopping), or model.dropout: 0.2" if epoch else \
        "early stopping, model.dropout: 0.2 or training.weight_decay: 1e-4"
    return Finding.of("T308", summary, evidence, fix=fix, confidence=0.8)


@rule("T309")
def cannot_fit_small_batch(ev: Evidence) -> Finding | None:
    """What it means
      The model cannot even memorise a handful of training windows, which any
      working recurrent model with far more parameters than examples does in a
      few dozen steps. Something between the data and the loss is broken: the
      output ignores the input (a readout of padding, a zero-initialized
      network whose gradients are all zero, frozen parameters), inputs and
      targets are misaligned, or the output layer cannot reach the targets.

    How it is measured
      Karpathy's "overfit one batch": 16 evenly spaced training windows, a
      fresh model trained on them with a sound recipe (Adam at 1e-2, gradients
      clipped at 1, all 16 windows in every step, up to 200 steps, inputs and
      a regression target standardized, so that unscaled data, D102 and D104,
      does not count here) and scored on the same windows. The yardstick is the best constant's loss on them:
      a model whose output ignores the input can reach it but never get below
      it, while a model that uses its input gets below it almost at once, even
      when the task is too hard to memorise in 200 steps. Fires when the
      recipe's best loss stays at 98% of the constant's or above (2% is above
      the constant's own approximation for classes: smoothed priors). Your own
      settings are run the same way; when they fail and the recipe succeeds,
      the fault is the training settings (see T302), not this.

    Example
      Sunspots into an LSTM(16) with model.init: zeros: every weight is 0, so
      every gradient but the output bias's is 0; on 16 windows the loss gets
      down to the mean's, 0.856, and no further.

    Fix
      Check, in this order: the model's output depends on its input (change an
      input, the output changes); targets line up with their windows; the
      output activation can reach the targets (no sigmoid on unbounded
      targets, no softmax before CrossEntropyLoss); every parameter is in the
      optimizer and requires grad; the weights are not initialized to zero.
      PyTorch:     xb, yb = next(iter(loader))
                   for _ in range(200): opt.zero_grad(); loss_fn(model(xb), yb).backward(); opt.step()
      Keras:       model.fit(x[:16], y[:16], epochs=200, batch_size=16)  # the loss should go near 0

    Related: M201 output-loss-mismatch, M206 poor-initialization, M209 readout-misplaced, M212 frozen-parameters
    """
    constant, best = sound_constant_loss(ev), ev.get("small_batch_sound_best")
    if constant is None or best is None or not math.isfinite(constant) or constant <= 0:
        return None
    ratio = best / constant if math.isfinite(best) else math.inf
    if ratio < BELOW_CONSTANT:
        return None
    size, steps = ev.get("small_batch_size"), ev.get("small_batch_steps")
    evidence = {"windows": size, "steps": steps, "constant_loss": round(constant, 4),
                "sound_best_loss": best, "sound_lr": ev.get("small_batch_sound_lr"),
                "user_best_loss": ev.get("small_batch_user_best"), "threshold": BELOW_CONSTANT}
    summary = (f"Even on {size} training windows, {steps} steps of Adam got the loss no lower than a constant "
               f"prediction's ({best:.3g} vs {constant:.3g}): the model's output does not follow its input.")
    return Finding.of("T309", summary, evidence, confidence=0.85,
                      fix="check that the output depends on the input, targets align with windows, and init is not zeros")


@rule("T310")
def gradient_accumulation(ev: Evidence) -> Finding | None:
    """What it means
      PyTorch adds each backward pass's gradients to the ones already stored;
      they must be reset (optimizer.zero_grad()) before every backward pass.
      Without it, every update follows the sum of all gradients so far: the
      steps grow without bound and point in a stale direction, so the loss
      oscillates or diverges. Accumulating over a few steps on purpose, to
      simulate a larger batch, is fine.

    How it is measured
      The watcher of your own loop counts optimizer steps and zero_grad calls
      (on the optimizer or the model). Fires when, over at least 10 steps,
      zero_grad was never called, or called less than once per 50 steps:
      deliberate accumulation spans a handful to a few dozen steps, while a
      reset once per epoch is a misplaced call.
      It also looks directly: on sampled steps it sums the gradients the next
      backward passes deliver to one parameter and fits the gradient found at
      the next optimizer step as a * (those) + b * (the previous step's).
      b/a near 1 means nothing was reset in between, near 0 that it was,
      however the reset was done (zero_grad, p.grad = None, another
      optimizer). When at least 3 such checks were made, they decide: fires
      when half or more saw accumulation.

    Example
      A loop that calls optimizer.zero_grad() before the epoch loop instead
      of inside the batch loop: 2,000 steps, 1 reset; the loss drops for a few
      steps and then climbs.

    Fix
      PyTorch:     for xb, yb in loader:
                       opt.zero_grad()
                       loss = loss_fn(model(xb), yb); loss.backward(); opt.step()
      Keras:       not applicable (fit() resets gradients itself); in a custom
                   train_step, compute the gradients of each batch with a fresh tf.GradientTape.

    Related: T301 learning-rate-too-high, T304 exploding-gradients
    """
    # ``optimizer_steps``: the evidence key ``steps`` is the sequence length elsewhere.
    calls, steps = ev.get("zero_grad_calls"), ev.get("optimizer_steps")
    if calls is None or not steps or steps < 10:
        return None
    checks, accumulated = ev.get("grad_reset_checks") or 0, ev.get("grad_accumulated_checks") or 0
    evidence = {"zero_grad_calls": calls, "optimizer_steps": steps, "threshold_steps_per_reset": RARE_RESET}
    if checks >= MIN_RESET_CHECKS:  # seen directly, whatever way the loop resets
        if accumulated / checks < 0.5:
            return None
        evidence.update(grad_reset_checks=checks, grad_accumulated_checks=accumulated, grad_norm_growth=ev.get("grad_norm_growth"))
    elif calls > 0 and steps / calls <= RARE_RESET:
        return None
    how = "never" if calls == 0 else f"only {calls} times"
    seen = f"; at {accumulated} of {checks} sampled steps the gradient still held the previous step's" if checks >= MIN_RESET_CHECKS else ""
    summary = f"Gradients are reset {how} in {steps} optimizer steps{seen}: each update adds up all earlier gradients."
    return Finding.of("T310", summary, evidence, fix="call optimizer.zero_grad() before every loss.backward()", confidence=0.9)


@rule("T311")
def batch_size(ev: Evidence) -> Finding | None:
    """What it means
      A batch of 1-4 windows gives a gradient that is mostly noise: the loss
      jumps from step to step and the model wanders instead of descending,
      and the training takes 8-30x more steps than at 32. A batch of half the
      training windows or more gives clean gradients but only one or two
      updates per epoch: fewer than 100 in the whole training are too few for
      a recurrent network to get anywhere.

    How it is measured
      From the setup's batch size, training windows and planned steps, with
      the instrumented run as the witness (the symptom's measures). A batch of
      4 or fewer: a warning when the run is unstable or does no better than a
      constant, else worth knowing (info): it learns, slowly and noisily. A
      batch of half the training windows or more with fewer than 100 planned
      steps: a warning when the run does no better than a constant or is
      still improving when it stops (see T312). Fewer than 100 steps from a
      moderate batch is too few epochs (T312), not the batch.

    Example
      ElNino sea-surface temperatures, LSTM(16), the whole training set in one
      batch for 5 epochs: 5 optimizer steps in all, and the validation loss
      stays at the training mean's.

    Fix
      Setup file:  training.batch_size: 16 to 64 (and a learning rate from the
                   range test); for tiny datasets more training.epochs
      PyTorch:     DataLoader(dataset, batch_size=32, shuffle=True)
      Keras:       model.fit(x, y, batch_size=32, epochs=...)

    Related: T301 learning-rate-too-high, T302 learning-rate-too-low, T312 too-few-epochs
    """
    batch, planned, n_train = ev.get("batch_size"), ev.get("steps_planned"), ev.get("n_train")
    if not batch or not val_curve(ev)[0]:
        return None
    evidence = {"batch_size": batch, "steps_planned": planned, "n_train": n_train}
    if batch <= SMALL_BATCH:
        if unstable(ev) or not_learning(ev):
            what = "unstable" if unstable(ev) else "no better than a constant"
            return Finding.of("T311", f"Batches of {batch} give noisy gradients: the run is {what}.", evidence,
                              fix="training.batch_size: 32", confidence=0.6)
        summary = (f"Batches of {batch} train, but take {32 // batch}x the steps of batches of 32 and follow noisy "
                   f"gradients.")
        return Finding.of("T311", summary, evidence, fix="training.batch_size: 32", severity="info", confidence=0.5)
    if planned and n_train and planned < FEW_STEPS and batch >= LARGE_SHARE * n_train:
        if not_learning(ev) or still_falling(ev):
            evidence["late_share"] = late_share(val_curve(ev)[0])
            batches = f"Batches of {batch} out of {n_train} windows" if batch < n_train else \
                f"The whole training set ({n_train} windows) in every batch"
            summary = (f"{batches} leave{'s' if batch >= n_train else ''} {planned} optimizer steps in the whole "
                       f"training, too few to learn: the run " +
                       ("does no better than a constant." if not_learning(ev) else "is still improving when it stops."))
            fix = f"training.batch_size: {max(1, min(32, n_train // 16))} or more training.epochs"
            return Finding.of("T311", summary, evidence, fix=fix, confidence=0.65)
    return None


@rule("T312")
def too_few_epochs(ev: Evidence) -> Finding | None:
    """What it means
      Training stops while the model is still getting better on validation
      data: more epochs would give a better model for free.

    How it is measured
      Only when the instrumented run covered your whole training (a capped
      run says nothing about your last epochs): how much of the validation
      loss's whole fall (from the first evaluation to the median of the last
      quarter) was made in the last quarter of the evaluations (from the third
      quarter's median to the last's). Fires at 10% or more: an exponential
      approach to its final level makes about 10% of its fall in the last
      quarter when it has run three time constants, the point where it is 95%
      of the way there; a straight line makes 25%. Not when the run is
      overfitting; not when it does no better than a constant over 100 steps
      or more (it only creeps towards the constant: see T302). A training of
      fewer than 100 optimizer steps fires unless its curve has levelled off,
      as nothing recurrent learns in a few dozen updates.

    Example
      ItalyPowerDemand, LSTM(16), Adam at 3e-3, batch 16, 30 epochs: the
      last quarter of training still makes 17% of the validation loss's fall
      from 0.69 to 0.13. With 60 epochs it levels off at 0.12 and nothing fires.

    Fix
      Setup file:  training.epochs: twice as many, watching the validation loss
      PyTorch:     train longer and keep the best validation epoch's weights
      Keras:       model.fit(..., epochs=more, callbacks=[keras.callbacks.EarlyStopping(
                       monitor="val_loss", patience=5, restore_best_weights=True)])

    Related: T302 learning-rate-too-low, T311 batch-size, T308 overfitting
    """
    run, planned = ev.get("steps_run"), ev.get("steps_planned")
    if not run or not planned or run < planned or ev.get("stopped") != "completed" or overfitting(ev):
        return None
    val, _ = val_curve(ev)
    share = late_share(val)
    short = planned < FEW_STEPS
    if short:
        if share is not None and share < STILL_FALLING:  # levelled off even so
            return None
    elif not still_falling(ev) or not_learning(ev):  # a long run at the baseline only creeps towards the constant
        return None
    final = val[-1] if val else None  # a watched loop may log no validation
    evidence = {"late_share": None if share is None else round(share, 3), "threshold": STILL_FALLING,
                "steps_planned": planned, "epochs": ev.get("epochs"), "final_val_loss": final}
    if short:
        ends = "" if final is None else f": the validation loss ends at {final:.3g}" + (", still falling" if share is not None else "")
        summary = f"The whole training is {planned} optimizer steps, too few to learn{ends}."
    else:
        summary = (f"The last quarter of training made {share:.0%} of the validation loss's whole fall, down to "
                   f"{val[-1]:.3g}: it is still improving when training stops, so more epochs would help.")
    epochs = ev.get("epochs")
    more = max(2 * epochs, math.ceil(epochs * FEW_STEPS / planned)) if epochs and short else (2 * epochs if epochs else None)
    return Finding.of("T312", summary, evidence, fix=f"training.epochs: {more}" if more else "more epochs",
                      confidence=0.7)


@rule("T313")
def bad_initial_loss(ev: Evidence) -> Finding | None:
    """What it means
      Before any training, the loss is predictable (Karpathy, "A recipe for
      training neural networks": verify loss @ init): an output layer that
      starts neutral gives ln C for C balanced classes with cross-entropy,
      ln 2 with binary cross-entropy and mean(y^2) with MSE; one initialized
      well (bias at the target mean or the log class priors) gives the best
      constant's loss. Far above that, the first hundreds of steps go into
      undoing the start instead of learning (the "hockey stick" loss curve),
      and large initial outputs saturate the gates and the loss.

    How it is measured
      The untrained model's validation loss against two references: the loss
      of a neutral output (zero before the output activation) and the loss of
      the best constant (the training mean, or the class priors). Fires when
      the untrained loss is 2x the neutral output's or more: the network's
      initial outputs are far from neutral (with MSE, their spread is as
      large as the targets themselves), from large initial weights or an
      activation that pushes them. The default PyTorch initialization lands
      within 10% of the neutral loss on every dataset we tried (sunspots,
      CO2, ItalyPowerDemand, GunPoint, ArrowHead; two seeds each). Also fires
      when the neutral output's loss is 10x the best constant's or more: the
      targets sit far from where any untrained output starts (a target mean
      more than 3 standard deviations from 0, or a class rarer than about 1 in
      80); min-max scaled targets (about 2.8x) stay below. Outputs far too
      large are critical when the run also ends no better than a constant:
      they saturate the loss and the gates, and the run never leaves its start.

    Example
      Weekly CO2 in ppm as an unscaled target: the untrained LSTM starts at a
      validation loss of 133,000, predicting the training mean gives 1,000, so
      the first epochs go into moving the output bias to ~340. Sunspots into
      an LSTM(32) with model.init: normal:1.0: 9.9 at init against 2.5 for a
      neutral output.

    Fix
      Setup file:  data.scale: standard (inputs and target); model.init: default
      PyTorch:     with torch.no_grad(): model.head.bias.fill_(float(y_train.mean()))
                   # classification: model.head.bias.copy_(torch.log(class_priors))
      Keras:       keras.layers.Dense(1, bias_initializer=keras.initializers.Constant(y_train.mean()))

    Related: D104 unscaled-target, M201 output-loss-mismatch, M206 poor-initialization, D111 class-imbalance
    """
    initial, neutral, expected = (ev.get(k) for k in ("initial_loss", "zero_output_loss", "expected_initial_loss"))
    if not all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in (initial, neutral, expected)):
        return None
    evidence = {"initial_loss": initial, "neutral_output_loss": neutral, "best_constant_loss": expected}
    if initial >= INIT_FACTOR * neutral:
        evidence["over_neutral"] = round(initial / neutral, 2)
        stuck = not_learning(ev)
        effect = ", and the trained model does no better than a constant" if stuck else ""
        summary = (f"The untrained model's loss is {initial:.3g}, {_gap(initial / neutral)} what a neutral output gives "
                   f"({neutral:.3g}): its initial outputs are far too large{effect}.")
        # Outputs that start saturated behind a run that never left a constant explain that collapse: as severe.
        return Finding.of("T313", summary, evidence, fix="model.init: default (smaller initial weights)",
                          severity="critical" if stuck else "warning", confidence=0.85 if stuck else 0.75)
    if neutral >= OFFSET_FACTOR * expected:
        evidence["neutral_over_constant"] = round(neutral / expected, 2)
        summary = (f"The untrained model starts at a loss of {initial:.3g}, {_gap(initial / expected)} the best "
                   f"constant's ({expected:.3g}): the targets sit far from where an untrained output starts.")
        return Finding.of("T313", summary, evidence, fix="data.scale: standard (or set the output bias to the target mean)",
                          confidence=0.7)
    return None
