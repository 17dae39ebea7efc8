"""``python -m bench.zoo``: run the fault zoo and write its metrics.

    python -m bench.zoo --budget quick --split tuning --limit 40 --jobs 1 --out bench/zoo_results.json
    python -m bench.zoo --list                      # the scenarios and counts, nothing run
    python -m bench.zoo --split report --results-md bench/RESULTS.md
    python -m bench.zoo --split report --codes D102,T301 --per-family 1 --treat   # the repair rate on a subset
    python -m bench.zoo --split tuning --jobs 2 --evidence-dir /tmp/zoo-ev   # also keep what each case measured
    python -m bench.zoo --split tuning --rejudge /tmp/zoo-ev   # judge it again with the rules as they are now: seconds
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from lstm_doctor.report import plain, write_atomic

from bench.zoo.metrics import summarize
from bench.zoo.results_page import write_section
from bench.zoo.runner import load_evidence, print_progress, progress_line, rejudge, run_all
from bench.zoo.scenarios import NOT_YET_COVERED, SPLITS, all_scenarios, select


def machine(threads: int, jobs: int) -> dict[str, Any]:
    """What the numbers were measured on (the machine is shared: the load average matters)."""
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    try:
        git = lambda *a: subprocess.run(["git", *a], capture_output=True, text=True, check=True).stdout.strip()
        commit = git("rev-parse", "--short", "HEAD")
        # The product as run: uncommitted changes under src/ are part of what was measured.
        dirty = len(git("status", "--porcelain", "--", "src").splitlines())
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = None, None
    return {"cpu": cpu, "cores": os.cpu_count(), "jobs": jobs, "torch_threads": threads, "python": platform.python_version(),
            "torch": torch.__version__, "platform": platform.platform(), "load_average_start": os.getloadavg(),
            "commit": commit, "src_files_uncommitted": dirty}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.zoo", description="The fault zoo: does lstm-doctor name the right cause?")
    p.add_argument("--budget", default="quick", choices=["quick", "standard", "thorough"])
    p.add_argument("--split", default="tuning", choices=[*SPLITS, "all"],
                   help="tuning (tune thresholds here), report (held out, for RESULTS.md) or all")
    p.add_argument("--codes", default=None, help="only scenarios about these codes, e.g. D102,T301 (healthy: the controls)")
    p.add_argument("--limit", type=int, default=None, help="run the first N selected scenarios (families interleaved)")
    p.add_argument("--per-family", type=int, default=None, help="at most N scenarios of each family (the first selected)")
    p.add_argument("--jobs", type=int, default=1, help="cases run in parallel (separate processes)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per job (default: cores / jobs)")
    p.add_argument("--seeds", type=int, default=2, help="seeds per family x dataset x severity")
    p.add_argument("--healthy-seeds", type=int, default=12, help="seeds per healthy control dataset")
    p.add_argument("--time-limit", type=float, default=300.0, help="examine's own time limit per case, seconds")
    p.add_argument("--treat", action="store_true", help="also ask for treatments and measure the repair rate")
    p.add_argument("--no-verify-healthy", action="store_true", help="skip the full training of healthy controls")
    p.add_argument("--out", default=None, help="results JSON, rewritten after every case (default: bench/zoo_results.json; "
                   "with --rejudge, none)")
    p.add_argument("--evidence-dir", default=None, help="also save each case's record and evidence in this folder")
    p.add_argument("--rejudge", metavar="DIR", default=None,
                   help="run nothing: judge the evidence saved in DIR (by --evidence-dir) with the current rules and ranking")
    p.add_argument("--results-md", default=None, help="also write the zoo's section of this RESULTS.md")
    p.add_argument("--list", action="store_true", help="list the selected scenarios and counts; run nothing")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    codes = args.codes.split(",") if args.codes else None
    chosen = select(all_scenarios(seeds=args.seeds, healthy_seeds=args.healthy_seeds), split=args.split, codes=codes)
    if args.per_family:
        taken: Counter = Counter()
        chosen = [s for s in chosen if taken.update([s.family]) or taken[s.family] <= args.per_family]
    chosen = chosen[: args.limit] if args.limit else chosen
    if args.list:
        for s in chosen:
            print(f"{s.split:7} {s.id:70} top1={'|'.join(s.top1) or '-'} top3={','.join(s.top3) or '-'}")
        counts = Counter("healthy" if s.is_healthy else "fault" for s in chosen)
        print(f"{len(chosen)} scenarios: {counts['fault']} fault cases, {counts['healthy']} healthy controls", file=sys.stderr)
        return 0
    if not chosen:
        print("No scenario matches these options.", file=sys.stderr)
        return 2
    if args.rejudge:
        return rejudge_saved(args, chosen)
    args.out = args.out or "bench/zoo_results.json"
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
    run: dict[str, Any] = {
        "command": "python -m bench.zoo " + shlex.join(sys.argv[1:] if argv is None else argv),
        "machine": machine(threads, args.jobs),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "budget": args.budget, "split": args.split, "codes": codes, "limit": args.limit,
        "seeds": args.seeds, "healthy_seeds": args.healthy_seeds,
        "not_yet_covered": NOT_YET_COVERED,
    }
    records: list[dict[str, Any]] = []
    show = print_progress(len(chosen))

    def save(record: dict[str, Any]) -> None:
        show(record)
        records.append(record)
        # Rewritten after every case, so a run cut short still leaves its results.
        write_atomic(args.out, json.dumps(plain({**run, "summary": summarize(records), "records": records}), indent=1) + "\n")

    t0 = time.perf_counter()
    run_all(chosen, jobs=args.jobs, threads=threads, on_result=save, budget=args.budget, time_limit=args.time_limit,
            treat=args.treat, verify_healthy=not args.no_verify_healthy, evidence_dir=args.evidence_dir)
    run["wall_seconds"] = round(time.perf_counter() - t0, 1)
    run["machine"]["load_average_end"] = os.getloadavg()
    result = {**run, "summary": summarize(records), "records": records}
    write_atomic(args.out, json.dumps(plain(result), indent=1) + "\n")
    if args.results_md:
        write_section(result, args.results_md)
    print_summary(result["summary"], args.out)
    return 0


def print_summary(s: dict[str, Any], out: str | None) -> None:
    print(f"top-1 {s['top1']['rate']} top-3 {s['top3']['rate']} false alarms {s['false_alarm']['rate']} "
          f"symptom {s['symptom']['rate']} median {s['seconds']['median']} s" + (f" -> {out}" if out else ""), file=sys.stderr)


def rejudge_saved(args: argparse.Namespace, chosen: list) -> int:
    """--rejudge: the saved cases of the selection judged again (no probe runs); prints the misses and the metrics."""
    saved = [(s, load_evidence(args.rejudge, s)) for s in chosen]
    present = [(s, kept) for s, kept in saved if kept is not None]
    if not present:
        print(f"No saved evidence for these scenarios in {args.rejudge}; save some with --evidence-dir.", file=sys.stderr)
        return 2
    records = []
    for i, (scenario, kept) in enumerate(present, start=1):
        record = rejudge(scenario, kept)
        records.append(record)
        if record.get("false_alarm") or record.get("top1_ok") is False or record.get("top3_ok") is False:
            print(progress_line(record, i, len(present)), file=sys.stderr)
    summary = summarize(records)
    if args.out:
        result = {"command": "python -m bench.zoo " + shlex.join(sys.argv[1:]), "rejudged_from": args.rejudge,
                  "started": time.strftime("%Y-%m-%d %H:%M:%S"), "summary": summary, "records": records}
        write_atomic(args.out, json.dumps(plain(result), indent=1) + "\n")
    print(f"{len(present)} of {len(chosen)} selected cases had saved evidence.", file=sys.stderr)
    print_summary(summary, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
