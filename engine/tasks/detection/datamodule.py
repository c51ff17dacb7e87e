"""Object detection data shaped for DETR.

Targets after augmentation: ``class_labels`` (contiguous labels) and ``boxes``
as normalised ``cx, cy, w, h`` relative to the augmented image; crowd regions
are left out (DETR has no notion of them). ``orig_size``, ``size`` and
``content_box`` let the model map predictions back to original pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from engine.tasks.common.base_datamodule import BaseVisionDataModule
from engine.tasks.common.base_dataset import BaseVisionDataset, hwc_to_chw

PROBE_LABEL = -1


class DetectionDataset(BaseVisionDataset):
    task = "detection"

    def targets(self, row: int) -> dict[str, Any]:
        rows = [
            r
            for r in self.index.annotation_rows(row)
            if not self.index.ann_iscrowd[r]
            and self.index.ann_label[r] >= 0
            and not np.isnan(self.index.ann_bbox[r, 0])
        ]
        boxes = self.index.ann_bbox[rows].astype(np.float32).reshape(-1, 4)
        w, h = float(self.index.image_width[row]), float(self.index.image_height[row])
        # Clip to the image: the health check warns about boxes that overrun it.
        x0 = boxes[:, 0].clip(0, w)
        y0 = boxes[:, 1].clip(0, h)
        x1 = (boxes[:, 0] + boxes[:, 2]).clip(0, w)
        y1 = (boxes[:, 1] + boxes[:, 3]).clip(0, h)
        boxes = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)
        keep = (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
        labels = self.index.ann_label[rows][keep].astype(np.int64)
        boxes = boxes[keep]
        if not self.train:
            # A probe box over the whole image: where it lands after the (non-cropping)
            # validation transforms maps predictions back to original pixels.
            boxes = np.concatenate([boxes, np.array([[0, 0, w, h]], np.float32)])
            labels = np.concatenate([labels, np.array([PROBE_LABEL])])
        return {"boxes": boxes, "labels": labels}

    def to_sample(self, augmented: dict[str, Any], row: int) -> dict[str, Any]:
        image = augmented["image"]
        h, w = image.shape[:2]
        boxes = torch.as_tensor(augmented["boxes"], dtype=torch.float32).reshape(-1, 4)
        labels = torch.as_tensor(augmented["labels"], dtype=torch.long).reshape(-1)
        probe = labels == PROBE_LABEL
        content = boxes[probe][0] if probe.any() else torch.tensor([0.0, 0.0, float(w), float(h)])
        boxes, labels = boxes[~probe], labels[~probe]
        cxcywh = torch.stack(
            [
                (boxes[:, 0] + boxes[:, 2] / 2) / w,
                (boxes[:, 1] + boxes[:, 3] / 2) / h,
                boxes[:, 2] / w,
                boxes[:, 3] / h,
            ],
            dim=1,
        )
        image_id = int(self.index.image_ids[row])
        target = {
            "class_labels": labels,
            "boxes": cxcywh,
            "image_id": torch.tensor(image_id),
            "orig_size": torch.tensor([int(self.index.image_height[row]), int(self.index.image_width[row])]),
            "size": torch.tensor([h, w]),
            # x, y, w, h of the original image inside the augmented one (validation only).
            "content_box": content,
        }
        return {"pixel_values": hwc_to_chw(image), "labels": target, "image_id": image_id}


class DetectionDataModule(BaseVisionDataModule):
    dataset_class = DetectionDataset
