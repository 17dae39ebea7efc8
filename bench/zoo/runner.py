"""Runs scenarios through ``lstm_doctor.examine`` and scores each diagnosis.

A fault case is scored on its ranked codes (rank 1 among the acceptable codes;
every required code among the first three) and its symptom; a healthy control
on false alarms (any critical finding, or a symptom other than ``healthy``) and
on whether it really beats the baselines, both in the examined run and after
the setup's own full training. With ``treat``, a fault case also gets its
repair outcome (``bench/zoo/repair.py``).
"""

from __future__ import annotations

import math
import os
import pickle
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Iterable

import torch

from lstm_doctor import Setup, examine
from lstm_doctor.budget import get_budget
from lstm_doctor.evidence import Evidence
from lstm_doctor.probes import ProbeContext
from lstm_doctor.probes.baselines import baselines
from lstm_doctor.rank import rank
from lstm_doctor.report import Report
from lstm_doctor.rules import judge
from lstm_doctor.symptom import judge_symptom

from bench.zoo.faults import Inert
from bench.zoo.repair import IN_RATE, measure
from bench.zoo.scenarios import Scenario

# A healthy model must have real skill: its validation loss at least 20% below
# the best naive baseline's (mean/majority, persistence, seasonal naive), the
# MSE skill score 1 - loss/naive_loss >= 0.2; and at least 80% of the skill of a
# linear model on the same window. A bare "beats the linear model" is no bar:
# where the linear model hits the noise floor (the sine) or is exact (the echo)
# a well-trained LSTM ties it at best.
MIN_SKILL = 0.2
LINEAR_SKILL_SHARE = 0.8
STRONG_BASELINES = ("linear",)


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def beats_baselines(final_loss: float | None, baseline_loss: dict[str, float]) -> bool | None:
    """True when ``final_loss`` has MIN_SKILL over the best naive baseline and at
    least LINEAR_SKILL_SHARE of the linear baseline's skill (None: no baseline)."""
    naive = [v for k, v in baseline_loss.items() if k not in STRONG_BASELINES and _finite(v)]
    if not naive or min(naive) <= 0:
        return None
    if not _finite(final_loss):
        return False
    best = min(naive)
    skill = 1 - final_loss / best
    strong = [1 - v / best for k, v in baseline_loss.items() if k in STRONG_BASELINES and _finite(v)]
    return skill >= MIN_SKILL and all(skill >= LINEAR_SKILL_SHARE * s for s in strong)


def baseline_losses(setup: Setup) -> dict[str, float]:
    """The validation loss of lstm-doctor's own baselines (mean/majority, persistence) on ``setup``."""
    ctx = ProbeContext(setup, get_budget("quick"))
    baselines(ctx)
    return {name: scores["loss"] for name, scores in ctx.evidence["baselines"].items()}


def full_training(setup: Setup, baseline_loss: dict[str, float]) -> dict[str, Any]:
    """The setup's own full training, outside lstm-doctor's budget: does this
    model really learn (end clearly below the baselines)?"""
    _, result = setup.train()
    final = {k: v for k, v in (result.val[-1] if result.val else {}).items() if _finite(v)}
    return {"steps": result.steps, "stopped": result.stopped, "final_val": final,
            "beats_baselines": beats_baselines(final.get("loss"), baseline_loss)}


def score(scenario: Scenario, report: Report) -> dict[str, Any]:
    """How the report's diagnosis compares with what the scenario expects."""
    codes = report.codes()
    out: dict[str, Any] = {"codes": codes, "symptom": report.symptom}
    critical = [f.code for f in report.findings if f.severity == "critical"]
    if scenario.is_healthy:
        out["false_alarm"] = bool(critical) or report.symptom != "healthy"
        out["top1_ok"] = out["top3_ok"] = None
    else:
        out["top1_ok"] = bool(codes) and codes[0] in scenario.top1
        out["top3_ok"] = bool(set(scenario.top1) & set(codes[:3])) and set(scenario.top3) <= set(codes[:3])
        out["false_alarm"] = None
    out["symptom_ok"] = None if scenario.symptoms is None else report.symptom in scenario.symptoms
    return out


def _repair(scenario: Scenario, setup: Setup, report: Report, budget: str) -> dict[str, Any]:
    """--treat: the case's repair outcome against its healthy reference (bench/zoo/repair.py)."""
    try:
        return measure(scenario, setup, report, budget)
    except Exception as err:  # the bench's own failure: recorded, never counted as a repair or a miss
        return {"outcome": "error", "error": f"{type(err).__name__}: {err}"}


def _findings(report: Report) -> list[dict[str, Any]]:
    return [{"code": f.code, "severity": f.severity, "rank": f.rank, "confidence": f.confidence, "summary": f.summary}
            for f in report.findings]


def evidence_path(directory: str, scenario: Scenario) -> str:
    return os.path.join(directory, scenario.id.replace("/", "__") + ".pkl")


def save_evidence(directory: str, scenario: Scenario, record: dict[str, Any], evidence: Evidence) -> None:
    """Keep a case's record and everything its probes measured, to judge it again without probing."""
    os.makedirs(directory, exist_ok=True)
    path = evidence_path(directory, scenario)
    with open(path + ".tmp", "wb") as f:
        pickle.dump({"record": record, "evidence": dict(evidence)}, f)
    os.replace(path + ".tmp", path)


def load_evidence(directory: str, scenario: Scenario) -> dict[str, Any] | None:
    """What :func:`save_evidence` kept of a case (None: nothing saved for it)."""
    path = evidence_path(directory, scenario)
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        return pickle.load(f)


def rejudge(scenario: Scenario, saved: dict[str, Any]) -> dict[str, Any]:
    """A saved case judged again with the rules, ranking and symptom as they are now: its record with
    the diagnosis replaced (the run's own measurements, times and memory kept as they were)."""
    ev = Evidence(saved["evidence"])
    report = Report(findings=rank(judge(ev)), symptom=judge_symptom(ev))
    record = {**saved["record"], **scenario.describe()}
    record.update(score(scenario, report), findings=_findings(report))
    return record


def _final_val(report: Report) -> dict[str, float]:
    val = (report.probes.get("loss_curve") or {}).get("val") or []
    return {k: v for k, v in val[-1].items() if _finite(v)} if val else {}


def run_one(scenario: Scenario, *, budget: str = "quick", time_limit: float | None = 300.0, treat: bool = False,
            verify_healthy: bool = True, evidence_dir: str | None = None) -> dict[str, Any]:
    """Examine one scenario; never raises (a failure is recorded as the outcome). With ``evidence_dir``,
    the record and the evidence are also saved there, for :func:`rejudge`."""
    record: dict[str, Any] = scenario.describe()
    start_rss = peak_rss_mb()
    t0 = time.perf_counter()
    try:
        case = scenario.case()
    except Inert as err:
        record.update(status="inert", error=str(err), seconds=0.0, codes=[], symptom=None, top1_ok=None, top3_ok=None,
                      false_alarm=None, symptom_ok=None)
        return record
    try:
        setup = case.setup()
        t1 = time.perf_counter()
        report = examine(setup, budget=budget, treat=treat, time_limit=time_limit)
        record["seconds"] = round(time.perf_counter() - t1, 3)
        record["build_seconds"] = round(t1 - t0, 3)
    except Exception as err:  # a crash is a result too: it counts as a miss
        record.update(status="error", error=f"{type(err).__name__}: {err}", seconds=round(time.perf_counter() - t0, 3),
                      codes=[], symptom=None, top1_ok=None if scenario.is_healthy else False,
                      top3_ok=None if scenario.is_healthy else False, false_alarm=True if scenario.is_healthy else None,
                      symptom_ok=None if scenario.symptoms is None else False)
        if treat and not scenario.is_healthy:
            record["repair"] = {"outcome": "error", "error": record["error"]}
        record["rss_peak_mb"] = round(peak_rss_mb(), 1)
        return record
    record.update(score(scenario, report))
    record.update(
        status=report.status,
        notes=report.notes,
        findings=_findings(report),
        timing=report.timing,
        baseline_loss={k: v.get("loss") for k, v in report.baselines.items()},
        final_val=_final_val(report),
    )
    if treat and not scenario.is_healthy:
        record["repair"] = _repair(scenario, setup, report, budget)
        outcome = record["repair"]["outcome"]
        record["repaired"] = (outcome == "repaired") if outcome in IN_RATE else None
    record["beats_baselines"] = beats_baselines(record["final_val"].get("loss"), record["baseline_loss"])
    if scenario.is_healthy and verify_healthy:
        record["full_training"] = full_training(setup, record["baseline_loss"])
    record["rss_peak_mb"] = round(peak_rss_mb(), 1)
    record["rss_growth_mb"] = round(record["rss_peak_mb"] - start_rss, 1)
    if evidence_dir is not None and report.evidence is not None:
        save_evidence(evidence_dir, scenario, record, report.evidence)
    return record


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def run_all(scenarios: list[Scenario], *, jobs: int = 1, threads: int | None = None,
            on_result: Callable[[dict[str, Any]], None] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    """Run ``scenarios`` (``jobs`` at a time, each job with ``threads`` torch threads);
    ``on_result`` sees each record as it completes. Records come back in input order."""
    threads = threads or max(1, (os.cpu_count() or 1) // jobs)
    records: dict[str, dict[str, Any]] = {}

    def done(record: dict[str, Any]) -> None:
        records[record["id"]] = record
        if on_result is not None:
            on_result(record)

    if jobs <= 1:
        _init_worker(threads)
        for s in scenarios:
            done(run_one(s, **kwargs))
    else:
        with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker, initargs=(threads,)) as pool:
            futures = [pool.submit(run_one, s, **kwargs) for s in scenarios]
            for fut in futures:
                done(fut.result())
    return [records[s.id] for s in scenarios]


def progress_line(record: dict[str, Any], index: int, total: int) -> str:
    """One line per finished case, for the terminal."""
    if record.get("status") in ("error", "inert"):
        verdict = f"{record['status'].upper()} {record['error'][:80]}"
    elif record["top1_ok"] is None:
        verdict = "false alarm" if record["false_alarm"] else "ok (healthy)"
    else:
        verdict = f"top1 {'ok' if record['top1_ok'] else 'MISS'} top3 {'ok' if record['top3_ok'] else 'MISS'}"
    codes = ",".join(record.get("codes", [])[:4]) or "-"
    repair = f" repair: {record['repair']['outcome']}" if "repair" in record else ""
    return f"[{index}/{total}] {record['id']:<64} {record['seconds']:6.1f}s {verdict:<26} {record.get('symptom')} [{codes}]{repair}"


def print_progress(total: int) -> Callable[[dict[str, Any]], None]:
    count = iter(range(1, total + 1))
    return lambda record: print(progress_line(record, next(count), total), file=sys.stderr, flush=True)
