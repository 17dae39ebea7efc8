"""The instrumented run at the user's own settings: loss curves over (a capped part of) the setup's training.

Evidence written: ``train_loss_steps``, ``train_loss_epochs``, ``val_history``,
``stopped``, ``diverged_at``, ``training_error``, ``steps_run``,
``steps_planned`` (the setup's full training), ``steps_per_epoch``, ``initial_val``.
"""

from __future__ import annotations

import math

from lstm_doctor.probes.context import ProbeContext
from lstm_doctor.training import evaluate


def planned_steps(ctx: ProbeContext) -> int:
    s = ctx.setup
    return math.ceil(len(s.data.train) / s.batch_size) * s.epochs


def training_run(ctx: ProbeContext) -> None:
    setup, ev = ctx.setup, ctx.evidence
    planned = planned_steps(ctx)
    cap = min(planned, max(ctx.budget.train_steps, int(planned * ctx.budget.fraction_of_training)))
    model = setup.new_model()
    ev["initial_val"] = evaluate(model, setup.objective, setup.data.val, setup.data)
    per_epoch = math.ceil(len(setup.data.train) / setup.batch_size)
    # Validate often enough for a curve even when the capped run is under an epoch.
    eval_every = max(1, min(per_epoch, cap // 10)) if cap < 10 * per_epoch else None
    _, result = setup.train(
        max_steps=cap, eval_every=eval_every, callbacks=ctx.instruments,
        deadline=ctx.deadline, progress="training at your settings" if ctx.progress else False, model=model,
    )
    ev.update(
        train_loss_steps=result.train_loss,
        train_loss_epochs=result.epoch_train_loss,
        val_history=result.val,
        stopped=result.stopped,
        diverged_at=result.diverged_at,
        training_error=result.error,
        steps_run=result.steps,
        steps_planned=planned,
        steps_per_epoch=per_epoch,
        training_seconds=result.seconds,
    )
    ctx.plots["loss_curve"] = {
        "train_steps": result.train_loss,
        "val": result.val,
        "steps_per_epoch": per_epoch,
        "steps_planned": planned,
        "stopped": result.stopped,
    }
