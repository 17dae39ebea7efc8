"""How much the trained model's validation outputs vary, against how much the targets vary.

At the end of the instrumented run, the model (dropout off) predicts every
validation window. For regression, the spread is the standard deviation of the
outputs over that of the targets, per target column (padded steps left out); a
model that predicts a constant has a spread near 0. For classification, the
same ratio for the predicted class probabilities against the one-hot labels
(averaged over classes), and the share of windows given the most-predicted
class beside the share of the validation majority class.

Evidence written: ``prediction_spread`` (regression: largest ratio over target
columns; classification: the probabilities' ratio),
``prediction_spread_per_target``, ``prediction_loss`` (validation loss of these
outputs, in the setup's loss), ``predicted_class_share``, ``predicted_class``,
``majority_share`` (classification only).
"""

from __future__ import annotations

import math

import torch

from lstm_doctor.objective import Objective
from lstm_doctor.probes.context import ProbeContext
from lstm_doctor.probes.instrument import Instrument, guarded, probing, step_mask
from lstm_doctor.training import TrainState, _forward

VAL_BATCH = 512


class PredictionSpread(Instrument):
    """Predicts the validation windows once, when training ends."""

    @guarded
    def on_train_end(self, state: TrainState) -> None:
        data, objective = self.ctx.setup.data, state.objective
        device = next(state.model.parameters()).device
        outs, ys, lens = [], [], []
        with probing(state.model), torch.no_grad():
            for start in range(0, len(data.val), VAL_BATCH):
                idx = torch.arange(start, min(start + VAL_BATCH, len(data.val)))
                x, y, lengths = (None if t is None else t.to(device) for t in data.val.batch(idx))
                outs.append(_forward(state.model, x, lengths))
                ys.append(y)
                lens.append(lengths)
        if not outs:
            return
        out, y = torch.cat(outs), torch.cat(ys)
        lengths = None if lens[0] is None else torch.cat(lens)
        ev = self.ctx.evidence
        ev["prediction_loss"] = float(objective(out, y, lengths))
        mask = step_mask(lengths, out.shape[0], out.shape[1], device) if data.per_step else None
        self.measure(out, y, objective, mask)

    def measure(self, out: torch.Tensor, y: torch.Tensor, objective: Objective, mask: torch.Tensor | None = None) -> None:
        """The spread evidence of outputs ``out`` against targets ``y`` (``mask``: the real steps of per-step data)."""
        if objective.task == "regression":
            self._regression(out, y, mask)
        else:
            self._classes(out, objective, y, mask)

    def _regression(self, out: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None) -> None:
        out = out.reshape(y.shape).double()
        y = y.double()
        if mask is not None:
            out, y = out[mask], y[mask]
        out, y = out.reshape(len(out), -1), y.reshape(len(y), -1)
        ratios = {}
        for j, name in enumerate(self.ctx.setup.data.target_names[: y.shape[1]]):
            target_std = float(y[:, j].std(unbiased=False))
            ratio = float(out[:, j].std(unbiased=False)) / target_std if target_std > 0 else float("nan")
            ratios[name] = ratio if math.isfinite(ratio) else None
        finite = [r for r in ratios.values() if r is not None]
        self.ctx.evidence.update(prediction_spread_per_target=ratios, prediction_spread=max(finite) if finite else None)

    def _classes(self, out: torch.Tensor, objective: Objective, y: torch.Tensor, mask: torch.Tensor | None) -> None:
        pred = objective.decide(out)
        true = y.long().reshape(pred.shape)
        if objective.task == "multiclass":
            probs = out.double().softmax(dim=-1)
        else:  # logits, or probabilities from a sigmoid head (decision threshold 0.5)
            p = out.double().reshape(pred.shape)
            p = p if objective.threshold == 0.5 else p.sigmoid()
            probs = torch.stack([1 - p, p], dim=-1)
        if mask is not None:
            pred, true, probs = pred[mask], true[mask], probs[mask]
        pred, true, probs = pred.reshape(-1), true.reshape(-1), probs.reshape(-1, probs.shape[-1])
        if not len(pred):
            return
        n = max(int(pred.max()), int(true.max()), probs.shape[-1] - 1, 1) + 1
        predicted = torch.bincount(pred, minlength=n)
        top = int(predicted.argmax())
        classes = self.ctx.setup.data.classes
        # How much the predicted probabilities vary, against the one-hot labels they should match.
        labels = torch.nn.functional.one_hot(true, n).double()[:, : probs.shape[-1]]
        label_std = float(labels.std(dim=0, unbiased=False).mean())
        spread = float(probs.std(dim=0, unbiased=False).mean()) / label_std if label_std > 0 else float("nan")
        self.ctx.evidence.update(
            prediction_spread=spread if math.isfinite(spread) else None,
            predicted_class_share=float(predicted[top]) / len(pred),
            predicted_class=classes[top] if classes and top < len(classes) else str(top),
            majority_share=float(torch.bincount(true, minlength=n).max()) / len(true),
        )


def predictions(ctx: ProbeContext) -> None:
    """Register the prediction-spread probe on the instrumented training run."""
    ctx.instruments.append(PredictionSpread(ctx))
