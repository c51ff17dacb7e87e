"""Object detection with DETR (``AutoModelForObjectDetection``).

Validation post-processes DETR's queries into COCO-format detections in the
original image's pixels and with the original category ids, and scores them
with COCO mAP against the validation file itself.
"""

from __future__ import annotations

from typing import Any

import torch

from engine.metrics.detection import DetectionEvaluator
from engine.models.loading import load_model
from engine.tasks.common.base_module import BaseVisionModule
from engine.tasks.detection.image_losses import image_wise_loss


def detections_from_outputs(
    logits: torch.Tensor,
    pred_boxes: torch.Tensor,
    targets: list[dict[str, Any]],
    category_ids: list[int],
    *,
    canvas: tuple[int, int],
    top_k: int = 100,
    min_score: float = 0.0,
) -> list[dict[str, Any]]:
    """DETR outputs -> COCO results (image_id, category_id, bbox xywh in original pixels, score).

    ``pred_boxes`` are normalised cx, cy, w, h on the batch canvas (H, W); each
    target's ``content_box`` says where the original image sits on it. Softmax models
    (DETR) give each query its best class; sigmoid models (Conditional DETR, RT-DETR),
    whose classes are independent, keep the ``top_k`` best (query, class) pairs, so one box
    may carry two classes, as those families' own post-processing does.
    """
    sigmoid = logits.shape[-1] == len(category_ids)  # no "no object" class
    if sigmoid:
        probs = logits.float().sigmoid()
        num_classes = probs.shape[-1]
        scores, pairs = probs.flatten(1).topk(min(top_k, probs.shape[1] * num_classes), dim=1)
        queries, labels = pairs // num_classes, pairs % num_classes
    else:
        probs = logits.float().softmax(-1)[..., :-1]  # the last class is "no object"
        best, best_labels = probs.max(-1)
        scores, queries = best.sort(dim=1, descending=True)
        scores, queries = scores[:, :top_k], queries[:, :top_k]
        labels = best_labels.gather(1, queries)
    height, width = canvas
    boxes = pred_boxes.float().gather(1, queries.unsqueeze(-1).expand(-1, -1, 4))
    cx, cy, bw, bh = boxes.unbind(-1)
    x0, y0 = (cx - bw / 2) * width, (cy - bh / 2) * height
    x1, y1 = (cx + bw / 2) * width, (cy + bh / 2) * height
    results = []
    for b, target in enumerate(targets):
        ox, oy, ow, oh = target["content_box"].float().tolist()
        orig_h, orig_w = target["orig_size"].tolist()
        sx, sy = ow / orig_w, oh / orig_h
        bx0 = ((x0[b] - ox) / sx).clamp(0, orig_w)
        by0 = ((y0[b] - oy) / sy).clamp(0, orig_h)
        bx1 = ((x1[b] - ox) / sx).clamp(0, orig_w)
        by1 = ((y1[b] - oy) / sy).clamp(0, orig_h)
        image_id = int(target["image_id"])
        for k in range(scores.shape[1]):
            score = float(scores[b, k])
            if score < min_score:
                continue
            results.append(
                {
                    "image_id": image_id,
                    "category_id": int(category_ids[int(labels[b, k])]),
                    "bbox": [float(bx0[k]), float(by0[k]), float(bx1[k] - bx0[k]), float(by1[k] - by0[k])],
                    "score": score,
                }
            )
    return results


class DetectionModule(BaseVisionModule):
    task = "detection"
    monitor, monitor_mode = "val/map", "max"

    def __init__(
        self,
        model_ckpt: str = "detr-resnet-50",
        num_labels: int = 91,
        id2label: dict[int, str] | None = None,
        pretrained: bool = True,
        category_ids: list[int] | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.model_ckpt, self.num_labels = model_ckpt, num_labels
        self.id2label = id2label or {i: str(i) for i in range(num_labels)}
        # Contiguous label -> original COCO category id (identity until data says otherwise).
        self.category_ids = list(category_ids) if category_ids else list(range(num_labels))
        self.model = load_model(
            model_ckpt, "detection", num_labels=num_labels, id2label=self.id2label, pretrained=pretrained
        ).train()
        self.evaluator: DetectionEvaluator | None = None

    def forward(self, pixel_values: torch.Tensor, pixel_mask: torch.Tensor | None = None):
        return self.model(pixel_values=pixel_values, pixel_mask=pixel_mask)

    def check_data(self, datamodule: Any) -> None:
        found = getattr(datamodule, "num_labels", None)
        if found is not None and found != self.num_labels:
            raise ValueError(
                f"num_labels={self.num_labels} but the dataset has {found} categories; pass num_labels={found}"
            )
        dataset = getattr(datamodule, "train_dataset", None)
        if dataset is not None:
            self.category_ids = dataset.index.category_ids.tolist()

    def compute_loss(self, batch: dict[str, Any]):
        labels = [{"class_labels": t["class_labels"], "boxes": t["boxes"]} for t in batch["labels"]]
        if self.training:
            out = self.model(pixel_values=batch["pixel_values"], pixel_mask=batch.get("pixel_mask"), labels=labels)
            return out.loss, out
        # Validation: each image's loss, so val/loss does not depend on how images are batched.
        with image_wise_loss(self.model) as split:
            out = self.model(pixel_values=batch["pixel_values"], pixel_mask=batch.get("pixel_mask"), labels=labels)
        out.image_losses = split.image_losses
        return out.loss, out

    def image_losses(self, loss: torch.Tensor, outputs: Any) -> torch.Tensor:
        found = getattr(outputs, "image_losses", None)
        return found if found is not None else loss

    def on_validation_epoch_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        dataset = getattr(datamodule, "val_dataset", None)
        self.evaluator = DetectionEvaluator(dataset.index.to_coco_dict()) if dataset is not None else None

    def update_metrics(self, batch: dict[str, Any], outputs: Any) -> None:
        if self.evaluator is None:
            return
        canvas = tuple(batch["pixel_values"].shape[-2:])
        self.evaluator.add(
            detections_from_outputs(
                outputs.logits, outputs.pred_boxes, batch["labels"], self.category_ids, canvas=canvas
            ),
            image_ids=[int(t["image_id"]) for t in batch["labels"]],
        )

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()  # the losses
        if self.evaluator is None or self.trainer.sanity_checking:
            return
        values = self.evaluator.compute()
        for key in ("map", "map_50", "map_75"):
            self.log_validation_metric(f"val/{key}", values[key], prog_bar=key == "map")
        self.last_coco_metrics = values

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        out = self(batch["pixel_values"], batch.get("pixel_mask"))
        return detections_from_outputs(
            out.logits,
            out.pred_boxes,
            batch["labels"],
            self.category_ids,
            canvas=tuple(batch["pixel_values"].shape[-2:]),
            min_score=0.05,
        )
