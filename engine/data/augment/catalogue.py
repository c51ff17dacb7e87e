"""Which albumentations transforms a spec may name, and for which tasks."""

from __future__ import annotations

import difflib
import inspect
from functools import cache
from typing import Any

import albumentations as A
from albumentations.core.transforms_interface import (
    BasicTransform,
    DualTransform,
    ImageOnlyTransform,
    Transform3D,
)
from albumentations.core.type_definitions import Targets

from engine.catalog.task_names import SINGLE_TASKS

from .errors import AugmentationSpecError

__all__ = [
    "CONTAINERS",
    "NEEDS_MASK",
    "REJECTED",
    "TASKS",
    "available_transforms",
    "catalogue",
    "check_task",
    "init_params",
    "supports",
    "transform_class",
]

# A spec serves one single task (a multitask run uses the detection pipeline).
TASKS = SINGLE_TASKS

# Containers a spec may nest; the top level is always our own Compose.
CONTAINERS = ("OneOf", "RandomOrder", "Sequential", "SomeOf")

# Transforms that exist but cannot be used in a spec, with the reason shown to the user.
_FLOAT_REASON = (
    "specs work on uint8 images and must not convert to float; normalisation is "
    "applied later by the model's preprocessing (possibly on the GPU), remove this step"
)
REJECTED = {
    "Normalize": _FLOAT_REASON,
    "ToFloat": _FLOAT_REASON,
    "FromFloat": "specs work on uint8 images; there is no float image to convert back",
    "ToTensorV2": "tensor conversion happens after augmentation, remove this step",
    "ToTensor3D": "tensor conversion happens after augmentation, remove this step",
    "Lambda": "it wraps Python functions, which cannot be stored in a spec",
    "ToRGB": "images are already RGB",
    # These read per-sample metadata (reference images, other samples, text,
    # a crop box) that Lightbox's data pipeline does not provide.
    "FDA": "it needs reference images passed as per-sample metadata",
    "HistogramMatching": "it needs reference images passed as per-sample metadata",
    "PixelDistributionAdaptation": "it needs reference images passed as per-sample metadata",
    "Mosaic": "it needs other samples passed as per-sample metadata",
    "OverlayElements": "it needs overlay images passed as per-sample metadata",
    "TextImage": "it needs text and font passed as per-sample metadata",
    "RandomCropNearBBox": "it needs a crop box passed as per-sample metadata",
}
# Transforms that read the mask to choose their parameters: segmentation only.
NEEDS_MASK = {"MaskDropout", "CropNonEmptyMaskIfExists"}
_BASE_CLASSES = {BasicTransform, DualTransform, ImageOnlyTransform}


@cache
def catalogue() -> dict[str, type]:
    """Every image-level or dual transform exported by albumentations, by name."""
    found = {}
    for name in dir(A):
        obj = getattr(A, name)
        if (
            inspect.isclass(obj)
            and issubclass(obj, (ImageOnlyTransform, DualTransform))
            and not issubclass(obj, Transform3D)  # volumes, not images
            and obj not in _BASE_CLASSES
        ):
            found[name] = obj
    return found


def _all_names() -> list[str]:
    """Everything a user might type, for "did you mean" suggestions."""
    return sorted({*catalogue(), *CONTAINERS})


def _targets(cls: type) -> set[Targets]:
    targets = getattr(cls, "_targets", ())
    return set(targets) if isinstance(targets, tuple) else {targets}


def supports(cls: type, task: str) -> bool:
    """Can this transform carry ``task``'s labels (boxes, masks) along with the image?"""
    name = cls.__name__
    if name in NEEDS_MASK:
        return task == "segmentation"
    # Image-only transforms leave geometry alone, so boxes and masks stay right.
    if issubclass(cls, ImageOnlyTransform):
        return True
    if task == "detection":
        return Targets.BBOXES in _targets(cls)
    if task == "segmentation":
        return Targets.MASK in _targets(cls)
    return True


def check_task(task: str) -> None:
    """A ValueError unless ``task`` is one a spec can serve."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")


def available_transforms(task: str) -> list[str]:
    """Sorted transform names usable in a spec for ``task`` (containers excluded: see CONTAINERS)."""
    check_task(task)
    return sorted(name for name, cls in catalogue().items() if name not in REJECTED and supports(cls, task))


def transform_class(name: Any, *, step: str | None = None) -> type:
    """The class for a step name, or an AugmentationSpecError saying why not."""
    if not isinstance(name, str) or not name:
        raise AugmentationSpecError(f"'name' must be a transform name, got {name!r}", step=step, param="name")
    if name in REJECTED:
        raise AugmentationSpecError(f"not allowed: {REJECTED[name]}", step=step, transform=name)
    if name in CONTAINERS:
        return getattr(A, name)
    if name in catalogue():
        return catalogue()[name]
    close = difflib.get_close_matches(name, _all_names(), n=3, cutoff=0.6)
    if not close:  # also catch case slips such as "horizontalflip"
        lowered = {n.lower(): n for n in _all_names()}
        close = [lowered[m] for m in difflib.get_close_matches(name.lower(), lowered, n=3, cutoff=0.6)]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise AugmentationSpecError(f"unknown transform{hint}", step=step, transform=name)


def init_params(cls: type[Any]) -> dict[str, inspect.Parameter]:
    """The keyword parameters a spec step may give this transform."""
    params = inspect.signature(cls.__init__).parameters
    return {k: p for k, p in params.items() if k != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
