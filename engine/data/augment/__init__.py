"""Augmentation pipelines built from a serialisable spec.

A spec is plain data (so it can live in a run config file)::

    [{"name": "RandomResizedCrop", "size": [224, 224], "scale": [0.08, 1.0]},
     {"name": "HorizontalFlip", "p": 0.5},
     {"name": "OneOf", "p": 0.3, "transforms": [{"name": "Blur"}, {"name": "GaussNoise"}]}]

Each step names an albumentations transform (image-level or dual) and its
keyword arguments; the containers OneOf, SomeOf, Sequential and RandomOrder
take a ``transforms`` list of nested steps. Specs work on uint8 RGB images and
never normalise to float: that happens later, possibly on the GPU.

The app's preview and the training datasets both go through
:func:`build_pipeline`, so for the same spec, seed and inputs they produce the
same arrays byte for byte.
"""

from engine.config.task_defaults import DEFAULT_IMAGE_SIZE

from .catalogue import CONTAINERS, TASKS, available_transforms
from .errors import AugmentationSpecError
from .form import describe_transform
from .pipeline import (
    MIN_BOX_AREA,
    MIN_BOX_VISIBILITY,
    apply,
    apply_seeded,
    build_pipeline,
    preview,
    reseed,
    sample_seed,
)
from .presets import MASK_PAD_VALUE, PRESETS, preset
from .spec import spec_from_yaml, spec_to_yaml, validate_spec

__all__ = [
    "CONTAINERS",
    "DEFAULT_IMAGE_SIZE",
    "MASK_PAD_VALUE",
    "MIN_BOX_AREA",
    "MIN_BOX_VISIBILITY",
    "PRESETS",
    "TASKS",
    "AugmentationSpecError",
    "apply",
    "apply_seeded",
    "available_transforms",
    "build_pipeline",
    "describe_transform",
    "preset",
    "preview",
    "reseed",
    "sample_seed",
    "spec_from_yaml",
    "spec_to_yaml",
    "validate_spec",
]
