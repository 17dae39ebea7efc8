"""How far back the loss still feels the input: |dL/dx_t| per time step, at the start and the end of the run.

On a fixed batch of training windows, the gradient of the loss with respect to
each input step is taken (its norm over the features) and divided by the
gradient at the window's last real step; ``relative_grad[k]`` is the median of
that ratio over the windows at lag ``k``. The memory length is the largest lag
whose median still reaches ``REACH`` (1%) of the last step's: inputs further back
move the loss less than a hundredth as much, which mini-batch noise drowns.
With per-step targets the loss of the last real step alone is used, so later
steps' losses do not mask how far back one prediction reaches.

The far gain is the largest relative gradient over the oldest quarter of the
window: above 1, the backward pass amplifies going back in time rather than
fading, the signature of a recurrence that explodes (Pascanu et al., 2013).

Evidence written: ``memory_length`` (end of the run), ``memory_length_init``
(before training), ``memory_window`` (steps per window), ``memory_relative_grad``
(end of the run, per lag), ``memory_far_gain`` and ``memory_far_gain_init``.
Plot: ``memory_length``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from lstm_doctor.objective import Objective
from lstm_doctor.probes.context import ProbeContext
from lstm_doctor.probes.instrument import Instrument, guarded, probe_batch, probing
from lstm_doctor.training import TrainState, _forward

REACH = 0.01


def relative_input_gradient(
    model: nn.Module, objective: Objective, x: torch.Tensor, y: torch.Tensor, lengths: torch.Tensor | None,
) -> np.ndarray | None:
    """Median over windows of |dL/dx_(end-k)| / |dL/dx_end| per lag k; None when the gradient is not finite.

    Runs under :func:`probing`, so the model, its gradients and the random
    stream are left as they were (only the input is differentiated).
    """
    if not x.is_floating_point():  # token ids into an embedding: no gradient with respect to them
        return None
    steps = x.shape[1]
    ends = (lengths.to(x.device) - 1).clamp(min=0) if lengths is not None else torch.full((len(x),), steps - 1, device=x.device)
    with probing(model), torch.enable_grad():
        x = x.detach().clone().requires_grad_(True)
        out = _forward(model, x, lengths)
        if objective.per_step:
            rows = torch.arange(len(x), device=x.device)
            loss = objective(out[rows, ends].unsqueeze(1), y[rows, ends].unsqueeze(1))
        else:
            loss = objective(out, y, lengths)
        (grad,) = torch.autograd.grad(loss, x)
    return relative_profile(grad, ends)


def relative_profile(grad: torch.Tensor, ends: torch.Tensor) -> np.ndarray | None:
    """Median over windows of |grad at end-k| / |grad at end| per lag k, from input gradients ``(windows, steps, features)``.

    ``ends`` holds each window's last real step. Shared with ``lstm_doctor.watch``,
    which catches the input gradient of the user's own backward pass.
    """
    norms = grad.detach().norm(dim=-1).double()  # (windows, steps)
    if not torch.isfinite(norms).all():
        return None
    steps = norms.shape[1]
    ends = ends.to(norms.device)
    lags = torch.arange(steps, device=norms.device)
    idx = ends[:, None] - lags[None, :]  # step at lag k for each window
    valid = idx >= 0
    at_lag = norms.gather(1, idx.clamp(min=0))
    last = norms.gather(1, ends[:, None])
    ratio = torch.where(valid & (last > 0), at_lag / last.clamp(min=1e-300), torch.nan)
    return ratio.nanmedian(dim=0).values.cpu().numpy()


def memory_reach(relative: np.ndarray, reach: float = REACH) -> int:
    """The largest lag whose relative gradient is at least ``reach`` (0 when only the last step counts)."""
    reached = np.flatnonzero(np.nan_to_num(relative, nan=0.0) >= reach)
    return int(reached[-1]) if len(reached) else 0


def far_gain(relative: np.ndarray) -> float | None:
    """The largest relative gradient over the oldest quarter of the lags."""
    oldest = relative[-max(1, len(relative) // 4) :]
    finite = oldest[np.isfinite(oldest)]
    return float(finite.max()) if len(finite) else None


class MemoryLengthProbe(Instrument):
    """Measures the input-gradient profile before the first step and after the last."""

    def __init__(self, ctx: ProbeContext):
        super().__init__(ctx)
        self.batch = probe_batch(ctx.setup.data.train)
        self.init: np.ndarray | None = None

    def _measure(self, state: TrainState) -> np.ndarray | None:
        device = next(state.model.parameters()).device
        x, y, lengths = (None if t is None else t.to(device) for t in self.batch)
        return relative_input_gradient(state.model, state.objective, x, y, lengths)

    @guarded
    def on_train_begin(self, state: TrainState) -> None:
        self.init = self._measure(state)

    @guarded
    def on_train_end(self, state: TrainState) -> None:
        write_memory(self.ctx, self.batch[0].shape[1], self.init, self._measure(state))


def write_memory(ctx: ProbeContext, window: int, init: np.ndarray | None, end: np.ndarray | None) -> None:
    """The evidence and plot of the relative input-gradient profiles at the start and the end."""
    ev = ctx.evidence
    ev["memory_window"] = window
    ev["memory_length_init"] = None if init is None else memory_reach(init)
    ev["memory_length"] = None if end is None else memory_reach(end)
    ev["memory_relative_grad"] = None if end is None else _plain(end)
    ev["memory_far_gain_init"] = None if init is None else far_gain(init)
    ev["memory_far_gain"] = None if end is None else far_gain(end)
    ctx.plots["memory_length"] = {
        "lag": list(range(window)),
        "relative_grad": ev["memory_relative_grad"],
        "memory_length": ev["memory_length"],
        "window": window,
        "relative_grad_init": None if init is None else _plain(init),
        "memory_length_init": ev["memory_length_init"],
        "reach": REACH,
    }


def _plain(values: np.ndarray) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in values]


def memory_length(ctx: ProbeContext) -> None:
    """Register the memory-length probe on the instrumented training run."""
    ctx.instruments.append(MemoryLengthProbe(ctx))
