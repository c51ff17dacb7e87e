"""What a run's augmentation recipe resolves to, for the Augment tab to show (Qt-free).

The engine decides what ``augmentation.strength: auto`` means (``engine.recipes``); this
module only asks it, for one run config, and words the answer. It reads the dataset (to
count the training images), so it runs in a worker thread, never on the GUI thread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.config import RunConfig

SPLITS = ("train", "val")


@dataclass(frozen=True)
class RunRecipe:
    """The steps a run trains and validates with when nothing overrides them, and why."""

    task: str
    image_size: int
    specs: dict[str, list[dict]]  # split -> steps
    text: str  # e.g. "auto → medium: 224 px images, 34 epochs, 48 training images"


def recipe_key(config: RunConfig) -> str:
    """The parts of a config the recipe depends on: an edit elsewhere (the learning rate) needs no new answer."""
    optim = config.optim.model_dump(include={"epochs", "batch_size", "accumulate_grad_batches", "max_steps"})
    parts = {
        "task": config.task.model_dump(),
        "model": config.model.model_dump(),
        "data": config.data.model_dump(),
        "augmentation": config.augmentation.model_dump(),
        "optim": optim,
    }
    return json.dumps(parts, sort_keys=True, default=str)


def resolve_run_recipe(config: RunConfig) -> RunRecipe:
    """The recipe's train/val steps for ``config`` at the image size the run will use.

    Splits the config already gives steps for keep them. Without a dataset the strength
    cannot be chosen yet: the task's preset at the run's size is shown and the text says so.
    """
    from engine.data import augment
    from engine.recipes import choose_strength, effective_image_size, explain_recipe, train_image_count

    task = config.task.name
    size = effective_image_size(config)
    aug = config.augmentation
    if not aug.preset:
        specs = {split: list(getattr(aug, split) or []) for split in SPLITS}
        return RunRecipe(task, size, specs, "no augmentation recipe: the config turns the preset off")
    if not config.data.path:
        specs = {split: augment.preset(task, split, size) for split in SPLITS}
        return RunRecipe(
            task,
            size,
            specs,
            f"{aug.strength}: chosen once the run has a dataset (showing the {task} preset at {size} px)",
        )
    train_images = train_image_count(config)
    resolved = explain_recipe(config, train_images=train_images).config
    size = resolved.data.image_size or size
    specs = {split: list(getattr(resolved.augmentation, split) or []) for split in SPLITS}
    strength = resolved.augmentation.strength
    if aug.strength == "auto":
        _, why = choose_strength(size, train_images, resolved.optim.epochs, task=task)
        text = f"auto → {strength}: {why}"
    else:
        text = f"{strength}: set in the run config"
    return RunRecipe(task, size, specs, text)
