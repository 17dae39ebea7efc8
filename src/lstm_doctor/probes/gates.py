"""Gate activity of the recurrent layers: saturation, cell-state size and dead units, over the training run.

PyTorch's fused LSTM/GRU kernels never expose their gates, so the gates are
recomputed from each layer's own weights, for every layer and direction, on a
fixed batch of training windows (the inputs and outputs of each recurrent
module are caught with forward hooks that exist only during the probe pass).
A gate at step t depends on the input at t and the layer's previous output,
which the fused kernel has computed, so all steps' gates come from one matrix
product; the LSTM cell state is a scan over time. The layer's outputs are then
rebuilt from the recomputed gates alone, and ``tests/test_gate_recompute.py``
proves they equal the fused layer's, layer by layer and direction by direction.

Saturation: a sigmoid gate below ``SIGMOID_EDGE`` (0.05) or above ``1 - SIGMOID_EDGE``
(its slope is then under 0.048, a fifth of its peak 0.25), a tanh activation
beyond ``TANH_EDGE`` (0.95; slope under 0.1 of its peak). Gradients through a
saturated gate are scaled by that slope at every step. A dead unit is a hidden
unit, at every measurement in the second half of the run, either constant (its
output varies by less than ``DEAD_STD`` on the [-1, 1] scale of its activation,
across the probe windows and their steps) or stuck at its limits (beyond
``TANH_EDGE`` at 99% or more of them: it passes no gradient).

Evidence written: ``gate_saturation`` ({"layer0.forget": share of saturated
activations} at the last measurement), ``gate_saturation_init`` (before
training), ``cell_norm`` (RMS cell state at the last measurement, LSTM only),
``dead_units`` ({layer: count}), ``hidden_units`` ({layer: units}),
``dead_unit_fraction``, ``gate_steps`` (steps measured).
Plot: ``gates`` (adds ``dead_units`` per layer and measurement).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lstm_doctor.probes.context import ProbeContext
from lstm_doctor.probes.instrument import Instrument, guarded, probe_batch, probing, sampled, step_mask
from lstm_doctor.training import TrainState, _forward

SIGMOID_EDGE = 0.05
TANH_EDGE = 0.95
DEAD_STD = 1e-3
LIVE_SHARE = 0.01  # a unit inside its working range this rarely is saturated: SageMaker's threshold_inactivity (1%)
GATE_BATCH = 16  # windows: 16 x steps values per unit and gate; a pass costs about one training step
GATE_EVERY = 2  # in budget.probe_every steps: keeps the passes near 2% of the training

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
    return like.new_zeros(batch, size) if hx is None else hx[index]


def _tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh(x) as 2 * sigmoid(2x) - 1: equal to rounding, and several times faster than torch.tanh on CPU."""
    return (2 * x).sigmoid_().mul_(2).sub_(1)


def _layer_outputs(rnn: nn.RNNBase, layer: int, x: torch.Tensor, hx) -> torch.Tensor:
    """Layer ``layer``'s outputs at every step (batch, steps, directions * size), from the fused kernel.

    The fused module returns only its last layer's outputs, so the layer's own
    weights are run as a one-layer module of the same kind.
    """
    directions = 2 if rnn.bidirectional else 1
    kwargs = {"proj_size": rnn.proj_size} if getattr(rnn, "proj_size", 0) else {}
    if rnn.mode.startswith("RNN"):
        kwargs["nonlinearity"] = rnn.nonlinearity
    one = type(rnn)(x.shape[-1], rnn.hidden_size, num_layers=1, bias=rnn.bias, batch_first=True,
                    bidirectional=rnn.bidirectional, device="meta", **kwargs)
    params = {name.replace(f"_l{layer}", "_l0"): p for name, p in rnn.named_parameters() if f"_l{layer}" in name}
    state = None
    if hx is not None:
        part = slice(layer * directions, (layer + 1) * directions)
        state = tuple(h[part] for h in hx) if isinstance(hx, tuple) else hx[part]
    out, _ = torch.func.functional_call(one, params, (x,) if state is None else (x, state))
    return out


def _scan(u: torch.Tensor, f: torch.Tensor, c: torch.Tensor, reverse: bool) -> torch.Tensor:
    """Cell states c_t = f_t * c_(t-1) + u_t over the steps of (batch, steps, units) tensors."""
    cells = []
    for t in range(u.shape[1] - 1, -1, -1) if reverse else range(u.shape[1]):
        c = torch.addcmul(u[:, t], f[:, t], c)
        cells.append(c)
    return torch.stack(cells[::-1] if reverse else cells, dim=1)


def _direction(rnn: nn.RNNBase, suffix: str, x: torch.Tensor, out: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor | None,
               reverse: bool) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor | None]:
    """Gates, recomputed outputs and cell states of one layer and direction, all steps at once.

    A gate at step t depends on the input x_t and the previous output, which the
    fused kernel already computed (``out``), so every gate comes from one matrix
    product over all steps; only the LSTM cell state needs a scan over time.
    The outputs are then rebuilt from the gates alone, which is what the
    exactness test compares with the fused layer.
    """
    w_ih, w_hh = getattr(rnn, "weight_ih" + suffix), getattr(rnn, "weight_hh" + suffix)
    b_ih = getattr(rnn, "bias_ih" + suffix) if rnn.bias else None
    b_hh = getattr(rnn, "bias_hh" + suffix) if rnn.bias else None
    # The previous output at each step: the next step's for the reverse direction.
    h_prev = torch.cat([out[:, 1:], h0[:, None]], dim=1) if reverse else torch.cat([h0[:, None], out[:, :-1]], dim=1)
    size = rnn.hidden_size
    z_in, z_rec = F.linear(x, w_ih, b_ih), F.linear(h_prev, w_hh, b_hh)
    if rnn.mode == "LSTM":
        z = z_in + z_rec
        i, f, o = z[..., :size].sigmoid(), z[..., size : 2 * size].sigmoid(), z[..., 3 * size :].sigmoid()
        g = _tanh(z[..., 2 * size : 3 * size])
        c = _scan(i * g, f, c0, reverse)
        h = o * _tanh(c)
        w_hr = getattr(rnn, "weight_hr" + suffix, None)
        return {"input": i, "forget": f, "cell": g, "output": o}, h if w_hr is None else F.linear(h, w_hr), c
    if rnn.mode == "GRU":
        rz = (z_in[..., : 2 * size] + z_rec[..., : 2 * size]).sigmoid()
        r, u = rz[..., :size], rz[..., size:]
        n = _tanh(torch.addcmul(z_in[..., 2 * size :], r, z_rec[..., 2 * size :]))
        return {"reset": r, "update": u, "new": n}, torch.addcmul(n, u, h_prev - n), None  # (1 - z) * n + z * h
    h = _tanh(z_in + z_rec) if rnn.mode == "RNN_TANH" else (z_in + z_rec).relu()
    return ({"tanh": h} if rnn.mode == "RNN_TANH" else {}), h, None


def recompute(rnn: nn.RNNBase, x: torch.Tensor, hx=None, output: torch.Tensor | None = None) -> list[LayerTrace]:
    """Every layer's gates and states for input ``x`` (as the module takes it), from its weights.

    Follows PyTorch's equations for ``nn.LSTM`` (with ``proj_size``), ``nn.GRU``
    and ``nn.RNN``; ``hx`` is the initial state the module was given, if any, and
    ``output`` the module's own output for ``x``, when at hand (it saves a pass).
    """
    if x.dim() == 2:  # unbatched input: a batch of one
        x = x.unsqueeze(0 if rnn.batch_first else 1)
        output = None if output is None else output.unsqueeze(0 if rnn.batch_first else 1)
        hx = None if hx is None else tuple(h.unsqueeze(1) for h in hx) if isinstance(hx, tuple) else hx.unsqueeze(1)
    if not rnn.batch_first:
        x = x.transpose(0, 1)
        output = None if output is None else output.transpose(0, 1)
    h0, c0 = hx if isinstance(hx, tuple) else (hx, None)
    directions = 2 if rnn.bidirectional else 1
    out_size = getattr(rnn, "proj_size", 0) or rnn.hidden_size
    traces: list[LayerTrace] = []
    layer_input = x
    for layer in range(rnn.num_layers):
        last = layer == rnn.num_layers - 1
        out = output if last and output is not None else _layer_outputs(rnn, layer, layer_input, hx)
        for d in range(directions):
            index = layer * directions + d
            h = _initial(h0, index, len(x), out_size, x)
            c = _initial(c0, index, len(x), rnn.hidden_size, x) if rnn.mode == "LSTM" else None
            own = out[..., d * out_size : (d + 1) * out_size]
            gates, h_rec, cells = _direction(rnn, f"_l{layer}" + ("_reverse" if d else ""), layer_input, own, h, c, bool(d))
            traces.append(LayerTrace(f"layer{layer}" + ("_reverse" if d else ""), gates, h_rec, cells))
        layer_input = out
    return traces


def trace_model(model: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None) -> dict[str, list[LayerTrace]]:
    """Recompute every recurrent module of ``model`` on one batch, keyed by module name.

    The inputs and outputs of each recurrent module are caught with forward
    hooks that live only for this pass. Packed sequences are skipped (their
    padding layout is the module's own business).
    """
    caught: dict[str, tuple] = {}
    modules = {name: m for name, m in model.named_modules() if isinstance(m, nn.RNNBase)}

    def catch(name: str):
        def hook(module, args, kwargs, output):
            first = args[0] if args else kwargs.get("input")
            if name not in caught and isinstance(first, torch.Tensor):
                hx = args[1] if len(args) > 1 else kwargs.get("hx")
                caught[name] = (first, hx, output[0])
        return hook

    handles = [m.register_forward_hook(catch(name), with_kwargs=True) for name, m in modules.items()]
    try:
        with probing(model), torch.no_grad():
            _forward(model, x, lengths)
            return {name: recompute(modules[name], *caught[name]) for name in modules if name in caught}
    finally:
        for handle in handles:
            handle.remove()


def _real(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """(entries, units): the values at real steps (``mask`` None: every step is real)."""
    return values.reshape(-1, values.shape[-1]) if mask is None else values[mask]


def saturation(trace: LayerTrace, mask: torch.Tensor | None = None) -> dict[str, float]:
    """Share of saturated activations of each gate, over the real (unpadded) steps."""
    shares = {}
    for name, a in trace.gates.items():
        a = _real(a, mask)
        # |a - 0.5| > 0.45 is "below 0.05 or above 0.95" in one comparison.
        hit = a.abs() > TANH_EDGE if name in TANH_GATES else (a - 0.5).abs_() > 0.5 - SIGMOID_EDGE
        shares[name] = float(hit.sum()) / max(hit.numel(), 1)
    return shares


def dead(trace: LayerTrace, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Which hidden units are dead on this batch: constant (standard deviation under ``DEAD_STD``), or,
    for bounded activations, saturated (beyond ``TANH_EDGE``) in more than ``1 - LIVE_SHARE`` of the real steps."""
    h = _real(trace.h, mask)
    out = h.std(dim=0, unbiased=False) < DEAD_STD
    if trace.gates:  # LSTM, GRU and tanh outputs lie in [-1, 1]; a ReLU recurrence has no upper limit
        out |= (h.abs() <= TANH_EDGE).float().mean(dim=0) < LIVE_SHARE
    return out


class GateMonitor(Instrument):
    """Recomputes the gates on the probe batch at the start, every ``GATE_EVERY * probe_every`` steps and at the end."""

    def __init__(self, ctx: ProbeContext):
        super().__init__(ctx)
        self.every = GATE_EVERY * ctx.budget.probe_every
        self.batch = probe_batch(ctx.setup.data.train, GATE_BATCH)
        self.steps: list[int] = []
        self.saturation: dict[str, list[float]] = {}
        self.cell_norm: list[float] = []
        self.dead: list[dict[str, torch.Tensor]] = []

    def _measure(self, state: TrainState) -> None:
        device = next(state.model.parameters()).device
        x, _, lengths = (None if t is None else t.to(device) for t in self.batch)
        traced = trace_model(state.model, x, lengths)
        if not traced:
            return
        mask = None if lengths is None else step_mask(lengths, x.shape[0], x.shape[1], device)
        prefix = len(traced) > 1
        shares, deads, cells = {}, {}, []
        for module, traces in traced.items():
            for trace in traces:
                if trace.h.shape[:2] != x.shape[:2]:
                    continue  # the module reads other axes than the windows' (batch and time swapped: M208)
                if not torch.isfinite(trace.h).all():
                    return  # a diverged model has nothing left to measure
                layer = f"{module}.{trace.name}" if prefix else trace.name
                shares.update({f"{layer}.{gate}": share for gate, share in saturation(trace, mask).items()})
                deads[layer] = dead(trace, mask)
                if trace.c is not None:
                    cells.append(float(_real(trace.c, mask).pow(2).mean().sqrt()))
        for key, share in shares.items():
            self.saturation.setdefault(key, []).append(share)
        self.steps.append(state.step)
        self.dead.append(deads)
        self.cell_norm.append(sum(cells) / len(cells) if cells else None)

    @guarded
    def on_train_begin(self, state: TrainState) -> None:
        self._measure(state)

    @guarded
    def after_step(self, state: TrainState) -> None:
        if sampled(state.step, self.every):
            self._measure(state)

    @guarded
    def on_train_end(self, state: TrainState) -> None:
        if not self.steps or self.steps[-1] != state.step:
            self._measure(state)
        if not self.steps:
            return
        late = self.dead[len(self.dead) // 2 :]  # the second half of the measurements
        dead = {layer: int(torch.stack([d[layer] for d in late]).all(dim=0).sum()) for layer in late[-1]}
        units = {layer: int(d.numel()) for layer, d in late[-1].items()}
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
            "dead_units": {layer: [int(d[layer].sum()) for d in self.dead] for layer in units},
        }


def gates(ctx: ProbeContext) -> None:
    """Register the gate monitor on the instrumented training run."""
    ctx.instruments.append(GateMonitor(ctx))
