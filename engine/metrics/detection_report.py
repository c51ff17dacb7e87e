"""Detection figures of an evaluation report: one COCO evaluation, then each image's matches.

The summary, per-class AP / AR and the precision-recall curves are read from the COCO
evaluation object's own arrays (faster-coco-eval by default, pycocotools on request), so they
are the reference figures, not a re-computation. Per image, every prediction is matched at
``MATCH_IOU`` (``engine.metrics.detection_matching``). A figure COCO leaves undefined (-1: no
ground truth of a class, or in an area range) is null.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from engine.metrics.detection import SUMMARY_KEYS, coco_evaluation
from engine.metrics.detection_matching import REASONS, image_error, match_image, threshold_curve
from engine.metrics.report import MATCH_IOU

REPORT_SUMMARY = ("map", "map_50", "map_75", "map_small", "map_medium", "map_large", "mar_100")
AREA_ALL, LAST_MAX_DETS = 0, -1  # index of area range "all"; maxDets 100 is the last setting


def _mean_defined(values: np.ndarray) -> float | None:
    values = values[values > -1]
    return float(values.mean()) if values.size else None


def _defined(value: float) -> float | None:
    return float(value) if value > -1 else None


def coco_figures(ground_truth: dict, detections: list[dict], class_ids: Sequence[int], backend: str = "faster"):
    """(summary, per-class AP/AR by class id, PR curves by class id) from one COCO evaluation."""
    evaluator = coco_evaluation(ground_truth, detections, backend=backend)
    if evaluator is None:  # nothing detected: AP and AR are 0 wherever there is ground truth
        return None
    stats = dict(zip(SUMMARY_KEYS, np.asarray(evaluator.stats, dtype=np.float64).tolist()))
    summary = {key: _defined(stats[key]) for key in REPORT_SUMMARY}
    precision = np.asarray(evaluator.eval["precision"], dtype=np.float64)  # [T, R, K, A, M]
    recall = np.asarray(evaluator.eval["recall"], dtype=np.float64)  # [T, K, A, M]
    iou_thresholds = np.asarray(evaluator.params.iouThrs, dtype=np.float64)
    recall_points = np.asarray(evaluator.params.recThrs, dtype=np.float64).tolist()
    at_50 = int(np.argmin(np.abs(iou_thresholds - 0.5)))
    at_75 = int(np.argmin(np.abs(iou_thresholds - 0.75)))
    column = {int(c): k for k, c in enumerate(evaluator.params.catIds)}
    per_class: dict[int, dict[str, float | None]] = {}
    curves: dict[str, Any] = {}
    for class_id in class_ids:
        k = column.get(int(class_id))
        if k is None:
            continue
        p = precision[:, :, k, AREA_ALL, LAST_MAX_DETS]  # [T, R]
        per_class[int(class_id)] = {
            "ap": _mean_defined(p),
            "ap_50": _mean_defined(p[at_50]),
            "ap_75": _mean_defined(p[at_75]),
            "ar_100": _mean_defined(recall[:, k, AREA_ALL, LAST_MAX_DETS]),
        }
        # Averaged over IoU thresholds where defined; -1 (no ground truth) stays undefined.
        defined = p > -1
        counted = defined.sum(axis=0)
        mean_curve = np.where(counted > 0, np.where(defined, p, 0).sum(axis=0) / np.maximum(counted, 1), np.nan)
        curves[str(int(class_id))] = {
            "iou_50": {"recall": recall_points, "precision": np.where(defined[at_50], p[at_50], np.nan).tolist()},
            "iou_50_95": {"recall": recall_points, "precision": mean_curve.tolist()},
        }
    return summary, per_class, curves


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while building many small acyclic containers (the per-image
    entries): it would scan every object again and again, a third of the time, for nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _by_image(ids: np.ndarray) -> dict[int, np.ndarray]:
    """Row indices of each image id, in their given order."""
    order = np.argsort(ids, kind="stable")
    unique, starts = np.unique(ids[order], return_index=True)
    return dict(zip(unique.tolist(), np.split(order, starts[1:])))


def detection_figures(
    ground_truth: dict,
    detections: list[dict],
    class_ids: Sequence[int],
    class_names: Sequence[str],
    *,
    backend: str = "faster",
) -> dict[str, Any]:
    """Summary, per-class rows, curves and per-image matches of ``detections`` on ``ground_truth``.

    ``ground_truth`` is a COCO dict (images with ``file_name``); ``detections`` COCO results
    with the dataset's category ids; ``class_ids`` / ``class_names`` the model's classes.
    """
    if len(class_ids) != len(class_names):
        raise ValueError(f"{len(class_ids)} class ids but {len(class_names)} names")
    figures = coco_figures(ground_truth, detections, class_ids, backend)
    with gc_paused():
        return _with_matches(ground_truth, detections, class_ids, class_names, figures)


def _with_matches(
    ground_truth: dict, detections: list[dict], class_ids: Sequence[int], class_names: Sequence[str], figures: Any
) -> dict[str, Any]:
    """The report's figures: COCO's (``figures``, None when nothing was detected) and each image's matches."""
    annotations = [a for a in ground_truth.get("annotations", []) if not a.get("iscrowd", 0) and "bbox" in a]
    support = {int(c): 0 for c in class_ids}
    for ann in annotations:
        cid = int(ann["category_id"])
        support[cid] = support.get(cid, 0) + 1
    if figures is None:
        summary = {key: 0.0 for key in REPORT_SUMMARY}
        per_class_figures = {
            int(c): dict.fromkeys(("ap", "ap_50", "ap_75", "ar_100"), 0.0 if support[int(c)] else None)
            for c in class_ids
        }
        pr_curves: dict[str, Any] = {}
    else:
        summary, per_class_figures, pr_curves = figures
    empty = dict.fromkeys(("ap", "ap_50", "ap_75", "ar_100"))
    per_class = [
        {"id": int(c), "name": str(name), "support": support[int(c)], **per_class_figures.get(int(c), empty)}
        for c, name in zip(class_ids, class_names)
    ]

    det_image = np.fromiter((d["image_id"] for d in detections), np.int64, len(detections))
    det_category = np.fromiter((d["category_id"] for d in detections), np.int64, len(detections))
    det_score = np.fromiter((d["score"] for d in detections), np.float64, len(detections))
    det_box = np.asarray([d["bbox"] for d in detections], dtype=np.float64).reshape(-1, 4)
    gt_image = np.fromiter((a["image_id"] for a in annotations), np.int64, len(annotations))
    gt_category = np.fromiter((a["category_id"] for a in annotations), np.int64, len(annotations))
    gt_id = np.fromiter((a.get("id", i) for i, a in enumerate(annotations)), np.int64, len(annotations))
    gt_box = np.asarray([a["bbox"] for a in annotations], dtype=np.float64).reshape(-1, 4)
    det_rows, gt_rows = _by_image(det_image), _by_image(gt_image)
    no_rows = np.zeros(0, dtype=np.int64)

    # Match image by image into arrays over every detection, then turn them into Python values
    # once: per-image numpy-to-list conversions cost more than the matching itself.
    all_tp = np.zeros(len(detections), dtype=bool)
    all_reason = np.full(len(detections), -1, dtype=np.int64)
    all_related = np.full(len(detections), -1, dtype=np.int64)
    all_iou = np.zeros(len(detections), dtype=np.float64)
    errors = []
    for image in ground_truth.get("images", []):
        image_id = int(image["id"])
        d, g = det_rows.get(image_id, no_rows), gt_rows.get(image_id, no_rows)
        matches = match_image(det_box[d], det_category[d], det_score[d], gt_box[g], gt_category[g], MATCH_IOU)
        all_tp[d], all_reason[d], all_iou[d] = matches.true_positive, matches.reason, matches.iou
        if g.size:
            all_related[d] = np.where(matches.box >= 0, gt_id[g][np.maximum(matches.box, 0)], -1)
        errors.append(image_error(matches.true_positive, det_score[d], int(g.size)))

    # The boxes as given (already plain lists of floats): converting 4 x N numbers back costs time.
    boxes = [d["bbox"] for d in detections]
    categories, scores = det_category.tolist(), det_score.tolist()
    outcome = np.where(all_tp, "tp", "fp").tolist()
    reasons = [None if r < 0 else REASONS[r] for r in all_reason.tolist()]
    related = [None if a < 0 else a for a in all_related.tolist()]
    ious = all_iou.tolist()
    truth_boxes, truth_categories, truth_ids = gt_box.tolist(), gt_category.tolist(), gt_id.tolist()
    images = []
    for image, error in zip(ground_truth.get("images", []), errors):
        image_id = int(image["id"])
        d, g = det_rows.get(image_id, no_rows).tolist(), gt_rows.get(image_id, no_rows).tolist()
        images.append(
            {
                "image_id": image_id,
                "file_name": str(image.get("file_name", "")),
                "error": error,
                "predictions": [
                    {
                        "bbox": boxes[i],
                        "category_id": categories[i],
                        "score": scores[i],
                        "outcome": outcome[i],
                        "reason": reasons[i],
                        "matched_annotation": related[i],
                        "iou": ious[i],
                    }
                    for i in d
                ],
                "annotations": [
                    {"annotation_id": truth_ids[j], "bbox": truth_boxes[j], "category_id": truth_categories[j]}
                    for j in g
                ],
            }
        )
    known = np.isin(det_image, [int(i["id"]) for i in ground_truth.get("images", [])])
    curves = {"pr": pr_curves, "threshold": threshold_curve(det_score[known], all_tp[known], len(annotations))}
    return {"summary": summary, "per_class": per_class, "confusion": None, "curves": curves, "images": images}
