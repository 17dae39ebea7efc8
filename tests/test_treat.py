"""Treatment: pure config changes, the verification statistics, executors, and real repairs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from lstm_doctor import setup_from
from lstm_doctor.budget import BUDGETS
from lstm_doctor.config import SetupConfig
from lstm_doctor.errors import InputError
from lstm_doctor.evidence import Evidence
from lstm_doctor.findings import Finding
from lstm_doctor.treat import TREATMENTS, apply_change, treat
from lstm_doctor.treat.executors import LocalExecutor
from lstm_doctor.treat.treatments import describe, merge
from lstm_doctor.treat.trials import TrialSpec, run_trial
from lstm_doctor.treat.verify import candidates, compare

TREATMENTS_BY_NAME = {t.name: t for t in TREATMENTS}
# Small enough for the test suite: a few hundred steps per trial at most.
TINY = replace(BUDGETS["quick"], train_steps=120, fraction_of_training=0.0)


def test_compare_flags_a_clear_improvement_and_not_a_tie():
    clear = compare([3.1, 3.0, 3.2], [0.9, 1.0, 0.95], lower_is_better=True)
    assert clear["improved"] and clear["p_value"] < 0.01 and clear["relative_gain"] > 0.6
    tie = compare([1.00, 1.02, 0.98], [0.99, 1.01, 1.00], lower_is_better=True)
    assert not tie["improved"]
    # Higher is better for accuracy: a drop is never an improvement.
    worse = compare([0.8, 0.82, 0.81], [0.6, 0.62, 0.61], lower_is_better=False)
    assert not worse["improved"] and worse["relative_gain"] < 0


def test_compare_needs_both_size_and_significance():
    # 4% better with no noise: significant but below the 5% bar.
    small = compare([1.0, 1.0, 1.0], [0.96, 0.96, 0.96], lower_is_better=True)
    assert small["p_value"] == 0.0 and not small["improved"]
    # 30% better on average but one seed much worse: not significant at p < 0.1.
    noisy = compare([1.0, 1.0, 1.0], [0.2, 0.2, 1.7], lower_is_better=True)
    assert noisy["relative_gain"] > 0.05 and not noisy["improved"]


def test_apply_change_returns_a_new_validated_config():
    config = SetupConfig()
    treated = apply_change(config, {"data": {"scale": "standard"}, "training": {"lr": 0.01}})
    assert (treated.data.scale, treated.training.lr) == ("standard", 0.01)
    assert (config.data.scale, config.training.lr) == ("none", 0.001)
    with pytest.raises(InputError, match="lr"):
        apply_change(config, {"training": {"lr": -1.0}})
    assert describe(merge({"data": {"scale": "minmax"}}, {"data": {"scale": "standard"}})) == "data.scale: standard"


def test_candidates_follow_rank_skip_info_and_merge_duplicates():
    config = SetupConfig.model_validate({"data": {"target": "y"}, "training": {"optimizer": "sgd", "lr": 1e-5}})
    findings = [Finding.of("D102", "s"), Finding.of("D104", "s"), Finding.of("T302", "s"), Finding.of("M207", "s", severity="info")]
    chosen = candidates(findings, config, Evidence(), limit=10)
    names = [t.name for t, _, _ in chosen]
    assert names[0] == "scale-inputs-and-target"
    assert "switch-to-adam" in names and "forget-bias-1" not in names  # M207 is info here
    codes = dict((t.name, c) for t, _, c in chosen)
    assert codes["scale-inputs-and-target"] == ["D102", "D104"]
    assert len(candidates(findings, config, Evidence(), limit=1)) == 1


def test_range_test_rate_for_off_scale_data_comes_with_the_scaling_it_was_found_on():
    config = SetupConfig.model_validate({"data": {"target": "y", "scale": "none"}, "training": {"lr": 1.0}})
    propose = TREATMENTS_BY_NAME["learning-rate-from-range-test"].propose
    assert propose(config, Evidence(lr_suggested=0.8)) is None  # within 2x of the rate: nothing to change
    change = propose(config, Evidence(lr_suggested=0.8, scaled_lr_safe_range=[1e-4, 0.05], scaled_lr_suggested=7e-3))
    assert change == {"data": {"scale": "standard", "scale_target": "standard"}, "training": {"lr": 0.007}}


def test_downsampling_offers_the_cells_reach_and_about_100_steps():
    def factors(cell: str, steps: int, downsample: int = 1, **ev) -> list[int | None]:
        config = SetupConfig.model_validate({"data": {"task": "multiclass", "downsample": downsample}, "model": {"cell": cell}})
        evidence = Evidence(source_kind="arrays", steps=steps, **ev)
        changes = [TREATMENTS_BY_NAME[name].propose(config, evidence) for name in ("downsample-sequences", "downsample-to-100-steps")]
        return [None if c is None else c["data"]["downsample"] for c in changes]

    # OSULeaf's 427 steps: an LSTM carries ~300 (D109's limit), a plain RNN ~50.
    assert factors("lstm", 427) == [2, 5] and factors("rnn", 427) == [9, 5]
    assert factors("lstm", 300) == [None, None]  # within reach: D109 does not fire either
    assert factors("rnn", 100) == [2, None]  # already 100 steps: one candidate only
    assert factors("lstm", 427, per_step=True) == [None, None]  # per-step targets would lose their alignment
    # Already averaged by 2 and still too long: the factor compounds on the fed steps.
    assert factors("rnn", 214, downsample=2) == [10, 6]


def test_trial_records_divergence_instead_of_raising(sunspots_frame):
    config = {"data": {"target": "sunspots", "features": ["sunspots"], "window": 11},
              "model": {"hidden": 8}, "training": {"optimizer": "sgd", "lr": 1e3, "epochs": 3}}
    result = run_trial(TrialSpec("untreated", config, 0, 60), sunspots_frame)
    assert result["stopped"] == "diverged" and result["metrics"] == {}


def test_process_pool_gives_the_same_results_as_sequential(sunspots_frame):
    config = {"data": {"target": "sunspots", "features": ["sunspots"], "window": 11, "scale": "standard"},
              "model": {"hidden": 8}, "training": {"epochs": 2}}
    specs = [TrialSpec("a", config, s, 30) for s in (0, 1)]
    sequential = LocalExecutor(1).run(specs, sunspots_frame)
    pooled = LocalExecutor(2).run(specs, sunspots_frame)
    assert [r["metrics"]["rmse"] for r in sequential] == pytest.approx([r["metrics"]["rmse"] for r in pooled], rel=1e-5)


def test_raw_scale_forecast_gets_a_verified_scaling_fix(sunspots_frame):
    setup = setup_from(sunspots_frame, data={"target": "sunspots", "features": ["sunspots"], "window": 11},
                       model={"hidden": 16}, training={"epochs": 15, "lr": 3e-3})
    findings = [Finding.of("D102", "raw sunspot counts"), Finding.of("D104", "raw target")]
    mean_rmse = float(np.std(sunspots_frame["sunspots"][:240]))
    result = treat(setup, findings, Evidence(source_kind="table", baselines={"mean": {"rmse": mean_rmse}}), TINY)
    scaling = next(t for t in result.treatments if t["name"] == "scale-inputs-and-target")
    assert scaling["verified"], scaling["metric"]
    assert scaling["metric"]["after"]["mean"] < 0.8 * scaling["metric"]["before"]["mean"]
    assert findings[0].verified["improved"] and findings[0].verified["treatment"] == "scale-inputs-and-target"
    assert result.recommended_setup["data"]["scale"] == "standard"


def test_two_faults_that_each_block_learning_are_treated_together(italy_power):
    # Inputs at ~5000 pin every gate, so a better rate alone does nothing; plain SGD at 1e-6 hardly moves the
    # weights, so scaling alone does nothing either: only both at once let the model learn.
    raw = {**italy_power, "X": italy_power["X"] * 1000.0 + 5000.0, "X_val": italy_power["X_val"] * 1000.0 + 5000.0}
    setup = setup_from(raw, data={"scale": "none", "task": "binary"}, model={"hidden": 16},
                       training={"optimizer": "sgd", "lr": 1e-6, "epochs": 150})
    findings = [Finding.of("D102", "raw inputs", severity="critical"), Finding.of("T302", "rate far too low", severity="critical")]
    # 400 steps: Adam at 1e-3 needs a few hundred to lift ItalyPowerDemand off chance.
    result = treat(setup, findings, Evidence(source_kind="arrays"), replace(TINY, train_steps=400))
    singles = {t["name"]: t for t in result.treatments if not t["name"].startswith("together")}
    assert {"scale-inputs-and-target", "switch-to-adam"} <= set(singles) and not any(t["verified"] for t in singles.values())
    together = next(t for t in result.treatments if t["name"].startswith("together"))
    assert together["verified"] and together["recommended"] and set(together["for"]) == {"D102", "T302"}
    assert result.recommended_setup["data"]["scale"] == "standard" and result.recommended_setup["training"]["optimizer"] == "adam"
    assert findings[1].verified["improved"] and findings[1].verified["treatment"] == together["name"]


def test_a_fix_masked_by_the_fault_another_fix_mends_joins_the_combination():
    # The fault zoo's ItalyPowerDemand with inputs at x20 + 50 and plain SGD at 1e-4 (D102+T302, subtle): Adam
    # alone lifts balanced accuracy to ~0.63, scaling alone does nothing at that rate; both reach ~0.97.
    from bench.zoo.scenarios import all_scenarios

    case = next(s for s in all_scenarios() if s.id.startswith("d102-t302-combined/italy_power/subtle"))
    findings = [Finding.of("D102", "raw inputs", severity="critical"), Finding.of("T302", "rate far too low", severity="critical")]
    result = treat(case.case().setup(), findings, Evidence(source_kind="arrays"), BUDGETS["quick"])
    by_name = {t["name"]: t for t in result.treatments}
    assert by_name["switch-to-adam"]["verified"] and not by_name["scale-inputs-and-target"]["verified"]
    combined = next(t for t in result.treatments if t["name"].startswith("combined"))
    assert combined["recommended"] and set(combined["for"]) >= {"D102", "T302"}
    assert combined["metric"]["after"]["mean"] > by_name["switch-to-adam"]["metric"]["after"]["mean"] + 0.1
    assert result.recommended_setup["data"]["scale"] == "standard" and result.recommended_setup["training"]["optimizer"] == "adam"


def test_no_signal_gets_no_false_fix():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 20, 2)).astype(np.float32)
    y = rng.normal(size=240).astype(np.float32)  # the target is noise: nothing can help
    setup = setup_from({"X": X, "y": y}, data={"scale": "standard"}, model={"hidden": 8, "dropout": 0.0},
                       training={"epochs": 6, "lr": 0.5, "optimizer": "sgd"})
    findings = [Finding.of("D110", "noise"), Finding.of("T301", "lr")]
    result = treat(setup, findings, Evidence(source_kind="arrays", lr_suggested=3e-3), TINY)
    assert result.treatments, "the learning-rate treatments should have been tried"
    assert not any(t["verified"] for t in result.treatments)
    assert result.recommended_setup is None and any("No treatment" in n for n in result.notes)


def test_ray_executor_runs_trials_like_the_local_one(sunspots_frame):
    ray = pytest.importorskip("ray")
    import shutil
    import tempfile

    from lstm_doctor.treat.executors import RayExecutor

    config = {"data": {"target": "sunspots", "features": ["sunspots"], "window": 11, "scale": "standard"},
              "model": {"hidden": 8}, "training": {"epochs": 2}}
    specs = [TrialSpec("a", config, s, 30) for s in (0, 1)]
    # Not pytest's tmp_path: Ray's socket paths under it exceed the 107-byte AF_UNIX limit.
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, log_to_driver=False)
    try:
        remote = RayExecutor().run(specs, sunspots_frame)
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
    local = LocalExecutor(1).run(specs, sunspots_frame)
    assert [r["metrics"]["rmse"] for r in remote] == pytest.approx([r["metrics"]["rmse"] for r in local], rel=1e-5)
