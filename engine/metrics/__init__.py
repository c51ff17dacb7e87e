"""Evaluation metrics for the three tasks.

- ``engine.metrics.classification``: accuracy, top-5, macro F1, confusion matrix.
- ``engine.metrics.detection``: COCO box metrics (faster-coco-eval or pycocotools).
- ``engine.metrics.segmentation``: mIoU and pixel accuracy from a confusion matrix.

Submodules are imported explicitly, so ``import engine.metrics`` stays cheap
(no torch, no COCO tooling).
"""
