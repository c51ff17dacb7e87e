"""The typed run configuration: one YAML file describes a whole training run.

``RunConfig`` is the single source of truth shared by the CLI, the desktop app
(its forms are generated from :func:`json_schema`) and the hyper-parameter
search (which rewrites fields through :meth:`RunConfig.with_overrides`).

Every bad input (YAML syntax, unknown key, bad value, wrong type) surfaces as a
:class:`ConfigError` whose message names the file and each offending key as a
dotted path, e.g. ``run.yaml: optim.lr: Input should be greater than 0 (got -1)``.

The desktop app imports this package at start-up, so it must stay light: only
pydantic and PyYAML here, never torch, lightning, ray or mlflow.

Where each part lives:

* :mod:`.task_defaults`: what a task uses
  when the config leaves a choice empty;
* :mod:`.sections`: the data, task, model, augmentation, optimisation, compute and
  tracking sections;
* :mod:`.run_fields`: the search section, the whole run's fields and the rules
  between sections, and the dotted paths into them;
* :mod:`.errors`: :class:`ConfigError`, naming each offending key;
* :mod:`.yaml_io`: strict YAML parsing, stable dumping, atomic writes;
* :mod:`.run`: :class:`RunConfig`, the fields plus loading, saving and overrides.
"""

from engine.catalog.task_names import ALL_TASKS, SINGLE_TASKS, SingleTask, TaskName

from .errors import ConfigError
from .run import RunConfig, json_schema
from .run_fields import (
    CONFIG_VERSION,
    ChoiceParam,
    GridParam,
    QUniformParam,
    RandIntParam,
    SearchConfig,
    SearchParam,
    UniformParam,
    config_field_paths,
    tunable_field_paths,
)
from .sections import (
    AugmentationConfig,
    ComputeConfig,
    DataConfig,
    ModelConfig,
    OptimConfig,
    TaskConfig,
    TrackingConfig,
    default_num_workers,
)
from .task_defaults import DEFAULT_CHECKPOINTS, DEFAULT_IMAGE_SIZE

__all__ = [
    "ALL_TASKS",
    "CONFIG_VERSION",
    "DEFAULT_CHECKPOINTS",
    "DEFAULT_IMAGE_SIZE",
    "SINGLE_TASKS",
    "AugmentationConfig",
    "ChoiceParam",
    "ComputeConfig",
    "ConfigError",
    "DataConfig",
    "GridParam",
    "ModelConfig",
    "OptimConfig",
    "QUniformParam",
    "RandIntParam",
    "RunConfig",
    "SearchConfig",
    "SearchParam",
    "SingleTask",
    "TaskConfig",
    "TaskName",
    "TrackingConfig",
    "UniformParam",
    "config_field_paths",
    "default_num_workers",
    "json_schema",
    "tunable_field_paths",
]
