"""Whether the model's outputs depend on the padding of its sequences (M209 evidence, for any model).

For data with sequence lengths, a fresh copy of the model predicts a few
padded training sequences twice: as they are, and with every padded step
changed (real-valued inputs moved by 1, token ids replaced by the first real
token). A model that reads its sequences up to their lengths (packing, a
true-end readout, masking) gives the same outputs; one that reads the last
padded step, or averages over padding, does not. Eval mode, no gradients, no
random numbers.

Evidence written: ``padding_influence`` (largest change of an output over the
outputs' spread across the sequences; 0 when the padding is ignored) and
``padding_probe_sequences``. Not written without lengths or padded sequences.
"""

from __future__ import annotations

import torch

from lstm_doctor.probes.context import ProbeContext
from lstm_doctor.probes.instrument import probing
from lstm_doctor.training import _forward

PROBE_SIZE = 16


def repadded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``x`` with every step past its sequence's length changed."""
    pad = torch.arange(x.shape[1], device=x.device)[None, :] >= lengths[:, None].to(x.device)
    pad = pad.reshape(*pad.shape, *([1] * (x.dim() - 2))).expand_as(x)
    other = x + 1 if x.is_floating_point() else torch.full_like(x, int(x[0, 0].reshape(-1)[0]))
    return torch.where(pad, other, x)


def padding(ctx: ProbeContext) -> None:
    train = ctx.setup.data.train
    if train.lengths is None:
        return
    padded = torch.nonzero(train.lengths < train.steps).flatten()
    if len(padded) == 0:
        return
    idx = padded[torch.linspace(0, len(padded) - 1, steps=min(PROBE_SIZE, len(padded))).round().long().unique()]
    x, _, lengths = train.batch(idx)
    model = ctx.setup.new_model()
    device = next(model.parameters()).device
    x, lengths = x.to(device), lengths.to(device)
    with probing(model), torch.no_grad():
        model.eval()
        out = _forward(model, x, lengths).double()
        changed = _forward(model, repadded(x, lengths), lengths).double()
    if not (torch.isfinite(out).all() and torch.isfinite(changed).all()):
        return
    flat = out.reshape(len(out), -1)
    spread = float(flat.std(dim=0, unbiased=False).mean()) if len(flat) > 1 else 0.0
    scale = max(spread, float(flat.abs().mean()) * 1e-3, 1e-12)
    ctx.evidence.update(padding_influence=float((changed - out).abs().max()) / scale, padding_probe_sequences=len(idx))
