"""Label-quality scores from out-of-fold predictions: which given labels are probably wrong.

Pure scoring (numpy and cleanlab, no torch): the caller hands predictions that no model
made on an image it trained on, with the dataset's ids beside them, and gets back one
entry per annotation (and, for detection, per suspected missing object), most suspect
first. Classification follows confident learning (cleanlab's per-class thresholds on the
out-of-fold probabilities flag the issues; self-confidence or normalised margin ranks
them); segmentation treats each annotated region as such an example, with the
probabilities averaged over its pixels; detection follows ObjectLab (cleanlab's overlooked,
swap and bad-location box scores). A score is between 0 and 1: the lower, the more likely the label is wrong.

cleanlab is an optional dependency, imported when a score is asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import numpy as np

#: the pyproject extra that installs cleanlab
CLEANLAB_EXTRA = "labels"
RANKINGS = ("self_confidence", "normalized_margin")
#: an entry's kind of suspected error
WRONG_LABEL, MISSING_BOX, SPURIOUS_BOX, WRONG_CLASS, POORLY_PLACED_BOX = (
    "wrong_label",
    "missing_box",
    "spurious_box",
    "wrong_class",
    "poorly_placed_box",
)
#: segmentation: a region of another class, and a region around background
WRONG_REGION_CLASS, SPURIOUS_REGION = "wrong_region_class", "spurious_region"
#: a region whose pixels are on average at least this likely background is flagged spurious
SPURIOUS_REGION_PROBABILITY = 0.5
#: a detection box scoring below this is flagged (cleanlab's image-level default, applied per box)
BOX_ISSUE_THRESHOLD = 0.1
#: predicted boxes this confident take part in matching given boxes (cleanlab's bad-location threshold)
CONFIDENT_BOX = 0.5
#: predictions overlapping a given box at least this much say whether anything is there
SPURIOUS_IOU = 0.1
#: a confident prediction overlapping a given box this much is that object, not a missing one
SAME_OBJECT_IOU = 0.5


def cleanlab_module(name: str = "cleanlab") -> Any:
    """Import a cleanlab module, or say which extra installs it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ImportError(
            f"finding label errors needs cleanlab: pip install 'lightbox[{CLEANLAB_EXTRA}]' "
            "(or pip install 'cleanlab>=2.9,<3')"
        ) from None


def _label(category_id: int, name: str, **extra: Any) -> dict[str, Any]:
    return {"category_id": int(category_id), "name": str(name), **extra}


def ranked(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Most suspect first (lowest score); ties in image, then annotation order, so the file is stable."""
    return sorted(
        entries, key=lambda e: (e["score"], e["image_id"], e["annotation_id"] is None, e["annotation_id"] or 0)
    )


# ---------------------------------------------------------------------- classification
def classification_suspects(
    probabilities: np.ndarray,
    labels: np.ndarray,
    *,
    image_ids: Sequence[int],
    file_names: Sequence[str],
    annotation_ids: Sequence[int | None],
    class_ids: Sequence[int],
    class_names: Sequence[str],
    ranking: str = "self_confidence",
) -> list[dict[str, Any]]:
    """One entry per image label: ``probabilities`` (N, K) out-of-fold, ``labels`` (N,) given, in model order.

    ``issue`` is confident learning's verdict (the label disagrees with a class whose
    probability clears that class's own threshold); ``score`` ranks every label by ``ranking``.
    """
    if ranking not in RANKINGS:
        raise ValueError(f"ranking must be one of {', '.join(RANKINGS)}, not {ranking!r}")
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    if probabilities.shape != (n, len(class_ids)) or not len(image_ids) == len(file_names) == len(annotation_ids) == n:
        raise ValueError(
            f"{n} labels but probabilities of shape {probabilities.shape}, {len(class_ids)} classes, "
            f"{len(image_ids)} image ids, {len(file_names)} file names, {len(annotation_ids)} annotation ids"
        )
    if n == 0:
        return []
    rank = cleanlab_module("cleanlab.rank")
    filters = cleanlab_module("cleanlab.filter")
    scores = rank.get_label_quality_scores(labels, probabilities, method=ranking)
    issues = _confident_learning_issues(filters, labels, probabilities)
    others = probabilities.copy()
    others[np.arange(n), labels] = -1.0
    suggested = np.where(probabilities.argmax(1) != labels, probabilities.argmax(1), others.argmax(1))
    entries = []
    for i in range(n):
        given, fix = int(labels[i]), int(suggested[i])
        entries.append(
            {
                "score": float(scores[i]),
                "issue": bool(issues[i]),
                "kind": WRONG_LABEL,
                "image_id": int(image_ids[i]),
                "file_name": str(file_names[i]),
                "annotation_id": None if annotation_ids[i] is None else int(annotation_ids[i]),
                "given": _label(class_ids[given], class_names[given]),
                "suggested": _label(class_ids[fix], class_names[fix], probability=float(probabilities[i, fix])),
            }
        )
    return ranked(entries)


def _confident_learning_issues(filters: Any, labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """cleanlab's flags; a class with no given label (a tiny split) leaves its thresholds undefined,
    so the flags are found over the classes that are present."""
    present = np.unique(labels)
    if len(present) < 2:
        return np.zeros(len(labels), bool)
    if len(present) == probabilities.shape[1]:
        return np.asarray(filters.find_label_issues(labels, probabilities, filter_by="prune_by_noise_rate"))
    remap = np.full(probabilities.shape[1], -1, np.int64)
    remap[present] = np.arange(len(present))
    part = probabilities[:, present]
    part = part / np.clip(part.sum(1, keepdims=True), 1e-12, None)
    return np.asarray(filters.find_label_issues(remap[labels], part, filter_by="prune_by_noise_rate"))


# ---------------------------------------------------------------------- segmentation
def segmentation_suspects(
    region_probabilities: np.ndarray,
    labels: np.ndarray,
    *,
    image_ids: Sequence[int],
    file_names: Sequence[str],
    annotation_ids: Sequence[int],
    class_ids: Sequence[int],
    class_names: Sequence[str],
    ranking: str = "self_confidence",
) -> list[dict[str, Any]]:
    """One entry per annotated region: ``region_probabilities`` (R, K+1) are the out-of-fold class
    probabilities averaged over the region's pixels, background first; ``labels`` (R,) its given class.

    A region is a labelled example whose class the model disagrees with or not, so confident
    learning flags and ranks regions as it does images; a region the model calls background is
    suspected spurious (suggested fix: remove it).
    """
    entries = classification_suspects(
        region_probabilities,
        labels,
        image_ids=image_ids,
        file_names=file_names,
        annotation_ids=list(annotation_ids),
        class_ids=class_ids,
        class_names=class_names,
        ranking=ranking,
    )
    background = int(class_ids[0])
    for entry in entries:
        if entry["suggested"]["category_id"] == background:
            # No region is labelled background, so confident learning has no threshold for it:
            # a region the model more likely calls background than anything else is flagged.
            entry["issue"] = entry["issue"] or entry["suggested"]["probability"] >= SPURIOUS_REGION_PROBABILITY
            entry["kind"], entry["suggested"] = SPURIOUS_REGION, None
        else:
            entry["kind"] = WRONG_REGION_CLASS
    return entries


# ---------------------------------------------------------------------- detection
def _xyxy(boxes: Any) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` with every box of ``b`` (both x1 y1 x2 y2)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.clip(area_a[:, None] + area_b[None, :] - inter, 1e-12, None)


def detection_suspects(
    images: Sequence[dict[str, Any]],
    *,
    class_ids: Sequence[int],
    class_names: Sequence[str],
) -> list[dict[str, Any]]:
    """Entries for every given box and every suspected missing object.

    ``images``: one dict per scored image with ``image_id``, ``file_name``, the given boxes
    (``annotation_ids``, ``boxes`` as COCO x y w h, ``labels`` in model order) and the
    out-of-fold predictions (``pred_boxes`` x y w h, ``pred_labels``, ``pred_scores``).
    """
    k = len(class_ids)
    labels, predictions = [], []
    for image in images:
        given = np.asarray(image["labels"], dtype=np.int64).reshape(-1)
        if len(given) and (given.min() < 0 or given.max() >= k):
            raise ValueError(f"image {image['image_id']}: given labels must be class indices in [0, {k})")
        labels.append({"bboxes": _xyxy(image["boxes"]), "labels": given})
        boxes = _xyxy(image["pred_boxes"])
        classes = np.asarray(image["pred_labels"], dtype=np.int64).reshape(-1)
        scores = np.asarray(image["pred_scores"], dtype=np.float64).reshape(-1)
        per_class = np.empty(k, dtype=object)  # cleanlab's format: K arrays of (M, 5), one per class
        for c in range(k):
            per_class[c] = np.concatenate([boxes[classes == c], scores[classes == c, None]], axis=1)
        predictions.append(per_class)
    if not images:
        return []
    rank = cleanlab_module("cleanlab.object_detection.rank")
    overlooked = rank.compute_overlooked_box_scores(labels=labels, predictions=predictions)
    badloc = rank.compute_badloc_box_scores(labels=labels, predictions=predictions)
    swap = rank.compute_swap_box_scores(labels=labels, predictions=predictions)
    entries: list[dict[str, Any]] = []
    for i, image in enumerate(images):
        entries += _image_entries(image, labels[i], overlooked[i], badloc[i], swap[i], class_ids, class_names)
    return ranked(entries)


def _score(value: float) -> float:
    """cleanlab leaves a box it has nothing to say about as NaN: no sign of an error."""
    return 1.0 if np.isnan(value) else float(value)


def _image_entries(
    image: dict[str, Any],
    label: dict[str, np.ndarray],
    overlooked: np.ndarray,
    badloc: np.ndarray,
    swap: np.ndarray,
    class_ids: Sequence[int],
    class_names: Sequence[str],
) -> list[dict[str, Any]]:
    given_boxes, given_labels = label["bboxes"], label["labels"]
    pred_boxes = _xyxy(image["pred_boxes"])
    pred_labels = np.asarray(image["pred_labels"], dtype=np.int64).reshape(-1)
    pred_scores = np.asarray(image["pred_scores"], dtype=np.float64).reshape(-1)
    # cleanlab scores predicted boxes class by class: the same order here.
    order = np.concatenate([np.flatnonzero(pred_labels == c) for c in range(len(class_ids))] or [np.zeros(0, int)])
    pred_boxes, pred_labels, pred_scores = pred_boxes[order], pred_labels[order], pred_scores[order]
    confident = pred_scores >= CONFIDENT_BOX
    overlap = _iou(given_boxes, pred_boxes)
    base = {"image_id": int(image["image_id"]), "file_name": str(image["file_name"])}
    entries = []
    for j, ann_id in enumerate(image["annotation_ids"]):
        given = int(given_labels[j])
        box = _coco_box(given_boxes[j])
        swap_score, badloc_score = _score(swap[j]), _score(badloc[j])
        # ObjectLab has no score for a box around nothing: the model's best belief in anything there.
        near = overlap[j] >= SPURIOUS_IOU if len(pred_scores) else np.zeros(0, bool)
        spurious_score = float(pred_scores[near].max()) if near.any() else 0.0
        iou = np.where(confident, overlap[j], 0.0)
        same = np.where(pred_labels == given, iou, 0.0)
        other = np.where(pred_labels != given, iou, 0.0)
        score = min(swap_score, badloc_score)
        if spurious_score < CONFIDENT_BOX:
            kind, suggested = SPURIOUS_BOX, None  # nothing confident there: remove the box
            score = min(score, spurious_score)
        elif swap_score <= badloc_score and other.max() >= SAME_OBJECT_IOU and other.max() > same.max():
            fix = int(pred_labels[other.argmax()])
            kind, suggested = WRONG_CLASS, _label(class_ids[fix], class_names[fix], bbox=box)
        else:
            kind = POORLY_PLACED_BOX
            best = int(same.argmax() if same.max() > 0 else iou.argmax())
            fix = int(pred_labels[best])
            suggested = _label(class_ids[fix], class_names[fix], bbox=_coco_box(pred_boxes[best]))
        entries.append(
            {
                **base,
                "score": score,
                "issue": score < BOX_ISSUE_THRESHOLD,
                "kind": kind,
                "annotation_id": int(ann_id),
                "given": _label(class_ids[given], class_names[given], bbox=box),
                "suggested": suggested,
            }
        )
    covered = overlap.max(0) >= SAME_OBJECT_IOU if len(given_boxes) else np.zeros(len(pred_boxes), bool)
    for m in np.flatnonzero(~np.isnan(overlooked) & ~covered):
        fix = int(pred_labels[m])
        score = float(overlooked[m])
        entries.append(
            {
                **base,
                "score": score,
                "issue": score < BOX_ISSUE_THRESHOLD,
                "kind": MISSING_BOX,
                "annotation_id": None,
                "given": None,
                "suggested": _label(
                    class_ids[fix], class_names[fix], bbox=_coco_box(pred_boxes[m]), probability=float(pred_scores[m])
                ),
            }
        )
    return entries


def _coco_box(xyxy: np.ndarray) -> list[float]:
    x0, y0, x1, y1 = (float(v) for v in xyxy)
    return [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)]


__all__ = [
    "CLEANLAB_EXTRA",
    "MISSING_BOX",
    "POORLY_PLACED_BOX",
    "RANKINGS",
    "SPURIOUS_BOX",
    "SPURIOUS_REGION",
    "WRONG_CLASS",
    "WRONG_LABEL",
    "WRONG_REGION_CLASS",
    "classification_suspects",
    "cleanlab_module",
    "detection_suspects",
    "ranked",
    "segmentation_suspects",
]
