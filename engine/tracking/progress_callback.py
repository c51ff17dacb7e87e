"""``ProgressEvents``: a Lightning callback that writes the run's progress as JSON lines.

The format is :mod:`engine.tracking.progress_events`'. Lines go to stderr (stdout carries a
command's result), from rank 0 only, at most :data:`MIN_INTERVAL_S` apart, except an
epoch's start and end and the run's last step, which are always written. The remaining
time is timed here, from the steps since the first batch ended (validation included, so
the estimate holds over epochs), so the reader needs no clock of its own.
"""

from __future__ import annotations

import math
import sys
import time
from typing import IO, Any

import lightning.pytorch as pl
import torch

from engine.tracking.progress_events import encode_event

#: Fewest seconds between two step lines (about four a second).
MIN_INTERVAL_S = 0.25


def _number(value: Any) -> float | None:
    """A finite float from a number or a one-element tensor; None otherwise."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            return None
        value = value.detach().float().item()
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _count(value: Any) -> int | None:
    """A whole count, or None for an unknown (infinite) one."""
    return int(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


class ProgressEvents(pl.Callback):
    """Writes epoch, batch, step, total steps, ETA and the latest loss as JSON lines.

    ``steps`` overrides the run's total (the learning-rate finder sets its own step limit);
    ``stream`` is where the lines go (stderr when None, looked up when written).
    """

    def __init__(
        self, steps: int | None = None, stream: IO[str] | None = None, min_interval_s: float = MIN_INTERVAL_S
    ) -> None:
        super().__init__()
        self.steps = steps
        self.stream = stream
        self.min_interval_s = min_interval_s
        self._first: tuple[float, int] | None = None  # (time, step) when the first batch ended
        self._last_write = -math.inf

    # ------------------------------------------------------------------ Lightning hooks
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._first, self._last_write = None, -math.inf

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._write(trainer, "epoch_start", batch=0)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not trainer.is_global_zero:
            return
        now = time.monotonic()
        if self._first is None:
            self._first = (now, trainer.global_step)
        done = batch_idx + 1
        steps = self._total_steps(trainer)
        last = done == _count(trainer.num_training_batches) or (steps is not None and trainer.global_step >= steps)
        if not last and now - self._last_write < self.min_interval_s:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        self._write(trainer, "step", batch=done, loss=_number(loss), now=now)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metrics = {
            key: number for key, value in trainer.callback_metrics.items() if (number := _number(value)) is not None
        }
        self._write(trainer, "epoch_end", batch=_count(trainer.num_training_batches), metrics=metrics)

    # ------------------------------------------------------------------ the line
    def _total_steps(self, trainer: pl.Trainer) -> int | None:
        return self.steps if self.steps is not None else _count(trainer.estimated_stepping_batches)

    def _eta_s(self, step: int, steps: int | None, now: float) -> float | None:
        if self._first is None or steps is None:
            return None
        began, first_step = self._first
        if step <= first_step or now <= began:
            return None
        return round(max(0, steps - step) * (now - began) / (step - first_step), 1)

    def _epochs(self, trainer: pl.Trainer, steps: int | None) -> int | None:
        """The epochs the run will take: its limit, or fewer where the step limit comes first."""
        batches = _count(trainer.num_training_batches)
        limit = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs >= 0 else None
        if steps is None or not batches:
            return limit
        per_epoch = max(1, math.ceil(batches / max(1, trainer.accumulate_grad_batches)))
        by_steps = math.ceil(steps / per_epoch)
        return by_steps if limit is None else min(limit, by_steps)

    def _write(
        self, trainer: pl.Trainer, event: str, *, batch: int | None, now: float | None = None, **extra: Any
    ) -> None:
        if not trainer.is_global_zero:
            return
        now = time.monotonic() if now is None else now
        step, steps = trainer.global_step, self._total_steps(trainer)
        fields = dict(
            epoch=trainer.current_epoch + 1,
            epochs=self._epochs(trainer, steps),
            batch=batch,
            batches=_count(trainer.num_training_batches),
            step=step,
            steps=steps,
            eta_s=self._eta_s(step, steps, now),
        )
        fields.update({key: value for key, value in extra.items() if value is not None})
        stream = self.stream if self.stream is not None else sys.stderr
        print(encode_event(event, **fields), file=stream, flush=True)
        self._last_write = now


__all__ = ["MIN_INTERVAL_S", "ProgressEvents"]
