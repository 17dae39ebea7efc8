"""lstm_doctor.watch around users' own training loops, on real data.

A loop that never calls zero_grad() (gradients accumulate) under Adam or SGD
gives T310 first; the same loop with zero_grad() gives no critical finding;
and a watched loop trains bit for bit like the unwatched one. Where steps are
short, the gradient norm is read on fewer steps, and T304 is judged on those.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np
import pytest
import torch
from torch import nn

from lstm_doctor import InputError, watch
from lstm_doctor.watch import MAX_OVERHEAD, MIN_SAMPLED_SHARE, NORMS_KEPT, norm_spacing, sampling_interval
from user_models import Classifier, Forecaster, criticals, sunspot_windows, ucr


def italy_tensors(italy_power):
    (x, y), (xv, yv) = ucr(italy_power)
    return torch.tensor(x), torch.tensor(y), torch.tensor(xv), torch.tensor(yv)


def train_loop(model, optimizer, loss_fn, x, y, xv, yv, *, epochs: int, batch: int = 16, zero_grad: bool = True, w=None):
    """The loop users write: shuffle, forward, loss, backward, step; validate each epoch."""
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for start in range(0, len(x), batch):
            idx = order[start : start + batch]
            if zero_grad:
                optimizer.zero_grad()
            out = model(x[idx])
            loss = loss_fn(out, y[idx])
            loss.backward()
            optimizer.step()
            if w is not None:
                w.log(loss, out, y[idx])
        if w is not None:
            with torch.no_grad():
                w.log_val(loss_fn(model(xv), yv))


def watched(model, optimizer, loss_fn, data, *, epochs, zero_grad=True, every=10):
    """The loop under a watch sampling exactly every ``every`` steps: these tests count what the sampled steps saw,
    and the default spacing, set by measured time, would make the counts depend on the machine's load."""
    torch.manual_seed(1)
    with watch(model, optimizer, every=every, max_overhead=None) as w:
        train_loop(model, optimizer, loss_fn, *data, epochs=epochs, zero_grad=zero_grad, w=w)
    return w, w.report()


def test_no_zero_grad_under_adam_is_t310_first(italy_power):
    torch.manual_seed(0)
    model = Classifier(nn.LSTM, 1, 2)
    w, report = watched(model, torch.optim.Adam(model.parameters(), lr=1e-2), nn.CrossEntropyLoss(), italy_tensors(italy_power),
                        epochs=20, zero_grad=False)
    ev = w.evidence
    assert ev.zero_grad_calls == 0 and ev.optimizer_steps == 100
    assert ev.grad_reset_checks >= 5 and ev.grad_accumulated_checks == ev.grad_reset_checks
    assert ev.grad_norm_growth > 3  # the summed gradient keeps growing
    assert report.findings[0].code == "T310", report.findings


def test_no_zero_grad_under_sgd_on_sunspots_gru_is_t310_first(sunspots_frame):
    (x, y), (xv, yv) = sunspot_windows(sunspots_frame)
    torch.manual_seed(0)
    model = Forecaster(nn.GRU)
    w, report = watched(model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), nn.MSELoss(), (x, y, xv, yv),
                        epochs=8, zero_grad=False)
    assert w.evidence.grad_accumulated_checks == w.evidence.grad_reset_checks >= 5
    assert report.findings[0].code == "T310", report.findings


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU])
def test_healthy_loop_has_no_critical_finding(italy_power, cell):
    torch.manual_seed(0)
    model = Classifier(cell, 1, 2)
    w, report = watched(model, torch.optim.Adam(model.parameters(), lr=1e-2), nn.CrossEntropyLoss(), italy_tensors(italy_power),
                        epochs=20)
    ev = w.evidence
    assert ev.zero_grad_calls == ev.optimizer_steps == 100
    assert ev.grad_accumulated_checks == 0 and ev.grad_reset_checks >= 5
    assert not criticals(report), report.findings
    # The instruments of the examination ran on the user's loop.
    assert ev.gate_saturation and ev.grad_norm_per_layer and ev.memory_length is not None
    assert len(ev.train_loss_steps) == 100 and len(ev.val_history) == 20 and len(ev.lr_steps) == 100
    assert ev.grad_norm_steps == list(range(100)) and ev.watch_norm_every == 1  # max_overhead=None: every step's norm
    assert {"gradients", "gates", "memory_length", "update_ratio", "loss_curve"} <= set(report.probes)


def test_healthy_sunspots_loop_has_no_critical_finding(sunspots_frame):
    (x, y), (xv, yv) = sunspot_windows(sunspots_frame)
    torch.manual_seed(0)
    model = Forecaster(nn.LSTM)
    w, report = watched(model, torch.optim.Adam(model.parameters(), lr=1e-2), nn.MSELoss(), (x, y, xv, yv), epochs=8)
    assert not criticals(report), report.findings
    assert w.evidence.prediction_spread > 0.3  # the outputs follow the targets


def _train(italy_power, use_watch: bool):
    torch.manual_seed(0)
    model = Classifier(nn.LSTM, 1, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    data = italy_tensors(italy_power)
    torch.manual_seed(1)
    if use_watch:
        with watch(model, optimizer, every=3, max_overhead=None) as w:  # sample often: no measurement may leave a trace
            train_loop(model, optimizer, nn.CrossEntropyLoss(), *data, epochs=4, w=w)
        w.report()
    else:
        train_loop(model, optimizer, nn.CrossEntropyLoss(), *data, epochs=4)
    return model, optimizer, torch.get_rng_state()


def test_a_watched_loop_trains_exactly_like_an_unwatched_one(italy_power):
    plain, plain_opt, plain_rng = _train(italy_power, use_watch=False)
    seen, seen_opt, seen_rng = _train(italy_power, use_watch=True)
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), seen.state_dict().values()))
    assert torch.equal(plain_rng, seen_rng)
    for a, b in zip(plain_opt.state_dict()["state"].values(), seen_opt.state_dict()["state"].values()):
        assert all(torch.equal(a[k], b[k]) for k in a)
    # Every hook is gone and zero_grad is the class's own again.
    assert "zero_grad" not in vars(seen_opt) and "zero_grad" not in vars(seen)
    assert not seen._forward_pre_hooks and not seen_opt._optimizer_step_pre_hooks and not seen_opt._optimizer_step_post_hooks
    assert all(not p._backward_hooks for p in seen.parameters() if p._backward_hooks is not None)


def test_the_optimizer_is_found_at_its_first_step(italy_power):
    torch.manual_seed(0)
    model = Classifier(nn.GRU, 1, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with watch(model, every=5) as w:  # no optimizer given
        train_loop(model, optimizer, nn.CrossEntropyLoss(), *italy_tensors(italy_power), epochs=2, w=w)
    ev = w.report() and w.evidence
    # Its zero_grad calls count from its first step on (the call before that one came unannounced).
    assert ev.optimizer == "SGD" and ev.optimizer_steps == 10 and ev.zero_grad_calls == 9
    assert "zero_grad" not in vars(optimizer)


def test_watch_rejects_what_it_cannot_watch():
    model = Classifier(nn.LSTM, 1, 2)
    with pytest.raises(InputError, match="torch.nn.Module"):
        watch(np.zeros(3))
    with pytest.raises(InputError, match="every"):
        watch(model, every=0)
    with pytest.raises(InputError, match="torch.optim.Optimizer"):
        watch(model, optimizer="adam")


def test_sampling_interval_keeps_the_share_and_the_users_least_spacing():
    # A sampled step costing 5 plain steps, 0.01 of a step always on: 4% - 1% leaves 3%, so 5 / 0.03 = 167 steps -> 170.
    assert sampling_interval(10, cycle_s=5e-3, plain_s=1e-3, always_s=1e-5, max_overhead=0.04) == 170
    # Sampled steps that cost little against a long step: the user's spacing stands.
    assert sampling_interval(10, cycle_s=1e-3, plain_s=0.1, always_s=1e-5, max_overhead=0.04) == 10
    # The always-on work alone above the share: the sampled steps still get the floor share.
    assert sampling_interval(50, cycle_s=2e-3, plain_s=1e-3, always_s=5e-5, max_overhead=0.04) == 2e-3 / (MIN_SAMPLED_SHARE * 1e-3)


def test_the_default_watch_spaces_costly_samples_to_keep_its_share(italy_power):
    """A 16-unit model: a sampled step (gates recomputed step by step, input gradients, per-layer norms) costs the
    watch several of its plain steps, so sampling every 5 steps would take far more than 3% of the loop."""
    x, y, _, _ = italy_tensors(italy_power)

    def run(every, **kwargs):
        torch.manual_seed(0)
        model = Classifier(nn.LSTM, 1, 2)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        with watch(model, optimizer, every=every, **kwargs) as w:
            train_loop(model, optimizer, nn.CrossEntropyLoss(), x, y, x[:8], y[:8], epochs=40, w=w)
        return w, w.report()

    w, report = run(5)
    ev = w.evidence
    assert ev.watch_every == 5 and ev.watch_interval == w.interval > 5 and w.interval % 5 == 0
    assert report.setup["interval"] == w.interval and any(f"every {w.interval} steps" in n for n in report.notes)
    # The first sampled steps come at the user's spacing: they are what is timed.
    assert report.probes["gradients"]["steps"][:3] == [0, 5, 10]
    # A larger share (10%) at every 2 steps: many sampled steps, spaced wider than 2 and by multiples of 2.
    w, report = run(2, max_overhead=0.1)
    steps = report.probes["gradients"]["steps"]
    gaps = [b - a for a, b in zip(steps, steps[1:])]
    assert len(steps) > 5 and all(g % 2 == 0 for g in gaps) and max(gaps) > 2, steps
    assert 0 < w.evidence.watch_overhead < 0.2



class Clock:
    """The watch's clock, run by the model: a training forward pass takes 1 ms, plus what ``extra`` returns for it;
    the watch's own work takes no time. The spacing then follows only what the loop's own passes cost."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


class Timed(Classifier):
    """A 16-unit classifier whose training steps take 1 ms on the :class:`Clock`, plus ``extra(sampled)``."""

    def __init__(self, clock: Clock, extra=lambda sampled: 0.0):
        super().__init__(nn.LSTM, 1, 2)
        self.clock, self.extra = clock, extra

    def forward(self, x):
        if torch.is_grad_enabled():  # the watch differentiates the input of a sampled step
            self.clock.now += 1e-3 + self.extra(x.requires_grad)
        return super().forward(x)


watch_module = sys.modules["lstm_doctor.watch"]  # the package's ``watch`` is the function


def _interval_on_the_clock(italy_power, monkeypatch, extra) -> int:
    """The spacing a watch settles on at the default share when the loop's steps cost what ``extra`` adds."""
    clock = Clock()
    monkeypatch.setattr(watch_module, "time", clock)
    x, y, _, _ = italy_tensors(italy_power)
    torch.manual_seed(0)
    model = Timed(clock, extra)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    with watch(model, optimizer, every=5) as w:
        train_loop(model, optimizer, nn.CrossEntropyLoss(), x, y, x[:8], y[:8], epochs=100, w=w)
    return w.interval


def _after_sampled(steps: int, seconds: float):
    """``seconds`` more on each of the ``steps`` steps after a sampled one (as if its work had emptied the caches)."""
    left = [0]

    def extra(sampled: bool) -> float:
        if sampled:
            left[0] = steps
            return 0.0
        if left[0]:
            left[0] -= 1
            return seconds
        return 0.0

    return extra


def test_what_a_sampled_step_costs_the_loop_itself_counts_in_its_spacing(italy_power, monkeypatch):
    """What a sampled step adds to the loop's own passes, on that step or the few after it, is its cost too,
    though no timer of the watch saw it: the spacing widens as for the watch's own work."""
    def spacing(plain_steps: float) -> tuple[int, int]:  # what keeps that cost to MAX_OVERHEAD, in multiples of 5
        least = 5 * math.ceil(round(plain_steps / MAX_OVERHEAD, 6) / 5)
        return least, least + 5  # one more multiple where float rounding tips it over

    assert _interval_on_the_clock(italy_power, monkeypatch, lambda sampled: 0.0) == 5  # costs nothing: every 5
    # 3 ms more on a sampled step (its forward and backward with the capture hooks armed): 3 plain steps, kept
    # to MAX_OVERHEAD of the loop's time (every 120 steps at 2.5%).
    low, high = spacing(3)
    assert low <= _interval_on_the_clock(italy_power, monkeypatch, lambda sampled: 3e-3 if sampled else 0.0) <= high
    # 1 ms more on each of the 2 steps after it: 2 plain steps.
    low, high = spacing(2)
    assert low <= _interval_on_the_clock(italy_power, monkeypatch, _after_sampled(2, 1e-3)) <= high


def _pause(at_sampled: int, seconds: float, steps_after: int = 0):
    """``seconds`` once: on the ``at_sampled``-th sampled step, or on the ``steps_after``-th step after it."""
    count, left = [0], [-1]

    def extra(sampled: bool) -> float:
        count[0] += sampled
        if sampled and count[0] == at_sampled:
            left[0] = steps_after
        elif left[0] > 0:
            left[0] -= 1
        else:
            return 0.0
        if left[0] == 0:
            left[0] = -1
            return seconds
        return 0.0

    return extra


def test_a_pause_of_the_loop_at_a_sampled_step_is_not_taken_for_its_cost(italy_power, monkeypatch):
    """Half a second of the loop's own (a validation pass, a checkpoint) on a sampled step or a step after it is
    the loop pausing, not what sampling costs: charged in full, one such pause spaced the sampled steps
    thousands of steps apart for the rest of the loop."""
    # On the third sampled step, the second one timed: at most 4 plain steps are charged (spaced every 70),
    # and the median of the later ones, costing nothing, brings the spacing back.
    assert _interval_on_the_clock(italy_power, monkeypatch, _pause(3, 0.5)) <= 10
    # On the step after the eighth: at most 1 plain step charged, and outvoted as well.
    assert _interval_on_the_clock(italy_power, monkeypatch, _pause(8, 0.5, steps_after=1)) <= 10


def test_norm_spacing_thins_the_gradient_norm_only_where_it_costs_a_share_of_the_step():
    # A 40 us read against a 0.8 ms step (a 16-unit model) is 5% of it: every 8th step (5 rounded up to a power of two)
    # keeps it under 1%; against a 10 ms step it is 0.4%, and every step is read.
    assert norm_spacing(40e-6, plain_s=0.8e-3, share=0.01) == 8
    assert norm_spacing(40e-6, plain_s=10e-3, share=0.01) == 1
    assert norm_spacing(10e-6, plain_s=1e-3, share=0.01) == 1  # exactly at the share
    assert norm_spacing(11e-6, plain_s=1e-3, share=0.01) == 2
    assert norm_spacing(40e-6, plain_s=0.0, share=0.01) == 1  # not timed yet


def test_the_gradient_norm_is_read_on_fewer_steps_where_steps_are_cheap(sunspots_frame):
    """Steps of a few tens of microseconds (optimizer steps alone, on a tiny GRU) cost about what a read of the
    gradient norm costs: after the first NORMS_KEPT steps it is read every norm_every-th step, and the
    step count and learning rate stay exact."""
    (x, y), _ = sunspot_windows(sunspots_frame)
    torch.manual_seed(0)
    model = Forecaster(nn.GRU, hidden=4)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    steps = 2 * NORMS_KEPT + 2  # the spacing is judged at every NORMS_KEPT reads
    with watch(model, optimizer) as w:
        nn.functional.mse_loss(model(x[:16]), y[:16]).backward()
        for _ in range(steps):
            optimizer.step()
    report = w.report()
    ev = w.evidence
    read = ev.grad_norm_steps
    assert ev.optimizer_steps == len(ev.lr_steps) == steps and read == report.probes["gradients"]["total_steps"]
    assert read[:NORMS_KEPT] == list(range(NORMS_KEPT))  # every step until the first judgment
    assert ev.watch_norm_every == w.norm_every == report.setup["norm_every"] > 1
    assert len(read) < steps and all(s % w.norm_every == 0 for s in read[NORMS_KEPT:])
    assert any(f"read on {len(read)} of {steps} steps" in n for n in report.notes), report.notes
    # The watch's own estimate counts the reads, spread over the steps between them.
    assert w._always_step() >= np.median(w._norm_reads) / w.norm_every


def test_exploding_gradients_are_diagnosed_on_thinned_norms(sunspots_frame, monkeypatch):
    """A tanh RNN under SGD at 0.5 (its gradients overflow) with the norm read on every 4th step, as the watch reads it
    where steps are short (forced here: the spacing it would choose depends on the machine): T304 still, judged on the
    steps read, and the finding says how many were."""
    monkeypatch.setattr(sys.modules["lstm_doctor.watch"], "norm_spacing", lambda *_: 4)
    (x, y), (xv, yv) = sunspot_windows(sunspots_frame)
    torch.manual_seed(0)
    model = Forecaster(nn.RNN)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    torch.manual_seed(1)
    with watch(model, optimizer, every=10) as w:
        train_loop(model, optimizer, nn.MSELoss(), x, y, xv, yv, epochs=10, w=w)
    report = w.report()
    ev = w.evidence
    read = ev.grad_norm_steps
    assert w.norm_every == 4 and read[NORMS_KEPT:] == list(range(NORMS_KEPT, ev.optimizer_steps, 4))
    assert len(ev.grad_spike_ratios) == len(read) and ev.grad_first_nonfinite in read
    found = next(f for f in report.findings if f.code == "T304")
    assert found.severity == "critical" and found.evidence["grad_norms_read"] == len(read) < ev.optimizer_steps
    assert f"read on {len(read)} of {ev.optimizer_steps} steps" in found.summary, found.summary
