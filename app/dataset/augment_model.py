"""The Augment tab's pipelines as a Qt-free model: what a run trains and validates with.

A spec is a list of ``{"name": ..., **params}`` steps (see ``engine.data.augment``), one
for the train and one for the val pipeline. Attached to a run (``set_run``), the model
follows the run's task and image size, and a pipeline nobody edited is whatever the run's
recipe resolves to (``augment_recipe``). An edit makes that pipeline an explicit override,
which ``apply_to_config`` writes into the run config; ``use_recipe`` goes back to the
recipe. A pipeline nobody edited is never written, so the recipe (and the run's image
size) decides it.

Every spec is checked by the engine, which is imported on demand (it loads albumentations
and torch): the model holds no specs until ``load`` has been called, off the import's
critical path.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from engine.config.task_defaults import DEFAULT_IMAGE_SIZE

from .augment_recipe import RunRecipe, recipe_key, resolve_run_recipe

if TYPE_CHECKING:
    from engine.config import RunConfig

TASKS = ("classification", "detection", "segmentation")
SPLITS = ("train", "val")
# The size box's smallest value, which it shows until the task's default or a run's recipe
# replaces it.
MIN_IMAGE_SIZE = 16


def augment_module():
    """``engine.data.augment``, imported on demand (it loads albumentations and torch)."""
    from engine.data import augment

    return augment


def flow_yaml(value: Any) -> str:
    """A value as one line of YAML (a step's tooltip, the generic parameter fields)."""
    if value is None:
        return ""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000)
    return text.removesuffix("...\n").strip()


def step_text(step: dict, number: int) -> str:
    """One line of the step list, numbered like the "step N" of validation messages."""
    params = ", ".join(f"{k}={flow_yaml(v) if not isinstance(v, str) else v}" for k, v in step.items() if k != "name")
    if len(params) > 70:
        params = params[:69] + "…"
    return f"{number}. {step['name']}   {params}" if params else f"{number}. {step['name']}"


def required_guess(name: str, size: int) -> Any:
    """A working value for a parameter that has no default, so adding a step gives a usable step."""
    return {
        "height": size,
        "width": size,
        "size": [size, size],
        "max_size": size,
        "min_max_height": [size // 2, size],
        "num_grid_xy": [4, 4],
        "magnitude": 10,
    }.get(name)


def recipe_for(run_config: RunConfig) -> dict:
    """The run's recipe (runs in a worker: it reads the dataset); a problem comes back as
    ``{"error": message}``."""
    try:
        return {"recipe": resolve_run_recipe(run_config)}
    except Exception as exc:  # a dataset the engine cannot read: said in the recipe line
        return {"error": f"{type(exc).__name__}: {exc}"}


@dataclass(frozen=True)
class RecipeLine:
    """What the line above the steps says about whose steps they are."""

    text: str
    overridden: bool | None  # True: edits replace the recipe; False: the recipe's steps; None: not editable


class AugmentSpecs:
    """The train and val specs of one task, the overrides among them, and the run's recipe."""

    def __init__(self, task: str = "detection", *, augment: Callable[[], Any] = augment_module):
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}")
        self.task = task
        self.image_size = MIN_IMAGE_SIZE  # the size presets are built for
        self.run: RunConfig | None = None  # the run followed, None when the panel stands alone
        self.overrides: set[str] = set()  # pipelines edited here, which replace the recipe
        self.recipe: RunRecipe | None = None  # what the run's recipe resolved to, once known
        self.recipe_key: str | None = None  # recipe_key of the run config last asked about
        self.recipe_asked = False
        self.recipe_error = ""
        self._augment = augment
        self._specs: dict[str, list[dict]] | None = None

    # ------------------------------------------------------------------ reading
    @property
    def loaded(self) -> bool:
        return self._specs is not None

    def spec(self, split: str) -> list[dict]:
        """A copy of the last valid spec of ``split``."""
        return copy.deepcopy(self._specs[split])

    def spec_yaml(self, split: str) -> str:
        return self._augment().spec_to_yaml(self.spec(split))

    def overridden_splits(self) -> tuple[str, ...]:
        """The pipelines edited here, which replace the run's recipe ("train", "val")."""
        return tuple(split for split in SPLITS if split in self.overrides)

    @property
    def recipe_text(self) -> str:
        """What the run's recipe resolves to, in words ("" until known)."""
        return self.recipe.text if self.recipe is not None else ""

    def default_spec(self, split: str) -> list[dict]:
        """A pipeline nobody edited: the run's recipe once known, else the task's preset at the model's size."""
        if self.recipe is not None and self.recipe.task == self.task:
            return copy.deepcopy(self.recipe.specs[split])
        return self._augment().preset(self.task, split, self.image_size)

    def transforms(self) -> list[str]:
        """The transform names the task can use, for the Add box."""
        return self._augment().available_transforms(self.task)

    def describe(self, name: str) -> dict:
        """A transform's doc and parameters (``engine.data.augment.describe_transform``)."""
        return self._augment().describe_transform(name)

    # ------------------------------------------------------------------ loading and the task
    def load(self) -> None:
        """Fill both pipelines once the engine module is importable (blocks on the import otherwise)."""
        if self._specs is not None:
            return
        augment = self._augment()
        if self.run is None:
            self.image_size = augment.DEFAULT_IMAGE_SIZE[self.task]
        self._specs = {split: self.default_spec(split) for split in SPLITS}

    def set_task(self, task: str) -> list[str] | None:
        """Switch task. Once loaded, pipelines nobody edited take the new task's steps and edits the
        new task cannot use are dropped: returns why (a note per dropped pipeline), or None when
        no pipeline was redone."""
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}")
        if task == self.task:
            return None
        self.task = task
        if self._specs is None:
            return None
        augment = self._augment()
        if self.run is None:  # following a run, the size is the run's
            self.image_size = augment.DEFAULT_IMAGE_SIZE[task]
        notes = []
        for split in SPLITS:
            if split in self.overrides:
                try:
                    augment.validate_spec(self._specs[split], task=task)
                    continue
                except augment.AugmentationSpecError as err:
                    notes.append(f"{split}: {err}")
                    self.overrides.discard(split)
            self._specs[split] = self.default_spec(split)
        return notes

    # ------------------------------------------------------------------ edits
    def validate(self, spec: list[dict]) -> list[dict]:
        """``spec`` normalised for the task; raises AugmentationSpecError when the task cannot use it."""
        return self._augment().validate_spec(spec, task=self.task)

    def commit(self, spec: list[dict], split: str) -> bool:
        """Store a valid spec as an explicit override; True when ``split`` was following the recipe."""
        self._specs[split] = spec
        if split in self.overrides:
            return False
        self.overrides.add(split)
        return True

    def new_step(self, name: str) -> dict:
        """A step of transform ``name`` with a working value for each required parameter it can guess."""
        augment = self._augment()
        step: dict[str, Any] = {"name": name}
        try:
            for param in augment.describe_transform(name)["params"]:
                guess = required_guess(param["name"], self.image_size)
                if param["required"] and guess is not None:
                    step[param["name"]] = guess
        except augment.AugmentationSpecError:
            pass  # unknown name: validation says so, with suggestions
        return step

    def with_step_added(self, split: str, name: str, at: int) -> list[dict]:
        """``split``'s spec with a new ``name`` step at position ``at``, validated (raises when invalid)."""
        spec = self.spec(split)
        spec.insert(at, self.new_step(name))
        return self.validate(spec)

    def with_param(self, split: str, row: int, name: str, value: Any) -> list[dict] | None:
        """``split``'s spec with step ``row``'s parameter ``name`` set, validated (raises when invalid).

        None when it is no edit: a field left at its default would override the recipe for nothing.
        """
        spec = self.spec(split)
        defaults = {p["name"]: p["default"] for p in self.describe(spec[row]["name"])["params"]}
        if name not in spec[row] and name in defaults and value == defaults[name]:
            return None
        spec[row][name] = value
        return self.validate(spec)

    def preset(self, split: str) -> list[dict]:
        """The task's recommended ``split`` pipeline at the model's image size."""
        return self._augment().preset(self.task, split, self.image_size)

    # ------------------------------------------------------------------ run configs
    def load_config(self, run_config: RunConfig) -> None:
        """A run config's augmentation: its own steps as overrides, the recipe (or preset) for the rest.

        Call ``set_task`` with the config's task first."""
        aug = run_config.augmentation
        # With the preset off, a pipeline without steps really is empty.
        explicit = {
            split: (getattr(aug, split) or []) for split in SPLITS if not aug.preset or getattr(aug, split) is not None
        }
        self.overrides = set(explicit)
        if self.run is None and run_config.data.image_size:
            self.image_size = run_config.data.image_size
        for split in SPLITS:
            spec = explicit[split] if split in explicit else self.default_spec(split)
            self._specs[split] = self.validate(spec)

    def apply_to_config(self, run_config: RunConfig) -> RunConfig:
        """A copy of ``run_config`` carrying the overrides; unchanged when nothing was edited."""
        if not self.overrides:
            return run_config  # the recipe decides, at the run's own image size
        name = run_config.task.name
        if name not in TASKS:
            raise ValueError(
                f"the Augment tab's {self.task} steps cannot be used by a {name} run; go back to auto to use its own"
            )
        if name != self.task:
            # A spec is checked against its task: a classification crop may drop every detection box.
            raise ValueError(f"the panel holds {self.task} augmentations but the config trains {name}")
        aug = run_config.augmentation
        if self.overrides == set(SPLITS):
            augmentation = type(aug)(preset=False, train=self.spec("train"), val=self.spec("val"))
        else:  # the pipeline not edited stays the recipe's, at the run's image size
            augmentation = aug.model_copy(update={split: self.spec(split) for split in self.overrides})
        return run_config.model_copy(update={"augmentation": augmentation})

    # ------------------------------------------------------------------ following a run
    def set_run(self, run_config: RunConfig) -> None:
        if self.run is None and self.recipe is None and run_config.task.name in TASKS:
            # Until the recipe answers, the run's own size or the task's usual one (not the size
            # box's minimum: the first preview showed 16 px tiles while the recipe was worked out).
            self.image_size = run_config.data.image_size or DEFAULT_IMAGE_SIZE[run_config.task.name]
        self.run = run_config

    def recipe_outdated(self) -> bool:
        """True when the run changed in a way the recipe depends on since it was last asked about."""
        return self.run is not None and recipe_key(self.run) != self.recipe_key

    def recipe_request(self) -> RunConfig | None:
        """The run config to resolve the recipe of (noted as asked), or None when there is none to ask."""
        if self.run is None or self.run.task.name not in TASKS:
            return None
        self.recipe_key = recipe_key(self.run)
        self.recipe_asked = True
        return self.run

    def recipe_resolved(self, result: dict) -> bool | None:
        """Take ``recipe_for``'s answer. None when it was an error; else whether a pipeline nobody
        edited changed its steps."""
        if "error" in result:
            self.recipe_error = result["error"]
            return None
        recipe = result["recipe"]
        self.recipe, self.recipe_error = recipe, ""
        changed = False
        if recipe.task == self.task:
            self.image_size = recipe.image_size
            if self._specs is not None:
                for split in SPLITS:
                    if split not in self.overrides and self._specs[split] != recipe.specs[split]:
                        self._specs[split] = copy.deepcopy(recipe.specs[split])
                        changed = True
        return changed

    def use_recipe(self) -> bool:
        """Drop every override (both pipelines are the recipe's again); False when there was none."""
        if not self.overrides:
            return False
        self.overrides.clear()
        if self._specs is not None:
            for split in SPLITS:
                self._specs[split] = self.default_spec(split)
        return True

    def recipe_line(self, *, waiting: bool = False) -> RecipeLine | None:
        """The words for the recipe line (None when no run is followed); ``waiting``: a new answer is due."""
        if self.run is None:
            return None
        task = self.run.task.name
        if task not in TASKS:
            return RecipeLine(f"The run is {task}: its augmentation is not edited here.", None)
        pending = self.recipe_asked and self.recipe is None and not self.recipe_error
        if self.recipe_error:
            recipe = f"could not work out the recipe: {self.recipe_error}"
        elif pending or waiting or self.recipe_key != recipe_key(self.run):
            recipe = "working out the recipe…"
        else:
            recipe = self.recipe_text
        if not self.overrides:
            return RecipeLine(
                f"Recipe — {recipe}. These are the steps the run uses; an edit here overrides them.", False
            )
        edited = " and ".join(self.overridden_splits())
        rest = [s for s in SPLITS if s not in self.overrides]
        tail = f"; {rest[0]} follows the recipe ({recipe})" if rest else ""
        return RecipeLine(f"Overridden here: the run uses the {edited} steps below instead of the recipe{tail}.", True)
