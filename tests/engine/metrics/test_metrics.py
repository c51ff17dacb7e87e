"""Metrics checked against reference implementations (scikit-learn, pycocotools, torchmetrics)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from engine.metrics.classification import ClassificationMetrics
from engine.metrics.detection import SUMMARY_KEYS, DetectionEvaluator, coco_evaluate
from engine.metrics.segmentation import SegmentationMetrics, upsample_logits


def test_package_import_does_not_pull_torch():
    code = "import sys, engine.metrics; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- classification


def _random_classification(seed: int, n: int = 600, k: int = 10):
    """Random scores where class k-1 is never predicted and class k-2 never occurs at all."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=g)
    labels = torch.randint(0, k - 2, (n,), generator=g)
    labels[::7] = k - 1  # class k-1 occurs in targets only
    # Bias towards the true class so accuracy is not trivial.
    logits[torch.arange(n), labels] += 1.0
    logits[:, k - 1] -= 100.0
    logits[:, k - 2] -= 50.0
    return logits, labels


def test_classification_matches_sklearn():
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, top_k_accuracy_score

    k = 10
    logits, labels = _random_classification(0, k=k)
    names = [f"c{i}" for i in range(k)]
    metrics = ClassificationMetrics(k, names)
    for chunk in range(0, len(labels), 64):  # several updates, uneven last batch
        metrics.update(logits[chunk : chunk + 64], labels[chunk : chunk + 64])
    out = metrics.compute()

    y, scores = labels.numpy(), logits.numpy()
    pred = scores.argmax(1)
    assert out["accuracy"] == pytest.approx(accuracy_score(y, pred), abs=1e-9)
    assert out["top5"] == pytest.approx(top_k_accuracy_score(y, scores, k=5, labels=np.arange(k)), abs=1e-9)
    assert out["f1_macro"] == pytest.approx(f1_score(y, pred, average="macro", zero_division=0), abs=1e-9)
    per_class = f1_score(y, pred, average=None, labels=np.arange(k), zero_division=0)
    assert out["per_class_f1"] == pytest.approx(dict(zip(names, per_class)), abs=1e-9)
    assert out["per_class_f1"]["c9"] == 0.0
    np.testing.assert_array_equal(metrics.confusion_matrix(), confusion_matrix(y, pred, labels=np.arange(k)))

    metrics.reset()
    assert metrics.compute()["accuracy"] == 0.0
    assert metrics.confusion_matrix().sum() == 0


def test_classification_few_classes_and_ignored_labels():
    metrics = ClassificationMetrics(3)
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 2.0, 1.0], [1.0, 0.0, 2.0], [5.0, 0.0, 0.0]])
    metrics.update(logits, torch.tensor([0, 2, 2, -100]))  # -100 is skipped
    out = metrics.compute()
    assert out["accuracy"] == pytest.approx(2 / 3)
    assert out["top5"] == 1.0  # top-min(5, K) = top-3 covers every class
    assert metrics.confusion_matrix().tolist() == [[1, 0, 0], [0, 0, 0], [0, 1, 1]]


# --------------------------------------------------------------------------- detection

CATEGORIES = [{"id": 1, "name": "cat"}, {"id": 3, "name": "dog"}, {"id": 7, "name": "bird"}]


def _make_ground_truth(rng: np.random.Generator, num_images: int = 30, crowded: bool = True) -> dict:
    """Random boxes of all COCO sizes, some crowd regions, and optionally one image with 160 objects."""
    width, height = 640, 480
    images, annotations = [], []
    for img_id in range(1, num_images + 1):
        images.append({"id": img_id, "width": width, "height": height, "file_name": f"{img_id}.jpg"})
        many = crowded and img_id == 5
        n = 160 if many else int(rng.integers(0, 12))
        for _ in range(n):
            # Log-uniform sides give small, medium and large boxes.
            w, h = np.exp(rng.uniform(np.log(4), np.log(300), size=2))
            x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
            # The crowded image is mostly one category, so >100 boxes of one class meet maxDets=100.
            cat = 3 if many and rng.random() < 0.8 else int(rng.choice([1, 3, 7]))
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": img_id,
                    "category_id": cat,
                    "bbox": [float(x), float(y), float(w), float(h)],
                    "area": float(w * h),
                    "iscrowd": int(crowded and rng.random() < 0.05),
                }
            )
    return {"images": images, "annotations": annotations, "categories": CATEGORIES}


def _noisy_detections(gt: dict, rng: np.random.Generator) -> list[dict]:
    """Jittered copies of most GT boxes, a few with the wrong class, plus random false positives."""
    dets = []
    for ann in gt["annotations"]:
        if rng.random() < 0.15:
            continue  # missed
        x, y, w, h = ann["bbox"]
        jitter = rng.normal(0, 0.08, size=4) * [w, h, w, h]
        cat = ann["category_id"] if rng.random() > 0.1 else int(rng.choice([1, 3, 7]))
        dets.append(
            {
                "image_id": ann["image_id"],
                "category_id": cat,
                "bbox": [x + jitter[0], y + jitter[1], max(w + jitter[2], 1.0), max(h + jitter[3], 1.0)],
                "score": float(rng.uniform(0.3, 1.0)),
            }
        )
    for img in gt["images"]:
        for _ in range(int(rng.integers(0, 6))):
            w, h = rng.uniform(5, 200, size=2)
            dets.append(
                {
                    "image_id": img["id"],
                    "category_id": int(rng.choice([1, 3, 7])),
                    "bbox": [float(rng.uniform(0, 640 - w)), float(rng.uniform(0, 480 - h)), float(w), float(h)],
                    "score": float(rng.uniform(0.0, 0.8)),
                }
            )
    return dets


def _reference_per_class_ap(gt: dict, dets: list[dict]) -> dict[int, float]:
    """Per-class AP@[.5:.95] straight from pycocotools' precision array."""
    import contextlib
    import copy
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(dets))
        ev = COCOeval(coco_gt, coco_dt, iouType="bbox")
        ev.evaluate()
        ev.accumulate()
    precision = ev.eval["precision"]  # [T, R, K, A, M]
    result = {}
    for k, cat_id in enumerate(ev.params.catIds):
        p = precision[:, :, k, 0, -1]
        result[cat_id] = float(np.mean(p[p > -1])) if (p > -1).any() else -1.0
    return result


@pytest.fixture(scope="module")
def coco_case():
    rng = np.random.default_rng(7)
    gt = _make_ground_truth(rng)
    return gt, _noisy_detections(gt, rng)


def test_faster_backend_matches_pycocotools(coco_case, capsys):
    gt, dets = coco_case
    assert max(np.bincount([a["image_id"] for a in gt["annotations"]])) >= 150
    assert any(a["iscrowd"] for a in gt["annotations"])

    fast = coco_evaluate(gt, dets, backend="faster")
    ref = coco_evaluate(gt, dets, backend="pycocotools")
    assert capsys.readouterr().out == ""  # neither library may print

    for key in SUMMARY_KEYS:
        assert fast[key] == pytest.approx(ref[key], abs=1e-4), key
    assert 0.2 < fast["map"] < 0.95  # noisy detections: neither trivial nor perfect

    independent = _reference_per_class_ap(gt, dets)
    names = {c["id"]: c["name"] for c in CATEGORIES}
    assert set(fast["per_class_ap"]) == set(names.values())
    for cat_id, ap in independent.items():
        assert fast["per_class_ap"][names[cat_id]] == pytest.approx(ap, abs=1e-4)
        assert ref["per_class_ap"][names[cat_id]] == pytest.approx(ap, abs=1e-4)
    # COCO's map is the mean of the per-class APs.
    assert fast["map"] == pytest.approx(np.mean(list(independent.values())), abs=1e-4)


def test_inputs_are_not_mutated(coco_case):
    gt, dets = coco_case
    gt_keys = [set(a) for a in gt["annotations"]]
    det_keys = [set(d) for d in dets]
    coco_evaluate(gt, dets[:50], backend="faster")
    coco_evaluate(gt, dets[:50], backend="pycocotools")
    assert [set(a) for a in gt["annotations"]] == gt_keys
    assert [set(d) for d in dets] == det_keys


@pytest.mark.parametrize("backend", ["faster", "pycocotools"])
def test_perfect_and_empty_detections(backend):
    gt = _make_ground_truth(np.random.default_rng(3), num_images=10, crowded=False)
    perfect = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
        for a in gt["annotations"]
    ]
    out = coco_evaluate(gt, perfect, backend=backend, class_names={1: "kitten"})
    assert out["map"] == pytest.approx(1.0)
    assert out["map_50"] == pytest.approx(1.0)
    assert out["mar_100"] == pytest.approx(1.0)
    assert out["per_class_ap"] == pytest.approx({"kitten": 1.0, "dog": 1.0, "bird": 1.0})

    empty = coco_evaluate(gt, [], backend=backend)
    assert all(empty[k] == 0.0 for k in SUMMARY_KEYS)
    assert empty["per_class_ap"] == {"cat": 0.0, "dog": 0.0, "bird": 0.0}


def test_detection_evaluator(coco_case):
    gt, dets = coco_case
    evaluator = DetectionEvaluator(gt)
    for i in range(0, len(dets), 100):
        evaluator.add(dets[i : i + 100])
    out, ref = evaluator.compute(), coco_evaluate(gt, dets)
    for key in SUMMARY_KEYS:
        assert out[key] == pytest.approx(ref[key], abs=1e-9)

    # Perfect detections on only half the images: the other half count as misses.
    evaluator.reset()
    assert evaluator.compute()["map"] == 0.0
    two = {
        "images": [{"id": 1, "width": 100, "height": 100}, {"id": 2, "width": 100, "height": 100}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 50], "area": 2500, "iscrowd": 0},
            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [10, 10, 50, 50], "area": 2500, "iscrowd": 0},
        ],
        "categories": [{"id": 1, "name": "cat"}],
    }
    half = DetectionEvaluator(two, backend="pycocotools")
    half.add([{"image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 50], "score": 0.9}])
    assert half.compute()["mar_100"] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        half.add([{"image_id": 99, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}])


# --------------------------------------------------------------------------- segmentation


def test_segmentation_matches_torchmetrics():
    from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

    k = 6
    g = torch.Generator().manual_seed(0)
    ours = SegmentationMetrics(k, ignore_index=255, class_names=[f"s{i}" for i in range(k)])
    miou = MulticlassJaccardIndex(k, average="macro", ignore_index=255)
    per_class = MulticlassJaccardIndex(k, average="none", ignore_index=255)
    acc = MulticlassAccuracy(k, average="micro", ignore_index=255)
    for step in range(4):
        target = torch.randint(0, k - 1, (2, 32, 40), generator=g)  # class k-1 never in targets...
        target[torch.rand(target.shape, generator=g) < 0.1] = 255
        logits = torch.randn(2, k, 32, 40, generator=g)
        logits[:, k - 1] -= 10.0  # ...nor predicted, so it must not count in mIoU
        if step % 2:
            ours.update(logits, target)
        else:
            ours.update(logits.argmax(1), target)
        pred = logits.argmax(1)
        for m in (miou, per_class, acc):
            m.update(pred, target)

    out = ours.compute()
    assert out["miou"] == pytest.approx(miou.compute().item(), abs=1e-6)
    assert out["pixel_accuracy"] == pytest.approx(acc.compute().item(), abs=1e-6)
    expected = dict(zip([f"s{i}" for i in range(k)], per_class.compute().tolist()))
    assert out["per_class_iou"] == pytest.approx(expected, abs=1e-6)
    assert out["per_class_iou"]["s5"] == 0.0


def test_segmentation_perfect_reset_and_upsample():
    target = torch.randint(0, 3, (2, 16, 16))
    target[0, :4] = 255
    metrics = SegmentationMetrics(4)
    metrics.update(target.clamp(max=3), target)  # ignored pixels may hold any prediction
    out = metrics.compute()
    assert out["miou"] == 1.0 and out["pixel_accuracy"] == 1.0
    metrics.reset()
    assert metrics.compute() == {"miou": 0.0, "pixel_accuracy": 0.0, "per_class_iou": {str(i): 0.0 for i in range(4)}}

    logits = torch.randn(2, 4, 8, 8)
    up = upsample_logits(logits, (16, 16))
    assert up.shape == (2, 4, 16, 16)
    torch.testing.assert_close(up, torch.nn.functional.interpolate(logits, size=(16, 16), mode="bilinear"))
    # Low-resolution logits are upsampled to the target automatically.
    metrics.update(logits, target)
    assert metrics.confusion_matrix().sum() == (target != 255).sum()
