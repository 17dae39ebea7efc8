"""Ground truth for the effect families: does an injected fault really produce its effect?

Some families are named for an effect (saturated gates, logits far too large,
exploding gradients) and inject a cause that should produce it (weights drawn
too large). Whether it does is a fact about the case, measured here at
initialization on the case's own training windows, with code of its own rather
than lstm-doctor's probes, so that a family's expected code is checked against
the case and not against the rule that should find it. ``tests/test_zoo_smoke.py``
holds every level of these families to the catalog's definition of its code.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lstm_doctor import Setup

WINDOWS = 64  # training windows measured


def _batch(setup: Setup) -> tuple[torch.Tensor, torch.Tensor]:
    x, y, _ = setup.data.train.batch(np.arange(min(WINDOWS, len(setup.data.train))))
    return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)


def gate_saturation(setup: Setup, seed: int = 0) -> float:
    """Share of the first LSTM layer's input, candidate and output activations at their limits
    (sigmoid outside [0.05, 0.95], tanh beyond +-0.95), mean over those three gates and all steps,
    computed from the layer's weights with the LSTM equations written out."""
    rnn = setup.new_model(seed).rnn
    if not isinstance(rnn, torch.nn.LSTM):
        raise TypeError("gate saturation is measured on an LSTM")
    x, _ = _batch(setup)
    size = rnn.hidden_size
    h = c = torch.zeros(x.shape[0], size)
    pinned = {"input": [], "cell": [], "output": []}
    with torch.no_grad():
        bias = rnn.bias_ih_l0 + rnn.bias_hh_l0
        for t in range(x.shape[1]):
            i, f, g, o = (x[:, t] @ rnn.weight_ih_l0.T + h @ rnn.weight_hh_l0.T + bias).split(size, dim=1)
            i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
            pinned["input"].append(((i - 0.5).abs() > 0.45).float().mean())
            pinned["output"].append(((o - 0.5).abs() > 0.45).float().mean())
            pinned["cell"].append((g.abs() > 0.95).float().mean())
            c = f * c + i * g
            h = o * c.tanh()
    return float(np.mean([float(torch.stack(v).mean()) for v in pinned.values()]))


def initial_loss_ratio(setup: Setup, seed: int = 0) -> float:
    """The untrained model's cross-entropy over the best constant's (the class frequencies')."""
    if setup.data.task == "regression":
        raise TypeError("the initial-loss ratio is measured on a classification task")
    model = setup.new_model(seed)
    x, y = _batch(setup)
    with torch.no_grad():
        loss = float(setup.objective(model(x), y))
    counts = np.bincount(np.asarray(y).ravel().astype(int))
    p = counts[counts > 0] / counts.sum()
    return loss / float(-(p * np.log(p)).sum())


def gradient_growth(setup: Setup, seed: int = 0) -> float:
    """How many times larger the loss's gradient is at the oldest input step than at the last one,
    for the untrained model (median over windows): above 1, gradients grow going back in time."""
    model = setup.new_model(seed)
    x, y = _batch(setup)
    x.requires_grad_(True)
    setup.objective(model(x), y).backward()
    per_step = x.grad.norm(dim=2)  # (windows, steps)
    ratio = per_step[:, 0] / per_step[:, -1].clamp_min(1e-30)
    value = float(ratio.median())
    return value if math.isfinite(value) else float("inf")
