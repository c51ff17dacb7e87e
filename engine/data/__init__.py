"""COCO data layer: index, dataset folders, health checks, images, augmentation.

Import the submodules directly (``engine.data.coco_index`` ...); this package
does not import torch so the app can browse datasets without it.
"""
