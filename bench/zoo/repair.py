"""``--treat`` in the zoo: is a fault case repaired to within 10% of a healthy reference?

The reference for a fault case is the healthy control of its dataset (the setup
the fault was injected into), retrained through the treatment trials' own
machinery (``lstm_doctor.treat.trials``) with the same seeds and the same step
cap as the treatment trials of the broken setup, and scored on the same
validation metric: RMSE in the target's units for regression (lower is better),
balanced accuracy for classification. A case is repaired when lstm-doctor
recommends a verified treatment and the treated setup's mean over the seeds is
within ``TOLERANCE`` of the reference's mean (RMSE <= 1.1 x the reference's,
balanced accuracy >= 0.9 x the reference's).

Like is compared with like only. The validation targets of the treated setup
must be the reference's (for regression, up to a change of units such as the
D104 fault's ``y * 1000 + 5000``, which the RMSE is divided back out of; a
treated window of another length scores a slightly longer or shorter tail of
the same series). A fault that changes the task itself (a trend added, classes
subsampled, an echo further back) has no healthy reference; neither has a
dataset without a healthy control. Such cases, cases whose root cause has no
treatment in the catalog, cases already within 10% of the reference untreated
(the fault did not hurt at this budget) and the no-signal cases (where the
right answer is "no treatment helped") each get an outcome of their own and
never enter the repair rate.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from lstm_doctor.budget import Budget, get_budget
from lstm_doctor.config import parse_config
from lstm_doctor.evidence import Evidence
from lstm_doctor.report import Report
from lstm_doctor.setups import Setup, setup_from_config
from lstm_doctor.treat import TREATMENTS, apply_change
from lstm_doctor.treat.executors import LocalExecutor
from lstm_doctor.treat.trials import TrialSpec
from lstm_doctor.treat.verify import MIN_GAIN, task_metric, trial_plan, trial_scores, worst_score

from bench.zoo.datasets import HEALTHY, healthy
from bench.zoo.scenarios import Scenario

# The bar: within 10% of the healthy reference's metric.
TOLERANCE = 0.10
# A treated window of another length scores a tail of the reference's validation
# series; at least this share of the longer of the two must be shared.
MIN_OVERLAP = 0.75
# Codes whose right answer is that no treatment helps.
NO_FIX_EXPECTED = ("D110",)
# Outcomes that make up the repair rate's denominator (``repaired`` its numerator).
IN_RATE = ("repaired", "short-of-reference", "no-verified-fix", "no-treatment-proposed")
# Every outcome, with what it means (the results page prints these).
OUTCOMES = {
    "repaired": "a verified treatment, and the treated setup within 10% of the healthy reference",
    "short-of-reference": "a verified treatment, but the treated setup more than 10% worse than the reference",
    "no-verified-fix": "treatments were tried; none improved significantly",
    "no-treatment-proposed": "no treatment applied to the findings reported",
    "already-within-reference": "untreated already within 10% of the reference: nothing to repair at this budget",
    "told-no-fix": "no learnable signal, and correctly no treatment verified",
    "false-fix": "no learnable signal, yet a treatment was verified",
    "no-treatment-in-catalog": "the root cause has no treatment in the catalog (NaN, leakage, too few epochs, ...)",
    "no-reference": "no like-for-like healthy reference (the fault changes the task, no healthy control, or the "
                    "control does not learn within the fault's step cap)",
    "incomplete": "the examination or its treatment trials were cut short",
    "error": "the case failed to run",
}


def treatable(scenario: Scenario) -> bool:
    """Whether the catalog holds a treatment for a code acceptable at rank 1 (the root cause)."""
    return any(code in t.codes for t in TREATMENTS for code in scenario.top1)


def val_targets(setup: Setup) -> np.ndarray:
    """Validation targets in the target's own units (class labels for classification)."""
    y = np.asarray(setup.data.val.target_values(), dtype=float)
    scaler = setup.data.target_scaler
    if scaler is not None:
        y = y * scaler.scale + scaler.offset
    return y


def unit_factor(targets: np.ndarray, reference: np.ndarray, task: str) -> tuple[float, float] | None:
    """``(factor, overlap)`` when ``targets`` are ``reference`` in other units:
    ``targets = factor * reference + offset`` over the validation windows both end
    with (``overlap``: their share of the longer set). None: another task."""
    if task != "regression":
        same = targets.shape == reference.shape and np.array_equal(targets, reference)
        return (1.0, 1.0) if same else None
    if targets.ndim != reference.ndim or targets.shape[1:] != reference.shape[1:]:
        return None
    n = min(len(targets), len(reference))
    overlap = n / max(len(targets), len(reference))
    if n < 2 or overlap < MIN_OVERLAP:
        return None
    t, r = targets[-n:].reshape(-1), reference[-n:].reshape(-1)
    design = np.c_[r, np.ones_like(r)]
    coef, *_ = np.linalg.lstsq(design, t, rcond=None)
    residual = np.abs(t - design @ coef).max()
    # Exact up to float32 rounding of the stored targets.
    if coef[0] <= 0 or residual > 1e-3 * max(float(t.std()), 1e-12):
        return None
    return float(coef[0]), float(overlap)


def within_reference(value: float, reference: float, lower_is_better: bool, factor: float = 1.0) -> bool:
    """``value`` (in units ``factor`` times the reference's) within TOLERANCE of ``reference``."""
    if lower_is_better:
        return value / factor <= (1 + TOLERANCE) * reference
    return value >= (1 - TOLERANCE) * reference


def learns(reference: float, worst: float, lower_is_better: bool, factor: float = 1.0) -> bool:
    """Whether the reference beats chance or the input-free baseline (``worst``, in units ``factor``
    times the reference's) by the verification's own bar, 5%."""
    if lower_is_better:
        return reference * factor <= (1 - MIN_GAIN) * worst
    return reference >= (1 + MIN_GAIN) * worst


def judge(untreated: float, treated: float | None, reference: float, lower_is_better: bool, factor: float = 1.0,
          proposed: bool = True) -> str:
    """The outcome of a comparable, treatable case from the three means.

    ``treated`` is None when no treatment was verified; ``proposed`` says whether
    any treatment was tried at all.
    """
    if within_reference(untreated, reference, lower_is_better, factor):
        return "already-within-reference"
    if treated is None:
        return "no-verified-fix" if proposed else "no-treatment-proposed"
    return "repaired" if within_reference(treated, reference, lower_is_better, factor) else "short-of-reference"


def _summary(values: list[float]) -> dict[str, Any]:
    return {"mean": float(np.mean(values)), "values": [float(v) for v in values]}


def measure(scenario: Scenario, setup: Setup, report: Report, budget: str | Budget) -> dict[str, Any]:
    """The repair outcome of one examined (``treat=True``) fault case, with its numbers.

    Trains the healthy reference (and the untreated setup, when no treatment was
    tried) with the treatment trials' seeds and step cap.
    """
    out: dict[str, Any] = {"outcome": None}
    recommended = next((t for t in report.treatments if t.get("recommended")), None)
    out["treatment"] = None if recommended is None else recommended["name"]
    if report.status != "complete":
        return {**out, "outcome": "incomplete", "reason": "the examination or its treatment trials were cut short"}
    if set(scenario.top1) & set(NO_FIX_EXPECTED):
        return {**out, "outcome": "told-no-fix" if report.recommended_setup is None else "false-fix"}
    if not treatable(scenario):
        return {**out, "outcome": "no-treatment-in-catalog", "reason": f"no treatment for {'/'.join(scenario.top1)}"}
    if scenario.dataset not in HEALTHY:
        return {**out, "outcome": "no-reference", "reason": f"{scenario.dataset} has no healthy control"}
    t0 = time.perf_counter()
    reference = healthy(scenario.dataset, scenario.seed).setup()
    treated_config = parse_config(report.recommended_setup) if report.recommended_setup else setup.config
    # Scored on the level either way: a differenced target's RMSE is the level forecast's.
    view = setup_from_config(apply_change(treated_config, {"data": {"target_transform": "none"}}), raw=setup.raw)
    units = unit_factor(val_targets(view), val_targets(reference), setup.data.task)
    if units is None:
        return {**out, "outcome": "no-reference", "reason": "the validation targets differ from the healthy control's"}
    factor, overlap = units
    metric, lower = task_metric(setup.data.task)
    seeds, steps = trial_plan(setup, get_budget(budget))

    def specs(label: str, arm: Setup) -> list[TrialSpec]:
        config = arm.config.model_dump(mode="json")
        return [TrialSpec(label, config, s, steps, str(setup.device)) for s in seeds]

    ref_seeds = LocalExecutor().run(specs("reference", reference), reference.raw)
    ref = [r["metrics"][metric] for r in ref_seeds if r and metric in r["metrics"]]
    if len(ref) < len(seeds):  # a zoo bug, not the product's: the control is known to train
        return {**out, "outcome": "no-reference", "reason": "the healthy reference did not train"}
    # Chance (balanced accuracy 1/K) or the input-free mean's RMSE, in the broken setup's units.
    worst = worst_score(Evidence(baselines=report.baselines), setup.data.task, setup.data.n_outputs)
    if not learns(float(np.mean(ref)), worst, lower, factor):
        # A fault that leaves a few steps (a batch of every sample) caps the reference too.
        return {**out, "outcome": "no-reference", "reason": f"the healthy control does not learn within {steps} steps",
                "reference": _summary(ref)}
    if report.treatments:
        untreated = report.treatments[0]["metric"]["before"]["values"]
    else:
        untreated = trial_scores(LocalExecutor().run(specs("untreated", setup), setup.raw), metric, worst)
    treated = None if recommended is None else recommended["metric"]["after"]["values"]
    out.update(
        outcome=judge(float(np.mean(untreated)), None if treated is None else float(np.mean(treated)),
                      float(np.mean(ref)), lower, factor, proposed=bool(report.treatments)),
        metric=f"val_{metric}", lower_is_better=lower, unit_factor=factor, overlap=overlap, seeds=seeds,
        max_steps=steps, reference=_summary(ref), untreated=_summary(untreated),
        treated=None if treated is None else _summary(treated),
        reference_seconds=round(time.perf_counter() - t0, 2),
    )
    return out
