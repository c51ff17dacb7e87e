"""The seed's import path for multi-task learning, kept so its example runs as written.

The task itself lives in :mod:`engine.tasks.multitask`, laid out like every other
task; this module only re-exports its public names.
"""

from engine.tasks.multitask.backbone import backbone_checkpoint, shared_backbone
from engine.tasks.multitask.config import TASKS, MultiTaskConfig, check_tasks, labels_per_task
from engine.tasks.multitask.datamodule import MultiTaskCollate, MultiTaskDataModule, MultiTaskDataset
from engine.tasks.multitask.detection_loss import CLASS_COST, GIOU_COST, L1_COST, HungarianLoss
from engine.tasks.multitask.heads import ClassificationHead, DetectionHead, SegmentationHead, sine_positions
from engine.tasks.multitask.lightning_module import MultiTaskModule

__all__ = [
    "CLASS_COST",
    "GIOU_COST",
    "L1_COST",
    "TASKS",
    "ClassificationHead",
    "DetectionHead",
    "HungarianLoss",
    "MultiTaskCollate",
    "MultiTaskConfig",
    "MultiTaskDataModule",
    "MultiTaskDataset",
    "MultiTaskModule",
    "SegmentationHead",
    "backbone_checkpoint",
    "check_tasks",
    "labels_per_task",
    "shared_backbone",
    "sine_positions",
]
