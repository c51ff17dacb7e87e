"""Semantic segmentation from COCO instance annotations.

The mask is rasterised with pycocotools (polygons and RLE): 0 is background,
``label + 1`` each category, and crowd regions are 255 so the loss ignores them.
"""

from __future__ import annotations

from typing import Any

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
        return {"mask": semantic_mask(self.index, row, ignore_index=self.ignore_index)}

    def to_sample(self, augmented: dict[str, Any], row: int) -> dict[str, Any]:
        return {"pixel_values": hwc_to_chw(augmented["image"]),
                "labels": torch.from_numpy(augmented["mask"].astype("int64")),
                "image_id": int(self.index.image_ids[row])}


class SegmentationDataModule(BaseVisionDataModule):
    dataset_class = SegmentationDataset
