"""The whole run's fields, the hyper-parameter search section, and the paths into them.

``RunFields`` is what a run configuration holds and the rules between its
sections; :class:`engine.config.run.RunConfig` adds reading, writing and
overrides. The search section lives here because checking a search space means
resolving its dotted paths against the whole run.
"""

import typing
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, Field, TypeAdapter, ValidationError, field_validator, model_validator

from .problems import InvalidFields, brief
from .sections import (
    STRICT,
    AugmentationConfig,
    ComputeConfig,
    DataConfig,
    ModelConfig,
    OptimConfig,
    TaskConfig,
    TrackingConfig,
)
from .task_defaults import DEFAULT_CHECKPOINTS
from .type_tree import is_model, leaf_paths, resolve_path, union_tags, unwrap

__all__ = [
    "CONFIG_VERSION",
    "ChoiceParam",
    "GridParam",
    "QUniformParam",
    "RandIntParam",
    "RunFields",
    "SearchConfig",
    "SearchParam",
    "UniformParam",
    "config_field_paths",
    "resolve",
    "search_types",
    "tunable_field_paths",
]

CONFIG_VERSION = 1


class UniformParam(BaseModel):
    """A float drawn between low and high, evenly or on a log scale."""

    model_config = STRICT

    type: Literal["loguniform", "uniform"] = Field(
        title="Distribution", description="'loguniform' spreads samples evenly over orders of magnitude."
    )
    low: float = Field(title="Low", description="Smallest value.")
    high: float = Field(title="High", description="Largest value.")

    @model_validator(mode="after")
    def _check_range(self) -> Self:
        problems = []
        if self.type == "loguniform" and self.low <= 0:
            problems.append(("low", f"must be greater than 0 for loguniform (got {self.low!r})"))
        if self.low >= self.high:
            problems.append(("high", f"must be greater than low (got {self.high!r} <= {self.low!r})"))
        if problems:
            raise InvalidFields(problems)
        return self


class ChoiceParam(BaseModel):
    """One of a fixed list of values."""

    model_config = STRICT

    type: Literal["choice"] = Field(title="Distribution", description="Pick one of the listed values.")
    values: list[Any] = Field(min_length=1, title="Values", description="The values to choose from.")


class GridParam(BaseModel):
    """Every listed value is tried (each combined with the other settings' samples)."""

    model_config = STRICT

    type: Literal["grid"] = Field(title="Distribution", description="Try each listed value in turn.")
    values: list[Any] = Field(min_length=1, title="Values", description="The values to try.")


class RandIntParam(BaseModel):
    """An integer drawn from low (inclusive) to high (exclusive), as in Ray Tune."""

    model_config = STRICT

    type: Literal["randint"] = Field(title="Distribution", description="A random integer.")
    low: int = Field(title="Low", description="Smallest value (inclusive).")
    high: int = Field(title="High", description="Upper bound (exclusive).")

    @model_validator(mode="after")
    def _check_range(self) -> Self:
        if self.low >= self.high:
            raise InvalidFields([("high", f"must be greater than low (got {self.high!r} <= {self.low!r})")])
        return self


class QUniformParam(BaseModel):
    """A value between low and high rounded to a multiple of q."""

    model_config = STRICT

    type: Literal["quniform"] = Field(title="Distribution", description="Uniform, rounded to multiples of q.")
    low: float = Field(title="Low", description="Smallest value.")
    high: float = Field(title="High", description="Largest value.")
    q: float = Field(gt=0, title="Step", description="Samples are rounded to a multiple of this.")

    @model_validator(mode="after")
    def _check_range(self) -> Self:
        if self.low >= self.high:
            raise InvalidFields([("high", f"must be greater than low (got {self.high!r} <= {self.low!r})")])
        return self


SearchParam = Annotated[
    UniformParam | ChoiceParam | GridParam | RandIntParam | QUniformParam,
    Field(discriminator="type"),
]


def search_types() -> str:
    """The distributions a search space entry may name, for error messages."""
    return ", ".join(repr(tag) for m in typing.get_args(unwrap(SearchParam)) for tag in union_tags(m))


def _check_search_param(path: str, param: Any) -> list[tuple[Any, str]]:
    """Problems (relative to the space entry) of searching ``path`` with ``param``."""
    if not _tunable(path):
        return [((), "not a tunable setting")]
    try:
        target = resolve(path)
    except LookupError as exc:
        return [((), str(exc))]
    base = unwrap(target)
    if is_model(base):
        return [((), "is a section; search one of its settings instead")]
    adapter = TypeAdapter(target)

    def rejects(value: Any) -> str | None:
        try:
            adapter.validate_python(value)
        except ValidationError as exc:
            err = exc.errors()[0]
            return f"{err['msg']} (got {brief(value)})"
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

    model_config = STRICT

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
    def _paths_exist(cls, space: dict[str, Any]) -> dict[str, Any]:
        problems = [((key, *rel), msg) for key, param in space.items() for rel, msg in _check_search_param(key, param)]
        if problems:
            raise InvalidFields(problems)
        return space


# --------------------------------------------------------------------------- the run


class RunFields(BaseModel):
    """Everything needed to reproduce one training run (or one search): the fields and
    the rules between sections. Use :class:`engine.config.RunConfig`, which adds I/O."""

    model_config = STRICT

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
    def _shorthands(cls, data: Any) -> Any:
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
    def _fill_checkpoints(self) -> Self:
        multitask = self.task.name == "multitask"
        if multitask:
            why = f"not one of the multitask tasks ({', '.join(self.task.tasks)})"
        else:
            why = "only used for multitask runs; set model.checkpoint instead"
        wrong = [(("model", "checkpoints", key), why) for key in self.model.checkpoints if key not in self.task.tasks]
        if wrong:
            raise InvalidFields(wrong)
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
    def _image_size_fits_model(self) -> Self:
        # Runs after _fill_checkpoints, so an empty checkpoint is already the task default.
        if self.data.image_size is None or self.task.name == "multitask":
            return self  # multitask models share a backbone that takes any size
        from engine.catalog.input_size import image_size_problem  # light: no torch, no network

        problem = image_size_problem(self.model.checkpoint, self.data.image_size)
        if problem:
            raise InvalidFields([(("data", "image_size"), problem)])
        return self


# --------------------------------------------------------------------------- paths


def resolve(path: str) -> Any:
    """The type at a dotted path in the run config; LookupError names the bad key."""
    return resolve_path(RunFields, path)


def config_field_paths() -> list[str]:
    """Every leaf setting of RunConfig as a dotted path, in declaration order."""
    return leaf_paths(RunFields)


# Sections that define what the run is, or the search itself: not hyper-parameters.
_NOT_TUNABLE = ("search", "task", "tracking", "workspace", "version")


def _tunable(path: str) -> bool:
    return not any(path == p or path.startswith(p + ".") for p in _NOT_TUNABLE)


def tunable_field_paths() -> list[str]:
    """The leaf paths a search space may use (numeric ones also take ranges)."""
    return [p for p in config_field_paths() if _tunable(p)]
