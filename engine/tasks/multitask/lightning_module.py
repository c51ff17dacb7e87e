"""MultiTaskModule: one shared backbone and a head per task, trained on ``sum(weight * loss)``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.data.masks import IGNORE_INDEX
from engine.metrics.classification import ClassificationMetrics
from engine.metrics.detection import DetectionEvaluator
from engine.metrics.segmentation import SegmentationMetrics
from engine.tasks.common.base_module import BaseVisionModule
from engine.tasks.detection.lightning_module import detections_from_outputs

from .backbone import shared_backbone
from .config import MultiTaskConfig, labels_per_task
from .detection_loss import HungarianLoss
from .heads import ClassificationHead, DetectionHead, SegmentationHead

__all__ = ["MultiTaskModule"]


class MultiTaskModule(BaseVisionModule):
    """One shared backbone and a head per task, trained on ``sum(weight * loss)``.

    ``num_labels``: a dict task -> classes (as ``num_labels_per_task`` gives
    it), or an int K of categories (segmentation then gets K + 1 with
    background), or None to size the heads from the trainer's data module in
    ``setup()``. ``pretrained`` overrides ``config.pretrained`` (evaluation
    reloads checkpoints with ``pretrained=False``).
    """

    task = "multitask"
    monitor, monitor_mode = "val/loss", "min"

    def __init__(
        self,
        config: MultiTaskConfig | Mapping[str, Any],
        num_labels: Mapping[str, int] | int | None = None,
        *,
        pretrained: bool | None = None,
        category_ids: list[int] | None = None,
        id2label: Mapping[int, str] | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if isinstance(config, Mapping):  # as stored in a checkpoint's hyper-parameters
            config = MultiTaskConfig(**config)
        if not isinstance(config, MultiTaskConfig):
            raise TypeError(f"config must be a MultiTaskConfig, got {type(config).__name__}")
        if pretrained is not None:
            config = replace(config, pretrained=pretrained)
        self.config = config
        self.tasks = list(config.tasks)
        self.loss_weights = dict(config.loss_weights)
        # Plain data only, so checkpoints load without unpickling our classes.
        self.save_hyperparameters(
            {
                "config": asdict(config),
                "num_labels": num_labels,
                "category_ids": category_ids,
                "id2label": id2label,
                **kwargs,
            }
        )
        self.backbone, self.backbone_channels, self.backbone_checkpoint = shared_backbone(config)
        # transformers hands models over in eval mode, and Lightning keeps submodules' modes.
        self.backbone.train()
        self.heads = nn.ModuleDict()
        self.num_labels: dict[str, int] | None = None
        self.category_ids = list(category_ids) if category_ids else None
        self.id2label = {int(k): str(v) for k, v in id2label.items()} if id2label else None
        self.evaluator: DetectionEvaluator | None = None
        self._task_losses: dict[str, Tensor] = {}
        if num_labels is not None:
            self._build_heads(self._resolve(num_labels))

    # ---------------------------------------------------------------- heads
    def _resolve(self, num_labels: Mapping[str, int] | int) -> dict[str, int]:
        if isinstance(num_labels, int) and not isinstance(num_labels, bool):
            num_labels = labels_per_task(num_labels, self.tasks)
        if not isinstance(num_labels, Mapping):
            raise ValueError(f"num_labels must be a dict task -> classes or an int, got {num_labels!r}")
        missing = [t for t in self.tasks if t not in num_labels]
        if missing:
            raise ValueError(f"num_labels has no entry for {', '.join(missing)}")
        out = {t: num_labels[t] for t in self.tasks}
        for task, n in out.items():
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"num_labels[{task!r}] must be a positive integer, got {n!r}")
        return out

    def _build_heads(self, num_labels: dict[str, int]) -> None:
        c, cfg = self.backbone_channels, self.config
        for task in self.tasks:
            n = num_labels[task]
            if task == "classification":
                self.heads[task] = ClassificationHead(c, n, cfg.dropout)
            elif task == "segmentation":
                self.heads[task] = SegmentationHead(c, n, cfg.decoder_dim)
            else:
                self.heads[task] = DetectionHead(
                    c, n, cfg.hidden_dim, cfg.num_queries, cfg.num_layers, cfg.num_heads, cfg.dropout
                )
                self.detection_loss = HungarianLoss(n, cfg.no_object_weight)
        # Heads built in setup() join a backbone that may already sit on the accelerator.
        self.to(next(self.backbone.parameters()).device)
        self.num_labels = num_labels
        self.hparams["num_labels"] = num_labels  # so load_from_checkpoint rebuilds the same heads
        if self.category_ids is None and "detection" in num_labels:
            self.category_ids = list(range(num_labels["detection"]))

    def _names(self, task: str) -> list[str]:
        k = self.num_labels[task] - (task == "segmentation")
        names = [self.id2label.get(i, str(i)) for i in range(k)] if self.id2label else [str(i) for i in range(k)]
        return ["background", *names] if task == "segmentation" else names

    def check_data(self, datamodule: Any) -> None:
        found = getattr(datamodule, "num_labels_per_task", None)
        if found is None:
            if self.num_labels is None:
                raise ValueError("MultiTaskModule needs a MultiTaskDataModule (or num_labels=...) to size its heads")
            return
        missing = [t for t in self.tasks if t not in found]
        if missing:
            raise ValueError(
                f"the data module gives labels for {', '.join(found)} but the model also needs "
                f"{', '.join(missing)}; create it with tasks={self.tasks}"
            )
        if self.num_labels is None:
            self._build_heads(self._resolve(dict(found)))
        else:
            wrong = {t: (self.num_labels[t], found[t]) for t in self.tasks if self.num_labels[t] != found[t]}
            if wrong:
                detail = "; ".join(f"{t}: model {m}, data {d}" for t, (m, d) in wrong.items())
                raise ValueError(
                    f"num_labels disagree with the dataset ({detail}); pass "
                    f"num_labels={ {t: found[t] for t in self.tasks} }"
                )
        dataset = getattr(datamodule, "train_dataset", None)
        if dataset is not None:
            self.category_ids = dataset.index.category_ids.tolist()
            self.hparams["category_ids"] = self.category_ids
            self.hparams["id2label"] = self.id2label = dict(dataset.id2label)

    def setup(self, stage: str) -> None:
        super().setup(stage)  # runs check_data, which may build the heads
        if self.num_labels is None:
            raise ValueError("MultiTaskModule has no heads yet: pass num_labels=... or fit with a MultiTaskDataModule")

    # ---------------------------------------------------------------- forward and loss
    def forward(self, pixel_values: Tensor, pixel_mask: Tensor | None = None) -> dict[str, Any]:
        """Each task's raw outputs; the backbone runs once for all of them."""
        if self.num_labels is None:
            raise RuntimeError("the heads are not built yet: pass num_labels=... or call trainer.fit first")
        features = self.backbone(pixel_values)
        out: dict[str, Any] = {}
        for task in self.tasks:
            head = self.heads[task]
            if task == "classification":
                out[task] = head(features)
            elif task == "segmentation":
                out[task] = head(features, tuple(pixel_values.shape[-2:]))
            else:
                out[task] = head(features, pixel_mask)
        return out

    def task_losses(self, outputs: dict[str, Any], labels: dict[str, Any]) -> dict[str, Tensor]:
        losses = {}
        for task in self.tasks:
            if task == "classification":
                losses[task] = F.cross_entropy(outputs[task].float(), labels[task])
            elif task == "segmentation":
                target = labels[task]
                # Summed and divided by the labelled pixels: a batch of only crowd/padding gives 0, not NaN.
                total = F.cross_entropy(outputs[task].float(), target, ignore_index=IGNORE_INDEX, reduction="sum")
                losses[task] = total / (target != IGNORE_INDEX).sum().clamp(min=1)
            else:
                det = outputs[task]
                losses[task] = self.detection_loss(det["logits"], det["pred_boxes"], labels[task])["loss"]
        return losses

    def compute_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        outputs = self(batch["pixel_values"], batch.get("pixel_mask"))
        losses = self.task_losses(outputs, batch["labels"])
        # Weight-0 tasks stay out of the sum: no gradient, and a NaN there cannot spread.
        total = sum(self.loss_weights[t] * loss for t, loss in losses.items() if self.loss_weights[t] > 0)
        self._task_losses = {t: loss.detach() for t, loss in losses.items()}
        outputs["losses"] = self._task_losses
        return total, outputs

    # ---------------------------------------------------------------- steps and metrics
    def training_step(self, batch: dict[str, Any], batch_idx: int):
        loss = super().training_step(batch, batch_idx)
        if loss is not None:
            for task, value in self._task_losses.items():
                self.log(f"train/loss_{task}", value, batch_size=self._batch_size(batch))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        super().validation_step(batch, batch_idx)
        for task, value in self._task_losses.items():
            self.add_validation_loss(f"val/loss_{task}", value, self._batch_size(batch))

    def on_validation_epoch_start(self) -> None:
        if "classification" in self.tasks:
            self.cls_metrics = ClassificationMetrics(self.num_labels["classification"], self._names("classification"))
        if "segmentation" in self.tasks:
            self.seg_metrics = SegmentationMetrics(
                self.num_labels["segmentation"], ignore_index=IGNORE_INDEX, class_names=self._names("segmentation")
            )
        self.evaluator = None
        if "detection" in self.tasks and self._trainer is not None:
            dataset = getattr(getattr(self.trainer, "datamodule", None), "val_dataset", None)
            if dataset is not None:
                self.evaluator = DetectionEvaluator(dataset.index.to_coco_dict())

    def update_metrics(self, batch: dict[str, Any], outputs: dict[str, Any]) -> None:
        labels = batch["labels"]
        if "classification" in self.tasks:
            self.cls_metrics.update(outputs["classification"].detach().float(), labels["classification"])
        if "segmentation" in self.tasks:
            self.seg_metrics.update(outputs["segmentation"].detach().argmax(1), labels["segmentation"])
        if self.evaluator is not None:
            det = outputs["detection"]
            self.evaluator.add(
                detections_from_outputs(
                    det["logits"].detach(),
                    det["pred_boxes"].detach(),
                    labels["detection"],
                    self.category_ids,
                    canvas=tuple(batch["pixel_values"].shape[-2:]),
                ),
                image_ids=batch["image_ids"].tolist(),
            )

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        """Per image: its class, its detections (original pixels and ids) and its class map."""
        outputs = self(batch["pixel_values"], batch.get("pixel_mask"))
        canvas = tuple(batch["pixel_values"].shape[-2:])
        image_ids = batch["image_ids"].tolist()
        results: list[dict[str, Any]] = [{"image_id": int(i)} for i in image_ids]
        if "classification" in self.tasks:
            probs = outputs["classification"].float().softmax(-1)
            scores, labels = probs.max(-1)
            names = self._names("classification")
            for item, label, score in zip(results, labels.tolist(), scores.tolist()):
                item.update(label=int(label), label_name=names[int(label)], score=float(score))
        if "detection" in self.tasks:
            det = outputs["detection"]
            targets = [
                {"content_box": box, "orig_size": size, "image_id": torch.tensor(i)}
                for box, size, i in zip(batch["content_boxes"], batch["orig_sizes"], image_ids)
            ]
            found = detections_from_outputs(
                det["logits"], det["pred_boxes"], targets, self.category_ids, canvas=canvas, min_score=0.05
            )
            for item in results:
                item["detections"] = [d for d in found if d["image_id"] == item["image_id"]]
        if "segmentation" in self.tasks:
            logits = outputs["segmentation"].float()
            for k, item in enumerate(results):
                x, y, w, h = (int(round(v)) for v in batch["content_boxes"][k].tolist())
                one = F.interpolate(
                    logits[k : k + 1, :, y : y + max(h, 1), x : x + max(w, 1)],
                    size=tuple(batch["orig_sizes"][k].tolist()),
                    mode="bilinear",
                    align_corners=False,
                )
                item["mask"] = one.argmax(1)[0].to(torch.uint8).cpu().numpy()
        return results

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()  # the losses
        if "classification" in self.tasks:
            values = self.cls_metrics.compute()
            self.log_validation_metric("val/accuracy", values["accuracy"])
            self.log_validation_metric("val/f1_macro", values["f1_macro"])
        if "segmentation" in self.tasks:
            values = self.seg_metrics.compute()
            self.log_validation_metric("val/miou", values["miou"])
            self.log_validation_metric("val/pixel_accuracy", values["pixel_accuracy"])
        # COCO evaluation is slow and meaningless on the sanity check's two batches.
        if self.evaluator is not None and not self.trainer.sanity_checking:
            values = self.evaluator.compute()
            for key in ("map", "map_50", "map_75"):
                self.log_validation_metric(f"val/{key}", values[key])
