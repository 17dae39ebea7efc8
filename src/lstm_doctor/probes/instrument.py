"""What the training-run instruments share: their schedule, a fixed probe batch, and passes that leave no trace.

The instruments (gradients, memory length, gates, predictions) ride along the
instrumented training run as callbacks. They look at the model every
``budget.probe_every`` steps, at the first step and at the end, and they must
not change what they watch: the run with instruments trains exactly like the
run without them (same weights, same random stream, same loss curve).
"""

from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING, Callable, Iterator

import torch
from torch import nn

from lstm_doctor.data.windows import Windows
from lstm_doctor.training import Callback, TrainState

if TYPE_CHECKING:
    from lstm_doctor.probes.context import ProbeContext

PROBE_BATCH = 32  # windows: enough for stable medians, cheap enough to pass every few dozen steps


def sampled(step: int, every: int) -> bool:
    """True at the steps an instrument measures: the first, then every ``every``."""
    return step % max(every, 1) == 0


def probe_batch(windows: Windows, size: int = PROBE_BATCH) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """A fixed batch of evenly spaced windows (no random draw, so the run's random stream is untouched)."""
    idx = torch.linspace(0, len(windows) - 1, steps=min(size, len(windows))).round().long().unique()
    return windows.batch(idx)


def step_mask(lengths: torch.Tensor | None, batch: int, steps: int, device: torch.device) -> torch.Tensor:
    """(batch, steps) True at real steps, False at padding."""
    if lengths is None:
        return torch.ones(batch, steps, dtype=torch.bool, device=device)
    return torch.arange(steps, device=device)[None, :] < lengths.to(device)[:, None]


@contextlib.contextmanager
def probing(model: nn.Module) -> Iterator[None]:
    """A pass over ``model`` that changes nothing about its training.

    Dropout is off and normalization layers use (and do not update) their
    running statistics: every module goes to eval mode, except the recurrent
    layers, which stay in train mode with their inter-layer dropout set to 0,
    because cuDNN runs an RNN's backward pass only in train mode. Torch's random
    state and every module's mode and dropout are restored on exit.
    """
    modes = {m: m.training for m in model.modules()}
    rnn_dropout = {m: m.dropout for m in model.modules() if isinstance(m, nn.RNNBase)}
    devices = [p.device for p in model.parameters() if p.device.type == "cuda"][:1]
    with torch.random.fork_rng(devices=devices):
        try:
            model.eval()
            for m in rnn_dropout:
                m.train()
                m.dropout = 0.0
            yield
        finally:
            for m, mode in modes.items():
                m.training = mode
            for m, p in rnn_dropout.items():
                m.dropout = p


class Instrument(Callback):
    """A callback that measures for a probe; its hooks are wrapped with :func:`guarded`."""

    def __init__(self, ctx: "ProbeContext"):
        self.ctx = ctx
        self.failed = False


def guarded(hook: Callable[[Instrument, TrainState], None]) -> Callable[[Instrument, TrainState], None]:
    """A failing instrument is switched off and its error recorded (``instrument_errors``); training goes on."""

    @functools.wraps(hook)
    def run(self: Instrument, state: TrainState) -> None:
        if self.failed:
            return
        try:
            hook(self, state)
        except Exception as err:  # a measurement must never end the run it watches
            self.failed = True
            self.ctx.evidence.setdefault("instrument_errors", {})[type(self).__name__] = f"{type(err).__name__}: {err}"

    return run
