"""M208 and M212: faults in how the user's own model is wired to its data and its optimizer.

Both are judged for built-in setups too (where they stay silent), but they are
the usual faults of hand-written models: a recurrent layer that runs along the
batch, and weights that never train.
"""

from __future__ import annotations

from typing import Any

from lstm_doctor.evidence import Evidence
from lstm_doctor.findings import Finding
from lstm_doctor.rules.registry import rule

# M208: a sample's output moving by this share of the outputs' spread across
# samples when only the OTHER samples change. Independent samples give exactly 0
# (floating-point reordering stays under 1e-6); a recurrence along the batch
# gives changes of the order of the spread itself.
MIXING = 1e-3
# M208, layout of the arrays: neighbouring entries along the axis handed over as
# features are this correlated, along the axis handed over as time they are not.
# Series at their natural sampling rate have lag-1 autocorrelations well above
# 0.8 (hourly Italian power demand 0.89, GunPoint's motion 0.997); distinct
# features side by side rarely are.
LAYOUT_FEATURE_CORR = 0.8
LAYOUT_STEP_CORR = 0.5
LAYOUT_MIN_FEATURES = 8
# M212: never-training weights above this share of all weights make it critical.
FROZEN_CRITICAL_SHARE = 0.5


def _layout_swapped(layout: dict[str, Any] | None) -> bool:
    """A (samples, features, steps) array handed over as (samples, steps, features)."""
    if not layout:
        return False
    feature_corr, step_corr = layout.get("adjacent_feature_corr"), layout.get("adjacent_step_corr")
    return (
        feature_corr is not None and feature_corr >= LAYOUT_FEATURE_CORR
        and layout.get("features", 0) >= LAYOUT_MIN_FEATURES and layout["features"] > layout.get("steps", 0)
        and (step_corr is None or step_corr < LAYOUT_STEP_CORR)
    )


@rule("M208")
def batch_first_mismatch(ev: Evidence) -> Finding | None:
    """What it means
      The recurrent layer runs along the wrong axis. ``nn.LSTM`` and ``nn.GRU``
      take ``(steps, batch, features)`` unless built with ``batch_first=True``;
      fed ``(batch, steps, features)`` they step through the batch as if it
      were time, so each prediction mixes other samples' inputs and never sees
      its own sequence in order. Nothing fails: the shapes fit and the loss
      falls a little, to about what a constant prediction gets. The same
      happens when an array laid out ``(samples, features, steps)`` (as aeon,
      sktime and tslearn return it) is handed over as ``(samples, steps,
      features)``: the model reads one step of many features.

    How it is measured
      On a fresh copy of the model and a fixed batch whose size differs from
      the number of steps:
      - Layout: forward hooks record the tensor each recurrent module receives;
        when the axis the module takes as time has the batch's length and the
        other the sequence length, the module runs along the batch.
      - Independence: the batch is passed in its order and reversed (eval mode,
        no dropout). A sample's output must not change with its neighbours;
        fires when it changes by more than 1e-3 of the outputs' spread across
        samples (independent samples give exactly 0 up to rounding; a
        recurrence along the batch gives changes of the spread's own size).
        This catches every form of the fault, whatever the layer or transpose.
      - Arrays: when the axis given as features has at least 8 entries, more
        than the axis given as time, and neighbours along it correlate at 0.8
        or more while neighbours along "time" correlate under 0.5 (or there is
        one step), the data itself looks transposed: series at their natural
        rate have lag-1 autocorrelations well above 0.8 (hourly Italian power
        demand 0.89, GunPoint 0.997), unrelated features side by side rarely.

    Example
      ItalyPowerDemand (24 hourly steps, 2 classes) into
      nn.LSTM(1, 16) (batch_first left False) with a head on out[:, -1]:
      the LSTM receives (16, 24, 1), takes the 16 samples as 16 time steps of
      24 sequences, and each prediction depends on every earlier sample in the
      batch. Validation accuracy stays near the majority share.

    Fix
      Setup file:  none (the built-in model is always batch_first)
      PyTorch:     nn.LSTM(n_features, hidden, batch_first=True)
                   or feed x.transpose(0, 1) and read out[-1] (time first)
                   arrays from aeon/sktime: x = x.transpose(0, 2, 1)  # to (samples, steps, features)
      Keras:       layers take (batch, steps, features); for (batch, features, steps)
                   arrays use x = np.transpose(x, (0, 2, 1)) or keras.layers.Permute((2, 1))

    Related: T307 prediction-collapse, T309 cannot-fit-small-batch, M210 sequence-shape-mismatch
    """
    swapped = ev.get("batch_as_time") or []
    mixing = ev.get("sample_mixing")
    mixes = mixing is not None and mixing > MIXING
    layout = ev.get("layout_suspect")
    transposed = _layout_swapped(layout)
    if not (swapped or mixes or transposed):
        return None
    evidence: dict[str, Any] = {"sample_mixing": mixing, "threshold": MIXING}
    batch, steps = ev.get("axes_probe_batch"), ev.get("axes_probe_steps")
    if swapped:
        seen = next(s for s in ev.get("recurrent_inputs", []) if s["layer"] == swapped[0])
        evidence.update(batch_as_time=swapped, recurrent_inputs=ev.get("recurrent_inputs"))
        summary = (f"The recurrent layer '{swapped[0]}' (batch_first={seen['batch_first']}) receives "
                   f"{tuple(seen['shape'])} and steps through the {batch} samples of the batch as if they were time, "
                   f"so each prediction mixes other samples and never reads its own {steps} steps in order.")
    elif mixes:
        summary = (f"Each sample's output changes by {mixing:.2g}x the outputs' spread when only the OTHER samples of "
                   "the batch change: the model mixes samples, as a recurrence along the batch axis does.")
    else:
        evidence["layout_suspect"] = layout
        summary = (f"The inputs look transposed: the {layout['features']} 'features' are consecutive values "
                   f"(neighbours correlate at {layout['adjacent_feature_corr']:.2f}) while the {layout['steps']} "
                   "'steps' are not; the model reads one step of many features instead of a sequence.")
    if transposed and (swapped or mixes):
        evidence["layout_suspect"] = layout
    return Finding.of(
        "M208", summary, evidence,
        fix="Build the layer with batch_first=True (or feed (steps, batch, features)); "
            "transpose (samples, features, steps) arrays to (samples, steps, features).",
        confidence=0.95 if (swapped and mixes) else 0.85,
    )


def _names(counts: dict[str, int], limit: int = 3) -> str:
    names = list(counts)
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


@rule("M212")
def frozen_parameters(ev: Evidence) -> Finding | None:
    """What it means
      Some of the model's weights never change during training: they have
      ``requires_grad=False``, or they are missing from the optimizer (it was
      built on ``model.head.parameters()``, or before a layer was added or
      replaced), or no gradient reaches them because ``forward`` never uses
      them. A frozen recurrent layer leaves the model a fixed random feature
      map; frozen weights everywhere leave it where it started.

    How it is measured
      From a fresh copy of the model and an optimizer built as the setup builds
      it: parameters with ``requires_grad=False`` and trainable parameters in no
      optimizer param group. During the instrumented run: parameters that get
      no gradient at the first backward pass, and parameters whose values are
      all exactly equal before the first and after the last optimizer step
      (any update moves at least one value), unless they are in the
      optimizer with a positive learning rate and the backward pass reaches
      them: then they stalled, with gradients vanished to zero (gates
      saturated by unscaled inputs, T305, D102) or steps below float
      resolution (T302); nothing froze them.
      Critical when a recurrent layer's weights never train or when the
      never-training weights are half of all weights or more (the model cannot
      fit); a warning otherwise, since freezing a pretrained embedding can be
      deliberate (ignore the code then).

    Example
      An LSTM classifier whose optimizer was built as
      torch.optim.Adam(model.head.parameters()): the LSTM's 1,216 weights keep
      their random initial values, and validation accuracy stays near the
      majority share however long it trains.

    Fix
      Setup file:  none (the built-in model trains every weight)
      PyTorch:     optimizer = torch.optim.Adam(model.parameters(), lr=...)
                   # build it after the model is complete; undo requires_grad_(False)
                   for p in model.lstm.parameters(): p.requires_grad_(True)
      Keras:       layer.trainable = True, then compile the model again
                   (trainable changes take effect at compile)

    Related: T302 learning-rate-too-low, T307 prediction-collapse, T309 cannot-fit-small-batch
    """
    frozen = ev.get("frozen_parameters") or {}
    left_out = ev.get("parameters_not_in_optimizer") or {}
    no_grad = ev.get("parameters_without_gradient") or {}
    stalled = ev.get("parameters_stalled") or {}
    never = {n: c for n, c in (ev.get("parameters_never_updated") or {}).items() if n not in stalled}
    stuck = {**frozen, **left_out, **no_grad, **never}
    if not stuck:
        return None
    total = ev.get("parameter_total") or ((ev.get("parameters") or 0) + sum(frozen.values()))
    share = sum(stuck.values()) / total if total else None
    recurrent = set(ev.get("recurrent_parameters") or [])
    recurrent_stuck = sorted(n for n in stuck if n in recurrent)
    critical = bool(recurrent_stuck) or (share is not None and share >= FROZEN_CRITICAL_SHARE)
    reasons = []
    if frozen:
        reasons.append(f"requires_grad=False: {_names(frozen)}")
    if left_out:
        reasons.append(f"not in the optimizer: {_names(left_out)}")
    if no_grad:
        reasons.append(f"no gradient reaches them: {_names(no_grad)}")
    unexplained = {n: c for n, c in never.items() if n not in frozen and n not in left_out and n not in no_grad}
    if unexplained:
        reasons.append(f"never changed in training: {_names(unexplained)}")
    of = f" ({100 * share:.0f}% of its weights)" if share is not None else ""
    summary = (f"{len(stuck)} parameter tensor(s) of the model never train{of}, "
               f"{'including the recurrent layer' if recurrent_stuck else 'none of them recurrent'}; "
               + "; ".join(reasons) + ".")
    return Finding.of(
        "M212", summary,
        {"frozen_parameters": frozen, "parameters_not_in_optimizer": left_out,
         "parameters_without_gradient": no_grad, "parameters_never_updated": never,
         "never_training_share": share, "recurrent_never_training": recurrent_stuck},
        fix="Build the optimizer on model.parameters() after the model is complete, and undo requires_grad_(False) on layers meant to learn.",
        severity="critical" if critical else "warning",
        confidence=0.95 if (frozen or left_out) else 0.8,
    )
