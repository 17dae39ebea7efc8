"""The symptom: one word for what the loss curves show, judged against the baselines.

Precedence (FINDINGS.md): diverging, unstable, not-learning, overfitting,
learning-slowly; healthy when none applies; unknown without a validation curve.
Each symptom is a predicate on the evidence of the training run, public so
that the training-dynamics rules judge by the same measure:

- ``diverging``: the loss became non-finite, or the smoothed training loss ends
  at least 1.5x its lowest point, having given back at least a quarter of its
  starting level (noise near a tiny loss can double it, never give back a quarter).
- ``unstable``: the validation loss spikes (more than doubles over its recent
  level) in at least 3 evaluations and 8% of them, or it swings by a typical 20%
  or more from one evaluation to the next through the second half of the run,
  by at least a twentieth of the way from a constant's loss to its best level,
  without falling (its last quarter is not 10% below its second).
- ``not-learning``: the best validation loss stays within 5% of the best
  constant prediction's (the training mean or the class priors, or a neutral
  output when that does better on validation), and, when the
  run was capped below the setup's training, a straight-line extrapolation of
  its second half to the planned steps does not get below it either (a
  decelerating curve does less: the extrapolation can only favour the model).
- ``overfitting``: the validation loss ends (median of its last fifth) 20% or
  more above its lowest smoothed level while the training loss kept falling
  (Prechelt's generalization loss GL > 20, "Early stopping - but when?", 1998;
  GL > 10 is within the evaluation noise of small validation sets: sunspots'
  60 windows swing 4-13% between epochs of a healthy run).
- ``learning-slowly``: the loss falls, but the run had to be extrapolated to
  get below the baseline, or the learning-rate range test found rates at least
  10x the user's that train stably while the loss is still falling at the end
  (the last quarter of the run made 10% or more of the whole fall: an
  exponential approach that has not yet run three time constants).
  A capped run of a healthy setup is never called slow on its length alone.
"""

from __future__ import annotations

import numpy as np

from lstm_doctor.curves import finite, late_share, lowest_level, overfit_rise, quarter_medians, spike_count, swings, train_rise
from lstm_doctor.evidence import Evidence
from lstm_doctor.rules.progress import input_free_loss

NEAR_BASELINE = 0.95
OVERFIT_RISE = 1.2
SLOW_LR_RATIO = 10.0
STILL_FALLING = 0.1  # share of the fall made in the last quarter: under ~3 time constants of an exponential approach


def constant_loss(ev: Evidence) -> float | None:
    """The validation loss of the best constant prediction measured: the input-free baseline (training
    mean or class priors) or the neutral output (zero logits: uniform classes), whichever is lower.
    With class priors that differ between training and validation, uniform can beat the priors."""
    found = [v for v in (input_free_loss(ev), ev.get("zero_output_loss")) if v is not None and finite([v])]
    return min(found) if found else None


def val_curve(ev: Evidence) -> tuple[list[float], list[int]]:
    """Finite validation losses of the training run and the steps they were taken at."""
    pairs = [(h.get("loss"), h.get("step", 0)) for h in ev.get("val_history") or []]
    kept = [(loss, step) for loss, step in pairs if finite([loss])]
    return [float(v) for v, _ in kept], [int(s) for _, s in kept]


def diverging(ev: Evidence) -> bool:
    if ev.get("stopped") == "diverged":
        return True
    train = finite(ev.get("train_loss_steps") or [])
    if len(train) < 20:
        return False
    ratio, gave_back = train_rise(train)
    return ratio >= 1.5 and gave_back >= 0.25


def unstable(ev: Evidence) -> bool:
    val, _ = val_curve(ev)
    spikes = spike_count(val)
    if spikes >= 3 and spikes >= 0.08 * len(val):
        return True
    moves, base = swings(val), constant_loss(ev)
    if moves is None or moves[0] < 0.2:
        return False
    # Swings that matter: a twentieth of the way from a constant's loss down to the best level or more
    # (a plateau at a low loss wobbles by 20% and more without undoing anything).
    progress = max(base or val[0], val[0]) - lowest_level(val)
    q = quarter_medians(val)
    return moves[1] >= 0.05 * progress and q[3] > 0.9 * q[1]


def projected_loss(ev: Evidence) -> float | None:
    """The validation loss at the planned end of training, extrapolated on a straight line
    through the second half of a capped run; None when the run was not capped."""
    val, steps = val_curve(ev)
    planned, run = ev.get("steps_planned"), ev.get("steps_run")
    if planned is None or run is None or run >= planned or ev.get("stopped") not in ("completed", None) or len(val) < 4:
        return None
    half = len(val) // 2
    slope = float(np.polyfit(steps[half:], val[half:], 1)[0]) if steps[-1] > steps[half] else 0.0
    return val[-1] + min(slope, 0.0) * (planned - run)


def not_learning(ev: Evidence) -> bool:
    val, _ = val_curve(ev)
    base = constant_loss(ev)
    if not val or base is None:
        return False
    projected = projected_loss(ev)
    reaches = projected is not None and projected < NEAR_BASELINE * base
    return min(val) >= NEAR_BASELINE * base and not reaches


def overfitting(ev: Evidence) -> bool:
    val, steps = val_curve(ev)
    found = overfit_rise(val, steps, finite(ev.get("train_loss_steps") or []))
    return found is not None and found[0] >= OVERFIT_RISE and found[2]


def learning_slowly(ev: Evidence) -> bool:
    val, _ = val_curve(ev)
    base = constant_loss(ev)
    if not val or base is None:
        return False
    if min(val) >= NEAR_BASELINE * base:  # only an extrapolation gets it below the baseline
        projected = projected_loss(ev)
        return projected is not None and projected < NEAR_BASELINE * base
    user, suggested = ev.get("user_lr"), ev.get("lr_suggested")
    return bool(user and suggested and suggested >= SLOW_LR_RATIO * user and still_falling(ev))


def still_falling(ev: Evidence) -> bool:
    """The validation loss made 10% or more of its whole fall in the last quarter of the run."""
    share = late_share(val_curve(ev)[0])
    return share is not None and share >= STILL_FALLING


def judge_symptom(ev: Evidence) -> str:
    """The symptom of the instrumented run, or ``unknown`` when it produced no validation loss."""
    if ev.get("stopped") == "diverged":
        return "diverging"
    if not val_curve(ev)[0]:
        return "unknown"
    for name, applies in (("diverging", diverging), ("unstable", unstable), ("not-learning", not_learning),
                          ("overfitting", overfitting), ("learning-slowly", learning_slowly)):
        if applies(ev):
            return name
    return "healthy"
