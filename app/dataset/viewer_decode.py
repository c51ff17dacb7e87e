"""The Image tab's slow part, for a worker thread: decode the image file and the RLE masks.

Engine code and QImage only (no widget, no pixmap), so it may run off the GUI thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtGui import QImage

from engine.data.coco_index import CocoIndex
from engine.data.images import ImageReadError, load_image
from engine.data.masks import annotation_mask

# (annotation row, mask colour, crowd?) for each RLE mask to draw
MaskSpec = tuple[int, tuple[int, int, int], bool]


@dataclass
class Decoded:
    """What the worker hands back: the image (or why not) and the RLE masks as images."""

    image: QImage | None = None
    error: str | None = None
    # (annotation row, top-left x, top-left y, mask image cropped to its extent)
    masks: list[tuple[int, int, int, QImage]] = field(default_factory=list)
    mask_problems: list[str] = field(default_factory=list)


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    h, w, _ = rgb.shape
    # copy(): the QImage must own its pixels once the numpy array is gone.
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def mask_to_qimage(mask: np.ndarray, rgb: tuple[int, int, int], crowd: bool) -> tuple[int, int, QImage] | None:
    """A translucent coloured image of the mask, cropped to where it is set; crowds striped."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if len(ys) == 0:
        return None
    y0, y1, x0, x1 = int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1
    region = mask[y0:y1, x0:x1].astype(bool)
    h, w = region.shape
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[..., :3] = rgb
    if crowd:
        # Diagonal stripes tell a crowd region (ignored in training) from an object.
        yy, xx = np.mgrid[y0:y1, x0:x1]
        stripes = ((xx + yy) // 4) % 2 == 0
        rgba[..., 3] = np.where(region, np.where(stripes, 150, 35), 0)
    else:
        rgba[..., 3] = np.where(region, 105, 0)
    image = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
    # Premultiplied is what the painter draws fastest; converting also copies the pixels.
    return x0, y0, image.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)


def decode(path: Path, index: CocoIndex, mask_specs: list[MaskSpec], cancel: threading.Event) -> Decoded | None:
    """Decode the image and the RLE masks; None once cancelled."""
    result = Decoded()
    if cancel.is_set():
        return None
    try:
        result.image = rgb_to_qimage(load_image(path))
    except ImageReadError as exc:
        result.error = exc.reason
    except OSError as exc:  # e.g. the folder vanished
        result.error = exc.strerror or str(exc)
    for ann_row, rgb, crowd in mask_specs:
        if cancel.is_set():
            return None
        ann_id = int(index.ann_ids[ann_row])
        try:
            cropped = mask_to_qimage(annotation_mask(index, ann_row), rgb, crowd)
        except Exception as exc:  # a malformed RLE must not hide the others
            result.mask_problems.append(f"annotation {ann_id}: mask not drawn: {exc}")
            continue
        if cropped is not None:
            result.masks.append((ann_row, *cropped))
    return result
