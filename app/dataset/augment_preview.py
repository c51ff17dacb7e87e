"""What training does to one image, epoch by epoch: the samples the Augment tab paints.

The samples come from the task's own dataset class (``dataset.augmented(i, epoch)``),
the very call training makes, so sample k is what the model sees of that image in
epoch k for the shown seed. Runs in a worker thread: the dataset classes import torch,
and QImage work is allowed off the GUI thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QImage, QPainter

from engine.data.paths import UnsafeFileName

from ..widgets.colours import UNKNOWN_RGB, category_rgb
from .session import DatasetSession, ImageRef

RENDER_SIZE = 512  # longest side of a rendered sample; tiles scale it down to fit
PROBE_LABEL = -1  # val pipelines carry a whole-image "probe" box that is not an annotation


@dataclass
class SampleTile:
    """One augmented sample, ready to paint: the image (mask already blended in) and its boxes."""

    image: QImage
    width: int  # size of the augmented sample, which box coordinates refer to
    height: int
    boxes: list[tuple[float, float, float, float, str, str]] = field(default_factory=list)  # x, y, w, h, name, colour
    caption: str = ""


def _dataset_class(task: str):
    # The training dataset classes import torch: only ever called from a background task.
    if task == "classification":
        from engine.tasks.classification.datamodule import ClassificationDataset as cls
    elif task == "detection":
        from engine.tasks.detection.datamodule import DetectionDataset as cls
    else:
        from engine.tasks.segmentation.datamodule import SegmentationDataset as cls
    return cls


def _mask_lut(label_rgb: dict[int, tuple[int, int, int]]) -> np.ndarray:
    """RGBA per mask value: classes in translucent colour, background clear, "ignore" (255) grey."""
    lut = np.zeros((256, 4), np.uint8)
    for value in range(1, 255):
        lut[value] = (*label_rgb.get(value - 1, category_rgb(value - 1)), 120)  # mask value = label + 1
    lut[255] = (128, 128, 128, 150)
    return lut


def label_colours(session: DatasetSession, label_names: list[str]) -> dict[int, tuple[int, int, int]]:
    """A dataset's contiguous labels -> the window's one colour per category name."""
    window = {name: i for i, name in enumerate(session.category_names())}
    return {label: category_rgb(window.get(name, -1)) for label, name in enumerate(label_names)}


def _qimage(rgb: np.ndarray) -> QImage:
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    fmt = QImage.Format_RGBA8888 if rgb.shape[2] == 4 else QImage.Format_RGB888
    return QImage(rgb.data, w, h, rgb.strides[0], fmt).copy()  # copy: the QImage must own its pixels


def _render(
    sample: dict, epoch: int, names: dict[int, str], task: str, label_rgb: dict[int, tuple[int, int, int]]
) -> SampleTile:
    """Turn a sample into a paintable tile."""
    image = sample["image"]
    h, w = image.shape[:2]
    qimage = _qimage(image)
    scale = min(1.0, RENDER_SIZE / max(h, w))
    if scale < 1:
        qimage = qimage.scaled(
            max(1, round(w * scale)), max(1, round(h * scale)), Qt.IgnoreAspectRatio, Qt.SmoothTransformation
        )
    mask = sample.get("mask")
    if mask is not None:
        overlay = _qimage(_mask_lut(label_rgb)[np.asarray(mask).astype(np.intp).clip(0, 255)])
        qimage = qimage.convertToFormat(QImage.Format_ARGB32_Premultiplied)
        painter = QPainter(qimage)
        # Nearest-neighbour scaling keeps class borders crisp.
        painter.drawImage(QRectF(0, 0, qimage.width(), qimage.height()), overlay)
        painter.end()
    boxes = []
    for (x, y, bw, bh), label in zip(sample["boxes"].tolist(), sample["labels"].tolist()):
        if label == PROBE_LABEL:
            continue
        colour = "#{:02x}{:02x}{:02x}".format(*label_rgb.get(label, UNKNOWN_RGB))
        boxes.append((x, y, bw, bh, names.get(label, str(label)), colour))
    caption = f"epoch {epoch} · {w}×{h}"
    if task == "detection":
        caption += f" · {len(boxes)} box{'es' if len(boxes) != 1 else ''}"
    return SampleTile(qimage, w, h, boxes, caption)


def compute_preview(
    session: DatasetSession, ref: ImageRef, task: str, spec: list[dict], train: bool, seed: int, n: int, cancel=None
) -> dict:
    """Augment ``ref`` n times through the task's training dataset class (runs in a worker).

    Problems come back as ``{"error": message}`` rather than as exceptions: they are the
    preview's answer, shown where the samples would be.
    """
    result: dict[str, Any] = {"seed": seed, "spec": spec, "train": train}
    try:
        session.image_path(ref)  # the one resolver: refuses a file_name that leaves the dataset folder
    except UnsafeFileName as exc:
        return {**result, "error": f"Refused to open this image: {exc.reason}."}
    try:
        dataset = _dataset_class(task)(
            session.image_dir(ref.split),
            index=session.index(ref.split),
            transforms=spec,
            train=train,
            seed=seed,
            check_files=False,
        )
        # Match by image id: the dataset may leave images out, so its positions differ from the index rows.
        image_id = int(session.index(ref.split).image_ids[ref.row])
        found = np.flatnonzero(dataset.index.image_ids[dataset.rows] == image_id)
        if not len(found):
            why = [p.message for p in dataset.problems if p.image_id == image_id and p.severity == "error"]
            reason = why[0] if why else f"it has no annotation that {task} training can use"
            return {**result, "error": f"Training leaves this image out: {reason}."}
        i = int(found[0])
        names = dataset.id2label if task == "detection" else {}
        label_rgb = label_colours(session, list(dataset.index.category_names))
        samples, tiles = [], []
        for epoch in range(n):
            if cancel is not None and cancel.is_set():
                return {**result, "cancelled": True}
            try:
                sample = dataset.augmented(i, epoch)
            except Exception as exc:  # a transform that cannot handle this image, e.g. a crop too large
                return {**result, "error": f"Sample {epoch} failed: {exc}"}
            samples.append(sample)
            tiles.append(_render(sample, epoch, names, task, label_rgb))
        return {**result, "index": i, "samples": samples, "tiles": tiles}
    except Exception as exc:
        return {**result, "error": f"{type(exc).__name__}: {exc}"}
