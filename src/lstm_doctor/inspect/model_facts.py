"""Facts about the model's structure, read from a freshly built copy.

Works on any ``torch.nn.Module``: recurrent layers are found by type, weights are
read per layer and direction, and one no-grad forward pass on a few training
windows tells the output's shape and (when it is a module) its final activation.
What only a setup file can tell (readout, metrics) comes from ``setup.config``
and is left out (None) for the user's own models.

Evidence written:
  ``parameters`` (trainable count), ``model_class``,
  ``cells`` (one per recurrent module: lstm | gru | rnn), ``recurrent_layers`` (stacked
  depth), ``hidden_sizes`` (per stacked layer), ``bidirectional``,
  ``recurrent_nonlinearity`` ({module: tanh | relu} for plain RNNs), ``batch_first``,
  ``dropout_between_layers``, ``dropout_before_head`` (the strongest ``nn.Dropout`` module;
  the built-in model's sits before the head), ``dropout_max``,
  ``normalization_layers`` (class names), ``residual_paths`` (False for the built-in
  model, None when unknown), ``weight_decay``,
  ``output_activation`` (none | sigmoid | softmax | log_softmax | relu | tanh | None unknown),
  ``loss``, ``n_outputs``, ``target_range`` ([min, max] of the training targets as fed, regression),
  ``target_share_outside`` ({"0..1", "-1..1", "0..inf": share of training targets outside}),
  ``weight_std`` ({layer: {"input", "recurrent"}}), ``weight_std_default`` ({layer: PyTorch's
  default std}), ``weights_all_zero`` ([layers whose weights are all zero]),
  ``recurrent_radius`` ({layer: {gate: spectral radius}}), ``forget_bias`` ({layer: mean
  bias_ih + bias_hh of the forget gate}, LSTM), ``train_target_values``,
  ``frozen_parameters`` ({name: count}), ``parameters_not_in_optimizer`` ({name: count}),
  ``output_per_step``, ``target_per_step``, ``per_step_target_constant_share`` (per-step
  targets: share of training sequences whose target never changes), ``readout (last | mean | true-end | None),
  ``readout_directions`` (both | None), ``metrics`` (what the user watches),
  ``early_stopping`` (patience in epochs, None when off or unknown).
Padding is a data fact (``padding``, from the data inspection).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn

from lstm_doctor.setups import Setup

GATE_NAMES = {nn.LSTM: "ifgo", nn.GRU: "rzn", nn.RNN: "h"}
CELL_OF = {nn.LSTM: "lstm", nn.GRU: "gru", nn.RNN: "rnn", nn.LSTMCell: "lstm", nn.GRUCell: "gru", nn.RNNCell: "rnn"}
NORMS = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)
FINAL_ACTIVATIONS = {nn.Sigmoid: "sigmoid", nn.Softmax: "softmax", nn.LogSoftmax: "log_softmax", nn.ReLU: "relu",
                     nn.Tanh: "tanh", nn.Identity: "none", nn.Linear: "none"}
# Above this size the exact eigenvalues cost seconds; ARPACK finds the largest one.
_DENSE_EIG_MAX = 256


def spectral_radius(w: torch.Tensor) -> float:
    """Largest |eigenvalue| of a square matrix (one BLAS thread: small matrices, busy cores)."""
    a = w.detach().double().cpu().numpy()
    with threadpool_limits(1):
        if a.shape[0] <= _DENSE_EIG_MAX:
            return float(np.max(np.abs(np.linalg.eigvals(a))))
        from scipy.sparse.linalg import eigs

        return float(np.abs(eigs(a, k=1, which="LM", return_eigenvectors=False, tol=1e-3)[0]))


@torch.no_grad()
def _recurrent_weights(name: str, module: nn.RNNBase) -> dict[str, Any]:
    """Per stacked layer and direction: weight scales, spectral radius per gate, forget bias."""
    gates = GATE_NAMES[type(module)]
    h = module.hidden_size
    # PyTorch draws every recurrent weight from U(-1/sqrt(H), 1/sqrt(H)): std 1/sqrt(3H).
    default = 1.0 / math.sqrt(3 * h)
    out: dict[str, Any] = {"std": {}, "default": {}, "zero": [], "radius": {}, "forget_bias": {}}
    for layer in range(module.num_layers):
        for suffix in ("", "_reverse") if module.bidirectional else ("",):
            key = f"{name}.l{layer}{suffix}"
            w_ih = getattr(module, f"weight_ih_l{layer}{suffix}")
            w_hh = getattr(module, f"weight_hh_l{layer}{suffix}")
            out["std"][key] = {"input": float(w_ih.std()), "recurrent": float(w_hh.std())}
            out["default"][key] = default
            if not w_ih.any() and not w_hh.any():
                out["zero"].append(key)
            # weight_hh stacks one (H, H) block per gate; proj_size LSTMs are not square.
            if w_hh.shape[1] == h:
                out["radius"][key] = {g: spectral_radius(w_hh[i * h : (i + 1) * h]) for i, g in enumerate(gates)}
            if isinstance(module, nn.LSTM) and module.bias:
                b = getattr(module, f"bias_ih_l{layer}{suffix}") + getattr(module, f"bias_hh_l{layer}{suffix}")
                out["forget_bias"][key] = float(b[h : 2 * h].mean())
    return out


def _probe_forward(model: nn.Module, setup: Setup) -> tuple[torch.Tensor | None, str | None]:
    """The model's output on a few training windows, and the final module's activation if it is one."""
    x, _, lengths = setup.data.train.batch(torch.arange(min(8, len(setup.data.train))))
    device = next(model.parameters()).device
    x = x.to(device)
    calls: list[tuple[nn.Module, Any]] = []
    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(lambda mod, _i, o: calls.append((mod, o))) for m in leaves]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x) if lengths is None else model(x, lengths.to(device))
    except Exception:  # a model that fails here fails in training too; the training probe records it
        return None, None
    finally:
        model.train(was_training)
        for hd in handles:
            hd.remove()
    if isinstance(out, tuple):
        out = out[0]
    # The last module whose output is the model's output (or a view of it, e.g. after squeeze).
    same = lambda o: isinstance(o, torch.Tensor) and (o is out or (o.data_ptr() == out.data_ptr() and o.numel() == out.numel()))
    final = next((mod for mod, o in reversed(calls) if same(o)), None)
    if final is not None:
        return out, next((v for t, v in FINAL_ACTIVATIONS.items() if isinstance(final, t)), None)
    # A functional activation in forward(): only a softmax is recognisable from the numbers.
    if out.dim() >= 2 and out.shape[-1] > 1 and bool((out >= 0).all()) and torch.allclose(out.sum(-1), torch.ones(()), atol=1e-4):
        return out, "softmax"
    return out, None


def _per_step_output(out: torch.Tensor, steps: int, n_outputs: int) -> bool:
    """Whether the output has a time axis: (batch, steps, outputs), or (batch, steps) with one
    output squeezed away (unless the data has as many outputs as steps)."""
    if out.dim() >= 3:
        return out.shape[1] == steps
    return out.dim() == 2 and steps > 1 and out.shape[1] == steps and n_outputs != steps


def _constant_target_share(w) -> float:
    """Share of sequences whose per-step target holds one value over all their real steps."""
    y, lengths = w.labels()
    y = y.reshape(y.shape[0], y.shape[1], -1)
    same = y == y[:, :1]
    if lengths is not None:  # padded steps count as agreeing
        same |= (torch.arange(y.shape[1])[None, :] >= lengths[:, None])[..., None]
    return float(same.all(dim=2).all(dim=1).float().mean())


def _target_facts(setup: Setup) -> dict[str, Any]:
    d = setup.data
    y = np.asarray(d.train.target_values(), dtype=np.float64)
    facts: dict[str, Any] = {"train_target_values": int(y.size if d.task != "regression" else y.size // max(len(d.target_names), 1))}
    if d.per_step and d.steps > 1:
        facts["per_step_target_constant_share"] = _constant_target_share(d.train)
    if d.task == "regression":
        finite = y[np.isfinite(y)]
        if finite.size:
            facts["target_range"] = [float(finite.min()), float(finite.max())]
            facts["target_share_outside"] = {
                "0..1": float(np.mean((finite < 0) | (finite > 1))),
                "-1..1": float(np.mean(np.abs(finite) > 1)),
                "0..inf": float(np.mean(finite < 0)),
            }
    return facts


def model_facts(setup: Setup) -> dict[str, Any]:
    model = setup.new_model()
    recurrent = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.RNNBase, nn.RNNCellBase))]
    stacked = [(n, m) for n, m in recurrent if isinstance(m, nn.RNNBase)]
    cfg = setup.config
    facts: dict[str, Any] = {
        "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "model_class": type(model).__name__,
        "cells": [CELL_OF.get(type(m), type(m).__name__.lower()) for _, m in recurrent],
        "recurrent_layers": sum(getattr(m, "num_layers", 1) for _, m in recurrent),
        "hidden_sizes": [m.hidden_size for _, m in recurrent for _ in range(getattr(m, "num_layers", 1))],
        "bidirectional": any(getattr(m, "bidirectional", False) for _, m in recurrent),
        "recurrent_nonlinearity": {n: m.nonlinearity for n, m in recurrent if hasattr(m, "nonlinearity")},
        "batch_first": {n: m.batch_first for n, m in stacked},
        "dropout_between_layers": max([float(m.dropout) for _, m in stacked if m.num_layers > 1], default=0.0),
        "normalization_layers": sorted({type(m).__name__ for m in model.modules() if isinstance(m, NORMS)}),
        "loss": setup.objective.name,
        "n_outputs": setup.data.n_outputs,
        "target_per_step": setup.data.per_step,
    }
    dropouts = [float(m.p) for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
    facts["dropout_before_head"] = max(dropouts, default=0.0)
    facts["dropout_max"] = max(facts["dropout_before_head"], facts["dropout_between_layers"])

    per_module = [_recurrent_weights(name, module) for name, module in stacked]
    merged = lambda key: {k: v for w in per_module for k, v in w[key].items()}
    facts.update(weight_std=merged("std"), weight_std_default=merged("default"), recurrent_radius=merged("radius"),
                 forget_bias=merged("forget_bias"), weights_all_zero=[k for w in per_module for k in w["zero"]])

    frozen = {n: p.numel() for n, p in model.named_parameters() if not p.requires_grad}
    optimizer = setup.optimizer_factory(model.parameters())  # as Setup.train builds it
    in_optimizer = {id(p) for g in optimizer.param_groups for p in g["params"]}
    facts["frozen_parameters"] = frozen
    facts["parameters_not_in_optimizer"] = {n: p.numel() for n, p in model.named_parameters() if p.requires_grad and id(p) not in in_optimizer}
    facts["weight_decay"] = max((float(g.get("weight_decay", 0.0)) for g in optimizer.param_groups), default=0.0)

    out, activation = _probe_forward(model, setup)
    facts["output_activation"] = activation
    facts["output_per_step"] = None if out is None else _per_step_output(out, setup.data.steps, setup.data.n_outputs)
    facts.update(_target_facts(setup))

    if cfg is not None:  # the built-in model: what the setup file says is what runs
        m = cfg.model
        facts.update(output_activation=m.output_activation, readout=m.readout, residual_paths=False,
                      readout_directions="both" if m.bidirectional else None, metrics=list(cfg.training.metrics),
                      early_stopping=cfg.training.early_stopping)
    else:
        facts.update(readout=None, residual_paths=None, readout_directions=None, metrics=None, early_stopping=None)
    return facts
