"""The zoo's --treat scoring (bench/zoo/repair.py): repaired to within 10% of a healthy reference."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from lstm_doctor.budget import BUDGETS
from lstm_doctor.report import Report

from bench.zoo.metrics import summarize
from bench.zoo.repair import IN_RATE, OUTCOMES, judge, learns, measure, treatable, unit_factor, val_targets
from bench.zoo.results_page import render
from bench.zoo.scenarios import all_scenarios

SCENARIOS = all_scenarios()


def _scenario(family_prefix: str, dataset: str, severity: str = "obvious"):
    return next(s for s in SCENARIOS if s.family.startswith(family_prefix) and s.dataset == dataset and s.severity == severity)


# ------------------------------------------------------------------ hand-made numbers


def test_regression_is_repaired_at_up_to_1_1_times_the_reference_rmse():
    assert judge(untreated=3.0, treated=1.09, reference=1.0, lower_is_better=True) == "repaired"
    assert judge(untreated=3.0, treated=1.12, reference=1.0, lower_is_better=True) == "short-of-reference"
    # In units 1000x the reference's (a target fed as y * 1000 + offset), the factor is divided out.
    assert judge(untreated=3000.0, treated=1090.0, reference=1.0, lower_is_better=True, factor=1000.0) == "repaired"
    assert judge(untreated=3000.0, treated=1120.0, reference=1.0, lower_is_better=True, factor=1000.0) == "short-of-reference"


def test_classification_is_repaired_at_down_to_0_9_times_the_reference():
    assert judge(untreated=0.5, treated=0.82, reference=0.9, lower_is_better=False) == "repaired"
    assert judge(untreated=0.5, treated=0.80, reference=0.9, lower_is_better=False) == "short-of-reference"


def test_cases_without_a_fix_or_without_damage_are_told_apart():
    assert judge(untreated=3.0, treated=None, reference=1.0, lower_is_better=True) == "no-verified-fix"
    assert judge(untreated=3.0, treated=None, reference=1.0, lower_is_better=True, proposed=False) == "no-treatment-proposed"
    # Untreated already within 10%: the fault did not hurt at this budget, whatever the treatment did.
    assert judge(untreated=1.05, treated=0.9, reference=1.0, lower_is_better=True) == "already-within-reference"
    assert judge(untreated=0.85, treated=None, reference=0.9, lower_is_better=False) == "already-within-reference"
    assert set(IN_RATE) < set(OUTCOMES) and "told-no-fix" not in IN_RATE and "no-reference" not in IN_RATE


def test_a_reference_that_does_not_beat_chance_or_the_mean_is_no_reference():
    assert learns(0.95, worst=0.5, lower_is_better=False) and not learns(0.51, worst=0.5, lower_is_better=False)
    # RMSE 0.5 in reference units is 500 in the broken setup's, against an input-free RMSE of 1000 there.
    assert learns(0.5, worst=1000.0, lower_is_better=True, factor=1000.0)
    assert not learns(0.98, worst=1000.0, lower_is_better=True, factor=1000.0)


def test_unit_factor_accepts_a_change_of_units_and_a_tail_of_the_same_series():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(100, 1))
    factor, overlap = unit_factor(ref * 1000 + 5000, ref, "regression")
    assert factor == pytest.approx(1000) and overlap == 1.0
    # A longer window scores fewer (the last) validation targets of the same series.
    assert unit_factor(ref[10:], ref, "regression") == pytest.approx((1.0, 0.9))
    assert unit_factor(ref[30:], ref, "regression") is None  # 70% shared: another evaluation
    trend = ref + np.linspace(0, 1, 100)[:, None]
    assert unit_factor(trend, ref, "regression") is None  # not a change of units: another task
    labels = rng.integers(0, 3, 50).astype(float)
    assert unit_factor(labels, labels.copy(), "multiclass") == (1.0, 1.0)
    assert unit_factor(labels[5:], labels, "multiclass") is None


def test_unit_factor_on_real_zoo_faults_against_their_healthy_controls():
    from bench.zoo.datasets import healthy

    def factor(prefix: str, dataset: str, severity: str = "obvious"):
        s = _scenario(prefix, dataset, severity)
        return unit_factor(val_targets(s.case().setup()), val_targets(healthy(dataset, s.seed).setup()),
                           s.case().setup().data.task)

    # D104 feeds the El Nino temperature x1000 + 5000 (after standardizing it by hand): sd units x 1000.
    sd = float(np.std(healthy("elnino", 0).source["sst"].to_numpy()[: healthy("elnino", 0).train_rows()]))
    got, overlap = factor("D104 ", "elnino")
    assert got == pytest.approx(1000 / sd, rel=1e-3) and overlap == 1.0
    assert factor("D102 ", "italy_power") == (1.0, 1.0)  # inputs broken, labels untouched
    assert factor("D107 ", "elnino") is None  # a trend changes what is forecast
    assert factor("D111 ", "italy_power") is None  # classes subsampled: another validation set


def test_treatable_follows_the_root_cause():
    assert treatable(_scenario("D102 ", "italy_power"))
    assert treatable(_scenario("T301 ", "italy_power"))
    assert not treatable(_scenario("D101 ", "italy_power"))  # NaN: no treatment in the catalog
    assert not treatable(_scenario("D101+T301", "italy_power"))  # the root cause (D101) decides


# ------------------------------------------------------------------ summary and page


def _record(family: str, outcome: str, seconds: float, treat_s: float) -> dict:
    return {"id": f"{family}{seconds}", "code": family.split()[0], "family": family, "severity": "obvious", "dataset": "d",
            "top1_ok": True, "top3_ok": True, "false_alarm": None, "symptom_ok": None, "codes": [], "top3": [],
            "seconds": seconds, "status": "complete", "timing": {"treat_s": treat_s},
            "repair": {"outcome": outcome, "reference_seconds": 2.0},
            "repaired": (outcome == "repaired") if outcome in IN_RATE else None}


def test_summary_counts_the_rate_and_every_other_outcome_apart():
    records = [_record("D102 raw", "repaired", 60.0, 40.0), _record("T301 lr", "short-of-reference", 80.0, 50.0),
               _record("T302 low", "no-verified-fix", 70.0, 45.0), _record("D110 noise", "told-no-fix", 30.0, 10.0),
               _record("D114 leak", "no-treatment-in-catalog", 20.0, 0.0)]
    s = summarize(records)
    assert s["repair"] == {"n": 3, "hits": 1, "rate": 0.333}
    t = s["treat"]
    assert t["outcomes"] == {"repaired": 1, "short-of-reference": 1, "no-verified-fix": 1, "told-no-fix": 1,
                             "no-treatment-in-catalog": 1}
    assert t["seconds"]["median"] == 60.0 and t["treat_seconds"]["max"] == 50.0 and t["reference_seconds"] == 10.0
    result = {"split": "report", "command": "python -m bench.zoo --treat", "started": "now", "budget": "quick",
              "machine": {"cpu": "cpu", "cores": 2, "jobs": 1, "torch_threads": 1, "python": "3.11", "torch": "2"},
              "summary": s}
    page = render(result)
    assert "33% (1/3)" in page and "| told-no-fix | 1 | no |" in page and "| repaired | 1 | yes |" in page and "| D102 raw | repaired x1 |" in page
    assert "median 60.0 s" in page
    # Without --treat the page says the repair rate was not measured, and has no outcome table.
    untreated = [{k: v for k, v in r.items() if k not in ("repair", "repaired")} for r in records]
    plain = render({**result, "summary": summarize(untreated)})
    assert "not measured: run with --treat" in plain and "| outcome |" not in plain


# ------------------------------------------------------------------ one tiny real case


@pytest.mark.slow
def test_measure_trains_the_healthy_reference_with_the_trials_seeds_and_cap():
    """ItalyPowerDemand at lr 1.0: the reference really trains; the outcome follows the treated numbers."""
    tiny = replace(BUDGETS["quick"], train_steps=60, fraction_of_training=0.0)
    scenario = _scenario("T301 ", "italy_power")
    setup = scenario.case().setup()
    fixed = setup.config.model_dump(mode="json")
    fixed["training"]["lr"] = 3e-3

    def report(after: list[float]) -> Report:
        entry = {"name": "learning-rate-down-10x", "for": ["T301"], "verified": True, "recommended": True, "curves": {},
                 "metric": {"name": "val_balanced_accuracy", "before": {"values": [0.5, 0.5, 0.5]}, "after": {"values": after}}}
        return Report(status="complete", treatments=[entry], recommended_setup=fixed)

    short = measure(scenario, setup, report([0.5, 0.52, 0.5]), tiny)
    assert short["seeds"] == [scenario.seed, scenario.seed + 1, scenario.seed + 2] and short["max_steps"] == 60
    ref = short["reference"]["mean"]
    assert ref > 0.8, short  # the healthy control learns ItalyPowerDemand within 60 steps
    assert short["outcome"] == "short-of-reference" and short["untreated"]["mean"] == 0.5
    assert measure(scenario, setup, report([ref, ref, ref]), tiny)["outcome"] == "repaired"
    assert measure(scenario, setup, Report(status="incomplete"), tiny)["outcome"] == "incomplete"
