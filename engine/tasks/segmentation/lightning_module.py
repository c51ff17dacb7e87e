"""Semantic segmentation with ``AutoModelForSemanticSegmentation`` (e.g. SegFormer).

SegFormer predicts at 1/4 resolution; for metrics the logits are upsampled to
the label size, so mIoU does not depend on how the loss treats resolution.
"""

from __future__ import annotations

from typing import Any

import torch

from engine.data.masks import IGNORE_INDEX
from engine.metrics.segmentation import SegmentationMetrics, upsample_logits
from engine.models.loading import load_model
from engine.tasks.common.base_module import BaseVisionModule


class SegmentationModule(BaseVisionModule):
    task = "segmentation"
    monitor, monitor_mode = "val/miou", "max"

    def __init__(
        self,
        model_ckpt: str = "segformer-b0",
        num_labels: int = 151,
        id2label: dict[int, str] | None = None,
        pretrained: bool = True,
        ignore_index: int = IGNORE_INDEX,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.model_ckpt, self.num_labels, self.ignore_index = model_ckpt, num_labels, ignore_index
        self.id2label = id2label or {i: str(i) for i in range(num_labels)}
        self.model = load_model(
            model_ckpt, "segmentation", num_labels=num_labels, id2label=self.id2label, pretrained=pretrained
        ).train()
        if hasattr(self.model.config, "semantic_loss_ignore_index"):
            self.model.config.semantic_loss_ignore_index = ignore_index
        self.metrics = SegmentationMetrics(
            num_labels, ignore_index=ignore_index, class_names=[self.id2label[i] for i in range(num_labels)]
        )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Logits at the input's resolution."""
        logits = self.model(pixel_values=pixel_values).logits
        return upsample_logits(logits, tuple(pixel_values.shape[-2:]))

    def check_data(self, datamodule: Any) -> None:
        found = getattr(datamodule, "num_labels", None)
        if found is not None and found != self.num_labels:
            raise ValueError(
                f"num_labels={self.num_labels} but the dataset has {found} classes "
                f"(background + {found - 1} categories); pass num_labels={found}"
            )

    def compute_loss(self, batch: dict[str, Any]):
        out = self.model(pixel_values=batch["pixel_values"], labels=batch["labels"])
        return out.loss, out.logits

    def on_validation_epoch_start(self) -> None:
        self.metrics.reset()

    def update_metrics(self, batch: dict[str, Any], logits: torch.Tensor) -> None:
        labels = batch["labels"]
        pred = upsample_logits(logits.detach().float(), tuple(labels.shape[-2:])).argmax(1)
        self.metrics.update(pred, labels)

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()  # the losses
        values = self.metrics.compute()
        self.log_validation_metric("val/miou", values["miou"], prog_bar=True)
        self.log_validation_metric("val/pixel_accuracy", values["pixel_accuracy"])
        self.last_per_class_iou = values["per_class_iou"]

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        """Class maps at each image's original size (values are contiguous class indices)."""
        logits = self(batch["pixel_values"]).float()
        results = []
        for k, image_id in enumerate(batch["image_ids"].tolist()):
            one = logits[k : k + 1]
            if "content_boxes" in batch:
                x, y, w, h = (int(round(v)) for v in batch["content_boxes"][k].tolist())
                one = upsample_logits(
                    one[..., y : y + max(h, 1), x : x + max(w, 1)], tuple(batch["orig_sizes"][k].tolist())
                )
            mask = one.argmax(1)[0].to(torch.uint8).cpu().numpy()
            results.append({"image_id": int(image_id), "mask": mask})
        return results
