"""lstm-doctor's suggested learning rate against torch-lr-finder's and Lightning's ``lr_find``: which trains best?

Run as ``OMP_WAIT_POLICY=PASSIVE python -m bench.lr_compare [--seeds 3] [--cap 400]
[--datasets italy_power,...] [--json out.json]``; needs the ``bench`` extra
(``pip install -e '.[bench]'``: torch-lr-finder and lightning).
The figures go to bench/RESULTS.md (section "lstm-doctor's learning rate vs
torch-lr-finder and Lightning ``lr_find``").

Cases are the zoo's healthy controls and its T301 (rate far too high) and T302
(plain SGD at a rate far too low) families, on the datasets of fixed sequence
length (the two other finders call ``model(inputs)`` without lengths). A range
test never reads the user's rate, so the cases that differ only in it (a
healthy control and its T301 variants; T302's two severities) share one set of
range tests: one comparison case per dataset and optimizer, with every user
rate of its families kept as a reference.

For each case and seed, the three finders start from the same initial weights
(``Setup.new_model(seed)``), see the same batches in the same order as the one
training loop draws them, sweep the same rates (1e-7 to 10, exponentially) for
the same number of steps (lstm-doctor's ``lr_range_steps`` under the quick
budget with one seed) and keep their own defaults otherwise:

- lstm-doctor: the ``lr_range`` probe, evidence ``lr_suggested``;
- torch-lr-finder: ``LRFinder.range_test`` then ``plot(suggest_lr=True)``, the
  steepest gradient of its smoothed loss (``skip_start=10, skip_end=5``);
- Lightning: ``Tuner(trainer).lr_find(...)`` then ``.suggestion()``.

Then the setup is trained from scratch at each suggestion with that seed, through
``Setup.train`` (the one training loop, the rate set in the config), capped at
``--cap`` optimizer steps, and scored on validation after the last step: RMSE in
the target's units (forecasting) or balanced accuracy (classification). A run
that diverges scores as the best constant output (the ``baselines`` probe's
``mean`` or ``majority``): what a model that learned nothing scores. So does a
seed where a finder suggests nothing (lstm-doctor does when the sweep shows no
real fall): the comparison does not guess what the user would do instead.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import os
import platform
import tempfile
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

import numpy as np
import torch

from bench.zoo.case import Case
from bench.zoo.scenarios import HEALTHY_FAMILY, Scenario, all_scenarios
from lstm_doctor.budget import BUDGETS
from lstm_doctor.probes.baselines import baselines
from lstm_doctor.probes.context import ProbeContext
from lstm_doctor.probes.lr_range import LR_END, LR_START, geomedian, lr_range
from lstm_doctor.setups import Setup, setup_from_config
from lstm_doctor.treat.treatments import apply_change

FINDERS = ("lstm-doctor", "torch-lr-finder", "lightning", "lightning-log")
FAMILIES = (HEALTHY_FAMILY.name, "T301 learning rate far too high", "T302 learning rate far too low")
# The zoo's datasets of fixed length in those families: three real series, three real classification sets.
DATASETS = ("italy_power", "gunpoint", "basic_motions", "sunspots", "elnino", "co2_monthly_change")
NEAR_BEST = 0.05  # "within 5% of the best" (relative)
INSTALL_HINT = "pip install -e '.[bench]' (torch-lr-finder and lightning)"


def require_finders() -> None:
    """Stop with what to install when either finder is missing."""
    for module, package in (("torch_lr_finder", "torch-lr-finder"), ("lightning", "lightning")):
        try:
            __import__(module)
        except ImportError:
            raise SystemExit(f"bench.lr_compare compares against {package}, which is not installed: {INSTALL_HINT}.") from None


# ------------------------------------------------------------------ cases


@dataclass
class CompareCase:
    """One dataset and optimizer: the finders' common ground, and the user rates of the families on it."""

    name: str
    case: Case
    user_rates: dict[str, float] = field(default_factory=dict)  # "healthy" / "T301 obvious" ... -> rate


def _finder_key(case: Case) -> str:
    """What a range test depends on: everything but the user's rate and the seed."""
    training = {k: v for k, v in case.training.items() if k not in ("lr", "seed")}
    return json.dumps([case.dataset, dict(case.data), dict(case.model), training], sort_keys=True, default=str)


def _label(s: Scenario) -> str:
    return "healthy" if s.is_healthy else f"{s.code} {s.severity}"


def compare_cases(datasets: tuple[str, ...] = DATASETS) -> list[CompareCase]:
    """The healthy, T301 and T302 cases on ``datasets``, merged where only the user's rate differs."""
    merged: dict[str, CompareCase] = {}
    for s in all_scenarios(seeds=1, healthy_seeds=1):
        if s.family not in FAMILIES or s.dataset not in datasets:
            continue
        case = s.case()
        key = _finder_key(case)
        if key not in merged:
            merged[key] = CompareCase(f"{case.dataset} {case.training['optimizer']}", case)
        merged[key].user_rates[_label(s)] = float(case.training["lr"])
    return sorted(merged.values(), key=lambda c: (datasets.index(c.case.dataset), c.name))


def seeded(setup: Setup, seed: int, lr: float | None = None) -> Setup:
    """The setup with another seed (and rate), on the same windows."""
    change: dict[str, Any] = {"seed": seed} if lr is None else {"seed": seed, "lr": lr}
    return setup_from_config(apply_change(setup.config, {"training": change}), data=setup.data, device=setup.device)


# ------------------------------------------------------------------ the same batches for the other finders


class FitOrder(torch.utils.data.Sampler):
    """Batches of window indices in the order ``lstm_doctor.training.fit`` draws them with ``seed``:
    one generator, a fresh permutation each epoch."""

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.batch_size = n, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self) -> Iterator[torch.Tensor]:
        order = torch.randperm(self.n, generator=self.generator)
        return iter(order.split(self.batch_size))

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)


class WindowBatches(torch.utils.data.Dataset):
    """A setup's training windows, indexed by a whole batch of indices at once."""

    def __init__(self, setup: Setup):
        if setup.data.train.lengths is not None:
            raise ValueError("torch-lr-finder and Lightning's lr_find call model(inputs): sequences of one length only")
        self.windows = setup.data.train

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, y, _ = self.windows.batch(idx)
        return x, y


def loader(setup: Setup, seed: int) -> torch.utils.data.DataLoader:
    """The training windows in fit's batch order (``batch_size=None``: the sampler yields whole batches)."""
    return torch.utils.data.DataLoader(WindowBatches(setup), batch_size=None,
                                       sampler=FitOrder(len(setup.data.train), setup.batch_size, seed))


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the finders' progress bars, prints and warnings."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


# ------------------------------------------------------------------ the three finders


@dataclass
class Suggestion:
    lr: float | None
    seconds: float
    steps: int


def doctor_lr(setup: Setup, steps: int) -> Suggestion:
    """The ``lr_range`` probe as ``examine`` runs it under the quick budget (one seed)."""
    ctx = ProbeContext(setup, replace(BUDGETS["quick"], lr_range_steps=steps, seeds=1))
    t0 = time.perf_counter()
    lr_range(ctx)
    return Suggestion(ctx.evidence["lr_suggested"], time.perf_counter() - t0, int(ctx.evidence["lr_range_steps"]))


def torch_lr_finder_lr(setup: Setup, steps: int, seed: int) -> Suggestion:
    """torch-lr-finder as its README shows it: range test, then the plot's steepest-gradient suggestion."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torch_lr_finder import LRFinder

    t0 = time.perf_counter()
    model = setup.new_model(seed)
    finder = LRFinder(model, setup.optimizer_factory(model.parameters()), setup.objective, device=setup.device)
    fig, ax = plt.subplots()
    with quiet():
        finder.range_test(loader(setup, seed), start_lr=LR_START, end_lr=LR_END, num_iter=steps)
        try:
            _, lr = finder.plot(ax=ax, suggest_lr=True)
        except ValueError:  # stopped too early: fewer points than the 15 it skips
            lr = None
    plt.close(fig)
    return Suggestion(None if lr is None else float(lr), time.perf_counter() - t0, len(finder.history["lr"]))


def log_spaced_suggestion(lrs: list[float], losses: list[float], skip_begin: int = 10, skip_end: int = 1) -> float | None:
    """Lightning's ``suggestion()`` with the gradient taken against log10 of the rate, as
    Lightning-AI/pytorch-lightning#21171 proposes (and as before 2.5.3, whose unit spacing is the
    same on an exponential sweep): 2.5.3's gradient against the rate itself (#21055) is dominated
    by the noise at the smallest rates (#21141)."""
    loss = torch.tensor(losses[skip_begin:-skip_end])
    lr = torch.tensor(lrs[skip_begin:-skip_end])
    finite = torch.isfinite(loss)
    if int(finite.sum()) < 2:
        return None
    gradient = torch.gradient(loss[finite], spacing=[torch.log10(lr[finite])])[0]
    return float(lr[finite][int(torch.argmin(gradient))])


def lightning_lr(setup: Setup, steps: int, seed: int) -> dict[str, Suggestion]:
    """Lightning's tuner on a LightningModule around the same model, loss and optimizer: its
    ``suggestion()`` as installed, and the same sweep read with a log-spaced gradient."""
    import lightning.pytorch as L
    from lightning.pytorch.tuner import Tuner

    class Wrapped(L.LightningModule):
        def __init__(self, model: torch.nn.Module):
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.model(x)

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
            x, y = batch
            return setup.objective(self.model(x), y)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return setup.optimizer_factory(self.model.parameters())

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    t0 = time.perf_counter()
    module = Wrapped(setup.new_model(seed))
    with tempfile.TemporaryDirectory() as root, quiet():
        trainer = L.Trainer(accelerator="gpu" if setup.device.type == "cuda" else "cpu", devices=1, logger=False,
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                            gradient_clip_val=setup.clip_norm, default_root_dir=root, use_distributed_sampler=False)
        found = Tuner(trainer).lr_find(module, train_dataloaders=loader(setup, seed), min_lr=LR_START, max_lr=LR_END,
                                       num_training=steps, update_attr=False)
        lr = found.suggestion()
    seconds, swept = time.perf_counter() - t0, len(found.results["lr"])
    return {"lightning": Suggestion(None if lr is None else float(lr), seconds, swept),
            "lightning-log": Suggestion(log_spaced_suggestion(found.results["lr"], found.results["loss"]), seconds, swept)}


# ------------------------------------------------------------------ training at a rate


def metric_name(setup: Setup) -> str:
    return "rmse" if setup.data.task == "regression" else "balanced_accuracy"


def lower_is_better(metric: str) -> bool:
    return metric in ("rmse", "loss")


def constant_score(setup: Setup) -> dict[str, float]:
    """The validation scores of the best constant output (the ``baselines`` probe)."""
    ctx = ProbeContext(setup, BUDGETS["quick"])
    baselines(ctx)
    found = ctx.evidence["baselines"]
    return found["mean" if setup.data.task == "regression" else "majority"]


def train_at(setup: Setup, lr: float, seed: int, cap: int, constant: dict[str, float]) -> dict[str, Any]:
    """Validation after training a fresh model at ``lr`` for at most ``cap`` steps; a diverged run scores as ``constant``."""
    _, result = seeded(setup, seed, lr).train(seed=seed, max_steps=cap)
    last = result.val[-1] if result.val else {}
    metric = metric_name(setup)
    value, loss = last.get(metric, math.nan), last.get("loss", math.nan)
    failed = result.stopped == "diverged" or not (math.isfinite(value) and math.isfinite(loss))
    if failed:
        value, loss = constant[metric], constant["loss"]
    return {"lr": lr, "seed": seed, "metric": value, "loss": loss, "diverged": failed, "none": False, "steps": result.steps}


def nothing_suggested(seed: int, metric: str, constant: dict[str, float]) -> dict[str, Any]:
    """The score of a seed without a suggestion: the constant output's."""
    return {"lr": None, "seed": seed, "metric": constant[metric], "loss": constant["loss"], "diverged": False,
            "none": True, "steps": 0}


# ------------------------------------------------------------------ one case


def run_case(cc: CompareCase, seeds: list[int], steps: int, cap: int) -> dict[str, Any]:
    base = cc.case.setup()
    constant = constant_score(base)
    metric = metric_name(base)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in (*FINDERS, *cc.user_rates)}
    found: dict[str, list[Suggestion]] = {name: [] for name in FINDERS}
    for seed in seeds:
        setup = seeded(base, seed)
        doctor = doctor_lr(setup, steps)
        used = doctor.steps  # the others sweep as many steps
        picks = {"lstm-doctor": doctor, "torch-lr-finder": torch_lr_finder_lr(setup, used, seed),
                 **lightning_lr(setup, used, seed)}
        for name, s in picks.items():
            found[name].append(s)
            runs[name].append(nothing_suggested(seed, metric, constant) if s.lr is None
                              else train_at(base, s.lr, seed, cap, constant))
        for label, lr in cc.user_rates.items():
            runs[label].append(train_at(base, lr, seed, cap, constant))
        print(f"  seed {seed}: " + ", ".join(f"{n} {s.lr if s.lr is None else f'{s.lr:.3g}'}" for n, s in picks.items()),
              flush=True)
    return {"case": cc.name, "dataset": cc.case.dataset, "optimizer": cc.case.training["optimizer"], "metric": metric,
            "constant": constant[metric], "cap": cap, "user_rates": cc.user_rates,
            "suggestions": {n: [{"lr": s.lr, "seconds": s.seconds, "steps": s.steps} for s in ss] for n, ss in found.items()},
            "runs": runs}


# ------------------------------------------------------------------ summaries (pure)


def mean_sd(runs: list[dict[str, Any]]) -> tuple[float, float]:
    values = [r["metric"] for r in runs]
    if not values:
        return math.nan, math.nan
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def gap(value: float, best: float, metric: str) -> float:
    """How far ``value`` falls short of ``best``, relative to it (0 = as good)."""
    if not math.isfinite(value):
        return math.inf
    short = value - best if lower_is_better(metric) else best - value
    return short / abs(best) if best else (0.0 if short <= 0 else math.inf)


def standings(results: list[dict[str, Any]], names: tuple[str, ...] = FINDERS) -> dict[str, dict[str, int]]:
    """Per finder, in how many cases its mean metric is the best, and within ``NEAR_BEST`` of the best.

    Only a rate that learned counts: a mean that beats the constant output by more than
    ``NEAR_BEST``; ``learned`` counts those cases. ``none`` counts the seeds without a suggestion
    (scored as the constant output)."""
    out = {n: {"best": 0, "near_best": 0, "learned": 0, "none": 0, "cases": len(results)} for n in names}
    for r in results:
        metric = r["metric"]
        means = {n: mean_sd(r["runs"][n])[0] for n in names}
        learned = {n: v for n, v in means.items() if gap(r["constant"], v, metric) > NEAR_BEST}
        for n in names:
            out[n]["none"] += sum(run["none"] for run in r["runs"][n])
            out[n]["learned"] += n in learned
        if not learned:
            continue
        best = min(learned.values()) if lower_is_better(metric) else max(learned.values())
        for n, v in learned.items():
            out[n]["best"] += v == best
            out[n]["near_best"] += gap(v, best, metric) <= NEAR_BEST
    return out


def _fmt_lr(lr: float | None) -> str:
    return "none" if lr is None else f"{lr:.2g}"


def _fmt_metric(runs: list[dict[str, Any]], metric: str) -> str:
    if not runs:
        return "—"
    mean, sd = mean_sd(runs)
    digits = 3 if metric == "balanced_accuracy" else 4
    notes = [f"{k} {what}" for k, what in ((sum(r["diverged"] for r in runs), "diverged"),
                                           (sum(r["none"] for r in runs), "none")) if k]
    return f"{mean:.{digits}f} ± {sd:.{digits}f}" + (f" ({', '.join(notes)})" if notes else "")


def _ratio(results: dict[str, Any], other: str) -> str:
    """Median over seeds of lstm-doctor's rate / the other's."""
    pairs = [(a["lr"], b["lr"]) for a, b in zip(results["suggestions"]["lstm-doctor"], results["suggestions"][other])
             if a["lr"] is not None and b["lr"] is not None]
    return f"{np.median([a / b for a, b in pairs]):.2g}" if pairs else "—"


def markdown(results: list[dict[str, Any]], header: str) -> str:
    """The tables for bench/RESULTS.md."""
    lines = [header, "",
             "Suggested rates (geometric median over seeds; per-seed range), lstm-doctor's rate over the others' "
             "(median of per-seed ratios), finder seconds (median):", "",
             "| case | steps | lstm-doctor | torch-lr-finder | Lightning | Lightning, log gradient | ld / tlf | ld / L "
             "| ld / L-log | seconds: ld / tlf / L |",
             "|---|---:|---|---|---|---|---:|---:|---:|---|"]
    for r in results:
        s = r["suggestions"]
        cells = []
        for n in FINDERS:
            lrs = [x["lr"] for x in s[n] if x["lr"] is not None]
            none = len(s[n]) - len(lrs)
            span = f" ({min(lrs):.2g}–{max(lrs):.2g})" if len(lrs) > 1 else ""
            cells.append(_fmt_lr(geomedian(lrs) if lrs else None) + span + (f", {none}x none" if none and lrs else ""))
        secs = " / ".join(f"{np.median([x['seconds'] for x in s[n]]):.1f}" for n in FINDERS[:3])
        ratios = " | ".join(_ratio(r, n) for n in FINDERS[1:])
        lines.append(f"| {r['case']} | {s['lstm-doctor'][0]['steps']} | {' | '.join(cells)} | {ratios} | {secs} |")
    lines += ["", "Validation after training at each rate (mean ± sd over seeds; RMSE in the target's units, lower is "
              "better, or balanced accuracy, higher is better; a diverged run, or a seed without a suggestion, scores as "
              "the constant output):", "",
              "| case | metric | constant | lstm-doctor | torch-lr-finder | Lightning | Lightning, log gradient "
              "| user's rates |",
              "|---|---|---:|---|---|---|---|---|"]
    for r in results:
        metric = r["metric"]
        users = "; ".join(f"{label} {lr:g}: {_fmt_metric(r['runs'][label], metric)}" for label, lr in r["user_rates"].items())
        cells = " | ".join(_fmt_metric(r["runs"][n], metric) for n in FINDERS)
        short = "RMSE" if metric == "rmse" else "bal. acc."
        lines.append(f"| {r['case']} | {short} | {r['constant']:.4g} | {cells} | {users} |")
    table = standings(results)
    lines += ["", f"Over the {len(results)} cases (mean metric over seeds; a rate counts only where it beats the "
              f"constant output by more than {NEAR_BEST:.0%}):", "",
              "| finder | best | within 5% of the best | rate learned | seeds without a suggestion |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {n} | {v['best']} | {v['near_best']} | {v['learned']} | {v['none']} |" for n, v in table.items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cap", type=int, default=400, help="optimizer steps of each training at a suggested rate")
    parser.add_argument("--steps", type=int, default=BUDGETS["quick"].lr_range_steps, help="range-test steps")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write every run here")
    args = parser.parse_args()
    require_finders()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    results = []
    for cc in compare_cases(tuple(args.datasets.split(","))):
        print(f"{cc.name}: user rates {cc.user_rates}", flush=True)
        results.append(run_case(cc, list(range(args.seeds)), args.steps, args.cap))
    from importlib.metadata import version

    header = (f"Command: `python -m bench.lr_compare --seeds {args.seeds} --cap {args.cap} --steps {args.steps}` "
              f"({platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} torch "
              f"thread(s), torch-lr-finder {version('torch-lr-finder')}, lightning {version('lightning')}; load average "
              f"before/after {load_before:.1f} / {os.getloadavg()[0]:.1f}; {time.perf_counter() - t0:.0f} s).")
    print(markdown(results, header))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
