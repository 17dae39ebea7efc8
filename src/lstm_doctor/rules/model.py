"""M2xx rules: the model and its setup (output layer and loss, size, depth, init,
gates, readout, dropout), judged on the facts ``lstm_doctor.inspect.model_facts``
reads from a fresh copy of the model, and on the baselines and the training run
where size alone proves nothing. M208 and M212 live in ``own_model``.
"""

from __future__ import annotations

import math
from typing import Any

from lstm_doctor.curves import finite, overfit_rise, quarter_medians, tail_level
from lstm_doctor.evidence import Evidence
from lstm_doctor.findings import Finding
from lstm_doctor.probes.wider_twin import NARROW_UNITS, narrow
from lstm_doctor.rules.names import model_name
from lstm_doctor.rules.progress import sound_constant_loss
from lstm_doctor.rules.registry import rule

# M201: the range each output activation can reach, and the share of training
# targets outside it that makes the pairing wrong.
REACH = {"sigmoid": "0..1", "tanh": "-1..1", "relu": "0..inf", "softmax": "0..1"}
UNREACHABLE_SHARE = 0.01
# M202: metrics that only mean something for one kind of task.
CLASS_METRICS = {"accuracy", "acc", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
                 "balanced_accuracy", "precision", "recall", "f1", "f1_score", "auc", "roc_auc", "top_k_accuracy"}
REGRESSION_METRICS = {"mse", "rmse", "mae", "mape", "smape", "r2", "msle", "mean_squared_error",
                      "mean_absolute_error", "root_mean_squared_error", "mean_absolute_percentage_error"}
# M203: of the linear model's gain over the input-free baseline, the model's share
# is at least LEARNED_SHARE and under LINEAR_GAIN; the run settled (last quarter of
# the training curve within SETTLED of the third); no overfitting (training loss at
# the end at least NOT_OVERFIT x the best validation loss); layers narrower than
# NARROW_UNITS or than the number of input features (where the wider twin is trained).
LEARNED_SHARE = 0.1
LINEAR_GAIN = 0.8
SETTLED = 0.05
NOT_OVERFIT = 0.7
MEMORISED = 0.1  # fit-a-small-batch's best loss over a constant's that a model wide enough reaches
# M204: trainable parameters per training target value (as D116), and the
# validation loss ending this far above its best while the training loss falls.
PARAMS_PER_VALUE = 10.0
VAL_RISE = 1.2
# M205: stacked recurrent layers beyond this, without normalization or residuals.
DEEP = 4
DEEP_CRITICAL = 8
# ...and a first-layer gradient under this share of the last layer's shows it biting.
LAYER_FADE = 0.1
# M206: weight std this many times off PyTorch's default, or a recurrent
# spectral radius above this.
STD_FACTOR = 10.0
RADIUS = 2.0
# M207: a forget-gate bias at or below this is the "default" zero bias.
FORGET_LOW = 0.5
FORGET_NEGATIVE = -1.0
# M209: share of sequences whose last step is padding.
PAD_WARNING = 0.10
PAD_CRITICAL = 0.5
# M209, measured: an output moving by this share of the outputs' spread when only padding changes.
PADDING_INFLUENCE = 1e-3
# M210: share of sequences whose per-step target never changes: a sequence label repeated.
REPEATED_LABELS = 0.95
# M213: dropout rate at which a narrow layer (under WIDE units) loses its signal,
# and the rate that is too much at any width.
DROPOUT = 0.5
DROPOUT_ANY = 0.7
WIDE = 256


def _handful_share(ev: Evidence) -> float | None:
    """Fit-a-small-batch's best loss (sound recipe) over the best constant's on the same windows."""
    constant, best = sound_constant_loss(ev), ev.get("small_batch_sound_best")
    if constant is None or best is None or not constant > 0 or not math.isfinite(best):
        return None
    return best / constant


def _best_val(ev: Evidence) -> float | None:
    losses = finite(h.get("loss") for h in ev.get("val_history") or [])
    return min(losses) if losses else None


@rule("M201")
def output_loss_mismatch(ev: Evidence) -> Finding | None:
    """What it means
      The output layer, the loss and the targets do not fit together, so the
      loss cannot reach its minimum whatever the recurrent layers learn:
      - a sigmoid or softmax before a loss that applies it again
        (BCEWithLogitsLoss, CrossEntropyLoss, Keras with from_logits=True): the
        probabilities are squashed a second time, the gradient shrinks and the
        predictions stay near the middle;
      - a ReLU before a loss that takes logits: with BCE no logit goes below 0,
        so no probability goes below 0.5 (critical); a ReLU or tanh before
        cross-entropy clips or bounds the logits (a warning);
      - a bounded output (sigmoid 0..1, tanh -1..1, ReLU 0..inf) for targets
        outside that range: those targets can never be reached, the output
        saturates and its gradient dies (a sigmoid chasing CO2 in ppm);
      - a softmax over one output, which is always exactly 1, or a
        cross-entropy over one output, which is always 0: nothing to learn;
      - binary cross-entropy on a regression target outside 0..1, whose loss
        has no minimum there.

    How it is measured
      The output activation (from the setup, or the last module of the user's
      model), the loss, the number of outputs and the training targets as
      fed. A bounded output fires when 1% or more of the training targets lie
      outside its range: a few outliers past the edge cost little, but a
      percent or more set the loss floor and pin the output at its limit.
      Double activations, ReLU or tanh logits, one-output softmax or
      cross-entropy, and BCE on targets outside 0..1 fire whenever seen.
      log_softmax before a cross-entropy is harmless (it is idempotent) and
      not flagged; BCE on regression targets inside 0..1 (soft targets) is
      a valid use and not flagged either.

    Example
      Weekly CO2 (313-360 ppm) fed raw to an LSTM(16) with a sigmoid output
      and MSE: every target is out of the sigmoid's reach, the output sits at
      1.0 and the loss at ~1e5 from the first epoch.

    Fix
      Setup file:  model.output_activation: none   (with loss bce or ce, and for
                   regression); or scale the target into the activation's range
      PyTorch:     return logits: nn.Linear(h, classes) and CrossEntropyLoss /
                   BCEWithLogitsLoss, no nn.Softmax / nn.Sigmoid before them;
                   for regression a plain nn.Linear head
      Keras:       Dense(1) (no activation) for regression; for classes
                   Dense(k, activation="softmax") with from_logits=False, or no
                   activation with from_logits=True, never both

    Related: D104 unscaled-target, T307 prediction-collapse, T313 bad-initial-loss
    """
    act, loss, task, outputs = ev.get("output_activation"), ev.get("loss"), ev.get("task"), ev.get("n_outputs")
    if act is None or loss is None:
        return None
    severity = None  # the catalog's: critical
    outside = ev.get("target_share_outside") or {}
    evidence: dict[str, Any] = {"output_activation": act, "loss": loss, "task": task, "n_outputs": outputs}
    fix = "Return raw outputs (model.output_activation: none) and let the loss apply the link function."
    if act == "softmax" and outputs == 1:
        summary = "A softmax over a single output is always exactly 1, so the prediction cannot change whatever the model learns."
    elif loss == "ce" and outputs == 1:
        summary = "Cross-entropy over a single output is always 0, so there is no gradient to learn from."
        fix = "Use two outputs with ce, or one output with bce (training.loss: bce)."
    elif act in ("sigmoid", "softmax") and loss in ("bce", "ce"):
        kind = "BCEWithLogitsLoss" if loss == "bce" else "CrossEntropyLoss"
        summary = (f"A {act} output feeds {loss} ({kind}), which applies the {act} itself: the probabilities are "
                   "squashed twice, so the gradient shrinks and predictions stay near the middle.")
    elif act == "relu" and loss == "bce":
        summary = ("A ReLU output feeds bce, which reads it as a logit: logits cannot go below 0, so the predicted "
                   "probability never drops under 0.5 and the negative class cannot be learned.")
    elif act in ("relu", "tanh") and loss in ("bce", "ce"):
        limit = "cannot go below 0" if act == "relu" else "stay within -1..1"
        summary = (f"A {act} output feeds {loss}, which reads it as logits: they {limit}, so the model cannot express "
                   "confident predictions and the gradient of clipped or saturated outputs dies.")
        severity = "warning"
    elif task == "regression" and loss == "bce" and outside.get("0..1", 0.0) > 0:
        evidence["target_share_outside"] = {"0..1": outside["0..1"]}
        summary = (f"Binary cross-entropy on a regression target with {outside['0..1']:.0%} of its values outside 0..1 "
                   "has no minimum there: the loss rewards pushing those outputs to infinity.")
        fix = "Use mse, mae or huber for a regression target (training.loss: mse)."
    elif task == "regression" and act in REACH and outside.get(REACH[act], 0.0) >= UNREACHABLE_SHARE:
        share, rng = outside[REACH[act]], ev.get("target_range")
        evidence.update(target_share_outside={REACH[act]: share}, target_range=rng, threshold=UNREACHABLE_SHARE)
        span = f" (targets {rng[0]:.3g} to {rng[1]:.3g})" if rng else ""
        summary = (f"A {act} output can only reach {REACH[act].replace('inf', '∞')}, but {share:.0%} of the training "
                   f"targets lie outside it{span}: the output saturates and its gradient dies.")
        fix = "Drop the output activation for regression (model.output_activation: none), or scale the target into its range."
    else:
        return None
    return Finding.of("M201", summary, evidence, fix=fix, severity=severity, confidence=0.95 if severity is None else 0.75)


@rule("M202")
def metric_task_mismatch(ev: Evidence) -> Finding | None:
    """What it means
      A metric you watch means nothing for this task, so it tells you the
      model is not learning when it is (or the reverse). Accuracy on a
      regression target counts exact matches of real numbers: it stays near 0
      however good the predictions get. MAE or RMSE of class indices treats
      class 2 as "closer" to class 1 than class 0.

    How it is measured
      The metrics named in the setup (training.metrics) against the task:
      classification metrics (accuracy, precision, recall, f1, auc, ...) on a
      regression target, or regression metrics (mse, rmse, mae, mape, r2, ...)
      on class labels. Names are matched case-insensitively.

    Example
      Yearly sunspot numbers (0-190) forecast with metrics: [accuracy]: a
      real-valued prediction almost never equals the target exactly, so
      accuracy sits near 0 while the validation MAE can fall from the mean's
      42 to ridge regression's 14 (24-year windows).

    Fix
      Setup file:  training.metrics: [mae, rmse]   (regression)
                   training.metrics: [accuracy, balanced_accuracy]   (classes)
      PyTorch:     compute the metric that matches the task, e.g.
                   torchmetrics.MeanAbsoluteError() for regression
      Keras:       model.compile(loss="mse", metrics=["mae"])

    Related: D111 class-imbalance, M201 output-loss-mismatch
    """
    metrics, task = ev.get("metrics"), ev.get("task")
    if not metrics or not task:
        return None
    names = [str(m) for m in metrics]
    wrong_set, kind = (CLASS_METRICS, "classification") if task == "regression" else (REGRESSION_METRICS, "regression")
    wrong = [m for m in names if m.lower() in wrong_set]
    if not wrong:
        return None
    why = ("it counts exact matches of real numbers and stays near 0 however close the predictions get"
           if task == "regression" else "it measures distances between class indices, which have no order")
    return Finding.of(
        "M202",
        f"You watch {', '.join(wrong)} on a {task} target: a {kind} metric, {why}.",
        {"metrics": names, "mismatched": wrong, "task": task},
        fix="training.metrics: [mae, rmse]" if task == "regression" else "training.metrics: [accuracy, balanced_accuracy]",
        confidence=0.95,
    )


def _scores(ev: Evidence) -> tuple[str, float, float, float] | None:
    """(measure, model's best, input-free, linear) on validation, oriented so that higher is better:
    minus the loss for regression, balanced accuracy for classes (a logistic regression's
    cross-entropy punishes its overconfidence, not its errors)."""
    base = ev.get("baselines") or {}
    if ev.get("task") in ("binary", "multiclass"):
        measure = "balanced accuracy"
        free, linear = (base.get("majority") or {}).get("balanced_accuracy"), (base.get("linear") or {}).get("balanced_accuracy")
    else:
        measure, free, linear = "loss", ev.get("input_free_loss"), ev.get("linear_baseline_loss")
        free, linear = (None if v is None else -v for v in (free, linear))
    best = _best_score(ev.get("val_history") or [], measure)
    if best is None or free is None or linear is None:
        return None
    return measure, best, free, linear


def _best_score(history: list[dict[str, Any]], measure: str) -> float | None:
    """A run's best validation score in ``measure``, oriented so that higher is better (None: none finite)."""
    if measure == "loss":
        losses = finite(h.get("loss") for h in history)
        return -min(losses) if losses else None
    scores = finite(h.get("balanced_accuracy") for h in history)
    return max(scores) if scores else None


def _gain_share(score: float, free: float, reference: float) -> float:
    """``score``'s share of ``reference``'s gain over the input-free baseline ``free``."""
    return (score - free) / (reference - free)


def linear_share(ev: Evidence) -> float | None:
    """The model's share of the linear model's gain over the input-free baseline (1: as good as
    linear, above 1: better), or None when not measured or the linear model gains nothing."""
    scores = _scores(ev)
    if scores is None or scores[3] <= scores[2]:
        return None
    _, model, free, linear = scores
    return _gain_share(model, free, linear)


@rule("M203")
def too_little_capacity(ev: Evidence) -> Finding | None:
    """What it means
      The model is too small for what the data offers: it settles well short
      of what a linear model on the same window, or the same network with
      more units, reaches. Its units cannot hold the patterns in the window.
      Size alone proves nothing (8 units are plenty for many series), so
      this is judged on what the model does.

    How it is measured
      From the baselines, the run at your settings and, for a model built
      from a setup file, a wider twin: the same setup with 4x the units (16
      at least) trained exactly as long, through the same loop. On
      validation: the model's best loss (balanced accuracy for classes, as a
      logistic regression's cross-entropy mostly measures its
      overconfidence), the input-free baseline's, a ridge/logistic
      regression's on the flattened window, and the twin's. The yardstick is
      the better of the linear model and the twin (a linear model is a weak
      one where the data's patterns are not linear). Of the yardstick's gain
      over the input-free baseline, the model's share must be:
      - under 80% (it falls clearly short), and at least 10% unless the twin
        reaches 80% or more (without the twin, a model stuck on a constant is
        explained by other codes; a twin that learns with the same data,
        loss, rate and steps shows the units are what is missing);
      - with the run settled: the median training loss of its last quarter
        within 5% of the third quarter's (not still improving, T312); or,
        while it is still improving, with the model unable to memorise 16
        training windows: fit-a-small-batch (Adam at 1e-2, 200 steps, see
        T309) leaves the loss above a tenth of a constant's, where any model
        wide enough for its data gets far below it; or with the twin at 80%
        or more (trained as long: more epochs would help both);
      - without overfitting: its training loss at the end at least 0.7x its
        best validation loss;
      - on a narrow model: fewer than 8 units, or fewer units than input
        features (the state must then squeeze every step's inputs). A wider
        model that loses to a linear one has an optimization problem
        (vanishing gradients, a plain RNN over long sequences, T303, D109),
        not a capacity one.

    Example
      1,500 synthetic windows, four features each acting on the target over
      the last six of twelve steps, 30 epochs at lr 0.01: an LSTM(1) settles
      at validation MSE 0.74 (input-free 0.98) while ridge regression on the
      window reaches 0.01; an LSTM(32) trained the same way reaches 0.025.

    Fix
      Setup file:  model.hidden: 64   (or model.layers: 2)
      PyTorch:     nn.LSTM(n_features, 64, batch_first=True)
      Keras:       keras.layers.LSTM(64)
      Retrain and compare with the linear baseline in the report.

    Related: M204 too-much-capacity, D108 window-too-short, T312 too-few-epochs
    """
    sizes, train, scores = ev.get("hidden_sizes"), finite(ev.get("train_loss_steps") or []), _scores(ev)
    best_loss = _best_val(ev)
    if not sizes or scores is None or best_loss is None or len(train) < 8:
        return None
    measure, model, free, linear = scores
    if not narrow(max(sizes), len(ev.get("features") or [])):
        return None
    twin = _twin_score(ev, measure)
    yardstick = max(linear, twin) if twin is not None else linear
    if yardstick <= free:
        return None
    captured = _gain_share(model, free, yardstick)
    # The twin gets most of the way with the same data, loss, rate and steps: the units are what is missing.
    twin_learns = twin is not None and _gain_share(twin, free, yardstick) >= LINEAR_GAIN
    q = quarter_medians(train)
    settled = q[2] > 0 and (q[2] - q[3]) / q[2] < SETTLED
    handful = _handful_share(ev)
    cannot_memorise = handful is not None and handful > MEMORISED
    train_end = tail_level(train)
    if not ((LEARNED_SHARE <= captured or twin_learns) and captured < LINEAR_GAIN
            and (settled or cannot_memorise or twin_learns) and train_end >= NOT_OVERFIT * best_loss):
        return None
    shown = (lambda v: f"{-v:.3g}") if measure == "loss" else (lambda v: f"{v:.2f}")
    units = f"{max(sizes)} units are" if max(sizes) > 1 else "1 unit is"
    if twin_learns:
        reach = (f"the same setup with {ev['wider_hidden']} units, trained as long, reaches {shown(twin)} (a linear model "
                 f"{shown(linear)}, input-free {shown(free)}): its {units} too few")
    else:
        reach = f"a linear model on the same window reaches {shown(linear)} (input-free {shown(free)}): its {units} too few"
    return Finding.of(
        "M203",
        f"The {model_name(ev)} settles at validation {measure} {shown(model)}, while {reach} for the patterns in the data.",
        {"hidden_sizes": sizes, "measure": measure, "model_best": abs(model), "linear": abs(linear), "input_free": abs(free),
         "wider_twin": abs(twin) if twin is not None else None, "wider_hidden": ev.get("wider_hidden"),
         "yardstick": "wider twin" if twin is not None and twin > linear else "linear", "twin_learns": twin_learns,
         "share_of_yardstick_gain": captured,
         "train_loss_end": train_end, "last_quarter_fall": (q[2] - q[3]) / q[2], "small_batch_over_constant": handful,
         "thresholds": {"learned": LEARNED_SHARE, "linear_gain": LINEAR_GAIN, "settled": SETTLED,
                        "not_overfit": NOT_OVERFIT, "small_hidden": NARROW_UNITS, "memorised": MEMORISED}},
        fix=f"model.hidden: {max(64, 4 * max(sizes))}",
        confidence=0.8 if twin_learns else 0.7,
    )


def _twin_score(ev: Evidence, measure: str) -> float | None:
    """The wider twin's best validation score, oriented as :func:`_scores` orients the model's
    (None: no twin, or its run broke down)."""
    if ev.get("wider_stopped") not in ("completed", "time-limit", "callback"):
        return None
    return _best_score(ev.get("wider_val_history") or [], measure)


@rule("M204")
def too_much_capacity(ev: Evidence) -> Finding | None:
    """What it means
      The model has far more parameters than the data has target values and
      nothing holds it back: no dropout, no weight decay, no early stopping.
      It memorizes the training set, and the validation loss climbs while the
      training loss keeps falling. D116 says the same from the data's side;
      this finding points at the model: regularize it or make it smaller.

    How it is measured
      Trainable parameters over training target values, above 10 (the same
      line as D116: networks with as many parameters as samples already
      memorize random labels, Zhang et al. 2017); no regularization in the
      setup (dropout 0, weight decay 0, no early stopping); and the run at
      your settings overfits: the validation loss ends 20% or more above its
      lowest level (rolling median) while the training loss kept falling.
      Without that run the rule stays silent: size alone proves no harm.

    Example
      ItalyPowerDemand (67 training days) with a 2-layer LSTM(128): 199,297
      parameters, 2,975 per day, no regularization. Fires once the run shows
      the validation loss climbing over the last fifth of the run; a single
      late rise (our 100-epoch run at lr 3e-3 ended 48% above its best at the
      last evaluation only) is not enough.

    Fix
      Setup file:  model.dropout: 0.2; training.weight_decay: 1e-4;
                   training.early_stopping: 5; or model.hidden: 16
      PyTorch:     nn.LSTM(..., dropout=0.2) between layers, nn.Dropout before
                   the head; torch.optim.AdamW(params, weight_decay=1e-4);
                   keep the weights of the best validation epoch
      Keras:       LSTM(32, dropout=0.2); kernel_regularizer=keras.regularizers.l2(1e-4);
                   keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True)

    Related: D116 too-few-samples, T308 overfitting, M213 excessive-dropout
    """
    params, values = ev.get("parameters"), ev.get("train_target_values")
    if not params or not values or params / values <= PARAMS_PER_VALUE:
        return None
    regularized = {"dropout": ev.get("dropout_max") or 0.0, "weight_decay": ev.get("weight_decay") or 0.0,
                   "early_stopping": ev.get("early_stopping")}
    if regularized["dropout"] > 0 or regularized["weight_decay"] > 0 or regularized["early_stopping"]:
        return None
    history = [h for h in ev.get("val_history") or [] if finite([h.get("loss")])]
    measured = overfit_rise([h["loss"] for h in history], [h.get("step", 0) for h in history], finite(ev.get("train_loss_steps") or []))
    if measured is None or measured[0] < VAL_RISE or not measured[2]:
        return None
    ratio = params / values
    return Finding.of(
        "M204",
        f"The {model_name(ev)} has {params:,} parameters for {values:,} training targets ({ratio:,.0f} each) and no "
        f"dropout, weight decay or early stopping; validation loss ended {measured[0] - 1:.0%} above its best as it memorized.",
        {"parameters": params, "train_target_values": values, "ratio": ratio, "regularization": regularized,
         "val_loss_rise": measured[0] - 1, "threshold": PARAMS_PER_VALUE},
        fix="model.dropout: 0.2 and training.early_stopping: 5 (or a smaller model.hidden)",
        confidence=0.75,
    )


@rule("M205")
def deep_stack(ev: Evidence) -> Finding | None:
    """What it means
      Many recurrent layers are stacked with nothing to carry the signal and
      the gradient past them: no layer normalization, no residual (skip)
      connections. Each layer's gradient is a product through the layers
      above it and through time, so the bottom layers barely train and the
      stack learns less than a shallower one.

    How it is measured
      Stacked recurrent layers counted over the model (num_layers of each
      recurrent module). Fires above 4 without a normalization layer or
      residual paths; critical from 8. Google's NMT (Wu et al. 2016) found
      plain stacked LSTMs "work well up to 4 layers, barely with 6 layers, and
      very poorly beyond 8", and added residual connections to go deeper.
      The run at your settings decides how sure: a first recurrent layer
      getting under a tenth of the last layer's RMS gradient (one order of
      magnitude) shows the depth biting; a model that reaches 80% or more of
      a linear model's gain over the input-free baseline trains despite it,
      and the finding drops to info. Residual paths cannot be seen in a
      user's forward(); there the rule judges on normalization layers alone
      and says so.

    Example
      ItalyPowerDemand with a 6-layer LSTM(32), 60 epochs: 0.962 validation
      accuracy against 0.960 for 2 layers, so only info here; its training
      shows one gradient spike of 60x the running median (T304) that the
      2-layer model does not.

    Fix
      Setup file:  model.layers: 2
      PyTorch:     out = out + layer(out)[0]   (residual), nn.LayerNorm(hidden)
                   between layers; or fewer layers, more units
      Keras:       x = keras.layers.Add()([x, keras.layers.LSTM(64, return_sequences=True)(x)]);
                   keras.layers.LayerNormalization()

    Related: T303 vanishing-gradients, M206 poor-initialization, M203 too-little-capacity
    """
    depth = ev.get("recurrent_layers")
    if not depth or depth <= DEEP or ev.get("normalization_layers") or ev.get("residual_paths"):
        return None
    evidence: dict[str, Any] = {"recurrent_layers": depth, "normalization_layers": [], "residual_paths": ev.get("residual_paths"),
                                "threshold": DEEP}
    ratio = ev.get("grad_layer_ratio")  # first recurrent layer's RMS gradient over the last one's
    share = linear_share(ev)
    evidence.update(grad_layer_ratio=ratio, share_of_linear_gain=share)
    unknown = " (residual paths cannot be seen in your forward())" if ev.get("residual_paths") is None else ""
    head = f"{depth} stacked recurrent layers without normalization or residual connections{unknown}"
    severity, confidence = ("critical" if depth >= DEEP_CRITICAL else "warning"), 0.6
    if ratio is not None and 0 < ratio < LAYER_FADE:
        summary = f"{head}: the first layer gets {1 / ratio:,.0f}x less gradient than the last, so the lower layers barely train."
        confidence = 0.8
    elif share is not None and share >= LINEAR_GAIN:
        summary = f"{head}: it trains here, but each added layer is one more product for the gradient to cross."
        severity, confidence = "info", 0.5
    else:
        summary = f"{head}: gradients must cross every layer, so the lower layers train slowly or not at all."
    return Finding.of("M205", summary, evidence, fix="model.layers: 2 (or add residual connections and LayerNorm between the layers)",
                      severity=severity, confidence=confidence if ev.get("residual_paths") is False else confidence - 0.1)


@rule("M206")
def poor_initialization(ev: Evidence) -> Finding | None:
    """What it means
      The recurrent weights start at a scale that kills signals or blows them
      up. All-zero weights give every unit the same gradient, so the units
      never become different (the symmetry is never broken). Weights far
      smaller than the default make every step forget what came before;
      weights far larger saturate the gates and make the recurrence explode:
      the state is multiplied by the recurrent matrix at every step, so its
      largest eigenvalue (spectral radius) decides whether it grows or dies.

    How it is measured
      On a fresh copy of the model, per layer and direction:
      - all input and recurrent weights zero: critical;
      - the std of the input or the recurrent weights more than 10x above or
        below PyTorch's default, U(-1/sqrt(H), 1/sqrt(H)) (std 1/sqrt(3H)).
        Every standard scheme sits within 3x of it (Glorot/Xavier on a gate
        block, orthogonal), so 10x is outside all of them;
      - the spectral radius of a gate's recurrent block above 2. Radius 1 is
        the edge between dying and exploding dynamics (orthogonal and identity
        inits sit on it: Saxe et al. 2014, Le et al. 2015); a tanh recurrence
        above it turns chaotic (Sompolinsky et al. 1988). Gates tolerate
        somewhat more, so the line is at twice the edge.

    Example
      An LSTM(64) initialized with normal(0, 1): weights 14x the default std
      and a recurrent spectral radius of about 8 per gate (sqrt(64), as the
      circular law predicts), against 0.58 at the default init; the recurrent
      term then dominates every gate's input and pins it at 0 or 1 (T305).
      xavier, orthogonal and normal(0, 0.1) stay within the lines.

    Fix
      Setup file:  model.init: default   (or orthogonal)
      PyTorch:     leave nn.LSTM's own init, or per gate block
                   nn.init.orthogonal_(w_hh[i*H:(i+1)*H]); nn.init.xavier_uniform_(w_ih[i*H:(i+1)*H])
      Keras:       the defaults: kernel_initializer="glorot_uniform",
                   recurrent_initializer="orthogonal"

    Related: T303 vanishing-gradients, T304 exploding-gradients, T305 saturated-gates, T306 dead-units
    """
    stds, defaults, radius = ev.get("weight_std") or {}, ev.get("weight_std_default") or {}, ev.get("recurrent_radius") or {}
    zero = ev.get("weights_all_zero") or []
    off = {}
    for layer, s in stds.items():
        d = defaults.get(layer)
        if not d:
            continue
        for part, v in s.items():
            ratio = v / d
            if ratio > STD_FACTOR or ratio < 1 / STD_FACTOR:
                off[f"{layer}.{part}"] = ratio
    wild = {layer: max(r.values()) for layer, r in radius.items() if r and max(r.values()) > RADIUS}
    if zero:
        summary = (f"The recurrent weights of {', '.join(zero)} are all zero: every unit gets the same gradient, "
                   "so the units never become different and the layer acts like a single unit.")
    elif off or wild:
        parts = []
        if off:
            layer, ratio = max(off.items(), key=lambda kv: abs(math.log(kv[1])))
            parts.append(f"{layer} weights have {ratio:.2g}x the default std")
        if wild:
            layer, r = max(wild.items(), key=lambda kv: kv[1])
            parts.append(f"the recurrent spectral radius of {layer} is {r:.2g} (above {RADIUS:g})")
        grow = any(r > 1 for r in off.values()) or bool(wild)
        effect = "the state explodes and the gates saturate" if grow else "each step forgets what came before"
        summary = f"At initialization {' and '.join(parts)}: {effect}."
    else:
        return None
    return Finding.of(
        "M206", summary,
        {"weights_all_zero": zero, "std_over_default": off, "spectral_radius_above": wild,
         "thresholds": {"std_factor": STD_FACTOR, "radius": RADIUS}},
        fix="model.init: default (or orthogonal)",
        severity="critical" if zero else "warning",
        confidence=0.9 if zero else 0.75,
    )


@rule("M207")
def forget_bias(ev: Evidence) -> Finding | None:
    """What it means
      The LSTM's forget gate starts half closed: with the bias at PyTorch's
      default (about 0), sigmoid(0) = 0.5, so the cell keeps half of its state
      per step and after 10 steps a thousandth. Long dependencies are gone
      before the gradient can teach the gate to keep them. A bias of 1 (the
      Keras default, unit_forget_bias=True; Gers et al. 2000, Jozefowicz et
      al. 2015) keeps 73% per step.

    How it is measured
      The forget-gate slice of bias_ih + bias_hh of each LSTM layer, averaged
      over units. It only matters when the data needs a longer memory than the
      model has, so:
      - warning when the bias is at most 0.5 and the data's dominant period
        (a dependency inside the window) is longer than the memory length
        measured on the trained model (the farthest step whose input gradient
        is still 1% of the last step's), unless the model already gets 80%
        or more of what a linear model over the whole window gains over the
        input-free baseline (then its memory is enough for this target), or
        under 10% of it (then it has hardly trained, and its memory is an
        untrained model's: other findings say why it does not learn);
      - info when the bias is -1 or lower (the gate starts mostly closed)
        without that evidence;
      - silent otherwise: a default bias on data with short dependencies is fine.

    Example
      Yearly sunspots (period 11) in 24-year windows into an LSTM at the
      default bias: if the trained model's input gradient fades under 1%
      within 4 steps and the model gets less than 80% of ridge regression's
      gain on the window, the rule warns: the cycle is longer than the model
      remembers. Weekly CO2 (period 52) in 60-week windows: memory 16 steps,
      but one-step forecasts need little of the season and the model gets
      nearly all of ridge's gain, so it stays silent.
      With forget_bias -3 the gate keeps 5% of the state per step (info).

    Fix
      Setup file:  model.forget_bias: 1.0
      PyTorch:     for name, b in lstm.named_parameters():
                       if name.startswith("bias_ih"): b.data[H:2*H] = 1.0
                       elif name.startswith("bias_hh"): b.data[H:2*H] = 0.0
      Keras:       keras.layers.LSTM(units, unit_forget_bias=True)   (the default)

    Related: T303 vanishing-gradients, D108 window-too-short, M206 poor-initialization
    """
    biases = ev.get("forget_bias") or {}
    if not biases:
        return None
    bias = max(biases.values())
    if bias > FORGET_LOW:
        return None
    memory, period, steps = ev.get("memory_length"), ev.get("dominant_period"), ev.get("steps")
    evidence: dict[str, Any] = {"forget_bias": biases, "memory_length": memory, "dominant_period": period, "steps": steps}
    short = memory is not None and period is not None and steps is not None and memory < period < steps
    share = linear_share(ev)
    # A model that learns what a linear model over the whole window does remembers enough; one that learned
    # next to nothing has the memory of an untrained model, which says nothing about its forget gate.
    if share is not None and (share >= LINEAR_GAIN or share < LEARNED_SHARE):
        short = False
        evidence["share_of_linear_gain"] = share
    if short:
        summary = (f"The forget-gate bias is {bias:.2g}, so the LSTM keeps about {1 / (1 + math.exp(-bias)):.0%} of its "
                   f"state per step: it remembers {memory} steps while the data repeats every {period}.")
        severity, confidence = "warning", 0.7
    elif bias <= FORGET_NEGATIVE:
        summary = (f"The forget-gate bias is {bias:.2g}: the gate starts mostly closed and the LSTM keeps only "
                   f"{1 / (1 + math.exp(-bias)):.0%} of its state per step.")
        severity, confidence = "info", 0.5
    else:
        return None
    return Finding.of("M207", summary, evidence, fix="model.forget_bias: 1.0", severity=severity, confidence=confidence)


@rule("M209")
def readout_misplaced(ev: Evidence) -> Finding | None:
    """What it means
      The model predicts from the wrong step. Sequences padded at the end
      (post-padding, as pad_sequence and zero-filled arrays do) and read at
      the last step hand the head a state that has run through padding, not
      the last real input. A bidirectional layer read at out[:, -1] gives a
      backward direction that has seen one step only.

    How it is measured
      The readout (last | mean | true-end; true-end needs sequence lengths)
      against the data inspection's padding: fires when the last step is read
      and 10% or more of the training sequences end in padding; critical from
      50%, where most predictions come from padding. Pre-padding (Keras'
      default) with a last-step readout is fine and not flagged. The
      directions read from a bidirectional layer are checked where the model
      says (the built-in model reads both correctly).
      Your own model's readout is measured instead of read: a few padded
      sequences are predicted as they are and with every padded step changed;
      fires when an output moves by more than 1e-3 of the outputs' spread
      (a model that stops at each sequence's length gives exactly the same
      outputs), with the same 10% / 50% shares of padded sequences.

    Example
      JapaneseVowels (7-26 steps per training utterance) zero-padded at the
      end to 29 steps and read at the last step: every sequence ends in
      padding and an LSTM(32) reaches 0.42 validation accuracy in 20 epochs;
      with readout: true-end and the lengths, 0.81.

    Fix
      Setup file:  model.readout: true-end with data lengths (.npz key lengths)
      PyTorch:     packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True,
                   enforce_sorted=False); _, (h, _) = lstm(packed); use h[-1];
                   or out[torch.arange(B), lengths - 1]
      Keras:       keras.layers.Masking(mask_value=0.0) before the LSTM, or pad with
                   padding="pre"

    Related: D112 padding-problems, T307 prediction-collapse
    """
    readout, pad = ev.get("readout"), ev.get("padding") or {}
    if ev.get("readout_directions") == "forward-only":
        return Finding.of(
            "M209", "Only one direction of the bidirectional layer reaches the head: the backward direction is read "
            "where it has seen a single step.", {"readout_directions": "forward-only"},
            fix="Read the forward direction at the last step and the backward direction at step 0 (or h_n of both).",
            confidence=0.8)
    influence = ev.get("padding_influence")
    if readout is None and influence is not None:  # the user's own model: measured, not declared
        return _reads_padding(ev, influence)
    if readout is None or pad.get("side") != "post":
        return None
    reads_last = readout == "last" or (readout == "true-end" and not pad.get("lengths_given"))
    share = pad.get("padded_sequences") or 0.0
    if not reads_last or share < PAD_WARNING:
        return None
    why = " (true-end needs the sequence lengths, which were not given)" if readout == "true-end" else ""
    return Finding.of(
        "M209",
        f"{share:.0%} of the sequences end in padding and the model reads the last step{why}: "
        "those predictions come from a state that has run through padding, not from the last real input.",
        {"readout": readout, "padded_sequences": share, "lengths_given": pad.get("lengths_given"),
         "pad_value": pad.get("value"), "thresholds": {"warning": PAD_WARNING, "critical": PAD_CRITICAL}},
        fix="model.readout: true-end with the sequence lengths (or pad at the start)",
        severity="critical" if share >= PAD_CRITICAL else "warning",
        confidence=0.85,
    )


def _reads_padding(ev: Evidence, influence: float) -> Finding | None:
    """M209 for a model whose readout is unknown: its outputs move with the content of the padding."""
    share = (ev.get("padding") or {}).get("padded_sequences") or ev.get("padded_end_share") or 0.0
    if influence <= PADDING_INFLUENCE or share < PAD_WARNING:
        return None
    return Finding.of(
        "M209",
        f"The model's outputs change by {influence:.2g}x their spread when only the padding after each sequence's "
        f"length changes, and {share:.0%} of the sequences are padded: those predictions read the padding.",
        {"padding_influence": influence, "threshold": PADDING_INFLUENCE, "padded_sequences": share,
         "thresholds": {"warning": PAD_WARNING, "critical": PAD_CRITICAL}},
        fix="Pack the batch (nn.utils.rnn.pack_padded_sequence with the lengths) or read out[torch.arange(B), lengths - 1].",
        severity="critical" if share >= PAD_CRITICAL else "warning",
        confidence=0.9,
    )


@rule("M210")
def sequence_shape_mismatch(ev: Evidence) -> Finding | None:
    """What it means
      The targets have one value per step but the model gives one per
      sequence, or the reverse. PyTorch's losses broadcast the shapes without
      an error (with at most a warning), so the model learns the average over
      steps, or every step is scored against one target.

    How it is measured
      One forward pass of a fresh model on a few training windows: the output
      has a time axis when its second axis has the window's length. Fires
      when that differs from the targets (per-step when they have a value per
      input step). It also fires when per-step targets hold one value over
      every step of 95% or more of the sequences: a sequence's label copied
      to each step, so a step-by-step model is scored at step 1 on a label it
      can only know at the end (label-constant segments of a real per-step
      task are rarely that uniform over whole windows).

    Example
      Per-step labels (samples, 24) with a model that returns
      head(out[:, -1]) of shape (samples, 1): MSE broadcasts to (samples, 24)
      and the model predicts each sequence's mean label. Or ItalyPowerDemand's
      day labels copied to all 24 hours: the first hours are scored on a
      label no model can know from them.

    Fix
      Setup file:  none: the built-in model follows the targets' shape
      PyTorch:     per-step targets: return self.head(out) (batch, steps, outputs);
                   one target per sequence: self.head(out[:, -1])
      Keras:       LSTM(..., return_sequences=True) followed by Dense for per-step
                   targets; return_sequences=False for one target per sequence

    Related: M209 readout-misplaced, T309 cannot-fit-small-batch
    """
    out_steps, target_steps = ev.get("output_per_step"), ev.get("target_per_step")
    constant = ev.get("per_step_target_constant_share")
    if target_steps and constant is not None and constant >= REPEATED_LABELS:
        return Finding.of(
            "M210",
            f"The per-step targets repeat one value over every step of {constant:.0%} of the sequences: a label of the "
            "whole sequence trained at each step, so the early steps must guess it from the first few inputs.",
            {"per_step_target_constant_share": constant, "threshold": REPEATED_LABELS},
            fix="Give one target per sequence (y of shape (samples,)) and read out the last step.",
            confidence=0.7)
    if out_steps is None or target_steps is None or out_steps == target_steps:
        return None
    summary = ("The targets have a value per step but the model outputs one per sequence: the loss broadcasts them, "
               "so the model learns each sequence's average" if target_steps else
               "The model outputs a value per step but the targets have one per sequence: every step is scored "
               "against the same target")
    return Finding.of("M210", summary + ".", {"output_per_step": out_steps, "target_per_step": target_steps},
                      fix="Return head(out) for per-step targets, head(out[:, -1]) for one target per sequence.",
                      confidence=0.9)


@rule("M211")
def unbounded_recurrent_activation(ev: Evidence) -> Finding | None:
    """What it means
      The recurrence uses ReLU instead of tanh. Nothing bounds the hidden
      state: with recurrent weights whose spectral radius is above 1 it grows
      geometrically over the steps, and the gradient with it, until the loss
      turns NaN. Below 1 units die at 0 and stay dead. It can work (IRNN, Le
      et al. 2015: identity init, small learning rate, clipping) but is
      fragile; LSTM and GRU exist to avoid it.

    How it is measured
      The nonlinearity of every plain RNN layer (nn.RNN(nonlinearity="relu"),
      model.nonlinearity: relu). The recurrent spectral radius is reported
      with it.

    Example
      GunPoint (150 steps) into an RNN(32) with ReLU at the default init
      (recurrent spectral radius 0.62): the validation loss stays at the
      constant's (0.693) and the trained model's gradient reaches back only
      the last 6 steps. Above radius 1 the same layer explodes instead.

    Fix
      Setup file:  model.cell: lstm   (or model.nonlinearity: tanh)
      PyTorch:     nn.LSTM(...) or nn.RNN(..., nonlinearity="tanh");
                   for IRNN: nn.init.eye_(rnn.weight_hh_l0) and clip gradients
      Keras:       keras.layers.SimpleRNN(units, activation="tanh") (the default) or LSTM

    Related: T304 exploding-gradients, T306 dead-units, M206 poor-initialization
    """
    relu = [name for name, how in (ev.get("recurrent_nonlinearity") or {}).items() if how == "relu"]
    if not relu:
        return None
    radius = {layer: r for layer, r in (ev.get("recurrent_radius") or {}).items() if any(layer.startswith(n + ".") for n in relu)}
    top = max((max(r.values()) for r in radius.values() if r), default=None)
    if top is None:
        fate = "so it grows step by step until the gradients explode, or its units die at 0"
    elif top > 1:
        fate = f"and with a recurrent spectral radius of {top:.2g} it grows step by step until the gradients explode"
    else:
        fate = (f"and with a recurrent spectral radius of {top:.2g} the signal decays step by step and units "
                "that fall to 0 stop passing gradient")
    return Finding.of(
        "M211",
        f"The recurrence of {', '.join(relu)} uses ReLU: nothing bounds its state, {fate}.",
        {"relu_layers": relu, "recurrent_radius": radius},
        fix="model.cell: lstm (or model.nonlinearity: tanh)",
        confidence=0.8,
    )


@rule("M213")
def excessive_dropout(ev: Evidence) -> Finding | None:
    """What it means
      Dropout is so strong that too little of the signal reaches the next
      layer during training: each step the head sees a different random half
      (or less) of an already narrow state, the training loss stays high and
      noisy, and the model learns slowly or not at all.

    How it is measured
      The strongest dropout in the model (between recurrent layers, or before
      the head). Fires at 0.5 or more on layers under 256 units, and at 0.7 or
      more at any width. Srivastava et al. (2014) used 0.5 on feed-forward
      layers of 1,024-8,192 units; Zaremba et al. (2014) used 0.5 only on
      their 1,500-unit LSTM and no dropout on the 200-unit one; Gal &
      Ghahramani (2016) 0.2-0.5. When the run at your settings ends with a
      training loss (dropout on) above the validation loss (dropout off), that
      is shown as the cost.

    Example
      ItalyPowerDemand with an LSTM(16) and dropout 0.8 before the head: 80%
      of a 16-unit state is zeroed at every step; after 20 epochs the
      training loss (dropout on) is 0.70, above the validation loss of the
      same weights without dropout (0.69), and the model predicts a constant.

    Fix
      Setup file:  model.dropout: 0.2
      PyTorch:     nn.LSTM(..., dropout=0.2); nn.Dropout(0.2)
      Keras:       keras.layers.LSTM(units, dropout=0.2, recurrent_dropout=0.0)

    Related: M204 too-much-capacity, M203 too-little-capacity, T302 learning-rate-too-low
    """
    p, sizes = ev.get("dropout_max"), ev.get("hidden_sizes") or []
    if p is None or p < DROPOUT:
        return None
    width = max(sizes) if sizes else None
    if p < DROPOUT_ANY and width is not None and width >= WIDE:
        return None
    evidence: dict[str, Any] = {"dropout_between_layers": ev.get("dropout_between_layers"),
                                "dropout_before_head": ev.get("dropout_before_head"), "hidden_sizes": sizes,
                                "thresholds": {"narrow": DROPOUT, "any": DROPOUT_ANY, "wide": WIDE}}
    cost = ""
    train, best = finite(ev.get("train_loss_steps") or []), _best_val(ev)
    if len(train) >= 3 and best:
        end = tail_level(train)
        evidence.update(train_loss_end=end, best_val_loss=best)
        if end > best:
            cost = f"; training loss (dropout on) ends at {end:.3g}, above the validation loss without it ({best:.3g})"
    drops = f"{p:.0%} of the units" + (f" of a {width}-unit layer" if width else "")
    return Finding.of(
        "M213",
        f"Dropout removes {drops} at every training step, so little of the signal gets through{cost}.",
        evidence,
        fix="model.dropout: 0.2",
        confidence=0.75 if cost else 0.6,
    )
