"""Classification metrics accumulated as a confusion matrix on the model's device.

Everything (accuracy, macro F1, per-class F1) follows from the K x K confusion
matrix, so an update is one ``bincount`` plus one ``topk``; nothing is copied to
the host until ``compute()``. In a distributed run ``compute()`` and
``confusion_matrix()`` sum the counts of every process, so each process gets
the same values, those of the whole validation set.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from engine.metrics import class_names_for
from engine.metrics.distributed import sum_across_ranks


class ClassificationMetrics:
    """Accuracy, top-k accuracy (k = min(5, K)), macro F1 and per-class F1.

    Macro F1 matches scikit-learn's ``f1_score(average="macro", zero_division=0)``:
    it averages over the classes that occur in the targets or the predictions.
    """

    def __init__(self, num_classes: int, class_names: Sequence[str] | None = None) -> None:
        names = class_names_for(num_classes, class_names)
        self.num_classes = num_classes
        self.class_names = names
        self.top_k = min(5, num_classes)
        self.reset()

    def reset(self) -> None:
        # State tensors are created on the first update, on that batch's device.
        self._confmat: Tensor | None = None
        self._topk_correct: Tensor | None = None
        self._global: Tensor | None = None  # counts of every process, summed once per state

    @torch.no_grad()
    def update(self, logits: Tensor, labels: Tensor) -> None:
        """Add a batch: ``logits`` (B, K) scores, ``labels`` (B,) class indices.

        Labels outside [0, K) (e.g. an ignore value such as -100) are skipped.
        """
        if logits.ndim != 2 or logits.shape[1] != self.num_classes:
            raise ValueError(f"logits must be (B, {self.num_classes}), got {tuple(logits.shape)}")
        labels = labels.detach().to(logits.device).long().reshape(-1)
        if labels.shape[0] != logits.shape[0]:
            raise ValueError(f"{logits.shape[0]} logits rows but {labels.shape[0]} labels")
        k = self.num_classes
        valid = (labels >= 0) & (labels < k)
        logits, labels = logits.detach()[valid], labels[valid]

        if self._confmat is None:
            self._confmat = torch.zeros(k * k, dtype=torch.long, device=logits.device)
            self._topk_correct = torch.zeros((), dtype=torch.long, device=logits.device)
        self._global = None
        if labels.numel() == 0:
            return
        preds = logits.argmax(dim=1)
        self._confmat += torch.bincount(labels * k + preds, minlength=k * k)
        top = logits.topk(self.top_k, dim=1).indices
        self._topk_correct += (top == labels[:, None]).any(dim=1).sum()

    def _counts(self) -> Tensor:
        """Confusion matrix counts then the top-k hits, summed over every process.

        A process that saw no batch still takes part, with zeros.
        """
        if self._global is None:
            k = self.num_classes
            if self._confmat is None:
                local = torch.zeros(k * k + 1, dtype=torch.long)
            else:
                local = torch.cat([self._confmat, self._topk_correct.reshape(1)])
            self._global = sum_across_ranks(local)
        return self._global

    def confusion_matrix(self) -> np.ndarray:
        """(K, K) int64 counts; rows are true classes, columns predicted classes."""
        k = self.num_classes
        return self._counts()[: k * k].reshape(k, k).cpu().numpy()

    def compute(self) -> dict:
        counts = self._counts()
        cm = self.confusion_matrix().astype(np.float64)
        total = cm.sum()
        tp = np.diag(cm)
        # F1 = 2TP / (2TP + FP + FN) = 2TP / (#predicted + #true) per class.
        support = cm.sum(axis=0) + cm.sum(axis=1)
        f1 = np.divide(2 * tp, support, out=np.zeros_like(tp), where=support > 0)
        present = support > 0
        topk = float(counts[-1].item())
        return {
            "accuracy": float(tp.sum() / total) if total else 0.0,
            "top5": topk / total if total else 0.0,
            "f1_macro": float(f1[present].mean()) if present.any() else 0.0,
            # Classes absent from both targets and predictions report 0.0 (zero_division=0).
            "per_class_f1": {name: float(v) for name, v in zip(self.class_names, f1)},
        }
