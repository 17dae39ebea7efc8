"""The finding catalog: every code lstm-doctor can report (FINDINGS.md), in one registry.

Codes are a public contract: never reuse one for another meaning; retire instead.
A code's full documentation page is the docstring of the rule that checks it
(``lstm_doctor.rules``), so the page and the check cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

SEVERITIES = ("critical", "warning", "info")
FAMILIES = {"data": "D1xx data and preprocessing", "model": "M2xx model and setup", "dynamics": "T3xx training dynamics"}


@dataclass(frozen=True)
class Code:
    code: str
    name: str
    family: str
    severity: str
    meaning: str
    retired: bool = False


CODES: dict[str, Code] = {c.code: c for c in (
    Code("D101", "non-finite-values", "data", "critical", "NaN or Inf in inputs or targets"),
    Code("D102", "unscaled-inputs", "data", "critical", "inputs far from unit scale (large magnitudes or offsets), as fed to the model"),
    Code("D103", "feature-scale-disparity", "data", "warning", "features on very different scales, so a few dominate"),
    Code("D104", "unscaled-target", "data", "critical", "regression target far from unit scale, for the loss and output layer in use"),
    Code("D105", "constant-feature", "data", "info", "a feature (or the whole input) carries no variation"),
    Code("D106", "outliers", "data", "info", "extreme values that dominate scaling or the loss"),
    Code("D107", "non-stationary", "data", "warning", "trend or level shift: validation range lies outside what training saw"),
    Code("D108", "window-too-short", "data", "warning", "window shorter than the series' dominant period or dependency length"),
    Code("D109", "sequence-too-long", "data", "warning", "sequences longer than backpropagation through time can carry"),
    Code("D110", "no-learnable-signal", "data", "critical", "the target cannot be predicted from the inputs better than a trivial baseline"),
    Code("D111", "class-imbalance", "data", "warning", "one class dominates, so accuracy is stuck at the majority share"),
    Code("D112", "padding-problems", "data", "warning", "padding dominates the sequences, or the pad value also occurs as real data"),
    Code("D113", "truncated-values", "data", "critical", "real-valued inputs were cast to integers (for example by an integer padding dtype)"),
    Code("D114", "split-leakage", "data", "warning", "overlapping windows or a scaler fitted on validation data leak it into training"),
    Code("D115", "shuffled-time-split", "data", "warning", "a random split mixes future and past: validation is not forecasting"),
    Code("D116", "too-few-samples", "data", "warning", "too little data for the model's size"),
    Code("M201", "output-loss-mismatch", "model", "critical", "output activation, target range and loss do not fit together (double softmax, sigmoid with MSE on unbounded targets, ...)"),
    Code("M202", "metric-task-mismatch", "model", "warning", "a metric that means nothing for the task (accuracy on regression)"),
    Code("M203", "too-little-capacity", "model", "warning", "too few units or layers for the task"),
    Code("M204", "too-much-capacity", "model", "warning", "far more parameters than the data supports, with no regularization"),
    Code("M205", "deep-stack", "model", "warning", "many stacked recurrent layers without normalization or residual paths"),
    Code("M206", "poor-initialization", "model", "warning", "weight scales far from what keeps signals and gradients alive"),
    Code("M207", "forget-bias", "model", "info", "forget-gate bias not positive, so long dependencies are forgotten early"),
    Code("M208", "batch-first-mismatch", "model", "critical", "batch and time axes swapped between the data and the recurrent layer"),
    Code("M209", "readout-misplaced", "model", "critical", "the step read out is padding, or only one direction of a bidirectional layer"),
    Code("M210", "sequence-shape-mismatch", "model", "warning", "per-step targets with a last-step model, or the reverse; time-distributed layers misplaced"),
    Code("M211", "unbounded-recurrent-activation", "model", "warning", "a non-saturating activation (ReLU) inside the recurrence"),
    Code("M212", "frozen-parameters", "model", "critical", "parameters that never train (no gradient, or missing from the optimizer)"),
    Code("M213", "excessive-dropout", "model", "warning", "dropout so strong that the signal does not get through"),
    Code("T301", "learning-rate-too-high", "dynamics", "critical", "updates overshoot: oscillation, spikes or divergence"),
    Code("T302", "learning-rate-too-low", "dynamics", "critical", "updates too small to move the loss within the budget"),
    Code("T303", "vanishing-gradients", "dynamics", "warning", "gradients die across layers or across time steps"),
    Code("T304", "exploding-gradients", "dynamics", "critical", "gradient norms spike or overflow"),
    Code("T305", "saturated-gates", "dynamics", "warning", "gates or cell activations pinned at their limits"),
    Code("T306", "dead-units", "dynamics", "warning", "hidden units that never change"),
    Code("T307", "prediction-collapse", "dynamics", "critical", "the model outputs (nearly) a constant: the mean or the majority class"),
    Code("T308", "overfitting", "dynamics", "warning", "validation gets worse while training improves"),
    Code("T309", "cannot-fit-small-batch", "dynamics", "critical", "the model cannot even memorise a small batch: a pipeline or model bug"),
    Code("T310", "gradient-accumulation", "dynamics", "critical", "gradients are never reset between steps"),
    Code("T311", "batch-size", "dynamics", "warning", "the batch is so small that gradients are noise, or so large that too few steps are taken"),
    Code("T312", "too-few-epochs", "dynamics", "info", "still improving when training stops"),
    Code("T313", "bad-initial-loss", "dynamics", "warning", "the loss at step 0 is far from what the output layer should give"),
)}


def lookup(code_or_name: str) -> Code | None:
    """A code by its code (``D102``, any case) or its name (``unscaled-inputs``)."""
    key = code_or_name.strip()
    if key.upper() in CODES:
        return CODES[key.upper()]
    return next((c for c in CODES.values() if c.name == key.lower()), None)
