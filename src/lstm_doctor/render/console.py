"""The terminal verdict: symptom and first cause, then the ranked findings."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from lstm_doctor.report import Report

STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}
SYMPTOM_TEXT = {
    "not-learning": "the model is not learning: its validation loss stays at what a constant prediction gets",
    "learning-slowly": "the model learns, but far slower than it can",
    "unstable": "the loss oscillates or spikes without a trend",
    "diverging": "the loss rises or becomes NaN/Inf",
    "overfitting": "validation gets worse while training improves",
    "healthy": "training looks healthy",
    "unknown": "the training run did not produce a loss curve",
}


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def render(report: Report, console: Console | None = None) -> None:
    console = console or Console(width=min(100, Console().width))
    console.print(Text.assemble(("Symptom: ", "bold"), (report.symptom, "bold magenta"), f" ({SYMPTOM_TEXT.get(report.symptom, '')})"))
    if report.status != "complete":
        console.print(Text(f"Status: {report.status}. " + " ".join(report.notes), style="yellow"))
    curve = report.probes.get("loss_curve", {})
    val = [v for v in curve.get("val", []) if isinstance(v.get("loss"), float)]
    if val:
        first, best = val[0]["loss"], min(v["loss"] for v in val)
        base = ", ".join(f"{k} {_fmt(v.get('loss'))}" for k, v in report.baselines.items())
        console.print(f"Validation loss: first {_fmt(first)}, best {_fmt(best)} after {curve.get('val')[-1].get('step')} of "
                      f"{curve.get('steps_planned')} planned steps" + (f"; baselines: {base}" if base else ""))
    if not report.findings:
        console.print("No findings.")
        return
    top = report.findings[0]
    console.print(Text.assemble(("Most likely cause: ", "bold"), (f"{top.code} {top.name}", STYLE[top.severity]), f": {top.summary}"))
    if top.fix:
        console.print(Text.assemble(("Fix: ", "bold"), top.fix.splitlines()[0]))
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for col in ("#", "code", "severity", "finding"):
        table.add_column(col, overflow="fold")
    for f in report.findings:
        table.add_row(str(f.rank), f"{f.code} {f.name}", Text(f.severity, style=STYLE[f.severity]), f.summary)
    console.print(table)
    console.print("Run `lstm-doctor explain CODE` for what a finding means and how to fix it.", style="dim")
