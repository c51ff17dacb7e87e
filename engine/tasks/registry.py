"""Which data module and LightningModule serve each task.

A new task is one folder (``engine/tasks/<name>/{datamodule.py,
lightning_module.py}``) and one entry here. Entries are import paths, so
reading the registry (the app does, for its forms) imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module


@dataclass(frozen=True)
class TaskEntry:
    name: str
    datamodule_path: str
    module_path: str
    description: str

    @staticmethod
    def _load(path: str):
        module_name, _, attr = path.partition(":")
        return getattr(import_module(module_name), attr)

    @property
    def datamodule_class(self):
        return self._load(self.datamodule_path)

    @property
    def module_class(self):
        return self._load(self.module_path)


TASKS: dict[str, TaskEntry] = {}


def register(name: str, datamodule_path: str, module_path: str, description: str) -> None:
    TASKS[name] = TaskEntry(name, datamodule_path, module_path, description)


register(
    "classification",
    "engine.tasks.classification.datamodule:ClassificationDataModule",
    "engine.tasks.classification.lightning_module:ClassificationModule",
    "one label per image (from its largest annotation by default)",
)
register(
    "detection",
    "engine.tasks.detection.datamodule:DetectionDataModule",
    "engine.tasks.detection.lightning_module:DetectionModule",
    "boxes with DETR, scored with COCO mAP",
)
register(
    "segmentation",
    "engine.tasks.segmentation.datamodule:SegmentationDataModule",
    "engine.tasks.segmentation.lightning_module:SegmentationModule",
    "per-pixel classes from polygons and RLE, scored with mIoU",
)
register(
    "multitask",
    "engine.tasks.multitask.datamodule:MultiTaskDataModule",
    "engine.tasks.multitask.lightning_module:MultiTaskModule",
    "one shared backbone, one head per task, trained together",
)


def get_task(name: str) -> TaskEntry:
    if name not in TASKS:
        raise ValueError(f"unknown task '{name}'; known tasks: {', '.join(TASKS)}")
    return TASKS[name]
