"""A run configuration made concrete: its Lightning data module and its task module.

The same builders serve a local run, each Ray Train worker, the learning-rate finder,
evaluation and export, so all of them see the same data the same way.
"""

from __future__ import annotations

from typing import Any

from engine.config import RunConfig
from engine.orchestration.errors import TrainingError
from engine.orchestration.speed import Speed, speed_settings


def multitask_config(config: RunConfig):
    from engine.tasks.multitask.config import MultiTaskConfig

    return MultiTaskConfig(
        tasks=list(config.task.tasks),
        model_checkpoints=dict(config.model.checkpoints),
        loss_weights=dict(config.task.loss_weights),
        pretrained=config.model.pretrained,
    )


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
                "wrong boxes; use LongestMaxSize + PadIfNeeded (keep the whole image) for validation"
            )


def model_checkpoint(config: RunConfig) -> str:
    """The checkpoint whose preprocessing (normalisation, input size) the model expects:
    in multi-task runs the one that provides the shared backbone."""
    if config.task.name == "multitask":
        from engine.tasks.multitask.backbone import backbone_checkpoint

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
        batch_size=config.optim.batch_size,
        num_workers=config.data.num_workers,
        image_size=image_size_of(config, checkpoint),
        val_fraction=config.data.val_fraction,
        split_seed=config.data.split_seed,
        seed=config.optim.seed,
        on_problem=config.data.on_problem,
        normalize="device" if speed.normalize_on_device else "collate",
        mean=mean,
        std=std,
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
    return entry.datamodule_class.from_folder(
        config.data.path, train_split=config.data.train_split, val_split=config.data.val_split, **kwargs
    )


def build_module(config: RunConfig, datamodule, speed: Speed):
    from engine.tasks.registry import get_task

    entry = get_task(config.task.name)
    datamodule.setup("fit")
    optim = config.optim
    common = dict(
        lr=optim.lr,
        weight_decay=optim.weight_decay,
        scheduler=optim.scheduler,
        warmup_steps=optim.warmup_steps,
        step_size=optim.step_size,
        gamma=optim.gamma,
        normalize_on_device=speed.normalize_on_device,
        mean=datamodule.mean,
        std=datamodule.std,
        channels_last=speed.channels_last,
    )
    if config.task.name == "multitask":
        return entry.module_class(multitask_config(config), num_labels=datamodule.num_labels_per_task, **common)
    num_labels = config.model.num_labels or datamodule.num_labels
    extra: dict = {}
    if config.task.name == "detection":
        extra["category_ids"] = datamodule.train_dataset.index.category_ids.tolist()
    if config.task.name == "classification":
        extra["label_smoothing"] = optim.label_smoothing
    return entry.module_class(
        model_ckpt=config.model.checkpoint,
        num_labels=num_labels,
        id2label=datamodule.id2label,
        pretrained=config.model.pretrained,
        **common,
        **extra,
    )


__all__ = [
    "build_datamodule",
    "build_module",
    "check_val_spec",
    "image_size_of",
    "model_checkpoint",
    "multitask_config",
]
