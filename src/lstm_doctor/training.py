"""The one training loop: used by every probe and treatment, instrumented through callbacks.

A callback overrides any of ``on_train_begin``, ``after_backward`` (gradients are
present, before clipping and the optimizer step), ``after_step``, ``on_epoch_end``
and ``on_train_end``; each receives the live :class:`TrainState`. Setting
``state.stop`` ends training after the current step. Only the methods a callback
overrides are called, so idle instrumentation costs nothing per step.
"""

from __future__ import annotations

import contextlib
import math
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch
from torch import nn

from lstm_doctor.data.windows import SequenceData, Windows
from lstm_doctor.objective import Objective, metrics_of

HOOKS = ("on_train_begin", "after_backward", "after_step", "on_epoch_end", "on_train_end")


class Callback:
    """Base class for training instrumentation; override only what you need."""

    def on_train_begin(self, state: "TrainState") -> None: ...
    def after_backward(self, state: "TrainState") -> None: ...
    def after_step(self, state: "TrainState") -> None: ...
    def on_epoch_end(self, state: "TrainState") -> None: ...
    def on_train_end(self, state: "TrainState") -> None: ...


@dataclass
class TrainState:
    model: nn.Module
    optimizer: torch.optim.Optimizer
    objective: Objective
    data: SequenceData
    step: int = 0
    epoch: int = 0
    loss: float = float("nan")
    batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None
    grad_norm: float | None = None
    stop: bool = False
    val_history: list[dict[str, float]] = field(default_factory=list)


class EarlyStopping(Callback):
    """Stop after ``patience`` epochs without a lower validation loss; restore the best weights."""

    def __init__(self, patience: int):
        self.patience = patience
        self.best = float("inf")
        self.best_state: dict[str, torch.Tensor] | None = None
        self.waited = 0

    def on_epoch_end(self, state: "TrainState") -> None:
        loss = state.val_history[-1]["loss"] if state.val_history else float("nan")
        if math.isfinite(loss) and loss < self.best:
            self.best, self.waited = loss, 0
            self.best_state = {k: v.detach().clone() for k, v in state.model.state_dict().items()}
        else:
            self.waited += 1
            state.stop = state.stop or self.waited >= self.patience

    def on_train_end(self, state: "TrainState") -> None:
        if self.best_state is not None:
            state.model.load_state_dict(self.best_state)


@dataclass
class TrainResult:
    """What one training run did: curves, validation history and how it ended."""

    steps: int = 0
    epochs: int = 0  # full passes over the training windows (a cut-short last pass does not count)
    steps_per_epoch: int = 0
    train_loss: list[float] = field(default_factory=list)  # one per step, the last may be non-finite
    epoch_train_loss: list[float] = field(default_factory=list)  # one per pass, partial passes included
    # {"epoch": full passes so far, "step": optimizer steps so far, "loss", metrics...}, one per step validated
    val: list[dict[str, float]] = field(default_factory=list)
    stopped: str = "completed"  # completed | diverged | error | time-limit | callback
    diverged_at: int | None = None
    error: str | None = None
    seconds: float = 0.0

    def raise_if_failed(self) -> None:
        """Raise :class:`TrainingError` when the model, the loss or the optimizer raised during
        training or validation, :class:`TimeLimitReached` when the deadline cut the run short:
        for a probe that reads a whole run, such a run measured nothing."""
        if self.error is not None:
            raise TrainingError(f"training raised {self.error} ({step_count(self.steps)} in)")
        if self.stopped == "time-limit":
            raise TimeLimitReached(f"the time limit stopped training {step_count(self.steps)} in")

    def best_val(self, key: str = "loss", mode: str = "min") -> float:
        vals = [v[key] for v in self.val if math.isfinite(v.get(key, float("nan")))]
        if not vals:
            return float("nan")
        return min(vals) if mode == "min" else max(vals)


def step_count(n: int | None) -> str:
    """``n`` optimizer steps, in words ("1 step", "12 steps")."""
    return f"{n} step" if n == 1 else f"{n} steps"


class TrainingError(RuntimeError):
    """A run that ``fit`` recorded as failed (``TrainResult.error``), raised by a probe that cannot use it."""


class TimeLimitReached(TrainingError):
    """A run that ``fit`` stopped at its deadline, raised by a probe that cannot use a partial run."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def kept_random_state() -> Iterator[None]:
    """Restore the random state of torch (CPU and CUDA), NumPy and Python on exit,
    however the block ends: what runs inside may seed freely."""
    np_state, py_state = np.random.get_state(), random.getstate()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _seed_dropout(device: torch.device, seed: int) -> None:
    """Seed the generator that draws dropout masks on ``device`` (and the CPU's).

    ``torch.manual_seed`` does the same for every backend, but before CUDA is
    initialized it formats three stack traces per call (about a millisecond), a
    fixed cost on every probe that trains briefly.
    """
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed(seed)  # initialized: the model lives there
    elif device.type != "cpu":
        torch.manual_seed(seed)


def _finite(params: list[torch.Tensor]) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in params)


def _forward(model: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    return model(x) if lengths is None else model(x, lengths)


@torch.no_grad()
def evaluate(model: nn.Module, objective: Objective, windows: Windows, data: SequenceData, batch_size: int = 512) -> dict[str, float]:
    """Mean loss and task metrics over ``windows`` (model in eval mode, restored after)."""
    was_training = model.training
    model.eval()
    outs, ys, lens, total, count = [], [], [], 0.0, 0
    device = next(model.parameters()).device
    try:
        for start in range(0, len(windows), batch_size):
            idx = torch.arange(start, min(start + batch_size, len(windows)))
            x, y, lengths = (None if t is None else t.to(device) for t in windows.batch(idx))
            out = _forward(model, x, lengths)
            total += float(objective(out, y, lengths)) * len(idx)
            count += len(idx)
            outs.append(out), ys.append(y), lens.append(lengths)
    finally:
        model.train(was_training)
    out, y = torch.cat(outs), torch.cat(ys)
    lengths = torch.cat(lens) if lens[0] is not None else None
    result = {"loss": total / max(count, 1)}
    if not objective.custom:
        result.update(metrics_of(objective, out, y, lengths, data.target_scaler, data.n_outputs))
    return result


@contextlib.contextmanager
def _progress_bar(enabled: bool, total: int, label: str):
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
                  TimeRemainingColumn(), transient=True, console=Console(stderr=True)) as bar:
        yield (bar, bar.add_task(label, total=total))


def fit(
    model: nn.Module,
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    data: SequenceData,
    *,
    epochs: int,
    batch_size: int,
    clip_norm: float | None = None,
    seed: int = 0,
    max_steps: int | None = None,
    eval_every: int | None = None,
    deadline: float | None = None,
    callbacks: tuple[Callback, ...] | list[Callback] = (),
    progress: bool | str = False,
) -> TrainResult:
    """Train ``model`` on ``data.train``, validating on ``data.val``.

    Runs ``epochs`` epochs (or ``max_steps`` steps, whichever ends first) with
    batches drawn by a generator seeded with ``seed``. Validation runs at each
    epoch's end, and every ``eval_every`` steps when given. A non-finite loss or an
    exception inside the model ends the run and is recorded, never raised.
    ``deadline`` is a ``time.monotonic()`` value past which training stops.

    Example:
        >>> result = fit(model, Objective("mse", "regression"), opt, data, epochs=5, batch_size=32)  # doctest: +SKIP
        >>> result.val[-1]["rmse"]  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    device = next(model.parameters()).device
    train = data.train.to(device) if data.train.inputs.device != device else data.train
    n = len(train)
    per_epoch = math.ceil(n / batch_size)
    total = per_epoch * epochs if max_steps is None else min(per_epoch * epochs, max_steps)
    result = TrainResult(steps_per_epoch=per_epoch)
    state = TrainState(model, optimizer, objective, data, val_history=result.val)
    hooks = {h: [getattr(c, h) for c in callbacks if getattr(type(c), h) is not getattr(Callback, h)] for h in HOOKS}
    gen = torch.Generator().manual_seed(seed)
    _seed_dropout(device, seed)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    label = progress if isinstance(progress, str) else "training"
    model.train()
    for hook in hooks["on_train_begin"]:
        hook(state)

    def validate() -> None:
        record = {"epoch": state.epoch, "step": state.step}
        try:
            record.update(evaluate(model, objective, data.val, data))
        except Exception as err:  # a model that fails on validation data is evidence too
            record["loss"] = float("nan")
            result.error = result.error or f"{type(err).__name__}: {err}"
        result.val.append(record)

    with _progress_bar(bool(progress) and sys.stderr.isatty(), total, label) as bar:
        while state.step < total and not state.stop:
            order = torch.randperm(n, generator=gen).to(device)
            epoch_sum, epoch_count = 0.0, 0
            for b in range(per_epoch):
                if state.step >= total:
                    break
                x, y, lengths = train.batch(order[b * batch_size : (b + 1) * batch_size])
                state.batch = (x, y, lengths)
                try:
                    optimizer.zero_grad(set_to_none=True)
                    loss = objective(_forward(model, x, lengths), y, lengths)
                    loss.backward()
                except Exception as err:
                    result.stopped, result.error = "error", f"{type(err).__name__}: {err}"
                    state.stop = True
                    break
                value = loss.item()
                result.train_loss.append(value)
                if not math.isfinite(value):
                    result.stopped, result.diverged_at = "diverged", state.step
                    state.stop = True
                    break
                state.loss = value
                for hook in hooks["after_backward"]:
                    hook(state)
                try:
                    if clip_norm is not None:
                        state.grad_norm = float(torch.nn.utils.clip_grad_norm_(params, clip_norm))
                    optimizer.step()
                except Exception as err:  # e.g. an optimizer that needs a closure
                    result.stopped, result.error = "error", f"{type(err).__name__}: {err}"
                    state.stop = True
                    break
                state.step += 1
                epoch_sum += value
                epoch_count += 1
                for hook in hooks["after_step"]:
                    hook(state)
                if eval_every and state.step % eval_every == 0 and b != per_epoch - 1:
                    validate()
                if bar is not None and (state.step % 10 == 0 or state.step == total):
                    bar[0].update(bar[1], completed=state.step)
                if deadline is not None and time.monotonic() > deadline:
                    result.stopped = "time-limit"
                    state.stop = True
                if state.stop:
                    break
            if epoch_count:
                result.epoch_train_loss.append(epoch_sum / epoch_count)
                state.epoch += epoch_count == per_epoch  # only full passes count
                if not result.val or result.val[-1]["step"] != state.step:  # not validated at this step yet
                    validate()
                # A non-finite validation loss is divergence only when the weights broke;
                # with finite weights the validation data holds NaN or Inf (D101).
                if not math.isfinite(result.val[-1]["loss"]) and result.stopped == "completed" and not _finite(params):
                    result.stopped, result.diverged_at = "diverged", state.step
                    state.stop = True
            for hook in hooks["on_epoch_end"]:
                hook(state)
    if state.stop and result.stopped == "completed":
        result.stopped = "callback"
    for hook in hooks["on_train_end"]:
        hook(state)
    result.steps, result.epochs = state.step, state.epoch
    result.seconds = time.perf_counter() - t0
    return result
