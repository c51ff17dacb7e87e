"""``BaseVisionModule``: what every task's LightningModule shares.

AdamW without weight decay on biases and norms; a per-step learning-rate
schedule (linear warm-up, then cosine, step or none; or plateau per epoch);
normalisation on the device when the data module leaves it to the model;
channels_last for CNNs; a NaN/inf loss stops training with a message instead
of corrupting the weights (the step is skipped, the last good checkpoint kept).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import torch

from engine.metrics.distributed import sum_across_ranks

from .collate import IMAGENET_MEAN, IMAGENET_STD, normalize_batch
from .lr_schedule import SCHEDULERS, lr_factor


class NonFiniteLossError(RuntimeError):
    """Training stopped because the loss became NaN or infinite."""


class BaseVisionModule(pl.LightningModule):
    task: str = ""
    #: metric that picks the best checkpoint, and whether higher is better
    monitor: str = "val/loss"
    monitor_mode: str = "min"

    def __init__(
        self,
        *,
        lr: float = 1e-4,
        weight_decay: float = 1e-4,
        scheduler: str = "cosine",
        warmup_steps: int = 0,
        step_size: int = 10,
        gamma: float = 0.1,
        normalize_on_device: bool = False,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        channels_last: bool = False,
    ):
        super().__init__()
        if scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {', '.join(SCHEDULERS)}, got '{scheduler}'")
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        self.lr, self.weight_decay = lr, weight_decay
        self.scheduler_name, self.warmup_steps = scheduler, warmup_steps
        self.step_size, self.gamma = step_size, gamma
        self.normalize_on_device = normalize_on_device
        self.mean, self.std = tuple(mean), tuple(std)
        self.use_channels_last = channels_last
        self.nonfinite_step: int | None = None
        self.last_train_loss: torch.Tensor | None = None
        self._validation_losses: dict[str, torch.Tensor] = {}  # name -> (sum of loss x images, images)
        self.log_every_n_steps = 10

    # ---------------------------------------------------------------- model hooks
    def compute_loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, Any]:
        """(loss, model outputs) for a batch; tasks implement it."""
        raise NotImplementedError

    def check_data(self, datamodule: Any) -> None:
        """Raise a clear error when the data does not fit the model (e.g. label counts)."""

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is not None:
            datamodule.setup(stage)
            self.check_data(datamodule)
        if self.use_channels_last:
            self.to(memory_format=torch.channels_last)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if isinstance(batch, dict) and "pixel_values" in batch:
            pixels = batch["pixel_values"]
            if self.normalize_on_device and pixels.dtype == torch.uint8:
                pixels = normalize_batch(pixels, self.mean, self.std)
            if self.use_channels_last:
                pixels = pixels.contiguous(memory_format=torch.channels_last)
            batch["pixel_values"] = pixels
        return batch

    # ---------------------------------------------------------------- steps
    def training_step(self, batch: dict[str, Any], batch_idx: int):
        loss, _ = self.compute_loss(batch)
        if not self._finite_on_every_process(loss):
            # Skip the update so the weights (and the next checkpoint) stay good, then stop.
            self.nonfinite_step = int(self.global_step)
            self.trainer.should_stop = True
            return None if self.trainer.world_size == 1 else self._loss_that_changes_nothing()
        # Lightning divides the step's output by accumulate_grad_batches before callbacks see
        # it; the MLflow callback logs this unscaled value instead.
        self.last_train_loss = loss.detach()
        # Lightning's logging costs about a millisecond a call; every few steps is enough for the
        # progress bar (the MLflow callback reads the loss from the step's output itself).
        if batch_idx % self.log_every_n_steps == 0:
            self.log("train/loss", loss.detach(), prog_bar=True, batch_size=self._batch_size(batch))
        return loss

    def _finite_on_every_process(self, loss: torch.Tensor) -> bool:
        """Whether the step's loss is finite on every process: one process skipping its update
        and stopping alone would leave the others waiting for its gradients, so all agree."""
        finite = bool(torch.isfinite(loss))
        trainer = self._trainer
        if trainer is None or trainer.world_size == 1:
            return finite
        return trainer.strategy.reduce_boolean_decision(finite, all=True)

    def _loss_that_changes_nothing(self) -> torch.Tensor:
        """The last step's loss on several processes, where Lightning does not allow skipping a
        step and DDP waits for every process's gradients: zero gradients for every parameter,
        taken with a learning rate of 0 (AdamW's momentum and weight decay would still move the
        weights), so every process keeps the weights it had."""
        for optimizer in self.trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = 0.0
        return torch.stack([(p * 0).sum() for p in self.parameters() if p.requires_grad]).sum()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        loss, outputs = self.compute_loss(batch)
        self.add_validation_loss("val/loss", self.image_losses(loss, outputs), self._batch_size(batch))
        self.update_metrics(batch, outputs)

    def image_losses(self, loss: torch.Tensor, outputs: Any) -> torch.Tensor:
        """Each image's loss where the task can tell it (a vector), else the batch's mean loss.

        Only a mean of per-image losses is the same however the images are batched (as they
        are differently on another number of processes)."""
        return loss

    def add_validation_loss(self, name: str, loss: torch.Tensor, batch_size: int) -> None:
        """Add a batch's loss to the validation-set mean logged as ``name`` at the epoch's end:
        its images' losses (a vector), or its mean loss over ``batch_size`` images."""
        loss = loss.detach().float()
        if loss.dim() == 1:
            batch = torch.stack([loss.sum(), torch.tensor(float(loss.numel()), device=loss.device)])
        else:
            batch = torch.stack([loss * batch_size, torch.full_like(loss, batch_size)])
        total = self._validation_losses.get(name)
        self._validation_losses[name] = batch if total is None else total + batch

    def on_validation_epoch_end(self) -> None:
        """Log each added loss as its mean over every validation image of every process.

        Not Lightning's ``sync_dist`` mean: it divides the summed image count by the number
        of processes as an integer, which is wrong when their shares differ (7 images on 2).
        Tasks call this first from their own ``on_validation_epoch_end``.
        """
        names = sorted(self._validation_losses)
        if names:
            totals = sum_across_ranks(torch.stack([self._validation_losses[n] for n in names]))
            for name, (loss_sum, images) in zip(names, totals.tolist()):
                self.log_validation_metric(name, loss_sum / max(images, 1.0), prog_bar=name == "val/loss")
        self._validation_losses = {}

    def update_metrics(self, batch: dict[str, Any], outputs: Any) -> None:
        """Accumulate validation metrics; tasks implement it."""

    def log_validation_metric(self, name: str, value: float, prog_bar: bool = False) -> None:
        """Log a whole-validation-set value, which every process already holds (the metrics
        combine their state across processes), so the checkpoint monitor agrees everywhere.

        ``sync_dist`` with ``max`` leaves identical values exact (a mean of N copies can round)
        and keeps Lightning from warning that an epoch value was not synchronised.
        """
        self.log(name, float(value), prog_bar=prog_bar, sync_dist=True, reduce_fx="max")

    @staticmethod
    def _batch_size(batch: dict[str, Any]) -> int:
        return int(batch["pixel_values"].shape[0])

    # ---------------------------------------------------------------- optimisation
    def parameter_groups(self) -> list[dict[str, Any]]:
        decay, no_decay = [], []
        for name, param in self.named_parameters():
            if not param.requires_grad:
                continue
            # Biases and normalisation weights are not regularised (standard for AdamW).
            (no_decay if param.ndim <= 1 or name.endswith(".bias") else decay).append(param)
        return [{"params": decay, "weight_decay": self.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]

    def configure_optimizers(self):
        fused = self.device.type == "cuda"
        optimizer = torch.optim.AdamW(self.parameter_groups(), lr=self.lr, fused=fused or None)
        total = max(int(self.trainer.estimated_stepping_batches), 1) if self._trainer is not None else 1000
        steps_per_epoch = self._optimizer_steps_per_epoch(total)
        warmup = max(int(self.warmup_steps), 0)

        def factor(step: int) -> float:
            return lr_factor(
                self.scheduler_name,
                step,
                total=total,
                warmup=warmup,
                steps_per_epoch=steps_per_epoch,
                step_size=self.step_size,
                gamma=self.gamma,
            )

        if self.scheduler_name != "plateau":
            stepwise = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
            return [optimizer], [{"scheduler": stepwise, "interval": "step"}]
        # Plateau reacts to validation per epoch; its warm-up is applied in on_train_batch_start,
        # since a LambdaLR would overwrite the reductions every step.
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=self.monitor_mode, factor=self.gamma, patience=max(self.step_size // 5, 1)
        )
        return [optimizer], [{"scheduler": plateau, "interval": "epoch", "monitor": self.monitor, "strict": False}]

    def _optimizer_steps_per_epoch(self, total: int) -> int:
        """Optimizer steps in one epoch, from the train loader (not total // max_epochs:
        max_steps can end the run before max_epochs, which made an "epoch" too short)."""
        if self._trainer is None:
            return total
        # estimated_stepping_batches (called first) has set up the train loader and its batch count.
        batches = self.trainer.num_training_batches
        if not isinstance(batches, int) or batches <= 0:  # an iterable without a length
            return max(total // max(int(self.trainer.max_epochs or 1), 1), 1)
        return max(math.ceil(batches / max(int(self.trainer.accumulate_grad_batches), 1)), 1)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self.scheduler_name == "plateau" and self.global_step < self.warmup_steps:
            for group in self.trainer.optimizers[0].param_groups:
                group["lr"] = self.lr * (self.global_step + 1) / self.warmup_steps
