"""``MlflowCallback``: feeds a ``RunLogger`` from a Lightning ``Trainer``.

Training metrics are sampled every ``log_every_n_steps`` optimizer steps (each
sample costs a GPU sync for ``.item()``); validation metrics are logged once
per validation run.  The callback also turns a stop request from the app into
``trainer.should_stop``.  It never ends the run on success: the training code
calls ``RunLogger.finish`` with ``final_status``.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl
import torch

from engine.tracking.tags import (
    BEST_CHECKPOINT_TAG,
    BEST_MONITOR_TAG,
    BEST_SCORE_METRIC,
    CONFUSION_MATRIX_FILE,
    STOPPED_TAG,
)

if TYPE_CHECKING:  # the callback also drives LocalRunLogger, so MLflow stays optional
    from engine.tracking.logger import RunLogger

log = logging.getLogger(__name__)


def _to_float(value: Any) -> float | None:
    """A Python float from a number or one-element tensor; None for anything else."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            return None
        return float(value.detach().float().item())
    if isinstance(value, (int, float)):
        return float(value)
    return None


def _batch_size(batch: Any) -> int:
    """Images in a batch; Lightbox batches are dicts holding ``pixel_values``."""
    images = batch.get("pixel_values") if isinstance(batch, dict) else None
    if images is None and isinstance(batch, (list, tuple)) and batch:
        images = batch[0]  # (images, targets) batches of plain datasets
    if isinstance(images, torch.Tensor):
        return int(images.shape[0]) if images.dim() > 0 else 1
    if isinstance(images, (list, tuple)):
        return len(images)
    return 0


def last_logged_steps(logger: Any) -> dict[str, int]:
    """The highest step of each metric the run already holds (earlier attempts of a resumed run)."""
    from engine.tracking.local_run import LocalRunLogger, read_metrics

    if isinstance(logger, LocalRunLogger):
        points = [(m["key"], int(m["step"])) for m in read_metrics(logger.folder.parent)]
    elif getattr(logger, "tracking_uri", None) and getattr(logger, "run_id", None):
        from engine.tracking.history import metric_history

        points = [
            (key, step)
            for key, history in metric_history(logger.tracking_uri, logger.run_id).items()
            for step, _, _ in history
        ]
    else:
        return {}
    last: dict[str, int] = {}
    for key, step in points:
        last[key] = max(step, last.get(key, step))
    return last


class MlflowCallback(pl.Callback):
    def __init__(self, logger: RunLogger, log_every_n_steps: int = 10) -> None:
        super().__init__()
        if log_every_n_steps < 1:
            raise ValueError("log_every_n_steps must be at least 1")
        self.logger = logger
        self.log_every_n_steps = int(log_every_n_steps)
        self.stopped_by_request = False
        self._last_logged_step = -1
        self._images = 0
        self._window_start = time.perf_counter()
        self._reported_best: str | None = None
        # Per metric, the last step earlier attempts logged: a run resumed from a checkpoint
        # replays the steps after it, and those already have their point.
        self._logged_before: dict[str, int] = {}

    @property
    def final_status(self) -> str:
        """The status to finish a run with when fit() returned normally."""
        return "KILLED" if self.stopped_by_request else "FINISHED"

    # ------------------------------------------------------------------ training
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        try:
            self._logged_before = last_logged_steps(self.logger)
        except Exception as exc:  # tracking trouble must not end the training
            log.warning(
                "could not read the metrics this run already has (%s): a resumed run may log replayed steps twice", exc
            )

    def _log(self, metrics: dict[str, float], step: int) -> None:
        fresh = {key: value for key, value in metrics.items() if step > self._logged_before.get(key, -1)}
        if fresh:
            self.logger.log_metrics(fresh, step)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restart_window()

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._images += _batch_size(batch)
        step = trainer.global_step
        # With gradient accumulation several batches share one global_step: log it once.
        # The first step and each epoch's last one are logged too, so short runs still get a curve.
        epoch_end = batch_idx + 1 >= trainer.num_training_batches
        due = (step % self.log_every_n_steps == 0 or step == 1 or epoch_end) and step != self._last_logged_step
        if due:
            self._last_logged_step = step
            if trainer.is_global_zero:
                self._log_train(trainer, outputs, step)
                self._report_best(trainer)
        self._check_stop(trainer, due)

    def _log_train(self, trainer: pl.Trainer, outputs: Any, step: int) -> None:
        metrics: dict[str, float] = {}
        # Lightbox modules keep the step's loss before Lightning divides it by
        # accumulate_grad_batches; other modules' outputs are scaled back.
        value = _to_float(getattr(trainer.lightning_module, "last_train_loss", None))
        if value is None:
            value = _to_float(outputs.get("loss") if isinstance(outputs, dict) else outputs)
            if value is not None:
                value *= max(int(trainer.accumulate_grad_batches), 1)
        if value is None:  # manual optimisation returns nothing; fall back on what was self.log-ged
            cb = trainer.callback_metrics
            value = _to_float(cb.get("train/loss", cb.get("loss")))
        if value is not None:
            metrics["train/loss"] = value
        if trainer.optimizers:
            metrics["lr"] = float(trainer.optimizers[0].param_groups[0]["lr"])
        elapsed = time.perf_counter() - self._window_start
        if self._images and elapsed > 0:
            # Each process sees its own share of the batch.
            metrics["train/throughput_img_s"] = self._images * trainer.world_size / elapsed
        self._restart_window()
        if metrics:
            self._log(metrics, step)

    def _restart_window(self) -> None:
        self._images = 0
        self._window_start = time.perf_counter()

    def _check_stop(self, trainer: pl.Trainer, due: bool) -> None:
        if trainer.world_size > 1:
            if not due:  # agreeing across processes is a collective call: only at log steps
                return
            stop = trainer.strategy.reduce_boolean_decision(self.logger.stop_requested(), all=False)
        else:
            stop = self.logger.stop_requested()
        if stop and not self.stopped_by_request:
            self.stopped_by_request = True
            trainer.should_stop = True

    # ------------------------------------------------------------------ validation
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Not on_validation_epoch_end: callbacks run that hook before Lightning moves the
        # module's epoch-level values into callback_metrics, so they would be one epoch late.
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        metrics: dict[str, float] = {}
        for key, value in trainer.callback_metrics.items():
            if key.startswith("val/"):
                number = _to_float(value)
                if number is not None:
                    metrics[key] = number
        if metrics:
            metrics["epoch"] = float(trainer.current_epoch)
            self._log(metrics, trainer.global_step)
        self._log_confusion_matrix(pl_module)
        self._report_best(trainer)
        self._restart_window()  # validation time is not training throughput

    def _log_confusion_matrix(self, pl_module: pl.LightningModule) -> None:
        """The latest validation confusion matrix (rows: true class) as ``confusion_matrix.json``."""
        matrix = getattr(pl_module, "last_confusion_matrix", None)
        if matrix is None:
            return
        import json

        names = getattr(pl_module, "id2label", None) or {}
        rows = matrix.tolist() if hasattr(matrix, "tolist") else [list(r) for r in matrix]
        labels = [str(names.get(i, i)) for i in range(len(rows))]
        try:
            self.logger.log_text(json.dumps({"labels": labels, "matrix": rows}), CONFUSION_MATRIX_FILE)
        except Exception:  # an artifact store problem must not end the training
            return

    def _report_best(self, trainer: pl.Trainer) -> None:
        """Tag the best checkpoint whenever ModelCheckpoint has a new one.

        Lightning runs ModelCheckpoint after the other callbacks, so a new best shows
        up at the next call (next log step, validation or fit end), not the same one.
        """
        ckpt = trainer.checkpoint_callback
        path = getattr(ckpt, "best_model_path", "") if ckpt is not None else ""
        if not path or path == self._reported_best:
            return
        self._reported_best = path
        self.logger.set_tag(BEST_CHECKPOINT_TAG, path)
        monitor = getattr(ckpt, "monitor", None)
        if monitor:
            self.logger.set_tag(BEST_MONITOR_TAG, monitor)
        score = _to_float(getattr(ckpt, "best_model_score", None))
        if score is not None and not math.isnan(score):
            self._log({BEST_SCORE_METRIC: score}, trainer.global_step)

    # ------------------------------------------------------------------ end
    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        # Make the metrics durable up to the checkpoint: a killed run resumes from there,
        # so its curve then has no gap and no loss.
        self.logger.flush()

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        self._report_best(trainer)
        if self.stopped_by_request:
            self.logger.set_tag(STOPPED_TAG, "true")
        self.logger.flush()  # so the app sees the last points before the run is marked done

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if trainer.is_global_zero:
            # SIGTERM (``lightbox jobs stop``, a cluster ending the job) is a stop, not a failure.
            from lightning.pytorch.utilities.exceptions import SIGTERMException

            stopped = isinstance(exception, (KeyboardInterrupt, SIGTERMException))
            self.logger.finish("KILLED" if stopped else "FAILED")
