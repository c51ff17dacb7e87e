"""Train one run in this process: config -> data module + model + Trainer + MLflow.

``train_locally(resume_run_id=...)`` continues a run from its newest checkpoint into the
same MLflow run. With ``compute.devices`` above one, Lightning starts the other processes
by running the same command again; they find rank 0's run and folder
(:mod:`engine.tracking.shared_run`) and train in it.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from engine.config import RunConfig
from engine.orchestration.builders import build_datamodule, build_module
from engine.orchestration.checkpoints import (
    FINAL_CHECKPOINT,
    check_same_batching,
    guarded_checkpoint_class,
    newest_checkpoint,
    periodic_checkpoint_class,
)
from engine.orchestration.errors import TrainingError
from engine.orchestration.result import STOPPED_MESSAGE, TrainResult, nonfinite_message
from engine.orchestration.run_folder import locate_run, open_run, start_run_folder, workspace_of
from engine.orchestration.speed import process_count, speed_settings
from engine.orchestration.trainer import build_trainer, data_parallel_strategy
from engine.tracking.tags import (
    BEST_CHECKPOINT_TAG,
    DATA_PROBLEMS_TAG,
    DROPPED_IMAGES_TAG_PREFIX,
    LAST_CHECKPOINT_TAG,
    PROCESSES_TAG,
    TASK_TAG,
)


def train_locally(
    config: RunConfig | None = None,
    *,
    resume_run_id: str | None = None,
    tracking_uri: str | None = None,
    workspace: str | Path | None = None,
    progress: bool = True,
    callbacks: list | None = None,
    checkpoint_every_n_steps: int = 50,
    tags: dict | None = None,
) -> TrainResult:
    """Run (or resume) one training run here and return what happened (``tags``: extra MLflow run tags)."""
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.callbacks import TQDMProgressBar

    from engine.tracking.callback import MlflowCallback
    from engine.tracking.shared_run import RankLogger, SharedRun, ranks_share_run, shared_run_of_rank_zero
    from engine.tracking.store import resolve_tracking_uri

    # Set in the extra processes of a multi-device run, which Lightning starts by running the
    # same command again: they train in rank 0's run, from its folder and configuration.
    shared = shared_run_of_rank_zero()
    ckpt_path = None
    if shared is not None:
        run_dir = Path(shared.run_dir)
        config = RunConfig.load(run_dir / "run.yaml")
        ckpt_path = Path(shared.resume_checkpoint) if shared.resume_checkpoint else None
        uri = None
    elif resume_run_id:
        config, run_dir, ckpt_path, uri = resume_state(resume_run_id, tracking_uri, config, workspace)
    else:
        if config is None:
            raise TrainingError("give a run configuration or a run id to resume")
        uri = resolve_tracking_uri(tracking_uri or config.tracking.uri, workspace_of(config))
        run_dir = None
    from engine.recipes import resolve_recipe

    # "auto" settings made concrete, so run.yaml says what was used; a resumed run keeps
    # every choice its run.yaml recorded (only settings still on auto are filled in).
    config = resolve_recipe(config)
    workspace = workspace_of(config)
    checkpoint_name = config.model.checkpoint or ""
    from engine.recipe_optim import family_of

    speed = speed_settings(config, family_of(checkpoint_name))
    processes = process_count(speed, config)
    if ckpt_path is not None:
        check_same_batching(ckpt_path, config, processes, run_dir / "run.yaml")
    pl.seed_everything(config.optim.seed, workers=True, verbose=False)

    datamodule = build_datamodule(config, speed)
    module = build_module(config, datamodule, speed)
    module.log_every_n_steps = config.tracking.log_every_n_steps
    if speed.compile:
        module.model = torch.compile(module.model)

    if shared is not None:
        run_logger = RankLogger(shared.run_id)
    else:
        run_logger = open_run(
            uri,
            workspace,
            experiment=config.tracking.experiment,
            run_name=config.tracking.run_name,
            run_id=resume_run_id,
            tags={TASK_TAG: config.task.name, PROCESSES_TAG: processes, **(tags or {})},
        )
    if run_logger.tracking_uri is None:
        uri = None
    from engine.tracking.run_error import failures_recorded, record_failure

    with run_logger, failures_recorded(run_logger):  # a failure's reason is tagged on the run, then raised on
        if run_dir is None:
            run_dir = start_run_folder(run_logger, config, workspace)
            dropped = datamodule.dropped_images
            for split, count in dropped.items():
                run_logger.set_tag(f"{DROPPED_IMAGES_TAG_PREFIX}{split}", str(count))
            if any(dropped.values()):
                print(
                    "images left out for having no usable annotation: "
                    + ", ".join(f"{split} {count}" for split, count in dropped.items()),
                    file=sys.stderr,
                )
            problems = datamodule.problems
            if problems:
                run_logger.set_tag(DATA_PROBLEMS_TAG, str(len(problems)))
                run_logger.log_text("\n".join(str(p) for p in problems), "data_problems.txt")
        ckpt_dir = run_dir / "checkpoints"
        ModelCheckpoint = guarded_checkpoint_class()
        best = ModelCheckpoint(
            dirpath=ckpt_dir,
            filename="best-{epoch}-{step}",
            monitor=module.monitor,
            mode=module.monitor_mode,
            save_top_k=1,
        )
        # A second checkpoint every N steps so a killed process loses at most N steps, and one
        # when training ends on an exception (SIGTERM from `lightbox jobs stop` included).
        periodic = periodic_checkpoint_class()(
            dirpath=ckpt_dir,
            filename="latest-{step}",
            every_n_train_steps=checkpoint_every_n_steps,
            save_top_k=1,
            monitor="step",
            mode="max",
            save_on_exception=True,
        )
        mlflow_cb = MlflowCallback(run_logger, log_every_n_steps=config.tracking.log_every_n_steps)
        all_callbacks = [best, periodic, mlflow_cb, *(callbacks or [])]
        if progress:
            all_callbacks.append(TQDMProgressBar(refresh_rate=max(1, config.tracking.log_every_n_steps)))
        trainer = build_trainer(
            speed,
            config,
            progress=progress,
            num_nodes=config.compute.num_nodes,
            strategy=data_parallel_strategy(module, processes),
            callbacks=all_callbacks,
            default_root_dir=str(run_dir),
        )
        sharing = (
            ranks_share_run(SharedRun(run_logger.run_id, str(run_dir), str(ckpt_path) if ckpt_path else None))
            if shared is None
            else contextlib.nullcontext()
        )
        try:
            with sharing:
                trainer.fit(
                    module, datamodule=datamodule, ckpt_path=str(ckpt_path) if ckpt_path else None, weights_only=True
                )
        except torch.cuda.OutOfMemoryError as exc:
            run_logger.finish("FAILED")
            raise TrainingError(
                f"out of GPU memory with batch size {config.optim.batch_size}: try --batch-size "
                f"{max(1, config.optim.batch_size // 2)} (or a smaller --image-size). Checkpoints so far are "
                f"kept in {ckpt_dir}"
            ) from exc

        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        best_path = best.best_model_path or None
        if module.nonfinite_step is None:
            # The final weights, whatever the monitor thought of them (ModelCheckpoint's own
            # last.ckpt is written only along with a new best).
            last_path = ckpt_dir / FINAL_CHECKPOINT
            trainer.save_checkpoint(last_path)
        else:  # the last good checkpoint stays the newest
            last_path = newest_checkpoint(ckpt_dir)
        message = None
        if module.nonfinite_step is not None:
            status = "FAILED"
            message = nonfinite_message(module.nonfinite_step, last_path)
        elif mlflow_cb.stopped_by_request:
            status, message = "KILLED", STOPPED_MESSAGE
        else:
            status = "FINISHED"
        if status == "FINISHED" and shared is None and trainer.global_rank == 0:
            # The run's evaluation report (lightbox eval's, on the validation split), so a finished run has it.
            from engine.orchestration.evaluate import evaluate_after_training

            device = trainer.strategy.root_device
            # A compiled model would compile again for evaluation (slow): a fresh eager copy is quicker.
            trained = None if speed.compile else (module, trainer.global_step)
            evaluate_after_training(
                config, run_dir, datamodule, run_logger, device, speed.normalize_on_device, trained=trained
            )
        if best_path:
            run_logger.set_tag(BEST_CHECKPOINT_TAG, best_path)
        if last_path:
            run_logger.set_tag(LAST_CHECKPOINT_TAG, str(last_path))
        if status == "FAILED":
            record_failure(run_logger, message)
        run_logger.finish(status)
    return TrainResult(
        run_logger.run_id, status, best_path, str(last_path) if last_path else None, metrics, message, uri
    )


def resume_state(run_id: str, tracking_uri: str | None, config: RunConfig | None, workspace: str | Path | None):
    """Config, run folder, newest checkpoint and tracking URI of an earlier run."""
    from engine.workspace import default_workspace

    if workspace is None:
        workspace = workspace_of(config) if config else default_workspace()
    run_dir, uri = locate_run(run_id, tracking_uri or (config.tracking.uri if config else None), workspace)
    saved = RunConfig.load(run_dir / "run.yaml")
    ckpt = newest_checkpoint(run_dir / "checkpoints")
    if ckpt is None:
        raise TrainingError(f"run {run_id}: no checkpoint in {run_dir / 'checkpoints'} to resume from")
    return saved, run_dir, ckpt, uri


__all__ = ["resume_state", "train_locally"]
