"""Plots of the report's measurements as static SVG (matplotlib), to inline in the HTML page.

Each ``draw_*`` function reads one ``report["probes"]`` entry in its documented
format (DESIGN.md, the report schema) and draws it; it returns False when the
entry holds nothing to draw. Plots compute nothing beyond what drawing needs
(axis scales, limits): every number shown was measured by a probe.

Text from the user's data (column names, class labels) reaches the SVG as text
nodes that matplotlib escapes; ``literal`` also keeps ``$`` from starting mathtext.
"""

from __future__ import annotations

import io
import math
import re
from functools import partial
from typing import Any, Callable

import matplotlib
from matplotlib.axes import Axes
# Figures are built without pyplot: no display is needed, and the backend of a user's
# session (a notebook's inline plots) is left alone.
from matplotlib.figure import Figure

from lstm_doctor.render.wording import num

# A palette readable by colour-blind readers (Okabe-Ito).
COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
RC = {"svg.fonttype": "none", "font.size": 10, "axes.titlesize": 10, "axes.spines.top": False,
      "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.25, "legend.fontsize": 9, "legend.frameon": False}
SIZE = (4.8, 3.0)  # inches: about 1:1 in a laptop's two-column grid; text still legible on a phone
MAX_SERIES = 12    # lines per plot before a legend stops being readable
MAX_BARS = 25


def nums(values: Any) -> list[float]:
    """A list of report numbers as floats (non-finite ones become NaN, which matplotlib leaves out)."""
    if not isinstance(values, (list, tuple)):
        return []
    return [v if math.isfinite(v) else math.nan for v in map(num, values)]


def finite(values: list[float]) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def literal(text: Any) -> str:
    r"""``text`` as matplotlib shows it literally: with every ``$`` written ``\$``, no mathtext starts
    and matplotlib turns each ``\$`` back into ``$`` (other backslashes stay as they are)."""
    return str(text).replace("$", r"\$")


def log_scale_fits(values: list[float], spread: float = 30.0) -> bool:
    """True when positive values span more than ``spread`` times, so a log axis shows them better."""
    pos = [v for v in finite(values) if v > 0]
    return len(pos) == len(finite(values)) > 1 and max(pos) / min(pos) > spread


def legend(ax: Axes) -> None:
    """The legend under the plot, where it never hides a line."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.figure.legend(handles, labels, loc="outside lower center", ncols=min(2, len(handles)))


def _steps(data: dict, n: int) -> list[float]:
    steps = nums(data.get("steps"))
    return steps if len(steps) == n else list(range(n))


def _per_layer(ax: Axes, steps: list[float] | None, per_layer: Any, ylabel: str) -> bool:
    if not isinstance(per_layer, dict):
        return False
    drawn = False
    for i, (name, values) in enumerate(list(per_layer.items())[:MAX_SERIES]):
        ys = nums(values)
        if not finite(ys):
            continue
        xs = steps if steps is not None and len(steps) == len(ys) else list(range(len(ys)))
        ax.plot(xs, ys, color=COLORS[i % len(COLORS)], marker="." if len(ys) < 30 else None, lw=1.3, label=literal(name))
        drawn = True
    if drawn:
        if log_scale_fits([v for vs in per_layer.values() for v in nums(vs)], spread=1.0):
            ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_ylabel(ylabel)
        legend(ax)
    return drawn


def draw_loss_curve(fig: Figure, probes: dict, baselines: dict) -> bool:
    data = probes.get("loss_curve") or {}
    train = nums(data.get("train_steps"))
    val = [v for v in data.get("val") or [] if isinstance(v, dict)]
    val_x = [num(v.get("step")) for v in val]
    val_y = [num(v.get("loss")) for v in val]
    if not finite(train) and not finite(val_y):
        return False
    fig.set_size_inches(6.0, 3.2)  # shown alone, full width
    ax = fig.subplots()
    if finite(train):
        ax.plot(range(1, len(train) + 1), train, color=COLORS[0], alpha=0.45, lw=0.8, label="training loss (per step)")
    if finite(val_y):
        ax.plot(val_x, val_y, color=COLORS[0], marker="o", ms=3.5, lw=1.8, label="validation loss")
    levels = []
    for i, (name, scores) in enumerate((baselines or {}).items()):
        level = num((scores or {}).get("loss")) if isinstance(scores, dict) else math.nan
        if math.isfinite(level):
            levels.append(level)
            ax.axhline(level, color=COLORS[(i + 1) % len(COLORS)], ls="--", lw=1.2,
                       label=literal(f"{name} baseline ({level:.4g})"))
    if log_scale_fits(train + val_y + levels):
        ax.set_yscale("log")
    planned = num(data.get("steps_planned"))
    if math.isfinite(planned) and planned > max(finite(val_x + [float(len(train))]) or [0]):
        ax.set_title(literal(f"the probe ran {len(train)} of the {planned:.0f} steps your training plans"), loc="left")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss")
    legend(ax)
    return True


def draw_lr_range(fig: Figure, probes: dict, baselines: dict, key: str = "lr_range") -> bool:
    data = probes.get(key) or {}
    lr, loss, smoothed = nums(data.get("lr")), nums(data.get("loss")), nums(data.get("smoothed"))
    if len(lr) != len(loss) or not finite(loss) or not all(v > 0 for v in finite(lr)):
        return False
    ax = fig.subplots()
    ax.plot(lr, loss, color=COLORS[0], alpha=0.4, lw=0.9, label="loss")
    if len(smoothed) == len(lr) and finite(smoothed):
        ax.plot(lr, smoothed, color=COLORS[0], lw=1.8, label="smoothed loss")
    ax.set_xscale("log")
    safe = nums(data.get("safe_range"))
    if len(safe) == 2 and all(math.isfinite(v) and v > 0 for v in safe):
        ax.axvspan(safe[0], safe[1], color=COLORS[2], alpha=0.12, label=f"safe range {safe[0]:.2g} to {safe[1]:.2g}")
    for key, label, color in (("suggested_lr", "suggested", COLORS[2]), ("user_lr", "your", COLORS[1])):
        value = num(data.get(key))
        if math.isfinite(value) and value > 0:
            ax.axvline(value, color=color, lw=1.8, ls="-" if key == "suggested_lr" else ":", label=f"{label} lr {value:.2g}")
    # A diverging tail would flatten the useful part: cap the view at a few times the starting loss.
    shown = finite(smoothed if finite(smoothed) else loss)
    start = shown[0]
    top = max(shown) if start <= 0 else min(max(shown), start * 3)
    bottom = min(shown)
    pad = (top - bottom) * 0.08 or abs(top) * 0.1 or 1.0
    ax.set_ylim(bottom - pad, top + pad)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    legend(ax)
    return True


def draw_gradients(fig: Figure, probes: dict, baselines: dict) -> bool:
    data = probes.get("gradients") or {}
    per_layer = data.get("per_layer") or {}
    ax = fig.subplots()
    n = max((len(v) for v in per_layer.values() if isinstance(v, list)), default=0) if isinstance(per_layer, dict) else 0
    if not _per_layer(ax, _steps(data, n), per_layer, "gradient norm"):
        return False
    clipped = num(data.get("clipped_fraction"))
    if math.isfinite(clipped):
        ax.set_title(f"clipping was active on {clipped:.0%} of the steps", loc="left")
    return True


def draw_update_ratio(fig: Figure, probes: dict, baselines: dict) -> bool:
    data = probes.get("update_ratio") or {}
    per_layer = data.get("per_layer") or {}
    ax = fig.subplots()
    n = max((len(v) for v in per_layer.values() if isinstance(v, list)), default=0) if isinstance(per_layer, dict) else 0
    return _per_layer(ax, _steps(data, n), per_layer, "|update| / |weight|")


def draw_memory_length(fig: Figure, probes: dict, baselines: dict) -> bool:
    data = probes.get("memory_length") or {}
    rel = nums(data.get("relative_grad"))
    lag = nums(data.get("lag"))
    if not finite(rel):
        return False
    lag = lag if len(lag) == len(rel) else list(range(len(rel)))
    ax = fig.subplots()
    marker = "." if len(rel) < 60 else None
    ax.plot(lag, rel, color=COLORS[0], marker=marker, lw=1.6, label="after the probe's training")
    init = nums(data.get("relative_grad_init"))
    if len(init) == len(rel) and finite(init):
        ax.plot(lag, init, color=COLORS[0], marker=marker, lw=1.0, ls="--", alpha=0.7, label="at initialization")
    if all(v > 0 for v in finite(rel + init)):
        ax.set_yscale("log")
    memory = num(data.get("memory_length"))
    if math.isfinite(memory):
        ax.axvline(memory, color=COLORS[1], lw=1.8, label=f"memory length {memory:.0f} steps")
    window = num(data.get("window"))
    if math.isfinite(window):
        ax.axvline(window - 1, color=COLORS[6], lw=1.2, ls="--", label=f"window {window:.0f} steps")
    reach = num(data.get("reach"))
    if math.isfinite(reach) and reach > 0:
        ax.axhline(reach, color=COLORS[6], lw=0.8, ls=":", label=f"reach threshold {reach:.2g}")
    ax.set_xlabel("steps back from the last input (k)")
    ax.set_ylabel("|dL/dx(T-k)| / |dL/dx(T)|")
    legend(ax)
    return True


def draw_gates(fig: Figure, probes: dict, baselines: dict) -> bool:
    data = probes.get("gates") or {}
    saturation = data.get("saturation") or {}
    cell = nums(data.get("cell_norm"))
    has_sat = isinstance(saturation, dict) and any(finite(nums(v)) for v in saturation.values())
    if not has_sat and not finite(cell):
        return False
    axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]}) if has_sat and finite(cell) else [fig.subplots()]
    if has_sat:
        ax = axes[0]
        n = max(len(v) for v in saturation.values() if isinstance(v, list))
        steps = _steps(data, n)
        for i, (gate, values) in enumerate(list(saturation.items())[:MAX_SERIES]):
            ys = nums(values)
            xs = steps if len(steps) == len(ys) else list(range(len(ys)))
            ax.plot(xs, ys, color=COLORS[i % len(COLORS)], marker="." if len(ys) < 30 else None, lw=1.3, label=literal(gate))
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("training step")
        ax.set_ylabel("share of gate values saturated")
        legend(ax)
    if finite(cell):
        ax = axes[-1]
        steps = _steps(data, len(cell))
        ax.plot(steps, cell, color=COLORS[4], marker="." if len(cell) < 30 else None, lw=1.5)
        ax.set_xlabel("training step")
        ax.set_ylabel("cell-state norm")
    return True


def draw_feature_scale(fig: Figure, probes: dict, baselines: dict) -> bool:
    scales = (probes.get("data") or {}).get("feature_scale") or {}
    if not isinstance(scales, dict):
        return False
    items = [(str(k), num(v)) for k, v in scales.items() if math.isfinite(num(v))]
    if not items:
        return False
    items.sort(key=lambda kv: -abs(kv[1]))
    hidden = len(items) - MAX_BARS
    items = items[:MAX_BARS][::-1]  # largest at the top
    fig.set_size_inches(SIZE[0], max(1.8, 1.0 + 0.24 * len(items)))
    ax = fig.subplots()
    names = [literal(k if len(k) <= 28 else k[:27] + "…") for k, _ in items]
    values = [abs(v) for _, v in items]
    ax.barh(range(len(items)), values, height=0.6, color=COLORS[0])
    ax.set_yticks(range(len(items)), names)
    ax.set_ylim(-0.6, len(items) - 0.4)
    # Log scale when the features, or a feature and unit scale, lie decades apart.
    if all(v > 0 for v in values) and max(values + [1.0]) / min(values + [1.0]) > 10:
        ax.set_xscale("log")
    ax.axvline(1.0, color=COLORS[6], lw=0.8, ls=":")
    ax.set_xlabel("scale as fed (1 = unit scale)")
    ax.grid(axis="y", visible=False)
    if hidden > 0:
        ax.set_title(f"the {MAX_BARS} largest of {hidden + MAX_BARS} features", loc="left")
    return True


def draw_acf(fig: Figure, probes: dict, baselines: dict) -> bool:
    acf = (probes.get("data") or {}).get("acf") or {}
    values = nums(acf.get("values")) if isinstance(acf, dict) else []
    if not finite(values):
        return False
    lags = nums(acf.get("lags"))
    lags = lags if len(lags) == len(values) else list(range(len(values)))
    ax = fig.subplots()
    if len(values) <= 80:
        ax.vlines(lags, 0, values, color=COLORS[0], lw=1.2)
        ax.plot(lags, values, "o", color=COLORS[0], ms=2.5)
    else:  # stems would merge into a block
        ax.plot(lags, values, color=COLORS[0], lw=1.2)
        ax.fill_between(lags, 0, values, color=COLORS[0], alpha=0.2, lw=0)
    ax.axhline(0, color=COLORS[6], lw=0.6)
    window = num(acf.get("window"))
    if math.isfinite(window):
        ax.axvline(window, color=COLORS[1], lw=1.8, label=f"your window {window:.0f} steps")
    period = num(acf.get("period"))
    if math.isfinite(period):
        ax.axvline(period, color=COLORS[2], lw=1.8, ls="--", label=f"dominant period {period:.0f} steps")
    ax.set_xlabel("lag (steps)")
    ax.set_ylabel("autocorrelation of the target")
    legend(ax)
    return True


def draw_small_batch(fig: Figure, probes: dict, baselines: dict) -> bool:
    data = probes.get("small_batch") or {}
    loss, sound = nums(data.get("loss")), nums(data.get("sound_loss"))
    if not finite(loss + sound):
        return False
    constant, sound_constant = num(data.get("constant_loss")), num(data.get("sound_constant_loss"))
    # The sound recipe sees the batch standardized: each curve is shown over its own constant's loss.
    relative = math.isfinite(constant) and constant > 0 and math.isfinite(sound_constant) and sound_constant > 0
    if relative:
        loss, sound = [v / constant for v in loss], [v / sound_constant for v in sound]
    ax = fig.subplots()
    for i, (values, label) in enumerate(((loss, "your settings"), (sound, "a sound recipe"))):
        if finite(values):
            ax.plot(range(1, len(values) + 1), values, color=COLORS[i], lw=1.6, label=label,
                    marker="o" if len(values) < 30 else None, ms=3)
    level = 1.0 if relative else constant
    if math.isfinite(level):
        ax.axhline(level, color=COLORS[6], lw=1.0, ls="--",
                   label="best constant" + ("" if relative else f" ({constant:.3g})"))
    if log_scale_fits(loss + sound + [level], spread=10.0):
        ax.set_yscale("log")
    ax.set_xlabel("pass over the same small batch")
    ax.set_ylabel("loss over a constant's" if relative else "loss on the small batch")
    legend(ax)
    return True


def draw_signal(fig: Figure, probes: dict, baselines: dict) -> bool:
    data = probes.get("signal") or {}
    groups = [("real targets", finite(nums(data.get("real")))), ("shuffled targets", finite(nums(data.get("shuffled"))))]
    if not any(values for _, values in groups):
        return False
    ax = fig.subplots()
    for i, (label, values) in enumerate(groups):
        # Spread the points evenly across the column so equal values stay visible.
        offsets = [(j - (len(values) - 1) / 2) * 0.25 / max(len(values), 1) for j in range(len(values))]
        ax.plot([i + o for o in offsets], values, "o", color=COLORS[i], ms=6, alpha=0.8)
    free = num(data.get("input_free"))
    if math.isfinite(free):
        ax.axhline(free, color=COLORS[6], lw=1.0, ls="--", label=f"input-free baseline ({free:.3g})")
        legend(ax)
    ax.set_xticks([0, 1], [g for g, _ in groups])
    ax.set_xlim(-0.6, 1.6)
    loss = data.get("loss")
    ax.set_ylabel(literal(f"validation {loss if isinstance(loss, str) else 'loss'} of each fit"))
    p = num(data.get("p_value"))
    if math.isfinite(p):
        ax.set_title(f"one-sided test, real beats shuffled: p = {p:.3g}", loc="left")
    return True


def curve_points(value: Any) -> list[tuple[list[float], list[float]]]:
    """The (x, y) lines in one treatment curve: {step, loss}, a loss_curve-like {val: [...]},
    a list of losses, a list of {step, loss} records, or a list of such curves (one per seed)."""
    if isinstance(value, dict):
        if isinstance(value.get("val"), list):
            return curve_points(value["val"])
        ys = nums(value.get("loss"))
        xs = nums(value.get("step") if value.get("step") is not None else value.get("steps"))
        return [(xs if len(xs) == len(ys) else list(range(1, len(ys) + 1)), ys)] if finite(ys) else []
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [([num(v.get("step")) for v in value], [num(v.get("loss")) for v in value])]
    if isinstance(value, list) and value and all(isinstance(v, (list, dict)) for v in value):
        return [line for v in value for line in curve_points(v)]
    ys = nums(value)
    return [(list(range(1, len(ys) + 1)), ys)] if finite(ys) else []


def draw_treatment(fig: Figure, treatment: dict) -> bool:
    curves = treatment.get("curves") or {}
    if not isinstance(curves, dict):
        return False
    ax = fig.subplots()
    drawn = []
    for i, (arm, value) in enumerate(curves.items()):
        for j, (xs, ys) in enumerate(curve_points(value)):
            ax.plot(xs, ys, color=COLORS[i % len(COLORS)], lw=1.8 if j == 0 else 0.8, marker="o" if len(ys) < 30 else None,
                    ms=3, label=literal(arm) if j == 0 else None)
            drawn += finite(ys)
    if not drawn:
        return False
    if log_scale_fits(drawn):
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("validation loss")
    legend(ax)
    return True


Draw = Callable[[Figure, dict, dict], bool]

# (key, probe entry it reads, title, how to read it, drawing function), in report order.
PLOTS: list[tuple[str, str, str, str, Draw]] = [
    ("loss_curve", "loss_curve", "Loss against the baselines",
     "Training and validation loss of your setup, run at your settings. Dashed lines: what input-free and naive "
     "predictions score on validation. A model that stays on the mean baseline predicts a constant.", draw_loss_curve),
    ("lr_range", "lr_range", "Learning-rate range test",
     "Training loss while the learning rate grows step by step. Good rates lie where the loss falls fastest; "
     "past the minimum, updates overshoot.", draw_lr_range),
    ("lr_range_standardized", "lr_range_standardized", "Learning-rate range test on your data standardized",
     "The same sweep with your inputs (and a regression target) standardized with training statistics, run because "
     "your data reaches the model far off unit scale: the rate findings (T301, T302) judge your rate by this one.",
     partial(draw_lr_range, key="lr_range_standardized")),
    ("gradients", "gradients", "Gradient norm per layer",
     "Norm of each layer's gradient over the sampled training steps. Spikes mean exploding gradients; "
     "values near zero mean the layer gets no learning signal.", draw_gradients),
    ("memory_length", "memory_length", "Gradient against time step (memory length)",
     "How much of the loss's gradient reaches the input k steps before the last one, relative to the last step. "
     "Where it falls below the threshold, the model stops learning from older inputs.", draw_memory_length),
    ("gates", "gates", "Gate saturation",
     "Share of gate activations pinned near 0 or 1 (sigmoid) or near ±1 (tanh), and the cell state's norm. "
     "Saturated gates pass almost no gradient.", draw_gates),
    ("update_ratio", "update_ratio", "Update-to-weight ratio per layer",
     "Size of each optimizer step relative to the weights. Far below 1e-3 the weights barely move; "
     "far above, they are overwritten every step.", draw_update_ratio),
    ("feature_scale", "data", "Feature scales",
     "Each input feature's scale as the model is fed (the larger of its median magnitude and its standard "
     "deviation). Recurrent gates work best near 1.", draw_feature_scale),
    ("acf", "data", "Autocorrelation of the target",
     "How strongly the target repeats itself after a lag. A window shorter than the dominant period hides the "
     "cycle from the model.", draw_acf),
    ("small_batch", "small_batch", "Fitting one small batch",
     "Loss on a handful of training windows, trained on them again and again, at your settings and with a sound "
     "recipe. A model that uses its input goes below the best constant at once; a working pipeline drives it "
     "towards zero.", draw_small_batch),
    ("signal", "signal", "Signal against shuffled targets",
     "Validation loss of small repaired models fitted on the real targets and on targets shuffled across samples. "
     "If real does not beat shuffled, the inputs carry no usable signal.", draw_signal),
]


def _prefix_ids(svg: str, prefix: str) -> str:
    """Give every id of one SVG a prefix, so several SVGs inline in one page never share one.

    Only tags are rewritten: text from the data is escaped, so it never contains ``<`` or ``>``.
    """
    def tag(match: re.Match) -> str:
        t = re.sub(r'\bid="', f'id="{prefix}-', match.group(0))
        return re.sub(r'(url\(#|href="#)', lambda m: m.group(1) + prefix + "-", t)

    return re.sub(r"<[^<>]+>", tag, svg)


def svg_of(draw: Callable[[Figure], bool], prefix: str) -> str | None:
    """Draw with ``draw`` and return inline SVG markup, or None when it had nothing to draw."""
    with matplotlib.rc_context({**RC, "svg.hashsalt": prefix}):
        fig = Figure(figsize=SIZE, layout="constrained")
        if not draw(fig):
            return None
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]  # drop the XML prolog and doctype: the page is HTML
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    return _prefix_ids(text, prefix)
