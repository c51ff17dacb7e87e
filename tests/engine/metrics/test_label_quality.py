"""Label-quality scores: planted label errors rank first, with the right kind and the right fix."""

from __future__ import annotations

import numpy as np
import pytest

from engine.metrics import label_quality
from engine.metrics.label_quality import (
    MISSING_BOX,
    POORLY_PLACED_BOX,
    SPURIOUS_BOX,
    WRONG_CLASS,
    classification_suspects,
    detection_suspects,
)

CLASS_IDS, CLASS_NAMES = [1, 2, 5], ["circle", "square", "blob"]


def _confident_probabilities(truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    probabilities = rng.uniform(0.0, 0.1, size=(len(truth), 3))
    probabilities[np.arange(len(truth)), truth] = rng.uniform(0.8, 0.95, size=len(truth))
    return probabilities / probabilities.sum(1, keepdims=True)


@pytest.mark.parametrize("ranking", ["self_confidence", "normalized_margin"])
def test_flipped_classification_labels_rank_first_with_the_true_class_suggested(ranking):
    rng = np.random.default_rng(0)
    truth = np.arange(60) % 3
    given = truth.copy()
    flipped = [4, 17, 33]
    given[flipped] = (truth[flipped] + 1) % 3
    entries = classification_suspects(
        _confident_probabilities(truth, rng),
        given,
        image_ids=[100 + i for i in range(60)],
        file_names=[f"img{i}.png" for i in range(60)],
        annotation_ids=[1000 + i for i in range(60)],
        class_ids=CLASS_IDS,
        class_names=CLASS_NAMES,
        ranking=ranking,
    )
    assert len(entries) == 60
    top = entries[:3]
    assert {e["image_id"] for e in top} == {100 + i for i in flipped}
    for entry in top:
        i = entry["image_id"] - 100
        assert entry["issue"] and entry["kind"] == "wrong_label"
        assert entry["annotation_id"] == 1000 + i and entry["file_name"] == f"img{i}.png"
        assert entry["given"]["category_id"] == CLASS_IDS[given[i]]
        assert entry["suggested"]["category_id"] == CLASS_IDS[truth[i]]
        assert entry["suggested"]["name"] == CLASS_NAMES[truth[i]]
    assert not any(e["issue"] for e in entries[3:])
    assert [e["score"] for e in entries] == sorted(e["score"] for e in entries)


def test_a_bad_ranking_and_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="ranking must be one of"):
        classification_suspects(
            np.ones((1, 3)) / 3, np.zeros(1, int), image_ids=[1], file_names=["a"], annotation_ids=[1],
            class_ids=CLASS_IDS, class_names=CLASS_NAMES, ranking="loss",
        )  # fmt: skip
    with pytest.raises(ValueError, match="2 labels but probabilities of shape"):
        classification_suspects(
            np.ones((3, 3)) / 3, np.zeros(2, int), image_ids=[1, 2], file_names=["a", "b"], annotation_ids=[1, 2],
            class_ids=CLASS_IDS, class_names=CLASS_NAMES,
        )  # fmt: skip


def _image(image_id, boxes, labels, preds, ann_ids=None):
    """A scored image: given boxes (x y w h, model-order labels) and predictions (x y w h, label, score)."""
    return {
        "image_id": image_id,
        "file_name": f"{image_id}.png",
        "annotation_ids": ann_ids if ann_ids is not None else [image_id * 10 + j for j in range(len(boxes))],
        "boxes": np.asarray(boxes, float).reshape(-1, 4),
        "labels": np.asarray(labels, int),
        "pred_boxes": np.asarray([p[0] for p in preds], float).reshape(-1, 4),
        "pred_labels": np.asarray([p[1] for p in preds], int),
        "pred_scores": np.asarray([p[2] for p in preds], float),
    }


def _clean_images(count, rng):
    images = []
    for i in range(1, count + 1):
        boxes, labels, preds = [], [], []
        for j in range(2):
            x, y = 10 + 60 * j + rng.uniform(0, 5), 10 + rng.uniform(0, 5)
            c = (i + j) % 3
            boxes.append([x, y, 40, 40])
            labels.append(c)
            preds.append(([x + rng.uniform(-1, 1), y + rng.uniform(-1, 1), 40, 40], c, rng.uniform(0.96, 0.99)))
        images.append(_image(i, boxes, labels, preds))
    return images


def test_a_deleted_box_and_a_relabelled_box_rank_first_as_missing_and_wrong_class():
    images = _clean_images(20, np.random.default_rng(1))
    # Image 3: its second box was deleted from the annotations (the model still finds it).
    deleted = images[2]
    deleted_box = deleted["boxes"][1].copy()
    deleted["boxes"], deleted["labels"] = deleted["boxes"][:1], deleted["labels"][:1]
    deleted["annotation_ids"] = deleted["annotation_ids"][:1]
    # Image 7: its first box was relabelled (model says class t, the file says t + 1).
    relabelled = images[6]
    true_class = int(relabelled["labels"][0])
    relabelled["labels"][0] = (true_class + 1) % 3
    entries = detection_suspects(images, class_ids=CLASS_IDS, class_names=CLASS_NAMES)

    assert {(e["kind"], e["image_id"]) for e in entries[:2]} == {(MISSING_BOX, 3), (WRONG_CLASS, 7)}
    missing = next(e for e in entries if e["kind"] == MISSING_BOX)
    assert missing["annotation_id"] is None and missing["given"] is None and missing["issue"]
    assert np.allclose(missing["suggested"]["bbox"], deleted_box, atol=1.5)
    wrong = next(e for e in entries if e["kind"] == WRONG_CLASS)
    assert wrong["annotation_id"] == 70 and wrong["issue"]
    assert wrong["given"]["category_id"] == CLASS_IDS[(true_class + 1) % 3]
    assert wrong["suggested"]["category_id"] == CLASS_IDS[true_class]
    # Every given box is listed once, by its annotation id.
    listed = [e["annotation_id"] for e in entries if e["annotation_id"] is not None]
    assert sorted(listed) == sorted(a for image in images for a in image["annotation_ids"])
    assert not any(e["issue"] for e in entries[2:])


def test_a_box_with_nothing_predicted_is_spurious_and_a_shifted_box_is_poorly_placed():
    images = _clean_images(10, np.random.default_rng(2))
    images[1]["boxes"] = np.vstack([images[1]["boxes"], [[200, 200, 30, 30]]])
    images[1]["labels"] = np.append(images[1]["labels"], 0)
    images[1]["annotation_ids"] = [*images[1]["annotation_ids"], 999]
    images[4]["boxes"][0, :2] += 22  # half a box off the object the model sees
    entries = detection_suspects(images, class_ids=CLASS_IDS, class_names=CLASS_NAMES)
    by_id = {e["annotation_id"]: e for e in entries}
    assert by_id[999]["kind"] == SPURIOUS_BOX and by_id[999]["suggested"] is None
    shifted = by_id[images[4]["annotation_ids"][0]]
    assert shifted["kind"] == POORLY_PLACED_BOX
    assert np.allclose(shifted["suggested"]["bbox"], images[4]["pred_boxes"][0], atol=0.01)
    assert {entries[0]["annotation_id"], entries[1]["annotation_id"]} == {999, shifted["annotation_id"]}


def test_without_cleanlab_the_error_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_cleanlab(name, *args, **kwargs):
        if name.startswith("cleanlab"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cleanlab)
    monkeypatch.setattr(label_quality.importlib, "import_module", lambda name: no_cleanlab(name))
    with pytest.raises(ImportError, match=r"lightbox\[labels\]"):
        classification_suspects(
            np.ones((1, 3)) / 3, np.zeros(1, int), image_ids=[1], file_names=["a"], annotation_ids=[1],
            class_ids=CLASS_IDS, class_names=CLASS_NAMES,
        )  # fmt: skip


def test_a_region_of_the_wrong_class_and_a_region_around_background_rank_first():
    rng = np.random.default_rng(4)
    truth = np.arange(1, 41) % 3 + 1  # model order: background 0, then the three classes
    probabilities = rng.uniform(0.0, 0.05, size=(40, 4))
    probabilities[np.arange(40), truth] = rng.uniform(0.85, 0.95, size=40)
    given = truth.copy()
    given[5] = truth[5] % 3 + 1  # another class
    probabilities[12] = [0.9, 0.04, 0.03, 0.03]  # the model sees background there
    class_ids, names = [0, *CLASS_IDS], ["background", *CLASS_NAMES]
    entries = label_quality.segmentation_suspects(
        probabilities / probabilities.sum(1, keepdims=True),
        given,
        image_ids=[i // 2 for i in range(40)],
        file_names=[f"{i // 2}.png" for i in range(40)],
        annotation_ids=list(range(500, 540)),
        class_ids=class_ids,
        class_names=names,
    )
    top = {e["annotation_id"]: e for e in entries[:2]}
    assert set(top) == {505, 512}
    assert top[505]["kind"] == "wrong_region_class" and top[505]["suggested"]["category_id"] == class_ids[truth[5]]
    assert top[512]["kind"] == "spurious_region" and top[512]["suggested"] is None
    assert top[505]["issue"] and top[512]["issue"]
