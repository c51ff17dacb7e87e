"""Semantic segmentation metrics from a confusion matrix accumulated on device.

In a distributed run the matrix of every process is summed before any metric
is taken, so each process gets the values of the whole validation set.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.metrics import class_names_for
from engine.metrics.distributed import sum_across_ranks


def upsample_logits(logits: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize (B, K, h, w) logits to (B, K, H, W) so metrics are taken at label resolution."""
    return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)


class SegmentationMetrics:
    """Mean IoU, pixel accuracy and per-class IoU.

    mIoU averages over the classes that occur in the target or the prediction,
    so classes absent from the evaluated data do not drag it down (and it is
    never NaN). Pixels whose target is ``ignore_index`` are skipped.
    """

    def __init__(
        self, num_classes: int, ignore_index: int | None = 255, class_names: Sequence[str] | None = None
    ) -> None:
        names = class_names_for(num_classes, class_names)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_names = names
        self.reset()

    def reset(self) -> None:
        self._confmat: Tensor | None = None  # created on the first update's device
        self._global: Tensor | None = None  # every process's matrix summed, once per state

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor) -> None:
        """Add a batch: ``pred`` is (B, H, W) class indices in [0, K) or (B, K, h, w) logits."""
        if pred.ndim == 4:
            if pred.shape[1] != self.num_classes:
                raise ValueError(f"logits have {pred.shape[1]} channels, expected {self.num_classes}")
            if pred.shape[-2:] != target.shape[-2:]:
                pred = upsample_logits(pred.float(), target.shape[-2:])
            pred = pred.argmax(dim=1)
        if pred.shape != target.shape:
            raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ")

        k = self.num_classes
        pred = pred.detach().long()
        target = target.detach().to(pred.device).long()
        valid = (target >= 0) & (target < k)
        if self.ignore_index is not None:
            valid &= target != self.ignore_index
        counts = torch.bincount(target[valid] * k + pred[valid], minlength=k * k)
        if self._confmat is None:
            self._confmat = torch.zeros(k * k, dtype=torch.long, device=pred.device)
        self._confmat += counts
        self._global = None

    def confusion_matrix(self) -> Tensor:
        """(K, K) counts of every process, on the accumulation device; rows true, columns predicted.

        A process that saw no batch still takes part, with zeros.
        """
        k = self.num_classes
        if self._global is None:
            local = torch.zeros(k * k, dtype=torch.long) if self._confmat is None else self._confmat
            self._global = sum_across_ranks(local)
        return self._global.reshape(k, k)

    def compute(self) -> dict:
        cm = self.confusion_matrix().double().cpu()
        tp = cm.diag()
        true_count, pred_count = cm.sum(dim=1), cm.sum(dim=0)
        union = true_count + pred_count - tp
        iou = torch.where(union > 0, tp / union.clamp(min=1), torch.zeros_like(tp))
        present = (true_count + pred_count) > 0
        total = cm.sum()
        return {
            "miou": float(iou[present].mean()) if present.any() else 0.0,
            "pixel_accuracy": float(tp.sum() / total) if total > 0 else 0.0,
            # Classes absent from target and prediction report 0.0, as torchmetrics does.
            "per_class_iou": {name: float(v) for name, v in zip(self.class_names, iou)},
        }
