"""Detection report figures against pycocotools run directly, and the matching of a case built by hand."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from engine.metrics.detection_matching import box_iou, threshold_curve
from engine.metrics.detection_report import detection_figures
from engine.metrics.report import build_report, load_report, write_report


def _generated(seed: int, images: int = 40, classes: int = 6):
    """Ground truth with boxes of every size, and noisy detections (some shifted, relabelled, spurious)."""
    rng = np.random.default_rng(seed)
    gt = {"images": [], "annotations": [], "categories": [{"id": 10 + c, "name": f"c{c}"} for c in range(classes)]}
    dets = []
    ann_id = 1
    for i in range(1, images + 1):
        gt["images"].append({"id": i, "file_name": f"{i}.jpg", "width": 640, "height": 480})
        for _ in range(rng.integers(0, 8)):
            w, h = rng.uniform(4, 200, 2)
            x, y = rng.uniform(0, 400), rng.uniform(0, 280)
            # the last class never occurs in the ground truth (its AP is undefined)
            cat = 10 + int(rng.integers(0, classes - 1))
            gt["annotations"].append(
                {"id": ann_id, "image_id": i, "category_id": cat, "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0}
            )
            ann_id += 1
            for _ in range(rng.integers(0, 3)):
                jitter = rng.normal(0, 0.15, 4) * [w, h, w, h]
                label = cat if rng.random() < 0.8 else 10 + int(rng.integers(0, classes))
                box = [x + jitter[0], y + jitter[1], max(w + jitter[2], 1), max(h + jitter[3], 1)]
                dets.append({"image_id": i, "category_id": label, "bbox": box, "score": float(rng.random())})
        for _ in range(rng.integers(0, 5)):
            box = [*rng.uniform(0, 400, 2), *rng.uniform(5, 100, 2)]
            dets.append(
                {"image_id": i, "category_id": 10 + int(rng.integers(0, classes)), "bbox": box, "score": rng.random()}
            )
    return gt, dets


def _pycocotools(gt: dict, dets: list[dict]):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    coco = COCO()
    coco.dataset = {**gt, "annotations": [dict(a) for a in gt["annotations"]]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
        results = coco.loadRes([dict(d, bbox=list(d["bbox"]), score=float(d["score"])) for d in dets])
        evaluator = COCOeval(coco, results, iouType="bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def _none_to_nan(value):
    return np.nan if value is None else value


@pytest.mark.parametrize("backend", ["faster", "pycocotools"])
def test_summary_per_class_ap_ar_and_curves_equal_pycocotools(backend):
    gt, dets = _generated(3)
    class_ids = [c["id"] for c in gt["categories"]]
    figures = detection_figures(gt, dets, class_ids, [f"c{c}" for c in range(6)], backend=backend)
    ref = _pycocotools(gt, dets)
    stats = ref.stats
    expected = {"map": 0, "map_50": 1, "map_75": 2, "map_small": 3, "map_medium": 4, "map_large": 5, "mar_100": 8}
    for key, index in expected.items():
        assert figures["summary"][key] == pytest.approx(stats[index], abs=1e-6), key
    precision, recall = ref.eval["precision"], ref.eval["recall"]
    for k, row in enumerate(figures["per_class"]):
        p = precision[:, :, k, 0, -1]
        r = recall[:, k, 0, -1]
        assert row["id"] == ref.params.catIds[k]
        if (p > -1).any():
            assert row["ap"] == pytest.approx(p[p > -1].mean(), abs=1e-6)
            assert row["ap_50"] == pytest.approx(p[0][p[0] > -1].mean(), abs=1e-6)
            assert row["ap_75"] == pytest.approx(p[5][p[5] > -1].mean(), abs=1e-6)
            assert row["ar_100"] == pytest.approx(r[r > -1].mean(), abs=1e-6)
            curve = figures["curves"]["pr"][str(row["id"])]
            np.testing.assert_allclose(curve["iou_50"]["precision"], p[0], atol=1e-6)
            np.testing.assert_allclose(curve["iou_50"]["recall"], ref.params.recThrs, atol=1e-12)
            np.testing.assert_allclose(curve["iou_50_95"]["precision"], p.mean(axis=0), atol=1e-6)
        else:  # no ground truth of the class: undefined, never 0
            assert row["support"] == 0
            assert row["ap"] is None and row["ar_100"] is None
    support = {c: sum(a["category_id"] == c for a in gt["annotations"]) for c in class_ids}
    assert {row["id"]: row["support"] for row in figures["per_class"]} == support


def test_matches_at_iou_50_agree_with_coco_true_positives():
    """The per-image matching finds the same true positives as COCO's own matching at IoU 0.5."""
    gt, dets = _generated(5)
    figures = detection_figures(gt, dets, [c["id"] for c in gt["categories"]], [f"c{c}" for c in range(6)])
    ref = _pycocotools(gt, dets)
    coco_tp = 0
    for entry in ref.evalImgs:
        if entry is None or entry["aRng"] != [0, 1e10] or entry["maxDet"] != 100:
            continue
        coco_tp += int((entry["dtMatches"][0] > 0).sum())
    ours = sum(p["outcome"] == "tp" for image in figures["images"] for p in image["predictions"])
    assert ours == coco_tp
    curve = figures["curves"]["threshold"]
    assert curve["tp"][0] == coco_tp
    assert curve["fn"][0] == len(gt["annotations"]) - coco_tp


def _hand_case():
    """One image: a true positive, a duplicate, a wrong class, a poor localisation, background, a miss."""
    gt = {
        "images": [{"id": 7, "file_name": "street.jpg", "width": 300, "height": 300}],
        "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "person"}],
        "annotations": [
            {"id": 101, "image_id": 7, "category_id": 1, "bbox": [0, 0, 100, 100], "iscrowd": 0},
            {"id": 102, "image_id": 7, "category_id": 2, "bbox": [150, 0, 50, 100], "iscrowd": 0},
            {"id": 103, "image_id": 7, "category_id": 1, "bbox": [0, 150, 60, 60], "iscrowd": 0},  # missed
        ],
    }
    dets = [
        {"image_id": 7, "category_id": 1, "bbox": [0, 0, 100, 100], "score": 0.9},  # tp on 101
        {"image_id": 7, "category_id": 1, "bbox": [5, 0, 100, 100], "score": 0.8},  # duplicate of 101
        {"image_id": 7, "category_id": 1, "bbox": [150, 0, 50, 100], "score": 0.7},  # wrong class on 102
        {"image_id": 7, "category_id": 1, "bbox": [30, 150, 60, 60], "score": 0.6},  # localisation on 103
        {"image_id": 7, "category_id": 2, "bbox": [250, 250, 40, 40], "score": 0.4},  # background
    ]
    return gt, dets


def test_a_false_positive_of_each_kind_and_a_miss():
    gt, dets = _hand_case()
    figures = detection_figures(gt, dets, [1, 2], ["car", "person"])
    (image,) = figures["images"]
    got = [(p["outcome"], p["reason"], p["matched_annotation"]) for p in image["predictions"]]
    assert got == [
        ("tp", None, 101),
        ("fp", "duplicate", 101),
        ("fp", "wrong_class", 102),
        ("fp", "localisation", 103),
        ("fp", "background", None),
    ]
    ious = [p["iou"] for p in image["predictions"]]
    assert ious[0] == 1.0
    assert ious[1] == pytest.approx(95 * 100 / (2 * 100 * 100 - 95 * 100))
    assert ious[2] == 1.0
    assert ious[3] == pytest.approx(30 * 60 / (2 * 3600 - 30 * 60))
    assert ious[4] == 0.0
    matched = {p["matched_annotation"] for p in image["predictions"] if p["outcome"] == "tp"}
    missed = [a["annotation_id"] for a in image["annotations"] if a["annotation_id"] not in matched]
    assert missed == [102, 103]
    # At score 0.5: 1 TP, 3 FP, 2 FN -> F1 = 2 / (2 + 3 + 2).
    assert image["error"] == pytest.approx(1 - 2 / 7)
    curve = figures["curves"]["threshold"]
    at = curve["score"].index(0.5)
    assert (curve["tp"][at], curve["fp"][at], curve["fn"][at]) == (1, 3, 2)
    assert curve["precision"][at] == pytest.approx(0.25) and curve["recall"][at] == pytest.approx(1 / 3)
    at = curve["score"].index(0.95)
    assert (curve["tp"][at], curve["fp"][at], curve["fn"][at]) == (0, 0, 3)
    assert curve["precision"][at] is None and curve["recall"][at] == 0.0


def test_an_image_with_nothing_has_no_error_and_no_detection_at_all_gives_zero_map():
    gt, _ = _hand_case()
    gt["images"].append({"id": 8, "file_name": "empty.jpg", "width": 10, "height": 10})
    figures = detection_figures(gt, [], [1, 2], ["car", "person"])
    assert figures["summary"]["map"] == 0.0
    assert [i["error"] for i in figures["images"]] == [1.0, 0.0]
    assert all(row["ap"] == 0.0 for row in figures["per_class"])


def test_box_iou_and_empty_curve():
    assert box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 10, 10]]))[0, 0] == pytest.approx(50 / 150)
    curve = threshold_curve(np.zeros(0), np.zeros(0, bool), 0)
    assert curve["precision"][0] is None and curve["recall"][0] is None and curve["f1"][0] is None


def test_report_round_trip_with_nan_as_null(tmp_path):
    gt, dets = _hand_case()
    figures = detection_figures(gt, dets, [1, 2], ["car", "person"])
    figures["summary"]["map_small"] = float("nan")
    report = build_report(
        task="detection",
        source={"run_id": "abc", "checkpoint": "best.ckpt"},
        data={"path": "/data", "split": "val", "num_images": 1},
        classes=[{"id": 1, "name": "car"}, {"id": 2, "name": "person"}],
        figures=figures,
    )
    path = write_report(report, tmp_path / "evaluation")
    assert "NaN" not in path.read_text()
    loaded = load_report(path)
    assert loaded["summary"]["map_small"] is None
    assert loaded["source"] == {"run_id": "abc", "export_dir": None, "checkpoint": "best.ckpt"}
    assert loaded["images"][0]["predictions"][1]["reason"] == "duplicate"
