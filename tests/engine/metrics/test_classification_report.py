"""Classification report figures against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest

from engine.metrics.classification_report import classification_figures


def _random(seed: int, n: int = 500, k: int = 8):
    """Probabilities biased to the label; class k-1 is never predicted, class k-2 never a label."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k - 2, n)
    labels[::9] = k - 1
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), labels] += 1.5
    logits[:, k - 1] -= 100
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    return probs / probs.sum(axis=1, keepdims=True), labels


def test_every_figure_equals_sklearn():
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
        top_k_accuracy_score,
    )

    probs, labels = _random(1)
    k = probs.shape[1]
    ids = [3 * c + 1 for c in range(k)]
    names = [f"class {c}" for c in range(k)]
    figures = classification_figures(
        probs, labels, list(range(100, 100 + len(labels))), ["x.jpg"] * len(labels), ids, names
    )
    predicted = probs.argmax(axis=1)
    assert figures["summary"]["accuracy"] == pytest.approx(accuracy_score(labels, predicted), abs=1e-12)
    assert figures["summary"]["top5_accuracy"] == pytest.approx(
        top_k_accuracy_score(labels, probs, k=5, labels=list(range(k))), abs=1e-12
    )
    assert figures["summary"]["macro_f1"] == pytest.approx(
        f1_score(labels, predicted, average="macro", zero_division=0), abs=1e-12
    )
    p, r, f, s = precision_recall_fscore_support(labels, predicted, labels=list(range(k)), zero_division=0)
    for c, row in enumerate(figures["per_class"]):
        assert (row["id"], row["name"], row["support"]) == (ids[c], names[c], s[c])
        assert row["precision"] == pytest.approx(p[c], abs=1e-12)
        assert row["recall"] == pytest.approx(r[c], abs=1e-12)
        assert row["f1"] == pytest.approx(f[c], abs=1e-12)
    assert figures["confusion"]["counts"] == confusion_matrix(labels, predicted, labels=list(range(k))).tolist()
    assert figures["confusion"]["labels"] == names


def test_each_image_has_its_prediction_score_label_probability_and_error():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    figures = classification_figures(probs, np.array([0, 1]), [5, 6], ["a.jpg", "b.jpg"], [10, 20, 30], "abc")
    first, second = figures["images"]
    assert first == {
        "image_id": 5,
        "file_name": "a.jpg",
        "error": pytest.approx(0.3),
        "label": 10,
        "predicted": 10,
        "score": 0.7,
        "label_probability": 0.7,
    }
    assert (second["label"], second["predicted"], second["score"]) == (20, 30, 0.6)
    assert second["label_probability"] == 0.3 and second["error"] == pytest.approx(0.7)
    # Five classes or fewer: top-5 says nothing and is left out.
    assert set(figures["summary"]) == {"accuracy", "macro_f1"}


def test_labels_outside_the_classes_are_refused():
    with pytest.raises(ValueError, match="class indices"):
        classification_figures(np.full((1, 2), 0.5), np.array([2]), [1], ["a.jpg"], [1, 2], "ab")
