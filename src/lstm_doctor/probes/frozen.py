"""Parameters that never train during the instrumented run (M212 evidence).

The static half (``requires_grad=False``, left out of the optimizer) is read by
the model inspection; this probe watches what actually happens: every
parameter is compared before the first and after the last optimizer step, and
the first backward pass shows which trainable parameters get no gradient at
all (the forward pass never uses them). A parameter counts as never updated
when not one of its values changed over a run of at least one step.

Evidence written: ``parameters_never_updated`` ({name: count}, every parameter
whose values all stayed as they were, frozen ones included),
``parameters_without_gradient`` ({name: count}, trainable but no gradient),
``parameters_stalled`` ({name: count}, never updated although they are in the optimizer
with a positive learning rate and the backward pass reaches them: their gradient vanished
or their steps were below float resolution),
``recurrent_parameters`` (names of the parameters that belong to recurrent
layers), ``parameter_total`` (all parameter values), ``frozen_check_steps``.
"""

from __future__ import annotations

import torch
from torch import nn

from lstm_doctor.probes.context import ProbeContext
from lstm_doctor.training import Callback, TrainState


class UpdateWatch(Callback):
    """Keeps a copy of the weights at the start and compares at the end (one extra copy of the model)."""

    def __init__(self, ctx: ProbeContext):
        self.ctx = ctx
        self.start: dict[str, torch.Tensor] = {}
        self.without_grad: dict[str, int] | None = None

    def on_train_begin(self, state: TrainState) -> None:
        self.start = {n: p.detach().clone() for n, p in state.model.named_parameters()}

    def after_backward(self, state: TrainState) -> None:
        if self.without_grad is None:
            self.without_grad = {n: p.numel() for n, p in state.model.named_parameters() if p.requires_grad and p.grad is None}

    def on_train_end(self, state: TrainState) -> None:
        if state.step == 0 or not self.start:
            return  # no optimizer step was taken: nothing could have changed
        params = dict(state.model.named_parameters())
        recurrent = {f"{owner}.{n}" if owner else n for owner, m in state.model.named_modules()
                     if isinstance(m, (nn.RNNBase, nn.RNNCellBase)) for n, _ in m.named_parameters()}
        never = {n: p.numel() for n, p in params.items() if torch.equal(p.detach(), self.start[n])}
        rates = {id(p): group["lr"] for group in state.optimizer.param_groups for p in group["params"]}
        # In the optimizer with a rate and reached by the backward pass, yet no value moved: the gradient
        # vanished (saturated gates give exact zeros in float32) or each step fell below float
        # resolution. The weights stalled; nothing froze them.
        stalled = {n: never[n] for n in never if params[n].grad is not None and rates.get(id(params[n]), 0) > 0}
        self.ctx.evidence.update(
            parameters_never_updated=never,
            parameters_stalled=stalled,
            parameters_without_gradient=self.without_grad or {},
            recurrent_parameters=sorted(recurrent & set(params)),
            parameter_total=sum(p.numel() for p in params.values()),
            frozen_check_steps=state.step,
        )
        self.start = {}


def frozen(ctx: ProbeContext) -> None:
    """Register the update watch on the instrumented training run."""
    ctx.instruments.append(UpdateWatch(ctx))
