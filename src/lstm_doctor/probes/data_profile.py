"""The data's profile for the report's plots: feature scales and the autocorrelation.

Inspect measured both before any probe ran (evidence ``feature_scale`` and
``acf``); this probe only puts them where renderers read plots, so renderers never
read evidence and inspection never writes plots.

Plot ``data``: ``{"feature_scale": {name: value}, "acf": {"lags", "values", "band",
"period", "window", "horizon", "of", "source"} or None}``.
"""

from __future__ import annotations

from lstm_doctor.probes.context import ProbeContext

ACF_KEYS = ("lags", "values", "band", "period", "window", "horizon", "of", "source")


def data_profile(ctx: ProbeContext) -> None:
    ev = ctx.evidence
    acf = ev.get("acf")
    ctx.plots["data"] = {
        "feature_scale": dict(ev.get("feature_scale") or {}),
        "acf": {k: acf.get(k) for k in ACF_KEYS} if acf else None,
    }
