"""Collect a model's raw outputs batch by batch into the figures of an evaluation report.

Shared by the evaluation of a run's checkpoint and of an export: each hands its batches (as
the task's collate function makes them) and the model's raw outputs for them; the figures
are computed once at the end by ``engine.metrics``' report modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from engine.metrics.classification_report import classification_figures
from engine.metrics.detection_report import detection_figures
from engine.metrics.segmentation_report import SegmentationTally

REPORT_TASKS = ("classification", "detection", "segmentation")


class Collector:
    """Gathers one task's predictions; ``category_ids``: the dataset id of each model label."""

    def __init__(
        self,
        task: str,
        category_ids: Sequence[int],
        *,
        ignore_index: int | None = 255,
        top_k: int = 100,
        min_score: float = 0.0,
    ) -> None:
        if task not in REPORT_TASKS:
            raise ValueError(f"an evaluation report covers {', '.join(REPORT_TASKS)}, not {task!r}")
        self.task = task
        self.category_ids = [int(c) for c in category_ids]
        self.top_k, self.min_score = top_k, min_score
        self.image_ids: list[int] = []
        self._probabilities: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []
        self.detections: list[dict[str, Any]] = []
        num_classes = len(self.category_ids) + (1 if task == "segmentation" else 0)
        self.tally = SegmentationTally(num_classes, ignore_index) if task == "segmentation" else None

    @torch.no_grad()
    def add(self, batch: dict[str, Any], outputs: Sequence[torch.Tensor]) -> None:
        """One batch and the model's raw outputs for it (classification / segmentation: logits;
        detection: logits and normalised boxes, as the DETR family gives them)."""
        ids = [int(i) for i in batch["image_ids"].tolist()]
        self.image_ids += ids
        if self.task == "classification":
            self._probabilities.append(outputs[0].float().softmax(-1).cpu().numpy().astype(np.float64))
            self._labels.append(batch["labels"].cpu().numpy())
        elif self.task == "detection":
            from engine.tasks.detection.lightning_module import detections_from_outputs

            self.detections += detections_from_outputs(
                outputs[0].float(),
                outputs[1].float(),
                batch["labels"],
                self.category_ids,
                canvas=tuple(batch["pixel_values"].shape[-2:]),
                top_k=self.top_k,
                min_score=self.min_score,
            )
        else:
            from engine.metrics.segmentation import upsample_logits

            labels = batch["labels"]
            logits = outputs[0].float()
            if tuple(logits.shape[-2:]) != tuple(labels.shape[-2:]):
                logits = upsample_logits(logits, tuple(labels.shape[-2:]))
            predicted = logits.argmax(1).cpu().numpy()
            truth = labels.cpu().numpy()
            assert self.tally is not None
            for k, image_id in enumerate(ids):
                self.tally.add(image_id, "", predicted[k], truth[k])

    def classification_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Classification: every image's class probabilities and its given label (model order), in order seen."""
        k = len(self.category_ids)
        probabilities = np.concatenate(self._probabilities) if self._probabilities else np.zeros((0, k))
        labels = np.concatenate(self._labels) if self._labels else np.zeros(0, np.int64)
        return probabilities, labels

    def figures(self, ground_truth: dict[str, Any], class_names: Sequence[str]) -> dict[str, Any]:
        """The report's figures; ``ground_truth``: the evaluated images' COCO dict (file names,
        and for detection the boxes). Classes are named in model order (segmentation: background first)."""
        file_of = {int(image["id"]): str(image.get("file_name", "")) for image in ground_truth["images"]}
        if self.task == "classification":
            probabilities, labels = self.classification_rows()
            names = [file_of.get(i, "") for i in self.image_ids]
            return classification_figures(probabilities, labels, self.image_ids, names, self.category_ids, class_names)
        if self.task == "detection":
            return detection_figures(ground_truth, self.detections, self.category_ids, class_names)
        assert self.tally is not None
        figures = self.tally.figures(segmentation_class_ids(self.category_ids), class_names)
        for image in figures["images"]:
            image["file_name"] = file_of.get(image["image_id"], "")
        return figures


def segmentation_class_ids(category_ids: Sequence[int]) -> list[int]:
    """Ids of segmentation's classes: background (0, or -1 when a category has id 0) then the categories."""
    background = -1 if 0 in category_ids else 0
    return [background, *(int(c) for c in category_ids)]


def report_classes(task: str, category_ids: Sequence[int], class_names: Sequence[str]) -> list[dict[str, Any]]:
    """The report's ``classes``: dataset ids and names in model order."""
    ids = segmentation_class_ids(category_ids) if task == "segmentation" else list(category_ids)
    if len(ids) != len(class_names):
        raise ValueError(f"{len(ids)} classes but {len(class_names)} names")
    return [{"id": int(i), "name": str(n)} for i, n in zip(ids, class_names)]


def detection_ground_truth(ground_truth: dict[str, Any], category_ids: Sequence[int]) -> dict[str, Any]:
    """Detection ground truth restricted to the model's categories (others cannot be predicted)."""
    known = {int(c) for c in category_ids}
    return {
        **ground_truth,
        "annotations": [a for a in ground_truth["annotations"] if int(a["category_id"]) in known and "bbox" in a],
        "categories": [c for c in ground_truth["categories"] if int(c["id"]) in known],
    }
