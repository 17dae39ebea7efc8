"""A wider twin: the setup trained again with more units, when the model is narrow.

M203 (too little capacity) asks whether a narrow model leaves on the table what
a model with room for the data's patterns would reach. A linear model on the
flattened window is one yardstick, but a weak one where those patterns are not
linear: on BasicMotions a logistic regression reaches 0.59 balanced accuracy,
an LSTM(16) 0.79-1.0, and a 2-unit LSTM at 0.61 "beats linear". This probe
trains the same setup (data, loss, optimizer and rate, batch, seed, the same
step cap as the run at the user's settings, through the same training loop)
with every recurrent layer ``WIDER`` times as wide, at least ``LEAST`` units,
and keeps its validation curve. Trained exactly as long, its lead over the
user's model is what the units alone make: more epochs (T312) or another rate
(T301, T302) would help the twin as much.

It runs only for a narrow model (fewer than ``NARROW_UNITS`` units or fewer
units than input features) built from a setup file's ``model`` section: a model
of the user's own class cannot be widened from outside.

Evidence written: ``wider_hidden`` (the twin's units), ``wider_val_history`` (its
validation records, as ``val_history``), ``wider_stopped``.
"""

from __future__ import annotations

from dataclasses import replace

from lstm_doctor.models import build_model
from lstm_doctor.probes.context import ProbeContext
from lstm_doctor.probes.training_run import schedule

NARROW_UNITS = 8  # fewer units than this (or than input features) and the state must squeeze every step's inputs
WIDER = 4
LEAST = 16


def narrow(units: int, features: int) -> bool:
    """Whether a recurrent layer of ``units`` is narrow for ``features`` inputs (M203 judges only these)."""
    return units < max(NARROW_UNITS, features)


def wider_twin(ctx: ProbeContext) -> None:
    setup, ev = ctx.setup, ctx.evidence
    config = setup.config
    if config is None or not narrow(config.model.hidden, setup.data.n_features):
        return
    data = setup.data
    model = config.model.model_copy(update={"hidden": max(LEAST, WIDER * config.model.hidden)})
    twin = replace(setup, model_factory=lambda: build_model(model, data.n_features, data.n_outputs, data.per_step))
    cap, eval_every = schedule(ctx)  # validated as the run at the user's settings is, so that their best scores compare
    _, result = twin.train(max_steps=cap, eval_every=eval_every, deadline=ctx.deadline,
                           progress=f"training a {model.hidden}-unit twin" if ctx.progress else False)
    ev.update(wider_hidden=model.hidden, wider_val_history=result.val, wider_stopped=result.stopped)
