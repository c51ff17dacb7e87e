"""Training recipes: the automatic choices a run makes when settings are left on "auto".

A recipe fills in what the user did not choose, from what it can measure before
training: the model family and whether it starts from trained weights, the image
size, the number of training images, the batch size and the number of epochs.

* **Learning rate, gradient clipping, warm-up, epochs** (``optim.lr``,
  ``optim.grad_clip``, ``optim.warmup_steps``, ``optim.epochs`` empty): per model
  family, see :mod:`engine.recipe_optim`. Epochs default to 10, more on small sets
  so the run makes enough optimiser steps to learn (a detector, 300).

* **Augmentation strength** (``augmentation.strength: auto``). Augmentation
  only pays once a model has seen the data many times; in a run too short to
  overfit it only slows the learning down (on real sets at 5 epochs a small
  shift cost up to 7 points of top-1), and on tiny images a strong crop destroys
  more signal than it adds. So:

  - ``none``   when the run is under 10 epochs: the validation transform (the
    whole image resized, or resized and padded);
  - ``light``  when the images are under 64 px: for classification the whole
    image resized plus a small random shift and zoom (no flip: digits and text
    are not mirror-symmetric); for detection and segmentation resize, pad and
    horizontal flip;
  - ``full``   (the task's strongest preset, e.g. RandomResizedCrop 0.08-1 +
    flip + colour jitter) when the images are 160 px or more, the run is 30
    epochs or more and there are 1,000 training images or more;
  - ``medium`` (a mild random crop, flip and colour jitter) otherwise.

* **Validation transforms** always keep the whole image (resize or resize
  and pad, never a border crop).

* **Schedule** (``optim.scheduler: auto``): under 10 epochs ``wsd`` (the peak
  rate, then a linear decay to zero over the last 20% of the run: a short run
  still underfits, and a cosine decay halves its mean rate: 8 points of top-1 on
  digits at 5 epochs); cosine decay over the run otherwise.

Every choice can be overridden: set ``augmentation.strength`` to none, light,
medium or full, give ``augmentation.train`` / ``augmentation.val`` steps
(they replace the recipe's), set ``augmentation.preset: false`` for none, and
set any ``optim`` value explicitly.
:func:`resolve_recipe` writes the concrete choices back into the config, so
the run's saved ``run.yaml`` says exactly what was used.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from engine.config import RunConfig
from engine.recipe_optim import choose_epochs, choose_warmup, regime_for

__all__ = [
    "STRENGTHS",
    "Recipe",
    "choose_schedule",
    "choose_strength",
    "choose_warmup",
    "effective_image_size",
    "recipe_spec",
    "resolve_recipe",
    "train_image_count",
]

STRENGTHS = ("none", "light", "medium", "full")

# Thresholds of the rule above (documented in the README).
TINY_IMAGE = 64
SHORT_RUN_EPOCHS = 10
LARGE_IMAGE = 160
LONG_RUN_EPOCHS = 30
LARGE_DATASET = 1000


@dataclass(frozen=True)
class Recipe:
    """What :func:`resolve_recipe` chose and why (one line per choice)."""

    config: RunConfig
    reasons: tuple[str, ...]


def choose_strength(image_size: int, train_images: int, epochs: int, task: str = "classification") -> tuple[str, str]:
    """The augmentation strength for a run, with the reason in words."""
    if epochs < SHORT_RUN_EPOCHS:
        return "none", (
            f"the run is {epochs} epochs (< {SHORT_RUN_EPOCHS}): too short to overfit, so "
            "augmentation would only slow the learning down"
        )
    if image_size < TINY_IMAGE:
        return "light", f"images are {image_size} px (< {TINY_IMAGE})"
    if image_size >= LARGE_IMAGE and epochs >= LONG_RUN_EPOCHS and train_images >= LARGE_DATASET:
        return "full", (
            f"{image_size} px images, {epochs} epochs and {train_images} training images "
            f"(>= {LARGE_IMAGE} px, {LONG_RUN_EPOCHS} epochs, {LARGE_DATASET} images)"
        )
    return "medium", f"{image_size} px images, {epochs} epochs, {train_images} training images"


def choose_schedule(epochs: int) -> tuple[str, str]:
    """The learning-rate schedule for a run of ``epochs``, with the reason in words."""
    if epochs < SHORT_RUN_EPOCHS:
        return "wsd", (
            f"wsd schedule (constant, then a linear decay over the last 20%): the run is {epochs} "
            f"epochs (< {SHORT_RUN_EPOCHS}) and still learning when a cosine decay would slow it"
        )
    return "cosine", "cosine learning-rate schedule"


# A small random shift and zoom: safe for any picture, unlike a flip (digits, text) or a big crop.
SHIFT = {
    "name": "Affine",
    "scale": [0.9, 1.1],
    "translate_percent": [-0.0625, 0.0625],
    "border_mode": 0,
    "fill": 0,
    "p": 0.5,
}


def _pad(size: int, mask_fill: int) -> dict:
    # cv2.BORDER_CONSTANT is 0; top-left padding keeps box coordinates unchanged.
    return {
        "name": "PadIfNeeded",
        "min_height": size,
        "min_width": size,
        "border_mode": 0,
        "fill": 0,
        "fill_mask": mask_fill,
        "position": "top_left",
    }


def recipe_spec(task: str, split: str, strength: str, size: int) -> list[dict]:
    """The augmentation spec of ``strength`` for ``task``/``split`` at ``size`` px."""
    from engine.data import augment
    from engine.data.augment.presets import SHRINK_SMOOTHLY

    if strength not in STRENGTHS:
        raise ValueError(f"unknown augmentation strength {strength!r}; expected one of {', '.join(STRENGTHS)}")
    if split == "val" or strength == "none":
        return augment.preset(task, "val", size)  # every val preset keeps the whole image
    flip = {"name": "HorizontalFlip", "p": 0.5}
    if task == "classification":
        if strength == "light":
            return [{"name": "Resize", "height": size, "width": size, **SHRINK_SMOOTHLY}, SHIFT]
        if strength == "medium":
            return [
                {"name": "RandomResizedCrop", "size": [size, size], "scale": [0.35, 1.0], **SHRINK_SMOOTHLY},
                flip,
                {"name": "ColorJitter", "brightness": 0.1, "contrast": 0.1, "saturation": 0.1, "hue": 0.0, "p": 0.3},
            ]
        return augment.preset(task, "train", size)
    if task == "detection":
        if strength == "light":
            return [flip, {"name": "LongestMaxSize", "max_size": size}, _pad(size, 0)]
        return augment.preset(task, "train", size)
    if task == "segmentation":
        pad = _pad(size, augment.MASK_PAD_VALUE)
        if strength == "light":
            return [flip, {"name": "LongestMaxSize", "max_size": size}, pad]
        if strength == "medium":
            return [
                {"name": "LongestMaxSize", "max_size": size},
                {"name": "RandomScale", "scale_limit": [-0.25, 0.25], "p": 1.0},
                {**pad, "position": "center"},
                {"name": "RandomCrop", "height": size, "width": size},
                flip,
            ]
        return augment.preset(task, "train", size)
    raise ValueError(f"no augmentation recipe for task {task!r}")


def effective_image_size(config: RunConfig) -> int:
    """``data.image_size``, else the model's own size (preset or config.json), else the task's usual size."""
    from engine.catalog.presets import get_preset
    from engine.data.augment import DEFAULT_IMAGE_SIZE

    if config.data.image_size:
        return config.data.image_size
    checkpoint = config.model.checkpoint
    if checkpoint:
        found = get_preset(checkpoint)
        if found is not None:
            return found.image_size
        config_file = Path(checkpoint).expanduser() / "config.json"
        if config_file.is_file():
            size = json.loads(config_file.read_text(encoding="utf-8")).get("image_size")
            if isinstance(size, int) and size > 0:
                return size
            if isinstance(size, list) and size and all(isinstance(s, int) for s in size):
                return max(size)
    return DEFAULT_IMAGE_SIZE.get(config.task.name, 224)


def train_image_count(config: RunConfig) -> int:
    """Images the run trains on (the held-out share removed when the folder has one split)."""
    from engine.data.coco_index import CocoIndex
    from engine.data.folders import find_splits

    found = find_splits(config.data.path)
    name = config.data.train_split or ("train" if "train" in found.splits else next(iter(found.splits)))
    train = found.split(name)
    count = len(CocoIndex.load(train.annotation_file).image_ids)
    has_val = config.data.val_split is not None or ("val" in found.splits and found.splits["val"] != train)
    return count if has_val else max(1, round(count * (1 - config.data.val_fraction)))


def resolve_recipe(config: RunConfig, *, train_images: int | None = None, verbose: bool = True) -> RunConfig:
    """``config`` with every "auto" choice made concrete (see the module docstring).

    Settings the user chose are kept. ``train_images`` skips reading the
    dataset (the app and tests may know it already). With ``verbose`` the
    choices are printed to stderr, one line each.
    """
    recipe = explain_recipe(config, train_images=train_images)
    if verbose:
        for line in recipe.reasons:
            print(f"recipe: {line}", file=sys.stderr)
    return recipe.config


def explain_recipe(config: RunConfig, *, train_images: int | None = None) -> Recipe:
    """Like :func:`resolve_recipe`, also returning why each choice was made."""
    aug, optim = config.augmentation, config.optim
    needs_data = (aug.strength == "auto" and aug.preset) or optim.warmup_steps is None or optim.epochs is None
    if needs_data and train_images is None:
        if not config.data.path:
            return Recipe(config, ())  # nothing to train on: the caller reports the missing dataset
        train_images = train_image_count(config)
    overrides: dict = {}
    reasons: list[str] = []
    task = config.task.name
    size = effective_image_size(config)
    regime, finetune, family_words = regime_for(config)
    if optim.lr is None:
        lr = regime.finetune_lr if finetune else regime.scratch_lr
        overrides["optim.lr"] = lr
        reasons.append(f"learning rate {lr:g}: {family_words}")
    if optim.grad_clip is None:
        overrides["optim.grad_clip"] = regime.grad_clip
        reasons.append(
            f"gradient clipping {regime.grad_clip:g}: {family_words}"
            if regime.grad_clip
            else f"no gradient clipping: {family_words}"
        )
    per_epoch = (
        math.ceil(train_images / (optim.batch_size * optim.accumulate_grad_batches)) if train_images is not None else 1
    )
    epochs = optim.epochs
    if epochs is None:
        if optim.max_steps:  # the step limit decides how long the run is
            epochs = max(1, math.ceil(optim.max_steps / per_epoch))
        else:
            epochs = choose_epochs(per_epoch, regime.min_steps)
        overrides["optim.epochs"] = epochs
        reasons.append(
            f"{epochs} epochs of {per_epoch} optimiser steps (at least {regime.min_steps} steps for {family_words})"
        )
    total = per_epoch * epochs
    if optim.max_steps:
        total = min(total, optim.max_steps)
    if aug.preset and task != "multitask":
        strength = aug.strength
        if strength == "auto":
            strength, why = choose_strength(size, train_images, epochs, task=task)
            overrides["augmentation.strength"] = strength
            reasons.append(f"{strength} augmentation: {why}")
        if aug.train is None:
            overrides["augmentation.train"] = recipe_spec(task, "train", strength, size)
        if aug.val is None:
            overrides["augmentation.val"] = recipe_spec(task, "val", strength, size)
        if config.data.image_size is None:
            overrides["data.image_size"] = size
    if optim.scheduler == "auto":
        overrides["optim.scheduler"], why = choose_schedule(epochs)
        reasons.append(why)
    if optim.warmup_steps is None:
        warmup = choose_warmup(total, per_epoch, regime.transformer)
        overrides["optim.warmup_steps"] = warmup
        reasons.append(f"{warmup} warm-up steps ({total} optimiser steps in the run)")
    return Recipe(config.with_overrides(overrides) if overrides else config, tuple(reasons))
