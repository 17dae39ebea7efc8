"""Ranking: order findings so that a root cause comes before the effects it explains.

One place holds the causal order: ``CAUSES_BEFORE[a]`` lists codes that ``a``
explains, so ``a`` ranks above each of them when both are present. Among findings
not ordered by cause, severity, then confidence decide.
"""

from __future__ import annotations

from typing import Callable

from lstm_doctor.findings import Finding
from lstm_doctor.rules.activity import LAYER_SHARE

# cause -> the codes it explains (its consequences)
CAUSES_BEFORE: dict[str, tuple[str, ...]] = {
    # Broken data explains everything downstream of it.
    "D101": ("D102", "D103", "D104", "D106", "D110", "T301", "T302", "T304", "T307", "T309", "T313"),
    # No learnable signal: nothing that tunes training can help.
    # Whatever is fitted without a signal is noise (T308, M204), whatever the dropout or batch size.
    "D110": ("D102", "D103", "D104", "D107", "D108", "M203", "M204", "M206", "M207", "M213", "T301", "T302", "T303",
             "T305", "T307", "T308", "T309", "T311", "T312"),
    # Unscaled inputs or targets also make the trained model's memory (M207's evidence) meaningless.
    "D102": ("D103", "T301", "T302", "T303", "T304", "T305", "T306", "T307", "T309", "T313", "M206", "M207"),
    "D104": ("T301", "T302", "T304", "T307", "T309", "T313", "M207"),
    # Data faults behind training symptoms: a random split causes the window-overlap leak;
    # values cast to integers lose the signal; outliers make gradient spikes; sequences too
    # long for BPTT make gradients vanish; a short window looks like too little capacity;
    # a trend or too little data looks like overfitting.
    "D115": ("D114",),
    "D113": ("D105", "D106", "D110", "T307", "D112", "M209"),  # truncation turns small values into zeros that read as padding
    "D106": ("T304",),
    "D109": ("T303",),
    "D108": ("M203",),
    "D107": ("T308",),
    "D116": ("T308",),
    # Swapped axes: one-step "sequences" leave the recurrent weights without gradient (M212).
    "M208": ("D110", "T307", "T309", "T303", "M212", "T302"),
    "M201": ("T307", "T309", "T313", "D111"),
    # A rate past the range where the loss falls also ruins what a deep stack's training shows
    # (M205's fading gradient): lower the rate first, then judge the depth.
    "T301": ("T304", "T305", "T306", "T307", "M205"),
    "D112": ("M203", "T307"),
    # Reading out a padded step is the direct bug; how much padding there is matters through what is read.
    "M209": ("D112", "T307", "T309"),
    "T310": ("T301", "T304", "T307"),
    "M212": ("T302", "T307", "T309", "T306", "T303"),
    # Training dynamics: exploding updates saturate gates; saturated gates stop gradients and
    # freeze units; a model whose gradients vanish or whose units died predicts a constant.
    "T304": ("T305", "T306", "T307"),
    "T305": ("T303", "T306", "T307", "T309"),  # pinned gates pass too little gradient to fit even a small batch
    "T303": ("T307",),
    "T306": ("T307",),
    "T302": ("T307", "T312"),
    # A model that cannot fit even 16 windows collapses to a constant; large weights at
    # init explain a bad initial loss and a model that cannot fit; rare classes skew the init loss.
    "T309": ("T307",),
    # Weights that far off scale also skew the range test: it suggests the rates only they need.
    "M206": ("T309", "T313", "T303", "T304", "T305", "T306", "T307", "T302"),
    # Model faults behind training symptoms: a ReLU recurrence explodes or dies; a deep plain
    # stack and a closed forget gate starve the gradient; heavy dropout drowns the signal; an
    # unregularized giant memorizes; a per-step / per-sequence mismatch cannot be fitted.
    "M211": ("T304", "T306", "T307"),
    "M205": ("T303", "T304"),  # each stacked layer multiplies the gradient once more: it fades or explodes
    "M207": ("T303",),
    "M213": ("T307",),
    "M204": ("T308",),
    "M210": ("T307", "T309"),
    "D111": ("T313", "T307"),  # and the majority class is the constant a collapsed model predicts
    # Few, large batches leave too few steps: the training stops while still improving.
    "T311": ("T312", "T307", "T304"),  # and batches of 1-4 make the gradient norm spike
    "T312": ("T307",),  # stopped before the model got past a constant
}


def _saturated_before_training(f: Finding) -> bool:
    share = f.evidence.get("share_before_training")
    return isinstance(share, (int, float)) and share > LAYER_SHARE  # T305's own bar, before training


# Edges that hold only for some findings of the effect: exploding updates saturate gates that
# were not saturated before training; gates pinned from the start share their cause with the explosion.
ONLY_WHEN: dict[tuple[str, str], Callable[[Finding], bool]] = {
    ("T304", "T305"): lambda f: not _saturated_before_training(f),
}


def _explains(a: str, b: str, seen: frozenset[str] = frozenset()) -> bool:
    """True when ``a`` explains ``b`` directly or through a chain of causes."""
    direct = CAUSES_BEFORE.get(a, ())
    if b in direct:
        return True
    return any(_explains(c, b, seen | {a}) for c in direct if c not in seen and c != a)


def _explained(cause: str, f: Finding) -> bool:
    """``cause`` explains the finding ``f``, where the edge between them holds for ``f``."""
    holds = ONLY_WHEN.get((cause, f.code))
    return _explains(cause, f.code) and (holds is None or holds(f))


def rank(findings: list[Finding]) -> list[Finding]:
    """Findings ordered root cause first, with ``rank`` set from 1."""
    ordered = sorted(findings, key=lambda f: (f.severity_level, -f.confidence, f.code))
    # Stable topological pass: repeatedly take the first finding that nothing
    # remaining explains.
    result: list[Finding] = []
    remaining = list(ordered)
    while remaining:
        codes = [f.code for f in remaining]
        pick = next((f for f in remaining if not any(_explained(c, f) for c in codes if c != f.code)), remaining[0])
        remaining.remove(pick)
        result.append(pick)
    for i, f in enumerate(result, start=1):
        f.rank = i
    return result
