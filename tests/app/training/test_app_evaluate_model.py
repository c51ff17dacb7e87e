"""The Evaluate view's Qt-free model on evaluation files written here in the engine's format
(/tmp/team/evaluation_schema.md): threshold counts, false positives and misses, confusion cells,
Browse filters, sorting. The builders below are shared with the other Evaluate tests and the bench."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from app.training.evaluation_model import EvaluationError, load_evaluation, row_normalised, sort_rows

REASONS = ("background", "wrong_class", "duplicate", "localisation")


# ---------------------------------------------------------------------- builders (the engine's format)
def _error_at_half(image: dict) -> float:
    """1 - F1 of the image at score 0.5 (0 when it has no boxes and no predictions above 0.5)."""
    kept = [p for p in image["predictions"] if p["score"] >= 0.5]
    tp = sum(p["outcome"] == "tp" for p in kept)
    truth = len(image["annotations"])
    if not truth and not kept:
        return 0.0
    precision = tp / len(kept) if kept else 0.0
    recall = tp / truth if truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return 1.0 - f1


def report(task: str, classes: list[tuple[int, str]], images: list[dict], **extra) -> dict:
    doc = {
        "version": 1,
        "task": task,
        "source": {"run_id": "r" * 32, "export_dir": None, "checkpoint": None},
        "data": {"path": "/data", "split": "val", "num_images": len(images)},
        "classes": [{"id": i, "name": n} for i, n in classes],
        "summary": {},
        "per_class": [],
        "confusion": None,
        "curves": None,
        "match_iou": 0.5,
        "images": images,
    }
    doc.update(extra)
    return doc


def detection_report(classes: list[tuple[int, str]], images: list[dict]) -> dict:
    """A detection evaluation of ``images`` (each with image_id, file_name, predictions, annotations)."""
    for image in images:
        image["error"] = _error_at_half(image)
    per_class, pr = [], {}
    for cid, name in classes:
        support = sum(a["category_id"] == cid for im in images for a in im["annotations"])
        per_class.append(
            {"id": cid, "name": name, "support": support, "ap": 0.1 * cid, "ap_50": 0.2, "ap_75": None, "ar_100": 0.3}
        )
        recall = np.linspace(0, 1, 101)
        curve = {"recall": recall.tolist(), "precision": (1 - 0.5 * recall**2 / cid).tolist()}
        pr[str(cid)] = {
            "iou_50": curve,
            "iou_50_95": {"recall": curve["recall"], "precision": [p * 0.8 for p in curve["precision"]]},
        }
    summary = {
        "map": 0.4,
        "map_50": 0.6,
        "map_75": 0.35,
        "map_small": -1.0,
        "map_medium": 0.4,
        "map_large": 0.5,
        "mar_100": 0.5,
    }
    threshold = {"score": [0.5], "precision": [0.5], "recall": [0.5], "f1": [0.5], "tp": [1], "fp": [1], "fn": [1]}
    return report(
        "detection", classes, images, per_class=per_class, summary=summary, curves={"pr": pr, "threshold": threshold}
    )


def generated_detection(coco: dict | None = None, *, n_images: int = 50, seed: int = 0) -> dict:
    """Predictions over a COCO dataset's images (or ``n_images`` made-up ones): most boxes found, some
    missed, and false positives of every reason."""
    rng = random.Random(seed)
    if coco is None:
        coco = {"categories": [{"id": k, "name": f"class {k}"} for k in (1, 2, 3, 5)], "images": [], "annotations": []}
        for i in range(1, n_images + 1):
            coco["images"].append({"id": i, "file_name": f"img_{i:05d}.jpg"})
            for _ in range(rng.randint(0, 6)):
                coco["annotations"].append(
                    {
                        "id": len(coco["annotations"]) + 1,
                        "image_id": i,
                        "category_id": rng.choice([1, 2, 3, 5]),
                        "bbox": [rng.uniform(0, 300), rng.uniform(0, 300), 40.0, 30.0],
                    }
                )
    ids = [c["id"] for c in coco["categories"]]
    by_image: dict[int, list[dict]] = {}
    for a in coco["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    images = []
    for im in coco["images"]:
        truth = by_image.get(im["id"], [])
        preds = []
        for a in truth:
            x, y, w, h = a["bbox"]
            roll = rng.random()
            if roll < 0.75:
                score = rng.uniform(0.3, 1.0)
                preds.append(
                    {
                        "bbox": [x + 1, y + 1, w, h],
                        "category_id": a["category_id"],
                        "score": score,
                        "outcome": "tp",
                        "reason": None,
                        "matched_annotation": a["id"],
                        "iou": 0.9,
                    }
                )
                if rng.random() < 0.15:
                    preds.append(
                        {
                            "bbox": [x + 2, y, w, h],
                            "category_id": a["category_id"],
                            "score": score * rng.uniform(0.3, 0.99),
                            "outcome": "fp",
                            "reason": "duplicate",
                            "matched_annotation": a["id"],
                            "iou": 0.85,
                        }
                    )
            elif roll < 0.85:
                other = rng.choice([c for c in ids if c != a["category_id"]])
                preds.append(
                    {
                        "bbox": [x, y, w, h],
                        "category_id": other,
                        "score": rng.uniform(0.1, 0.9),
                        "outcome": "fp",
                        "reason": "wrong_class",
                        "matched_annotation": None,
                        "iou": 0.95,
                    }
                )
            elif roll < 0.92:
                preds.append(
                    {
                        "bbox": [x + w / 2, y + h / 2, w, h],
                        "category_id": a["category_id"],
                        "score": rng.uniform(0.1, 0.9),
                        "outcome": "fp",
                        "reason": "localisation",
                        "matched_annotation": None,
                        "iou": 0.25,
                    }
                )
        if rng.random() < 0.3:
            preds.append(
                {
                    "bbox": [2.0, 2.0, 10.0, 10.0],
                    "category_id": rng.choice(ids),
                    "score": rng.uniform(0.05, 0.95),
                    "outcome": "fp",
                    "reason": "background",
                    "matched_annotation": None,
                    "iou": 0.0,
                }
            )
        annotations = [
            {"annotation_id": a["id"], "bbox": list(a["bbox"]), "category_id": a["category_id"]} for a in truth
        ]
        images.append(
            {"image_id": im["id"], "file_name": im["file_name"], "predictions": preds, "annotations": annotations}
        )
    return detection_report([(c["id"], c["name"]) for c in coco["categories"]], images)


def generated_classification(coco: dict, *, seed: int = 0) -> dict:
    """Each image labelled with its first annotation's class; most predicted right."""
    rng = random.Random(seed)
    classes = [(c["id"], c["name"]) for c in coco["categories"]]
    first = {}
    for a in coco["annotations"]:
        first.setdefault(a["image_id"], a["category_id"])
    images = []
    for im in coco["images"]:
        label = first.get(im["id"], classes[0][0])
        predicted = label if rng.random() < 0.7 else rng.choice([c for c, _ in classes])
        score = rng.uniform(0.4, 1.0)
        p_label = score if predicted == label else rng.uniform(0.0, 1 - score)
        images.append(
            {
                "image_id": im["id"],
                "file_name": im["file_name"],
                "error": 1 - p_label,
                "label": label,
                "predicted": predicted,
                "score": score,
                "label_probability": p_label,
            }
        )
    position = {c: k for k, (c, _) in enumerate(classes)}
    counts = np.zeros((len(classes), len(classes)), int)
    for im in images:
        counts[position[im["label"]], position[im["predicted"]]] += 1
    per_class = []
    for k, (cid, name) in enumerate(classes):
        tp, support, predicted = counts[k, k], counts[k].sum(), counts[:, k].sum()
        p = tp / predicted if predicted else 0.0
        r = tp / support if support else 0.0
        per_class.append(
            {
                "id": cid,
                "name": name,
                "support": int(support),
                "precision": p,
                "recall": r,
                "f1": 2 * p * r / (p + r) if p + r else 0.0,
            }
        )
    return report(
        "classification",
        classes,
        images,
        per_class=per_class,
        summary={"accuracy": float(np.trace(counts) / counts.sum()), "macro_f1": 0.5},
        confusion={"labels": [n for _, n in classes], "counts": counts.tolist()},
    )


def generated_segmentation(coco: dict, *, seed: int = 0) -> dict:
    rng = random.Random(seed)
    classes = [(c["id"], c["name"]) for c in coco["categories"]]
    images = []
    for im in coco["images"]:
        iou = {str(c): rng.uniform(0.2, 1.0) for c, _ in classes if rng.random() < 0.6}
        error = 1 - float(np.mean(list(iou.values()))) if iou else 0.0
        images.append({"image_id": im["id"], "file_name": im["file_name"], "error": error, "iou": iou})
    labels = ["background"] + [n for _, n in classes]
    counts = (np.eye(len(labels)) * 1000 + np.arange(len(labels) ** 2).reshape(len(labels), -1)).astype(int)
    per_class = [
        {"id": c, "name": n, "support": 1000, "iou": 0.5 + 0.1 * k, "dice": 0.6} for k, (c, n) in enumerate(classes)
    ]
    return report(
        "segmentation",
        classes,
        images,
        per_class=per_class,
        summary={"miou": 0.6, "mdice": 0.7, "pixel_accuracy": 0.9},
        confusion={"labels": labels, "counts": counts.tolist()},
    )


def write_report(doc: dict, folder: Path) -> Path:
    path = Path(folder) / "evaluation" / "evaluation.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def sample_coco(dataset: Path, split: str = "val") -> dict:
    return json.loads((Path(dataset) / "annotations" / f"instances_{split}.json").read_text())


def one_of_each() -> dict:
    """Two images: a true positive, a false positive of each reason, and a miss."""
    box = [10.0, 10.0, 20.0, 20.0]
    first = {
        "image_id": 7,
        "file_name": "a.jpg",
        "annotations": [
            {"annotation_id": 70, "bbox": box, "category_id": 1},
            {"annotation_id": 71, "bbox": [50.0, 50.0, 20.0, 20.0], "category_id": 2},
        ],
        "predictions": [
            {
                "bbox": box,
                "category_id": 1,
                "score": 0.9,
                "outcome": "tp",
                "reason": None,
                "matched_annotation": 70,
                "iou": 1.0,
            },
            {
                "bbox": box,
                "category_id": 1,
                "score": 0.8,
                "outcome": "fp",
                "reason": "duplicate",
                "matched_annotation": 70,
                "iou": 1.0,
            },
            {
                "bbox": [50.0, 50.0, 20.0, 20.0],
                "category_id": 1,
                "score": 0.7,
                "outcome": "fp",
                "reason": "wrong_class",
                "matched_annotation": None,
                "iou": 1.0,
            },
            {
                "bbox": [55.0, 55.0, 20.0, 20.0],
                "category_id": 2,
                "score": 0.4,
                "outcome": "tp",
                "reason": None,
                "matched_annotation": 71,
                "iou": 0.6,
            },
        ],
    }
    second = {
        "image_id": 8,
        "file_name": "b.jpg",
        "annotations": [{"annotation_id": 80, "bbox": box, "category_id": 2}],
        "predictions": [
            {
                "bbox": [100.0, 100.0, 5.0, 5.0],
                "category_id": 2,
                "score": 0.95,
                "outcome": "fp",
                "reason": "background",
                "matched_annotation": None,
                "iou": 0.0,
            },
            {
                "bbox": [20.0, 10.0, 20.0, 20.0],
                "category_id": 2,
                "score": 0.6,
                "outcome": "fp",
                "reason": "localisation",
                "matched_annotation": None,
                "iou": 0.33,
            },
        ],
    }
    return detection_report([(1, "cat"), (2, "dog")], [first, second])


def brute_counts(doc: dict, threshold: float, category: int | None = None) -> tuple[int, int, int]:
    """TP / FP / FN at ``threshold`` straight from the images, as the schema defines them."""
    tp = fp = fn = 0
    for image in doc["images"]:
        kept = [
            p
            for p in image["predictions"]
            if p["score"] >= threshold and (category is None or p["category_id"] == category)
        ]
        tp += sum(p["outcome"] == "tp" for p in kept)
        fp += sum(p["outcome"] == "fp" for p in kept)
        found = {p["matched_annotation"] for p in kept if p["outcome"] == "tp"}
        fn += sum(
            a["annotation_id"] not in found
            for a in image["annotations"]
            if category is None or a["category_id"] == category
        )
    return tp, fp, fn


# ---------------------------------------------------------------------- tests
def test_counts_at_every_threshold_equal_a_direct_count(tmp_path):
    doc = generated_detection(n_images=120, seed=3)
    evaluation = load_evaluation(write_report(doc, tmp_path))
    for threshold in np.linspace(0, 1, 41):
        counts = evaluation.matches.counts(float(threshold))
        assert (counts.tp, counts.fp, counts.fn) == brute_counts(doc, threshold)
        for category in (1, 2, 5):
            by_class = evaluation.matches.counts(float(threshold), category)
            assert (by_class.tp, by_class.fp, by_class.fn) == brute_counts(doc, threshold, category)
        assert len(evaluation.matches.false_positives_at(threshold)) == counts.fp
        assert len(evaluation.matches.misses_at(threshold)) == counts.fn


def test_false_positives_keep_their_reason_and_misses_follow_the_threshold(tmp_path):
    evaluation = load_evaluation(write_report(one_of_each(), tmp_path))
    reasons = [(evaluation.image_name(f.image), f.reason) for f in evaluation.matches.false_positives_at(0.5)]
    assert reasons == [
        ("b.jpg", "background"),
        ("a.jpg", "duplicate"),
        ("a.jpg", "wrong_class"),
        ("b.jpg", "localisation"),
    ]
    assert [m.annotation_id for m in evaluation.matches.misses_at(0.3)] == [80]
    assert [m.annotation_id for m in evaluation.matches.misses_at(0.5)] == [80, 71]  # its finder scored 0.4
    counts = evaluation.matches.counts(0.5)
    assert (counts.tp, counts.fp, counts.fn) == (1, 4, 2)
    assert counts.precision == pytest.approx(0.2) and counts.recall == pytest.approx(1 / 3)
    assert counts.f1 == pytest.approx(2 * 0.2 * (1 / 3) / (0.2 + 1 / 3))


def test_browse_filters_are_worst_first(tmp_path):
    evaluation = load_evaluation(write_report(generated_detection(n_images=60, seed=1), tmp_path))
    worst = evaluation.filter_images("worst first")
    errors = [evaluation.images[i]["error"] for i in worst]
    assert errors == sorted(errors, reverse=True) and len(worst) == 60
    with_fp = evaluation.filter_images("has false positives", 0.5)
    assert with_fp and all(
        any(p["outcome"] == "fp" and p["score"] >= 0.5 for p in evaluation.images[i]["predictions"]) for i in with_fp
    )
    assert [i for i in worst if i in set(with_fp)] == with_fp
    missing = evaluation.filter_images("has misses", 0.5)
    assert set(missing) == {m.image for m in evaluation.matches.misses_at(0.5)}


def test_confusion_cells_list_their_images_by_confidence(tmp_path, sample_dataset):
    doc = generated_classification(sample_coco(sample_dataset), seed=2)
    evaluation = load_evaluation(write_report(doc, tmp_path))
    ids = [c["id"] for c in doc["classes"]]
    total = 0
    for r in range(len(ids)):
        for c in range(len(ids)):
            images = evaluation.cell_images(r, c)
            total += len(images)
            assert len(images) == doc["confusion"]["counts"][r][c]
            assert all(doc["images"][i]["label"] == ids[r] and doc["images"][i]["predicted"] == ids[c] for i in images)
            scores = [doc["images"][i]["score"] for i in images]
            assert scores == sorted(scores, reverse=True)
    assert total == len(doc["images"])
    wrong = evaluation.filter_images("misclassified")
    assert set(wrong) == {i for i, im in enumerate(doc["images"]) if im["label"] != im["predicted"]}
    assert row_normalised(np.array([[1, 3], [0, 0]])).tolist() == [[0.25, 0.75], [0.0, 0.0]]


def test_per_class_rows_sort_with_nulls_last():
    rows = [{"name": "a", "ap": 0.3}, {"name": "b", "ap": None}, {"name": "c", "ap": 0.9}, {"name": "d", "ap": 0.1}]
    assert [r["name"] for r in sort_rows(rows, "ap", descending=True)] == ["c", "a", "d", "b"]
    assert [r["name"] for r in sort_rows(rows, "ap")] == ["d", "a", "c", "b"]
    assert [r["name"] for r in sort_rows(rows, "name")] == ["a", "b", "c", "d"]


def test_a_bad_file_is_named_with_its_key(tmp_path):
    path = tmp_path / "evaluation.json"
    doc = one_of_each()
    del doc["images"]
    path.write_text(json.dumps(doc))
    with pytest.raises(EvaluationError, match=f"{path}.*'images'"):
        load_evaluation(path)
    path.write_text("{not json")
    with pytest.raises(EvaluationError, match=str(path)):
        load_evaluation(path)
    path.write_text(json.dumps({"version": 2}))
    with pytest.raises(EvaluationError, match="version"):
        load_evaluation(path)
