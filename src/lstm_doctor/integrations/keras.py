"""Keras 3: ``model.fit(..., callbacks=[DoctorCallback()])`` and the report is on the callback after ``fit``.

Keras callbacks see no gradients, so this one computes them itself every
``every`` batches on a fixed probe batch, with the backend in use
(``tf.GradientTape`` on TensorFlow, autograd on torch): the gradient of the
compiled loss with respect to every trainable variable and to the input (per
time step: the memory length). The model's weights and those gradients are
mirrored into a PyTorch module (recurrent layers as ``nn.LSTM`` / ``nn.GRU`` /
``nn.RNN`` with the gate order converted) so the very instruments of the
examination (``probes/gradients.py``, ``probes/gates.py``) measure them, and
the same rules judge. Per-batch losses come from Keras' running means, the
validation history from each epoch's logs.

The probe batch is ``probe=(x, y)``, or the first training batch on the torch
backend (TensorFlow traces its training step, so there ``probe`` is needed).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np
import torch
from torch import nn

from lstm_doctor.budget import get_budget
from lstm_doctor.data.windows import Windows
from lstm_doctor.errors import InputError
from lstm_doctor.integrations import save
from lstm_doctor.probes.context import ProbeContext
from lstm_doctor.probes.gates import GateMonitor
from lstm_doctor.probes.gradients import GradientMonitor
from lstm_doctor.probes.instrument import PROBE_BATCH, sampled
from lstm_doctor.probes.memory_length import relative_profile
from lstm_doctor.report import Report
from lstm_doctor.training import TrainState
from lstm_doctor.watch import LoopRecord, LoopSetup, judge_loop

BACKENDS = ("tensorflow", "torch")


def _numpy(value: Any) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(value))


def _torch_recurrent(layer: keras.layers.Layer) -> nn.RNNBase | None:
    """The PyTorch module computing what a Keras LSTM, GRU or SimpleRNN layer computes (None: no equivalent)."""
    cell = getattr(layer, "cell", None)
    if cell is None or getattr(layer, "go_backwards", False):
        return None
    act = getattr(getattr(cell, "activation", None), "__name__", None)
    rec = getattr(getattr(cell, "recurrent_activation", None), "__name__", "sigmoid")
    features, units, bias = cell.kernel.shape[0], cell.units, bool(cell.use_bias)
    if isinstance(layer, keras.layers.LSTM) and act == "tanh" and rec == "sigmoid":
        return nn.LSTM(features, units, batch_first=True, bias=bias)
    if isinstance(layer, keras.layers.GRU) and act == "tanh" and rec == "sigmoid" and cell.reset_after:
        return nn.GRU(features, units, batch_first=True, bias=bias)
    if isinstance(layer, keras.layers.SimpleRNN) and act in ("tanh", "relu"):
        return nn.RNN(features, units, batch_first=True, bias=bias, nonlinearity=act)
    return None


def _torch_order(layer: keras.layers.Layer, kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray | None) -> list[np.ndarray]:
    """Keras (kernel, recurrent_kernel, bias) as PyTorch (weight_ih, weight_hh[, bias_ih, bias_hh]).

    Keras' LSTM gates are i, f, c, o like PyTorch's; its GRU gates are z, r, h
    against PyTorch's r, z, n, and a reset-after GRU keeps separate input and
    recurrent biases, as PyTorch does.
    """
    if isinstance(layer, keras.layers.GRU):
        h = recurrent.shape[0]
        order = np.r_[h : 2 * h, 0:h, 2 * h : 3 * h]
        kernel, recurrent = kernel[:, order], recurrent[:, order]
        bias = None if bias is None else bias[:, order]
    weights = [kernel.T, recurrent.T]
    if bias is not None:
        weights += [bias[0], bias[1]] if bias.ndim == 2 else [bias, np.zeros_like(bias)]
    return weights


class KerasMirror(nn.Module):
    """A Keras model's weights (and probe-batch gradients) as PyTorch parameters.

    Recurrent layers become their PyTorch modules; every other layer's
    variables are kept as parameters under the layer's name. ``forward(x)``
    runs each recurrent module on the input its Keras layer receives for ``x``
    (through ``layer_inputs``, the Keras model cut at those layers), so the gate
    probe can recompute the gates on any batch it picks.
    """

    def __init__(self, model: keras.Model):
        super().__init__()
        self.keras_model = [model]  # a list: not a torch submodule
        self.owners: list[tuple[str, keras.layers.Layer, list[int]]] = []  # layer name, layer, indices into trainable_variables
        index = {id(v): i for i, v in enumerate(model.trainable_variables)}
        self.recurrent: list[tuple[str, keras.layers.Layer]] = []
        for layer in _leaf_layers(model):
            mine = [index[id(v)] for v in layer.trainable_variables if id(v) in index]
            if not mine:
                continue
            name = layer.name.replace(".", "_").replace("/", "_")
            module = _torch_recurrent(layer)
            if module is None:
                module = nn.Module()
                for i in mine:
                    module.register_parameter(model.trainable_variables[i].name.replace(".", "_"),
                                              nn.Parameter(torch.zeros(tuple(model.trainable_variables[i].shape))))
            else:
                self.recurrent.append((name, layer))
            self.add_module(name, module)
            self.owners.append((name, layer, mine))
        self.layer_inputs: Callable[[np.ndarray], list[np.ndarray]] | None = None

    def load(self, values: list[np.ndarray], grads: list[np.ndarray] | None = None) -> None:
        """Set the parameters to the Keras values (and their ``.grad`` to the Keras gradients)."""
        for name, layer, mine in self.owners:
            module = getattr(self, name)
            params = list(module.parameters())
            if isinstance(module, nn.RNNBase):
                pick = lambda arrays: _torch_order(layer, *[arrays[i] for i in mine[:2]], arrays[mine[2]] if len(mine) > 2 else None)  # noqa: E731
                new_values = pick(values)
                new_grads = pick(grads) if grads is not None else None
            else:
                new_values = [values[i] for i in mine]
                new_grads = [grads[i] for i in mine] if grads is not None else None
            with torch.no_grad():
                for j, p in enumerate(params):
                    p.copy_(torch.as_tensor(np.ascontiguousarray(new_values[j]), dtype=p.dtype).reshape(p.shape))
                    if new_grads is not None:
                        p.grad = torch.as_tensor(np.ascontiguousarray(new_grads[j]), dtype=p.dtype).reshape(p.shape).clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.layer_inputs is not None:
            for (name, _), a in zip(self.recurrent, self.layer_inputs(x.detach().cpu().numpy())):
                getattr(self, name)(torch.as_tensor(np.asarray(a), dtype=torch.float32))
        return x


def _leaf_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Layers that own variables directly, nested models flattened."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += _leaf_layers(layer)
        else:
            found.append(layer)
    return found


def gradient_function(model: keras.Model) -> Callable[[np.ndarray, np.ndarray], tuple[list[np.ndarray], np.ndarray, np.ndarray]]:
    """``(x, y) -> (gradients of the compiled loss for every trainable variable, for x, outputs)``, dropout off.

    On TensorFlow the pass is traced once as a ``tf.function`` (an eager
    recurrent layer steps through time in Python); on torch it runs eagerly.
    """
    variables = model.trainable_variables

    def plain(grads: list[Any], pred: Any) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        arrays = [np.zeros(tuple(v.shape), np.float32) if g is None else _numpy(g) for v, g in zip(variables, grads[:-1])]
        return arrays, _numpy(grads[-1]), _numpy(pred)

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        @tf.function(reduce_retracing=True)
        def traced(x: Any, y: Any) -> tuple[list[Any], Any]:
            with tf.GradientTape() as tape:
                tape.watch(x)
                pred = model(x, training=False)
                loss = model.compute_loss(x=x, y=y, y_pred=pred, training=False)
            return tape.gradient(loss, [*variables, x]), pred

        return lambda x, y: plain(*traced(tf.convert_to_tensor(x), tf.convert_to_tensor(y)))

    def eager(x: np.ndarray, y: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        xt = torch.as_tensor(x).requires_grad_(True)
        pred = model(xt, training=False)
        loss = model.compute_loss(x=xt, y=keras.ops.convert_to_tensor(y), y_pred=pred, training=False)
        return plain(list(torch.autograd.grad(loss, [v.value for v in variables] + [xt], allow_unused=True)), pred)

    return eager


class DoctorCallback(keras.callbacks.Callback):
    """Watches a Keras ``fit`` and judges it when it ends: ``callback.report``.

    ``every``: batches between the sampled gradient measurements. ``probe``:
    ``(x, y)`` to measure on (needed on TensorFlow; up to 32 samples are used).
    ``path``: where to write the report (.json or .html), if anywhere.
    ``task``: regression, binary or multiclass (inferred when not given).
    """

    def __init__(self, every: int = 50, *, probe: tuple[Any, Any] | None = None, path: str | Path | None = None,
                 task: str | None = None):
        super().__init__()
        if not isinstance(every, int) or every < 1:
            raise InputError(f"every must be a whole number of batches, 1 or more; got {every!r}.")
        self.every, self.path, self.task = every, path, task
        self.probe = None if probe is None else tuple(np.asarray(a)[:PROBE_BATCH] for a in probe)
        self.report: Report | None = None
        self.record = LoopRecord(every, task)
        self.ctx: ProbeContext | None = None
        self.mirror: KerasMirror | None = None
        self.instruments: list[Any] = []
        self.state: TrainState | None = None
        self.lrs: list[float] = []
        self._epoch_mean = (0, 0.0)  # (batches seen this epoch, running mean Keras reported)
        self._own_step = None

    # --- fit's hooks -------------------------------------------------------

    def on_train_begin(self, logs: dict | None = None) -> None:
        backend = keras.backend.backend()
        if backend not in BACKENDS:
            raise InputError(f"lstm-doctor computes gradients with TensorFlow or torch; this Keras runs on {backend}. "
                             "Set KERAS_BACKEND=tensorflow or torch.")
        if self.probe is not None:
            self._start()
        elif backend == "torch" or self.model.run_eagerly:
            self._catch_first_batch()
        else:
            raise InputError("On the TensorFlow backend the callback cannot see the training batches: give it a probe batch, "
                             "DoctorCallback(probe=(x_train[:32], y_train[:32])).")

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_mean = (0, 0.0)

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self.state is not None and sampled(self.state.step, self.every):
            grads, x_grad, outputs = self._gradients(*self.probe)
            self.mirror.load(self._values(), grads)
            self._run("after_backward")
            self._keep(x_grad, outputs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._add_losses(batch, (logs or {}).get("loss"))
        if self.state is None:
            if self.probe is None:
                return
            self._start()  # the first batch was caught
        step = self.state.step = self.state.step + 1
        if sampled(step - 1, self.every) or sampled(step, self.every):  # an update to compare, or gates to measure
            self._refresh()
            self._run("after_step")
        if sampled(step - 1, self.every):
            self.lrs.append(float(_numpy(self.model.optimizer.learning_rate)))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if "val_loss" in logs:
            metrics = {k.removeprefix("val_"): float(v) for k, v in logs.items()
                       if k.startswith("val_") and k != "val_loss" and np.size(v) == 1}
            self.record.add_validation(float(logs["val_loss"]), self.state.step if self.state else 0, **metrics)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._own_step is not None:
            vars(self.model).pop("train_step", None)
        if self.state is None:
            self.ctx = ProbeContext(LoopSetup(None), get_budget("quick"))
        else:
            self._refresh()
            self._run("on_train_end")
        sequence = self.probe[0].shape[1] if self.probe is not None and np.ndim(self.probe[0]) == 3 else None
        self.record.write(self.ctx, self.state.step if self.state else 0, sequence)
        self.ctx.evidence.update(source_kind="keras", lr_steps=self.lrs, lr=self.lrs[-1] if self.lrs else None,
                                 optimizer=type(self.model.optimizer).__name__)
        setup = {"source": "keras", "backend": keras.backend.backend(), "model_class": type(self.model).__name__,
                 "optimizer": type(self.model.optimizer).__name__, "every": self.every}
        self.report = judge_loop(self.ctx, setup, bool(self.record.losses))
        if self.path is not None:
            save(self.report, self.path)

    # --- measuring ---------------------------------------------------------

    def _catch_first_batch(self) -> None:
        """On an eager backend, keep the inputs and targets of the first training batch."""
        original = self.model.train_step
        self._own_step = original

        def train_step(data: Any) -> Any:
            if self.probe is None:
                x, y = keras.utils.unpack_x_y_sample_weight(data)[:2]
                self.probe = (_numpy(x)[:PROBE_BATCH], _numpy(y)[:PROBE_BATCH])
            return original(data)

        object.__setattr__(self.model, "train_step", train_step)

    def _start(self) -> None:
        x, _ = self.probe
        budget = replace(get_budget("quick"), probe_every=self.every)
        self.ctx = ProbeContext(LoopSetup(Windows(torch.as_tensor(x, dtype=torch.float32), torch.zeros(len(x)))), budget)
        self.mirror = KerasMirror(self.model)
        self._gradients = gradient_function(self.model)
        self.instruments = [GradientMonitor(self.ctx)]
        if self.mirror.recurrent and x.ndim == 3:
            self._cut_at_recurrent_layers()
        if self.mirror.recurrent and x.ndim == 3:
            self.instruments.append(GateMonitor(self.ctx))
        self.state = TrainState(self.mirror, None, None, self.ctx.setup.data)
        self._refresh()
        self._run("on_train_begin")

    def _values(self) -> list[np.ndarray]:
        return [_numpy(v) for v in self.model.trainable_variables]

    def _refresh(self) -> None:
        """Mirror the current weights."""
        self.mirror.load(self._values())

    def _cut_at_recurrent_layers(self) -> None:
        """Let the mirror compute what each recurrent layer receives (no gates for a model without a graph)."""
        try:
            cut = keras.Model(self.model.inputs, [layer.input for _, layer in self.mirror.recurrent])
        except (AttributeError, ValueError, TypeError):
            self.mirror.recurrent.clear()  # a subclassed model has no graph to read layer inputs from
            return

        call = lambda x: cut([x], training=False)  # noqa: E731
        if keras.backend.backend() == "tensorflow":  # traced once: an eager recurrent layer steps through time in Python
            import tensorflow as tf

            traced = tf.function(call, reduce_retracing=True)
            call = lambda x: traced(tf.convert_to_tensor(x))  # noqa: E731

        def layer_inputs(x: np.ndarray) -> list[np.ndarray]:
            out = call(x)
            return [_numpy(a) for a in (out if isinstance(out, (list, tuple)) else [out])]

        self.mirror.layer_inputs = layer_inputs

    def _run(self, hook: str) -> None:
        for instrument in self.instruments:
            getattr(instrument, hook)(self.state)

    def _keep(self, x_grad: np.ndarray, outputs: np.ndarray) -> None:
        if x_grad.ndim == 3:
            g = torch.as_tensor(x_grad)
            profile = relative_profile(g, torch.full((len(g),), g.shape[1] - 1))
            if profile is not None:
                self.record.profiles.append(profile)
        self.record.outputs.append((torch.as_tensor(outputs), torch.as_tensor(self.probe[1])))

    def _add_losses(self, batch: int, mean: Any) -> None:
        """Per-batch losses from Keras' running epoch mean (batch counts from 0 in each epoch)."""
        if mean is None:
            return
        seen, before = self._epoch_mean
        now = batch + 1
        loss = (now * float(mean) - seen * before) / max(now - seen, 1)
        for _ in range(now - seen):  # steps_per_execution > 1 reports several batches at once
            self.record.add_loss(loss)
        self._epoch_mean = (now, float(mean))
