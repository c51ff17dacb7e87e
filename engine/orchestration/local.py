"""Train one run in this process: config -> data module + model + Trainer + MLflow.

Everything a run writes lives in ``<workspace>/runs/<run_id>/`` (its config,
its checkpoints) and in MLflow (params, the config as an artifact, metrics,
status, the best checkpoint's path). ``train(resume_run_id=...)`` continues a
run from its newest checkpoint into the same MLflow run.
"""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.config import RunConfig
from engine.tracking.client import mlflow_available
from engine.tracking.tags import (BEST_CHECKPOINT_TAG, DATA_PROBLEMS_TAG, DROPPED_IMAGES_TAG_PREFIX,
                                  LAST_CHECKPOINT_TAG, PROCESSES_TAG, RUN_DIR_TAG, TASK_TAG, WEIGHTS_TAG)

#: the state at the end of training, written whenever a run ends without a NaN loss
FINAL_CHECKPOINT = "last.ckpt"
CNN_FAMILIES = ("resnet", "detr", "convnext", "efficientnet", "mobilenet", "regnet")


class TrainingError(RuntimeError):
    """Training cannot start or could not finish; the message says what to do."""


@dataclass
class TrainResult:
    run_id: str
    status: str  # FINISHED | FAILED | KILLED
    best_checkpoint: str | None
    last_checkpoint: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    message: str | None = None
    tracking_uri: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))


# ---------------------------------------------------------------------- settings
def workspace_of(config: RunConfig) -> Path:
    from engine.workspace import default_workspace

    return (Path(config.workspace).expanduser() if config.workspace else default_workspace()).resolve()


def start_run_folder(run_logger, config: RunConfig, workspace: Path) -> Path:
    """A new run's folder with its run.yaml, and the run's params and config in tracking."""
    run_dir = workspace / "runs" / run_logger.run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    config.save(run_dir / "run.yaml")
    run_logger.set_tag(RUN_DIR_TAG, str(run_dir))
    from engine.models.weights import run_weights

    # Which weights the run starts from, said plainly: offline presets are randomly initialised.
    weights = run_weights(config)
    run_logger.set_tag(WEIGHTS_TAG, weights)
    print(f"weights: {weights}", file=sys.stderr)
    run_logger.log_params(_flatten("", config.model_dump(mode="json"), {}))
    run_logger.log_config(config.to_yaml())
    return run_dir


@dataclass
class Speed:
    accelerator: str
    devices: Any
    precision: str
    channels_last: bool
    normalize_on_device: bool
    pin_memory: bool
    compile: bool


def speed_settings(config: RunConfig, family: str | None = None) -> Speed:
    """Device-dependent speed switches; every automatic choice can be overridden in the config."""
    import torch

    compute = config.compute
    has_gpu = torch.cuda.is_available()
    if compute.accelerator == "gpu" and not has_gpu:
        raise TrainingError("a GPU was requested (compute.accelerator: gpu) but PyTorch sees no CUDA device; "
                            "use --accelerator cpu, or check the NVIDIA driver and the CUDA build of torch")
    on_gpu = compute.accelerator == "gpu" or (compute.accelerator == "auto" and has_gpu)
    if on_gpu and compute.devices != "auto" and int(compute.devices) > torch.cuda.device_count():
        raise TrainingError(f"{compute.devices} GPUs requested but only {torch.cuda.device_count()} are visible")
    precision = config.optim.precision
    if precision == "auto":
        precision = "bf16-mixed" if on_gpu and torch.cuda.is_bf16_supported() else "32-true"
    elif precision == "32":
        precision = "32-true"
    if precision == "16-mixed" and not on_gpu:
        raise TrainingError("16-mixed precision needs a GPU; use 32 or bf16-mixed on the CPU")
    channels_last = compute.channels_last
    if channels_last is None:
        channels_last = on_gpu and (family or "") in CNN_FAMILIES
    normalize = compute.gpu_normalize if compute.gpu_normalize is not None else on_gpu
    pin = compute.pin_memory if compute.pin_memory is not None else on_gpu
    # On the CPU, "auto" is one process; a number is that many processes (DDP over gloo).
    devices = compute.devices if on_gpu or compute.devices != "auto" else 1
    return Speed("gpu" if on_gpu else "cpu", devices, precision,
                 bool(channels_last), bool(normalize), bool(pin), bool(compute.compile))


def process_count(speed: Speed, config: RunConfig) -> int:
    """How many training processes the Trainer will run (devices per node x nodes)."""
    import torch

    devices = speed.devices
    if devices == "auto":
        devices = torch.cuda.device_count() if speed.accelerator == "gpu" else 1
    return max(int(devices), 1) * config.compute.num_nodes


def data_parallel_strategy(module, processes: int):
    """The Trainer's strategy: one process as it is, several with DDP, whose search for
    parameters left out of the loss is asked for only where the model leaves some out."""
    if processes <= 1:
        return "auto"
    from lightning.pytorch.strategies import DDPStrategy

    from engine.models.ddp import has_unused_parameters

    return DDPStrategy(find_unused_parameters=has_unused_parameters(getattr(module, "model", module)))


# ---------------------------------------------------------------------- builders
def multitask_config(config: RunConfig):
    from engine.tasks.common.multitask import MultiTaskConfig

    return MultiTaskConfig(tasks=list(config.task.tasks), model_checkpoints=dict(config.model.checkpoints),
                           loss_weights=dict(config.task.loss_weights), pretrained=config.model.pretrained)


def check_val_spec(config: RunConfig) -> None:
    """Refuse validation steps that crop: detections are mapped back to the original pixels
    through the resize and padding only, so a crop would shift every box."""
    if config.task.name not in ("detection", "multitask"):
        return
    for i, step in enumerate(config.augmentation.val or []):
        name = str(step.get("name", "")) if isinstance(step, dict) else ""
        if "crop" in name.lower():
            raise TrainingError(
                f"augmentation.val[{i}] ({name}) crops the image: {config.task.name} validation maps boxes back "
                "to the original pixels through resizing and padding only, so a cropping val spec would score "
                "wrong boxes; use LongestMaxSize + PadIfNeeded (keep the whole image) for validation")


def model_checkpoint(config: RunConfig) -> str:
    """The checkpoint whose preprocessing (normalisation, input size) the model expects:
    in multi-task runs the one that provides the shared backbone."""
    if config.task.name == "multitask":
        from engine.tasks.common.multitask import backbone_checkpoint

        return backbone_checkpoint(multitask_config(config))
    from engine.config import DEFAULT_CHECKPOINTS

    return config.model.checkpoint or DEFAULT_CHECKPOINTS[config.task.name]


def image_size_of(config: RunConfig, checkpoint: str) -> int:
    """``data.image_size``, else the size the model was built for (preset or checkpoint files)."""
    from engine.models.loading import default_image_size

    if config.data.image_size:
        return int(config.data.image_size)
    task = "detection" if config.task.name == "multitask" else config.task.name
    return default_image_size(checkpoint, task)


def build_datamodule(config: RunConfig, speed: Speed | None = None):
    from engine.models.loading import normalization_stats
    from engine.tasks.registry import get_task

    if not config.data.path:
        raise TrainingError("no dataset: set data.path (or pass --data DIR)")
    check_val_spec(config)
    entry = get_task(config.task.name)
    speed = speed or speed_settings(config)
    checkpoint = model_checkpoint(config)
    mean, std = normalization_stats(checkpoint)
    kwargs: dict[str, Any] = dict(
        batch_size=config.optim.batch_size, num_workers=config.data.num_workers,
        image_size=image_size_of(config, checkpoint), val_fraction=config.data.val_fraction,
        split_seed=config.data.split_seed, seed=config.optim.seed, on_problem=config.data.on_problem,
        normalize="device" if speed.normalize_on_device else "collate", mean=mean, std=std,
        pin_memory=speed.pin_memory,
    )
    if not config.augmentation.preset or config.augmentation.train is not None:
        kwargs["train_transforms"] = config.augmentation.train or []
    if not config.augmentation.preset or config.augmentation.val is not None:
        kwargs["val_transforms"] = config.augmentation.val or []
    if config.task.name == "classification":
        kwargs["label_rule"] = config.data.classification_label_rule
    if config.task.name == "multitask":
        kwargs["tasks"] = list(config.task.tasks)
    return entry.datamodule_class.from_folder(config.data.path, train_split=config.data.train_split,
                                              val_split=config.data.val_split, **kwargs)


def build_module(config: RunConfig, datamodule, speed: Speed):
    from engine.tasks.registry import get_task

    entry = get_task(config.task.name)
    datamodule.setup("fit")
    optim = config.optim
    common = dict(lr=optim.lr, weight_decay=optim.weight_decay, scheduler=optim.scheduler,
                  warmup_steps=optim.warmup_steps, step_size=optim.step_size, gamma=optim.gamma,
                  normalize_on_device=speed.normalize_on_device, mean=datamodule.mean, std=datamodule.std,
                  channels_last=speed.channels_last)
    if config.task.name == "multitask":
        return entry.module_class(multitask_config(config), num_labels=datamodule.num_labels_per_task, **common)
    num_labels = config.model.num_labels or datamodule.num_labels
    extra: dict = {}
    if config.task.name == "detection":
        extra["category_ids"] = datamodule.train_dataset.index.category_ids.tolist()
    if config.task.name == "classification":
        extra["label_smoothing"] = optim.label_smoothing
    return entry.module_class(model_ckpt=config.model.checkpoint, num_labels=num_labels,
                              id2label=datamodule.id2label, pretrained=config.model.pretrained, **common, **extra)


def _quiet_known_noise() -> None:
    """Silence messages that are expected here and only confuse users."""
    import logging
    import warnings

    # The data module's own batch hook is intentionally overridden by the module's device-side one.
    warnings.filterwarnings("ignore", message=".*overridden `on_after_batch_transfer`.*")
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*")
    # Lightbox's train loader resumes mid-epoch from the loop's own count (ResumableDataLoader),
    # without the state_dict Lightning looks for.
    warnings.filterwarnings("ignore", message=".*your dataloader is not resumable.*")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: "litlogger" not in record.getMessage())


def _guarded_checkpoint_class():
    """ModelCheckpoint that writes nothing once the loss went NaN, so the last good one survives."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    class GuardedCheckpoint(ModelCheckpoint):
        def _should_skip_saving_checkpoint(self, trainer) -> bool:
            module = trainer.lightning_module
            if getattr(module, "nonfinite_step", None) is not None:
                return True
            return super()._should_skip_saving_checkpoint(trainer)

        def _should_save_on_exception(self, trainer) -> bool:
            if getattr(trainer.lightning_module, "nonfinite_step", None) is not None:
                return False
            return super()._should_save_on_exception(trainer)

    return GuardedCheckpoint


def _periodic_checkpoint_class():
    """The every-N-steps checkpoint, except that one due at an epoch's last batch waits until
    that epoch's validation ran: resumed from it, a run does not validate the epoch again."""
    Guarded = _guarded_checkpoint_class()

    class PeriodicCheckpoint(Guarded):
        _due_after_validation = False

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            last_batch = batch_idx + 1 >= trainer.num_training_batches
            every = self._every_n_train_steps
            if last_batch and trainer.enable_validation and every > 0 and trainer.global_step % every == 0:
                self._due_after_validation = True
                return
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

        def _save_if_due(self, trainer) -> None:
            if self._due_after_validation:
                self._due_after_validation = False
                if not self._should_skip_saving_checkpoint(trainer):
                    self._save_topk_checkpoint(trainer, self._monitor_candidates(trainer))

        def on_validation_end(self, trainer, pl_module) -> None:
            super().on_validation_end(trainer, pl_module)
            self._save_if_due(trainer)

        def on_train_epoch_end(self, trainer, pl_module) -> None:  # the epoch had no validation after all
            super().on_train_epoch_end(trainer, pl_module)
            self._save_if_due(trainer)

    return PeriodicCheckpoint


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = json.dumps(value) if isinstance(value, (list, dict)) else value
    return out


def newest_checkpoint(folder: Path) -> Path | None:
    found = [p for p in folder.glob("*.ckpt") if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


# ---------------------------------------------------------------------- training
def train(config: RunConfig | None = None, *, resume_run_id: str | None = None,
          tracking_uri: str | None = None, workspace: str | Path | None = None, progress: bool = True,
          callbacks: list | None = None, checkpoint_every_n_steps: int = 50,
          tags: dict | None = None) -> TrainResult:
    """Run (or resume) one training run and return what happened (``tags``: extra MLflow run tags)."""
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.callbacks import TQDMProgressBar

    from engine.tracking.callback import MlflowCallback
    from engine.tracking.shared_run import RankLogger, SharedRun, ranks_share_run, shared_run_of_rank_zero
    from engine.tracking.store import resolve_tracking_uri

    _quiet_known_noise()
    # Set in the extra processes of a multi-device run, which Lightning starts by running the
    # same command again: they train in rank 0's run, from its folder and configuration.
    shared = shared_run_of_rank_zero()
    if config is not None and config.compute.strategy == "ray" and not resume_run_id and shared is None:
        from engine.orchestration.ray_train import train_distributed  # Ray Train workers

        return train_distributed(config, tracking_uri=tracking_uri, callbacks=callbacks, tags=tags)
    ckpt_path = None
    if shared is not None:
        run_dir = Path(shared.run_dir)
        config = RunConfig.load(run_dir / "run.yaml")
        ckpt_path = Path(shared.resume_checkpoint) if shared.resume_checkpoint else None
        uri = None
    elif resume_run_id:
        config, run_dir, ckpt_path, uri = _resume_state(resume_run_id, tracking_uri, config, workspace)
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
        run_logger = open_run_logger(uri, workspace, experiment=config.tracking.experiment,
                                     run_name=config.tracking.run_name, run_id=resume_run_id,
                                     tags={TASK_TAG: config.task.name, PROCESSES_TAG: processes, **(tags or {})})
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
                print("images left out for having no usable annotation: "
                      + ", ".join(f"{split} {count}" for split, count in dropped.items()), file=sys.stderr)
            problems = datamodule.problems
            if problems:
                run_logger.set_tag(DATA_PROBLEMS_TAG, str(len(problems)))
                run_logger.log_text("\n".join(str(p) for p in problems), "data_problems.txt")
        ckpt_dir = run_dir / "checkpoints"
        ModelCheckpoint = _guarded_checkpoint_class()
        best = ModelCheckpoint(dirpath=ckpt_dir, filename="best-{epoch}-{step}", monitor=module.monitor,
                               mode=module.monitor_mode, save_top_k=1)
        # A second checkpoint every N steps so a killed process loses at most N steps, and one
        # when training ends on an exception (SIGTERM from `lightbox jobs stop` included).
        periodic = _periodic_checkpoint_class()(dirpath=ckpt_dir, filename="latest-{step}",
                                                every_n_train_steps=checkpoint_every_n_steps, save_top_k=1,
                                                monitor="step", mode="max", save_on_exception=True)
        mlflow_cb = MlflowCallback(run_logger, log_every_n_steps=config.tracking.log_every_n_steps)
        all_callbacks = [best, periodic, mlflow_cb, *(callbacks or [])]
        if progress:
            all_callbacks.append(TQDMProgressBar(refresh_rate=max(1, config.tracking.log_every_n_steps)))
        trainer = pl.Trainer(
            accelerator=speed.accelerator, devices=speed.devices, num_nodes=config.compute.num_nodes,
            strategy=data_parallel_strategy(module, processes),
            precision=speed.precision, max_epochs=config.optim.epochs,
            max_steps=config.optim.max_steps or -1, gradient_clip_val=config.optim.grad_clip,
            accumulate_grad_batches=config.optim.accumulate_grad_batches, callbacks=all_callbacks,
            logger=False, enable_progress_bar=progress, enable_model_summary=False,
            default_root_dir=str(run_dir), num_sanity_val_steps=0,
        )
        sharing = ranks_share_run(SharedRun(run_logger.run_id, str(run_dir), str(ckpt_path) if ckpt_path else None)) \
            if shared is None else contextlib.nullcontext()
        try:
            with sharing:
                trainer.fit(module, datamodule=datamodule, ckpt_path=str(ckpt_path) if ckpt_path else None,
                            weights_only=True)
        except torch.cuda.OutOfMemoryError as exc:
            run_logger.finish("FAILED")
            raise TrainingError(
                f"out of GPU memory with batch size {config.optim.batch_size}: try --batch-size "
                f"{max(1, config.optim.batch_size // 2)} (or a smaller --image-size). Checkpoints so far are "
                f"kept in {ckpt_dir}") from exc

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
            message = (f"the loss became NaN or infinite at step {module.nonfinite_step}; training stopped "
                       f"without applying that step. Last good checkpoint: {last_path or 'none yet'}. "
                       "Try a lower learning rate or gradient clipping (optim.grad_clip).")
        elif mlflow_cb.stopped_by_request:
            status, message = "KILLED", "stopped on request; checkpoints kept"
        else:
            status = "FINISHED"
        if best_path:
            run_logger.set_tag(BEST_CHECKPOINT_TAG, best_path)
        if last_path:
            run_logger.set_tag(LAST_CHECKPOINT_TAG, str(last_path))
        if status == "FAILED":
            record_failure(run_logger, message)
        run_logger.finish(status)
    return TrainResult(run_logger.run_id, status, best_path, str(last_path) if last_path else None,
                       metrics, message, uri)


def check_tracking_reachable(uri: str | None, timeout_s: float = 5.0) -> None:
    """:func:`engine.tracking.client.check_reachable`, refusing with a TrainingError."""
    from engine.tracking.client import TrackingUnreachableError, check_reachable

    try:
        check_reachable(uri, timeout_s)
    except TrackingUnreachableError as exc:
        raise TrainingError(str(exc)) from None


def open_run_logger(uri: str, workspace: Path, *, experiment: str, run_name: str | None,
                    run_id: str | None, tags: dict):
    """An MLflow RunLogger, or, where MLflow is not installed, files in the run folder."""
    if mlflow_available():
        from engine.tracking.logger import RunLogger

        check_tracking_reachable(uri)
        return RunLogger(uri, experiment=experiment, run_name=run_name, run_id=run_id, workspace=workspace,
                         tags=tags)
    from engine.tracking.local_run import LocalRunLogger

    print("MLflow is not installed: tracking into files under the run folder (tracking/).", file=sys.stderr)
    return LocalRunLogger(workspace / "runs", run_id=run_id, tags=tags)


def locate_run(run_id: str, tracking_uri: str | None, workspace: str | Path) -> tuple[Path, str]:
    """Folder and tracking URI of an earlier run: ``<workspace>/runs/<id>``, else MLflow's run tag."""
    from engine.tracking.store import resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri, Path(workspace))
    run_dir = Path(workspace) / "runs" / run_id
    if not (run_dir / "run.yaml").is_file() and mlflow_available():
        from engine.tracking.client import client

        try:
            run = client(uri).get_run(run_id)
        except Exception as exc:  # mlflow raises its own exception types per store
            raise TrainingError(f"run {run_id} not found in {uri}: {exc}") from None
        run_dir = Path(run.data.tags.get(RUN_DIR_TAG, ""))
    if not (run_dir / "run.yaml").is_file():
        raise TrainingError(f"run {run_id}: no folder {run_dir} with a run.yaml")
    return run_dir, uri


def _resume_state(run_id: str, tracking_uri: str | None, config: RunConfig | None,
                  workspace: str | Path | None):
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


def checkpoint_batching(checkpoint: Path) -> dict[str, int] | None:
    """The batch size and process count a checkpoint was trained with (None for checkpoints
    written before the data module recorded them)."""
    import torch

    from engine.tasks.common.base_datamodule import BATCHING_STATE

    # mmap: only the small dictionaries are read, not every tensor.
    state = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
    for value in state.values():
        if isinstance(value, dict) and BATCHING_STATE in value:
            return value[BATCHING_STATE]
    return None


def check_same_batching(checkpoint: Path, config: RunConfig, processes: int, run_file: Path) -> None:
    """Refuse to resume with other batches than the checkpoint's: the loop goes on from a count of
    batches, so a new batch size (or process count) would train some images of the epoch twice
    and others never."""
    recorded = checkpoint_batching(checkpoint)
    if recorded is None:
        return
    if int(recorded["batch_size"]) != config.optim.batch_size:
        raise TrainingError(
            f"{run_file}: optim.batch_size is {config.optim.batch_size} but the run trained with "
            f"{recorded['batch_size']} up to its checkpoint {checkpoint.name}; resuming with another batch size "
            f"would train some images twice and skip others. Set optim.batch_size back to "
            f"{recorded['batch_size']} in {run_file.name}, or start a new run")
    if int(recorded["processes"]) != processes:
        raise TrainingError(
            f"{run_file}: this resume would train on {processes} process(es) but the run trained on "
            f"{recorded['processes']} up to its checkpoint {checkpoint.name} (compute.devices / num_nodes); "
            f"each process's share of the images would change mid-epoch. Resume with "
            f"{recorded['processes']} process(es), or start a new run")


def print_result(result: TrainResult, stream=None) -> None:
    from engine.tracking.shared_run import is_helper_rank

    if is_helper_rank():  # rank 0 reports the run; the processes helping it stay quiet
        return
    print(result.to_json(), file=stream or sys.stdout, flush=True)
    if result.message:
        print(result.message, file=sys.stderr)

