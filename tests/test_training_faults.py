"""Training faults are evidence, never a crash: a model that raises on some batches, an
out-of-memory error, a loss that becomes NaN or Inf, weights that explode. Each probe
records what happened, the report says it (notes, findings), ``status`` reflects it,
and the command line exits 0 or 1 with the report written and no traceback.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from torch import nn

import lstm_doctor
from lstm_doctor import cli, examine_model, watch
from lstm_doctor.budget import BUDGETS
from lstm_doctor.models import RecurrentModel
from lstm_doctor.training import TimeLimitReached, TrainingError, TrainResult
from small_cli import SMALL


class Flaky(nn.Module):
    """An LSTM classifier whose forward raises ``error`` on every ``every``-th call, as a
    model with a shape bug on some batches (or one that runs out of memory) does."""

    def __init__(self, every: int, error: type[BaseException] = RuntimeError):
        super().__init__()
        self.rnn = nn.LSTM(1, 8, batch_first=True)
        self.head = nn.Linear(8, 2)
        self.every, self.error, self.calls = every, error, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls % self.every == 0:
            raise self.error(f"batch {self.calls} failed")
        return self.head(self.rnn(x)[0][:, -1])


def italy(arrays: dict) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """ItalyPowerDemand with 0-based labels, as a user hands it over."""
    index = lambda y: (y.astype(int) - 1)  # noqa: E731
    return (arrays["X"], index(arrays["y"])), (arrays["X_val"], index(arrays["y_val"]))


def examined(model: nn.Module, italy_power: dict) -> lstm_doctor.Report:
    train, val = italy(italy_power)
    return examine_model(model, train, val, loss=nn.CrossEntropyLoss(), optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
                         task="multiclass", epochs=5, batch_size=16, budget=SMALL)


def test_a_model_that_raises_on_every_third_call_is_reported_not_fatal(italy_power):
    torch.manual_seed(0)
    model = Flaky(every=3)
    report = examined(model, italy_power)
    notes = " ".join(report.notes)
    assert report.status == "incomplete"
    assert "The training run at your settings failed" in notes and "RuntimeError: batch" in notes
    # The probes that need a whole run say they failed instead of judging a broken one:
    # before, the small-batch probe's crashed fit read as "cannot fit a small batch" (T309).
    assert "The small_batch probe failed: training raised RuntimeError" in notes
    assert "The lr_range probe failed" in notes
    assert not {"T309", "T301", "T302"} & set(report.codes()), report.findings
    assert report.probes["loss_curve"]["stopped"] == "error"
    json.loads(report.to_json())
    assert model.calls == 0  # only copies were trained


def test_out_of_memory_in_forward_is_a_note_with_advice(italy_power):
    """torch.cuda.OutOfMemoryError raised from forward, as on a GPU, here on the CPU."""
    torch.manual_seed(0)
    report = examined(Flaky(every=3, error=torch.cuda.OutOfMemoryError), italy_power)
    failures = [n for n in report.notes if "OutOfMemoryError" in n]
    assert report.status == "incomplete" and failures
    assert all("out of memory: a smaller batch size or model needs less" in n for n in failures)


def test_exploding_weights_are_findings_and_the_report_stays_strict_json(sunspots_frame):
    """A plain RNN with SGD at 0.5 on raw sunspot counts: gradients and weights blow up to Inf."""
    setup = lstm_doctor.setup_from(sunspots_frame, data={"target": "sunspots", "time": "year", "window": 8},
                                   model={"cell": "rnn", "hidden": 8}, training={"optimizer": "sgd", "lr": 0.5, "epochs": 5})
    report = lstm_doctor.examine(setup, budget=SMALL)
    assert report.status == "complete" and report.symptom == "diverging"  # divergence is a measurement
    assert report.probes["loss_curve"]["stopped"] == "diverged"
    assert {"T301", "T304"} <= set(report.codes()), report.findings
    text = report.to_json()  # strict JSON: non-finite numbers become strings
    assert json.loads(text)["probes"]["loss_curve"]["train_steps"][-1] in ("Infinity", "NaN")


def test_a_watched_loop_that_skips_failing_batches_gets_a_report_that_says_what_failed(italy_power):
    """The user's own loop catches a model's errors and goes on; the watch's instruments, which
    rerun the model, fail too: the report says so instead of judging without them."""
    x, y = (torch.tensor(a) for a in italy(italy_power)[0])
    torch.manual_seed(0)
    model = Flaky(every=3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    skipped = 0
    with watch(model, optimizer, every=2, max_overhead=None) as w:  # sampled every 2 steps whatever the cost: the instruments must meet the failing batches
        for _ in range(4):
            for i in range(0, len(x), 16):
                optimizer.zero_grad()
                try:
                    out = model(x[i : i + 16])
                except RuntimeError:
                    skipped += 1
                    continue
                loss = nn.functional.cross_entropy(out, y[i : i + 16])
                loss.backward()
                optimizer.step()
                w.log(loss, out, y[i : i + 16])
    report = w.report()
    assert skipped > 0 and report.status == "incomplete"
    assert any("switched off" in n and "RuntimeError: batch" in n for n in report.notes), report.notes


def test_an_exception_in_a_watched_loop_reaches_the_user_and_leaves_no_hooks(italy_power):
    x, y = (torch.tensor(a) for a in italy(italy_power)[0])
    model = Flaky(every=10**9)  # never raises by itself: the loop's data fails
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    with pytest.raises(ValueError, match="corrupt batch 3"):
        with watch(model, optimizer, every=1) as w:
            for step, i in enumerate(range(0, len(x), 16)):
                if step == 3:
                    raise ValueError("corrupt batch 3")
                optimizer.zero_grad()
                loss = nn.functional.cross_entropy(model(x[i : i + 16]), y[i : i + 16])
                loss.backward()
                optimizer.step()
                w.log(loss)
    assert not model._forward_pre_hooks and not optimizer._optimizer_step_pre_hooks and "zero_grad" not in vars(optimizer)
    report = w.report()  # what the three good steps showed
    assert len(report.probes["loss_curve"]["train_steps"]) == 3 and json.loads(report.to_json())


def test_a_failed_or_cut_short_run_raises_for_the_probes_that_read_whole_runs():
    TrainResult(stopped="completed", steps=5).raise_if_failed()
    TrainResult(stopped="diverged", steps=5).raise_if_failed()  # divergence is a result
    with pytest.raises(TrainingError, match=r"training raised RuntimeError: x \(1 step in\)"):
        TrainResult(stopped="error", steps=1, error="RuntimeError: x").raise_if_failed()
    with pytest.raises(TrainingError, match="ValueError: bad targets"):  # failed in validation only
        TrainResult(stopped="completed", steps=9, error="ValueError: bad targets").raise_if_failed()
    with pytest.raises(TimeLimitReached, match="12 steps in"):
        TrainResult(stopped="time-limit", steps=12).raise_if_failed()


@pytest.fixture
def small_quick(monkeypatch):
    """The command line's quick budget cut to a few steps per probe (see tests/small_cli.py)."""
    monkeypatch.setitem(BUDGETS, "quick", SMALL)


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["lstm-doctor", *args])
    with pytest.raises(SystemExit) as info:
        cli.main()
    return info.value.code, capsys.readouterr().err


def test_cli_out_of_memory_writes_the_report_and_exits_by_the_findings(monkeypatch, capsys, tmp_path, sunspots_frame, small_quick):
    forward = RecurrentModel.forward
    calls = [0]

    def runs_out_of_memory(self, x, lengths=None):
        calls[0] += 1
        if calls[0] % 3 == 0:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return forward(self, x, lengths)

    monkeypatch.setattr(RecurrentModel, "forward", runs_out_of_memory)
    data, report = tmp_path / "sunspots.csv", tmp_path / "report.json"
    sunspots_frame.to_csv(data, index=False)
    code, err = run_cli(monkeypatch, capsys, "examine", str(data), "--target", "sunspots", "--time", "year", "--window", "8",
                        "--hidden", "8", "--json", str(report), "--html", str(tmp_path / "report.html"))
    found = json.loads(report.read_text())
    assert "Traceback" not in err and (tmp_path / "report.html").exists()
    assert found["status"] == "incomplete" and any("OutOfMemoryError" in n for n in found["notes"])
    assert code == int(any(f["severity"] == "critical" for f in found["findings"]))


def test_cli_nan_loss_is_a_critical_finding_with_exit_1(monkeypatch, capsys, tmp_path, sunspots_frame, small_quick):
    data, report = tmp_path / "sunspots.csv", tmp_path / "report.json"
    sunspots_frame.to_csv(data, index=False)
    code, err = run_cli(monkeypatch, capsys, "examine", str(data), "--target", "sunspots", "--time", "year", "--window", "8",
                        "--hidden", "8", "--optimizer", "sgd", "--lr", "10", "--json", str(report))
    found = json.loads(report.read_text())
    assert code == 1 and "Traceback" not in err
    assert found["status"] == "complete" and found["symptom"] == "diverging"
    t301 = next(f for f in found["findings"] if f["code"] == "T301")
    assert t301["severity"] == "critical" and "non-finite" in t301["summary"]


def test_a_rule_that_raises_costs_its_finding_not_the_report(monkeypatch, sunspots_frame):
    from lstm_doctor.evidence import Evidence
    from lstm_doctor.rules import registry

    def broken(ev):
        raise KeyError("a key this rule did not expect")

    registry._load_all()
    monkeypatch.setitem(registry.RULES, "T312", registry.Rule("T312", broken))
    with pytest.raises(KeyError):
        registry.judge(Evidence())  # strict by default: rule tests see the bug
    failed: dict[str, str] = {}
    assert registry.judge(Evidence(), failed=failed) == [] and failed == {"T312": "KeyError: 'a key this rule did not expect'"}
    setup = lstm_doctor.setup_from(sunspots_frame, data={"target": "sunspots", "window": 8}, model={"hidden": 8},
                                   training={"epochs": 2})
    report = lstm_doctor.examine(setup, budget=SMALL, time_limit=0)  # inspection only: the rules still run
    assert report.status == "incomplete" and any(n.startswith("The T312 rule failed (KeyError") for n in report.notes)
