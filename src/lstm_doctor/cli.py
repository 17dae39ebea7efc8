"""The command line: examine, explain, rules, demo."""

from __future__ import annotations

import os
import sys
import traceback
from enum import Enum
from pathlib import Path
from typing import NoReturn, Optional

import typer
import yaml
from rich.console import Console

from lstm_doctor.errors import InputError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Find out why a recurrent network (LSTM, GRU, RNN) is not learning.",
)
out = Console()
err = Console(stderr=True)

FAIL_LEVELS = {"critical": 0, "warning": 1, "info": 2, "never": -1}


class FailOn(str, Enum):
    critical = "critical"
    warning = "warning"
    info = "info"
    never = "never"


def exit_code(report, fail_on: str) -> int:
    """1 when a finding is at or above ``fail_on``, else 0."""
    level = FAIL_LEVELS[fail_on]
    return int(any(f.severity_level <= level for f in report.findings))


def _split_list(value: Optional[str]) -> Optional[list[str]]:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return items or None


@app.command()
def examine(
    data: Optional[Path] = typer.Argument(None, help="Data file (.csv, .parquet, .npz); overrides data.path."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Setup file (YAML)."),
    target: Optional[str] = typer.Option(None, help="Target column(s), comma-separated."),
    features: Optional[str] = typer.Option(None, help="Feature columns, comma-separated (default: every numeric column)."),
    time: Optional[str] = typer.Option(None, "--time", help="Time column to order rows by."),
    series_id: Optional[str] = typer.Option(None, help="Column that names each series of a panel."),
    window: Optional[int] = typer.Option(None, help="Steps per input sequence."),
    horizon: Optional[int] = typer.Option(None, help="Predict the target this many steps after the window."),
    task: Optional[str] = typer.Option(None, help="regression, binary or multiclass."),
    scale: Optional[str] = typer.Option(None, help="none, standard or minmax (what you do today)."),
    split: Optional[str] = typer.Option(None, help="temporal or random."),
    val_fraction: Optional[float] = typer.Option(None, help="Share of the data used for validation."),
    cell: Optional[str] = typer.Option(None, help="lstm, gru or rnn."),
    hidden: Optional[int] = typer.Option(None, help="Hidden units per layer."),
    layers: Optional[int] = typer.Option(None, help="Stacked recurrent layers."),
    loss: Optional[str] = typer.Option(None, help="mse, mae, huber, bce or ce."),
    optimizer: Optional[str] = typer.Option(None, help="adam, adamw, sgd or rmsprop."),
    lr: Optional[float] = typer.Option(None, help="Learning rate."),
    batch_size: Optional[int] = typer.Option(None, help="Batch size."),
    epochs: Optional[int] = typer.Option(None, help="Epochs of your training."),
    seed: Optional[int] = typer.Option(None, help="Random seed."),
    budget: str = typer.Option("quick", help="quick, standard or thorough."),
    treat: bool = typer.Option(False, "--treat", help="Retrain with each candidate fix and verify which works."),
    json_path: Path = typer.Option(Path("report.json"), "--json", help="Where to write the JSON report."),
    html_path: Optional[Path] = typer.Option(None, "--html", help="Where to write the HTML report."),
    fail_on: FailOn = typer.Option(FailOn.critical, help="Exit 1 when a finding is at or above this severity."),
    ignore: Optional[str] = typer.Option(None, help="Finding codes to drop, comma-separated."),
    time_limit: Optional[float] = typer.Option(None, help="Stop probing after this many seconds and report."),
    write_setup: Optional[Path] = typer.Option(None, help="With --treat: save the recommended setup file here."),
    executor: str = typer.Option("local", help="Where --treat runs its trials: local or ray."),
    workers: int = typer.Option(1, help="Local worker processes for --treat trials (torch threads = cores / workers)."),
    address: Optional[str] = typer.Option(None, help="With --executor ray: the cluster address (default: a local Ray)."),
) -> None:
    """Examine a setup: measure why it is not learning and rank the causes."""
    from lstm_doctor.examine import examine as run_examine
    from lstm_doctor.render.console import render
    from lstm_doctor.setups import load_setup
    from lstm_doctor.treat.executors import make_executor

    if data is None and config is None:
        raise InputError("Nothing to examine: give a data file (lstm-doctor examine data.csv --target y) or a setup file (--config setup.yaml).")
    targets = _split_list(target)
    overrides = dict(
        target=targets[0] if targets and len(targets) == 1 else targets, features=_split_list(features), time=time,
        series_id=series_id, window=window, horizon=horizon, task=task, scale=scale, split=split,
        val_fraction=val_fraction, cell=cell, hidden=hidden, layers=layers, loss=loss, optimizer=optimizer, lr=lr,
        batch_size=batch_size, epochs=epochs, seed=seed,
    )
    setup = load_setup(config, data=data, **overrides)
    pool = make_executor(executor, workers=workers, address=address) if treat else None
    report = run_examine(setup, budget=budget, treat=treat, time_limit=time_limit, ignore=_split_list(ignore) or (), executor=pool,
                         progress=True)
    # Written before anything is shown: a second Ctrl-C while printing must not lose the report.
    report.save_json(json_path)
    if html_path is not None:
        report.save_html(html_path)
    render(report, out)
    out.print(f"Report written to {json_path}", style="dim", markup=False)
    if html_path is not None:
        out.print(f"HTML report written to {html_path}", style="dim", markup=False)
    if write_setup is not None:
        if report.recommended_setup is None:
            out.print("No setup file written: no treatment was verified" + ("" if treat else " (run with --treat)") + ".", style="yellow")
        else:
            from lstm_doctor.report import write_atomic

            write_atomic(write_setup, "# The setup lstm-doctor verified (--treat).\n" + yaml.safe_dump(report.recommended_setup, sort_keys=False))
            out.print(f"Recommended setup written to {write_setup}", style="dim", markup=False)
    if report.interrupted:  # as an interrupted command does, whatever was found: a cut-short run passes no gate
        err.print(f"lstm-doctor: interrupted; {json_path} holds what was measured until then.", style="red", markup=False,
                  highlight=False, soft_wrap=True)
        raise typer.Exit(130)
    raise typer.Exit(exit_code(report, fail_on.value))


@app.command()
def explain(code: str = typer.Argument(..., help="A finding code (D102) or name (unscaled-inputs).")) -> None:
    """Print a finding's page: what it means, how it is measured, the fix."""
    from lstm_doctor.catalog import lookup
    from lstm_doctor.rules import page

    entry = lookup(code)
    if entry is None:
        raise InputError(f"Unknown finding code {code!r}. `lstm-doctor rules` lists every code.")
    out.print(page(entry.code), markup=False, highlight=False)


@app.command()
def rules() -> None:
    """List every finding code."""
    from lstm_doctor.catalog import CODES, FAMILIES
    from lstm_doctor.rules.registry import RULES, _load_all

    _load_all()
    for family, title in FAMILIES.items():
        out.print(title, style="bold")
        for c in CODES.values():
            if c.family == family:
                mark = "" if c.code in RULES else "  (not checked yet)"
                out.print(f"  {c.code}  {c.name:<32} {c.severity:<8} {c.meaning}{mark}", markup=False, highlight=False)


@app.command()
def demo(
    folder: Path = typer.Option(Path("lstm-doctor-demo"), help="Where to write the demo's data and setup file."),
    budget: str = typer.Option("quick", help="quick, standard or thorough."),
) -> None:
    """Examine a broken setup on a bundled real dataset, end to end, and write a report."""
    from lstm_doctor.demo import write_demo
    from lstm_doctor.examine import examine as run_examine
    from lstm_doctor.render.console import render

    setup_file = write_demo(folder)
    out.print(f"Demo: weekly CO2 at Mauna Loa (statsmodels), an LSTM fed raw ppm values. Setup: {setup_file}", style="bold")
    report = run_examine(setup_file, budget=budget, progress=True)
    report.save_json("report.json")
    report.save_html("report.html")
    render(report, out)
    out.print("Report written to report.json and report.html (open it in a browser)", style="dim")
    out.print(f"Try it on your own data: lstm-doctor examine --config {setup_file}", style="dim")
    if report.interrupted:
        raise typer.Exit(130)


def main() -> None:
    """Entry point: exit 0/1 as ``--fail-on`` says, 2 with one paragraph for a usage or
    input error, 3 for an internal error, 130 after Ctrl-C (the report of what was measured
    is still written when the examination had begun); never a traceback (unless LSTM_DOCTOR_DEBUG)."""
    try:
        # Without standalone mode, typer returns the code of a raised typer.Exit.
        code = app(standalone_mode=False)
    except InputError as e:
        _fail(str(e), 2)
    except typer.TyperException as e:  # click's usage errors: unknown option, bad value, missing argument
        if not sys.argv[1:]:  # bare `lstm-doctor`: the help is the answer
            e.show()
            sys.exit(2)
        ctx = getattr(e, "ctx", None)
        command = ctx.command_path if ctx is not None else "lstm-doctor"
        _fail(f"{e.format_message().rstrip('.')}. Run `{command} --help` for the usage.", 2)
    except (typer.Abort, KeyboardInterrupt):
        _fail("interrupted.", 130)
    except Exception as e:  # an internal error: a short message, the traceback on request
        if os.environ.get("LSTM_DOCTOR_DEBUG"):
            traceback.print_exc()
        _fail(f"internal error ({type(e).__name__}: {e}). Please report it; set LSTM_DOCTOR_DEBUG=1 to see the traceback.", 3)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> NoReturn:
    # soft_wrap: one paragraph is one line, whatever the terminal's width.
    err.print(f"lstm-doctor: {message}", style="red", markup=False, highlight=False, soft_wrap=True)
    sys.exit(code)
