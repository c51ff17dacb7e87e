"""The typed run configuration: one YAML file describes a whole training run.

``RunConfig`` is the single source of truth shared by the CLI, the desktop app
(its forms are generated from :func:`json_schema`) and the hyper-parameter
search (which rewrites fields through :meth:`RunConfig.with_overrides`).

Every bad input (YAML syntax, unknown key, bad value, wrong type) surfaces as a
:class:`ConfigError` whose message names the file and each offending key as a
dotted path, e.g. ``run.yaml: optim.lr: Input should be greater than 0 (got -1)``.

The desktop app imports this module at start-up, so it must stay light: only
pydantic and PyYAML here, never torch, lightning, ray or mlflow.
"""

import difflib
import os
import re
import secrets
import stat
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "CONFIG_VERSION",
    "DEFAULT_CHECKPOINTS",
    "AugmentationConfig",
    "ChoiceParam",
    "ComputeConfig",
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "OptimConfig",
    "QUniformParam",
    "RandIntParam",
    "RunConfig",
    "SearchConfig",
    "SearchParam",
    "TaskConfig",
    "TrackingConfig",
    "UniformParam",
    "config_field_paths",
    "json_schema",
    "tunable_field_paths",
]

CONFIG_VERSION = 1

SingleTask = Literal["classification", "detection", "segmentation"]

def default_num_workers() -> int:
    """Loader workers from the CPUs this process may use (one left for training), at most 4."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(4, cpus - 1))


# Used when model.checkpoint (or a multitask entry) is left empty.
DEFAULT_CHECKPOINTS: dict[str, str] = {
    "classification": "resnet-18",
    # Chosen by bench/detection_demo.py: from random weights RT-DETR v2 learns the demo
    # boxes in minutes on a CPU, where DETR and Conditional DETR stay near mAP50 0.
    "detection": "rt-detr-v2-tiny",
    "segmentation": "segformer-b0",
}


# --------------------------------------------------------------------------- errors


class ConfigError(ValueError):
    """A run configuration that cannot be used.

    ``problems`` lists every ``(dotted path, message)`` found, so the app can
    mark each offending form field; ``source`` says where the input came from
    (a file name, with ``:line:column`` for YAML syntax errors).
    """

    def __init__(self, problems: list[tuple[str, str]], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        lines = []
        for path, message in self.problems:
            head = ": ".join(part for part in (self.source, path) if part)
            lines.append(f"{head}: {message}" if head else message)
        return "\n".join(lines) or "invalid configuration"

    @classmethod
    def from_validation_error(cls, exc: ValidationError, source: str | None = None) -> "ConfigError":
        """Translate pydantic's error list into user-facing paths and messages."""
        problems: list[tuple[str, str]] = []
        for err in exc.errors():
            for item in _problems_from_error(err):
                if item not in problems:
                    problems.append(item)
        return cls(problems, source)


class _Invalid(ValueError):
    """Raised by validators to blame specific nested keys.

    A bare ValueError in a model validator is reported against the whole
    section; this one carries paths relative to the validated object, which
    pydantic keeps in the error's context for us to read back.
    """

    def __init__(self, problems: list[tuple[Any, str]]):
        self.problems = [((p,) if isinstance(p, (str, int)) else tuple(p), m) for p, m in problems]
        super().__init__("; ".join(m for _, m in self.problems))


_NO_INPUT_ERRORS = {"missing", "extra_forbidden"}


def _problems_from_error(err: dict) -> list[tuple[str, str]]:
    parts, owner = _user_path(err["loc"])
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, _Invalid):
        return [(_dotted(parts + list(rel)), message) for rel, message in cause.problems]
    if err["type"] == "union_tag_not_found":  # only SearchParam is a tagged union
        return [(_dotted(parts + ["type"]), f"required: one of {_search_types()}")]
    if err["type"] == "extra_forbidden":
        hint = _suggest(str(parts[-1]), list(owner.model_fields)) if owner else None
        return [(_dotted(parts), "unknown key" + (f" (did you mean {hint!r}?)" if hint else ""))]
    message = str(cause) if isinstance(cause, ValueError) else err["msg"]
    if err["type"] not in _NO_INPUT_ERRORS and _is_scalar(err.get("input")):
        message += f" (got {_brief(err['input'])})"
    return [(_dotted(parts), message)]


def _user_path(loc: tuple) -> tuple[list, type[BaseModel] | None]:
    """Turn pydantic's error location into the keys a user actually wrote.

    Pydantic adds entries nobody typed: the tag of a discriminated-union member
    ('loguniform'), the member type of other unions ('int') and '[key]' for dict
    key errors. We walk the config's type tree alongside the location to drop
    them, and return the model owning the last key (for spelling suggestions).
    """
    parts: list = []
    tp: Any = RunConfig
    owner = None
    for seg in loc:
        tp = _unwrap(tp)
        if _is_model(tp):
            owner = tp
            parts.append(seg)
            field = tp.model_fields.get(seg)
            tp = field.annotation if field else None
        elif typing.get_origin(tp) in (Union, types.UnionType):
            members = [_unwrap(m) for m in typing.get_args(tp)]
            tagged = [m for m in members if _is_model(m) and seg in _union_tags(m)]
            tp = tagged[0] if tagged else None
        elif seg == "[key]":
            continue
        else:
            parts.append(seg)
            args = typing.get_args(tp)
            if typing.get_origin(tp) is dict:
                tp = args[1]
            elif typing.get_origin(tp) is list:
                tp = args[0]
            else:
                tp = None
    return parts, owner


def _dotted(parts: list) -> str:
    """``search.space["optim.lr"].low``: quote keys that contain dots, index lists."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "." in part:
            out += f'["{part}"]'
        else:
            out += f".{part}" if out else part
    return out


def _suggest(key: str, names: list[str]) -> str | None:
    """The field the user most likely meant, or None."""
    norm = key.lower().replace("-", "_")
    if norm in names:
        return norm

    def initials(name: str) -> str:
        return "".join(word[0] for word in name.split("_") if word)

    # Abbreviations difflib cannot see: learning_rate -> lr, wd -> weight_decay.
    for name in names:
        if ("_" in norm and initials(norm) == name) or ("_" in name and initials(name) == norm):
            return name
    close = difflib.get_close_matches(norm, names, n=1, cutoff=0.6)
    return close[0] if close else None


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --------------------------------------------------------------------------- type-tree helpers


def _unwrap(tp: Any) -> Any:
    """Strip ``Annotated`` and ``Optional`` to reach the type that matters."""
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _union_tags(model: type[BaseModel]) -> tuple:
    field = model.model_fields.get("type")
    return typing.get_args(field.annotation) if field else ()


def _field_type(field) -> Any:
    """The field's annotation with its constraints (ge, gt, ...) re-attached."""
    if field.metadata:
        return Annotated[(field.annotation, *field.metadata)]
    return field.annotation


def _resolve(path: str) -> Any:
    """The type at a dotted path in RunConfig; LookupError names the bad key.

    Dict-valued fields accept any key (``task.loss_weights.detection``).
    """
    segments = path.split(".")
    tp: Any = RunConfig
    for i, seg in enumerate(segments):
        base = _unwrap(tp)
        prefix = ".".join(segments[:i])
        if _is_model(base):
            field = base.model_fields.get(seg)
            if field is None:
                hint = _suggest(seg, list(base.model_fields))
                what = "unknown key" if i == len(segments) - 1 else f"unknown key {seg!r}"
                if hint:
                    what += f" (did you mean {'.'.join(filter(None, (prefix, hint)))!r}?)"
                raise LookupError(what)
            tp = _field_type(field)
        elif typing.get_origin(base) is dict and seg:
            tp = typing.get_args(base)[1]
        else:
            raise LookupError(f"{prefix!r} is a single setting, it has no key {seg!r}")
    return tp


def _leaf_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    paths = []
    for name, field in model.model_fields.items():
        base = _unwrap(field.annotation)
        if _is_model(base):
            paths += _leaf_paths(base, f"{prefix}{name}.")
        else:
            paths.append(prefix + name)
    return paths


def config_field_paths() -> list[str]:
    """Every leaf setting of RunConfig as a dotted path, in declaration order."""
    return _leaf_paths(RunConfig)


# Sections that define what the run is, or the search itself: not hyper-parameters.
_NOT_TUNABLE = ("search", "task", "tracking", "workspace", "version")


def _tunable(path: str) -> bool:
    return not any(path == p or path.startswith(p + ".") for p in _NOT_TUNABLE)


def tunable_field_paths() -> list[str]:
    """The leaf paths a search space may use (numeric ones also take ranges)."""
    return [p for p in config_field_paths() if _tunable(p)]


# --------------------------------------------------------------------------- sections

_STRICT = ConfigDict(extra="forbid")


class DataConfig(BaseModel):
    """Which dataset to train on and how to split and load it."""

    model_config = _STRICT

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
    def _distinct_splits(self):
        if self.train_split is not None and self.train_split == self.val_split:
            raise _Invalid([("val_split", "must differ from train_split")])
        return self


class TaskConfig(BaseModel):
    """What the model learns to do."""

    model_config = _STRICT

    name: Literal["classification", "detection", "segmentation", "multitask"] = Field(
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
    def _check_tasks(self):
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
            raise _Invalid(problems)
        return self


class ModelConfig(BaseModel):
    """The network to train and where its starting weights come from."""

    model_config = _STRICT

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

    model_config = _STRICT

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
    def _steps_are_named(cls, steps):
        bad = [(i, "each step needs a 'name'") for i, step in enumerate(steps or [])
               if not isinstance(step.get("name"), str) or not step["name"]]
        if bad:
            raise _Invalid(bad)
        return steps


class OptimConfig(BaseModel):
    """How long and how fast to train."""

    model_config = _STRICT

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
    def _precision_as_text(cls, value):
        # YAML reads `precision: 32` as a number.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


# --------------------------------------------------------------------------- search


class UniformParam(BaseModel):
    """A float drawn between low and high, evenly or on a log scale."""

    model_config = _STRICT

    type: Literal["loguniform", "uniform"] = Field(
        title="Distribution", description="'loguniform' spreads samples evenly over orders of magnitude."
    )
    low: float = Field(title="Low", description="Smallest value.")
    high: float = Field(title="High", description="Largest value.")

    @model_validator(mode="after")
    def _check_range(self):
        problems = []
        if self.type == "loguniform" and self.low <= 0:
            problems.append(("low", f"must be greater than 0 for loguniform (got {self.low!r})"))
        if self.low >= self.high:
            problems.append(("high", f"must be greater than low (got {self.high!r} <= {self.low!r})"))
        if problems:
            raise _Invalid(problems)
        return self


class ChoiceParam(BaseModel):
    """One of a fixed list of values."""

    model_config = _STRICT

    type: Literal["choice"] = Field(title="Distribution", description="Pick one of the listed values.")
    values: list[Any] = Field(min_length=1, title="Values", description="The values to choose from.")


class GridParam(BaseModel):
    """Every listed value is tried (each combined with the other settings' samples)."""

    model_config = _STRICT

    type: Literal["grid"] = Field(title="Distribution", description="Try each listed value in turn.")
    values: list[Any] = Field(min_length=1, title="Values", description="The values to try.")


class RandIntParam(BaseModel):
    """An integer drawn from low (inclusive) to high (exclusive), as in Ray Tune."""

    model_config = _STRICT

    type: Literal["randint"] = Field(title="Distribution", description="A random integer.")
    low: int = Field(title="Low", description="Smallest value (inclusive).")
    high: int = Field(title="High", description="Upper bound (exclusive).")

    @model_validator(mode="after")
    def _check_range(self):
        if self.low >= self.high:
            raise _Invalid([("high", f"must be greater than low (got {self.high!r} <= {self.low!r})")])
        return self


class QUniformParam(BaseModel):
    """A value between low and high rounded to a multiple of q."""

    model_config = _STRICT

    type: Literal["quniform"] = Field(title="Distribution", description="Uniform, rounded to multiples of q.")
    low: float = Field(title="Low", description="Smallest value.")
    high: float = Field(title="High", description="Largest value.")
    q: float = Field(gt=0, title="Step", description="Samples are rounded to a multiple of this.")

    @model_validator(mode="after")
    def _check_range(self):
        if self.low >= self.high:
            raise _Invalid([("high", f"must be greater than low (got {self.high!r} <= {self.low!r})")])
        return self


SearchParam = Annotated[
    Union[UniformParam, ChoiceParam, GridParam, RandIntParam, QUniformParam],
    Field(discriminator="type"),
]


def _search_types() -> str:
    return ", ".join(repr(tag) for m in typing.get_args(_unwrap(SearchParam)) for tag in _union_tags(m))


def _check_search_param(path: str, param: Any) -> list[tuple[Any, str]]:
    """Problems (relative to the space entry) of searching ``path`` with ``param``."""
    if not _tunable(path):
        return [((), "not a tunable setting")]
    try:
        target = _resolve(path)
    except LookupError as exc:
        return [((), str(exc))]
    base = _unwrap(target)
    if _is_model(base):
        return [((), "is a section; search one of its settings instead")]
    adapter = TypeAdapter(target)

    def rejects(value: Any) -> str | None:
        try:
            adapter.validate_python(value)
        except ValidationError as exc:
            err = exc.errors()[0]
            return f"{err['msg']} (got {_brief(value)})"
        return None

    if isinstance(param, (ChoiceParam, GridParam)):
        return [(("values", i), msg) for i, v in enumerate(param.values) if (msg := rejects(v))]
    if base not in (int, float):
        return [(("type",), f"{param.type} needs a numeric setting; use choice")]
    if base is int and isinstance(param, UniformParam):
        return [(("type",), "integer setting: use randint, quniform or choice")]
    problems: list[tuple[Any, str]] = []
    if base is int and isinstance(param, QUniformParam) and not float(param.q).is_integer():
        problems.append((("q",), "must be a whole number for an integer setting"))
    # randint's high is exclusive, so its largest sample is high - 1.
    largest = param.high - 1 if isinstance(param, RandIntParam) else param.high
    for key, value in (("low", param.low), ("high", largest)):
        if msg := rejects(value):
            problems.append(((key,), msg))
    return problems


class SearchConfig(BaseModel):
    """Hyper-parameter search with Ray Tune: which settings to vary and how to compare trials."""

    model_config = _STRICT

    space: dict[str, SearchParam] = Field(
        default_factory=dict,
        title="Search space",
        description="Settings to vary, keyed by dotted path (e.g. 'optim.lr'), each with its distribution.",
    )
    num_samples: int = Field(10, ge=1, title="Trials", description="Number of configurations to try.")
    metric: str = Field(
        "val/loss", min_length=1, title="Metric", description="Logged metric that ranks trials (e.g. 'val/loss')."
    )
    mode: Literal["min", "max"] = Field(
        "min", title="Goal", description="Whether a lower ('min') or higher ('max') metric is better."
    )
    scheduler: Literal["asha", "fifo"] = Field(
        "asha",
        title="Trial scheduler",
        description="'asha' stops unpromising trials early; 'fifo' runs every trial to the end.",
    )
    max_concurrent: int = Field(1, ge=1, title="Parallel trials", description="Trials that may run at the same time.")
    gpus_per_trial: float = Field(
        0, ge=0, title="GPUs per trial", description="GPUs reserved for each trial; fractions share a GPU."
    )
    cpus_per_trial: float = Field(1, gt=0, title="CPUs per trial", description="CPU cores reserved for each trial.")
    grace_period: int = Field(
        1, ge=1, title="Grace period", description="Epochs every trial runs before ASHA may stop it."
    )
    reduction_factor: float = Field(
        2, gt=1, title="Reduction factor", description="ASHA keeps the best 1/factor of trials at each rung."
    )

    @field_validator("space")
    @classmethod
    def _paths_exist(cls, space):
        problems = [((key, *rel), msg) for key, param in space.items() for rel, msg in _check_search_param(key, param)]
        if problems:
            raise _Invalid(problems)
        return space


# --------------------------------------------------------------------------- compute and tracking


class ComputeConfig(BaseModel):
    """Where the run executes: local CPU/GPU or a Ray cluster."""

    model_config = _STRICT

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
    def _devices(cls, value):
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
    def _ray_address(cls, value):
        if value is not None and not re.fullmatch(r"auto|local|(ray|https?)://\S+|[\w.-]+:\d+", value):
            raise ValueError("expected 'auto', 'ray://host:port', 'http://host:8265' or 'host:port'")
        return value


class TrackingConfig(BaseModel):
    """Where metrics, parameters and models are recorded (MLflow)."""

    model_config = _STRICT

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


# --------------------------------------------------------------------------- the run


class RunConfig(BaseModel):
    """Everything needed to reproduce one training run (or one search)."""

    model_config = _STRICT

    data: DataConfig = Field(default_factory=DataConfig, title="Data", description="Dataset, splits and loading.")
    task: TaskConfig = Field(title="Task", description="What the model learns to do.")
    model: ModelConfig = Field(
        default_factory=ModelConfig, title="Model", description="Architecture and starting weights."
    )
    augmentation: AugmentationConfig = Field(
        default_factory=AugmentationConfig, title="Augmentation", description="Image augmentation."
    )
    optim: OptimConfig = Field(
        default_factory=OptimConfig, title="Optimisation", description="Epochs, batch size, learning rate and schedule."
    )
    search: SearchConfig | None = Field(
        None, title="Hyper-parameter search", description="Ray Tune search; empty trains a single run."
    )
    compute: ComputeConfig = Field(
        default_factory=ComputeConfig, title="Compute", description="Hardware and distribution."
    )
    tracking: TrackingConfig = Field(
        default_factory=TrackingConfig, title="Tracking", description="MLflow experiment tracking."
    )
    workspace: str | None = Field(
        None,
        title="Workspace",
        description="Folder for checkpoints, logs and the default tracking database; empty uses the app's default.",
    )
    version: int = Field(
        CONFIG_VERSION,
        ge=1,
        le=CONFIG_VERSION,
        title="Format version",
        description="Version of this configuration format.",
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, data):
        if not isinstance(data, dict):
            return data
        data = dict(data)
        # An empty YAML heading ("optim:") means the section's defaults (or no search).
        for name in cls.model_fields:
            if name in data and data[name] is None and name not in ("search", "workspace"):
                data[name] = {} if name != "version" else CONFIG_VERSION
        if isinstance(data.get("task"), str):  # "task: detection"
            data["task"] = {"name": data["task"]}
        return data

    @model_validator(mode="after")
    def _fill_checkpoints(self):
        multitask = self.task.name == "multitask"
        if multitask:
            why = f"not one of the multitask tasks ({', '.join(self.task.tasks)})"
        else:
            why = "only used for multitask runs; set model.checkpoint instead"
        wrong = [(("model", "checkpoints", key), why) for key in self.model.checkpoints if key not in self.task.tasks]
        if wrong:
            raise _Invalid(wrong)
        updates: dict[str, Any] = {}
        if self.model.checkpoint is None and not multitask:
            updates["checkpoint"] = DEFAULT_CHECKPOINTS[self.task.name]
        missing = {t: DEFAULT_CHECKPOINTS[t] for t in self.task.tasks if t not in self.model.checkpoints}
        if missing:
            updates["checkpoints"] = {**self.model.checkpoints, **missing}
        if updates:
            # A copy, so a ModelConfig passed in by the caller is not changed behind its back.
            self.model = self.model.model_copy(update=updates)
        return self

    @model_validator(mode="after")
    def _image_size_fits_model(self):
        # Runs after _fill_checkpoints, so an empty checkpoint is already the task default.
        if self.data.image_size is None or self.task.name == "multitask":
            return self  # multitask models share a backbone that takes any size
        from engine.models.input_size import image_size_problem  # light: no torch, no network

        problem = image_size_problem(self.model.checkpoint, self.data.image_size)
        if problem:
            raise _Invalid([(("data", "image_size"), problem)])
        return self

    # ----------------------------------------------------------------- loading

    @classmethod
    def from_dict(cls, data: Any, source: str | None = None) -> "RunConfig":
        """Validate plain data (e.g. parsed YAML); any problem raises ConfigError."""
        if not isinstance(data, Mapping):
            kind = "nothing" if data is None else type(data).__name__
            raise ConfigError([("", f"expected a mapping of sections (data:, task:, ...), got {kind}")], source)
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise ConfigError.from_validation_error(exc, source) from None

    @classmethod
    def from_yaml(cls, path_or_text: "str | os.PathLike[str]", *, source: str | None = None) -> "RunConfig":
        """Load from a file path or from YAML text.

        A ``Path``, or a one-line string naming an existing file or ending in
        .yaml/.yml, is read as a file; anything else is parsed as YAML text
        (``source`` then names it in error messages).
        """
        if isinstance(path_or_text, os.PathLike):
            return cls.load(path_or_text)
        text = path_or_text
        if "\n" not in text and (text.endswith((".yaml", ".yml")) or Path(text).is_file()):
            return cls.load(text)
        return cls.from_dict(_parse_yaml(text, source), source)

    @classmethod
    def load(cls, path: "str | os.PathLike[str]") -> "RunConfig":
        """Read a YAML config file; ConfigError names the file on any problem."""
        name = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError([("", f"cannot read the file: {exc.strerror or exc}")], name) from None
        except UnicodeDecodeError:
            raise ConfigError([("", "not a text file (it is not valid UTF-8)")], name) from None
        return cls.from_dict(_parse_yaml(text, name), name)

    # ----------------------------------------------------------------- saving

    def to_yaml(self) -> str:
        """Stable YAML text: sections in declaration order, JSON-compatible values."""
        return _dump_yaml(self.model_dump(mode="json"))

    def save(self, path: "str | os.PathLike[str]") -> Path:
        """Write the config atomically: readers see the old file or the new one, never half of one."""
        path = Path(path)
        text = self.to_yaml()  # serialise before touching the disk
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            # 0o666 through the umask, like an ordinary new file (mkstemp would force 0o600).
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with open(fd, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            if path.exists():
                os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path

    # ----------------------------------------------------------------- overrides

    def with_overrides(self, overrides: Mapping[str, Any]) -> "RunConfig":
        """A validated copy with ``{"optim.lr": 3e-4, ...}`` applied; ConfigError on any bad path or value."""
        data = self.model_dump()
        _forget_default_checkpoints(data)
        problems = []
        for path, value in overrides.items():
            try:
                _resolve(path)
            except LookupError as exc:
                problems.append((path, str(exc)))
                continue
            # Search libraries hand out numpy scalars; keep the config plain Python.
            if type(value).__module__ == "numpy" and hasattr(value, "item"):
                value = value.item()
            node = data
            *parents, leaf = path.split(".")
            for key in parents:
                if not isinstance(node.get(key), dict):
                    node[key] = {}  # e.g. search.num_samples while search is empty
                node = node[key]
            node[leaf] = value
        if problems:
            raise ConfigError(problems, "overrides")
        return type(self).from_dict(data, "overrides")


def _forget_default_checkpoints(data: dict) -> None:
    """Blank checkpoints that are just the task default, so validation re-derives them.

    Otherwise overriding ``task.name`` would keep the old task's default model.
    """
    model, task = data["model"], data["task"]
    if model.get("checkpoint") == DEFAULT_CHECKPOINTS.get(task["name"]):
        model["checkpoint"] = None
    model["checkpoints"] = {t: c for t, c in model["checkpoints"].items() if DEFAULT_CHECKPOINTS.get(t) != c}


def json_schema() -> dict:
    """JSON schema of RunConfig, from which the app builds its forms."""
    return RunConfig.model_json_schema()


# --------------------------------------------------------------------------- YAML


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node, deep=False):
        self.flatten_mapping(node)
        first_seen: dict[str, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str):
                if key in first_seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (first on line {first_seen[key]})", key_node.start_mark
                    )
                first_seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def _parse_yaml(text: str, source: str | None) -> Any:
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
        # An empty file is an empty mapping, so the user hears which keys are required.
        return {} if data is None else data
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = source or "<yaml>"
        if mark is not None:
            where += f":{mark.line + 1}:{mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        message = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
        raise ConfigError([("", message)], where) from None


def _dump_yaml(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)
