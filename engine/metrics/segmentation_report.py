"""Segmentation figures of an evaluation report, from each image's predicted and true class maps.

Everything follows from pixel confusion matrices (rows truth, columns prediction): one per
image for its own IoU, their sum for the dataset's. Means (mIoU, mean Dice) are taken over the
classes found in the truth or the prediction, as training's ``val/miou`` is; a class found in
neither reports null. Pixels whose truth is ``ignore_index`` (or outside the classes) are skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class SegmentationTally:
    """Adds images one at a time, then gives the report's figures."""

    def __init__(self, num_classes: int, ignore_index: int | None = 255) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
        self._images: list[dict[str, Any]] = []

    def image_confusion(self, predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
        """(K, K) pixel counts of one image."""
        predicted, truth = np.asarray(predicted), np.asarray(truth)
        if predicted.shape != truth.shape:
            raise ValueError(f"prediction {predicted.shape} and truth {truth.shape} differ in size")
        k = self.num_classes
        truth = truth.astype(np.int64, copy=False).ravel()
        predicted = predicted.astype(np.int64, copy=False).ravel()
        valid = (truth >= 0) & (truth < k) & (predicted >= 0) & (predicted < k)
        if self.ignore_index is not None:
            valid &= truth != self.ignore_index
        return np.bincount(truth[valid] * k + predicted[valid], minlength=k * k).reshape(k, k)

    def add(self, image_id: int, file_name: str, predicted: np.ndarray, truth: np.ndarray) -> None:
        counts = self.image_confusion(predicted, truth)
        self.confusion += counts
        self._images.append({"image_id": int(image_id), "file_name": str(file_name), "counts": counts})

    def figures(self, class_ids: Sequence[int], class_names: Sequence[str]) -> dict[str, Any]:
        """Summary, per-class rows, the pixel confusion matrix and per-image IoU (classes by their ids)."""
        k = self.num_classes
        if len(class_ids) != k or len(class_names) != k:
            raise ValueError(f"{k} classes in the maps but {len(class_ids)} ids and {len(class_names)} names")
        iou, dice, present = class_scores(self.confusion)
        total = self.confusion.sum()
        summary = {
            "miou": float(iou[present].mean()) if present.any() else None,
            "mdice": float(dice[present].mean()) if present.any() else None,
            "pixel_accuracy": float(np.trace(self.confusion) / total) if total else None,
        }
        support = self.confusion.sum(axis=1)
        per_class = [
            {
                "id": int(class_ids[c]),
                "name": str(class_names[c]),
                "support": int(support[c]),
                "iou": float(iou[c]) if present[c] else None,
                "dice": float(dice[c]) if present[c] else None,
            }
            for c in range(k)
        ]
        images = []
        for entry in self._images:
            image_iou, _, image_present = class_scores(entry["counts"])
            found = np.flatnonzero(image_present)
            images.append(
                {
                    "image_id": entry["image_id"],
                    "file_name": entry["file_name"],
                    "error": float(1.0 - image_iou[found].mean()) if found.size else 0.0,
                    "iou": {str(int(class_ids[c])): float(image_iou[c]) for c in found},
                }
            )
        return {
            "summary": summary,
            "per_class": per_class,
            "confusion": {"labels": [str(n) for n in class_names], "counts": self.confusion.tolist()},
            "curves": None,
            "images": images,
        }


def class_scores(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per class IoU, Dice, and whether the class is found in the truth or the prediction."""
    confusion = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(confusion)
    truth, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
    present = (truth + predicted) > 0
    union = truth + predicted - tp
    iou = np.divide(tp, union, out=np.zeros_like(tp), where=union > 0)
    dice = np.divide(2 * tp, truth + predicted, out=np.zeros_like(tp), where=present)
    return iou, dice, present
