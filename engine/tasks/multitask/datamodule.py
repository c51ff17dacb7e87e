"""Data for several tasks at once: one augmentation carries image, boxes and mask together."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from engine.data import augment
from engine.data.masks import IGNORE_INDEX, semantic_mask
from engine.data.splits import primary_labels
from engine.tasks.common.base_datamodule import BaseVisionDataModule
from engine.tasks.common.collate import IMAGENET_MEAN, IMAGENET_STD, normalize_batch, stack_images
from engine.tasks.detection.datamodule import DetectionDataset

from .config import TASKS, check_tasks, labels_per_task

__all__ = ["MultiTaskCollate", "MultiTaskDataModule", "MultiTaskDataset"]


def _preset(split: str, image_size: int | None) -> list[dict]:
    """The detection preset (keeps boxes and masks aligned), padding masks with 255.

    The detection preset pads masks with 0, which would teach the segmentation
    head that padding is background.
    """
    spec = augment.preset("detection", split, image_size)
    for step in spec:
        if step["name"] == "PadIfNeeded":
            step["fill_mask"] = augment.MASK_PAD_VALUE
    return spec


class MultiTaskDataset(DetectionDataset):
    """Samples carrying every configured task's labels, augmented together.

    ``labels`` holds, for the configured tasks only: ``classification`` (int,
    the ``primary_labels`` rule, 'largest' by default), ``detection`` (the
    DETR target of ``DetectionDataset``) and ``segmentation`` (LongTensor mask,
    0 background, label + 1, 255 crowd and padding). When classification is a
    task, images without any annotation are skipped (they have no label), so
    the other tasks do not see them either; count in ``skipped``.
    """

    task = "detection"  # the augmentation pipeline's semantics

    def __init__(
        self,
        *args: Any,
        tasks: Sequence[str] | None = None,
        label_rule: str = "largest",
        transforms: list[dict] | None = None,
        train: bool = True,
        image_size: int | None = None,
        **kwargs: Any,
    ):
        self.tasks = check_tasks(TASKS if tasks is None else tasks)
        self.label_rule = label_rule
        if transforms is None:
            transforms = _preset("train" if train else "val", image_size)
        super().__init__(*args, transforms=transforms, train=train, image_size=image_size, **kwargs)

    @property
    def num_labels_per_task(self) -> dict[str, int]:
        return labels_per_task(self.index.num_categories, self.tasks)

    def usable_rows(self) -> np.ndarray:
        self.labels = primary_labels(self.index, self.label_rule)
        rows = np.flatnonzero(self.labels >= 0) if "classification" in self.tasks else np.arange(self.index.num_images)
        self.skipped = self.index.num_images - len(rows)
        return rows

    def targets(self, row: int) -> dict[str, Any]:
        targets = super().targets(row)
        if "segmentation" in self.tasks:
            targets["mask"] = semantic_mask(self.index, row, ignore_index=IGNORE_INDEX)
        return targets

    def to_sample(self, augmented: dict[str, Any], row: int) -> dict[str, Any]:
        sample = super().to_sample(augmented, row)
        detection = sample["labels"]
        labels: dict[str, Any] = {}
        for task in self.tasks:
            if task == "classification":
                labels[task] = int(self.labels[row])
            elif task == "detection":
                labels[task] = detection
            else:
                labels[task] = torch.from_numpy(augmented["mask"].astype(np.int64))
        return {
            "pixel_values": sample["pixel_values"],
            "labels": labels,
            "image_id": sample["image_id"],
            "content_box": detection["content_box"],
            "orig_size": detection["orig_size"],
        }


class MultiTaskCollate:
    """Stacks images once; builds each task's labels as the single-task ``Collate`` does."""

    def __init__(
        self,
        tasks: Sequence[str],
        *,
        normalize: bool = True,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        ignore_index: int = IGNORE_INDEX,
    ):
        self.tasks, self.normalize = list(tasks), normalize
        self.mean, self.std, self.ignore_index = tuple(mean), tuple(std), ignore_index

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        pixels, pixel_mask = stack_images([s["pixel_values"] for s in samples])
        if self.normalize:
            pixels = normalize_batch(pixels, self.mean, self.std)
        h, w = pixels.shape[-2:]
        labels: dict[str, Any] = {}
        batch: dict[str, Any] = {"pixel_values": pixels, "labels": labels}
        if "classification" in self.tasks:
            labels["classification"] = torch.tensor([s["labels"]["classification"] for s in samples], dtype=torch.long)
        if "detection" in self.tasks:
            labels["detection"] = [self._on_canvas(s["labels"]["detection"], h, w) for s in samples]
            batch["pixel_mask"] = (
                pixel_mask if pixel_mask is not None else torch.ones((len(samples), h, w), dtype=torch.long)
            )
        if "segmentation" in self.tasks:
            masks = torch.full((len(samples), h, w), self.ignore_index, dtype=torch.long)
            for k, s in enumerate(samples):
                m = s["labels"]["segmentation"]
                masks[k, : m.shape[0], : m.shape[1]] = m
            labels["segmentation"] = masks
        batch["image_ids"] = torch.tensor([int(s["image_id"]) for s in samples], dtype=torch.long)
        batch["content_boxes"] = torch.stack([s["content_box"] for s in samples])
        batch["orig_sizes"] = torch.stack([s["orig_size"] for s in samples])
        return batch

    @staticmethod
    def _on_canvas(target: dict[str, Any], h: int, w: int) -> dict[str, Any]:
        """Boxes are relative to their image; re-express them relative to the padded canvas."""
        target = dict(target)
        sh, sw = target["size"].tolist()
        if (sh, sw) != (h, w) and len(target["boxes"]):
            factor = torch.tensor([sw / w, sh / h, sw / w, sh / h], dtype=target["boxes"].dtype)
            target["boxes"] = target["boxes"] * factor
        return target


class MultiTaskDataModule(BaseVisionDataModule):
    """Data for several tasks at once; ``tasks`` defaults to all three."""

    dataset_class = MultiTaskDataset

    def __init__(self, *args: Any, tasks: Sequence[str] | None = None, **kwargs: Any):
        tasks = check_tasks(TASKS if tasks is None else tasks)
        super().__init__(*args, tasks=tasks, **kwargs)  # reaches the datasets through dataset_kwargs
        self.tasks = tasks

    @property
    def num_labels_per_task(self) -> dict[str, int]:
        self.setup()
        return self.train_dataset.num_labels_per_task

    def collate(self) -> MultiTaskCollate:
        return MultiTaskCollate(self.tasks, normalize=self.normalize == "collate", mean=self.mean, std=self.std)
