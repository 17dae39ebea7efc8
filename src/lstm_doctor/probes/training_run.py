"""The instrumented run at the user's own settings: loss curves over the setup's training.

The run is the setup's whole training when the budget affords it (``quick``: a
typical setup's), otherwise its first ``Budget.training_steps`` steps. The cap is
a number of steps from the budget's cost model, never a wall-clock time, so two
examinations of one setup see the same curve.

Evidence written: ``train_loss_steps``, ``train_loss_epochs``, ``val_history``,
``stopped``, ``diverged_at``, ``training_error``, ``steps_run``, ``steps_cap``
(steps the budget allowed), ``steps_planned`` (the setup's full training),
``steps_per_epoch``, ``batch_size``, ``epochs`` (the setup's), ``training_seconds``. Plot ``loss_curve`` (its ``val`` starts
with the untrained model's validation scores, ``initial_val``, when measured).
"""

from __future__ import annotations

import math

from lstm_doctor.budget import Workload
from lstm_doctor.probes.context import ProbeContext


def schedule(ctx: ProbeContext) -> tuple[int, int | None]:
    """The run's step cap and validation spacing (None: at each epoch's end)."""
    cap = ctx.budget.training_steps(Workload.of(ctx.setup))
    per_epoch = math.ceil(len(ctx.setup.data.train) / ctx.setup.batch_size)
    # Validate often enough for a curve even when the run is under ten epochs.
    return cap, (max(1, min(per_epoch, cap // 10)) if cap < 10 * per_epoch else None)


def training_run(ctx: ProbeContext) -> None:
    setup, ev = ctx.setup, ctx.evidence
    work = Workload.of(setup)
    cap, eval_every = schedule(ctx)
    per_epoch = math.ceil(len(setup.data.train) / setup.batch_size)
    _, result = setup.train(
        max_steps=cap, eval_every=eval_every, callbacks=ctx.instruments,
        deadline=ctx.deadline, progress="training at your settings" if ctx.progress else False,
    )
    ev.update(
        train_loss_steps=result.train_loss,
        train_loss_epochs=result.epoch_train_loss,
        val_history=result.val,
        stopped=result.stopped,
        diverged_at=result.diverged_at,
        training_error=result.error,
        steps_run=result.steps,
        steps_cap=cap,
        steps_planned=work.planned_steps,
        steps_per_epoch=per_epoch,
        batch_size=setup.batch_size,
        epochs=setup.epochs,
        training_seconds=result.seconds,
    )
    start = [{"epoch": 0, "step": 0, **ev["initial_val"]}] if ev.get("initial_val") else []
    ctx.plots["loss_curve"] = {
        "train_steps": result.train_loss,
        "val": start + result.val,
        "steps_per_epoch": per_epoch,
        "steps_planned": work.planned_steps,
        "stopped": result.stopped,
    }
