"""Deterministic, stratified train/validation split of one COCO index."""

from __future__ import annotations

import numpy as np

from .coco_index import CocoIndex


def primary_labels(index: CocoIndex, rule: str = "largest") -> np.ndarray:
    """One label per image (-1 for images with no usable annotation).

    ``largest``: the category of the annotation with the largest area (box area
    when ``area`` is absent); ties go to the earlier annotation in the file.
    ``majority``: the most frequent category; ties go to the larger total area.
    Crowd regions never decide the label.
    """
    if rule not in ("largest", "majority"):
        raise ValueError(f"unknown label rule '{rule}': use 'largest' or 'majority'")
    labels = np.full(index.num_images, -1, np.int64)
    ok = index.valid_annotation_mask() & ~index.ann_iscrowd
    rows = np.flatnonzero(ok)
    if len(rows) == 0:
        return labels
    area = index.ann_area[rows].copy()
    box_area = index.ann_bbox[rows, 2] * index.ann_bbox[rows, 3]
    area = np.where(np.isnan(area), np.nan_to_num(box_area), area)
    image = index.ann_image[rows].astype(np.int64)
    label = index.ann_label[rows].astype(np.int64)
    if rule == "largest":
        # Sort by image, then area descending, then file order; take the first per image.
        order = np.lexsort((rows, -area, image))
        first = np.unique(image[order], return_index=True)[1]
        chosen = order[first]
        labels[image[chosen]] = label[chosen]
    else:
        k = max(index.num_categories, 1)
        key = image * k + label
        uniq, inverse = np.unique(key, return_inverse=True)
        counts = np.bincount(inverse)
        totals = np.bincount(inverse, weights=area)
        img_of, lab_of = uniq // k, uniq % k
        order = np.lexsort((lab_of, -totals, -counts, img_of))
        first = np.unique(img_of[order], return_index=True)[1]
        labels[img_of[order][first]] = lab_of[order][first]
    return labels


def stratified_split(
    index: CocoIndex, fraction: float = 0.2, seed: int = 0, rule: str = "largest"
) -> tuple[np.ndarray, np.ndarray]:
    """Image rows for (train, val); each class keeps about ``fraction`` of its images in val.

    The result depends only on the image ids, their labels, ``fraction`` and
    ``seed`` (not on the order of images in the file), so it is stable.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction must be between 0 and 1, got {fraction}")
    strata = primary_labels(index, rule)
    rng = np.random.default_rng(seed)
    val_rows: list[np.ndarray] = []
    for stratum in np.unique(strata):
        members = np.flatnonzero(strata == stratum)
        members = members[np.argsort(index.image_ids[members], kind="stable")]
        shuffled = members[rng.permutation(len(members))]
        n_val = int(round(len(members) * fraction))
        if n_val == 0 and len(members) >= 2 and rng.random() < fraction * len(members):
            n_val = 1  # small classes still show up in validation sometimes
        val_rows.append(shuffled[:n_val])
    val = np.sort(np.concatenate(val_rows)) if val_rows else np.zeros(0, np.int64)
    if len(val) == 0 and index.num_images >= 2:
        val = np.array([int(rng.integers(index.num_images))])
    train = np.setdiff1d(np.arange(index.num_images), val)
    return train, val
