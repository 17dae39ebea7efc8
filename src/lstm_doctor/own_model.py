"""The user's own PyTorch model as a Setup: ``examine_model`` runs the same examination on it.

The user hands over an ``nn.Module``, data (DataLoaders, or ``(X, y)`` arrays or
tensors, optionally with sequence lengths or as packed sequences), a loss and an
optimizer. The Setup built here trains deep copies of that model with a fresh
optimizer of the user's class and settings, so every probe, rule and ranking is
the one ``lstm_doctor.examine`` uses, and the user's objects are never touched:
their weights, optimizer state, training mode and the random state of torch,
NumPy and Python are the same after the examination as before it.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from lstm_doctor.data.windows import SequenceData, Windows
from lstm_doctor.errors import InputError
from lstm_doctor.examine import examine
from lstm_doctor.objective import Objective
from lstm_doctor.report import Report
from lstm_doctor.setups import Setup
from lstm_doctor.training import kept_random_state

TASKS = ("regression", "binary", "multiclass")
# Losses that take probabilities: a binary decision is then made at 0.5, not at logit 0.
_PROBABILITY_LOSSES = (nn.BCELoss,)
# PyTorch's losses by the names of the setup file's (training.loss), so the rules
# that judge a loss (M201's softmax before ce, ...) read the user's the same way.
LOSS_NAMES = {nn.MSELoss: "mse", nn.L1Loss: "mae", nn.HuberLoss: "huber", nn.SmoothL1Loss: "huber",
              nn.BCEWithLogitsLoss: "bce", nn.CrossEntropyLoss: "ce"}


class CallAdapter(nn.Module):
    """The user's model behind the ``model(x, lengths)`` call the training loop makes.

    Used only when the model needs it: it packs padded batches for a model that
    takes a ``PackedSequence``, drops ``lengths`` for a model whose ``forward``
    takes the input alone, and keeps the first element of a tuple output (as
    ``nn.LSTM`` returns ``(output, state)``).
    """

    def __init__(self, model: nn.Module, *, packed: bool, takes_lengths: bool):
        super().__init__()
        self.model = model
        self.packed = packed
        self.takes_lengths = takes_lengths

    def call(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> Any:
        """The model's raw output, called as the user calls it."""
        if self.packed and lengths is not None:
            return self.model(pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False))
        if self.takes_lengths and lengths is not None:
            return self.model(x, lengths)
        return self.model(x)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        out = self.call(x, lengths)
        if isinstance(out, (tuple, list)):
            out = out[0]
        if isinstance(out, PackedSequence):
            out = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]
        return out


class UserLoss(Objective):
    """The user's loss module (or function) as the examination's objective.

    Targets are handed to it in the shape of the model's output when they hold
    one value per output (a ``(batch,)`` target for a ``(batch, 1)`` output), as
    a training loop that runs without a broadcasting error must do. Task metrics
    (accuracy, RMSE) come from the outputs as for the built-in losses.
    """

    def __init__(self, loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], task: str, *, per_step: bool):
        threshold = 0.5 if isinstance(loss, _PROBABILITY_LOSSES) else 0.0
        super().__init__(loss, task, per_step=per_step, threshold=threshold)
        own = type(loss).__name__ if isinstance(loss, nn.Module) else getattr(loss, "__name__", "loss")
        self.name = LOSS_NAMES.get(type(loss), own)
        # ``custom`` gates the task metrics in evaluation and baselines; the
        # outputs of a known task support them whatever the loss is.
        self.custom = False
        self._per_element = _unreduced(loss)

    def _shaped(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if y.shape != out.shape and y.numel() == out.numel():
            y = y.reshape(out.shape)
        return y.to(out.dtype) if self.task != "multiclass" else y

    def __call__(self, out: torch.Tensor, y: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.fn(out, self._shaped(out, y))

    def elementwise(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Loss per sample (the user's loss with ``reduction="none"``), averaged over other axes."""
        if self._per_element is None:
            raise InputError(f"The loss {self.name} has no reduction='none' form, so per-sample losses cannot be measured.")
        loss = self._per_element(out, self._shaped(out, y))
        if self.per_step and loss.dim() > 2:
            return loss.reshape(loss.shape[0], loss.shape[1], -1).mean(dim=-1)
        return loss.reshape(loss.shape[0], -1).mean(dim=1) if loss.dim() > 1 else loss


def _unreduced(loss: Any) -> Any:
    if not isinstance(loss, nn.modules.loss._Loss):
        return None
    per_element = copy.copy(loss)
    per_element.reduction = "none"
    return per_element


def _tensor(value: Any, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    try:
        return torch.as_tensor(np.asarray(value))
    except (TypeError, ValueError) as err:
        raise InputError(f"{what} must be an array or tensor of numbers; got {type(value).__name__} ({err}).") from None


def _parts(batch: Any, what: str) -> tuple[Any, Any, Any]:
    """(x, y, lengths) of one batch: a tuple or list of two or three items."""
    if isinstance(batch, dict) or not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise InputError(
            f"Each {what} batch must be (inputs, targets) or (inputs, targets, lengths); got {type(batch).__name__}"
            f"{' of ' + str(len(batch)) + ' items' if isinstance(batch, (tuple, list)) else ''}. "
            "Wrap your dataset so that it yields tuples, or pass (X, y) arrays."
        )
    return batch[0], batch[1], batch[2] if len(batch) == 3 else None


def _unpacked(x: Any, lengths: Any, what: str) -> tuple[torch.Tensor, torch.Tensor | None, bool]:
    """Inputs as a padded ``(samples, steps, ...)`` tensor, their lengths, and whether they came packed."""
    if isinstance(x, PackedSequence):
        padded, lens = pad_packed_sequence(x, batch_first=True)
        return padded.detach().cpu(), lens.long(), True
    return _tensor(x, f"The {what} inputs"), None if lengths is None else _tensor(lengths, f"The {what} lengths").long(), False


def _pad_to(x: torch.Tensor, steps: int) -> torch.Tensor:
    if x.dim() < 2 or x.shape[1] == steps:
        return x
    pad = x.new_zeros((x.shape[0], steps - x.shape[1], *x.shape[2:]))
    return torch.cat([x, pad], dim=1)


def collect(source: Any, what: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, bool, int | None]:
    """All samples of ``source`` as tensors: inputs, targets, lengths, packed or not, and the loader's batch size.

    ``source`` is ``(X, y)``, ``(X, y, lengths)`` or an iterable of such batches
    (a DataLoader). Batches padded to different lengths are padded with zeros to
    the longest; that needs their lengths.
    """
    if isinstance(source, (tuple, list)) and len(source) in (2, 3) and not isinstance(source[0], (tuple, list)):
        x, y, lengths = _parts(source, what)
        x, lengths, packed = _unpacked(x, lengths, what)
        return x, _tensor(y, f"The {what} targets"), lengths, packed, None
    if not isinstance(source, Iterable):
        raise InputError(f"The {what} data must be a DataLoader (or any iterable of batches) or an (X, y) pair; got {type(source).__name__}.")
    xs, ys, lens, packed_any = [], [], [], False
    for batch in source:
        x, y, lengths = _parts(batch, what)
        x, lengths, packed = _unpacked(x, lengths, what)
        packed_any |= packed
        xs.append(x), ys.append(_tensor(y, f"The {what} targets")), lens.append(lengths)
    if not xs:
        raise InputError(f"The {what} data yielded no batches.")
    if any(v is None for v in lens) and len({tuple(x.shape[1:]) for x in xs}) > 1:
        raise InputError(f"The {what} batches have different shapes ({sorted({tuple(x.shape) for x in xs})[:3]} ...) "
                         "but no lengths; yield (inputs, targets, lengths) for padded sequences.")
    steps = max(x.shape[1] for x in xs) if xs[0].dim() >= 2 else None
    x = torch.cat([_pad_to(x, steps) for x in xs]) if steps else torch.cat(xs)
    y = torch.cat([_pad_to(y, steps) if y.dim() >= 2 and y.shape[1] == x_.shape[1] and steps else y for y, x_ in zip(ys, xs)])
    lengths = None if any(v is None for v in lens) else torch.cat(lens)
    return x, y, lengths, packed_any, getattr(source, "batch_size", None)


def _takes_lengths(model: nn.Module) -> bool:
    """Whether ``forward``'s second argument is the sequence lengths: required, or named for lengths.

    An optional second argument with another name (``hidden=None``) is left alone.
    """
    params = [p for p in inspect.signature(model.forward).parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(params) >= 2 and ("len" in params[1].name.lower() or params[1].default is inspect.Parameter.empty)


def _targets(y: torch.Tensor, task: str, what: str) -> torch.Tensor:
    if task == "regression":
        if not (y.dtype.is_floating_point or y.dtype in (torch.int32, torch.int64, torch.int16, torch.uint8)):
            raise InputError(f"The {what} targets have dtype {y.dtype}; a regression target must be numeric.")
        return y.float().reshape(len(y), -1) if y.dim() == 1 else y.float()
    if y.dtype.is_floating_point and not torch.equal(y, y.round()):
        raise InputError(f"The {what} targets of a {task} task must be class indices (0, 1, ...); got non-integer values "
                         f"such as {float(y[y != y.round()][0]):g}. Use task='regression' for real-valued targets.")
    return y.long()


def _group_map(model: nn.Module, optimizer: torch.optim.Optimizer) -> list[int | None]:
    """For each of ``model.parameters()`` in order, the index of its optimizer param group (None: not optimized)."""
    where = {id(p): i for i, g in enumerate(optimizer.param_groups) for p in g["params"]}
    return [where.get(id(p)) for p in model.parameters()]


def optimizer_factory(model: nn.Module, optimizer: torch.optim.Optimizer) -> Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]:
    """Builds optimizers of the user's class with the user's settings, group by group.

    Applied to a copy of ``model``, parameter ``i`` of the copy goes to the group
    parameter ``i`` of the user's model is in, with that group's settings; a
    parameter the user left out of the optimizer is left out here too. Other
    parameter lists get one group with the first group's settings.
    """
    cls = type(optimizer)
    groups = _group_map(model, optimizer)
    settings = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]

    def build(params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        params = list(params)
        if len(params) != len(groups):
            return cls(params, **settings[0])
        chosen = [{"params": [p for p, g in zip(params, groups) if g == i], **s} for i, s in enumerate(settings)]
        return cls([g for g in chosen if g["params"]], **settings[0])

    return build


def _probe_output(adapter: CallAdapter, x: torch.Tensor, lengths: torch.Tensor | None, device: torch.device) -> tuple[Any, torch.Tensor]:
    """The raw and the adapted output for the first two samples (a no-grad pass in eval mode on a copy)."""
    adapter.eval()
    x, lengths = x[:2].to(device), None if lengths is None else lengths[:2]
    with torch.no_grad():
        try:
            return adapter.call(x, lengths), adapter(x, lengths)
        except Exception as err:
            raise InputError(f"The model failed on the first two training samples of shape {tuple(x.shape)}: "
                             f"{type(err).__name__}: {err}") from None


def setup_from_model(
    model: nn.Module,
    train: Any,
    val: Any,
    *,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    task: str,
    epochs: int = 20,
    batch_size: int | None = None,
    clip_norm: float | None = None,
    seed: int = 0,
) -> Setup:
    """A Setup that trains copies of the user's ``model`` as the user would.

    ``train`` and ``val`` are DataLoaders (or iterables of batches) or ``(X, y)``
    / ``(X, y, lengths)`` arrays or tensors; inputs may be ``PackedSequence``
    objects when the model's ``forward`` takes them.
    """
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    if task not in TASKS:
        raise InputError(f"task must be one of {', '.join(TASKS)}; got {task!r}.")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise InputError(f"optimizer must be a torch.optim.Optimizer built on the model's parameters; got {type(optimizer).__name__}.")
    if not callable(loss):
        raise InputError(f"loss must be a loss module such as nn.MSELoss() or a function (outputs, targets) -> loss; got {type(loss).__name__}.")
    x, y, lengths, packed, loader_batch = collect(train, "training")
    xv, yv, lv, packed_v, _ = collect(val, "validation")
    if len(x) != len(y) or len(xv) != len(yv):
        raise InputError(f"Inputs and targets differ in samples: training {len(x)} vs {len(y)}, validation {len(xv)} vs {len(yv)}.")
    if x.shape[2:] != xv.shape[2:]:
        raise InputError(f"Training and validation inputs differ in shape: {tuple(x.shape)} and {tuple(xv.shape)}.")
    if (lengths is None) != (lv is None):
        raise InputError("Lengths were given for only one of training and validation data; give them for both or neither.")
    if x.dim() >= 2 and xv.shape[1] != x.shape[1]:
        if lengths is None:
            raise InputError(f"Training sequences have {x.shape[1]} steps and validation sequences {xv.shape[1]}; "
                             "give lengths (or packed sequences) for sequences of different lengths.")
        steps = max(x.shape[1], xv.shape[1])
        step_targets = y.dim() >= 2 and y.shape[1] == x.shape[1] and yv.dim() >= 2 and yv.shape[1] == xv.shape[1]
        x, xv = _pad_to(x, steps), _pad_to(xv, steps)
        if step_targets:
            y, yv = _pad_to(y, steps), _pad_to(yv, steps)
    if x.dtype.is_floating_point:
        x, xv = x.float(), xv.float()
    device = next(model.parameters()).device
    packed = packed or packed_v
    takes_lengths = lengths is not None and _takes_lengths(model)
    raw, out = _probe_output(CallAdapter(copy.deepcopy(model), packed=packed, takes_lengths=takes_lengths), x, lengths, device)
    # The adapter only where the model needs it, so the copies are of the user's own class.
    adapt = packed or (lengths is not None and not takes_lengths) or not isinstance(raw, torch.Tensor)

    def factory() -> nn.Module:
        copied = copy.deepcopy(model)
        return CallAdapter(copied, packed=packed, takes_lengths=takes_lengths) if adapt else copied

    classes = None
    if task == "binary" and out.shape[-1] == 2:
        task = "multiclass"  # two logits and a softmax loss: a two-class problem
    y, yv = _targets(y, task, "training"), _targets(yv, task, "validation")
    per_step = out.dim() >= 3 and x.dim() >= 2 and out.shape[1] == x.shape[1] and y.dim() >= 2 and y.shape[1] == x.shape[1]
    if task != "regression":
        n = int(max(y.max(), yv.max())) + 1
        n = max(n, out.shape[-1]) if task == "multiclass" else 2
        classes = [str(c) for c in range(n)]
    features = x.shape[-1] if x.dim() >= 3 else 1
    data = SequenceData(
        train=Windows(x, y, lengths=lengths),
        val=Windows(xv, yv, lengths=lv),
        task=task,
        feature_names=[f"x{j}" for j in range(features)],
        target_names=[f"y{j}" for j in range(y.shape[-1])] if task == "regression" and y.shape[-1] > 1 else ["y"],
        classes=classes,
        per_step=per_step,
        horizon=0,
        split="given",
        source={"kind": "arrays", "origin": "own-model", "input_dtype": str(x.dtype).removeprefix("torch."),
                "samples": len(x) + len(xv), "packed": packed},
    )
    return Setup(
        data=data,
        model_factory=factory,
        objective=UserLoss(loss, task, per_step=per_step),
        optimizer_factory=optimizer_factory(model, optimizer),
        epochs=epochs,
        batch_size=batch_size or loader_batch or 32,
        clip_norm=clip_norm,
        seed=seed,
        device=device,
    )


def examine_model(
    model: nn.Module,
    train: Any,
    val: Any,
    *,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    task: str,
    budget: str = "quick",
    treat: bool = False,
    epochs: int = 20,
    batch_size: int | None = None,
    clip_norm: float | None = None,
    seed: int = 0,
    time_limit: float | None = None,
    ignore: Iterable[str] = (),
    progress: bool = False,
) -> Report:
    """Examine the user's own PyTorch model and return the ranked findings.

    ``epochs``, ``batch_size`` and ``clip_norm`` describe the user's own
    training (the batch size defaults to the DataLoader's). The examination
    trains copies: ``model``, ``optimizer`` and every random state are left as
    they were.

    >>> report = lstm_doctor.examine_model(model, train_loader, val_loader,  # doctest: +SKIP
    ...     loss=nn.CrossEntropyLoss(), optimizer=opt, task="multiclass")
    >>> report.findings[0].code  # doctest: +SKIP
    'M208'
    """
    with kept_random_state():
        setup = setup_from_model(model, train, val, loss=loss, optimizer=optimizer, task=task, epochs=epochs,
                                 batch_size=batch_size, clip_norm=clip_norm, seed=seed)
        report = examine(setup, budget=budget, treat=treat, time_limit=time_limit, ignore=ignore, progress=progress)
    report.setup.update(model_class=type(model).__name__, optimizer=type(optimizer).__name__,
                        optimizer_settings=[_settings(g) for g in optimizer.param_groups])
    return report


def _settings(group: dict[str, Any]) -> dict[str, Any]:
    """An optimizer param group's settings as plain data, for the report."""
    plain = lambda v: float(v) if isinstance(v, torch.Tensor) and v.numel() == 1 else v  # noqa: E731
    return {k: plain(v) for k, v in group.items() if k != "params" and isinstance(plain(v), (int, float, str, bool, tuple, list, type(None)))}
