"""The HTML report: one self-contained page (inline SVG plots and CSS, no script, works offline).

It reads the report's plain data (``Report.to_dict()``, or a saved report.json)
and computes nothing. Every string that can come from the user's data, files or
setup is escaped; a Content-Security-Policy that allows no script at all backs
that up.
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

import yaml

from lstm_doctor.catalog import CODES
from lstm_doctor.render.plots import PLOTS, draw_treatment, svg_of
from lstm_doctor.render.wording import SYMPTOM_TEXT, evidence_items, fmt, loss_rows, metric_names, num
from lstm_doctor.report import Report

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

CSS = """
:root{--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--bg:#fff;--card:#f6f8fa;
--critical:#b42318;--warning:#9a6700;--info:#0a5c8a;--ok:#1a7f37}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,sans-serif}
main{max-width:1000px;margin:0 auto;padding:1rem clamp(.75rem,3vw,2rem) 3rem}
h1{font-size:1.5rem;margin:.5rem 0 0}
h2{font-size:1.2rem;margin:2rem 0 .5rem;border-bottom:1px solid var(--line);padding-bottom:.25rem}
h3{font-size:1.02rem;margin:0 0 .35rem}
p{margin:.4rem 0}
.muted{color:var(--muted)}
.verdict{background:var(--card);border:1px solid var(--line);border-left:6px solid var(--muted);border-radius:8px;
padding:.8rem 1rem;margin:1rem 0}
.verdict.critical{border-left-color:var(--critical)}.verdict.warning{border-left-color:var(--warning)}
.verdict.info{border-left-color:var(--info)}.verdict.healthy{border-left-color:var(--ok)}
.symptom{font-size:1.15rem;font-weight:600}
.badge{display:inline-block;border-radius:999px;padding:0 .55rem;font-size:.8rem;font-weight:600;color:#fff;
background:var(--muted);vertical-align:middle;white-space:nowrap}
.badge.critical{background:var(--critical)}.badge.warning{background:var(--warning)}.badge.info{background:var(--info)}
.badge.yes{background:var(--ok)}.badge.no{background:var(--muted)}
.finding{border:1px solid var(--line);border-radius:8px;padding:.75rem 1rem;margin:.75rem 0}
.finding .code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-weight:600}
table{border-collapse:collapse;margin:.4rem 0;font-size:.9rem;max-width:100%}
th,td{border-bottom:1px solid var(--line);padding:.2rem .6rem .2rem 0;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.scroll{overflow-x:auto;max-width:100%}
pre{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.6rem .75rem;overflow-x:auto;
font-size:.82rem;line-height:1.45;white-space:pre-wrap;word-break:break-word}
details{margin:.3rem 0}summary{cursor:pointer;color:var(--info)}
figure.plot{margin:1rem 0 1.5rem;min-width:0}
figure.plot svg{width:100%;max-width:720px;height:auto;display:block}
.plots{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,420px),1fr));column-gap:1.5rem}
figcaption{color:var(--muted);font-size:.88rem}
.absent{color:var(--muted);font-style:italic}
ul.absent{padding-left:1.2rem}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,260px),1fr));column-gap:1rem}
.changed{background:#fff3bf}
footer{margin-top:2.5rem;color:var(--muted);font-size:.85rem}
@media (max-width:600px){body{font-size:14px}h1{font-size:1.25rem}}
"""

ABSENT = "not measured in this run"


def e(value: Any) -> str:
    """Escape anything for HTML text or a quoted attribute."""
    return html.escape(str(value), quote=True)


def _badge(text: str, kind: str) -> str:
    return f'<span class="badge {e(kind)}">{e(text)}</span>'


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="n">{e(fmt(c))}</td>' if isinstance(c, (int, float)) and not isinstance(c, bool)
                         else f"<td>{e(fmt(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _figure(key: str, title: str, caption: str, svg: str) -> str:
    return (f'<figure class="plot" data-plot="{e(key)}"><h3>{e(title)}</h3>{svg}'
            f"<figcaption>{e(caption)}</figcaption></figure>")


def _plots(drawn: list[tuple[str, str, str, str | None]]) -> str:
    """The plots drawn, then one line for each measurement this run did not make."""
    shown = "".join(_figure(key, title, caption, svg) for key, title, caption, svg in drawn if svg is not None)
    absent = "".join(f'<li data-absent="{e(key)}">{e(title)}: {ABSENT}</li>'
                     for key, title, _, svg in drawn if svg is None)
    return (f'<div class="plots">{shown}</div>' if shown else "") + (f'<ul class="absent">{absent}</ul>' if absent else "")


def _verdict(report: dict) -> str:
    symptom = report.get("symptom", "unknown")
    findings = report.get("findings") or []
    top = findings[0] if findings else None
    kind = top["severity"] if top else ("healthy" if symptom == "healthy" else "")
    meaning = SYMPTOM_TEXT.get(symptom, "")
    parts = [f'<p class="symptom">Symptom: {e(symptom)}</p><p>{e(meaning[:1].upper() + meaning[1:])}.</p>']
    if top:
        parts.append(f'<p><strong>Most likely cause:</strong> <span class="code">{e(top["code"])} {e(top["name"])}</span> '
                     f'{_badge(top["severity"], top["severity"])} {e(top["summary"])}</p>')
        if top.get("fix"):
            parts.append(f"<p><strong>Fix:</strong> {e(top['fix'].splitlines()[0])}</p>")
    else:
        parts.append("<p>No finding: nothing measured points at a cause.</p>")
    if report.get("status") != "complete":
        notes = " ".join(report.get("notes") or [])
        parts.append(f'<p class="muted">Status: {e(report.get("status"))}. {e(notes)}</p>')
    return f'<section class="verdict {e(kind)}" id="verdict">{"".join(parts)}</section>'


def _verified(v: dict) -> str:
    before, after = v.get("before") or {}, v.get("after") or {}
    mark = _badge("verified", "yes") if v.get("improved") else _badge("not verified", "no")
    return (f"<p><strong>Retrained with the fix</strong> ({e(v.get('treatment'))}, {e(v.get('seeds'))} seeds) {mark}</p>"
            + _table([v.get("metric", "metric"), "mean", "sd"],
                     [["without the fix", num(before.get("mean")), num(before.get("sd"))],
                      ["with the fix", num(after.get("mean")), num(after.get("sd"))]])
            + f"<p class='muted'>one-sided p = {e(fmt(num(v.get('p_value'))))}</p>")


def _finding(f: dict, page: str) -> str:
    """A finding in a few lines (summary, fix, verification); its evidence and page fold out.
    The most likely cause shows its evidence unfolded."""
    code = e(f["code"])
    fix = f.get("fix") or ""
    if "\n" in fix:
        fix_html = f"<p><strong>Fix:</strong></p><pre>{e(fix)}</pre>"
    else:
        fix_html = f"<p><strong>Fix:</strong> {e(fix)}</p>" if fix else ""
    verified = _verified(f["verified"]) if isinstance(f.get("verified"), dict) else ""
    ev = evidence_items(f.get("evidence") or {})
    evidence = (f"<details{' open' if f.get('rank') == 1 else ''}><summary>Evidence ({len(ev)} measurements)</summary>"
                + _table(["measurement", "value"], [[k, v] for k, v in ev]) + "</details>") if ev else ""
    return (f'<article class="finding" id="{code}-{e(f["rank"])}"><h3>{e(f["rank"])}. '
            f'<span class="code">{code} {e(f["name"])}</span> {_badge(f["severity"], f["severity"])} '
            f'<span class="muted">confidence {e(fmt(num(f.get("confidence"))))}</span></h3>'
            f'<p>{e(f["summary"])}</p>{fix_html}{verified}{evidence}'
            f"<details><summary>What {code} means, how it is measured, how to fix it</summary>"
            f"<pre>{e(page)}</pre></details></article>")


def _loss_table(report: dict) -> str:
    rows = loss_rows(report.get("probes") or {}, report.get("baselines") or {})
    metrics = metric_names(rows)
    return _table(["validation"] + metrics, [[label] + [num(r.get(m)) for m in metrics] for label, r in rows]) if rows else ""


def _treatments(report: dict) -> str:
    treatments = report.get("treatments") or []
    if not treatments:
        return '<p class="absent">No treatment was tried in this run (run with --treat to retrain with each fix).</p>'
    rows, figures = [], []
    for i, t in enumerate(treatments):
        m = t.get("metric") or {}
        before, after = m.get("before") or {}, m.get("after") or {}
        rows.append([t.get("name"), ", ".join(t.get("for") or []), m.get("name", ""), num(before.get("mean")),
                     num(after.get("mean")), num(m.get("p_value")), "yes" if t.get("verified") else "no"])
        svg = svg_of(lambda fig, t=t: draw_treatment(fig, t), f"treatment{i}")
        if svg is not None:
            caption = f"Validation loss without and with {t.get('name')} (same steps and seeds)."
            if t.get("change_text"):
                caption += f" Change: {t['change_text']}."
            figures.append(_figure(f"treatment-{i}", f"Treatment: {t.get('name')}", caption, svg))
    table = _table(["treatment", "for", "metric", "before", "after", "p", "verified"], rows)
    return table + f'<div class="plots">{"".join(figures)}</div>'


def _yaml(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False).rstrip()


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: value}


def _setups(report: dict) -> str:
    given, recommended = report.get("setup") or {}, report.get("recommended_setup")
    # One block per section of the setup file (data, model, training), side by side where room allows.
    sections = [{k: v} for k, v in given.items() if isinstance(v, dict)]
    rest = {k: v for k, v in given.items() if not isinstance(v, dict)}
    blocks = "".join(f"<pre>{e(_yaml(block))}</pre>" for block in sections + ([rest] if rest else []))
    html_given = f'<h3>As given</h3><div class="cols">{blocks}</div>' if given else ""
    if not isinstance(recommended, dict):
        return (f'{html_given}<h3>Recommended</h3><p class="absent">No recommended setup: run with --treat to '
                "retrain with each fix and keep what measurably helps.</p>")
    old, new = _flat(given), _flat(recommended)
    changes = [[k, old.get(k, ""), v] for k, v in new.items() if old.get(k) != v]
    changed = _table(["setting", "as given", "recommended"], changes) if changes else "<p>No change.</p>"
    return (f"{html_given}<h3>Recommended</h3>{changed}"
            f"<details><summary>The whole recommended setup</summary><pre>{e(_yaml(recommended))}</pre></details>")


def _others(report: dict) -> str:
    """Measurements this renderer has no plot for, shown as data rather than dropped."""
    known = {source for _, source, *_ in PLOTS} | {"baselines"}
    rest = {k: v for k, v in (report.get("probes") or {}).items() if k not in known}
    if not rest:
        return ""
    return ("<details><summary>Other measurements (raw data)</summary>"
            f"<pre>{e(json.dumps(rest, indent=1)[:20000])}</pre></details>")


def render_html(report: Report | dict[str, Any]) -> str:
    """The report as one self-contained HTML page."""
    from lstm_doctor.rules import page

    data = report.to_dict() if isinstance(report, Report) else report
    probes, baselines = data.get("probes") or {}, data.get("baselines") or {}
    findings = data.get("findings") or []
    plots = [(key, title, caption, svg_of(lambda fig, d=draw: d(fig, probes, baselines), key))
             for key, _, title, caption, draw in PLOTS]
    setup = data.get("setup") or {}
    source = (setup.get("data") or {}).get("path") if isinstance(setup.get("data"), dict) else None
    title = f"lstm-doctor: {data.get('symptom', 'report')}" + (f" ({source})" if source else "")
    versions = ", ".join(f"{k} {v}" for k, v in (data.get("versions") or {}).items())
    timing = num((data.get("timing") or {}).get("total_s"))
    notes = "".join(f"<li>{e(n)}</li>" for n in data.get("notes") or [])
    body = [
        f"<header><h1>{e(title)}</h1><p class='muted'>{e(data.get('schema', ''))} · status {e(data.get('status'))}"
        + (f" · examined in {timing:.1f} s" if math.isfinite(timing) else "") + "</p></header>",
        _verdict(data),
        f"<h2>Findings ({len(findings)})</h2>",
        # A report from a newer version may hold a code this one has no page for.
        "".join(_finding(f, page(f["code"]) if f["code"] in CODES else "") for f in findings) or "<p>No findings.</p>",
        "<h2>Training at your settings</h2>", _loss_table(data), _plots(plots[:1]),
        "<h2>Measurements</h2>", _plots(plots[1:]), _others(data),
        "<h2>Treatments</h2>", _treatments(data),
        "<h2>Setup</h2>", _setups(data),
        f"<footer>{'<h3>Notes</h3><ul>' + notes + '</ul>' if notes else ''}<p>{e(versions)}</p></footer>",
    ]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title><style>{CSS}</style></head>\n<body><main>"
        + "\n".join(body) + "</main></body></html>\n"
    )

