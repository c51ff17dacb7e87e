"""Image classification from a COCO file.

An image's label comes from its annotations by a documented rule
(``engine.data.splits.primary_labels``): ``largest`` (default) takes the
category of the largest non-crowd annotation, ``majority`` the most frequent
one. Images with no usable annotation are left out and counted in ``skipped``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from engine.data.splits import primary_labels
from engine.tasks.common.base_datamodule import BaseVisionDataModule
from engine.tasks.common.base_dataset import BaseVisionDataset, hwc_to_chw


class ClassificationDataset(BaseVisionDataset):
    task = "classification"

    def __init__(self, *args: Any, label_rule: str = "largest", **kwargs: Any):
        self.label_rule = label_rule
        super().__init__(*args, **kwargs)

    def usable_rows(self) -> np.ndarray:
        self.labels = primary_labels(self.index, self.label_rule)
        rows = np.flatnonzero(self.labels >= 0)
        self.skipped = self.index.num_images - len(rows)
        return rows

    def to_sample(self, augmented: dict[str, Any], row: int) -> dict[str, Any]:
        return {
            "pixel_values": hwc_to_chw(augmented["image"]),
            "labels": torch.tensor(int(self.labels[row])),
            "image_id": int(self.index.image_ids[row]),
        }


class ClassificationDataModule(BaseVisionDataModule):
    """Classification data; ``label_rule`` picks how an image's label is chosen."""

    dataset_class = ClassificationDataset
