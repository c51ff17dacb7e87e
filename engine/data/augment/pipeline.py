"""The albumentations pipeline a spec builds, and running it on one sample, reproducibly."""

from __future__ import annotations

import random
import warnings
from typing import Any

import albumentations as A
import numpy as np

from .catalogue import check_task
from .spec import build_steps

__all__ = [
    "MIN_BOX_AREA",
    "MIN_BOX_VISIBILITY",
    "apply",
    "apply_seeded",
    "build_pipeline",
    "preview",
    "reseed",
    "sample_seed",
]

# Box filtering after every transform. Fixed here rather than per call so the
# preview can never filter differently from training. A box keeping under 10%
# of its area is mostly a wrong label; sub-pixel boxes are noise.
MIN_BOX_VISIBILITY = 0.1
MIN_BOX_AREA = 1.0


def build_pipeline(spec: Any, task: str, *, seed: int | None = None) -> A.Compose:
    """The albumentations pipeline for ``spec``; the one function preview and training share.

    Boxes (COCO xywh, labels in ``labels``) are carried for every task, so the
    preview can draw them even for classification; detection is where they
    matter. Boxes are clipped to the image and dropped once they leave it
    (see MIN_BOX_VISIBILITY / MIN_BOX_AREA). Masks use the standard ``mask``
    target. ``seed`` makes the random stream reproducible (see :func:`reseed`).
    """
    check_task(task)
    _, transforms = build_steps(spec, task)
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


def apply(
    pipeline: A.Compose, image: np.ndarray, *, boxes: Any = None, labels: Any = None, mask: np.ndarray | None = None
) -> dict:
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


def apply_seeded(
    pipeline: A.Compose,
    seed: int,
    image: np.ndarray,
    *,
    boxes: Any = None,
    labels: Any = None,
    mask: np.ndarray | None = None,
) -> dict:
    """:func:`apply` after restarting the pipeline's random stream at ``seed``.

    The output depends only on ``seed`` and the inputs, not on earlier calls.
    """
    reseed(pipeline, seed)
    return apply(pipeline, image, boxes=boxes, labels=labels, mask=mask)


def preview(
    spec: Any,
    task: str,
    image: np.ndarray,
    *,
    boxes: Any = None,
    labels: Any = None,
    mask: np.ndarray | None = None,
    n: int = 8,
    seed: int = 0,
    index: int = 0,
) -> list[dict]:
    """What training does to one sample in epochs ``0..n-1``.

    Sample ``k`` is augmented from ``sample_seed(seed, k, index)`` through
    :func:`build_pipeline`, exactly as ``BaseVisionDataset`` augments dataset
    item ``index`` in epoch ``k`` with run seed ``seed``: array for array equal.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    pipeline = build_pipeline(spec, task, seed=seed)
    return [
        apply_seeded(pipeline, sample_seed(seed, k, index), image, boxes=boxes, labels=labels, mask=mask)
        for k in range(n)
    ]
