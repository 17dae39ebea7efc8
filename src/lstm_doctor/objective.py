"""Losses (masked over padding), optimizers and the validation metrics of each task."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from lstm_doctor.data.windows import AffineMap

_ELEMENTWISE = {
    "mse": lambda: nn.MSELoss(reduction="none"),
    "mae": lambda: nn.L1Loss(reduction="none"),
    "huber": lambda: nn.HuberLoss(reduction="none"),
    "bce": lambda: nn.BCEWithLogitsLoss(reduction="none"),
    "ce": lambda: nn.CrossEntropyLoss(reduction="none"),
}


class Objective:
    """The training loss and the decision rule for one task.

    ``bce`` and ``ce`` take logits, like ``BCEWithLogitsLoss`` and ``CrossEntropyLoss``.
    With ``lengths``, per-step losses skip padded steps.

    >>> obj = Objective("mse", "regression")
    >>> float(obj(torch.zeros(4, 1), torch.ones(4, 1)))
    1.0
    """

    def __init__(self, loss: str | nn.Module, task: str, *, per_step: bool = False, threshold: float = 0.0,
                 class_weights: torch.Tensor | None = None):
        self.name = loss if isinstance(loss, str) else type(loss).__name__
        self.task = task
        self.per_step = per_step
        self.threshold = threshold
        self.custom = not isinstance(loss, str)
        if self.custom:
            self.fn = loss
        elif class_weights is not None and loss == "ce":
            self.fn = nn.CrossEntropyLoss(weight=class_weights, reduction="none")
        elif class_weights is not None and loss == "bce":
            self.fn = nn.BCEWithLogitsLoss(pos_weight=class_weights[1] / class_weights[0], reduction="none")
        else:
            self.fn = _ELEMENTWISE[loss]()
        # The same loss averaged inside torch's fused kernel, for the training path; not
        # for class-weighted CE, whose "mean" would divide by the weights, not the count.
        self._mean_fn = None
        if not self.custom and not (class_weights is not None and loss == "ce"):
            self._mean_fn = copy.deepcopy(self.fn)
            self._mean_fn.reduction = "mean"

    def _pair(self, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs and targets shaped for the loss function."""
        if self.name == "ce":
            # (B, C) or (B, T, C) logits against (B,) or (B, T) class indices.
            return (out.movedim(-1, 1) if out.dim() == 3 else out), y.long()
        if self.name == "bce" or self.task == "binary":
            out = out.squeeze(-1)
            y = y.to(out.dtype)
        elif self.task == "multiclass":
            # A regression loss on class labels scores one-hot targets, as Keras'
            # loss="mse" with to_categorical labels does (a finding, M201, not an error).
            y = nn.functional.one_hot(y.long(), out.shape[-1]).to(out.dtype)
        return out, (y.reshape(out.shape) if y.numel() == out.numel() else y)

    def elementwise(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Loss per sample (and step when per-step), averaged over other axes."""
        loss = self.fn(*self._pair(out, y))
        if self.per_step:
            return loss.reshape(loss.shape[0], loss.shape[1], -1).mean(dim=-1) if loss.dim() > 2 else loss
        return loss.reshape(loss.shape[0], -1).mean(dim=1) if loss.dim() > 1 else loss

    def __call__(self, out: torch.Tensor, y: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if self.custom:
            return self.fn(out, y)
        if self.per_step and lengths is not None:
            loss = self.elementwise(out, y)
            mask = torch.arange(loss.shape[1], device=loss.device)[None, :] < lengths[:, None]
            return (loss * mask).sum() / mask.sum().clamp(min=1)
        # Every sample (and step) has as many outputs, so the mean over all outputs is
        # the mean of the per-sample means.
        if self._mean_fn is not None:
            return self._mean_fn(*self._pair(out, y))
        return self.fn(*self._pair(out, y)).mean()

    def decide(self, out: torch.Tensor) -> torch.Tensor:
        """Predicted class indices from the model's outputs."""
        if self.task == "multiclass":
            return out.argmax(dim=-1)
        return (out.squeeze(-1) > self.threshold).long()


def balanced_weights(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Class weights inversely proportional to class frequency (scikit-learn's "balanced")."""
    counts = torch.bincount(labels.reshape(-1).long(), minlength=n_classes).float().clamp(min=1)
    return counts.sum() / (n_classes * counts)


def make_optimizer(name: str, params, *, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    kinds = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop}
    return kinds[name](params, lr=lr, weight_decay=weight_decay)


def metrics_of(
    objective: Objective,
    out: torch.Tensor,
    y: torch.Tensor,
    lengths: torch.Tensor | None,
    target_scaler: AffineMap | None,
    n_classes: int,
) -> dict[str, float]:
    """Validation metrics that matter for the task, in the target's own units."""
    mask = None
    if objective.per_step and lengths is not None:
        mask = torch.arange(y.shape[1], device=y.device)[None, :] < lengths[:, None]
    if objective.task == "regression":
        pred, true = out.reshape(y.shape), y
        if target_scaler is not None:
            pred, true = target_scaler.invert(pred), target_scaler.invert(true)
        err = pred - true
        if mask is not None:
            err = err[mask]
        mse = float(torch.mean(err.double() ** 2))
        return {"rmse": math.sqrt(mse) if math.isfinite(mse) else float("nan"), "mae": float(err.abs().double().mean())}
    pred = objective.decide(out)
    true = y.long().reshape(pred.shape)
    if mask is not None:
        pred, true = pred[mask], true[mask]
    pred, true = pred.reshape(-1), true.reshape(-1)
    classes = max(n_classes, 2)
    recalls = [float((pred[true == c] == c).float().mean()) for c in range(classes) if (true == c).any()]
    return {"accuracy": float((pred == true).float().mean()), "balanced_accuracy": sum(recalls) / len(recalls)}
