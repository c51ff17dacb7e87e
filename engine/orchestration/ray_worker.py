"""Inside a Ray Train worker: the data module, task module and Trainer of one process of a
``compute.strategy: ray`` run.

Imported by the workers only (the driver, :mod:`engine.orchestration.ray_train`, stays free of
torch until it trains). Every epoch the workers report their metrics and rank 0's checkpoint
to Ray Train, which keeps the best one (by the task module's ``monitor``) and the latest; the
driver then copies both into the run folder. Rank 0 returns how the training ended (stopped
on request, loss no longer finite), which the driver turns into the run's status.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from engine.config import RunConfig
from engine.orchestration.ray_reports import CHECKPOINT_NAME, NONFINITE_KEY, STOPPED_KEY


def ray_trainer_settings(
    callbacks: list, *, find_unused_parameters: bool = False, report: Any = None
) -> dict[str, Any]:
    """Keyword arguments for ``pl.Trainer`` inside a Ray Train worker (DDP over Ray's process group).

    ``report``: the callback that reports each epoch to Ray (Ray's own when None);
    ``find_unused_parameters``: see :func:`engine.models.ddp.has_unused_parameters`.
    """
    from ray.train.lightning import RayDDPStrategy, RayLightningEnvironment, RayTrainReportCallback

    return dict(
        strategy=RayDDPStrategy(find_unused_parameters=find_unused_parameters),
        plugins=[RayLightningEnvironment()],
        callbacks=[*callbacks, report if report is not None else RayTrainReportCallback()],
        devices="auto",
        accelerator="auto",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )


def worst_score(mode: str) -> float:
    """The score that ranks below every real one (Ray ranks a checkpoint without the
    monitored metric as the best under ``min``: it must never push out a real best)."""
    return math.inf if mode == "min" else -math.inf


class ReportEpochToRay(pl.Callback):
    """Reports each epoch's metrics, and a checkpoint saved by rank 0, to Ray Train.

    ``extra`` goes into every report (the MLflow run id, for a Tune trial). A checkpoint is
    written only while the loss is finite, so the last good one stays the latest.
    """

    def __init__(self, monitor: str, mode: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.monitor, self.mode = monitor, mode
        self.extra = dict(extra or {})

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        import ray.train

        metrics: dict[str, Any] = {}
        for key, value in trainer.callback_metrics.items():
            if getattr(value, "numel", lambda: 0)() == 1:
                metrics[key] = float(value)
        metrics.setdefault(self.monitor, worst_score(self.mode))
        metrics.update(self.extra, epoch=trainer.current_epoch, step=trainer.global_step)
        # Decided together: a rank that skips the (collective) save would stall the others.
        nonfinite = trainer.strategy.reduce_boolean_decision(
            getattr(pl_module, "nonfinite_step", None) is not None, all=False
        )
        if nonfinite:
            ray.train.report(metrics)
            return
        with tempfile.TemporaryDirectory(prefix="lightbox-ray-ckpt-") as folder:
            trainer.save_checkpoint(str(Path(folder) / CHECKPOINT_NAME))  # collective; rank 0 writes
            checkpoint = ray.train.Checkpoint.from_directory(folder) if trainer.is_global_zero else None
            ray.train.report(metrics, checkpoint=checkpoint)


def train_worker(loop_config: dict[str, Any]) -> dict[str, Any]:
    """One worker's training; rank 0's answer says whether it was stopped or the loss went NaN."""
    import ray.train
    from ray.train.lightning import prepare_trainer

    from engine.models.ddp import has_unused_parameters
    from engine.orchestration.builders import build_datamodule, build_module
    from engine.orchestration.speed import speed_settings
    from engine.orchestration.trainer import build_trainer, quiet_known_noise
    from engine.tracking.callback import MlflowCallback

    quiet_known_noise()
    config = RunConfig.from_dict(loop_config["config"], "ray train worker")
    speed = speed_settings(
        config.with_overrides({"compute.accelerator": "gpu" if config.compute.use_gpu else "cpu", "compute.devices": 1})
    )
    pl.seed_everything(config.optim.seed, workers=True, verbose=False)
    datamodule = build_datamodule(config, speed)
    module = build_module(config, datamodule, speed)
    module.log_every_n_steps = config.tracking.log_every_n_steps
    rank = ray.train.get_context().get_world_rank()
    if rank == 0 and loop_config["tracking_uri"]:
        from engine.tracking.logger import RunLogger

        logger = RunLogger(
            loop_config["tracking_uri"], run_id=loop_config["run_id"], workspace=loop_config["workspace"]
        )
    else:  # the other ranks log nothing: rank 0 writes for all of them
        from engine.tracking.shared_run import RankLogger

        logger = RankLogger(loop_config["run_id"])
    mlflow_cb = MlflowCallback(logger, log_every_n_steps=config.tracking.log_every_n_steps)
    report = ReportEpochToRay(module.monitor, module.monitor_mode, loop_config.get("report_extra"))
    settings = ray_trainer_settings(
        [mlflow_cb, *loop_config.get("callbacks", [])],
        report=report,
        find_unused_parameters=has_unused_parameters(module.model),
    )
    trainer = prepare_trainer(build_trainer(speed, config, **settings))
    checkpoint = ray.train.get_checkpoint()
    try:
        if checkpoint:  # a restart after a lost worker: go on from the newest checkpoint
            with checkpoint.as_directory() as folder:
                trainer.fit(module, datamodule=datamodule, ckpt_path=str(Path(folder) / CHECKPOINT_NAME))
        else:
            trainer.fit(module, datamodule=datamodule)
    finally:
        logger.flush()  # the driver ends the run once every worker is done
    return {STOPPED_KEY: bool(mlflow_cb.stopped_by_request), NONFINITE_KEY: module.nonfinite_step}
