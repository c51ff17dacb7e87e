"""``compute.strategy: ray``: data-parallel training with Ray Train's TorchTrainer.

Each of ``compute.num_workers`` workers builds the same data module and task
module as a local run (:mod:`engine.orchestration.local`'s builders) and trains
them with Lightning under ``ray.train.lightning`` (``RayDDPStrategy``,
``RayLightningEnvironment``, ``RayTrainReportCallback``, ``prepare_trainer``), so
gradients are averaged across workers every step. The MLflow run is created by
the driver; only rank 0 logs into it. Checkpoints go to
``<workspace>/ray_train/<run_id>``; with ``FailureConfig`` a lost worker restarts
the group from the newest checkpoint, into the same MLflow run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engine.config import RunConfig
from engine.orchestration.local import TrainingError, TrainResult

MAX_FAILURES = 2
RAY_CONNECT_TIMEOUT_S = 5.0


def start_ray(address: str | None, error: type[Exception], env: dict[str, str] | None = None) -> None:
    """Attach to the cluster at ``address`` (``host:port``), or start a local Ray; once per process.

    The engine's folder goes on the workers' PYTHONPATH. An address nobody answers on is an
    ``error`` within seconds (``ray.init`` itself would wait for a minute or more).
    """
    import socket

    import ray

    if ray.is_initialized():
        return
    root = str(Path(__file__).resolve().parents[2])
    env_vars = {"PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
                "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})}
    attach = address if address and address not in ("local", "auto") else None
    if attach and not attach.startswith("ray://"):
        host, _, port = attach.rpartition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=RAY_CONNECT_TIMEOUT_S).close()
        except (OSError, ValueError) as exc:
            raise error(f"cannot reach the Ray cluster at {address}: {exc}") from None
    try:
        ray.init(address=attach or (address if address == "auto" else None), include_dashboard=False,
                 runtime_env={"env_vars": env_vars}, configure_logging=False)
    except ConnectionError as exc:
        raise error(f"cannot reach the Ray cluster at {address}: {exc}") from None


class _NullLogger:
    """What ranks other than 0 give the MLflow callback: they log nothing."""

    run_id = None

    def stop_requested(self) -> bool:
        return False

    def log_metrics(self, metrics, step) -> None:
        pass

    def set_tag(self, key, value) -> None:
        pass

    def flush(self) -> bool:
        return True

    def finish(self, status: str = "FINISHED") -> bool:
        return True


def ray_trainer_settings(callbacks: list) -> dict[str, Any]:
    """Keyword arguments for ``pl.Trainer`` inside a Ray Train worker (DDP over Ray's process group)."""
    from ray.train.lightning import RayDDPStrategy, RayLightningEnvironment, RayTrainReportCallback

    return dict(strategy=RayDDPStrategy(), plugins=[RayLightningEnvironment()],
                callbacks=[*callbacks, RayTrainReportCallback()], devices="auto", accelerator="auto",
                logger=False, enable_checkpointing=False, enable_progress_bar=False,
                enable_model_summary=False, num_sanity_val_steps=0)


def _worker(loop_config: dict[str, Any]) -> None:
    import lightning.pytorch as pl
    import ray.train
    from ray.train.lightning import RayTrainReportCallback, prepare_trainer

    from engine.orchestration.local import _quiet_known_noise, build_datamodule, build_module, speed_settings
    from engine.tracking.callback import MlflowCallback

    _quiet_known_noise()
    config = RunConfig.from_dict(loop_config["config"], "ray train worker")
    speed = speed_settings(config.with_overrides({"compute.accelerator": "gpu" if config.compute.use_gpu else "cpu",
                                                  "compute.devices": 1}))
    pl.seed_everything(config.optim.seed, workers=True, verbose=False)
    datamodule = build_datamodule(config, speed)
    module = build_module(config, datamodule, speed)
    module.log_every_n_steps = config.tracking.log_every_n_steps
    rank = ray.train.get_context().get_world_rank()
    if rank == 0 and loop_config["tracking_uri"]:
        from engine.tracking.logger import RunLogger

        logger = RunLogger(loop_config["tracking_uri"], run_id=loop_config["run_id"],
                           workspace=loop_config["workspace"])
    else:
        logger = _NullLogger()
    mlflow_cb = MlflowCallback(logger, log_every_n_steps=config.tracking.log_every_n_steps)
    trainer = pl.Trainer(max_epochs=config.optim.epochs, max_steps=config.optim.max_steps or -1,
                         precision=speed.precision, gradient_clip_val=config.optim.grad_clip,
                         accumulate_grad_batches=config.optim.accumulate_grad_batches,
                         **ray_trainer_settings([mlflow_cb, *loop_config.get("callbacks", [])]))
    trainer = prepare_trainer(trainer)
    checkpoint = ray.train.get_checkpoint()
    try:
        if checkpoint:
            with checkpoint.as_directory() as folder:
                trainer.fit(module, datamodule=datamodule,
                            ckpt_path=str(Path(folder) / RayTrainReportCallback.CHECKPOINT_NAME))
        else:
            trainer.fit(module, datamodule=datamodule)
    finally:
        logger.flush()  # the driver ends the run once every worker is done


def train_distributed(config: RunConfig, *, tracking_uri: str | None = None,
                      storage_path: str | Path | None = None, callbacks: list | None = None) -> TrainResult:
    """Train ``config`` on ``compute.num_workers`` Ray Train workers; one MLflow run for all of them.

    ``callbacks``: extra Lightning callbacks, pickled to every worker.
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig as RayRunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from engine.orchestration.local import TASK_TAG, open_run_logger, start_run_folder, workspace_of
    from engine.recipes import resolve_recipe
    from engine.tracking.store import resolve_tracking_uri

    if not config.data.path or not Path(config.data.path).expanduser().is_dir():
        raise TrainingError(f"dataset folder {config.data.path!r} does not exist (set data.path)")
    config = resolve_recipe(config)
    workspace = workspace_of(config)
    uri = resolve_tracking_uri(tracking_uri or config.tracking.uri, workspace)
    config = config.with_overrides({"data.path": str(Path(config.data.path).expanduser().resolve()),
                                    "workspace": str(workspace)})
    start_ray(config.compute.ray_address, TrainingError)
    run_logger = open_run_logger(uri, workspace, experiment=config.tracking.experiment,
                                 run_name=config.tracking.run_name, run_id=None,
                                 tags={TASK_TAG: config.task.name, "lightbox.strategy": "ray",
                                       "lightbox.num_workers": config.compute.num_workers})
    with run_logger:
        run_dir = start_run_folder(run_logger, config, workspace)
        storage = Path(storage_path or workspace / "ray_train").expanduser().resolve()
        trainer = TorchTrainer(
            _worker,
            train_loop_config={"config": config.model_dump(mode="json"), "run_id": run_logger.run_id,
                               "tracking_uri": run_logger.tracking_uri, "workspace": str(workspace),
                               "callbacks": list(callbacks or [])},
            scaling_config=ScalingConfig(num_workers=config.compute.num_workers, use_gpu=config.compute.use_gpu),
            run_config=RayRunConfig(name=run_logger.run_id, storage_path=str(storage),
                                    failure_config=FailureConfig(max_failures=MAX_FAILURES),
                                    checkpoint_config=CheckpointConfig(num_to_keep=1)),
        )
        try:
            result = trainer.fit()
        except Exception as exc:  # Ray wraps the workers' errors in its own types
            run_logger.finish("FAILED")
            raise TrainingError(f"distributed training failed: {str(exc).strip().splitlines()[-1]}") from exc
        metrics = {k: float(v) for k, v in (result.metrics or {}).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        last = None
        if result.checkpoint is not None:
            last = str(Path(result.checkpoint.path) / "checkpoint.ckpt")
            run_logger.set_tag("lightbox.last_checkpoint", last)
        run_logger.finish("FINISHED")
    return TrainResult(run_logger.run_id, "FINISHED", None, last, metrics, None, run_logger.tracking_uri)
