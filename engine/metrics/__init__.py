"""Evaluation metrics for the three tasks.

- ``engine.metrics.classification``: accuracy, top-5, macro F1, confusion matrix.
- ``engine.metrics.detection``: COCO box metrics (faster-coco-eval or pycocotools).
- ``engine.metrics.segmentation``: mIoU and pixel accuracy from a confusion matrix.

Submodules are imported explicitly, so ``import engine.metrics`` stays cheap
(no torch, no COCO tooling).
"""


def class_names_for(num_classes: int, class_names=None) -> list[str]:
    """Validated display names for ``num_classes`` classes (their indices when none are given)."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    names = [str(i) for i in range(num_classes)] if class_names is None else [str(n) for n in class_names]
    if len(names) != num_classes:
        raise ValueError(f"{len(names)} class names given for {num_classes} classes")
    return names
