"""Gradient norms per layer, clipping, and update-to-weight ratios over the instrumented training run.

The total gradient norm is read at every step (one fused norm, or the value
``clip_grad_norm_`` already returns when the setup clips), so a single spike or
overflow is never missed; the per-layer norms, the mean absolute gradient and
the update-to-weight ratios are taken on sampled steps only. (``lstm_doctor.watch``
may read the total norm on fewer steps; ``grad_norm_steps`` says which.)

Evidence written: ``grad_steps`` (steps measured), ``grad_norm_steps`` (the
step of each total norm read), ``grad_norm_median``, ``grad_norm_max`` (finite
steps), ``grad_nonfinite_steps``, ``grad_first_nonfinite`` (step or None),
``grad_spike_ratios`` (per norm read: total norm over the median of the
previous ``SPIKE_HISTORY`` norms read, None before ``MIN_HISTORY`` of them),
``grad_norm_per_layer`` and ``grad_rms_per_layer`` ({layer: median over sampled
steps}), ``grad_layer_ratio`` (median RMS gradient of the first recurrent layer
over the last one's; None with one layer), ``grad_mean_abs_per_layer``
({layer: median over sampled steps of the mean |gradient|}), ``grad_recurrent_layers`` (which of
those layers are recurrent, in order), ``clip_norm``,
``clipped_fraction`` (share of steps whose norm exceeded ``clip_norm``; None
without clipping), ``update_ratio`` ({layer: median |Δw| / |w| per step}).
Plots: ``gradients``, ``update_ratio``.
"""

from __future__ import annotations

import math
import re
import statistics

import torch
from torch import nn

from lstm_doctor.probes.context import ProbeContext
from lstm_doctor.probes.instrument import Instrument, guarded, sampled
from lstm_doctor.training import TrainState

SPIKE_HISTORY = 50  # steps the running median looks back over
MIN_HISTORY = 10  # steps needed before a spike can be judged against them

_RECURRENT_PARAM = re.compile(r"_l(\d+)(_reverse)?$")


def layer_groups(model: nn.Module) -> tuple[dict[str, list[nn.Parameter]], list[str]]:
    """Trainable parameters by layer, and the recurrent layers among them in order.

    Each recurrent layer and direction is its own group (``rnn.l0``,
    ``rnn.l0_reverse``); every other parameter goes with its module (``head``).
    """
    groups: dict[str, list[nn.Parameter]] = {}
    recurrent: list[str] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        owner, _, leaf = name.rpartition(".")
        match = _RECURRENT_PARAM.search(leaf)
        if match and isinstance(model.get_submodule(owner), nn.RNNBase):
            key = f"{owner}.l{match[1]}{match[2] or ''}"
            if key not in recurrent:
                recurrent.append(key)
        else:
            key = owner or leaf
        groups.setdefault(key, []).append(p)
    return groups, recurrent


def _total(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The 2-norm of all ``tensors`` together, as a 0-dim tensor (no host sync).

    One fused kernel for the per-tensor norms where torch offers it, as
    clip_grad_norm_ does (torch's public get_total_norm spends ~0.3 ms per call in Python).
    """
    if not tensors:
        return torch.zeros(())
    foreach = getattr(torch, "_foreach_norm", None)
    norms = foreach(tensors) if foreach is not None else [torch.linalg.vector_norm(t) for t in tensors]
    return torch.linalg.vector_norm(torch.stack([n.float() for n in norms]))


def _norm(tensors: list[torch.Tensor]) -> float:
    return float(_total(tensors))


def _flat(params: list[nn.Parameter]) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in params])


def _median(values: list[float]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.median(finite) if finite else None


def spike_ratios(norms: list[float]) -> list[float | None]:
    """Each norm over the median of the previous ``SPIKE_HISTORY`` finite norms (of every step, or of the steps read)."""
    ratios: list[float | None] = []
    for i, value in enumerate(norms):
        history = [v for v in norms[max(0, i - SPIKE_HISTORY) : i] if math.isfinite(v)]
        if len(history) < MIN_HISTORY or not math.isfinite(value):
            ratios.append(None)
            continue
        base = statistics.median(history)
        ratios.append(value / base if base > 0 else None)
    return ratios


class GradientMonitor(Instrument):
    """Reads gradients after each backward pass and weights around sampled optimizer steps."""

    def __init__(self, ctx: ProbeContext):
        super().__init__(ctx)
        self.every = ctx.budget.probe_every
        self.clip = ctx.setup.clip_norm
        self.totals: list[float | torch.Tensor] = []  # tensors until the run ends: no host sync per step
        self.total_steps: list[int] = []  # the step of each total
        self.steps: list[int] = []
        self.per_layer: dict[str, list[float]] = {}
        self.rms: dict[str, list[float]] = {}
        self.mean_abs: dict[str, list[float]] = {}
        self.ratio_steps: list[int] = []
        self.update: dict[str, list[float]] = {}
        self.before: dict[str, torch.Tensor] | None = None

    @guarded
    def on_train_begin(self, state: TrainState) -> None:
        self.groups, self.recurrent = layer_groups(state.model)
        self.params = [p for ps in self.groups.values() for p in ps]
        self.sizes = {k: sum(p.numel() for p in ps) for k, ps in self.groups.items()}

    @guarded
    def after_backward(self, state: TrainState) -> None:
        if self.clip is None:  # with clipping, clip_grad_norm_ hands us the same number in after_step
            self.totals.append(_total([p.grad.detach() for p in self.params if p.grad is not None]))
            self.total_steps.append(state.step)
        if not sampled(state.step, self.every):
            return
        self.steps.append(state.step)
        for key, ps in self.groups.items():
            grads = [p.grad for p in ps if p.grad is not None]
            norm = _norm(grads)
            self.per_layer.setdefault(key, []).append(norm)
            self.rms.setdefault(key, []).append(norm / math.sqrt(self.sizes[key]))
            self.mean_abs.setdefault(key, []).append(sum(float(g.abs().sum()) for g in grads) / self.sizes[key])
        self.before = {k: _flat(ps).clone() for k, ps in self.groups.items()}

    @guarded
    def after_step(self, state: TrainState) -> None:
        if self.clip is not None and state.grad_norm is not None:
            self.totals.append(state.grad_norm)
            self.total_steps.append(state.step - 1)
        if self.before is None:
            return
        self.ratio_steps.append(state.step - 1)
        for key, ps in self.groups.items():
            old = self.before[key]
            ratio = float((_flat(ps) - old).norm() / old.norm()) if float(old.norm()) > 0 else float("nan")
            self.update.setdefault(key, []).append(ratio)
        self.before = None

    def _layer_ratio(self) -> float | None:
        """Median over sampled steps of the first recurrent layer's RMS gradient over the last's (directions pooled)."""
        depths: dict[str, list[str]] = {}
        for key in self.recurrent:
            depths.setdefault(key.removesuffix("_reverse"), []).append(key)
        if len(depths) < 2:
            return None
        first, last = list(depths.values())[0], list(depths.values())[-1]

        def pooled(keys: list[str], i: int) -> float:
            return math.sqrt(sum(self.per_layer[k][i] ** 2 for k in keys) / sum(self.sizes[k] for k in keys))

        ratios = [pooled(first, i) / pooled(last, i) for i in range(len(self.steps)) if pooled(last, i) > 0]
        return _median(ratios)

    @guarded
    def on_train_end(self, state: TrainState) -> None:
        self.totals = [float(v) for v in self.totals]
        finite = [v for v in self.totals if math.isfinite(v)]
        nonfinite = [i for i, v in enumerate(self.totals) if not math.isfinite(v)]
        clipped = None
        if self.clip is not None and self.totals:
            clipped = sum(v > self.clip for v in self.totals if math.isfinite(v)) / len(self.totals)
        update = {k: _median(v) for k, v in self.update.items()}
        self.ctx.evidence.update(
            grad_steps=len(self.totals),
            grad_norm_steps=self.total_steps,
            grad_norm_median=statistics.median(finite) if finite else None,
            grad_norm_max=max(finite) if finite else None,
            grad_nonfinite_steps=len(nonfinite),
            grad_first_nonfinite=self.total_steps[nonfinite[0]] if nonfinite else None,
            grad_spike_ratios=spike_ratios(self.totals),
            grad_norm_per_layer={k: _median(v) for k, v in self.per_layer.items()},
            grad_rms_per_layer={k: _median(v) for k, v in self.rms.items()},
            grad_layer_ratio=self._layer_ratio(),
            grad_mean_abs_per_layer={k: _median(v) for k, v in self.mean_abs.items()},
            grad_recurrent_layers=list(self.recurrent),
            clip_norm=self.clip,
            clipped_fraction=clipped,
            update_ratio=update,
        )
        self.ctx.plots["gradients"] = {
            "steps": self.steps, "per_layer": self.per_layer, "clipped_fraction": clipped, "total": self.totals,
            "total_steps": self.total_steps,
        }
        self.ctx.plots["update_ratio"] = {"steps": self.ratio_steps, "per_layer": self.update}


def gradients(ctx: ProbeContext) -> None:
    """Register the gradient monitor on the instrumented training run."""
    ctx.instruments.append(GradientMonitor(ctx))
