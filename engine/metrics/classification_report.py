"""Classification figures of an evaluation report, from each image's class probabilities.

Per-class precision / recall / F1 follow scikit-learn's ``precision_recall_fscore_support``
with ``zero_division=0``; macro F1 averages over the classes found in the labels or the
predictions, as ``f1_score(average="macro")`` does without ``labels``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

TOP_K = 5


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def classification_figures(
    probabilities: np.ndarray,
    labels: np.ndarray,
    image_ids: Sequence[int],
    file_names: Sequence[str],
    class_ids: Sequence[int],
    class_names: Sequence[str],
) -> dict[str, Any]:
    """Summary, per-class rows, confusion matrix and per-image entries.

    ``probabilities``: (N, K) class probabilities in model order; ``labels``: (N,) model-order
    indices of the given labels. Classes are reported by their dataset ids.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    n, k = probabilities.shape if probabilities.ndim == 2 else (0, len(class_ids))
    if len(class_ids) != k or len(class_names) != k:
        raise ValueError(f"{k} probabilities per image but {len(class_ids)} classes")
    if labels.shape != (n,) or len(image_ids) != n or len(file_names) != n:
        raise ValueError(f"{n} images but {labels.shape[0]} labels, {len(image_ids)} ids, {len(file_names)} files")
    if n and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"labels must be class indices in [0, {k})")

    predicted = probabilities.argmax(axis=1) if n else np.zeros(0, np.int64)
    confusion = np.bincount(labels * k + predicted, minlength=k * k).reshape(k, k)
    tp = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1).astype(np.float64)
    predicted_count = confusion.sum(axis=0).astype(np.float64)
    precision, recall = _ratio(tp, predicted_count), _ratio(tp, support)
    f1 = _ratio(2 * tp, support + predicted_count)
    present = (support + predicted_count) > 0

    summary: dict[str, float | None] = {"accuracy": float(tp.sum() / n) if n else None}
    if k > TOP_K:
        top = np.argsort(-probabilities, axis=1, kind="stable")[:, :TOP_K]
        summary[f"top{TOP_K}_accuracy"] = float((top == labels[:, None]).any(axis=1).mean()) if n else None
    summary["macro_f1"] = float(f1[present].mean()) if present.any() else None

    per_class = [
        {
            "id": int(class_ids[c]),
            "name": str(class_names[c]),
            "support": int(support[c]),
            "precision": float(precision[c]),
            "recall": float(recall[c]),
            "f1": float(f1[c]),
        }
        for c in range(k)
    ]
    rows = np.arange(n)
    label_probability = probabilities[rows, labels]
    score = probabilities[rows, predicted]
    ids = np.asarray(class_ids, dtype=np.int64)
    images = [
        {
            "image_id": int(image_id),
            "file_name": str(file_name),
            "error": float(1.0 - p_label),
            "label": int(ids[label]),
            "predicted": int(ids[pred]),
            "score": float(s),
            "label_probability": float(p_label),
        }
        for image_id, file_name, label, pred, s, p_label in zip(
            image_ids, file_names, labels.tolist(), predicted.tolist(), score.tolist(), label_probability.tolist()
        )
    ]
    return {
        "summary": summary,
        "per_class": per_class,
        "confusion": {"labels": [str(name) for name in class_names], "counts": confusion.tolist()},
        "curves": None,
        "images": images,
    }
