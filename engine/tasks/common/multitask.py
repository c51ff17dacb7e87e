"""Several tasks learnt at once: one shared backbone, one head per task.

Usage (the seed's example; offline, presets such as ``resnet-50`` stand in for hub ids)::

    config = MultiTaskConfig(tasks=["classification", "detection"],
                             model_checkpoints={"classification": "microsoft/resnet-50",
                                                "detection": "facebook/detr-resnet-50"})
    model = MultiTaskModule(config)          # heads are sized from the data module in setup()
    trainer.fit(model, MultiTaskDataModule.from_folder(folder, tasks=config.tasks))

Design:

* **Shared backbone.** The backbone comes from the checkpoint of the FIRST task,
  in ``tasks`` order, whose checkpoint has a backbone form (a ResNet-like
  classifier, or a DETR, whose ResNet is taken). ``["classification",
  "detection"]`` with ``microsoft/resnet-50`` and ``facebook/detr-resnet-50``
  shares the classifier's ResNet-50; ``["segmentation", "detection"]`` with a
  SegFormer skips it (no backbone form) and takes the DETR's ResNet. The other
  checkpoints only matter as candidates for this: the heads are always new.
  The backbone runs once per batch; every head reads its last feature map.
* **Heads.** Classification: global average pool, dropout, linear.
  Segmentation: a small convolutional decoder whose logits are resized to the
  input, cross-entropy ignoring 255. Detection: a compact DETR (input
  projection, 2-D sine positions, ``nn.TransformerEncoder``/``Decoder``,
  learned queries, K + 1 class logits with "no object" last, a 3-layer box MLP)
  trained with Hungarian matching and CE (no-object weight 0.1) + L1 + GIoU.
  No auxiliary decoder losses: ``nn.TransformerDecoder`` hides its layers' outputs.
* **Data.** One augmentation pipeline (the detection one) carries the image,
  boxes and mask together, so every task sees the same geometry. Validation
  keeps DETR's probe box, which says where the original image lies on the canvas.
* **Loss.** ``sum(weight[t] * loss[t])``; a task of weight 0 is left out of the
  sum, so its head gets no gradient (its loss is still logged).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn
from torchvision.ops import box_convert, generalized_box_iou

from engine.data import augment
from engine.data.masks import IGNORE_INDEX, semantic_mask
from engine.data.splits import primary_labels
from engine.metrics.classification import ClassificationMetrics
from engine.metrics.detection import DetectionEvaluator
from engine.metrics.segmentation import SegmentationMetrics
from engine.models.loading import ModelLoadError, has_backbone_form, load_backbone
from engine.tasks.detection.datamodule import DetectionDataset
from engine.tasks.detection.lightning_module import detections_from_outputs

from .base_datamodule import BaseVisionDataModule
from .base_module import BaseVisionModule
from .collate import IMAGENET_MEAN, IMAGENET_STD, normalize_batch, stack_images

TASKS: tuple[str, ...] = ("classification", "detection", "segmentation")

# DETR's matching costs and loss weights (class, L1, GIoU).
CLASS_COST, L1_COST, GIOU_COST = 1.0, 5.0, 2.0


def check_tasks(tasks: Any) -> list[str]:
    """``tasks`` as a list, or a ValueError saying what is wrong with it."""
    if isinstance(tasks, str) or not isinstance(tasks, Sequence):
        raise ValueError(f"tasks must be a list of task names (from {', '.join(TASKS)}), got {tasks!r}")
    tasks = list(tasks)
    if not tasks:
        raise ValueError(f"tasks is empty; list at least one of {', '.join(TASKS)}")
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {', '.join(map(repr, unknown))}; expected some of {', '.join(TASKS)}")
    repeated = sorted({t for t in tasks if tasks.count(t) > 1})
    if repeated:
        raise ValueError(f"tasks lists {', '.join(map(repr, repeated))} more than once")
    return tasks


def labels_per_task(num_categories: int, tasks: Sequence[str]) -> dict[str, int]:
    """Classes each head predicts: K categories, plus background for segmentation."""
    sizes = {"classification": num_categories, "detection": num_categories, "segmentation": num_categories + 1}
    return {t: sizes[t] for t in tasks}


# ============================================================================ config


@dataclass
class MultiTaskConfig:
    """What a multi-task model is made of.

    ``model_checkpoints`` maps task -> checkpoint (preset, folder or hub id);
    tasks left out get the app's default checkpoint. The shared backbone comes
    from the first task's checkpoint (in ``tasks`` order) that has a backbone
    form; see the module docstring. ``loss_weights`` default to 1.0 per task.
    ``num_queries``, ``hidden_dim``, ``num_layers`` (encoder and decoder each)
    and ``num_heads`` size the detection head; ``decoder_dim`` the
    segmentation decoder; ``dropout`` applies to the classification and
    detection heads.
    """

    tasks: list[str]
    model_checkpoints: dict[str, str] = field(default_factory=dict)
    loss_weights: dict[str, float] = field(default_factory=dict)
    pretrained: bool = True
    num_queries: int = 50
    hidden_dim: int = 128
    num_layers: int = 2
    num_heads: int = 4
    decoder_dim: int = 64
    dropout: float = 0.1
    no_object_weight: float = 0.1

    def __post_init__(self) -> None:
        from engine.config import DEFAULT_CHECKPOINTS

        self.tasks = check_tasks(self.tasks)
        for name, mapping in (("model_checkpoints", self.model_checkpoints), ("loss_weights", self.loss_weights)):
            if not isinstance(mapping, Mapping):
                raise ValueError(f"{name} must map task names to values, got {mapping!r}")
            extra = [k for k in mapping if k not in self.tasks]
            if extra:
                raise ValueError(f"{name} has {', '.join(map(repr, extra))}, which is not one of the tasks "
                                 f"({', '.join(self.tasks)})")
        checkpoints = {}
        for task in self.tasks:
            ckpt = self.model_checkpoints.get(task, DEFAULT_CHECKPOINTS[task])
            if not isinstance(ckpt, str) or not ckpt.strip():
                raise ValueError(f"model_checkpoints[{task!r}] must be a checkpoint name, got {ckpt!r}")
            checkpoints[task] = ckpt.strip()
        self.model_checkpoints = checkpoints
        weights = {}
        for task in self.tasks:
            w = self.loss_weights.get(task, 1.0)
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
                raise ValueError(f"loss_weights[{task!r}] must be a number >= 0, got {w!r}")
            weights[task] = float(w)
        if not any(weights.values()):
            raise ValueError("every loss weight is 0: nothing would be learnt")
        self.loss_weights = weights
        for name in ("num_queries", "hidden_dim", "num_layers", "num_heads", "decoder_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        # The sine encoding splits hidden_dim into y and x halves of sin/cos pairs.
        if self.hidden_dim % 4 or self.hidden_dim % self.num_heads:
            raise ValueError(f"hidden_dim ({self.hidden_dim}) must be a multiple of 4 and of "
                             f"num_heads ({self.num_heads})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not 0.0 < self.no_object_weight <= 1.0:
            raise ValueError(f"no_object_weight must be in (0, 1], got {self.no_object_weight!r}")


def backbone_checkpoint(config: MultiTaskConfig) -> str:
    """The checkpoint :func:`shared_backbone` takes the backbone from (reads configs, builds nothing).

    Its normalisation is the one the whole model expects.
    """
    for task in config.tasks:
        if has_backbone_form(config.model_checkpoints[task]):
            return config.model_checkpoints[task]
    return shared_backbone(config)[2]  # raises the message that says why none fits


def shared_backbone(config: MultiTaskConfig) -> tuple[nn.Module, int, str]:
    """(backbone, channels, checkpoint) by the rule in the module docstring."""
    skipped = []
    for task in config.tasks:
        checkpoint = config.model_checkpoints[task]
        try:
            module, channels = load_backbone(checkpoint, pretrained=config.pretrained)
            return module, channels, checkpoint
        except ModelLoadError as err:
            # Only "this architecture has no backbone form" moves on to the next
            # task; a missing folder or an unreachable hub id is the user's to fix.
            if "no backbone form" not in str(err):
                raise
            skipped.append(f"{task}: {checkpoint!r}")
    raise ModelLoadError(f"none of the checkpoints can serve as the shared backbone ({'; '.join(skipped)}); "
                         "give at least one task a ResNet-like or DETR checkpoint (e.g. 'resnet-50')")


# ============================================================================ data


def _preset(split: str, image_size: int | None) -> list[dict]:
    """The detection preset (keeps boxes and masks aligned), padding masks with 255.

    The detection preset pads masks with 0, which would teach the segmentation
    head that padding is background.
    """
    spec = augment.preset("detection", split, image_size)
    for step in spec:
        if step["name"] == "PadIfNeeded":
            step["fill_mask"] = augment.MASK_PAD_VALUE
    return spec


class MultiTaskDataset(DetectionDataset):
    """Samples carrying every configured task's labels, augmented together.

    ``labels`` holds, for the configured tasks only: ``classification`` (int,
    the ``primary_labels`` rule, 'largest' by default), ``detection`` (the
    DETR target of ``DetectionDataset``) and ``segmentation`` (LongTensor mask,
    0 background, label + 1, 255 crowd and padding). When classification is a
    task, images without any annotation are skipped (they have no label), so
    the other tasks do not see them either; count in ``skipped``.
    """

    task = "detection"  # the augmentation pipeline's semantics

    def __init__(self, *args: Any, tasks: Sequence[str] | None = None, label_rule: str = "largest",
                 transforms: list[dict] | None = None, train: bool = True, image_size: int | None = None,
                 **kwargs: Any):
        self.tasks = check_tasks(TASKS if tasks is None else tasks)
        self.label_rule = label_rule
        if transforms is None:
            transforms = _preset("train" if train else "val", image_size)
        super().__init__(*args, transforms=transforms, train=train, image_size=image_size, **kwargs)

    @property
    def num_labels_per_task(self) -> dict[str, int]:
        return labels_per_task(self.index.num_categories, self.tasks)

    def usable_rows(self) -> np.ndarray:
        self.labels = primary_labels(self.index, self.label_rule)
        rows = np.flatnonzero(self.labels >= 0) if "classification" in self.tasks else np.arange(self.index.num_images)
        self.skipped = self.index.num_images - len(rows)
        return rows

    def targets(self, row: int) -> dict[str, Any]:
        targets = super().targets(row)
        if "segmentation" in self.tasks:
            targets["mask"] = semantic_mask(self.index, row, ignore_index=IGNORE_INDEX)
        return targets

    def to_sample(self, augmented: dict[str, Any], row: int) -> dict[str, Any]:
        sample = super().to_sample(augmented, row)
        detection = sample["labels"]
        labels: dict[str, Any] = {}
        for task in self.tasks:
            if task == "classification":
                labels[task] = int(self.labels[row])
            elif task == "detection":
                labels[task] = detection
            else:
                labels[task] = torch.from_numpy(augmented["mask"].astype(np.int64))
        return {"pixel_values": sample["pixel_values"], "labels": labels, "image_id": sample["image_id"],
                "content_box": detection["content_box"], "orig_size": detection["orig_size"]}


class MultiTaskCollate:
    """Stacks images once; builds each task's labels as the single-task ``Collate`` does."""

    def __init__(self, tasks: Sequence[str], *, normalize: bool = True, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD, ignore_index: int = IGNORE_INDEX):
        self.tasks, self.normalize = list(tasks), normalize
        self.mean, self.std, self.ignore_index = tuple(mean), tuple(std), ignore_index

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        pixels, pixel_mask = stack_images([s["pixel_values"] for s in samples])
        if self.normalize:
            pixels = normalize_batch(pixels, self.mean, self.std)
        h, w = pixels.shape[-2:]
        labels: dict[str, Any] = {}
        batch: dict[str, Any] = {"pixel_values": pixels, "labels": labels}
        if "classification" in self.tasks:
            labels["classification"] = torch.tensor([s["labels"]["classification"] for s in samples], dtype=torch.long)
        if "detection" in self.tasks:
            labels["detection"] = [self._on_canvas(s["labels"]["detection"], h, w) for s in samples]
            batch["pixel_mask"] = pixel_mask if pixel_mask is not None else torch.ones((len(samples), h, w),
                                                                                      dtype=torch.long)
        if "segmentation" in self.tasks:
            masks = torch.full((len(samples), h, w), self.ignore_index, dtype=torch.long)
            for k, s in enumerate(samples):
                m = s["labels"]["segmentation"]
                masks[k, : m.shape[0], : m.shape[1]] = m
            labels["segmentation"] = masks
        batch["image_ids"] = torch.tensor([int(s["image_id"]) for s in samples], dtype=torch.long)
        batch["content_boxes"] = torch.stack([s["content_box"] for s in samples])
        batch["orig_sizes"] = torch.stack([s["orig_size"] for s in samples])
        return batch

    @staticmethod
    def _on_canvas(target: dict[str, Any], h: int, w: int) -> dict[str, Any]:
        """Boxes are relative to their image; re-express them relative to the padded canvas."""
        target = dict(target)
        sh, sw = target["size"].tolist()
        if (sh, sw) != (h, w) and len(target["boxes"]):
            factor = torch.tensor([sw / w, sh / h, sw / w, sh / h], dtype=target["boxes"].dtype)
            target["boxes"] = target["boxes"] * factor
        return target


class MultiTaskDataModule(BaseVisionDataModule):
    """Data for several tasks at once; ``tasks`` defaults to all three."""

    dataset_class = MultiTaskDataset

    def __init__(self, *args: Any, tasks: Sequence[str] | None = None, **kwargs: Any):
        tasks = check_tasks(TASKS if tasks is None else tasks)
        super().__init__(*args, tasks=tasks, **kwargs)  # reaches the datasets through dataset_kwargs
        self.tasks = tasks

    @property
    def num_labels_per_task(self) -> dict[str, int]:
        self.setup()
        return self.train_dataset.num_labels_per_task

    def collate(self) -> MultiTaskCollate:
        return MultiTaskCollate(self.tasks, normalize=self.normalize == "collate", mean=self.mean, std=self.std)


# ============================================================================ heads


class ClassificationHead(nn.Module):
    def __init__(self, channels: int, num_labels: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(channels, num_labels)

    def forward(self, features: Tensor) -> Tensor:
        return self.classifier(self.dropout(features.mean(dim=(2, 3))))


class SegmentationHead(nn.Module):
    """1x1 projection, two (upsample x2, 3x3 conv, BN, ReLU) stages, 1x1 classifier.

    The backbone's last map is coarse (stride 8 to 32); upsampling in two
    learnt stages before the final bilinear resize gives sharper edges than
    resizing the logits alone.
    """

    def __init__(self, channels: int, num_labels: int, dim: int):
        super().__init__()
        self.project = nn.Sequential(nn.Conv2d(channels, dim, 1, bias=False), nn.BatchNorm2d(dim), nn.ReLU(inplace=True))
        self.stages = nn.ModuleList(
            nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1, bias=False), nn.BatchNorm2d(dim), nn.ReLU(inplace=True))
            for _ in range(2))
        self.classifier = nn.Conv2d(dim, num_labels, 1)

    def forward(self, features: Tensor, size: tuple[int, int]) -> Tensor:
        x = self.project(features)
        for stage in self.stages:
            x = stage(F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False))
        return F.interpolate(self.classifier(x), size=size, mode="bilinear", align_corners=False)


def sine_positions(mask: Tensor, dim: int, temperature: float = 10000.0) -> Tensor:
    """(B, H, W) bool mask of real cells -> (B, H*W, dim) 2-D sine encoding.

    Half the channels encode y, half x, each as interleaved sin/cos of the
    cell's position normalised over the real (unpadded) extent.
    """
    m = mask.to(torch.float32)
    y, x = m.cumsum(1), m.cumsum(2)
    y = y / (y[:, -1:, :] + 1e-6) * 2 * math.pi
    x = x / (x[:, :, -1:] + 1e-6) * 2 * math.pi
    half = dim // 2
    freq = temperature ** (2 * (torch.arange(half, device=mask.device) // 2) / half)

    def encode(v: Tensor) -> Tensor:
        v = v[..., None] / freq
        return torch.stack((v[..., 0::2].sin(), v[..., 1::2].cos()), dim=-1).flatten(-2)

    return torch.cat((encode(y), encode(x)), dim=-1).flatten(1, 2)


class DetectionHead(nn.Module):
    """A compact DETR head: K + 1 class logits ("no object" last) and sigmoid cx, cy, w, h boxes."""

    def __init__(self, channels: int, num_labels: int, dim: int, num_queries: int, num_layers: int,
                 num_heads: int, dropout: float):
        super().__init__()
        self.input_proj = nn.Conv2d(channels, dim, 1)
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(dim, num_heads, 4 * dim, dropout, batch_first=True),
            num_layers, enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(dim, num_heads, 4 * dim, dropout, batch_first=True), num_layers)
        self.queries = nn.Embedding(num_queries, dim)
        self.class_head = nn.Linear(dim, num_labels + 1)
        self.box_head = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim),
                                      nn.ReLU(inplace=True), nn.Linear(dim, 4))

    def forward(self, features: Tensor, pixel_mask: Tensor | None = None) -> dict[str, Tensor]:
        x = self.input_proj(features)
        b, d, h, w = x.shape
        if pixel_mask is None:
            mask = torch.ones((b, h, w), dtype=torch.bool, device=x.device)
        else:
            mask = F.interpolate(pixel_mask[:, None].float(), size=(h, w), mode="nearest")[:, 0] > 0.5
        padding = ~mask.flatten(1)
        pos = sine_positions(mask, d).to(x.dtype)
        # nn.Transformer layers cannot add positions to queries/keys only, so they are
        # added to the inputs once: enough for the cross-attention to localise.
        memory = self.encoder(x.flatten(2).transpose(1, 2) + pos, src_key_padding_mask=padding) + pos
        queries = self.queries.weight.unsqueeze(0).expand(b, -1, -1)
        hs = self.decoder(queries, memory, memory_key_padding_mask=padding)
        return {"logits": self.class_head(hs), "pred_boxes": self.box_head(hs).sigmoid()}


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
        cost = (L1_COST * torch.cdist(pred, gt, p=1) - CLASS_COST * prob[:, labels]
                - GIOU_COST * generalized_box_iou(_xyxy(pred), _xyxy(gt)))
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
        matched_labels = torch.cat([t["class_labels"][dst.to(t["class_labels"].device)]
                                    for t, (_, dst) in zip(targets, indices)]).to(device)
        matched_boxes = torch.cat([t["boxes"][dst.to(t["boxes"].device)]
                                   for t, (_, dst) in zip(targets, indices)]).to(device, torch.float32)

        classes = torch.full(logits.shape[:2], self.num_labels, dtype=torch.long, device=device)
        classes[batch_idx, query_idx] = matched_labels
        loss_ce = F.cross_entropy(logits.transpose(1, 2), classes, weight=self.class_weight)
        num_boxes = max(len(matched_labels), 1)
        pred = boxes[batch_idx, query_idx]
        loss_l1 = F.l1_loss(pred, matched_boxes, reduction="sum") / num_boxes
        loss_giou = (1 - torch.diag(generalized_box_iou(_xyxy(pred), _xyxy(matched_boxes)))).sum() / num_boxes
        loss = CLASS_COST * loss_ce + L1_COST * loss_l1 + GIOU_COST * loss_giou
        return {"loss": loss, "loss_ce": loss_ce, "loss_l1": loss_l1, "loss_giou": loss_giou}


# ============================================================================ module


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

    def __init__(self, config: MultiTaskConfig | Mapping[str, Any], num_labels: Mapping[str, int] | int | None = None,
                 *, pretrained: bool | None = None, category_ids: list[int] | None = None,
                 id2label: Mapping[int, str] | None = None, **kwargs: Any):
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
        self.save_hyperparameters({"config": asdict(config), "num_labels": num_labels,
                                   "category_ids": category_ids, "id2label": id2label, **kwargs})
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
                self.heads[task] = DetectionHead(c, n, cfg.hidden_dim, cfg.num_queries, cfg.num_layers,
                                                 cfg.num_heads, cfg.dropout)
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
            raise ValueError(f"the data module gives labels for {', '.join(found)} but the model also needs "
                             f"{', '.join(missing)}; create it with tasks={self.tasks}")
        if self.num_labels is None:
            self._build_heads(self._resolve(dict(found)))
        else:
            wrong = {t: (self.num_labels[t], found[t]) for t in self.tasks if self.num_labels[t] != found[t]}
            if wrong:
                detail = "; ".join(f"{t}: model {m}, data {d}" for t, (m, d) in wrong.items())
                raise ValueError(f"num_labels disagree with the dataset ({detail}); pass "
                                 f"num_labels={ {t: found[t] for t in self.tasks} }")
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
            self.seg_metrics = SegmentationMetrics(self.num_labels["segmentation"], ignore_index=IGNORE_INDEX,
                                                   class_names=self._names("segmentation"))
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
            self.evaluator.add(detections_from_outputs(det["logits"].detach(), det["pred_boxes"].detach(),
                                                       labels["detection"], self.category_ids,
                                                       canvas=tuple(batch["pixel_values"].shape[-2:])),
                               image_ids=batch["image_ids"].tolist())

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
            targets = [{"content_box": box, "orig_size": size, "image_id": torch.tensor(i)}
                       for box, size, i in zip(batch["content_boxes"], batch["orig_sizes"], image_ids)]
            found = detections_from_outputs(det["logits"], det["pred_boxes"], targets, self.category_ids,
                                            canvas=canvas, min_score=0.05)
            for item in results:
                item["detections"] = [d for d in found if d["image_id"] == item["image_id"]]
        if "segmentation" in self.tasks:
            logits = outputs["segmentation"].float()
            for k, item in enumerate(results):
                x, y, w, h = (int(round(v)) for v in batch["content_boxes"][k].tolist())
                one = F.interpolate(logits[k : k + 1, :, y : y + max(h, 1), x : x + max(w, 1)],
                                    size=tuple(batch["orig_sizes"][k].tolist()), mode="bilinear",
                                    align_corners=False)
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
