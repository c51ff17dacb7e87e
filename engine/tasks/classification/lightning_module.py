"""Image classification with any HuggingFace image-classification model."""

from __future__ import annotations

from typing import Any

import torch

from engine.metrics.classification import ClassificationMetrics
from engine.models.loading import load_model
from engine.tasks.common.base_module import BaseVisionModule


class ClassificationModule(BaseVisionModule):
    task = "classification"
    monitor, monitor_mode = "val/accuracy", "max"

    def __init__(
        self,
        model_ckpt: str = "resnet-50",
        num_labels: int = 1000,
        id2label: dict[int, str] | None = None,
        pretrained: bool = True,
        label_smoothing: float = 0.0,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.model_ckpt, self.num_labels = model_ckpt, num_labels
        self.label_smoothing = float(label_smoothing)
        self.id2label = id2label or {i: str(i) for i in range(num_labels)}
        self.model = load_model(
            model_ckpt, "classification", num_labels=num_labels, id2label=self.id2label, pretrained=pretrained
        ).train()
        self.metrics = ClassificationMetrics(num_labels, [self.id2label[i] for i in range(num_labels)])
        self.last_confusion_matrix = None

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values).logits

    def check_data(self, datamodule: Any) -> None:
        found = getattr(datamodule, "num_labels", None)
        if found is not None and found != self.num_labels:
            raise ValueError(
                f"num_labels={self.num_labels} but the dataset has {found} categories "
                f"({', '.join(datamodule.id2label.values())}); pass num_labels={found}"
            )

    def compute_loss(self, batch: dict[str, Any]):
        logits = self.model(pixel_values=batch["pixel_values"]).logits
        # Smoothing regularises training only; validation loss stays comparable across runs.
        smoothing = self.label_smoothing if self.training else 0.0
        loss = torch.nn.functional.cross_entropy(logits.float(), batch["labels"], label_smoothing=smoothing)
        return loss, logits

    def update_metrics(self, batch: dict[str, Any], logits: torch.Tensor) -> None:
        self.metrics.update(logits.detach().float(), batch["labels"])

    def on_validation_epoch_start(self) -> None:
        self.metrics.reset()

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()  # the losses
        values = self.metrics.compute()
        # Top-5 of 5 or fewer classes is always 1.0: it says nothing, so it is not logged.
        keys = ("accuracy", "top5", "f1_macro") if self.metrics.num_classes > 5 else ("accuracy", "f1_macro")
        for key in keys:
            self.log_validation_metric(f"val/{key}", values[key], prog_bar=key == "accuracy")
        self.last_confusion_matrix = self.metrics.confusion_matrix()

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        probs = self(batch["pixel_values"]).float().softmax(-1)
        scores, labels = probs.max(-1)
        return [
            {"image_id": int(i), "label": int(label), "label_name": self.id2label[int(label)], "score": float(s)}
            for i, label, s in zip(batch["image_ids"].tolist(), labels.tolist(), scores.tolist())
        ]
