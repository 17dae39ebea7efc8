"""The examination: Setup -> Inspect -> Probe -> Judge -> Rank -> Report."""

from __future__ import annotations

import os
import time
import traceback
from pathlib import Path
from typing import Any, Iterable

from lstm_doctor.budget import get_budget
from lstm_doctor.errors import InputError
from lstm_doctor.evidence import Evidence
from lstm_doctor.findings import Finding
from lstm_doctor.inspect import inspect_setup
from lstm_doctor.probes import PIPELINE, ProbeContext
from lstm_doctor.rank import rank
from lstm_doctor.report import Report
from lstm_doctor.rules import judge
from lstm_doctor.setups import Setup, load_setup
from lstm_doctor.symptom import judge_symptom
from lstm_doctor.training import TimeLimitReached, TrainingError, kept_random_state, step_count
from lstm_doctor.treat import treat as run_treatments
from lstm_doctor.treat.executors import Executor
from lstm_doctor.treat.verify import TreatResult


def describe_setup(setup: Setup) -> dict[str, Any]:
    """The setup as given, for the report."""
    if setup.config is not None:
        return setup.config.model_dump(mode="json")
    return {"epochs": setup.epochs, "batch_size": setup.batch_size, "clip_norm": setup.clip_norm, "seed": setup.seed,
            "loss": setup.objective.name, "task": setup.data.task}


def examine(
    setup_or_path: Setup | str | Path,
    *,
    budget: str = "quick",
    treat: bool = False,
    time_limit: float | None = None,
    ignore: Iterable[str] = (),
    progress: bool = False,
    executor: Executor | None = None,
    **overrides: Any,
) -> Report:
    """Examine a setup and return the ranked findings.

    ``setup_or_path`` is a :class:`Setup` or the path of a setup file (then
    ``overrides`` such as ``window=24`` apply as on the command line). The run is
    cut short at ``time_limit`` seconds (probes and treatment trials alike) or by
    Ctrl-C (then ``report.interrupted``); the report then has
    ``status == "incomplete"`` and holds whatever was found. A probe that fails
    (the model raises, memory runs out) is named in ``report.notes`` and also
    makes the status incomplete. The caller's random state (torch, NumPy,
    Python) is the same after the examination as before it.

    With ``treat=True`` the setup is retrained with each candidate fix (through
    ``executor``: local by default, or :class:`lstm_doctor.treat.executors.RayExecutor`);
    findings get ``verified`` and the report a ``recommended_setup``.

    >>> report = examine("setup.yaml", budget="quick")  # doctest: +SKIP
    >>> report.findings[0].code  # doctest: +SKIP
    'D102'
    """
    t0 = time.perf_counter()
    plan = get_budget(budget)
    setup = setup_or_path if isinstance(setup_or_path, Setup) else load_setup(setup_or_path, **overrides)
    deadline = None if time_limit is None else time.monotonic() + time_limit
    report = Report(setup=describe_setup(setup))
    timing: dict[str, float] = {}
    ctx = ProbeContext(setup, plan, deadline=deadline, progress=progress)
    # The probes seed torch, NumPy and Python as they go; the caller's random streams are the caller's.
    with kept_random_state():
        try:
            t = time.perf_counter()
            ctx.evidence.update(inspect_setup(setup))
            timing["inspect_s"] = time.perf_counter() - t
            run_probes(ctx, report, timing)
        except KeyboardInterrupt:  # during the inspection (run_probes notes its own)
            report.status, report.interrupted = "incomplete", True
            report.notes.append("Interrupted during the inspection of the data and model; nothing was probed.")
        note_training_faults(report, ctx.evidence)
        report.findings = rank(judge_noting_failures(report, ctx.evidence, ignore))
        report.symptom = judge_symptom(ctx.evidence)
        report.evidence = ctx.evidence
        report.baselines = ctx.evidence.get("baselines", {})
        report.probes = ctx.plots
        if treat and report.status == "complete":
            t = time.perf_counter()
            try:
                result = run_treatments(setup, report.findings, ctx.evidence, plan, executor=executor, progress=progress,
                                        deadline=deadline)
            except KeyboardInterrupt:  # between the trials (during them, treat() keeps what it can)
                result = TreatResult(complete=False, interrupted=True, notes=["Treatment was interrupted; no treatment was verified."])
            report.treatments = result.treatments
            report.recommended_setup = result.recommended_setup
            report.notes.extend(result.notes)
            report.interrupted = result.interrupted
            if not result.complete:
                report.status = "incomplete"
            timing["treat_s"] = time.perf_counter() - t
        elif treat:
            report.notes.append("Treatments were not tried: the examination did not complete.")
    timing["total_s"] = time.perf_counter() - t0
    report.timing = {k: round(v, 3) for k, v in timing.items()}
    return report


def run_probes(ctx: ProbeContext, report: Report, timing: dict[str, float]) -> None:
    """Run the PIPELINE in order until the time limit or Ctrl-C; a probe that raises is noted, not fatal."""
    for name, probe in PIPELINE:
        if ctx.time_left() <= 0:
            report.status = "incomplete"
            report.notes.append(f"Time limit reached before the {name} probe.")
            return
        t = time.perf_counter()
        try:
            probe(ctx)
        except KeyboardInterrupt:
            report.status, report.interrupted = "incomplete", True
            report.notes.append(f"Interrupted during the {name} probe; the report holds what the probes before it measured.")
            return
        except InputError:
            raise
        except TimeLimitReached:
            report.status = "incomplete"
            report.notes.append(f"Time limit reached during the {name} probe; it is left out.")
        except Exception as err:  # a failing probe is recorded; the report is still written
            detail = str(err) if isinstance(err, TrainingError) else f"{type(err).__name__}: {err}"
            report.status = "incomplete"
            report.notes.append(f"The {name} probe failed: {detail}{_memory_hint(detail)}.")
            if os.environ.get("LSTM_DOCTOR_DEBUG"):
                traceback.print_exc()
        timing[f"{name}_s"] = time.perf_counter() - t
        if name == "training_run" and ctx.evidence.get("stopped") == "time-limit":
            report.status = "incomplete"
            report.notes.append("Time limit reached during training; the curves are partial.")


def note_training_faults(report: Report, ev: Evidence) -> None:
    """Note what failed inside the instrumented run (the model raising, instruments switched
    off); the evidence is then incomplete, and so is the report."""
    notes = training_faults(ev)
    if notes:
        report.status = "incomplete"
        report.notes.extend(notes)


def judge_noting_failures(report: Report, ev: Evidence, ignore: Iterable[str] = ()) -> list[Finding]:
    """The rules' findings; a rule that raises (a bug) is skipped, noted, and makes the report incomplete."""
    failed: dict[str, str] = {}
    findings = judge(ev, ignore=ignore, failed=failed)
    for code, err in failed.items():
        report.status = "incomplete"
        report.notes.append(f"The {code} rule failed ({err}) and was skipped; please report it.")
    return findings


def training_faults(ev: Evidence) -> list[str]:
    """Notes on what failed inside the instrumented run: the model raising, instruments switched off."""
    notes = []
    error = ev.get("training_error")
    if error and ev.get("stopped") == "error":
        notes.append(f"The training run at your settings failed {step_count(ev.get('steps_run'))} in: {error}{_memory_hint(error)}. "
                     "Its curves end there; findings that need the whole run are missing.")
    elif error:
        notes.append(f"Validation failed during the training run at your settings: {error}{_memory_hint(error)}. "
                     "Its validation losses are NaN where it failed.")
    failed = ev.get("instrument_errors") or {}
    if failed:
        listed = "; ".join(f"{name} ({err})" for name, err in failed.items())
        notes.append(f"Instruments of the training run failed and were switched off: {listed}{_memory_hint(listed)}.")
    return notes


def _memory_hint(error: str) -> str:
    """Advice for an out-of-memory error (torch.cuda.OutOfMemoryError, MemoryError)."""
    return " (out of memory: a smaller batch size or model needs less)" if "MemoryError" in error else ""
