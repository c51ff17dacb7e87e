"""Detection post-processing per model family, as the families' own HF processors do it."""

import pytest
import torch

from engine.tasks.detection.lightning_module import detections_from_outputs

TARGET = [
    {
        "content_box": torch.tensor([0.0, 0.0, 100.0, 100.0]),
        "orig_size": torch.tensor([100, 100]),
        "image_id": torch.tensor(7),
    }
]
BOXES = torch.tensor([[[0.5, 0.5, 0.2, 0.2], [0.2, 0.2, 0.1, 0.1], [0.8, 0.8, 0.1, 0.1]]])


def test_sigmoid_families_keep_the_best_query_class_pairs():
    """RT-DETR / Conditional DETR score classes independently: a query confident in two classes gives
    two detections, and the top-k cut runs over (query, class) pairs."""
    logits = torch.logit(torch.tensor([[[0.9, 0.8], [0.3, 0.01], [0.01, 0.01]]]))
    found = detections_from_outputs(logits, BOXES, TARGET, [11, 12], canvas=(100, 100), min_score=0.05)
    assert [(d["category_id"], round(d["score"], 3)) for d in found] == [(11, 0.9), (12, 0.8), (11, 0.3)]
    assert found[0]["bbox"] == found[1]["bbox"] == pytest.approx([40.0, 40.0, 20.0, 20.0], abs=1e-4)
    top2 = detections_from_outputs(logits, BOXES, TARGET, [11, 12], canvas=(100, 100), top_k=2)
    assert [d["score"] for d in top2] == [found[0]["score"], found[1]["score"]]


def test_softmax_families_give_each_query_its_best_class_without_no_object():
    logits = torch.log(torch.tensor([[[0.6, 0.3, 0.1], [0.1, 0.2, 0.7], [0.05, 0.05, 0.9]]]))
    found = detections_from_outputs(logits, BOXES, TARGET, [11, 12], canvas=(100, 100), min_score=0.1)
    assert [(d["category_id"], round(d["score"], 3)) for d in found] == [(11, 0.6), (12, 0.2)]
    assert found[1]["bbox"] == pytest.approx([15.0, 15.0, 10.0, 10.0], abs=1e-4)
