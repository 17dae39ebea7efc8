"""``lstm_doctor.watch``: the training evidence of the user's own loop, judged by the same rules.

Wrapped around a training loop, a :class:`Watch` drives the instruments of the
instrumented run (``probes/gradients.py``, ``probes/gates.py``) from the loop's
own optimizer steps, through the optimizer's step hooks, so the evidence and the
findings are those ``examine`` produces. It adds what only a live loop shows:
calls of ``zero_grad`` against optimizer steps, whether each step's gradient
still holds the previous step's (gradient accumulation, T310), the learning
rate of every step, and the input gradient per time step of the loop's own
backward pass (memory length).

Cost: the step hooks run at every step (a step count and the learning rate),
and so does ``log()`` (the loss, kept as a tensor on an accelerator); the total
gradient norm (one fused kernel, for gradient spikes) runs at every step too,
unless its cost is a large share of a short step: then it runs every k-th step,
k a power of two chosen so that it takes at most an eighth of ``max_overhead``
(0.31% of the loop's time at the default), and the steps read are in the
evidence. Everything else runs on sampled steps only, where forward and tensor
hooks are registered for that one step and removed after it. The sampled steps
are spaced by what they cost: the watch times its own work on sampled and on
plain steps (the norm's reads and ``log()`` included), what a sampled step's
own forward and backward took beyond a plain one (the hooks armed for it slow
them) and what the next few steps took beyond it (caches refill), against the
loop's plain step (the time between two optimizer steps), and widens the
spacing, in multiples of the user's ``every``, so that its share of the loop's
time stays near ``max_overhead`` (a sampled step's cost is the median over the
latest ones, so that a pause of the loop right after one is not taken for the
cost of all). ``bench/watch_overhead.py`` measures the result.

The watched loop trains exactly as without the watch: inputs are differentiated
through a detached copy, and measurements run under
:func:`lstm_doctor.probes.instrument.probing` (dropout off, random state restored).
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections import deque
from dataclasses import replace
from typing import Any, Callable, Iterator

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from lstm_doctor.budget import get_budget
from lstm_doctor.data.windows import SequenceData, Windows
from lstm_doctor.errors import InputError
from lstm_doctor.evidence import Evidence
from lstm_doctor.examine import judge_noting_failures, note_training_faults
from lstm_doctor.objective import Objective
from lstm_doctor.probes.context import ProbeContext
from lstm_doctor.probes.gates import GATE_EVERY, GateMonitor
from lstm_doctor.probes.gradients import GradientMonitor
from lstm_doctor.probes.instrument import PROBE_BATCH, Instrument, sampled
from lstm_doctor.probes.memory_length import relative_profile, write_memory
from lstm_doctor.probes.predictions import PredictionSpread
from lstm_doctor.rank import rank
from lstm_doctor.report import Report
from lstm_doctor.symptom import judge_symptom
from lstm_doctor.training import Callback, TrainState

TASKS = ("regression", "binary", "multiclass")
_NONE = object()  # no instance attribute of that name
KEPT_OUTPUTS = 4  # sampled batches of logged outputs kept for the prediction spread
# A step's gradient "still holds the previous one" when, fitted as
# a * (this step's fresh gradient) + b * (the previous gradient), b / a exceeds this.
ACCUMULATED = 0.5
# Fresh and previous gradients this aligned cannot be told apart.
COLLINEAR = 0.999
# The share of the loop's time the watch aims at: DESIGN's budget is 5% of a step, and 2.5% is
# left for what it measures only roughly: aimed at 3%, paired runs measured 3.2-3.3% at 16 units and
# 2.8-4.3% at 32 (95% intervals up to 5.5%; bench/RESULTS.md).
MAX_OVERHEAD = 0.025
# The share of max_overhead the per-step gradient norm may take before it is read on fewer steps
# (0.31% of the loop's time at the default): a 6-tensor norm costs ~35 us by the watch's clock in a 16-unit
# model's loop, and paired runs put its whole cost near twice that (the loop's own passes slow after it).
NORM_SHARE = 0.125
# Sampled steps may take at least this share, even where the always-on work
# alone reaches max_overhead (a model of a few thousand weights): some evidence is still sampled.
# At 1%, paired runs of a 16-unit model measured 4-5.6% in all (the watch clocks about half of what a
# sampled step costs the loop).
MIN_SAMPLED_SHARE = 0.005
PLAIN_KEPT = 256  # the latest plain-step times, for their median
# Steps whose gradient norms are kept as tensors before they are read out (one host sync for them all):
# sampled steps may be thousands of steps apart, and so many small tensors should not pile up in between.
NORMS_KEPT = 64
MIN_PLAIN = 5  # plain steps timed before the spacing is judged
# The loop's steps right after a sampled one run slower while caches refill (+150, +85, +50, +40 us on the
# 0.8 ms steps of a 16-unit model; +100 to +500 us for ten steps on the 1.4 ms steps of a 32-unit one):
# what they take beyond a plain step is the sampled step's cost too.
SETTLING_STEPS = 16
# Sampled steps whose costs are kept: the spacing follows the median of adjacent pairs of them (one with the
# gate recompute, one without), so that a pause of the loop (a validation pass, a checkpoint) that happens to
# fall on or just after one sampled step is not taken for the cost of all (a mean over all of them was, and
# one pause of a few seconds widened the spacing a thousandfold for the rest of the loop).
CYCLES_KEPT = 16
# What one step of the loop may add to a sampled step's cost, in plain steps: the sampled step itself ran 1.6 plain
# steps longer at 16 units, each step after it up to 0.2. More is the loop pausing (a validation pass at an epoch's
# end, a checkpoint), which falls on a sampled step whenever epochs are a multiple of ``every`` steps long; charged
# in full, the first such pause spaced sampled steps thousands of steps apart before the median could outvote it.
SAMPLED_EXCESS_LIMIT = 4.0
SETTLING_EXCESS_LIMIT = 1.0
# For each second the watch's clock sees of its always-on work, this many more go where the clock cannot
# see: torch's dispatch of the step hooks, the wrapped zero_grad, the calls into log() (13 us unseen
# against 4.7 us seen per step of a 16-unit model; bench/RESULTS.md, "watch overhead").
UNSEEN_PER_SEEN = 2.5


def sampling_interval(every: int, cycle_s: float, plain_s: float, always_s: float, max_overhead: float) -> int:
    """Steps between sampled steps that keep the watch near ``max_overhead`` of the loop's time.

    ``cycle_s``: the watch's own seconds per sampled step (measurements, hooks);
    ``plain_s``: the loop's step without the watch; ``always_s``: the watch's
    seconds at every step. The sampled steps get what the always-on work
    leaves of the share (at least ``MIN_SAMPLED_SHARE``); the result is a
    multiple of ``every``, which stays the least spacing.
    """
    if plain_s <= 0:
        return every
    share = max(max_overhead - always_s / plain_s, MIN_SAMPLED_SHARE)
    needed = cycle_s / (share * plain_s)
    return every * max(1, math.ceil(needed / every))


def norm_spacing(norm_s: float, plain_s: float, share: float) -> int:
    """Steps between the reads of the total gradient norm that keep them within ``share`` of the loop's time.

    ``norm_s``: the watch's seconds per read; ``plain_s``: the loop's step
    without the watch. 1 (every step) where a read costs at most ``share`` of a
    step, else the next power of two, so that the steps read at one spacing lie
    on the grid of every finer one.
    """
    if plain_s <= 0 or norm_s <= share * plain_s:
        return 1
    return 2 ** math.ceil(math.log2(norm_s / (share * plain_s)))


def _infer_task(out: torch.Tensor, y: torch.Tensor) -> str:
    """multiclass for logits with one more axis than integer targets, binary for 0/1 targets, else regression."""
    integral = not y.is_floating_point() or bool(torch.equal(y, y.round()))
    if integral and out.dim() == y.dim() + 1 and out.shape[-1] > 1:
        return "multiclass"
    if integral and bool(((y == 0) | (y == 1)).all()):
        return "binary"
    return "regression"


class _AccumulationCheck:
    """Tells whether the gradient at one step still holds the previous step's.

    Armed after a step: keeps the parameter's gradient as left by that step and
    sums the gradients the next backward passes deliver (a tensor hook that
    exists until the next step). At the next step the parameter's gradient is
    fitted as ``a * fresh + b * previous``: ``b`` near 0 means it was reset,
    near ``a`` that it accumulated (clipping scales both alike).
    """

    def __init__(self, param: nn.Parameter):
        self.param = param
        self.previous = torch.zeros_like(param) if param.grad is None else param.grad.detach().clone()
        self.fresh = torch.zeros_like(param)
        self.handle = param.register_hook(self._add)

    def _add(self, grad: torch.Tensor) -> None:
        self.fresh += grad.detach()

    def verdict(self) -> bool | None:
        """True when accumulated, False when reset, None when it cannot be told."""
        self.handle.remove()
        grad = self.param.grad
        if grad is None or not self.fresh.any():
            return None
        if not self.previous.any():
            return False  # reset right after the step (zero_grad after step())
        a, b, g = (t.detach().double().reshape(-1) for t in (self.fresh, self.previous, grad))
        if not (torch.isfinite(a).all() and torch.isfinite(b).all() and torch.isfinite(g).all()):
            return None
        if abs(float(a @ b)) / (float(a.norm() * b.norm()) or 1.0) > COLLINEAR:
            return None
        coef = torch.linalg.lstsq(torch.stack([a, b], dim=1), g[:, None]).solution[:, 0]
        return abs(float(coef[0])) > 0 and float(coef[1] / coef[0]) > ACCUMULATED


class LoopRecord:
    """What a training loop run elsewhere reports: losses, validations, sampled outputs and input-gradient profiles.

    Shared by :class:`Watch` and the framework callbacks; :meth:`write` turns it
    into the evidence and plots the training-run probes write.
    """

    def __init__(self, every: int, task: str | None = None):
        self.every, self.task = every, task
        self.losses: list[float | torch.Tensor] = []  # tensors on an accelerator until written
        self.val: list[dict[str, float]] = []
        self.epoch_ends: list[int] = []  # how many losses were logged at each validation
        self.outputs: deque[tuple[torch.Tensor, torch.Tensor]] = deque(maxlen=KEPT_OUTPUTS)
        self.profiles: list[Any] = []  # relative input-gradient profiles, first to last

    def add_loss(self, loss: torch.Tensor | float, outputs: torch.Tensor | None = None, targets: torch.Tensor | None = None) -> None:
        if isinstance(loss, torch.Tensor):
            # Read at once on a CPU, where there is no device to wait for: thousands of kept 0-dim tensors made a
            # 16-unit LSTM loop's own forward and backward passes ~5% slower in some profiles. On an accelerator the
            # value stays a tensor, read with the others at the end (no device sync per step).
            self.losses.append(loss.item() if loss.is_cpu else loss.detach().reshape(()))
        else:
            self.losses.append(float(loss))
        if outputs is not None and targets is not None and sampled(len(self.losses) - 1, self.every):
            self.outputs.append((outputs.detach().cpu(), targets.detach().cpu()))

    def add_validation(self, loss: float, step: int, **metrics: float) -> None:
        record = {"epoch": len(self.val) + 1, "step": step, "loss": float(loss)}
        record.update({k: float(v) for k, v in metrics.items()})
        self.val.append(record)
        self.epoch_ends.append(len(self.losses))

    def write(self, ctx: ProbeContext, steps: int, sequence_steps: int | None = None) -> None:
        """Loss curves, divergence, memory length and prediction spread into ``ctx.evidence`` and ``ctx.plots``.

        ``steps``: optimizer steps taken; ``sequence_steps``: time steps of the
        sequences the recurrence runs over, when known (the evidence key
        ``steps``, as the inspection writes it for a setup).
        """
        ev = ctx.evidence
        kept = [v for v in self.losses if isinstance(v, torch.Tensor)]
        read = iter(torch.stack(kept).double().cpu().tolist() if kept else [])
        losses = [next(read) if isinstance(v, torch.Tensor) else v for v in self.losses]
        diverged = next((i for i, v in enumerate(losses) if not math.isfinite(v)), None)
        bounds = list(zip([0, *self.epoch_ends], self.epoch_ends))
        ev.update(
            train_loss_steps=losses,
            train_loss_epochs=[sum(losses[a:b]) / (b - a) for a, b in bounds if b > a],
            val_history=self.val,
            stopped="diverged" if diverged is not None else "completed",
            diverged_at=diverged,
            steps_run=steps,
            steps_planned=steps,
            optimizer_steps=steps,
        )
        if sequence_steps is not None:
            ev["steps"] = sequence_steps
        totals = [v for v in (ctx.plots.get("gradients") or {}).get("total", []) if math.isfinite(v)]
        if len(totals) >= 8:
            quarter = len(totals) // 4
            first, last = sorted(totals[:quarter])[quarter // 2], sorted(totals[-quarter:])[quarter // 2]
            ev["grad_norm_growth"] = last / first if first > 0 else None
        if self.profiles:
            write_memory(ctx, len(self.profiles[0]), self.profiles[0], self.profiles[-1])
        self._prediction_spread(ctx)
        ctx.plots["loss_curve"] = {"train_steps": losses, "val": self.val, "steps_per_epoch": None,
                                   "steps_planned": steps, "stopped": ev["stopped"]}

    def _prediction_spread(self, ctx: ProbeContext) -> None:
        """Spread of the logged outputs against the logged targets, as the predictions probe measures it."""
        if not self.outputs:
            return
        try:
            out = torch.cat([o for o, _ in self.outputs])
            y = torch.cat([t for _, t in self.outputs])
        except RuntimeError:
            return  # batches of different shapes (padded per batch): no pooled spread
        task = self.task or _infer_task(out, y)
        setup = LoopSetup(None, task, outputs=out.shape[-1] if out.dim() > 1 else 1)
        spread = PredictionSpread(ProbeContext(setup, ctx.budget, evidence=ctx.evidence, plots=ctx.plots))
        if task == "regression":
            spread._regression(out, y if y.numel() != out.numel() else y.reshape(out.shape), None)
        else:
            probabilities = bool(((out >= 0) & (out <= 1)).all()) and task == "binary"
            spread.measure(out, y, Objective("ce" if task == "multiclass" else "bce", task, threshold=0.5 if probabilities else 0.0))


def judge_loop(ctx: ProbeContext, setup: dict[str, Any], logged: bool) -> Report:
    """The report on a loop's evidence: the same rules, ranking and symptom as ``examine``."""
    ev = Evidence(ctx.evidence)
    report = Report(setup=setup)
    report.findings = rank(judge_noting_failures(report, ev))
    report.symptom = judge_symptom(ev)
    report.probes, report.evidence = ctx.plots, ev
    if not logged:
        report.notes.append("No training losses were logged; the loss curve and the symptom are not measured.")
    note_training_faults(report, ev)
    return report


class Watch:
    """Collects training evidence from the user's own loop; ``report()`` judges it.

    >>> with lstm_doctor.watch(model, optimizer) as w:  # doctest: +SKIP
    ...     for x, y in loader:
    ...         optimizer.zero_grad()
    ...         out = model(x)
    ...         loss = loss_fn(out, y)
    ...         loss.backward()
    ...         optimizer.step()
    ...         w.log(loss, out, y)
    >>> w.report().findings  # doctest: +SKIP
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, every: int = 50, *,
                 task: str | None = None, max_overhead: float | None = MAX_OVERHEAD, step_hooks: bool = True):
        if not isinstance(model, nn.Module):
            raise InputError(f"watch needs the torch.nn.Module being trained; got {type(model).__name__}.")
        if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
            raise InputError(f"optimizer must be a torch.optim.Optimizer (or None to find it at its first step); got {type(optimizer).__name__}.")
        if not isinstance(every, int) or every < 1:
            raise InputError(f"every must be a whole number of steps, 1 or more; got {every!r}.")
        if task is not None and task not in TASKS:
            raise InputError(f"task must be one of {', '.join(TASKS)} (or None to infer it from log()); got {task!r}.")
        if max_overhead is not None and not (isinstance(max_overhead, (int, float)) and 0 < max_overhead < 1):
            raise InputError(f"max_overhead must be a share of the step time between 0 and 1 (e.g. 0.04), or None to "
                             f"sample every {every} steps whatever it costs; got {max_overhead!r}.")
        self.model, self.optimizer, self.every, self.task = model, optimizer, every, task
        self.max_overhead = max_overhead
        self.interval = every  # the spacing of sampled steps in force: every, or wider when they cost too much
        self.norm_every = 1  # the spacing of the total gradient norm's reads in force
        # False: a framework that runs forward and backward inside optimizer.step(closure)
        # (Lightning) calls before_step() and after_step() from its own hooks instead.
        self.step_hooks = step_hooks
        self.evidence = Evidence()
        self.plots: dict[str, Any] = {}
        self.ctx: ProbeContext | None = None
        self.state: TrainState | None = None
        self.instruments: list[Callback] = []
        self._grads: GradientMonitor | None = None
        self._gates: GateMonitor | None = None
        self.record = LoopRecord(every, task)
        self.zero_grad_calls = 0
        self.lrs: list[float] = []
        self.accumulated: list[bool] = []
        # Total gradient norm of every step read (every norm_every-th): the gradient monitor measures it on
        # sampled steps only here, and this denser series replaces its own at the end.
        self.totals: list[float] = []
        self.norm_steps: list[int] = []  # the step of each total
        self._norms: list[list[torch.Tensor]] = []
        self._params: list[nn.Parameter] = []
        self._one_device = True
        self._check_param: nn.Parameter | None = None
        # The sampling schedule: the next sampled step, the latest one, and how many have begun.
        self._next, self._last_sampled, self._cycle_index = 0, -1, 0
        # Timing (perf_counter seconds): the loop's own time per step (between two optimizer
        # steps, less the watch's work in between), the watch's own work on plain steps (less the
        # gradient norm), per read of the gradient norm, and per sampled step.
        self._plain: deque[float] = deque(maxlen=PLAIN_KEPT)
        self._always: deque[float] = deque(maxlen=PLAIN_KEPT)
        self._norm_reads: deque[float] = deque(maxlen=PLAIN_KEPT)
        self._last_begin: float | None = None
        self._own, self._own_then = 0.0, 0.0  # all the watch's own seconds, and as they were at the last step
        self._cycle_s = 0.0  # the sampled step in progress
        self._cycle_costs: deque[float] = deque(maxlen=CYCLES_KEPT)  # the latest sampled steps, settling included
        self._settling = 0  # steps after the latest counted sampled step still charged to it
        self.probe: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self._time_axis = 1
        self._check: _AccumulationCheck | None = None
        self._capture_handle = None
        self._handles: list[Any] = []
        self._patched: list[tuple[Any, bool]] = []
        self._busy = False
        self._running = False
        self._finished = False

    # --- lifecycle ---------------------------------------------------------

    def __enter__(self) -> "Watch":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> None:
        """Install the hooks (``with watch(...)`` does this)."""
        if self._running or self._finished:
            raise InputError("This watch has already run; start a new lstm_doctor.watch(...) for another loop.")
        self._running = True
        self._patch_zero_grad(self.model)
        if self.optimizer is not None:
            self._adopt(self.optimizer)
        elif self.step_hooks:  # the optimizer is found at its first step: any optimizer over the model's parameters
            self._handles += [register_optimizer_step_pre_hook(self._global_pre),
                              register_optimizer_step_post_hook(self._global_post)]
        self._arm_capture()

    def stop(self) -> None:
        """Remove every hook and restore ``zero_grad``; the evidence is complete."""
        if not self._running:
            return
        self._running = False
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._disarm_capture()
        if self._check is not None:
            self._check.handle.remove()
            self._check = None
        for obj, own in reversed(self._patched):
            if own is _NONE:
                vars(obj).pop("zero_grad", None)
            else:
                object.__setattr__(obj, "zero_grad", own)
        self._patched.clear()
        self._finish()

    # --- what the user's loop tells us -------------------------------------

    def log(self, loss: torch.Tensor | float, outputs: torch.Tensor | None = None, targets: torch.Tensor | None = None) -> None:
        """Record a training step's loss (and, optionally, its outputs and targets for the prediction spread).

        Cheap at every step: the loss is read (on an accelerator kept as a
        detached tensor, no device sync); outputs are kept on sampled steps
        only. Timed as the watch's own work.
        """
        begin = time.perf_counter()
        self.record.add_loss(loss, outputs, targets)
        spent = time.perf_counter() - begin
        if self.just_sampled():
            self._charge(spent)
        else:
            self._always_on(spent)

    def log_val(self, loss: torch.Tensor | float, **metrics: float) -> None:
        """Record a validation result (loss and metrics such as ``accuracy``), e.g. at each epoch's end."""
        self.record.add_validation(float(loss), self.state.step if self.state else 0, **metrics)

    # --- hooks -------------------------------------------------------------

    def _patch_zero_grad(self, obj: Any) -> None:
        """Count calls of ``obj.zero_grad`` through an instance attribute, removed again by :meth:`stop`."""
        own = vars(obj).get("zero_grad", _NONE)
        original: Callable[..., Any] = obj.zero_grad

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.zero_grad_calls += 1
            return original(*args, **kwargs)

        object.__setattr__(obj, "zero_grad", counted)
        self._patched.append((obj, own))

    def _adopt(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self._patch_zero_grad(optimizer)
        if self.step_hooks:
            self._handles += [optimizer.register_step_pre_hook(lambda *_: self.before_step()),
                              optimizer.register_step_post_hook(lambda *_: self.after_step())]

    def _global_pre(self, optimizer: torch.optim.Optimizer, *_: Any) -> None:
        if self.optimizer is None:
            mine = {id(p) for p in self.model.parameters()}
            if any(id(p) in mine for g in optimizer.param_groups for p in g["params"]):
                self.optimizer = optimizer  # the first optimizer over the model's parameters
                self._patch_zero_grad(optimizer)
        if optimizer is self.optimizer:
            self.before_step()

    def _global_post(self, optimizer: torch.optim.Optimizer, *_: Any) -> None:
        if optimizer is self.optimizer:
            self.after_step()

    def _arm_capture(self) -> None:
        if self._capture_handle is None:
            self._capture_handle = self.model.register_forward_pre_hook(self._capture, with_kwargs=True)

    def _disarm_capture(self) -> None:
        if self._capture_handle is not None:
            self._capture_handle.remove()
            self._capture_handle = None

    def _capture(self, module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        """One forward pass of a sampled step: keep the probe batch (first time) and catch dL/dx."""
        if self._busy or not torch.is_grad_enabled() or not args or not isinstance(args[0], torch.Tensor):
            return None
        begin = time.perf_counter()
        try:
            return self._catch_input(args, kwargs)
        finally:
            self._charge(time.perf_counter() - begin)

    def _catch_input(self, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        self._disarm_capture()
        x = args[0]
        if not x.is_floating_point() or x.dim() != 3:
            return None  # token ids or unbatched input: no per-step input gradient
        lengths = args[1] if len(args) > 1 and isinstance(args[1], torch.Tensor) and args[1].dim() == 1 \
            and len(args[1]) == len(x) and not args[1].is_floating_point() else None
        if self.probe is None:  # kept in the model's own layout; the gate probe needs batch-first
            self._time_axis = self._find_time_axis(x)
            keep = min(PROBE_BATCH, x.shape[1 - self._time_axis])
            probe_x = x.detach()[:keep] if self._time_axis == 1 else x.detach()[:, :keep]
            self.probe = (probe_x.clone(), None if lengths is None else lengths[:keep].detach().clone())
        if x.requires_grad:
            x.register_hook(self._input_gradient(lengths))
            return None
        x = x.detach().requires_grad_(True)  # a leaf with no parameters upstream: same graph for the weights
        x.register_hook(self._input_gradient(lengths))
        return (x, *args[1:]), kwargs

    def _find_time_axis(self, x: torch.Tensor) -> int:
        """0 when the first recurrent layer takes the model's input as (steps, batch, features), else 1."""
        first = next((m for m in self.model.modules() if isinstance(m, nn.RNNBase)), None)
        return 0 if first is not None and not first.batch_first and first.input_size == x.shape[-1] else 1

    def _input_gradient(self, lengths: torch.Tensor | None) -> Callable[[torch.Tensor], None]:
        def keep(grad: torch.Tensor) -> None:
            begin = time.perf_counter()
            g = grad.detach() if self._time_axis == 1 else grad.detach().transpose(0, 1)
            ends = (lengths.to(g.device) - 1).clamp(min=0) if lengths is not None else torch.full((len(g),), g.shape[1] - 1, device=g.device)
            profile = relative_profile(g, ends)
            if profile is not None:
                self.record.profiles.append(profile)
            self._charge(time.perf_counter() - begin)

        return keep

    def _begin(self) -> None:
        """Build the instruments' context from the first batch seen, and start them."""
        budget = replace(get_budget("quick"), probe_every=self.every)
        probe = None
        if self.probe is not None:
            x, lengths = self.probe
            probe = Windows(x, torch.zeros(len(x)), lengths=lengths)
        self.ctx = ProbeContext(LoopSetup(probe), budget, evidence=self.evidence, plots=self.plots)
        self._grads = GradientMonitor(self.ctx)
        self.instruments = [self._grads]
        if probe is not None and self._time_axis == 1 and any(isinstance(m, nn.RNNBase) for m in self.model.modules()):
            self._gates = GateMonitor(self.ctx)
            self.instruments.append(self._gates)
        for instrument in self.instruments:
            instrument.every = 1  # the watch picks the steps; called, an instrument measures
        self.state = TrainState(self.model, self.optimizer, None, self.ctx.setup.data)
        self._params = [p for g in self.optimizer.param_groups for p in g["params"] if p.requires_grad]
        self._one_device = len({p.device for p in self._params}) <= 1
        self._check_param = _check_parameter(self.optimizer)
        self._run("on_train_begin")

    def _run(self, hook: str, *instruments: Instrument | None) -> None:
        """Call ``hook`` of the given instruments (default: all), with the watch's own hooks idle."""
        self._busy = True
        try:
            for instrument in instruments or self.instruments:
                if instrument is not None:
                    getattr(instrument, hook)(self.state)
        finally:
            self._busy = False

    def before_step(self) -> None:
        """The gradients of this step are in place and the update comes next (an optimizer step pre-hook)."""
        if self._busy or not self._running:
            return
        begin = time.perf_counter()
        if self.state is None:
            self._begin()
        sampled = self.state.step == self._next
        if self._last_begin is not None:  # the loop's own time for its last step
            loop_s = begin - self._last_begin - (self._own - self._own_then)
            if sampled and len(self._plain) >= MIN_PLAIN:
                # The loop's own forward and backward ran with the capture hooks armed: what they took
                # beyond a plain step is the sampled step's cost too, though no timer of the watch saw it.
                self._cycle_s += self._excess(loop_s, SAMPLED_EXCESS_LIMIT)
            elif self._settling:
                self._settling -= 1
                self._cycle_costs[-1] += self._excess(loop_s, SETTLING_EXCESS_LIMIT)
            else:
                self._plain.append(loop_s)
        self._last_begin, self._own_then = begin, self._own
        if self._check is not None:
            verdict = self._check.verdict()
            self._check = None
            if verdict is not None:
                self.accumulated.append(verdict)
        read_s = self._read_norm() if self.state.step % self.norm_every == 0 else None
        if sampled:
            self._flush_norms()
            self._run("after_backward")
            self._charge(time.perf_counter() - begin)
        else:
            spent = time.perf_counter() - begin
            self._own += spent
            self._always.append(spent if read_s is None else spent - read_s)
            if read_s is not None:
                self._norm_reads.append(read_s)

    def _read_norm(self) -> float:
        """Keep this step's gradient norms (read out with the next flush); the seconds it took."""
        begin = time.perf_counter()
        self.norm_steps.append(self.state.step)
        self._norms.append(self._step_norms())
        if len(self._norms) >= NORMS_KEPT:
            self._flush_norms()
        # The spacing of the reads, judged again every NORMS_KEPT reads.
        if len(self.norm_steps) % NORMS_KEPT == 0 and self.max_overhead is not None and len(self._plain) >= MIN_PLAIN \
                and self._norm_reads:
            self.norm_every = norm_spacing(statistics.median(self._norm_reads), self._plain_step(),
                                           NORM_SHARE * self.max_overhead)
        return time.perf_counter() - begin

    def _step_norms(self) -> list[torch.Tensor]:
        """This step's gradient norms per parameter, as tensors: one fused kernel, no host sync (combined when flushed)."""
        grads = [p.grad for p in self._params if p.grad is not None]
        if not grads:
            return [torch.zeros(())]
        return torch._foreach_norm(grads) if self._one_device else [torch.nn.utils.get_total_norm(grads)]

    def _flush_norms(self) -> None:
        """The kept per-parameter norms of each step as total norms (one host sync for them all)."""
        if self._norms:
            if len({len(norms) for norms in self._norms}) == 1:  # the same parameters with gradients: one stacked pass
                stacked = torch.stack([n.float() for norms in self._norms for n in norms]).reshape(len(self._norms), -1)
                self.totals += torch.linalg.vector_norm(stacked, dim=1).cpu().tolist()
            else:
                totals = [torch.linalg.vector_norm(torch.stack([n.float() for n in norms])) for norms in self._norms]
                self.totals += torch.stack(totals).cpu().tolist()
            self._norms.clear()

    def after_step(self) -> None:
        """The optimizer has updated the weights (an optimizer step post-hook)."""
        if self._busy or self.state is None or not self._running:
            return
        begin = time.perf_counter()
        step = self.state.step
        self.state.step = step + 1
        self.lrs.append(float(self.optimizer.param_groups[0]["lr"]))
        closing = step == self._next
        if closing:  # the sampled step's update: update-to-weight ratios
            self._run("after_step", self._grads)
            self._charge(time.perf_counter() - begin)
            self._close_cycle(step)
        if step + 1 == self._next:
            opened = time.perf_counter()
            self._open_cycle()
            self._charge(time.perf_counter() - opened)
        elif not closing:
            self._always_on(time.perf_counter() - begin)

    def _open_cycle(self) -> None:
        """Before the next step is sampled: the gates (every other sampled step), the input-gradient catch, the reset check."""
        self._cycle_index += 1
        if self._cycle_index % GATE_EVERY == 0:
            self._run("after_step", self._gates)
        self._arm_capture()
        if self._check_param is not None:
            self._check = _AccumulationCheck(self._check_param)

    def _close_cycle(self, step: int) -> None:
        """A sampled step is done: count its cost, and space the next one by what the steps so far cost."""
        if step > 0:  # the first sampled step also starts the instruments: paid once
            self._cycle_costs.append(self._cycle_s)
        self._cycle_s = 0.0
        self._last_sampled = step
        # Judged once both kinds of sampled step (with and without the gates) have been timed.
        if self.max_overhead is not None and len(self._cycle_costs) >= GATE_EVERY and len(self._plain) >= MIN_PLAIN:
            self.interval = sampling_interval(self.every, self._cycle_cost(), self._plain_step(),
                                              self._always_step(), self.max_overhead)
            self.record.every = self.interval
        self._next = step + self.interval
        # The steps that follow are charged to this one, up to half the spacing: the rest stay plain steps, the yardstick.
        self._settling = min(SETTLING_STEPS, self.interval // 2) if step > 0 and len(self._plain) >= MIN_PLAIN else 0

    def _cycle_cost(self) -> float:
        """The watch's seconds per sampled step: the median over adjacent pairs of the latest ones."""
        costs = list(self._cycle_costs)
        return statistics.median([(a + b) / 2 for a, b in zip(costs, costs[1:])] or costs)

    def _always_step(self) -> float:
        """The watch's own seconds at a plain step, its gradient-norm reads spread over the steps between them
        (medians: the loop's own pauses fall on a few of them)."""
        base = (1 + UNSEEN_PER_SEEN) * statistics.median(self._always) if self._always else 0.0
        return base + (statistics.median(self._norm_reads) / self.norm_every if self._norm_reads else 0.0)

    def _always_on(self, seconds: float) -> None:
        """The watch's own work for the plain step whose before_step came last."""
        self._own += seconds
        if self._always:
            self._always[-1] += seconds

    def _plain_step(self) -> float:
        """The loop's own seconds per step (median: its validations and pauses fall on a few steps)."""
        return statistics.median(self._plain)

    def _excess(self, loop_s: float, limit: float) -> float:
        """What a step of the loop took beyond a plain one, up to ``limit`` plain steps."""
        plain = self._plain_step()
        return min(loop_s - plain, limit * plain)

    def _charge(self, seconds: float) -> None:
        """The watch's own work for a sampled step."""
        self._cycle_s += seconds
        self._own += seconds

    def overhead(self) -> float | None:
        """The watch's estimated share of the loop's time at the spacing in force (None before it was timed)."""
        if not self._cycle_costs or len(self._plain) < MIN_PLAIN or self._plain_step() <= 0:
            return None
        return (self._always_step() + self._cycle_cost() / self.interval) / self._plain_step()

    def just_sampled(self) -> bool:
        """Whether the optimizer step just taken was sampled (for a framework callback's own measurements)."""
        return self.state is not None and self.state.step - 1 == self._last_sampled

    @contextlib.contextmanager
    def sampling_work(self) -> Iterator[None]:
        """Time work a framework callback adds to sampled steps as the watch's own, so the spacing accounts for it."""
        begin = time.perf_counter()
        try:
            yield
        finally:
            self._charge(time.perf_counter() - begin)

    # --- judging -----------------------------------------------------------

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        if self.state is not None:
            self._flush_norms()
            # The gradient monitor judges spikes on the norms of every step read.
            self._grads.totals, self._grads.total_steps = self.totals, self.norm_steps
            self._run("on_train_end")
        else:  # no optimizer step was seen
            self.ctx = ProbeContext(LoopSetup(None), get_budget("quick"), evidence=self.evidence, plots=self.plots)
        steps = self.state.step if self.state is not None else 0
        sequence = self.probe[0].shape[self._time_axis] if self.probe is not None else None
        self.record.write(self.ctx, steps, sequence)
        self.evidence.update(
            source_kind="watch",
            zero_grad_calls=self.zero_grad_calls,
            grad_reset_checks=len(self.accumulated),
            grad_accumulated_checks=sum(self.accumulated),
            lr_steps=self.lrs,
            lr=self.lrs[-1] if self.lrs else None,
            optimizer=type(self.optimizer).__name__ if self.optimizer is not None else None,
            watch_every=self.every,
            watch_interval=self.interval,
            watch_norm_every=self.norm_every,
            watch_overhead=self.overhead(),
        )

    def report(self) -> Report:
        """The ranked findings on what the loop showed (stops the watch if it is still running)."""
        self.stop()
        setup = {"source": "watch", "model_class": type(self.model).__name__, "optimizer": self.evidence.get("optimizer"),
                 "every": self.every, "interval": self.interval, "norm_every": self.norm_every,
                 "max_overhead": self.max_overhead}
        report = judge_loop(self.ctx, setup, bool(self.record.losses))
        if self.interval > self.every:
            cost = self._cycle_cost() / self._plain_step() if self._plain_step() > 0 else math.inf
            report.notes.append(
                f"Measured every {self.interval} steps instead of every {self.every}: a sampled step costs the watch "
                f"{cost:.1f} of your plain steps, and it keeps to {self.max_overhead:.0%} of the loop's time "
                f"(watch(..., max_overhead=None) samples every {self.every} steps).")
        steps = self.state.step if self.state is not None else 0
        if len(self.norm_steps) < steps:
            report.notes.append(
                f"The total gradient norm (for gradient spikes) was read on {len(self.norm_steps):,} of {steps:,} steps, "
                f"not all: a read costs the watch {statistics.median(self._norm_reads) / self._plain_step():.0%} of "
                f"your plain step, and it keeps the reads to {NORM_SHARE * self.max_overhead:.0%} of the loop's time "
                f"(watch(..., max_overhead=None) reads it at every step).")
        return report


def _check_parameter(optimizer: torch.optim.Optimizer) -> nn.Parameter | None:
    """The optimized parameter the accumulation check follows: the largest up to a million values."""
    params = [p for g in optimizer.param_groups for p in g["params"] if p.requires_grad]
    small = [p for p in params if p.numel() <= 1_000_000 and p.numel() > 1]
    return max(small, key=lambda p: p.numel(), default=None)


class LoopSetup:
    """What the instruments read from a Setup, for a loop lstm-doctor does not run itself.

    ``probe``: the fixed batch the gate probe recomputes on (None: no gates).
    """

    clip_norm = None

    def __init__(self, probe: Windows | None, task: str = "regression", outputs: int = 1):
        probe = probe if probe is not None else Windows(torch.zeros(1, 1, 1), torch.zeros(1))
        classes = [str(c) for c in range(max(outputs, 2))] if task != "regression" else None
        self.data = SequenceData(train=probe, val=probe, task=task, feature_names=[f"x{j}" for j in range(probe.inputs.shape[-1])],
                                 target_names=[f"y{j}" for j in range(outputs)] if task == "regression" and outputs > 1 else ["y"],
                                 classes=classes)


def watch(model: nn.Module, optimizer: torch.optim.Optimizer | None = None, every: int = 50, *, task: str | None = None,
          max_overhead: float | None = MAX_OVERHEAD) -> Watch:
    """Watch the user's own training loop: ``with lstm_doctor.watch(model, optimizer) as w: ...``, then ``w.report()``.

    ``every``: the least number of steps between the sampled measurements
    (gradients per layer, gates, update ratios, input gradients); the watch
    spaces them wider, in multiples of ``every``, where they would take more
    than ``max_overhead`` of the loop's time, and read the total gradient norm
    on fewer steps where its cost is a large share of a short step (None:
    exactly every ``every`` steps, and the norm at every step, whatever they
    cost). ``optimizer``: found at its first
    step when not given (its ``zero_grad`` calls then count from that step on).
    ``task`` (regression, binary, multiclass) is inferred from what ``w.log``
    receives when not given.
    """
    return Watch(model, optimizer, every, task=task, max_overhead=max_overhead)
