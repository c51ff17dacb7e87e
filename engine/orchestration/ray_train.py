"""``compute.strategy: ray``: data-parallel training with Ray Train's TorchTrainer.

Each of ``compute.num_workers`` workers builds the same data module and task
module as a local run (:mod:`engine.orchestration.ray_worker`) and trains them
with Lightning under ``ray.train.lightning`` (``RayDDPStrategy``,
``RayLightningEnvironment``, ``prepare_trainer``), so gradients are averaged
across workers every step. The MLflow run is created by the driver; only rank 0
logs into it. Ray Train keeps its checkpoints under ``<workspace>/ray_train/<run_id>``
(the best by the task's monitor, and the latest); with ``FailureConfig`` a lost
worker restarts the group from the newest one, into the same MLflow run. At the
end the driver copies the best and the latest into the run folder, where a local
run keeps its own (``checkpoints/best-epoch=E-step=S.ckpt`` and ``last.ckpt``).
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from engine.config import RunConfig
from engine.orchestration.checkpoints import FINAL_CHECKPOINT
from engine.orchestration.errors import TrainingError
from engine.orchestration.ray_cluster import start_ray
from engine.orchestration.ray_reports import CHECKPOINT_NAME, NONFINITE_KEY, RUN_ID_KEY, STOPPED_KEY
from engine.orchestration.result import STOPPED_MESSAGE, TrainResult, nonfinite_message
from engine.orchestration.run_folder import open_run, start_run_folder, workspace_of
from engine.tracking.tags import (
    BEST_CHECKPOINT_TAG,
    BEST_MONITOR_TAG,
    BEST_SCORE_METRIC,
    LAST_CHECKPOINT_TAG,
    NUM_WORKERS_TAG,
    STRATEGY_TAG,
    TASK_TAG,
)

MAX_FAILURES = 2


@dataclass
class KeptCheckpoints:
    best: Path | None = None
    best_score: float = math.nan
    best_step: int = 0
    last: Path | None = None


def _copy_checkpoint(checkpoint, target: Path) -> Path:
    """The Lightning file of a Ray checkpoint copied to ``target`` (written whole, then renamed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    with checkpoint.as_directory() as folder:
        shutil.copyfile(Path(folder) / CHECKPOINT_NAME, partial)
    os.replace(partial, target)
    return target


def keep_checkpoints(result, folder: Path, monitor: str, mode: str) -> KeptCheckpoints:
    """Copy the best checkpoint Ray kept (by ``monitor``) and the latest into ``folder``.

    Named as a local run names them, so whatever reads a run's checkpoints finds these.
    """
    kept = KeptCheckpoints()
    candidates = list(result.best_checkpoints or [])
    if result.checkpoint is not None:
        candidates.append((result.checkpoint, result.metrics or {}))
    scored = [
        (float(metrics[monitor]), checkpoint, metrics)
        for checkpoint, metrics in candidates
        if isinstance(metrics.get(monitor), (int, float)) and math.isfinite(float(metrics[monitor]))
    ]
    if scored:
        score, checkpoint, metrics = (min if mode == "min" else max)(scored, key=lambda item: item[0])
        epoch, step = int(metrics.get("epoch", 0)), int(metrics.get("step", 0))
        kept.best = _copy_checkpoint(checkpoint, folder / f"best-epoch={epoch}-step={step}.ckpt")
        kept.best_score, kept.best_step = score, step
    if result.checkpoint is not None:
        kept.last = _copy_checkpoint(result.checkpoint, folder / FINAL_CHECKPOINT)
    return kept


def train_distributed(
    config: RunConfig,
    *,
    tracking_uri: str | None = None,
    storage_path: str | Path | None = None,
    callbacks: list | None = None,
    tags: dict | None = None,
    ray_callbacks: list | None = None,
) -> TrainResult:
    """Train ``config`` on ``compute.num_workers`` Ray Train workers; one MLflow run for all of them.

    ``callbacks``: extra Lightning callbacks, pickled to every worker; ``tags``: extra MLflow run
    tags; ``ray_callbacks``: Ray Train callbacks of the run (a Tune trial forwards reports with one).
    The best checkpoint (by the task module's monitor) and the latest end up in the run folder's
    ``checkpoints/``, named as a local run names them, so eval, export and predict find them.
    """
    from ray.train import CheckpointConfig, FailureConfig, ScalingConfig
    from ray.train import RunConfig as RayRunConfig
    from ray.train.torch import TorchTrainer

    from engine.orchestration.ray_worker import train_worker  # torch and Lightning: only once it trains
    from engine.recipes import resolve_recipe
    from engine.tasks.registry import get_task
    from engine.tracking.store import resolve_tracking_uri

    if not config.data.path or not Path(config.data.path).expanduser().is_dir():
        raise TrainingError(f"dataset folder {config.data.path!r} does not exist (set data.path)")
    config = resolve_recipe(config)
    workspace = workspace_of(config)
    uri = resolve_tracking_uri(tracking_uri or config.tracking.uri, workspace)
    config = config.with_overrides(
        {"data.path": str(Path(config.data.path).expanduser().resolve()), "workspace": str(workspace)}
    )
    module_class = get_task(config.task.name).module_class
    monitor, mode = module_class.monitor, module_class.monitor_mode
    start_ray(config.compute.ray_address, TrainingError)
    run_logger = open_run(
        uri,
        workspace,
        experiment=config.tracking.experiment,
        run_name=config.tracking.run_name,
        run_id=None,
        tags={
            TASK_TAG: config.task.name,
            STRATEGY_TAG: "ray",
            NUM_WORKERS_TAG: config.compute.num_workers,
            **(tags or {}),
        },
    )
    with run_logger:
        run_dir = start_run_folder(run_logger, config, workspace)
        storage = Path(storage_path or workspace / "ray_train").expanduser().resolve()
        trainer = TorchTrainer(
            train_worker,
            train_loop_config={
                "config": config.model_dump(mode="json"),
                "run_id": run_logger.run_id,
                "tracking_uri": run_logger.tracking_uri,
                "workspace": str(workspace),
                "callbacks": list(callbacks or []),
                "report_extra": {RUN_ID_KEY: run_logger.run_id},
            },
            scaling_config=ScalingConfig(num_workers=config.compute.num_workers, use_gpu=config.compute.use_gpu),
            run_config=RayRunConfig(
                name=run_logger.run_id,
                storage_path=str(storage),
                failure_config=FailureConfig(max_failures=MAX_FAILURES),
                callbacks=list(ray_callbacks or []),
                # Ray keeps the best by the monitor, and the latest besides.
                checkpoint_config=CheckpointConfig(
                    num_to_keep=1, checkpoint_score_attribute=monitor, checkpoint_score_order=mode
                ),
            ),
        )
        try:
            result = trainer.fit()
        except Exception as exc:  # Ray wraps the workers' errors in its own types
            run_logger.finish("FAILED")
            raise TrainingError(f"distributed training failed: {str(exc).strip().splitlines()[-1]}") from exc
        metrics = {
            k: float(v)
            for k, v in (result.metrics or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        kept = keep_checkpoints(result, run_dir / "checkpoints", monitor, mode)
        outcome = result.return_value or {}
        status, message = "FINISHED", None
        if outcome.get(NONFINITE_KEY) is not None:
            status = "FAILED"
            message = nonfinite_message(outcome[NONFINITE_KEY], kept.last)
        elif outcome.get(STOPPED_KEY):
            status, message = "KILLED", STOPPED_MESSAGE
        if kept.best:
            run_logger.set_tag(BEST_CHECKPOINT_TAG, str(kept.best))
            run_logger.set_tag(BEST_MONITOR_TAG, monitor)
            run_logger.log_metrics({BEST_SCORE_METRIC: kept.best_score}, kept.best_step)
        if kept.last:
            run_logger.set_tag(LAST_CHECKPOINT_TAG, str(kept.last))
        if status == "FINISHED":
            # The run's evaluation report (lightbox eval's, on the validation split), so a finished run has it.
            from engine.orchestration.evaluate import evaluate_finished_run

            evaluate_finished_run(config, run_dir, run_logger)
        run_logger.finish(status)
    return TrainResult(
        run_logger.run_id,
        status,
        str(kept.best) if kept.best else None,
        str(kept.last) if kept.last else None,
        metrics,
        message,
        run_logger.tracking_uri,
    )
