"""PyTorch Lightning: ``Trainer(callbacks=[DoctorCallback()])`` and the report is on the callback after ``fit``.

Lightning runs forward and backward inside ``optimizer.step(closure)``, so the
optimizer's own step hooks fire before the gradients exist. The callback
drives a :class:`lstm_doctor.watch.Watch` from Lightning's hooks instead:
``on_before_optimizer_step`` (gradients in place, before clipping and the
update) and the optimizer's step post-hook (after the update). The training
loss comes from each ``training_step``'s output, the validation loss from the
logged metric ``monitor`` at each epoch's end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lstm_doctor.integrations import save
from lstm_doctor.probes.instrument import probing
from lstm_doctor.report import Report
from lstm_doctor.watch import MAX_OVERHEAD, Watch

try:
    from lightning.pytorch import Callback
except ImportError:  # the older package name
    from pytorch_lightning import Callback


class DoctorCallback(Callback):
    """Watches a Lightning ``fit`` and judges it when it ends: ``callback.report``.

    ``every`` and ``max_overhead``: as for :func:`lstm_doctor.watch` (the
    least spacing of sampled steps, widened to keep the share of the step time;
    ``max_overhead=None`` samples exactly every ``every`` steps). ``monitor``: the logged
    validation loss (``self.log("val_loss", ...)`` in ``validation_step``).
    ``path``: where to write the report (.json or .html), if anywhere.
    ``task``: regression, binary or multiclass (inferred when not given).
    Collapsed predictions (T307) are judged from the module's ``forward`` on
    sampled batches; a module without ``forward`` gets no such judgment.
    """

    def __init__(self, every: int = 50, *, monitor: str = "val_loss", path: str | Path | None = None, task: str | None = None,
                 max_overhead: float | None = MAX_OVERHEAD):
        super().__init__()
        self.every, self.monitor, self.path, self.task = every, monitor, path, task
        self.max_overhead = max_overhead
        self._forward = True  # the module's forward gives predictions (for the prediction spread, T307)
        self.watch: Watch | None = None
        self.report: Report | None = None
        self._post_hook = None

    def on_fit_start(self, trainer: Any, pl_module: torch.nn.Module) -> None:
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        self.watch = Watch(pl_module, optimizer, self.every, task=self.task, max_overhead=self.max_overhead, step_hooks=False)
        self.watch.start()
        if optimizer is not None:
            self._post_hook = optimizer.register_step_post_hook(lambda *_: self.watch.after_step())

    def on_before_optimizer_step(self, trainer: Any, pl_module: torch.nn.Module, optimizer: Any) -> None:
        self.watch.before_step()

    def on_train_batch_end(self, trainer: Any, pl_module: torch.nn.Module, outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        predictions, targets = None, None
        if self._forward and self.watch.just_sampled() and isinstance(batch, (tuple, list)) and len(batch) >= 2 \
                and all(isinstance(t, torch.Tensor) for t in batch[:2]):
            with self.watch.sampling_work(), probing(pl_module), torch.no_grad():
                try:
                    predictions, targets = pl_module(batch[0]), batch[1]
                except NotImplementedError:  # a LightningModule need not define forward: no prediction spread then
                    self._forward = False
        self.watch.log(loss, predictions if isinstance(predictions, torch.Tensor) else None, targets)

    def on_validation_end(self, trainer: Any, pl_module: torch.nn.Module) -> None:
        metrics = trainer.callback_metrics  # this validation's epoch-level values
        if not trainer.sanity_checking and self.monitor in metrics:
            extra = {k.removeprefix("val_"): float(v) for k, v in metrics.items()
                     if k.startswith("val_") and k != self.monitor and torch.as_tensor(v).numel() == 1}
            self.watch.log_val(float(metrics[self.monitor]), **extra)

    def on_fit_end(self, trainer: Any, pl_module: torch.nn.Module) -> None:
        if self._post_hook is not None:
            self._post_hook.remove()
        self.report = self.watch.report()
        self.report.setup.update(source="lightning", epochs=trainer.current_epoch)
        if self.path is not None:
            save(self.report, self.path)
