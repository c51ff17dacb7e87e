"""Masks from COCO segmentations, rasterised by pycocotools.

Polygons, uncompressed RLE (``counts`` as a list, as COCO writes crowds) and
compressed RLE (``counts`` as a string) all go through ``pycocotools.mask``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from .coco_index import SEG_NONE, CocoIndex

IGNORE_INDEX = 255


def segmentation_rle(segmentation: Any, height: int, width: int) -> dict | None:
    """One compressed RLE for any COCO segmentation (None when it has no area)."""
    if segmentation is None:
        return None
    if isinstance(segmentation, list):
        # frPyObjects treats a 4-number list as a box, so drop degenerate polygons first.
        polys = [p for p in segmentation if isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0]
        if not polys:
            return None
        return mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
    if isinstance(segmentation, dict):
        counts = segmentation.get("counts")
        if isinstance(counts, list):
            return mask_utils.frPyObjects(segmentation, height, width)
        if isinstance(counts, str):
            return {"size": list(segmentation["size"]), "counts": counts.encode("ascii")}
        if isinstance(counts, bytes):
            return segmentation
    return None


def annotation_mask(index: CocoIndex, ann_row: int, height: int | None = None, width: int | None = None) -> np.ndarray:
    """Binary uint8 mask of one annotation at the image's size (all zeros if it has none).

    Annotations without a segmentation fall back to their box, so every object
    has a region.
    """
    image_row = int(index.ann_image[ann_row])
    h = int(height if height is not None else index.image_height[image_row])
    w = int(width if width is not None else index.image_width[image_row])
    rle = None
    if index.ann_seg_kind[ann_row] != SEG_NONE:
        rle = segmentation_rle(index.segmentation(ann_row), h, w)
    if rle is None:
        mask = np.zeros((h, w), np.uint8)
        if index.ann_seg_kind[ann_row] == SEG_NONE and not np.isnan(index.ann_bbox[ann_row, 0]):
            x, y, bw, bh = index.ann_bbox[ann_row]
            x0, y0 = max(int(np.floor(x)), 0), max(int(np.floor(y)), 0)
            mask[y0 : int(np.ceil(y + bh)), x0 : int(np.ceil(x + bw))] = 1
        return mask
    if list(rle["size"]) != [h, w]:
        raise ValueError(
            f"{index.name}: annotation {int(index.ann_ids[ann_row])}: RLE size {list(rle['size'])} "
            f"disagrees with the image size {[h, w]}"
        )
    return mask_utils.decode(rle)


def semantic_mask(
    index: CocoIndex, image_row: int, *, background: bool = True, ignore_index: int = IGNORE_INDEX
) -> np.ndarray:
    """Per-pixel class map of one image (uint8, so at most 254 classes).

    With ``background`` the classes are 0 = background and ``label + 1`` for each
    category; without it, unlabelled pixels get ``ignore_index``. Larger objects
    are painted first so small ones stay visible; crowd regions become
    ``ignore_index`` last, so the loss never learns from them.
    """
    h, w = int(index.image_height[image_row]), int(index.image_width[image_row])
    offset = 1 if background else 0
    if index.num_categories + offset >= ignore_index:
        raise ValueError(f"{index.name}: {index.num_categories} categories do not fit a uint8 mask")
    out = np.full((h, w), 0 if background else ignore_index, np.uint8)
    rows = [r for r in index.annotation_rows(image_row) if index.ann_label[r] >= 0]
    objects = [r for r in rows if not index.ann_iscrowd[r]]
    crowds = [r for r in rows if index.ann_iscrowd[r]]
    areas = [
        index.ann_area[r]
        if not np.isnan(index.ann_area[r])
        else np.nan_to_num(index.ann_bbox[r, 2] * index.ann_bbox[r, 3])
        for r in objects
    ]
    for _, row in sorted(zip(areas, objects), key=lambda pair: -pair[0]):
        out[annotation_mask(index, row, h, w).astype(bool)] = index.ann_label[row] + offset
    for row in crowds:
        out[annotation_mask(index, row, h, w).astype(bool)] = ignore_index
    return out
