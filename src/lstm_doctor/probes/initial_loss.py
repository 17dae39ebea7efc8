"""The loss at initialization against what the output layer should give (Karpathy's "verify loss @ init").

Before any training the validation loss is predictable: an output layer that
starts neutral (zero before its activation) gives ln C for C classes with
cross-entropy, ln 2 with binary cross-entropy, and mean(y^2) with MSE; a
well-initialized one (bias at the target mean or the log class priors) gives
the best constant's loss. A measured loss far above the first means the
untrained network's outputs are far from neutral (large initial weights, an
activation that pushes them); the first far above the second means the
targets sit far from where any untrained output starts (an unscaled target,
extreme class priors).

Evidence written: ``initial_val`` (the untrained model's validation loss and
metrics; the training run's curve starts from it), ``initial_loss``,
``zero_output_loss`` (the neutral output's loss), ``expected_initial_loss``
(the best constant's loss: the training mean or the class priors).
"""

from __future__ import annotations

import torch

from lstm_doctor.models import ACTIVATIONS
from lstm_doctor.probes.baselines import constant_output
from lstm_doctor.probes.context import ProbeContext
from lstm_doctor.training import evaluate


def initial_loss(ctx: ProbeContext) -> None:
    setup, ev = ctx.setup, ctx.evidence
    data, objective = setup.data, setup.objective
    initial = evaluate(setup.new_model(), objective, data.val, data)
    y, lengths = data.val.labels()
    best_constant = constant_output(data, objective)
    # The head's activation turns a zero pre-activation into its neutral output (0.5 for a sigmoid, ...).
    activation = ACTIVATIONS[setup.config.model.output_activation]() if setup.config is not None else torch.nn.Identity()
    neutral = activation(torch.zeros_like(best_constant))
    ev.update(
        initial_val=initial,
        initial_loss=initial["loss"],
        zero_output_loss=float(objective(neutral, y, lengths)),
        expected_initial_loss=float(objective(best_constant, y, lengths)),
    )
