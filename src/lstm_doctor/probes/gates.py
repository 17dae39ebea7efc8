"""Gate activity of the recurrent layers: saturation, cell-state size and dead units, over the training run.

PyTorch's fused LSTM/GRU kernels never expose their gates, so the gates are
recomputed step by step from each layer's own weights, for every layer and
direction, on a fixed batch of training windows (the inputs each recurrent
module receives are caught with forward hooks that exist only during the probe
pass). ``tests/test_gate_recompute.py`` proves the recomputed hidden states equal
the fused layer's output.

Saturation: a sigmoid gate below ``SIGMOID_EDGE`` (0.05) or above ``1 - SIGMOID_EDGE``
(its slope is then under 0.048, a fifth of its peak 0.25), a tanh activation
beyond ``TANH_EDGE`` (0.95; slope under 0.1 of its peak). Gradients through a
saturated gate are scaled by that slope at every step. A dead unit is a hidden
unit whose output varies by less than ``DEAD_STD`` (on the [-1, 1] scale of its
activation) across the probe windows and their steps, at every measurement in
the second half of the run.

Evidence written: ``gate_saturation`` ({"layer0.forget": share of saturated
activations} at the last measurement), ``gate_saturation_init`` (before
training), ``cell_norm`` (RMS cell state at the last measurement, LSTM only),
``dead_units`` ({layer: count}), ``hidden_units`` ({layer: units}),
``dead_unit_fraction``, ``gate_steps`` (steps measured).
Plot: ``gates`` (adds ``dead_units`` per layer and measurement).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lstm_doctor.probes.context import ProbeContext
from lstm_doctor.probes.instrument import probe_batch, probing, sampled, step_mask
from lstm_doctor.training import Callback, TrainState, _forward

SIGMOID_EDGE = 0.05
TANH_EDGE = 0.95
DEAD_STD = 1e-3

# Gate names in PyTorch's stacking order, and which of them are tanh (the rest are sigmoids).
GATES = {"LSTM": ("input", "forget", "cell", "output"), "GRU": ("reset", "update", "new"), "RNN_TANH": ("tanh",), "RNN_RELU": ()}
TANH_GATES = {"cell", "new", "tanh"}


@dataclass
class LayerTrace:
    """One layer and direction, recomputed: gate activations, outputs and cell states, each (batch, steps, units)."""

    name: str
    gates: dict[str, torch.Tensor]
    h: torch.Tensor
    c: torch.Tensor | None = None


def _initial(hx, index: int, batch: int, size: int, like: torch.Tensor) -> torch.Tensor:
    if hx is None:
        return like.new_zeros(batch, size)
    return hx[index] if hx.dim() == 3 else hx[index].unsqueeze(0)


def recompute(rnn: nn.RNNBase, x: torch.Tensor, hx=None) -> list[LayerTrace]:
    """Every layer's gates and states for input ``x`` (as the module takes it), from its weights.

    Follows PyTorch's equations for ``nn.LSTM`` (with ``proj_size``), ``nn.GRU``
    and ``nn.RNN``; ``hx`` is the initial state the module was given, if any.
    """
    if x.dim() == 2:  # unbatched input: a batch of one
        x = x.unsqueeze(0 if rnn.batch_first else 1)
    if not rnn.batch_first:
        x = x.transpose(0, 1)
    h0, c0 = hx if isinstance(hx, tuple) else (hx, None)
    batch, steps = x.shape[:2]
    directions = 2 if rnn.bidirectional else 1
    out_size = getattr(rnn, "proj_size", 0) or rnn.hidden_size
    traces: list[LayerTrace] = []
    layer_input = x
    for layer in range(rnn.num_layers):
        outputs = []
        for d in range(directions):
            suffix = f"_l{layer}" + ("_reverse" if d else "")
            w_ih, w_hh = getattr(rnn, "weight_ih" + suffix), getattr(rnn, "weight_hh" + suffix)
            b_ih = getattr(rnn, "bias_ih" + suffix) if rnn.bias else None
            b_hh = getattr(rnn, "bias_hh" + suffix) if rnn.bias else None
            w_hr = getattr(rnn, "weight_hr" + suffix, None)
            index = layer * directions + d
            h = _initial(h0, index, batch, out_size, x)
            c = _initial(c0, index, batch, rnn.hidden_size, x) if rnn.mode == "LSTM" else None
            pre = F.linear(layer_input, w_ih, b_ih)  # input part of every gate, all steps at once
            acts: dict[str, list[torch.Tensor]] = {g: [] for g in GATES[rnn.mode]}
            hs, cs = [], []
            for t in (range(steps - 1, -1, -1) if d else range(steps)):
                rec = F.linear(h, w_hh, b_hh)
                if rnn.mode == "LSTM":
                    i, f, g, o = (pre[:, t] + rec).chunk(4, dim=-1)
                    i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
                    c = f * c + i * g
                    h = o * c.tanh()
                    if w_hr is not None:
                        h = F.linear(h, w_hr)
                    gates = (i, f, g, o)
                    cs.append(c)
                elif rnn.mode == "GRU":
                    xr, xz, xn = pre[:, t].chunk(3, dim=-1)
                    hr, hz, hn = rec.chunk(3, dim=-1)
                    r, z = (xr + hr).sigmoid(), (xz + hz).sigmoid()
                    n = (xn + r * hn).tanh()
                    h = (1 - z) * n + z * h
                    gates = (r, z, n)
                else:
                    h = (pre[:, t] + rec).tanh() if rnn.mode == "RNN_TANH" else (pre[:, t] + rec).relu()
                    gates = (h,) if rnn.mode == "RNN_TANH" else ()
                for name, a in zip(acts, gates):
                    acts[name].append(a)
                hs.append(h)
            order = slice(None, None, -1 if d else 1)  # back to time order
            stack = lambda seq: torch.stack(seq[order], dim=1)  # noqa: E731
            trace = LayerTrace(f"layer{layer}" + ("_reverse" if d else ""), {k: stack(v) for k, v in acts.items()},
                               stack(hs), stack(cs) if cs else None)
            traces.append(trace)
            outputs.append(trace.h)
        layer_input = torch.cat(outputs, dim=-1)
    return traces


def trace_model(model: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None) -> dict[str, list[LayerTrace]]:
    """Recompute every recurrent module of ``model`` on one batch, keyed by module name.

    The inputs each recurrent module receives are caught with forward hooks that
    live only for this pass. Packed sequences are skipped (their padding layout
    is the module's own business).
    """
    caught: dict[str, tuple] = {}
    modules = {name: m for name, m in model.named_modules() if isinstance(m, nn.RNNBase)}

    def catch(name: str):
        def hook(module, args, kwargs):
            first = args[0] if args else kwargs.get("input")
            if name not in caught and isinstance(first, torch.Tensor):
                hx = args[1] if len(args) > 1 else kwargs.get("hx")
                caught[name] = (first.detach(), hx)
        return hook

    handles = [m.register_forward_pre_hook(catch(name), with_kwargs=True) for name, m in modules.items()]
    try:
        with probing(model), torch.no_grad():
            _forward(model, x, lengths)
            return {name: recompute(modules[name], *caught[name]) for name in modules if name in caught}
    finally:
        for handle in handles:
            handle.remove()


def saturation(trace: LayerTrace, mask: torch.Tensor) -> dict[str, float]:
    """Share of saturated activations of each gate, over the real (unpadded) steps."""
    shares = {}
    for name, a in trace.gates.items():
        a = a[mask]
        hit = a.abs() > TANH_EDGE if name in TANH_GATES else (a < SIGMOID_EDGE) | (a > 1 - SIGMOID_EDGE)
        shares[name] = float(hit.float().mean())
    return shares


def unit_spread(trace: LayerTrace, mask: torch.Tensor) -> torch.Tensor:
    """Standard deviation of each hidden unit's output over the real steps of every window."""
    return trace.h[mask].double().std(dim=0, unbiased=False)


class GateMonitor(Callback):
    """Recomputes the gates on the probe batch at the start, every ``probe_every`` steps and at the end."""

    def __init__(self, ctx: ProbeContext):
        self.ctx = ctx
        self.every = ctx.budget.probe_every
        self.batch = probe_batch(ctx.setup.data.train)
        self.steps: list[int] = []
        self.saturation: dict[str, list[float]] = {}
        self.cell_norm: list[float] = []
        self.spread: list[dict[str, torch.Tensor]] = []

    def _measure(self, state: TrainState) -> None:
        device = next(state.model.parameters()).device
        x, _, lengths = (None if t is None else t.to(device) for t in self.batch)
        traced = trace_model(state.model, x, lengths)
        if not traced:
            return
        mask = step_mask(lengths, x.shape[0], x.shape[1], device)
        prefix = len(traced) > 1
        shares, spread, cells = {}, {}, []
        for module, traces in traced.items():
            for trace in traces:
                if trace.h.shape[:2] != mask.shape:
                    continue  # the module reads other axes than the windows' (batch and time swapped: M208)
                if not torch.isfinite(trace.h).all():
                    return  # a diverged model has nothing left to measure
                layer = f"{module}.{trace.name}" if prefix else trace.name
                shares.update({f"{layer}.{gate}": share for gate, share in saturation(trace, mask).items()})
                spread[layer] = unit_spread(trace, mask)
                if trace.c is not None:
                    cells.append(float(trace.c[mask].double().pow(2).mean().sqrt()))
        for key, share in shares.items():
            self.saturation.setdefault(key, []).append(share)
        self.steps.append(state.step)
        self.spread.append(spread)
        self.cell_norm.append(sum(cells) / len(cells) if cells else None)

    def on_train_begin(self, state: TrainState) -> None:
        self._measure(state)

    def after_step(self, state: TrainState) -> None:
        if sampled(state.step, self.every):
            self._measure(state)

    def on_train_end(self, state: TrainState) -> None:
        if not self.steps or self.steps[-1] != state.step:
            self._measure(state)
        if not self.steps:
            return
        late = self.spread[len(self.spread) // 2 :]  # the second half of the measurements
        dead = {layer: int(torch.stack([s[layer] < DEAD_STD for s in late]).all(dim=0).sum()) for layer in late[-1]}
        units = {layer: int(s.numel()) for layer, s in late[-1].items()}
        ev = self.ctx.evidence
        ev.update(
            gate_saturation={k: v[-1] for k, v in self.saturation.items()},
            gate_saturation_init={k: v[0] for k, v in self.saturation.items()},
            cell_norm=self.cell_norm[-1],
            dead_units=dead,
            hidden_units=units,
            dead_unit_fraction=sum(dead.values()) / max(sum(units.values()), 1),
            gate_steps=list(self.steps),
        )
        self.ctx.plots["gates"] = {
            "steps": self.steps,
            "saturation": self.saturation,
            "cell_norm": self.cell_norm,
            "dead_units": {layer: [int((s[layer] < DEAD_STD).sum()) for s in self.spread] for layer in units},
        }


def gates(ctx: ProbeContext) -> None:
    """Register the gate monitor on the instrumented training run."""
    ctx.instruments.append(GateMonitor(ctx))
