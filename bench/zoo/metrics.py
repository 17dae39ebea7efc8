"""Zoo metrics: how often lstm-doctor names the right cause, how often it cries
wolf on healthy setups, and how long and how much memory it takes."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from typing import Any, Iterable

from bench.zoo.repair import OUTCOMES

# The targets.
TARGETS = {"top1": 0.90, "top3": 0.97, "false_alarm": 0.05, "median_seconds": 30.0}


def _rate(flags: Iterable[bool | None]) -> dict[str, Any]:
    """Share of True among the flags that apply (None = not applicable)."""
    vals = [bool(v) for v in flags if v is not None]
    return {"n": len(vals), "hits": sum(vals), "rate": round(sum(vals) / len(vals), 3) if vals else None}


def _by(records: list[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[r[key]].append(r)
    return dict(sorted(groups.items()))


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Every metric of one zoo run, from its per-case records."""
    inert = [r for r in records if r.get("status") == "inert"]
    records = [r for r in records if r.get("status") != "inert"]
    faults = [r for r in records if r["code"] != "healthy"]
    controls = [r for r in records if r["code"] == "healthy"]
    seconds = [r["seconds"] for r in records if r.get("status") != "error"]
    summary: dict[str, Any] = {
        "cases": len(records),
        "fault_cases": len(faults),
        "healthy_cases": len(controls),
        "errors": sum(r.get("status") == "error" for r in records),
        "incomplete": sum(r.get("status") == "incomplete" for r in records),
        "inert": {r["id"]: r["error"] for r in inert},  # no fault to find: left out of every score
        "top1": _rate(r["top1_ok"] for r in faults),
        "top3": _rate(r["top3_ok"] for r in faults),
        "false_alarm": _rate(r["false_alarm"] for r in controls),
        "symptom": _rate(r["symptom_ok"] for r in records),
        "seconds": _spread(seconds),
        "rss_peak_mb": max((r.get("rss_peak_mb", 0.0) for r in records), default=None),
    }
    summary["per_code"] = {code: {"top1": _rate(r["top1_ok"] for r in rs), "top3": _rate(r["top3_ok"] for r in rs),
                                  "symptom": _rate(r["symptom_ok"] for r in rs)}
                           for code, rs in _by(faults, "code").items()}
    summary["per_family"] = {fam: {"top1": _rate(r["top1_ok"] for r in rs), "top3": _rate(r["top3_ok"] for r in rs)}
                             for fam, rs in _by(faults, "family").items()}
    summary["per_severity"] = {sev: {"top1": _rate(r["top1_ok"] for r in rs), "top3": _rate(r["top3_ok"] for r in rs)}
                               for sev, rs in _by(faults, "severity").items()}
    summary["recall_in_top3"] = _recall(faults)
    summary["missed_first"] = _missed(faults)
    summary["healthy"] = _healthy(controls)
    summary["repair"] = _rate(r.get("repaired") for r in faults)
    summary["treat"] = _treat([r for r in faults if "repair" in r])
    summary["targets"] = _against_targets(summary)
    return summary


def _spread(values: list[float]) -> dict[str, float | None]:
    """Median, 90th percentile, maximum and total."""
    v = sorted(values)
    return {"median": round(statistics.median(v), 2) if v else None, "p90": round(v[int(0.9 * (len(v) - 1))], 2) if v else None,
            "max": round(v[-1], 2) if v else None, "total": round(sum(v), 1)}


def _treat(cases: list[dict[str, Any]]) -> dict[str, Any] | None:
    """--treat: every fault case's repair outcome (the rate's own cases and the rest,
    each kind counted apart), per family, and the time per case."""
    if not cases:
        return None
    outcome = lambda r: r["repair"]["outcome"]
    return {
        "cases": len(cases),
        "outcomes": {o: n for o in OUTCOMES if (n := sum(outcome(r) == o for r in cases))},
        "per_family": {fam: dict(Counter(outcome(r) for r in rs).most_common()) for fam, rs in _by(cases, "family").items()},
        # examine with its treatment trials (what a user waits for), and the trials alone
        "seconds": _spread([r["seconds"] for r in cases if r.get("status") != "error"]),
        "treat_seconds": _spread([r["timing"]["treat_s"] for r in cases if "treat_s" in (r.get("timing") or {})]),
        # the bench's own cost: training the healthy references
        "reference_seconds": round(sum(r["repair"].get("reference_seconds", 0.0) for r in cases), 1),
    }


def _recall(faults: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """For each family's code and each code a case requires in its top three: how often
    it was there, and how often it was reported at all (any rank)."""
    def expects(r: dict[str, Any]) -> set[str]:
        return {r["code"], *r["top3"]}
    out: dict[str, dict[str, Any]] = {}
    for code in sorted({c for r in faults for c in expects(r)}):
        rs = [r for r in faults if code in expects(r) and r.get("status") != "error"]
        out[code] = {"in_top3": _rate(code in r["codes"][:3] for r in rs), "reported": _rate(code in r["codes"] for r in rs)}
    return out


def _missed(faults: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """For each code whose cases missed rank 1: what came first instead ("none": no finding)."""
    out: dict[str, Counter] = defaultdict(Counter)
    for r in faults:
        if r["top1_ok"] is False:
            out[r["code"]][r["codes"][0] if r.get("codes") else ("error" if r.get("status") == "error" else "none")] += 1
    return {code: dict(c.most_common()) for code, c in sorted(out.items())}


def _healthy(controls: list[dict[str, Any]]) -> dict[str, Any]:
    """Are the controls really healthy, and what do they get flagged with?"""
    flagged: Counter = Counter()
    symptoms: Counter = Counter()
    for r in controls:
        flagged.update(f"{f['code']} ({f['severity']})" for f in r.get("findings", []))
        symptoms[str(r.get("symptom"))] += 1
    return {
        "beats_baselines_examined": _rate(r.get("beats_baselines") for r in controls),
        "beats_baselines_full_training": _rate((r.get("full_training") or {}).get("beats_baselines") for r in controls),
        "symptoms": dict(symptoms.most_common()),
        "findings": dict(flagged.most_common()),
        "per_dataset": {d: {"false_alarm": _rate(r["false_alarm"] for r in rs),
                            "beats_baselines": _rate((r.get("full_training") or {}).get("beats_baselines", r.get("beats_baselines")) for r in rs)}
                        for d, rs in _by(controls, "dataset").items()},
    }


def _against_targets(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    checks = {
        "top1": (summary["top1"]["rate"], ">=", TARGETS["top1"]),
        "top3": (summary["top3"]["rate"], ">=", TARGETS["top3"]),
        "false_alarm": (summary["false_alarm"]["rate"], "<=", TARGETS["false_alarm"]),
        "median_seconds": (summary["seconds"]["median"], "<=", TARGETS["median_seconds"]),
    }
    return {name: {"value": v, "target": f"{op} {t}",
                   "met": None if v is None else (v >= t if op == ">=" else v <= t)}
            for name, (v, op, t) in checks.items()}
