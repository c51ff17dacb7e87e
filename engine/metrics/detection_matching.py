"""Each prediction of an image matched to its ground truth, as COCO matches at one IoU threshold.

Greedy by score: a prediction takes the unmatched box of its class it overlaps most, when that
IoU reaches the threshold (a true positive). Every other prediction is a false positive, with
the reason a reader would give:

- ``duplicate``: it overlaps a box of its class enough, but a higher-scored prediction took it;
- ``wrong_class``: it overlaps a box of another class enough;
- ``localisation``: it overlaps a box of its class, but only by ``LOCALISATION_IOU`` to the threshold;
- ``background``: none of those.

Matching by score means the predictions above any score threshold keep these same matches, so
precision / recall at every threshold follow from one matching.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOCALISATION_IOU = 0.1
REASONS = ("background", "wrong_class", "duplicate", "localisation")
BACKGROUND, WRONG_CLASS, DUPLICATE, LOCALISATION = range(4)
NO_REASON = -1


def box_iou(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """(P, G) IoU of ``[x, y, w, h]`` boxes, as COCO computes it (no +1 on sizes)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    others = np.asarray(others, dtype=np.float64).reshape(-1, 4)
    x0, y0 = boxes[:, None, 0], boxes[:, None, 1]
    x1, y1 = x0 + boxes[:, None, 2], y0 + boxes[:, None, 3]
    ox0, oy0 = others[None, :, 0], others[None, :, 1]
    ox1, oy1 = ox0 + others[None, :, 2], oy0 + others[None, :, 3]
    inter = np.clip(np.minimum(x1, ox1) - np.maximum(x0, ox0), 0, None) * np.clip(
        np.minimum(y1, oy1) - np.maximum(y0, oy0), 0, None
    )
    union = boxes[:, None, 2] * boxes[:, None, 3] + others[None, :, 2] * others[None, :, 3] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


@dataclass
class ImageMatches:
    """Per prediction (in the order given): matched or not, why not, which box, at what IoU."""

    true_positive: np.ndarray  # bool
    reason: np.ndarray  # int: index into REASONS, or NO_REASON for a true positive
    box: np.ndarray  # int: index of the related ground-truth box, -1 for none
    iou: np.ndarray  # float: IoU with that box (with the most overlapping box for background)


def match_image(
    boxes: np.ndarray,
    categories: np.ndarray,
    scores: np.ndarray,
    truth_boxes: np.ndarray,
    truth_categories: np.ndarray,
    iou_threshold: float = 0.5,
) -> ImageMatches:
    """Match one image's predictions to its (non-crowd) ground-truth boxes."""
    categories = np.asarray(categories, dtype=np.int64)
    truth_categories = np.asarray(truth_categories, dtype=np.int64)
    n = categories.shape[0]
    ious = box_iou(boxes, truth_boxes)
    true_positive = np.zeros(n, dtype=bool)
    reason = np.full(n, NO_REASON, dtype=np.int64)
    box = np.full(n, -1, dtype=np.int64)
    best = np.zeros(n, dtype=np.float64)
    if truth_categories.shape[0] == 0:
        reason[:] = BACKGROUND
        return ImageMatches(true_positive, reason, box, best)

    same = categories[:, None] == truth_categories[None, :]
    same_iou = np.where(same, ious, -1.0)
    other_iou = np.where(same, -1.0, ious)
    # Only a prediction that overlaps a box of its class enough can be a true positive; the
    # greedy pass (sequential by nature) visits just those, in COCO's order (score, then given).
    contenders = np.flatnonzero(same_iou.max(axis=1) >= iou_threshold)
    if contenders.size:
        taken = np.zeros(truth_categories.shape[0], dtype=bool)
        order = contenders[np.argsort(-np.asarray(scores, dtype=np.float64)[contenders], kind="mergesort")]
        for d in order.tolist():
            row = np.where(taken, -1.0, same_iou[d])
            g = row.shape[0] - 1 - int(row[::-1].argmax())  # COCO keeps the last of equal IoUs
            if row[g] >= iou_threshold:
                taken[g] = True
                true_positive[d], box[d], best[d] = True, g, row[g]

    wrong = ~true_positive
    same_best, other_best = same_iou.argmax(axis=1), other_iou.argmax(axis=1)
    rows = np.arange(n)
    same_max, other_max = same_iou[rows, same_best], other_iou[rows, other_best]
    duplicate = wrong & (same_max >= iou_threshold)
    wrong_class = wrong & ~duplicate & (other_max >= iou_threshold)
    localisation = wrong & ~duplicate & ~wrong_class & (same_max >= LOCALISATION_IOU)
    background = wrong & ~duplicate & ~wrong_class & ~localisation
    for mask, code, related in (
        (duplicate, DUPLICATE, same_best),
        (wrong_class, WRONG_CLASS, other_best),
        (localisation, LOCALISATION, same_best),
    ):
        reason[mask], box[mask] = code, related[mask]
        best[mask] = ious[rows[mask], related[mask]]
    reason[background] = BACKGROUND
    best[background] = ious[background].max(axis=1)
    return ImageMatches(true_positive, reason, box, best)


def image_error(true_positive: np.ndarray, scores: np.ndarray, num_truth: int, score_threshold: float = 0.5) -> float:
    """1 - F1 of one image at ``score_threshold``; 0 when it has no box and no prediction above it."""
    kept = np.asarray(scores) >= score_threshold
    tp = int((true_positive & kept).sum())
    fp = int((~true_positive & kept).sum())
    fn = num_truth - tp
    denominator = 2 * tp + fp + fn
    return 0.0 if denominator == 0 else 1.0 - 2 * tp / denominator


def threshold_curve(scores: np.ndarray, true_positive: np.ndarray, num_truth: int, steps: int = 101) -> dict:
    """Precision, recall, F1 and TP / FP / FN counts of the predictions scoring at least each threshold.

    Thresholds run from 0 to 1 in ``steps``; precision with no prediction kept, and recall with
    no ground truth, are undefined (None).
    """
    thresholds = np.linspace(0.0, 1.0, steps)
    scores = np.asarray(scores, dtype=np.float64)
    true_positive = np.asarray(true_positive, dtype=bool)
    tp_scores = np.sort(scores[true_positive])
    fp_scores = np.sort(scores[~true_positive])
    tp = tp_scores.size - np.searchsorted(tp_scores, thresholds, side="left")
    fp = fp_scores.size - np.searchsorted(fp_scores, thresholds, side="left")
    fn = num_truth - tp
    kept = tp + fp
    precision = [float(t / k) if k else None for t, k in zip(tp.tolist(), kept.tolist())]
    recall = [float(t / num_truth) if num_truth else None for t in tp.tolist()]
    f1 = [
        float(2 * t / (2 * t + f + m)) if (2 * t + f + m) else None
        for t, f, m in zip(tp.tolist(), fp.tolist(), fn.tolist())
    ]
    return {
        "score": [round(float(t), 6) for t in thresholds],
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "tp": tp.tolist(),
        "fp": fp.tolist(),
        "fn": fn.tolist(),
    }
