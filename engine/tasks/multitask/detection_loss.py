"""DETR's set loss for the detection head: Hungarian matching, then CE + L1 + GIoU."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn
from torchvision.ops import box_convert, generalized_box_iou

__all__ = ["CLASS_COST", "GIOU_COST", "L1_COST", "HungarianLoss"]

# DETR's matching costs and loss weights (class, L1, GIoU).
CLASS_COST, L1_COST, GIOU_COST = 1.0, 5.0, 2.0


def _xyxy(boxes: Tensor) -> Tensor:
    return box_convert(boxes, "cxcywh", "xyxy")


class HungarianLoss(nn.Module):
    """DETR's set loss: match queries to objects, then CE + 5 L1 + 2 GIoU (per object)."""

    def __init__(self, num_labels: int, no_object_weight: float = 0.1):
        super().__init__()
        weight = torch.ones(num_labels + 1)
        weight[-1] = no_object_weight  # most queries are "no object"; keep them from dominating
        self.register_buffer("class_weight", weight, persistent=False)
        self.num_labels = num_labels

    @torch.no_grad()
    def match(self, logits: Tensor, boxes: Tensor, targets: list[dict[str, Tensor]]) -> list[tuple[Tensor, Tensor]]:
        """Per image, (query indices, target indices) of the cheapest one-to-one assignment."""
        b, q = logits.shape[:2]
        sizes = [len(t["boxes"]) for t in targets]
        empty = torch.zeros(0, dtype=torch.long)
        if sum(sizes) == 0:
            return [(empty, empty)] * b
        prob = logits.flatten(0, 1).softmax(-1)
        pred = boxes.flatten(0, 1)
        labels = torch.cat([t["class_labels"] for t in targets])
        gt = torch.cat([t["boxes"] for t in targets]).to(pred.dtype)
        cost = (
            L1_COST * torch.cdist(pred, gt, p=1)
            - CLASS_COST * prob[:, labels]
            - GIOU_COST * generalized_box_iou(_xyxy(pred), _xyxy(gt))
        )
        cost = torch.nan_to_num(cost, nan=1e8, posinf=1e8, neginf=-1e8).view(b, q, -1).cpu()
        out = []
        for k, part in enumerate(cost.split(sizes, dim=-1)):
            rows, cols = linear_sum_assignment(part[k].numpy())
            out.append((torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(cols, dtype=torch.long)))
        return out

    def forward(self, logits: Tensor, boxes: Tensor, targets: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        logits, boxes = logits.float(), boxes.float()
        indices = self.match(logits, boxes, targets)
        device = logits.device
        batch_idx = torch.cat([torch.full_like(src, k) for k, (src, _) in enumerate(indices)]).to(device)
        query_idx = torch.cat([src for src, _ in indices]).to(device)
        matched_labels = torch.cat(
            [t["class_labels"][dst.to(t["class_labels"].device)] for t, (_, dst) in zip(targets, indices)]
        ).to(device)
        matched_boxes = torch.cat([t["boxes"][dst.to(t["boxes"].device)] for t, (_, dst) in zip(targets, indices)]).to(
            device, torch.float32
        )

        classes = torch.full(logits.shape[:2], self.num_labels, dtype=torch.long, device=device)
        classes[batch_idx, query_idx] = matched_labels
        loss_ce = F.cross_entropy(logits.transpose(1, 2), classes, weight=self.class_weight)
        num_boxes = max(len(matched_labels), 1)
        pred = boxes[batch_idx, query_idx]
        loss_l1 = F.l1_loss(pred, matched_boxes, reduction="sum") / num_boxes
        loss_giou = (1 - torch.diag(generalized_box_iou(_xyxy(pred), _xyxy(matched_boxes)))).sum() / num_boxes
        loss = CLASS_COST * loss_ce + L1_COST * loss_l1 + GIOU_COST * loss_giou
        return {"loss": loss, "loss_ce": loss_ce, "loss_l1": loss_l1, "loss_giou": loss_giou}
