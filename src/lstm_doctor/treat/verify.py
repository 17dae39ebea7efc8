"""Verification: retrain untreated and treated setups under identical steps and seeds.

A treatment is verified only when the validation metric that matters for the
task improves by at least 5% on average over at least 3 seeds and a one-sided
Welch t-test gives p < 0.1. Verified treatments are then combined, with the
tried treatments of critical findings that none of them covers (a fault fixed
may have masked them); the combination is kept only when it beats the best
single treatment. When none
verifies alone, two critical faults may each be blocking learning (raw inputs
and a rate far too low: scaling does nothing at that rate, the rate nothing
with every gate pinned), so the treatments of the two best-ranked critical
findings are tried together, once, and verified like any other.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from lstm_doctor.budget import Budget, Workload
from lstm_doctor.evidence import Evidence
from lstm_doctor.findings import Finding
from lstm_doctor.setups import Setup
from lstm_doctor.treat.executors import Executor, LocalExecutor
from lstm_doctor.treat.treatments import TREATMENTS, Change, Treatment, apply_change, describe, merge
from lstm_doctor.treat.trials import TrialSpec

MIN_SEEDS = 3
MIN_GAIN = 0.05
MAX_P = 0.1
MAX_CANDIDATES = {"quick": 4, "standard": 6, "thorough": 10}


@dataclass
class TreatResult:
    treatments: list[dict[str, Any]] = field(default_factory=list)
    recommended: Change | None = None
    recommended_setup: dict[str, Any] | None = None
    complete: bool = True
    interrupted: bool = False  # by Ctrl-C
    notes: list[str] = field(default_factory=list)


def task_metric(task: str) -> tuple[str, bool]:
    """The deciding validation metric and whether lower is better."""
    return ("rmse", True) if task == "regression" else ("balanced_accuracy", False)


def trial_plan(setup: Setup, budget: Budget) -> tuple[list[int], int]:
    """The seeds and the step cap every trial of ``setup`` runs with: at least
    ``MIN_SEEDS`` seeds from the setup's own, and the instrumented run's cap (the
    setup's own training when the budget affords it)."""
    seeds = [setup.seed + k for k in range(max(MIN_SEEDS, budget.seeds))]
    return seeds, budget.training_steps(Workload.of(setup))


def candidates(findings: list[Finding], config, ev: Evidence, limit: int) -> list[tuple[Treatment, Change, list[str]]]:
    """Treatments for the ranked findings, best-ranked first, one per distinct change."""
    chosen: dict[str, tuple[Treatment, Change, list[str]]] = {}
    for f in findings:
        if f.severity == "info":
            continue
        for t in TREATMENTS:
            if f.code not in t.codes:
                continue
            change = t.propose(config, ev)
            if change is None:
                continue
            key = describe(change)
            if key in chosen:
                if f.code not in chosen[key][2]:
                    chosen[key][2].append(f.code)
            elif len(chosen) < limit:
                chosen[key] = (t, change, [f.code])
    return list(chosen.values())


def _summary(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()), "sd": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0, "values": [float(v) for v in arr]}


def compare(before: list[float], after: list[float], lower_is_better: bool) -> dict[str, Any]:
    """Mean, spread, relative gain and one-sided Welch p of ``after`` against ``before``."""
    b, a = np.asarray(before, float), np.asarray(after, float)
    gain = (b.mean() - a.mean()) if lower_is_better else (a.mean() - b.mean())
    rel = gain / abs(b.mean()) if b.mean() != 0 else (math.inf if gain > 0 else 0.0)
    if b.std() == 0 and a.std() == 0:
        p = 0.0 if gain > 0 else 1.0  # identical repeats: the difference is exact
    else:
        p = float(stats.ttest_ind(a, b, equal_var=False, alternative="less" if lower_is_better else "greater").pvalue)
    return {"before": _summary(before), "after": _summary(after), "relative_gain": float(rel), "p_value": p,
            "improved": bool(rel >= MIN_GAIN and p < MAX_P)}


def trial_scores(results: list[dict | None], metric: str, worst: float) -> list[float]:
    """The metric per finished trial; a run that diverged or failed scores ``worst``.
    A run cut short by the time limit is no result: it trained less than the others."""
    return [r["metrics"].get(metric, worst) for r in results if r is not None and r.get("stopped") != "time-limit"]


def worst_score(ev: Evidence, task: str, n_classes: int) -> float:
    if task == "regression":
        mean = (ev.get("baselines") or {}).get("mean", {}).get("rmse")
        return float(mean) if isinstance(mean, (int, float)) and math.isfinite(mean) else math.inf
    return 1.0 / max(n_classes, 2)


@contextlib.contextmanager
def _trial_progress(enabled: bool, total: int):
    if not enabled or not sys.stderr.isatty():
        yield lambda i, r: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("treatment trials"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task("trials", total=total)
        yield lambda i, r: bar.advance(task)


def treat(setup: Setup, findings: list[Finding], ev: Evidence, budget: Budget, *,
          executor: Executor | None = None, progress: bool = False, deadline: float | None = None) -> TreatResult:
    """Try the candidate fixes for ``findings``; set ``verified`` on each finding tried.

    ``deadline`` (a ``time.monotonic()`` value) cuts the trials short; a treatment
    without ``MIN_SEEDS`` finished trials on both sides is then not judged.
    """
    out = TreatResult()
    if setup.config is None or setup.raw is None:
        out.notes.append("Treatments need a setup built from a setup file or setup_from(); this one was not.")
        return out
    config = setup.config
    metric, lower = task_metric(setup.data.task)
    worst = worst_score(ev, setup.data.task, setup.data.n_outputs)
    seeds, steps = trial_plan(setup, budget)
    executor = executor or LocalExecutor()
    device = str(setup.device)
    wall_deadline = None if deadline is None else time.time() + (deadline - time.monotonic())

    def specs(label: str, cfg) -> list[TrialSpec]:
        raw = cfg.model_dump(mode="json")
        return [TrialSpec(label, raw, s, steps, device, wall_deadline) for s in seeds]

    def run(groups: list[tuple[str, Any]]) -> dict[str, list[dict | None]]:
        flat = [s for label, cfg in groups for s in specs(label, cfg)]
        with _trial_progress(progress, len(flat)) as on_done:
            results = executor.run(flat, setup.raw, on_done)
        grouped: dict[str, list[dict | None]] = {label: [] for label, _ in groups}
        for spec, r in zip(flat, results):
            grouped[spec.label].append(r)
        cut = sum(1 for r in results if r is not None and r.get("stopped") == "time-limit")
        if cut:
            out.complete = False
            out.notes.append(f"Time limit reached during the treatment trials: {cut} of {len(flat)} were cut short; "
                             f"a treatment is judged only on {MIN_SEEDS} finished trials with it and without it.")
        return grouped

    chosen = candidates(findings, config, ev, MAX_CANDIDATES.get(budget.name, 4))
    if not chosen:
        out.notes.append("No treatment applies to these findings.")
        return out
    groups = [("untreated", config)] + [(t.name, apply_change(config, change)) for t, change, _ in chosen]
    try:
        grouped = run(groups)
    except KeyboardInterrupt:
        out.complete, out.interrupted = False, True
        out.notes.append("Treatment trials were interrupted; no treatment was verified.")
        return out
    before = trial_scores(grouped["untreated"], metric, worst)

    def judged(label: str, codes: list[str], change: Change, results: list[dict | None]) -> dict[str, Any] | None:
        """A treatment's entry: its trials' metric against the untreated ones (None: too few trials finished)."""
        after = trial_scores(results, metric, worst)
        if len(after) < MIN_SEEDS or len(before) < MIN_SEEDS:
            return None
        verdict = compare(before, after, lower)
        return {"name": label, "for": codes, "change": change, "change_text": describe(change),
                "metric": {"name": f"val_{metric}", **verdict}, "verified": verdict["improved"],
                "curves": {"before": _curve(grouped["untreated"]), "after": _curve(results)}, "recommended": False}

    entries: dict[str, dict[str, Any]] = {}
    for t, change, codes in chosen:
        entry = judged(t.name, codes, change, grouped[t.name])
        if entry is None:
            out.complete = False
            continue
        entry.update(code={"pytorch": t.pytorch, "keras": t.keras},
                     seconds=float(sum(r["seconds"] for r in grouped[t.name] if r)))
        entries[t.name] = entry
    out.treatments = list(entries.values())

    def joint(prefix: str, parts: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Tried treatments applied at once (the last one's values win conflicts), trialled and judged like one."""
        change = merge(*(e["change"] for e in parts))
        label = prefix + " + ".join(e["name"] for e in reversed(parts))
        try:
            results = run([(label, apply_change(config, change))])[label]
        except KeyboardInterrupt:
            results, out.complete, out.interrupted = [], False, True
        entry = judged(label, sorted({c for e in parts for c in e["for"]}), change, results)
        if entry is not None:
            out.treatments.append(entry)
        return entry

    verified = sorted((e for e in entries.values() if e["verified"]), key=lambda e: e["metric"]["relative_gain"])
    # Nothing verified alone: two critical faults may each block the other's fix, so theirs are tried together.
    together = _uncovered(findings, entries, [])[:2] if not verified else []
    if len(together) == 2:
        entry = joint("together: ", together[::-1])  # named best-ranked first
        verified = [entry] if entry is not None and entry["verified"] else []
    _mark_findings(findings, {e["name"]: e for e in out.treatments}, len(seeds))
    if not verified:
        out.notes.append("No treatment measurably improved the validation "
                         f"{metric.replace('_', ' ')}; the causes found are not fixed by these changes.")
        return out
    best = chosen_entry = verified[-1]
    parts = _uncovered(findings, entries, verified) + verified  # the best treatment's values win conflicts
    entry = joint("combined: ", parts) if len(parts) > 1 else None
    if entry is not None:
        vs_best = compare(best["metric"]["after"]["values"], entry["metric"]["after"]["values"], lower)
        entry["beats_best_single"] = vs_best["relative_gain"] > 0
        if entry["verified"] and entry["beats_best_single"]:
            chosen_entry = entry
    chosen_entry["recommended"] = True
    out.recommended = chosen_entry["change"]
    out.recommended_setup = apply_change(config, out.recommended).model_dump(mode="json")
    return out


def _uncovered(findings: list[Finding], entries: dict[str, dict[str, Any]],
               verified: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first tried, unverified treatment of each critical finding (best-ranked first) that no verified
    treatment, nor one taken before, covers: each may be masked by another fault (scaling shows nothing at a
    rate far too low), so it is tried together with the treatment of that fault."""
    covered = {c for e in verified for c in e["for"]}
    uncovered: list[dict[str, Any]] = []
    for f in findings:
        if f.severity != "critical" or f.code in covered:
            continue
        entry = next((e for e in entries.values() if f.code in e["for"] and not e["verified"]), None)
        if entry is not None:
            uncovered.append(entry)
            covered |= set(entry["for"])
    return uncovered


def _curve(results: list[dict | None]) -> dict[str, list[float]]:
    """The first seed's validation-loss curve (all seeds share its schedule)."""
    first = next((r for r in results if r), None)
    return {"step": first.get("val_steps", []), "loss": first.get("val_loss", [])} if first else {}


def _mark_findings(findings: list[Finding], entries: dict[str, dict[str, Any]], seeds: int) -> None:
    for f in findings:
        tried = [e for e in entries.values() if f.code in e["for"]]
        if not tried:
            continue
        best = max(tried, key=lambda e: (e["verified"], e["metric"]["relative_gain"]))
        m = best["metric"]
        f.verified = {
            "metric": m["name"], "seeds": seeds,
            "before": {k: m["before"][k] for k in ("mean", "sd")}, "after": {k: m["after"][k] for k in ("mean", "sd")},
            "p_value": m["p_value"], "improved": m["improved"], "treatment": best["name"],
        }
