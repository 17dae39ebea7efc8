"""D1xx rules: the data and its preprocessing, judged as the model is fed it.

Every rule reads facts written by ``lstm_doctor.inspect.data_facts`` (and a few
model and probe facts when present) and stays silent when what it needs was not
measured. D110 (no learnable signal) lives with the baselines.
"""

from __future__ import annotations

import math
from typing import Any

from lstm_doctor.evidence import Evidence
from lstm_doctor.findings import Finding
from lstm_doctor.inspect.value_stats import UNIT_SCALE_LIMIT
from lstm_doctor.rules.names import cell_name, first_cell
from lstm_doctor.rules.registry import rule

# D102 / D104: a value's scale (max of |median| and std) above these is unscaled.
SCALE_WARNING = UNIT_SCALE_LIMIT
SCALE_CRITICAL = 100.0
# D102: outputs varying less than this share of the targets' spread have collapsed.
COLLAPSED_SPREAD = 0.1
# D103: largest over smallest feature scale.
DISPARITY = 10.0
# D106: share of the squared deviations carried by the most extreme 1% of values.
TAIL_SHARE = 0.5
# D107: share of validation values outside the training range.
OUTSIDE_SHARE = 0.2
STATIONARITY_ALPHA = 0.05
# D109: longest sequence each cell carries through backpropagation in practice.
BPTT_LIMIT = {"lstm": 300, "gru": 300, "rnn": 50}
# D111: majority share rescaled so that 0 is balanced and 1 is a single class.
DOMINANCE = 0.6
# D112: padding share of all steps; share of real steps that equal the pad row.
PADDED_SHARE = 0.5
PAD_IN_DATA = 0.01
# D113: an integer feature this narrow (max - min) looks like truncated reals.
TRUNCATED_RANGE = 20
# D114: share of validation windows that share steps with a training window.
OVERLAP = 0.1
# D115: the samples are sliding windows of one series when this share of neighbours are shifted copies.
SLIDING = 0.5
# D116: trainable parameters per training target value.
PARAMS_PER_SAMPLE = 10.0
# ...and a warning when the validation loss ends this far above its best.
VAL_RISE = 0.2


def _num(x: float) -> str:
    """A number as a person reads it: 5,120 / 338 / 3.3 / 0.042."""
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 10:
        return f"{x:.0f}"
    if a >= 1:
        return f"{x:.1f}"
    return f"{x:.2g}"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _pct(share: float) -> str:
    return f"{100 * share:.0f}%" if share >= 0.01 or share == 0 else f"{100 * share:.1g}%"


def _embeds(ev: Evidence) -> bool:
    """Integer token ids feeding an embedding are not judged as numeric inputs."""
    return ev.get("model_embeds_inputs") is True


@rule("D101")
def non_finite_values(ev: Evidence) -> Finding | None:
    """What it means
      Some inputs or targets the model is fed are NaN or infinite. One NaN in a
      batch makes the loss NaN; its gradient turns every weight NaN at the next
      update, and from then on the model outputs NaN whatever it is fed.

    How it is measured
      Every input step the training and validation windows feed (padding left
      out when lengths say where it is) and every target, counted per column.
      Fires on any non-finite value: there is no safe amount.

    Example
      The weekly Mauna Loa CO2 series as statsmodels ships it has 59 missing
      weeks. In windows of 52 weeks, 26% of the training windows hold a NaN;
      an LSTM(32) trained on them stops at step 0 with a NaN loss.

    Fix
      Setup file:  none; repair the file: fill or drop the gaps before windowing
      PyTorch:     x = torch.nan_to_num(x)  # only if a filled value means something
                   better: frame = frame.interpolate(limit_direction="both")
      Keras:       the same repair before building the dataset; a
                   keras.layers.Masking layer does not mask NaN
      Where gaps carry meaning, fill them and add a 0/1 "was missing" feature.

    Related: D106 outliers, T304 exploding-gradients, T301 learning-rate-too-high
    """
    counts = ev.get("nonfinite")
    if not counts:
        return None
    bad = {part: {n: c for n, c in cols.items() if c} for part, cols in counts.items() if part != "values"}
    bad = {part: cols for part, cols in bad.items() if cols}
    if not bad:
        return None
    sizes = counts.get("values", {})
    part, cols = max(bad.items(), key=lambda kv: max(kv[1].values()))
    name, n = max(cols.items(), key=lambda kv: kv[1])
    where = {"train_inputs": "training input values", "val_inputs": "validation input values",
             "train_targets": "training targets", "val_targets": "validation targets"}.get(part, part)
    total = sizes.get(part)
    of = f" of {total:,}" if total else ""
    return Finding.of(
        "D101",
        f"{n:,}{of} {where} of '{name}' are NaN or Inf; the first batch that holds one makes the loss and then every weight NaN.",
        {"nonfinite": bad, "values": sizes},
        fix="Fill or drop the gaps before windowing (e.g. frame.interpolate(limit_direction='both')), adding a was-missing flag where gaps mean something.",
        confidence=0.95,
    )


def _typical_scale(stats: dict[str, Any]) -> float:
    """A feature's scale for comparing features: a 0/1 flag's is its value, not its (small) std."""
    if stats["distinct"] <= 2:
        return max(abs(stats["min"]), abs(stats["max"]))
    return stats["magnitude"]


@rule("D102")
def unscaled_inputs(ev: Evidence) -> Finding | None:
    """What it means
      The inputs reach the recurrent layer far from unit scale. Its gates squash
      their inputs with sigmoid and tanh; a feature in the hundreds pins every
      gate at 0 or 1, the gradients through them vanish, and the model settles
      on a constant prediction.

    How it is measured
      For each feature, as fed to the model (after the setup's own scaling, if
      any): median and standard deviation over the training windows' steps.
      Fires when a feature's scale, max(|median|, std), exceeds 10; critical
      above 100, or when the trained model's outputs vary by under a tenth of
      the targets' spread (its predictions have collapsed, T307).
      Why 10 and 100: PyTorch draws input weights from U(-1/sqrt(H), 1/sqrt(H)),
      so with 64 units a feature of scale s adds about s * 0.07 to each gate's
      pre-activation. At s = 10 that is 0.7 (the sigmoid's slope already down
      by a tenth); at s = 100 it is 7, where sigmoid'(7) = 0.001: saturated.
      LeCun et al., "Efficient BackProp" (1998), recommend zero mean and unit
      variance for every input for this reason.
      Integer token ids that feed an embedding are not judged.

    Example
      Weekly CO2 in ppm (median 332) fed raw, as input and target, to an
      LSTM(32) with 52-week windows: after 560 Adam steps every prediction is the
      same (output spread 0.000 of the targets') and the validation RMSE is
      357 ppm, against 31.6 for predicting the training mean. Standardized with
      training statistics, the same model reaches 2.25 ppm.

    Fix
      Setup file:  data.scale: standard
      PyTorch:     fit mean/std on the training part only, apply to both parts
                   x = (x - mean_train) / std_train
      Keras:       layer = keras.layers.Normalization(axis=-1)
                   layer.adapt(x_train)   # training data only
      Fitting the scaler on all data leaks the validation period (see D114).

    Related: D103 feature-scale-disparity, D104 unscaled-target,
             T305 saturated-gates
    """
    scales = ev.get("feature_scale")
    if not scales or _embeds(ev):
        return None
    big = {n: s for n, s in scales.items() if s > SCALE_WARNING}
    if not big:
        return None
    name, worst = max(big.items(), key=lambda kv: kv[1])
    stats = (ev.get("feature_stats") or {}).get(name, {})
    spread = ev.get("prediction_spread")
    collapsed = spread is not None and spread < COLLAPSED_SPREAD
    critical = worst > SCALE_CRITICAL or collapsed
    detail = f" (median {_num(stats['median'])}, std {_num(stats['std'])})" if stats else ""
    others = f"; {len(big) - 1} more feature(s) above {SCALE_WARNING:g}" if len(big) > 1 else ""
    effect = ("its gates saturate and the trained model's outputs barely vary (a constant prediction)" if collapsed
              else "enough to pin the sigmoid and tanh gates, so gradients through them vanish")
    evidence: dict[str, Any] = {"feature_scale": big, "threshold": SCALE_WARNING, "critical_above": SCALE_CRITICAL}
    if spread is not None:
        evidence["prediction_spread"] = spread
    return Finding.of(
        "D102",
        f"'{name}' reaches the {first_cell(ev)} at ~{_num(worst)}x unit scale{detail}{others}: {effect}.",
        evidence,
        fix="data.scale: standard (mean and std from the training part only)",
        severity="critical" if critical else "warning",
        confidence=0.9 if critical else 0.7,
    )


@rule("D103")
def feature_scale_disparity(ev: Evidence) -> Finding | None:
    """What it means
      The input features sit on very different scales. The first layer sums
      them with weights of one common initial size, so the large features
      dominate every gate, and a learning rate that suits their weights is far
      too small for the others: the small features are learned late or never.

    How it is measured
      Each non-constant feature's scale, max(|median|, std), over the training
      windows as fed (a 0/1 flag's scale is its value, not its small std). Fires
      when the largest is over 10 times the smallest. Following LeCun et al.,
      "Efficient BackProp" (1998), inputs should have similar variances: the
      loss surface's curvature along a weight grows with its input's variance,
      so a 10x scale ratio is a 100x curvature ratio that one learning rate
      cannot serve.

    Example
      US macro data (statsmodels macrodata) fed raw with real GDP, inflation and
      unemployment as inputs: real GDP's scale over the training quarters is
      ~5,800, inflation's ~3.5, a ratio of ~1,700 (and D102 fires too).

    Fix
      Setup file:  data.scale: standard
      PyTorch:     standardize each feature with its own training mean and std
      Keras:       keras.layers.Normalization(axis=-1).adapt(x_train)  # per feature
      Scale per feature, not with one global mean and std.

    Related: D102 unscaled-inputs, D106 outliers
    """
    stats = ev.get("feature_stats")
    if not stats or _embeds(ev):
        return None
    scales = {n: _typical_scale(s) for n, s in stats.items() if s["std"] > 0}
    scales = {n: v for n, v in scales.items() if v > 0}
    if len(scales) < 2:
        return None
    big = max(scales, key=scales.get)
    small = min(scales, key=scales.get)
    ratio = scales[big] / scales[small]
    if ratio <= DISPARITY:
        return None
    return Finding.of(
        "D103",
        f"'{big}' (scale ~{_num(scales[big])}) is ~{_num(ratio)}x the scale of '{small}' (~{_num(scales[small])}): "
        f"the large features dominate the gates and one learning rate cannot suit both.",
        {"feature_scale": {big: scales[big], small: scales[small]}, "ratio": ratio, "threshold": DISPARITY},
        fix="data.scale: standard (each feature with its own training mean and std)",
        confidence=0.75,
    )


@rule("D104")
def unscaled_target(ev: Evidence) -> Finding | None:
    """What it means
      The regression target is far from unit scale. The model's output is a
      linear head on a hidden state bounded by tanh; with default weights it
      starts near 0, so it must grow its head weights to the target's size
      before it can fit anything but the mean. With MSE the first losses and
      gradients are the target's size squared and knock the recurrent weights
      about; with MAE or Huber each Adam step moves the output by about the
      learning rate, so reaching an offset of 300 takes ~300,000 steps at 1e-3.

    How it is measured
      The target's scale, max(|median|, std), over the training windows as fed
      (after the setup's target scaling, if any). Fires above 10; critical above
      100, the same bounds as D102: at 10 the MSE of the initial zero output is
      ~100 and the head's bias alone needs 10,000 steps of 1e-3 to reach the mean.

    Example
      Weekly CO2 in ppm (313-366) as the raw target of an LSTM(32) with MSE:
      the first training loss is 113,000; after 560 steps the model still
      outputs one value far below the data (validation RMSE 357 ppm, the
      training mean scores 31.6). Scaled, the first loss is 1.0.

    Fix
      Setup file:  data.scale: standard    (the target is scaled with the inputs;
                   data.scale_target sets it apart)
      PyTorch:     y = (y - y_train.mean()) / y_train.std(); invert for reporting:
                   pred = out * y_train.std() + y_train.mean()
      Keras:       scale y the same way before fit(); invert model.predict() output
      Metrics in the target's own units come from the inverted predictions.

    Related: D102 unscaled-inputs, M201 output-loss-mismatch,
             T304 exploding-gradients
    """
    if ev.get("task") != "regression":
        return None
    scales = ev.get("target_scale")
    if not scales:
        return None
    name, worst = max(scales.items(), key=lambda kv: kv[1])
    if worst <= SCALE_WARNING:
        return None
    stats = (ev.get("target_stats") or {}).get(name, {})
    loss = ev.get("loss") or "mse"
    evidence: dict[str, Any] = {"target_scale": {name: worst}, "loss": loss, "threshold": SCALE_WARNING, "critical_above": SCALE_CRITICAL}
    centre = stats.get("mean", 0.0)
    if loss == "mse" and stats:
        initial = stats["std"] ** 2 + centre ** 2  # MSE of an output of 0
        evidence["initial_mse"] = initial
        effect = f"with MSE the first losses are ~{_num(initial)} and the head must grow its weights ~{_num(worst)}x before fitting more than the mean"
    else:
        lr = ev.get("user_lr")
        steps = f" ~{_num(abs(centre) / lr)} Adam steps at lr {lr:g} just to reach the mean {_num(centre)}" if lr and stats else " many steps just to reach the mean"
        effect = f"with {loss.upper()} the output moves about one learning rate per step:{steps}"
    detail = f" (mean {_num(centre)}, std {_num(stats['std'])})" if stats else ""
    return Finding.of(
        "D104",
        f"The target '{name}' is fed at ~{_num(worst)}x unit scale{detail}; {effect}.",
        evidence,
        fix="data.scale: standard (scales the target with the inputs; invert predictions for reporting)",
        severity="critical" if worst > SCALE_CRITICAL else "warning",
        confidence=0.85 if worst > SCALE_CRITICAL else 0.65,
    )


@rule("D105")
def constant_feature(ev: Evidence) -> Finding | None:
    """What it means
      A feature never changes over the training windows, so it cannot explain
      anything the target does; it only adds a fixed offset to the gates. When
      every feature is constant the model sees the same input for every window
      and can only learn the mean (or the majority class).

    How it is measured
      Standard deviation of each feature over every input step of the training
      windows, as fed. Fires for a standard deviation of exactly 0; a warning
      rather than info when every feature is constant. A feature constant in
      training but not in validation is also a D107 range problem.

    Example
      A "sensor_id" column in a single-sensor file, kept by the default
      "every numeric column is a feature": it adds the same number to every
      step and nothing else.

    Fix
      Setup file:  data.features: [the columns that vary]
      PyTorch:     x = x[..., varying]  # drop constant columns
      Keras:       drop the column before building the dataset
      A feature that is constant within each series but differs between series
      (a panel's static attribute) is fine; this one is constant everywhere.

    Related: D110 no-learnable-signal, D102 unscaled-inputs
    """
    stats = ev.get("feature_stats")
    if not stats:
        return None
    constant = {n: s["mean"] for n, s in stats.items() if s["std"] == 0}
    if not constant:
        return None
    everything = len(constant) == len(stats)
    names = ", ".join(f"'{n}' (always {_num(v)})" for n, v in list(constant.items())[:3])
    more = f" and {len(constant) - 3} more" if len(constant) > 3 else ""
    summary = (f"Every input feature is constant over the training windows ({names}{more}): the model can only learn the mean."
               if everything else f"{names}{more} never change(s) over the training windows and carry no information.")
    return Finding.of(
        "D105",
        summary,
        {"constant_features": constant, "features": len(stats)},
        fix="Leave constant columns out of data.features.",
        severity="warning" if everything else "info",
        confidence=0.95,
    )


@rule("D106")
def outliers(ev: Evidence) -> Finding | None:
    """What it means
      A few extreme values carry most of a column's variance. A standard scaler
      divides by a standard deviation they inflate, squeezing the bulk of the
      data into a sliver of the unit range; in the target, squared losses let
      those few windows dominate every gradient.

    How it is measured
      For each input feature (0/1 flags left out) and regression target, over
      the training windows: the share of the sum of squared deviations from
      the mean carried by the most extreme 1% of values. Fires above 0.5 (half
      the variance in one value of a hundred). For reference: normal data gives
      0.08, Laplace 0.16, Student-t with 3 degrees of freedom 0.33; a normal
      column with one value in a thousand replaced by +100 gives 0.9. The
      largest robust z-score (distance from the median in MAD-based standard
      deviations, Iglewicz & Hoaglin's modified z-score) is reported with it.
      Info by default; a warning for a regression target under MSE, which
      squares them.

    Example
      A standardized sensor where one reading in a thousand is a logger's
      error code of +100: the top 1% of values carry 92% of the variance, the
      standard deviation is 3.3 instead of 1.0, so a standard scaler squeezes
      every genuine reading into a third of its range.

    Fix
      Setup file:  training.loss: huber     (for target outliers)
      PyTorch:     lo, hi = torch.quantile(x_train, torch.tensor([0.001, 0.999]))
                   x = x.clamp(lo, hi)
                   or sklearn.preprocessing.RobustScaler fitted on training rows
      Keras:       clip before training; keras.losses.Huber() for the target
      First check whether the values are errors (drop or repair them) or real
      (keep them, with a robust scale or loss); log-transform skewed positive data.

    Related: D102 unscaled-inputs, D104 unscaled-target, T304 exploding-gradients
    """
    found: dict[str, dict[str, float]] = {}
    target_hit = False
    columns = [] if _embeds(ev) else list((ev.get("feature_stats") or {}).items())
    targets = list((ev.get("target_stats") or {}).items()) if ev.get("task") == "regression" else []
    for role, items in (("feature", columns), ("target", targets)):
        for name, s in items:
            if s["distinct"] > 2 and s["tail_share"] > TAIL_SHARE:
                found[name] = {"role": role, "tail_share": s["tail_share"], "robust_z_max": s["robust_z_max"],
                               "median": s["median"], "min": s["min"], "max": s["max"]}
                target_hit = target_hit or role == "target"
    if not found:
        return None
    name, s = max(found.items(), key=lambda kv: kv[1]["tail_share"])
    squared = ev.get("loss") in (None, "mse")
    effect = ("they set the scaler's standard deviation and most of the MSE" if s["role"] == "target" and squared
              else "they set the scaler's standard deviation and squeeze the rest of the data together")
    return Finding.of(
        "D106",
        f"1% of the values of {s['role']} '{name}' carry {_pct(s['tail_share'])} of its variance "
        f"(up to {_num(s['robust_z_max'])} robust SDs from the median {_num(s['median'])}): {effect}.",
        {"columns": found, "threshold": TAIL_SHARE},
        fix="Repair or drop erroneous extremes; otherwise clip at robust bounds, use a robust scaler, or training.loss: huber for the target.",
        severity="warning" if target_hit and squared else "info",
        confidence=0.7,
    )


@rule("D107")
def non_stationary(ev: Evidence) -> Finding | None:
    """What it means
      The series trends or shifts level, so validation asks for values the model
      never saw in training. A recurrent model's hidden state is bounded and its
      head is fitted to the training range: it does not extrapolate a trend, it
      flattens at the edge of what it knows, and validation loss stays high (or
      rises while training improves, like overfitting).

    How it is measured
      For the regression target and each feature as fed: the share of
      validation values outside the training [min, max], how far beyond (in
      training standard deviations) and how far the mean moved. Fires (warning)
      when 20% or more lie outside. For a stationary series the share of new
      values beyond the range of n earlier ones is about 2/(n + 1) (under 1% for
      a few hundred points, somewhat more with autocorrelation), so 20% is no
      accident. On the training target series, statsmodels' ADF test (null: unit
      root) and KPSS test (null: stationary) are run; when both point to
      non-stationarity (ADF p > 0.05, KPSS p < 0.05) but the ranges still
      overlap, the finding is info: the trend has not left the range yet.

    Example
      Weekly CO2 at Mauna Loa, split in time: 85% of the validation targets lie
      above the highest training value (ADF p = 0.92, KPSS p = 0.01 on the
      training part). A standardized LSTM(32) with 52-week windows reaches a
      validation RMSE of 2.25 ppm, four times worse than repeating the last
      week's value (0.51 ppm).

    Fix
      Setup file:  data.target_transform: difference  (predict the change)
      PyTorch:     y_diff = y[h:] - y[:-h]; forecast = last_value + model(x)
                   or remove a trend fitted on training rows and add it back
      Keras:       the same transformation of the arrays before fit()
      Random splits hide this problem by interleaving past and future (D115).

    Related: D115 shuffled-time-split, T308 overfitting, D110 no-learnable-signal
    """
    ranges = ev.get("val_range") or {}
    outside = {role: {n: r for n, r in (ranges.get(role) or {}).items() if r["outside_share"] >= OUTSIDE_SHARE}
               for role in ("targets", "features")}
    outside = {role: cols for role, cols in outside.items() if cols}
    test = ev.get("stationarity")
    drifting = bool(test) and test["adf_p"] > STATIONARITY_ALPHA and test["kpss_p"] < STATIONARITY_ALPHA
    if not outside and not drifting:
        return None
    evidence: dict[str, Any] = {"outside_training_range": outside, "threshold": OUTSIDE_SHARE}
    if test:
        evidence["stationarity"] = test
    if not outside:
        return Finding.of(
            "D107",
            f"The training target series tests as non-stationary (ADF p = {test['adf_p']:.2f}, KPSS p = {test['kpss_p']:.2f}), "
            f"though validation still stays within the training range.",
            evidence,
            fix="Consider data.target_transform: difference, or detrending with training-only statistics.",
            severity="info",
            confidence=0.5,
        )
    # The target speaks for the task; features follow.
    role = "targets" if "targets" in outside else "features"
    name, r = max(outside[role].items(), key=lambda kv: kv[1]["outside_share"])
    direction = "above" if r["shift"] > 0 else "below"
    others = [f"{rl[:-1]} '{n}'" for rl, cols in outside.items() for n in cols if (rl, n) != (role, name)]
    more = f", as do those of {', '.join(others[:2])}" + (f" and {len(others) - 2} more" if len(others) > 2 else "") if others else ""
    return Finding.of(
        "D107",
        f"{_pct(r['outside_share'])} of validation values of {role[:-1]} '{name}' lie outside the training range "
        f"(mean {abs(r['shift']):.1f} training SDs {direction}){more}: the model must extrapolate a level it never saw.",
        evidence,
        fix="data.target_transform: difference (predict the change, not the level), or detrend with training-only statistics",
        confidence=0.85 if drifting else 0.7,
    )


@rule("D108")
def window_too_short(ev: Evidence) -> Finding | None:
    """What it means
      The series repeats with a period longer than the window can see. To
      forecast a seasonal value the model needs the same phase of the previous
      cycle; when it is outside the window, the model can only guess the season
      from the few steps it has.

    How it is measured
      The autocorrelation (statsmodels acf, FFT) of the training target series
      (a panel's series averaged; for arrays that are stride-1 sliding windows,
      the series rebuilt from them), after removing a linear trend. The dominant
      period is the lag of the highest ACF peak after the first trough that
      stands above Bartlett's band both in height and in prominence, at a 5%
      family-wise level over all lags searched (Bonferroni), so noise and slowly
      decaying ACFs give no period. The value one period before a target that
      lies h steps past the window is inside the window exactly when
      period <= window + horizon - 1; the rule fires when it is not.
      Sequences that come already windowed have no period longer than
      themselves to measure, so the rule is silent for them.

    Example
      Yearly sunspot numbers have an 11-year cycle (ACF peak 0.55 at lag 11 over
      the training years). With a 5-year window, the value one cycle before
      each target is never in view; with a 12-year window (horizon 1) it is.

    Fix
      Setup file:  data.window: <at least the period - horizon + 1>
      PyTorch:     build windows of that length; for very long periods, add the
                   value one period back (y[t - period]) as a feature instead
      Keras:       keras.utils.timeseries_dataset_from_array(
                       data, targets, sequence_length=period)
      When the longer window makes sequences too long (D109), downsample or
      add seasonal lag features.

    Related: D109 sequence-too-long, M203 too-little-capacity,
             D110 no-learnable-signal
    """
    period, window = ev.get("dominant_period"), ev.get("steps")
    if not period or not window:
        return None
    horizon = ev.get("horizon") or 0
    if period <= window + horizon - 1:
        return None
    acf = ev.get("acf") or {}
    values = acf.get("values") or []
    at = values[period] if period < len(values) else None
    strength = f" (autocorrelation {at:.2f} at lag {period})" if at is not None else ""
    need = period - horizon + 1
    return Finding.of(
        "D108",
        f"'{acf.get('of', 'the series')}' repeats every {period} steps{strength} but the window holds {window}: "
        f"the previous cycle's value for each target is out of sight.",
        {"dominant_period": period, "window": window, "horizon": horizon, "acf_at_period": at, "window_needed": need},
        fix=f"data.window: {need} (or more), or add the value one period back as a feature",
        confidence=0.75,
    )


@rule("D109")
def sequence_too_long(ev: Evidence) -> Finding | None:
    """What it means
      The model runs over more steps than backpropagation through time carries
      a useful gradient. Each step multiplies the gradient by the recurrent
      Jacobian; over hundreds of steps it vanishes (or explodes), so the early
      steps of every sequence hardly train and long dependencies are not learned.

    How it is measured
      Steps per sequence as fed (the window for tables, the array's step axis
      otherwise) against a limit per cell: 300 for LSTM and GRU, 50 for a plain
      RNN. Hochreiter & Schmidhuber (1997) show plain RNNs failing on lags
      beyond 5-10 steps and LSTMs bridging long lags only on clean synthetic
      tasks; in practice sequences of 250-500 steps are the usual upper bound
      for LSTM training (Brownlee, "How to Handle Very Long Sequences with
      LSTMs", 2017), and we take 300 within it. When the gradient probe measured
      how far back the trained model's gradients reach (memory_length), it is
      reported beside.

    Example
      OSULeaf leaf outlines are 427 steps long: past the LSTM's ~300. Averaging
      every 2 steps (data.downsample: 2) gives 214. GunPoint's 150 steps suit an
      LSTM but are three times a plain RNN's ~50.

    Fix
      Setup file:  data.downsample: 4     (arrays; tables: a shorter data.window)
      PyTorch:     x = x.unfold(1, k, k).mean(-1)  # average every k steps
                   or a strided Conv1d front-end before the LSTM
      Keras:       keras.layers.AveragePooling1D(k), or Conv1D(..., strides=k),
                   before the LSTM
      Truncated BPTT (stateful chunks) helps training speed but not the reach.

    Related: T303 vanishing-gradients, D108 window-too-short, M207 forget-bias
    """
    steps = ev.get("steps")
    if not steps:
        return None
    cells = [c for c in (ev.get("cells") or []) if c in BPTT_LIMIT] or ["lstm"]
    cell = min(cells, key=lambda c: BPTT_LIMIT[c])
    limit = BPTT_LIMIT[cell]
    if steps <= limit:
        return None
    evidence: dict[str, Any] = {"steps": steps, "cell": cell, "limit": limit}
    memory = ev.get("memory_length")
    reach = ""
    if memory is not None:
        evidence["memory_length"] = memory
        reach = f"; the trained model's gradients reach back {memory} steps"
    factor = math.ceil(steps / limit)
    fix = (f"data.downsample: {factor} (average every {factor} steps)" if ev.get("source_kind") == "arrays"
           else f"data.window: {limit} or less, with coarser steps if the history matters")
    return Finding.of(
        "D109",
        f"Sequences run {steps} steps through the {cell_name(cell)}, beyond the ~{limit} that "
        f"backpropagation through time carries{reach}: the early steps barely train.",
        evidence,
        fix=fix,
        confidence=0.6 if memory is None else 0.75,
    )


@rule("D111")
def class_imbalance(ev: Evidence) -> Finding | None:
    """What it means
      One class dominates the training labels. Predicting it always is a cheap
      optimum: accuracy starts at (and often stays at) the majority share, and a
      loss that treats every sample alike learns the minority classes last.

    How it is measured
      Class counts of the training targets (every real step for per-step
      labels). With K classes and majority share p, the dominance
      (p - 1/K) / (1 - 1/K) is 0 for balanced classes and 1 for a single class;
      it fires at 0.6 or more: a binary majority of 80%, the bound of
      "moderate" imbalance (minority 1-20%) in Google's ML crash course, or 73%
      of 3 classes. Info instead of a warning when the loss already weights the
      classes (training.class_weights: balanced).

    Example
      Fault detection with 95% "normal" windows: always answering "normal"
      scores 0.95 accuracy, so an accuracy curve flat at 0.95 says nothing about
      whether a single fault is recognized; balanced accuracy would be 0.5.

    Fix
      Setup file:  training.class_weights: balanced
                   training.metrics: [balanced_accuracy]
      PyTorch:     nn.CrossEntropyLoss(weight=counts.sum() / (K * counts))
                   or a WeightedRandomSampler over the training windows
      Keras:       model.fit(..., class_weight={0: w0, 1: w1})
      Judge such a model by balanced accuracy, recall or PR-AUC, not accuracy.

    Related: T307 prediction-collapse, M202 metric-task-mismatch,
             M201 output-loss-mismatch
    """
    counts = ev.get("class_counts")
    if not counts or len(counts) < 2:
        return None
    total = sum(counts.values())
    if total == 0:
        return None
    k = len(counts)
    majority = max(counts, key=counts.get)
    share = counts[majority] / total
    dominance = (share - 1 / k) / (1 - 1 / k)
    if dominance < DOMINANCE:
        return None
    weighted = ev.get("class_weights") == "balanced"
    evidence: dict[str, Any] = {"class_counts": counts, "majority_class": majority, "majority_share": share,
                                "dominance": dominance, "threshold": DOMINANCE}
    val = ev.get("class_counts_val")
    if val and sum(val.values()):
        evidence["val_majority_share"] = val.get(majority, 0) / sum(val.values())
    handled = " (the loss is already class-weighted)" if weighted else ""
    return Finding.of(
        "D111",
        f"Class '{majority}' is {_pct(share)} of the training labels{handled}: always predicting it scores "
        f"{_pct(share)} accuracy, so accuracy near {_pct(share)} means nothing was learned.",
        evidence,
        fix="training.class_weights: balanced, and watch balanced_accuracy instead of accuracy",
        severity="info" if weighted else "warning",
        confidence=0.85,
    )


@rule("D112")
def padding_problems(ev: Evidence) -> Finding | None:
    """What it means
      Padded sequences hurt in two ways. When padding is most of what the model
      reads, the state that reaches the readout has mostly seen pad steps; with
      post-padding and a last-step readout the signal is forgotten before the
      end. When the pad value also occurs in the real data and no lengths tell
      them apart, the model cannot know where a sequence ends.

    How it is measured
      On already-windowed arrays: with lengths, the steps past each length are
      padding; without, a run of one constant row (0, -1, NaN, ...) at the end
      or start of at least 10% of the sequences, two steps or longer, is taken
      as padding (how pad_sequences output looks). Fires when padding is over
      half of all steps, or when, without lengths, over 1% of the real steps
      equal the pad row.

    Example
      Japanese-vowel recordings (aeon) last 7-26 frames. Zero-padded to 26
      frames, 39% of the steps are padding: under the bound, and with lengths
      given nothing fires. Padded to a fixed 60 frames for a shared pipeline,
      74% are padding, and a last-step readout reads up to 53 frames of zeros.

    Fix
      Setup file:  lengths in the .npz (lengths=...), and model.readout: true-end
      PyTorch:     nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True,
                                                    enforce_sorted=False)
                   or gather the output at lengths - 1
      Keras:       keras.layers.Masking(mask_value=pad) before the LSTM, with a pad
                   value that never occurs in the data (e.g. -999 on scaled data)
      Bucketing sequences of similar length keeps padding short.

    Related: M209 readout-misplaced, D109 sequence-too-long, D113 truncated-values
    """
    pad = ev.get("padding")
    if not pad or pad.get("side") is None:
        return None
    share = pad["padded_share"]
    in_data = pad.get("pad_value_in_data")
    dominates = share > PADDED_SHARE
    ambiguous = in_data is not None and in_data > PAD_IN_DATA and not pad["lengths_given"]
    if not dominates and not ambiguous:
        return None
    value = pad.get("value")
    shown = "NaN" if value is not None and math.isnan(value) else (_num(value) if value is not None else "a filler")
    lengths = pad.get("lengths") or {}
    parts = []
    if dominates:
        parts.append(f"{_pct(share)} of all steps are padding ({pad['side']}-padded with {shown}; real lengths "
                     f"{lengths.get('min')}-{lengths.get('max')} of {ev.get('steps')})")
    if ambiguous:
        parts.append(f"{_pct(in_data)} of the real steps equal the pad value {shown} and no lengths mark the end")
    return Finding.of(
        "D112",
        _sentence("; ".join(parts)) + ": the model cannot tell where the real sequence ends.",
        {"padding": pad, "padded_share_threshold": PADDED_SHARE, "pad_in_data_threshold": PAD_IN_DATA},
        fix="Give lengths (and model.readout: true-end), or pad with a value that never occurs and mask it.",
        confidence=0.8 if pad["lengths_given"] else 0.65,
    )


@rule("D113")
def truncated_values(ev: Evidence) -> Finding | None:
    """What it means
      Real-valued inputs were cast to integers before they reached the model:
      standardized values become -2..2, mostly 0, and the information is gone.
      The classic cause is keras' pad_sequences, whose default dtype is int32,
      applied to float sequences; an astype(int) on a whole array does the same.

    How it is measured
      On already-windowed arrays: features whose values are all integers, at
      least 3 distinct ones, negative and positive, in a span of at most 20:
      what truncating centred (e.g. standardized) data gives. Counts, flags
      and category codes are non-negative and are not suspects. It fires with
      a cast clue: the array's dtype is an integer type, or the sequences are
      padded (pad_sequences' signature). Critical when the data is padded
      (the int32 default at work); a warning with the integer dtype alone.
      Integer token ids that feed an embedding are not judged.

    Example
      Accelerometer sequences standardized per channel, then padded with
      pad_sequences(seqs) to 100 steps: truncation toward zero turns every
      value within one standard deviation (68% of normal data) into 0 and the
      rest into -3..3.

    Fix
      Setup file:  none; rebuild the arrays without the cast
      PyTorch:     nn.utils.rnn.pad_sequence(
                       [torch.as_tensor(s, dtype=torch.float32) for s in seqs],
                       batch_first=True)
      Keras:       keras.utils.pad_sequences(seqs, dtype="float32", padding="post")
      If the integers are genuine (counts, categories), ignore this; categories
      belong in an embedding or one-hot encoding.

    Related: D112 padding-problems, D110 no-learnable-signal, D105 constant-feature
    """
    ints = ev.get("integer_inputs")
    if not ints or _embeds(ev):
        return None
    suspects = {n: f for n, f in (ints.get("features") or {}).items()
                if f["distinct"] >= 3 and f["min"] < 0 < f["max"] and f["max"] - f["min"] <= TRUNCATED_RANGE}
    if not suspects:
        return None
    dtype = str(ints.get("input_dtype") or "")
    int_dtype = dtype.startswith(("int", "uint"))
    padded = (ev.get("padding") or {}).get("side") is not None
    if not (int_dtype or padded):
        return None
    name, f = next(iter(suspects.items()))
    clue = " and padded" if padded else ""
    clue = f"the arrays are {dtype}{clue}" if int_dtype else "the sequences are padded (pad_sequences defaults to int32)"
    return Finding.of(
        "D113",
        f"'{name}' holds only the integers {_num(f['min'])}..{_num(f['max'])} ({f['distinct']} values) and {clue}: "
        f"real values look truncated to integers.",
        {"integer_features": suspects, "input_dtype": dtype, "padded": padded, "range_threshold": TRUNCATED_RANGE},
        fix="Rebuild the arrays as float32 (pad_sequences(..., dtype='float32')); if they are genuine counts, ignore this.",
        severity="critical" if padded else "warning",
        confidence=0.8 if padded else 0.55,
    )


@rule("D114")
def split_leakage(ev: Evidence) -> Finding | None:
    """What it means
      Validation data leaked into training, so validation scores are too good
      to trust. Two leaks are measurable: overlapping windows on both sides of
      the split (a validation window shares steps, and often its target, with
      training windows), and inputs scaled with statistics that include the
      validation rows (its level and spread leak into training).

    How it is measured
      Overlap: the share of validation windows whose future a training window
      reads. For windows of a table, a training window that starts after a
      validation window and fewer than window + horizon rows later (it reads
      the validation window's later rows and, from horizon rows on, its
      target). For arrays, a training sequence that holds a run of 8
      consecutive steps of the validation sequence (half the sequence when
      shorter) at an earlier position than the validation sequence does,
      compared exactly through a hash of the float bits (flat runs and integer
      data left out). Validation windows that only share history with
      training (at the cut of a temporal split) do not count. Fires when 10%
      or more of validation windows leak.
      Scaling: when the setup does not scale the data itself, a feature counts
      as scaled with validation statistics when over training and validation
      rows together its mean is 0 and std 1 (or min 0 and max 1) to within
      0.001 while over the training rows alone they are visibly off (by 0.01).
      lstm-doctor's own scalers fit on training rows only.

    Example
      Weekly CO2 in 52-week windows split at random: 99.8% of validation
      windows have a training window starting within 52 weeks after them, most
      a week later, holding their target among its inputs.
      A standardized LSTM(32) scores a validation RMSE of 0.93 ppm; split in
      time, the same model scores 2.25 ppm on the final fifth of the series.

    Fix
      Setup file:  data.split: temporal; data.scale: standard (fits on training)
      PyTorch:     split the series first, then window each part; fit the scaler
                   on the training part only: scaler.fit(train_rows)
      Keras:       the same order: split, window, then Normalization.adapt(x_train)
      With a random split of windows, leave a gap of window + horizon rows
      between training and validation windows.

    Related: D115 shuffled-time-split, D102 unscaled-inputs, T308 overfitting
    """
    overlap = ev.get("val_window_overlap")
    leaked = ev.get("scaled_with_validation") or {}
    overlapping = overlap is not None and overlap >= OVERLAP
    if not overlapping and not leaked:
        return None
    parts = []
    evidence: dict[str, Any] = {"threshold": OVERLAP}
    if overlapping:
        evidence["val_window_overlap"] = overlap
        parts.append(f"{_pct(overlap)} of validation windows share steps with training windows")
    if leaked:
        evidence["scaled_with_validation"] = leaked
        name, s = next(iter(leaked.items()))
        a, t = s["all_rows"], s["training_rows"]
        if s["kind"] == "standard":
            stat = f"mean {a['mean']:.3f} and std {a['std']:.3f} over all rows, {t['mean']:.2f} and {t['std']:.2f} over training rows"
        else:
            stat = f"min {a['min']:.3f} and max {a['max']:.3f} over all rows, {t['min']:.2f} and {t['max']:.2f} over training rows"
        parts.append(f"'{name}' was scaled with statistics that include validation ({stat})")
    return Finding.of(
        "D114",
        _sentence("; ".join(parts)) + ": validation has leaked into training and its scores flatter the model.",
        evidence,
        fix="data.split: temporal, and fit any scaler on training rows only",
        confidence=0.9 if overlapping else 0.7,
    )


@rule("D115")
def shuffled_time_split(ev: Evidence) -> Finding | None:
    """What it means
      Windows of a time series were split into training and validation at
      random. Each validation window then sits between training windows from
      just before and just after it: validation measures interpolation (and
      memory of overlapping steps), not forecasting the future. A model that
      looks good on it can fail on the next month.

    How it is measured
      From the setup: windows cut from a table (one series or a panel) with
      data.split: random. For arrays: when the samples are stride-1 sliding
      windows of one series (sample i+1 is sample i moved on by a step for at
      least half the neighbours) and were split at random, or were given with
      a validation set of which half or more overlaps the training windows.

    Example
      Weekly CO2 split at random: validation RMSE 0.93 ppm for a standardized
      LSTM(32); the same model forecasting the last fifth of the series, split
      in time: 2.25 ppm.

    Fix
      Setup file:  data.split: temporal
      PyTorch:     cut = int(len(series) * 0.8); window series[:cut] and
                   series[cut:] apart; for folds,
                   sklearn.model_selection.TimeSeriesSplit
      Keras:       the same; never shuffle before splitting (shuffle within
                   the training part is fine)

    Related: D114 split-leakage, D107 non-stationary
    """
    split = ev.get("split")
    kind = ev.get("source_kind")
    sliding = (ev.get("sliding_window_share") or 0.0) >= SLIDING
    overlap = ev.get("val_window_overlap") or 0.0
    if split == "random" and kind == "table":
        how = "Windows of the series were split at random"
    elif split == "random" and sliding:
        how = "The samples are sliding windows of one series, split at random"
    elif split == "given" and sliding and overlap >= 0.5:
        how = f"The samples are sliding windows of one series and {_pct(overlap)} of the validation windows interleave with them"
    else:
        return None
    return Finding.of(
        "D115",
        f"{how}: validation windows sit between training windows, so validation measures interpolation, not forecasting.",
        {"split": split, "source_kind": kind, "sliding_window_share": ev.get("sliding_window_share"), "val_window_overlap": ev.get("val_window_overlap")},
        fix="data.split: temporal",
        confidence=0.9 if kind == "table" else 0.75,
    )


@rule("D116")
def too_few_samples(ev: Evidence) -> Finding | None:
    """What it means
      There is little training data for the model's size. With many more
      parameters than target values the model can store the training set
      instead of learning its regularities: training loss falls, validation
      stalls or rises, and results swing from seed to seed. Whether it does
      depends on the task, so the rule asks the training run too.

    How it is measured
      Trainable parameters over training target values (windows, times steps
      for per-step targets). Fires above 10 parameters per target value:
      networks with as many parameters as samples can already memorize random
      labels (Zhang et al., "Understanding deep learning requires rethinking
      generalization", 2017), and the classical guideline asks for the reverse,
      10 samples per parameter. Info by default: our own runs on
      ItalyPowerDemand (67 training days) reach the same validation accuracy
      (0.96-0.97) with 117 or 17,217 parameters (2 to 257 per sample), so the
      ratio alone proves no harm. A warning when the instrumented run shows it:
      the validation loss ends 20% or more above its best.

    Example
      ArrowHead (36 training outlines) with an LSTM(16): 1,267 parameters, 35
      per sample; if the validation loss climbs while training loss falls, more
      data or a smaller model is the fix, not more epochs.

    Fix
      Setup file:  model.hidden: 16; training.early_stopping: 5; model.dropout: 0.2
      PyTorch:     fewer units; early stopping on validation loss; augment (jitter,
                   scaling, window slicing); pool several series into one model
      Keras:       keras.callbacks.EarlyStopping(restore_best_weights=True);
                   fewer units
      More data (more series, a longer history) helps most.

    Related: T308 overfitting, M204 too-much-capacity, M213 excessive-dropout
    """
    params, n = ev.get("parameters"), ev.get("n_train")
    if not params or not n:
        return None
    values = n * (ev.get("steps") or 1) if ev.get("per_step") else n
    ratio = params / values
    if ratio <= PARAMS_PER_SAMPLE:
        return None
    evidence: dict[str, Any] = {"parameters": params, "training_values": values, "ratio": ratio, "threshold": PARAMS_PER_SAMPLE}
    losses = [v["loss"] for v in ev.get("val_history") or [] if isinstance(v.get("loss"), (int, float)) and math.isfinite(v["loss"])]
    rise = losses[-1] / min(losses) - 1 if losses and min(losses) > 0 else None
    overfit = rise is not None and rise >= VAL_RISE
    if rise is not None:
        evidence["val_loss_rise"] = rise
    unit, per = ("training target values", "per value") if ev.get("per_step") else ("training sequences", "per sequence")
    seen = (f"; validation loss ended {_pct(rise)} above its best" if overfit
            else "; this run shows no overfitting yet" if rise is not None else "")
    return Finding.of(
        "D116",
        f"{params:,} trainable parameters for {values:,} {unit} ({_num(ratio)} {per}), enough to memorize "
        f"the training set{seen}.",
        evidence,
        fix="More data, or a smaller model (model.hidden) with training.early_stopping",
        severity="warning" if overfit else "info",
        confidence=0.75 if overfit else 0.4,
    )
