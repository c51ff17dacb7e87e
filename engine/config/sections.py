"""The sections of a run configuration: data, task, model, augmentation, optimisation,
compute and tracking. Each is a pydantic model whose fields carry the title and
description the app's form shows; the search section and the whole run are in
:mod:`engine.config.run_fields`.
"""

import os
import re
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.catalog.task_names import SingleTask, TaskName

from .problems import InvalidFields

__all__ = [
    "AugmentationConfig",
    "ComputeConfig",
    "DataConfig",
    "ModelConfig",
    "OptimConfig",
    "STRICT",
    "TaskConfig",
    "TrackingConfig",
    "default_num_workers",
]

# Every section refuses keys it does not know, so a typo is an error, not a silent default.
STRICT = ConfigDict(extra="forbid")


def default_num_workers() -> int:
    """Loader workers from the CPUs this process may use (one left for training), at most 4."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(4, cpus - 1))


class DataConfig(BaseModel):
    """Which dataset to train on and how to split and load it."""

    model_config = STRICT

    path: str | None = Field(
        None,
        title="Dataset folder",
        description="Folder holding the COCO dataset (annotations and images).",
    )
    train_split: str | None = Field(
        None,
        title="Training split",
        description="Name of the split to train on (e.g. 'train'); empty picks it automatically.",
    )
    val_split: str | None = Field(
        None,
        title="Validation split",
        description="Name of the split to validate on (e.g. 'val'); empty picks it automatically.",
    )
    val_fraction: float = Field(
        0.2,
        gt=0,
        le=0.9,
        title="Validation fraction",
        description="Share of images held out for validation when the folder has a single split.",
    )
    split_seed: int = Field(
        0,
        title="Split seed",
        description="Random seed for the held-out split, so it is the same on every run.",
    )
    on_problem: Literal["skip", "refuse"] = Field(
        "skip",
        title="On dataset problems",
        description="What training does with images or annotations the health check flags: "
        "'skip' leaves them out, 'refuse' stops before training.",
    )
    classification_label_rule: Literal["largest", "majority"] = Field(
        "largest",
        title="Image label rule",
        description="How an image with several annotations gets its class for classification: "
        "the category of the largest object, or the most frequent category.",
    )
    num_workers: int = Field(
        default_factory=lambda: default_num_workers(),
        ge=0,
        title="Loader workers",
        description="Background processes that load and augment images (0 loads in the main process).",
    )
    image_size: int | None = Field(
        None,
        ge=32,
        title="Image size",
        description="Side length in pixels images are resized to; empty uses the model's own size.",
    )

    @model_validator(mode="after")
    def _distinct_splits(self) -> Self:
        if self.train_split is not None and self.train_split == self.val_split:
            raise InvalidFields([("val_split", "must differ from train_split")])
        return self


class TaskConfig(BaseModel):
    """What the model learns to do."""

    model_config = STRICT

    name: TaskName = Field(
        title="Task",
        description="Image classification, object detection (DETR), semantic segmentation, "
        "or several of them at once (multitask).",
    )
    tasks: list[SingleTask] = Field(
        default_factory=list,
        title="Tasks (multitask)",
        description="The tasks a multitask model learns together; only used when the task is 'multitask'.",
    )
    loss_weights: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict,
        title="Loss weights (multitask)",
        description="Weight of each task's loss in the total, keyed by task; unlisted tasks weigh 1.",
    )

    @model_validator(mode="after")
    def _check_tasks(self) -> Self:
        problems: list[tuple[Any, str]] = []
        if self.name == "multitask":
            if not self.tasks:
                problems.append(("tasks", "list at least one task for a multitask run"))
            elif len(set(self.tasks)) != len(self.tasks):
                problems.append(("tasks", "lists a task more than once"))
        elif self.tasks:
            problems.append(("tasks", f"only used when the task is 'multitask' (it is {self.name!r})"))
        for key in self.loss_weights:
            if key not in self.tasks:
                listed = ", ".join(self.tasks) or "none"
                problems.append((("loss_weights", key), f"not one of the multitask tasks ({listed})"))
        if problems:
            raise InvalidFields(problems)
        return self


class ModelConfig(BaseModel):
    """The network to train and where its starting weights come from."""

    model_config = STRICT

    checkpoint: str | None = Field(
        None,
        min_length=1,
        title="Checkpoint",
        description="Model to start from: a Hugging Face hub id, a local folder or a preset name. "
        "Empty picks the task's default (resnet-18, rt-detr-v2-tiny or segformer-b0).",
    )
    checkpoints: dict[SingleTask, Annotated[str, Field(min_length=1)]] = Field(
        default_factory=dict,
        title="Checkpoints (multitask)",
        description="Checkpoint per task for a multitask run; missing tasks get their default.",
    )
    num_labels: int | None = Field(
        None,
        ge=1,
        title="Number of classes",
        description="Number of output classes; empty takes it from the dataset's categories.",
    )
    pretrained: bool = Field(
        True,
        title="Pretrained weights",
        description="Load the trained weights of a model folder or hub id (off: same architecture, random "
        "weights). Offline presets have none: they always start from random weights.",
    )


class AugmentationConfig(BaseModel):
    """Image augmentation for training and validation.

    Step names are checked by the transforms module when the pipeline is
    built, which keeps this module free of image libraries.
    """

    model_config = STRICT

    preset: bool = Field(
        True,
        title="Use task preset",
        description="Use the task's recommended augmentations; custom steps below replace it when given.",
    )
    strength: Literal["auto", "none", "light", "medium", "full"] = Field(
        "auto",
        title="Augmentation strength",
        description="How strong the recommended augmentations are; 'auto' chooses from image size, "
        "dataset size and epochs (light for short runs or tiny images), see engine/recipes.py.",
    )
    train: list[dict[str, Any]] | None = Field(
        None,
        title="Training steps",
        description="Custom training augmentations, in order; each step is {name: ..., other parameters}.",
    )
    val: list[dict[str, Any]] | None = Field(
        None,
        title="Validation steps",
        description="Custom validation transforms, in order; each step is {name: ..., other parameters}.",
    )

    @field_validator("train", "val")
    @classmethod
    def _steps_are_named(cls, steps: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        bad = [
            (i, "each step needs a 'name'")
            for i, step in enumerate(steps or [])
            if not isinstance(step.get("name"), str) or not step["name"]
        ]
        if bad:
            raise InvalidFields(bad)
        return steps


class OptimConfig(BaseModel):
    """How long and how fast to train."""

    model_config = STRICT

    epochs: int | None = Field(
        None,
        ge=1,
        title="Epochs",
        description="Passes over the training set; empty lets the recipe choose (10, more on small sets so "
        "the run makes enough optimiser steps to learn).",
    )
    max_steps: int | None = Field(
        None,
        ge=1,
        title="Maximum steps",
        description="Stop after this many optimiser steps even if epochs remain; empty means no limit.",
    )
    batch_size: int = Field(16, ge=1, title="Batch size", description="Images per training step on each device.")
    lr: float | None = Field(
        None,
        gt=0,
        title="Learning rate",
        description="Peak learning rate of the optimiser (AdamW); empty lets the recipe choose it from the "
        "model family and whether it starts from trained weights.",
    )
    weight_decay: float = Field(
        1e-4, ge=0, title="Weight decay", description="AdamW weight decay (L2-style regularisation)."
    )
    scheduler: Literal["auto", "cosine", "wsd", "step", "plateau", "none"] = Field(
        "auto",
        title="LR schedule",
        description="How the learning rate changes: cosine decay to zero; wsd (constant, then a linear "
        "decay to zero over the last 20% of the run); step decay every 'step size' epochs; reduce when "
        "validation loss plateaus; or constant. 'auto' lets the recipe choose (see engine/recipes.py).",
    )
    warmup_steps: int | None = Field(
        None,
        ge=0,
        title="Warm-up steps",
        description="Steps over which the learning rate ramps up linearly from 0; empty chooses 3% of the run "
        "(at most one epoch, none on short runs).",
    )
    step_size: int = Field(
        10, ge=1, title="Step size", description="Epochs between learning-rate drops (step schedule only)."
    )
    gamma: float = Field(
        0.1,
        gt=0,
        le=1,
        title="Decay factor",
        description="Factor the learning rate is multiplied by at each drop (step and plateau schedules).",
    )
    grad_clip: float | None = Field(
        None,
        ge=0,
        title="Gradient clipping",
        description="Clip the gradient norm to this value; 0 disables it; empty lets the recipe choose "
        "(0.1 for DETR-family detectors, 1.0 for ViTs, none otherwise).",
    )
    label_smoothing: float = Field(
        0.1,
        ge=0,
        lt=1,
        title="Label smoothing",
        description="Classification only: the share of each training target spread over the other classes "
        "(0 trains on hard labels). 0.1 scored as well or better than hard labels on held-out real sets "
        "(BENCHMARKS.md); validation loss is always on hard labels.",
    )
    accumulate_grad_batches: int = Field(
        1,
        ge=1,
        title="Gradient accumulation",
        description="Batches whose gradients are summed before each optimiser step (a larger effective batch).",
    )
    precision: Literal["auto", "32", "16-mixed", "bf16-mixed"] = Field(
        "auto",
        title="Precision",
        description="Numeric precision: 'auto' picks mixed precision on GPUs that support it, else 32-bit.",
    )
    seed: int = Field(0, title="Seed", description="Random seed for weights, shuffling and augmentation.")

    @field_validator("precision", mode="before")
    @classmethod
    def _precision_as_text(cls, value: Any) -> Any:
        # YAML reads `precision: 32` as a number.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class ComputeConfig(BaseModel):
    """Where the run executes: local CPU/GPU or a Ray cluster."""

    model_config = STRICT

    accelerator: Literal["auto", "cpu", "gpu"] = Field(
        "auto", title="Accelerator", description="Hardware to train on; 'auto' uses a GPU when one is available."
    )
    devices: int | Literal["auto"] = Field(
        "auto", title="Devices", description="Number of GPUs (or CPU processes) per node, or 'auto' for all."
    )
    num_nodes: int = Field(1, ge=1, title="Nodes", description="Machines taking part in distributed training.")
    num_workers: int = Field(
        2, ge=1, title="Ray workers", description="Training processes for strategy 'ray' (Ray Train data parallel)."
    )
    use_gpu: bool = Field(False, title="GPU per Ray worker", description="Give each Ray Train worker one GPU.")
    strategy: Literal["auto", "ddp", "ray"] = Field(
        "auto",
        title="Strategy",
        description="How training is distributed: 'auto' (Lightning decides), 'ddp' (data parallel), "
        "'ray' (run on a Ray cluster).",
    )
    ray_address: str | None = Field(
        None,
        title="Ray address",
        description="Ray cluster to use: 'auto' (the local cluster), 'ray://host:port', or a dashboard URL "
        "such as http://host:8265 for job submission; empty starts Ray locally when needed.",
    )
    channels_last: bool | None = Field(
        None,
        title="Channels-last memory",
        description="Store images channels-last (faster convolutions on recent GPUs); empty chooses by device.",
    )
    compile: bool = Field(
        False, title="Compile model", description="Compile the model with torch.compile (slow start, faster steps)."
    )
    gpu_normalize: bool | None = Field(
        None,
        title="Normalise on GPU",
        description="Convert and normalise images on the GPU instead of in loader workers; empty chooses by device.",
    )
    pin_memory: bool | None = Field(
        None,
        title="Pin memory",
        description="Use page-locked memory for faster host-to-GPU copies; empty chooses by device.",
    )

    @field_validator("devices", mode="before")
    @classmethod
    def _devices(cls, value: Any) -> int | str:
        # One clear message instead of pydantic's per-union-member pair.
        if value == "auto":
            return value
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        raise ValueError("expected a whole number of at least 1, or 'auto'")

    @field_validator("ray_address")
    @classmethod
    def _ray_address(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"auto|local|(ray|https?)://\S+|[\w.-]+:\d+", value):
            raise ValueError("expected 'auto', 'ray://host:port', 'http://host:8265' or 'host:port'")
        return value


class TrackingConfig(BaseModel):
    """Where metrics, parameters and models are recorded (MLflow)."""

    model_config = STRICT

    uri: str | None = Field(
        None,
        min_length=1,
        title="Tracking URI",
        description="MLflow tracking URI (e.g. sqlite:///runs.db or http://host:5000); "
        "empty uses an SQLite database in the workspace.",
    )
    experiment: str = Field("lightbox", min_length=1, title="Experiment", description="MLflow experiment name.")
    run_name: str | None = Field(None, title="Run name", description="Name shown for the run; empty generates one.")
    log_every_n_steps: int = Field(
        10, ge=1, title="Log every N steps", description="How often training metrics are recorded."
    )
