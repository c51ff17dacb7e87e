"""Semantic segmentation from COCO instance annotations.

The mask is rasterised with pycocotools (polygons and RLE): 0 is background,
``label + 1`` each category, and crowd regions are 255 so the loss ignores them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from engine.data.masks import IGNORE_INDEX, semantic_mask
from engine.tasks.common.base_datamodule import BaseVisionDataModule
from engine.tasks.common.base_dataset import BaseVisionDataset, hwc_to_chw


class SegmentationDataset(BaseVisionDataset):
    task = "segmentation"
    ignore_index = IGNORE_INDEX

    @property
    def num_labels(self) -> int:
        return self.index.num_categories + 1  # with background

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(["background", *self.index.category_names]))

    def targets(self, row: int) -> dict[str, Any]:
        targets: dict[str, Any] = {"mask": semantic_mask(self.index, row, ignore_index=self.ignore_index)}
        if not self.train:
            # Where the whole image lands after the validation transforms, to map
            # predicted masks back to original pixels.
            w, h = float(self.index.image_width[row]), float(self.index.image_height[row])
            targets["boxes"], targets["labels"] = np.array([[0, 0, w, h]], np.float32), np.array([-1])
        return targets

    def to_sample(self, augmented: dict[str, Any], row: int) -> dict[str, Any]:
        image = augmented["image"]
        h, w = image.shape[:2]
        boxes = augmented.get("boxes")
        content = boxes[0].tolist() if boxes is not None and len(boxes) else [0.0, 0.0, float(w), float(h)]
        return {
            "pixel_values": hwc_to_chw(image),
            "labels": torch.from_numpy(augmented["mask"].astype("int64")),
            "image_id": int(self.index.image_ids[row]),
            "content_box": torch.tensor(content),
            "orig_size": torch.tensor([int(self.index.image_height[row]), int(self.index.image_width[row])]),
        }


class SegmentationDataModule(BaseVisionDataModule):
    dataset_class = SegmentationDataset
