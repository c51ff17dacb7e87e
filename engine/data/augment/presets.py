"""Each task's default augmentation spec (train and validation), at any image size."""

from __future__ import annotations

import copy

from engine.config.task_defaults import DEFAULT_IMAGE_SIZE

from .catalogue import TASKS, check_task

__all__ = ["MASK_PAD_VALUE", "PRESETS", "SHRINK_SMOOTHLY", "SPLITS", "preset"]

# Mask value for padded pixels in the segmentation presets: the usual
# "ignore" class, so padding is not learnt as background.
MASK_PAD_VALUE = 255

# Classification images are shrunk with area averaging (OpenCV's bilinear skips pixels when it
# shrinks by more than 2x, so fine textures alias): 2.2 points of accuracy on every seed of the
# `textures` set in bench/recipes.py.
SHRINK_SMOOTHLY = {"area_for_downscale": "image"}


def _preset_spec(task: str, split: str, size: int) -> list[dict]:
    # cv2.BORDER_CONSTANT is 0; specs hold plain ints so they stay YAML-able.
    pad = {
        "name": "PadIfNeeded",
        "min_height": size,
        "min_width": size,
        "border_mode": 0,
        "fill": 0,
        "fill_mask": 0,
        "position": "top_left",
    }
    if task == "classification":
        if split == "train":
            return [
                {"name": "RandomResizedCrop", "size": [size, size], "scale": [0.08, 1.0], **SHRINK_SMOOTHLY},
                {"name": "HorizontalFlip", "p": 0.5},
                {"name": "ColorJitter", "brightness": 0.2, "contrast": 0.2, "saturation": 0.2, "hue": 0.02, "p": 0.5},
            ]
        # The whole image, resized: a centre crop would cut away objects near the borders.
        return [{"name": "Resize", "height": size, "width": size, **SHRINK_SMOOTHLY}]
    if task == "detection":
        # DETR-style: keep the aspect ratio, pad bottom/right so box coordinates need no shift.
        resize = [{"name": "LongestMaxSize", "max_size": size}, pad]
        if split == "train":
            return [
                {"name": "HorizontalFlip", "p": 0.5},
                {"name": "RandomBrightnessContrast", "brightness_limit": 0.2, "contrast_limit": 0.2, "p": 0.5},
                *resize,
            ]
        return resize
    # segmentation
    seg_pad = {**pad, "fill_mask": MASK_PAD_VALUE}
    if split == "train":
        return [
            {"name": "LongestMaxSize", "max_size": size},
            {"name": "RandomScale", "scale_limit": [-0.5, 0.5], "p": 1.0},
            {**seg_pad, "position": "center"},
            {"name": "RandomCrop", "height": size, "width": size},
            {"name": "HorizontalFlip", "p": 0.5},
        ]
    return [{"name": "LongestMaxSize", "max_size": size}, seg_pad]


SPLITS = ("train", "val")

PRESETS: dict[str, dict[str, list[dict]]] = {
    task: {split: _preset_spec(task, split, DEFAULT_IMAGE_SIZE[task]) for split in SPLITS} for task in TASKS
}


def preset(task: str, split: str = "train", image_size: int | None = None) -> list[dict]:
    """A fresh copy of the default spec for ``task``/``split`` at ``image_size``.

    ``image_size`` None means the task's usual size: classification 224,
    detection 800, segmentation 512.
    """
    check_task(task)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    size = DEFAULT_IMAGE_SIZE[task] if image_size is None else image_size
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    return copy.deepcopy(_preset_spec(task, split, size))
