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

from __future__ import annotations

import copy
import difflib
import inspect
import random
import re
import types
import typing
import warnings
from functools import cache
from typing import Any

import albumentations as A
import numpy as np
import yaml
from albumentations.core.transforms_interface import (
    BasicTransform,
    DualTransform,
    ImageOnlyTransform,
    Transform3D,
)
from albumentations.core.type_definitions import Targets
from pydantic import ValidationError

from engine.config.task_defaults import DEFAULT_IMAGE_SIZE
from engine.config.task_names import SINGLE_TASKS

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

# A spec serves one single task (a multitask run uses the detection pipeline).
TASKS = SINGLE_TASKS

# Containers a spec may nest; the top level is always our own Compose.
CONTAINERS = ("OneOf", "RandomOrder", "Sequential", "SomeOf")

# Box filtering after every transform. Fixed here rather than per call so the
# preview can never filter differently from training. A box keeping under 10%
# of its area is mostly a wrong label; sub-pixel boxes are noise.
MIN_BOX_VISIBILITY = 0.1
MIN_BOX_AREA = 1.0

# Mask value for padded pixels in the segmentation presets: the usual
# "ignore" class, so padding is not learnt as background.
MASK_PAD_VALUE = 255

# Transforms that exist but cannot be used in a spec, with the reason shown to the user.
_FLOAT_REASON = (
    "specs work on uint8 images and must not convert to float; normalisation is "
    "applied later by the model's preprocessing (possibly on the GPU), remove this step"
)
_REJECTED = {
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
_NEEDS_MASK = {"MaskDropout", "CropNonEmptyMaskIfExists"}
_BASE_CLASSES = {BasicTransform, DualTransform, ImageOnlyTransform}


class AugmentationSpecError(ValueError):
    """A spec step is wrong. The message names step, transform and parameter.

    ``step`` is the 1-based position ("2", or "2.1" inside a container),
    ``transform`` the step's name and ``param`` the offending parameter; any of
    them is None when it does not apply, so a form can highlight the field.
    """

    def __init__(self, message: str, *, step: str | None = None,
                 transform: str | None = None, param: str | None = None):
        self.step = step
        self.transform = transform
        self.param = param
        where = []
        if step is not None:
            where.append(f"step {step}" + (f" ({transform})" if transform else ""))
        elif transform:
            where.append(transform)
        if param:
            where.append(param)
        super().__init__(": ".join([*where, message]))


# --------------------------------------------------------------------------
# Catalogue of usable transforms


@cache
def _catalogue() -> dict[str, type]:
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
    return sorted({*_catalogue(), *CONTAINERS})


def _targets(cls: type) -> set[Targets]:
    targets = getattr(cls, "_targets", ())
    return set(targets) if isinstance(targets, tuple) else {targets}


def _supports(cls: type, task: str) -> bool:
    name = cls.__name__
    if name in _NEEDS_MASK:
        return task == "segmentation"
    # Image-only transforms leave geometry alone, so boxes and masks stay right.
    if issubclass(cls, ImageOnlyTransform):
        return True
    if task == "detection":
        return Targets.BBOXES in _targets(cls)
    if task == "segmentation":
        return Targets.MASK in _targets(cls)
    return True


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")


def available_transforms(task: str) -> list[str]:
    """Sorted transform names usable in a spec for ``task`` (containers excluded: see CONTAINERS)."""
    _check_task(task)
    return sorted(
        name for name, cls in _catalogue().items() if name not in _REJECTED and _supports(cls, task)
    )


def _resolve(name: Any, *, step: str | None = None) -> type:
    """The class for a step name, or an AugmentationSpecError saying why not."""
    if not isinstance(name, str) or not name:
        raise AugmentationSpecError(f"'name' must be a transform name, got {name!r}", step=step, param="name")
    if name in _REJECTED:
        raise AugmentationSpecError(f"not allowed: {_REJECTED[name]}", step=step, transform=name)
    if name in CONTAINERS:
        return getattr(A, name)
    if name in _catalogue():
        return _catalogue()[name]
    close = difflib.get_close_matches(name, _all_names(), n=3, cutoff=0.6)
    if not close:  # also catch case slips such as "horizontalflip"
        lowered = {n.lower(): n for n in _all_names()}
        close = [lowered[m] for m in difflib.get_close_matches(name.lower(), lowered, n=3, cutoff=0.6)]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise AugmentationSpecError(f"unknown transform{hint}", step=step, transform=name)


# --------------------------------------------------------------------------
# Validation and normalisation


def _plain(value: Any, where: dict[str, Any]) -> Any:
    """``value`` as JSON/YAML-able data: tuples become lists, numpy scalars Python ones."""
    if isinstance(value, np.generic):  # before the float check: np.float64 is a float
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, where) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _plain(v, where) for k, v in value.items()}
    raise AugmentationSpecError(
        f"{type(value).__name__} values cannot be stored in a spec; use numbers, strings, lists or dicts",
        **where,
    )


def _init_params(cls: type) -> dict[str, inspect.Parameter]:
    params = inspect.signature(cls.__init__).parameters
    return {
        k: p for k, p in params.items()
        if k != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }


def _pydantic_error(err: ValidationError, cls: type, params: dict, where: dict) -> AugmentationSpecError:
    """Turn albumentations' pydantic error into one naming the first bad parameter."""
    errors = err.errors()
    loc = errors[0]["loc"]
    if loc:
        param = str(loc[0])
        # A union annotation reports one error per branch; keep them all for that parameter.
        msgs = [e["msg"] for e in errors if e["loc"] and str(e["loc"][0]) == param]
    else:
        # Model-level checks have no location: name the first parameter the message mentions.
        msgs = [errors[0]["msg"]]
        mentioned = [p for p in _init_params(cls) if re.search(rf"\b{re.escape(p)}\b", msgs[0])]
        param = mentioned[0] if mentioned else "parameters"
    text = "; ".join(dict.fromkeys(m.removeprefix("Value error, ") for m in msgs))
    if param in params:
        text += f" (got {params[param]!r})"
    return AugmentationSpecError(text, param=param, **where)


def _build_step(step: Any, index: str, task: str | None) -> tuple[dict, Any]:
    """Validate one step; returns (normalised step, built transform)."""
    if not isinstance(step, dict):
        raise AugmentationSpecError(
            f"each step must be a mapping with a 'name', got {type(step).__name__}", step=index)
    name = step.get("name")
    cls = _resolve(name, step=index)
    where = {"step": index, "transform": name}
    if task is not None and name not in CONTAINERS and not _supports(cls, task):
        what = "masks" if task == "segmentation" else "boxes"
        if name in _NEEDS_MASK:
            what = "a segmentation mask to run; it only works"
        raise AugmentationSpecError(f"cannot be used for {task}: it does not transform {what}", **where)

    params = {k: v for k, v in step.items() if k != "name"}
    accepted = _init_params(cls)
    for key in params:
        if key not in accepted:
            close = difflib.get_close_matches(key, list(accepted), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise AugmentationSpecError(
                f"unknown parameter{hint} (accepted: {', '.join(accepted)})", param=key, **where)
    for key, p in accepted.items():
        if p.default is inspect.Parameter.empty and key not in params:
            raise AugmentationSpecError("required parameter is missing", param=key, **where)

    normal: dict[str, Any] = {"name": name}
    for key, value in params.items():
        if key == "transforms":
            continue
        normal[key] = _plain(value, {**where, "param": key})

    if name in CONTAINERS:
        children = params["transforms"]
        if not isinstance(children, (list, tuple)) or not children:
            raise AugmentationSpecError("must be a non-empty list of steps", param="transforms", **where)
        built_children = [_build_step(c, f"{index}.{i}", task) for i, c in enumerate(children, 1)]
        normal["transforms"] = [c[0] for c in built_children]
        kwargs = {k: v for k, v in normal.items() if k not in ("name", "transforms")}
        # Containers have no pydantic schema, so check p ourselves: a bad p would pass silently.
        p = kwargs.get("p", 0.5)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise AugmentationSpecError(f"must be a number between 0 and 1 (got {p!r})", param="p", **where)
        try:
            built = cls([c[1] for c in built_children], **kwargs)
        except (TypeError, ValueError) as err:
            raise AugmentationSpecError(str(err), **where) from err
        return normal, built

    kwargs = {k: v for k, v in normal.items() if k != "name"}
    try:
        # strict=True: without it albumentations only warns on a bad value and
        # silently falls back to the defaults.
        built = cls(**kwargs, strict=True)
    except ValueError as err:
        if isinstance(err.__cause__, ValidationError):
            raise _pydantic_error(err.__cause__, cls, kwargs, where) from err
        raise AugmentationSpecError(str(err), **where) from err
    except TypeError as err:
        raise AugmentationSpecError(str(err), **where) from err
    return normal, built


def _build_all(spec: Any, task: str | None) -> tuple[list[dict], list]:
    if isinstance(spec, dict) or not isinstance(spec, (list, tuple)):
        raise AugmentationSpecError(f"a spec must be a list of steps, got {type(spec).__name__}")
    built = [_build_step(step, str(i), task) for i, step in enumerate(spec, 1)]
    return [b[0] for b in built], [b[1] for b in built]


def validate_spec(spec: Any, *, task: str | None = None) -> list[dict]:
    """Check every step (building each transform once) and return the normalised spec.

    The result is a new plain list of dicts: "name" first, tuples as lists,
    nested container steps normalised too. With ``task``, also rejects
    transforms that cannot carry that task's boxes or masks.
    """
    if task is not None:
        _check_task(task)
    return _build_all(spec, task)[0]


# --------------------------------------------------------------------------
# Pipelines


def build_pipeline(spec: Any, task: str, *, seed: int | None = None) -> A.Compose:
    """The albumentations pipeline for ``spec``; the one function preview and training share.

    Boxes (COCO xywh, labels in ``labels``) are carried for every task, so the
    preview can draw them even for classification; detection is where they
    matter. Boxes are clipped to the image and dropped once they leave it
    (see MIN_BOX_VISIBILITY / MIN_BOX_AREA). Masks use the standard ``mask``
    target. ``seed`` makes the random stream reproducible (see :func:`reseed`).
    """
    _check_task(task)
    _, transforms = _build_all(spec, task)
    boxes = A.BboxParams(
        format="coco",
        label_fields=["labels"],
        min_visibility=MIN_BOX_VISIBILITY,
        min_area=MIN_BOX_AREA,
        clip=True,
        # Degenerate input boxes (zero width...) would otherwise abort the sample.
        filter_invalid_bboxes=True,
    )
    with warnings.catch_warnings():
        # Specs with no geometric step (or none at all) leave boxes alone, which is fine.
        warnings.filterwarnings("ignore", message="Got processor for bboxes, but no transform")
        pipeline = A.Compose(transforms, bbox_params=boxes, seed=seed)
    reseed(pipeline, seed)
    return pipeline


def reseed(pipeline: A.Compose, seed: int | None) -> None:
    """Give every transform in ``pipeline`` one shared random stream started from ``seed``.

    Compose(seed=s) gives each transform its *own* generator seeded with s,
    so transforms draw the same numbers: two flips with p=0.5 would always
    fire together. One shared stream keeps the run reproducible without that.
    Use this (not ``pipeline.set_random_seed``) to reseed, e.g. per DataLoader
    worker, where every worker otherwise starts from the same state.
    """
    pipeline.set_random_state(np.random.default_rng(seed), random.Random(seed))


def _as_boxes(boxes: Any) -> np.ndarray:
    if boxes is None:
        return np.zeros((0, 4), np.float32)
    arr = np.asarray(boxes, dtype=np.float32)
    if arr.size == 0:
        return np.zeros((0, 4), np.float32)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4) in COCO xywh, got {arr.shape}")
    return arr


def apply(pipeline: A.Compose, image: np.ndarray, *, boxes: Any = None, labels: Any = None,
          mask: np.ndarray | None = None) -> dict:
    """Run ``pipeline`` on one sample and return uniformly typed outputs.

    Returns {"image": uint8 HxWx3, "boxes": float32 (N, 4) COCO xywh,
    "labels": int64 (N,), "mask": array or None}. Labels travel with their
    boxes, so dropped boxes drop their labels; without labels, zeros are used.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"image must be a uint8 HxWx3 RGB array, got {got}")
    box_arr = _as_boxes(boxes)
    if labels is None:
        label_arr = np.zeros(len(box_arr), np.int64)
    else:
        label_arr = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(label_arr) != len(box_arr):
            raise ValueError(f"got {len(box_arr)} boxes but {len(label_arr)} labels")

    data: dict[str, Any] = {"image": image}
    if "bboxes" in pipeline.processors:
        data["bboxes"] = box_arr
        data["labels"] = label_arr
    elif len(box_arr):
        raise ValueError("this pipeline does not carry boxes; build it with build_pipeline")
    if mask is not None:
        data["mask"] = mask

    out = pipeline(**data)

    out_image = out["image"]
    if out_image.dtype != np.uint8:
        raise ValueError(f"the spec produced a {out_image.dtype} image; specs must keep uint8")
    # Transforms that did nothing hand back the caller's array; copy so samples are independent.
    if np.shares_memory(out_image, image):
        out_image = out_image.copy()
    out_mask = out.get("mask") if mask is not None else None
    if out_mask is not None and np.shares_memory(out_mask, mask):
        out_mask = out_mask.copy()
    return {
        "image": np.ascontiguousarray(out_image),
        "boxes": np.asarray(out.get("bboxes", box_arr), dtype=np.float32).reshape(-1, 4),
        "labels": np.asarray(out.get("labels", label_arr), dtype=np.int64).reshape(-1),
        "mask": out_mask,
    }


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A seed for one sample of one epoch, derived from the run's seed.

    Lets a dataset augment each sample from its own seed, so results do not
    depend on worker count or visiting order.
    """
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


def apply_seeded(pipeline: A.Compose, seed: int, image: np.ndarray, *, boxes: Any = None,
                 labels: Any = None, mask: np.ndarray | None = None) -> dict:
    """:func:`apply` after restarting the pipeline's random stream at ``seed``.

    The output depends only on ``seed`` and the inputs, not on earlier calls.
    """
    reseed(pipeline, seed)
    return apply(pipeline, image, boxes=boxes, labels=labels, mask=mask)


def preview(spec: Any, task: str, image: np.ndarray, *, boxes: Any = None, labels: Any = None,
            mask: np.ndarray | None = None, n: int = 8, seed: int = 0, index: int = 0) -> list[dict]:
    """What training does to one sample in epochs ``0..n-1``.

    Sample ``k`` is augmented from ``sample_seed(seed, k, index)`` through
    :func:`build_pipeline`, exactly as ``BaseVisionDataset`` augments dataset
    item ``index`` in epoch ``k`` with run seed ``seed``: array for array equal.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    pipeline = build_pipeline(spec, task, seed=seed)
    return [apply_seeded(pipeline, sample_seed(seed, k, index), image, boxes=boxes, labels=labels, mask=mask)
            for k in range(n)]


# --------------------------------------------------------------------------
# Presets


def _preset_spec(task: str, split: str, size: int) -> list[dict]:
    # cv2.BORDER_CONSTANT is 0; specs hold plain ints so they stay YAML-able.
    pad = {"name": "PadIfNeeded", "min_height": size, "min_width": size,
           "border_mode": 0, "fill": 0, "fill_mask": 0, "position": "top_left"}
    if task == "classification":
        if split == "train":
            return [
                {"name": "RandomResizedCrop", "size": [size, size], "scale": [0.08, 1.0]},
                {"name": "HorizontalFlip", "p": 0.5},
                {"name": "ColorJitter", "brightness": 0.2, "contrast": 0.2, "saturation": 0.2,
                 "hue": 0.02, "p": 0.5},
            ]
        # The whole image, resized: a centre crop would cut away objects near the borders.
        return [{"name": "Resize", "height": size, "width": size}]
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
    task: {split: _preset_spec(task, split, DEFAULT_IMAGE_SIZE[task]) for split in SPLITS}
    for task in TASKS
}


def preset(task: str, split: str = "train", image_size: int | None = None) -> list[dict]:
    """A fresh copy of the default spec for ``task``/``split`` at ``image_size``.

    ``image_size`` None means the task's usual size: classification 224,
    detection 800, segmentation 512.
    """
    _check_task(task)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    size = DEFAULT_IMAGE_SIZE[task] if image_size is None else image_size
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    return copy.deepcopy(_preset_spec(task, split, size))


# --------------------------------------------------------------------------
# YAML


def spec_to_yaml(spec: Any) -> str:
    """The validated spec as YAML; the same spec always gives the same text."""
    # Key order is meaningful (name first) and keeps diffs of config files small.
    return yaml.safe_dump(validate_spec(spec), sort_keys=False, default_flow_style=None,
                          allow_unicode=True)


def spec_from_yaml(text: str) -> list[dict]:
    """Parse and validate a spec written by :func:`spec_to_yaml` (or by hand)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise AugmentationSpecError(f"invalid YAML: {err}") from err
    return validate_spec([] if data is None else data)


# --------------------------------------------------------------------------
# Introspection for the app's form


def _choices(annotation: Any) -> list | None:
    """The allowed values when an annotation is a Literal (possibly optional)."""
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        found = [c for arg in typing.get_args(annotation) for c in (_choices(arg) or [])]
        return found or None
    return None


def _default_for_form(value: Any) -> Any:
    if value is inspect.Parameter.empty:
        return None
    try:
        return _plain(value, {})
    except AugmentationSpecError:
        return repr(value)


def describe_transform(name: str) -> dict:
    """What a form needs to edit one step.

    Returns {"name", "kind" ("image", "dual" or "container"), "doc" (first
    docstring line), "params": [{"name", "annotation" (str), "default",
    "required", "choices" (list or None)}]}.
    """
    cls = _resolve(name)
    schema = getattr(cls, "InitSchema", None)
    fields = schema.model_fields if schema is not None and name not in CONTAINERS else {}
    params = []
    for key, p in _init_params(cls).items():
        annotation = p.annotation
        if annotation is inspect.Parameter.empty:
            annotation = fields[key].annotation if key in fields else "Any"
        params.append({
            "name": key,
            "annotation": annotation if isinstance(annotation, str) else inspect.formatannotation(annotation),
            "default": _default_for_form(p.default),
            "required": p.default is inspect.Parameter.empty,
            "choices": _choices(fields[key].annotation) if key in fields else None,
        })
    if name in CONTAINERS:
        kind = "container"
    elif issubclass(cls, ImageOnlyTransform):
        kind = "image"
    else:
        kind = "dual"
    doc = (inspect.getdoc(cls) or "").strip().splitlines()
    return {"name": name, "kind": kind, "doc": doc[0] if doc else "", "params": params}
