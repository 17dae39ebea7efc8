"""D110: is there a learnable signal at all? Judged on the shuffled-target control
(``probes/signal.py``) and the linear baseline (``probes/baselines.py``)."""

from __future__ import annotations

from typing import Any

from lstm_doctor.evidence import Evidence
from lstm_doctor.findings import Finding
from lstm_doctor.rules.registry import rule

# Real targets must beat shuffled ones at this one-sided level to count as signal.
ALPHA = 0.05
# A linear model that beats the input-free baseline this clearly (material and
# significant) proves a signal even when the small recurrent fits missed it.
LINEAR_SKILL = 0.05
LINEAR_ALPHA = 0.01


@rule("D110")
def no_learnable_signal(ev: Evidence) -> Finding | None:
    """What it means
      The target cannot be predicted from the inputs: a model trained on the
      real pairing of inputs and targets does no better than the same model
      trained on targets shuffled across the samples. Nothing about the
      model, the learning rate or the scaling can fix that. Either the target
      is noise with respect to these inputs, or the pipeline broke the
      pairing (labels shuffled apart from their sequences, a sort or a join
      on the wrong key, targets shifted by the wrong horizon).

    How it is measured
      A permutation test with a learner (Ojala & Garriga, 2010). With a
      repaired recipe, never your own settings (inputs and target
      standardized on the training part; a small recurrent model of your cell,
      16 units; Adam at 3e-3; the budget's signal steps), the same model is
      trained on up to 1,024 training windows with their real targets, and
      on the targets permuted across windows (a fresh permutation per fit),
      with the same seeds, several times each (5 per arm at the quick
      budget), and scored on up to 512 validation windows.
      The real pairing is a single draw, however often it is fitted, so the
      mean of the real fits is compared with the spread of the shuffled fits
      by a one-sided t prediction interval (t = gap / (sd * sqrt(1 + 1/n)),
      n - 1 degrees of freedom); a two-sample test would treat the real fits
      as independent draws and find "signal" in noise far too often. Fires
      when that p-value is 0.05 or more and a linear model on the window
      (ridge or logistic regression) does not clearly beat the input-free
      baseline either: 5% or more lower MSE (or chance-corrected balanced
      accuracy of 0.05 or more) at p < 0.01. The linear check guards against
      signals the short recurrent fits miss (long sequences, few samples).

    Example
      ItalyPowerDemand with its 67 training labels permuted: the real fits
      score validation cross-entropy 0.73 against 0.70 +- 0.14 for the
      shuffled ones (p = 0.56), and logistic regression gets 42% accuracy:
      D110. Unpermuted: 0.10 against 0.73 (p = 0.0003). GunPoint's 50
      outlines of 150 steps defeat the short recurrent fits (p = 0.99), but
      logistic regression reaches 85% accuracy (p < 1e-9): no D110.

    Fix
      Setup file:  none: check the data itself
      PyTorch:     assert len(X) == len(y); check that the labels are aligned
                   with the sequences after every shuffle, sort, merge or split
                   (shuffle indices, not arrays: X, y = X[idx], y[idx]); check
                   the horizon: y[t + h] against the window ending at t
      Keras:       the same; model.fit(X, y, shuffle=True) shuffles them together
      If the pairing is right, the target is not predictable from these inputs:
      add features that carry information about it.

    Related: D101 non-finite-values, M208 batch-first-mismatch, T307 prediction-collapse, T309 cannot-fit-small-batch
    """
    p = ev.get("signal_p_value")
    if p is None or p < ALPHA:
        return None
    skill, linear_p = ev.get("linear_skill"), ev.get("linear_p_value")
    if skill is not None and linear_p is not None and skill >= LINEAR_SKILL and linear_p < LINEAR_ALPHA:
        return None
    real, fake, free = ev.get("signal_real_mean"), ev.get("signal_shuffled_mean"), ev.get("signal_input_free_loss")
    loss = ev.get("signal_loss", "loss")
    evidence: dict[str, Any] = {
        "p_value": p, "real_mean": real, "shuffled_mean": fake, "input_free": free, "loss": loss,
        "real": ev.get("signal_real_loss"), "shuffled": ev.get("signal_shuffled_loss"),
        "linear_skill": skill, "linear_p_value": linear_p, "thresholds": {"alpha": ALPHA, "linear_skill": LINEAR_SKILL,
                                                                          "linear_alpha": LINEAR_ALPHA}}
    if skill is None:
        linear = ""
    elif ev.get("linear_skill_measure") == "balanced_accuracy":
        linear = f", nor does logistic regression on the window (chance-corrected balanced accuracy {skill:.2f})"
    else:
        linear = f", nor does ridge regression on the window (MSE skill over the mean {skill:.2f})"
    measured = linear_p is not None
    return Finding.of(
        "D110",
        f"Trained on the real targets, a small {str(ev.get('signal_cell', 'recurrent')).upper()} scores no better than on "
        f"targets shuffled across samples (validation {loss} {real:.3g} vs {fake:.3g}, p = {p:.2f}){linear}: "
        "the inputs carry no usable signal about the target.",
        evidence,
        fix="Check that targets stay aligned with their sequences through every shuffle, sort, merge and split; "
            "if they do, add inputs that carry information about the target.",
        confidence=0.9 if measured and p >= 0.2 else 0.75,
    )
