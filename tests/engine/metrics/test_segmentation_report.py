"""Segmentation report figures against torchmetrics and a direct computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.metrics.segmentation_report import SegmentationTally


def _maps(seed: int, images: int = 6, k: int = 5):
    """Predictions that mostly agree with the truth; class k-1 never occurs; 255 pixels ignored."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(images):
        truth = rng.integers(0, k - 1, (24, 32))
        predicted = np.where(rng.random(truth.shape) < 0.7, truth, rng.integers(0, k - 1, truth.shape))
        truth[:2] = 255
        pairs.append((predicted, truth))
    return pairs


def test_figures_equal_torchmetrics_and_direct_counts():
    from torchmetrics.functional.classification import multiclass_confusion_matrix, multiclass_jaccard_index

    k = 5
    pairs = _maps(2, k=k)
    tally = SegmentationTally(k, ignore_index=255)
    for i, (predicted, truth) in enumerate(pairs):
        tally.add(i, f"{i}.png", predicted, truth)
    figures = tally.figures([0, 1, 2, 3, 9], ["background", "a", "b", "c", "never"])
    preds = torch.from_numpy(np.stack([p for p, _ in pairs]))
    target = torch.from_numpy(np.stack([t for _, t in pairs]))
    confusion = multiclass_confusion_matrix(preds, target, num_classes=k, ignore_index=255)
    assert figures["confusion"]["counts"] == confusion.tolist()
    per_class_iou = multiclass_jaccard_index(preds, target, num_classes=k, ignore_index=255, average="none")
    present = [row for row in figures["per_class"] if row["iou"] is not None]
    assert len(present) == k - 1 and figures["per_class"][-1]["iou"] is None
    for c, row in enumerate(figures["per_class"][: k - 1]):
        assert row["iou"] == pytest.approx(float(per_class_iou[c]), abs=1e-6)
        truth_pixels = int((target == c).sum())
        both = int(((preds == c) & (target == c)).sum())
        predicted_pixels = int(((preds == c) & (target != 255)).sum())
        assert row["support"] == truth_pixels
        assert row["dice"] == pytest.approx(2 * both / (truth_pixels + predicted_pixels), abs=1e-12)
    assert figures["summary"]["miou"] == pytest.approx(float(per_class_iou[: k - 1].mean()), abs=1e-6)
    assert figures["summary"]["mdice"] == pytest.approx(np.mean([r["dice"] for r in present]), abs=1e-12)
    valid = target != 255
    accuracy = int(((preds == target) & valid).sum()) / int(valid.sum())
    assert figures["summary"]["pixel_accuracy"] == pytest.approx(accuracy, abs=1e-12)


def test_each_image_gets_the_iou_of_the_classes_it_shows_and_an_error():
    tally = SegmentationTally(3, ignore_index=255)
    truth = np.array([[0, 0, 1, 1]])
    predicted = np.array([[0, 1, 1, 1]])
    tally.add(4, "x.png", predicted, truth)
    tally.add(5, "blank.png", np.zeros((1, 2)), np.full((1, 2), 255))
    first, blank = tally.figures([0, 1, 7], ["background", "a", "b"])["images"]
    assert first["iou"] == {"0": 0.5, "1": pytest.approx(2 / 3)}
    assert first["error"] == pytest.approx(1 - (0.5 + 2 / 3) / 2)
    assert blank["iou"] == {} and blank["error"] == 0.0


def test_maps_of_different_sizes_are_refused():
    with pytest.raises(ValueError, match="differ in size"):
        SegmentationTally(2).add(1, "a.png", np.zeros((2, 2)), np.zeros((3, 2)))
