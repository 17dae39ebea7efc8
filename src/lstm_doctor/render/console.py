"""The terminal verdict: symptom, the most likely cause and its fix first; then the ranked
findings with their key numbers, the loss beside the baselines, and treatments before/after.

Fits an 80-column terminal. Colour only on a terminal: rich writes plain text
when the output is a pipe or a file (CI logs).
"""

from __future__ import annotations


from rich.box import SIMPLE_HEAD, Box
from rich.console import Console, Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from lstm_doctor.render.wording import SYMPTOM_TEXT, evidence_items, fmt, loss_rows, metric_names, num
from lstm_doctor.report import Report

STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}
EVIDENCE_SHOWN = 4  # key numbers per finding; the JSON and HTML reports hold all of them
WIDTH = 100         # at most; narrower terminals wrap
# SIMPLE_HEAD drawn in ASCII, for logs that may not be read as UTF-8.
ASCII_HEAD = Box("    \n    \n -- \n    \n    \n    \n    \n    \n", ascii=True)


def verdict(report: Report) -> Group:
    """Symptom, the most likely cause in one sentence, and its fix."""
    lines = [Text.assemble(("Symptom: ", "bold"), (report.symptom, "bold magenta"),
                           f" ({SYMPTOM_TEXT.get(report.symptom, '')})")]
    if report.status != "complete":
        lines.append(Text(f"Status: {report.status}. " + " ".join(report.notes), style="yellow"))
    if not report.findings:
        lines.append(Text("No findings: nothing measured points at a cause."))
        return Group(*lines)
    top = report.findings[0]
    lines.append(Text.assemble(("Most likely cause: ", "bold"), (f"{top.code} {top.name}", STYLE[top.severity]),
                               f": {top.summary}"))
    if top.fix:
        lines.append(Text.assemble(("Fix: ", "bold"), top.fix.splitlines()[0]))
    return Group(*lines)


def loss_table(report: Report, rule: Box) -> Table | None:
    """The model's validation loss (first and best) beside the baselines'."""
    rows = loss_rows(report.probes, report.baselines)
    if not rows:
        return None
    metrics = metric_names(rows)[:4]  # what fits 80 columns
    table = Table(title="Validation", title_justify="left", title_style="bold", box=rule, pad_edge=False)
    table.add_column("")
    for m in metrics:
        table.add_column(m, justify="right")
    for label, r in rows:
        table.add_row(Text(label), *(fmt(num(r.get(m))) if m in r else "-" for m in metrics))
    return table


def probe_length(report: Report) -> Text | None:
    """How much of the user's planned training the instrumented run covered."""
    curve = report.probes.get("loss_curve") or {}
    if not curve.get("steps_planned") or not curve.get("val"):
        return None
    return Text(f"The probe ran {len(curve.get('train_steps', []))} of the {curve['steps_planned']} steps your "
                f"training plans (stopped: {curve.get('stopped')}).", style="dim")


def findings_table(report: Report, rule: Box) -> Table:
    table = Table(title=f"Findings ({len(report.findings)})", title_justify="left", title_style="bold",
                  box=None, pad_edge=False, show_header=False)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("finding", overflow="fold", ratio=1)
    for f in report.findings:
        head = Text.assemble((f"{f.code} {f.name}", "bold"), "  ", (f.severity, STYLE[f.severity]),
                             f"  confidence {f.confidence:.2f}")
        body = [head, Text(f.summary)]
        shown = evidence_items(f.evidence)
        if shown:
            more = f" (+{len(shown) - EVIDENCE_SHOWN} more)" if len(shown) > EVIDENCE_SHOWN else ""
            body.append(Text("evidence: " + "; ".join(f"{k} = {v}" for k, v in shown[:EVIDENCE_SHOWN]) + more,
                             style="dim"))
        if f.fix:
            body.append(Text.assemble(("fix: ", "bold"), f.fix.splitlines()[0]))
        if f.verified:
            v = f.verified
            before, after = v.get("before", {}), v.get("after", {})
            body.append(Text(f"verified by retraining ({v.get('treatment')}): {v.get('metric')} "
                             f"{fmt(num(before.get('mean')))} -> {fmt(num(after.get('mean')))}, "
                             f"p = {fmt(num(v.get('p_value')))}: {'improved' if v.get('improved') else 'no improvement'}",
                             style="green" if v.get("improved") else "dim"))
        gap = [Text("")] if f is not report.findings[-1] else []
        table.add_row(str(f.rank), Group(*body, *gap))
    return table


def treatments_table(report: Report, rule: Box) -> Table | None:
    """Each treatment's validation metric before and after, over the same seeds."""
    if not report.treatments:
        return None
    table = Table(title="Treatments (retrained, same steps and seeds)", title_justify="left", title_style="bold",
                  box=rule, pad_edge=False)
    for col, justify in (("treatment", "left"), ("for", "left"), ("metric", "left"), ("before", "right"),
                         ("after", "right"), ("p", "right"), ("verified", "left")):
        table.add_column(col, justify=justify, overflow="fold")
    for t in report.treatments:
        m = t.get("metric", {})
        # Text, not str: rich would read brackets in a str as markup.
        table.add_row(Text(str(t.get("name"))), ", ".join(t.get("for", [])), Text(str(m.get("name", ""))),
                      fmt(num(m.get("before", {}).get("mean"))), fmt(num(m.get("after", {}).get("mean"))),
                      fmt(num(m.get("p_value"))),
                      Text("yes", style="green") if t.get("verified") else Text("no", style="dim"))
    return table


def render(report: Report, console: Console | None = None) -> None:
    """Print the report: verdict first, then the evidence behind it."""
    console = console or Console(width=min(WIDTH, Console().width))
    console.print(verdict(report))
    rule = SIMPLE_HEAD if console.is_terminal else ASCII_HEAD
    for part in (loss_table(report, rule), probe_length(report),
                 findings_table(report, rule) if report.findings else None, treatments_table(report, rule)):
        if part is not None:
            console.print(part if isinstance(part, Text) else Padding(part, (1, 0, 0, 0), expand=False))
    if report.findings:
        console.print("Run `lstm-doctor explain CODE` for what a finding means and how to fix it.", style="dim")
