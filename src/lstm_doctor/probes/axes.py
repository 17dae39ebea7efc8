"""Which axis each recurrent layer reads as time, and whether the samples of a batch mix (M208 evidence).

Two measurements on a fresh copy of the model and a fixed batch of training
windows whose size differs from the number of steps:

- Layout: forward pre-hooks record the tensor each recurrent module receives.
  With ``batch_first=False`` the module takes axis 0 as time; when that axis has
  the batch's length (and the other the sequence length), the module runs along
  the batch, e.g. ``nn.LSTM(batch_first=False)`` fed ``(batch, steps, features)``.
- Independence: each sample's output must depend on its own input alone. The
  batch is passed once as is and once in reverse order; a sample's output
  changes with its neighbours exactly when the model mixes samples, which is
  what a recurrence along the batch axis does. Two no-grad passes in eval mode
  (dropout off, normalization on running statistics, so neither mixes samples
  or draws random numbers) work for any input dtype, token ids included.

Evidence written: ``recurrent_inputs`` ([{"layer", "batch_first", "shape",
"time_axis_length"}] per recurrent module called), ``batch_as_time`` (modules
whose time axis has the batch's length), ``sample_mixing`` (largest change of a
sample's output when the other samples change, over the spread of the outputs
across samples; 0 for independent samples), ``axes_probe_batch`` and
``axes_probe_steps``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lstm_doctor.probes.context import ProbeContext
from lstm_doctor.probes.instrument import probe_batch, probing
from lstm_doctor.training import _forward

PROBE_SIZE = 8  # samples: a batch size that differs from the steps, and cheap


def _batch_size(steps: int, available: int) -> int:
    size = min(PROBE_SIZE, available)
    return size - 1 if size == steps and size > 2 else size


def _layouts(model: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """The model's output for ``x`` and the layout of the tensor each recurrent module received."""
    seen: list[dict[str, Any]] = []
    names = {m: n for n, m in model.named_modules() if isinstance(m, nn.RNNBase)}

    def record(module: nn.RNNBase, args: tuple) -> None:
        first = args[0] if args else None
        if isinstance(first, torch.Tensor) and first.dim() == 3 and all(s["layer"] != names[module] for s in seen):
            seen.append({"layer": names[module], "batch_first": module.batch_first, "shape": list(first.shape),
                         "time_axis_length": int(first.shape[1] if module.batch_first else first.shape[0])})

    handles = [m.register_forward_pre_hook(record) for m in names]
    try:
        out = _forward(model, x, lengths)
    finally:
        for h in handles:
            h.remove()
    return out, seen


def sample_mixing(out: torch.Tensor, out_reversed: torch.Tensor) -> float:
    """Largest change of a sample's output between the two batch orders, over the outputs' spread across samples."""
    a = out.reshape(len(out), -1).double()
    b = out_reversed.flip(0).reshape(len(out), -1).double()
    spread = float(a.std(dim=0, unbiased=False).mean()) if len(a) > 1 else 0.0
    scale = max(spread, float(a.abs().mean()) * 1e-3, 1e-12)
    return float((a - b).abs().max()) / scale


def axes(ctx: ProbeContext) -> None:
    setup = ctx.setup
    train = setup.data.train
    steps = train.steps
    size = _batch_size(steps, len(train))
    x, _, lengths = probe_batch(train, size)
    model = setup.new_model()
    device = next(model.parameters()).device
    x, lengths = x.to(device), None if lengths is None else lengths.to(device)
    with probing(model), torch.no_grad():
        model.eval()  # no dropout anywhere and no backward pass: eval mode suits every device
        out, seen = _layouts(model, x, lengths)
        mixing = None
        if len(x) > 1 and torch.isfinite(out).all():
            reversed_out = _forward(model, x.flip(0), None if lengths is None else lengths.flip(0))
            mixing = sample_mixing(out, reversed_out)
    batch = len(x)
    ctx.evidence.update(
        recurrent_inputs=seen,
        batch_as_time=[s["layer"] for s in seen if batch != steps and s["time_axis_length"] == batch
                       and steps in s["shape"][:2]],
        sample_mixing=mixing,
        axes_probe_batch=batch,
        axes_probe_steps=steps,
    )
