"""The Image tab's scene: one image's boxes, polygons, masks and labels as graphics items.

Boxes, polygons and labels come straight from the index arrays and are drawn at once
(cheap), so they are there even while, or when, the image cannot be read; the pixels and
the RLE masks are added when a worker has decoded them (``viewer_decode``). Everything is
in the JSON's pixel coordinates. Each overlay item carries its annotation id, kind,
category, colour and crowd flag as item data, so a view can find and restyle it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QImage, QPainter, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPixmapItem,
    QGraphicsPolygonItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QStyle,
    QStyleOptionGraphicsItem,
)

from engine.data.coco_index import SEG_POLYGON, SEG_RLE, CocoIndex

from ..widgets.colours import UNKNOWN_RGB, category_colour, text_colour
from .predictions import Prediction
from .session import ImageRef
from .viewer_decode import MaskSpec
from .viewer_state import category_name

# Item data keys: which annotation an overlay item draws, and how (SCORE, PREDICTION: a prediction's
# score and its place in the image's list).
ANN_ID, KIND, CATEGORY, COLOUR, CROWD, SCORE, PREDICTION = range(7)
_Z = {"image": 0, "mask": 1, "polygon": 2, "box": 3, "label": 4}
# Predictions sit above ground truth, so a dashed box is never hidden under a solid one.
_Z.update({"pred_mask": 1.5, "pred_frame": 5, "pred_box": 5, "pred_label": 6, "miss_box": 4.5, "miss_label": 6})
# A run's evaluation colours by outcome instead of category: found, wrong, and ground truth missed.
OUTCOME_COLOURS = {"tp": QColor("#2e7d32"), "fp": QColor("#d32f2f"), "fn": QColor("#ff8f00")}
PREDICTED_MASK_ALPHA = 255  # the mask's own opacity comes from the item (the panel's slider)
UNKNOWN_COLOUR = QColor(*UNKNOWN_RGB)
LABELS_AT_FULL_OPACITY = 30  # more labels than this on one image fade
MIN_LABEL_SCALE = 0.6  # labels shrink to fit their box, down to this


def _strip_selection(option: QStyleOptionGraphicsItem) -> QStyleOptionGraphicsItem:
    # Qt draws a dashed rectangle around selected items; the thicker pen says it better.
    option = QStyleOptionGraphicsItem(option)
    option.state &= ~QStyle.StateFlag.State_Selected
    return option


class _BoxItem(QGraphicsRectItem):
    def paint(self, painter, option, widget=None):
        super().paint(painter, _strip_selection(option), widget)


class _PolygonItem(QGraphicsPolygonItem):
    def paint(self, painter, option, widget=None):
        super().paint(painter, _strip_selection(option), widget)


class _MaskItem(QGraphicsPixmapItem):
    def paint(self, painter, option, widget=None):
        super().paint(painter, _strip_selection(option), widget)


class _LabelItem(QGraphicsItem):
    """A category name on a coloured tag above a box's top-left corner, the same size at any zoom."""

    def __init__(self, text: str, colour: QColor, box_width: float | None = None, predicted: bool = False):
        super().__init__()
        self.text = text
        self.predicted = predicted  # a prediction's tag: light with a dashed border, below the corner
        self.box_width = box_width  # in image pixels: how much room the tag has on screen
        self.colour = QColor(colour)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.font = QFont()
        self.font.setPointSizeF(9)
        self.font.setBold(True)
        metrics = QFontMetricsF(self.font)
        w, h = metrics.horizontalAdvance(text) + 8, metrics.height() + 2
        self._rect = QRectF(0, 0 if predicted else -h, w, h)

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(self, painter: QPainter, option, widget=None):
        if self.predicted:
            painter.setPen(QPen(self.colour, 1.5, Qt.PenStyle.DashLine))
            painter.setBrush(QColor(255, 255, 255, 225))
            painter.drawRect(self._rect)
            painter.setPen(self.colour.darker(170))
            painter.setFont(self.font)
            painter.drawText(self._rect, Qt.AlignmentFlag.AlignCenter, self.text)
            return
        painter.setPen(QPen(self.colour.darker(160), 1.5 if self.isSelected() else 0))
        painter.setBrush(self.colour)
        painter.drawRect(self._rect)
        painter.setPen(text_colour(self.colour))
        painter.setFont(self.font)
        painter.drawText(self._rect, Qt.AlignmentFlag.AlignCenter, self.text)


class AnnotationScene(QGraphicsScene):
    """Draws one image and its annotations; finds, styles and hides their items."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.colours: dict[str, QColor] = {}  # category name -> the window's one colour for it
        self.items_by_id: dict[int, list[QGraphicsItem]] = {}  # annotation id -> its overlay items
        self.ann_rows: dict[int, int] = {}  # annotation id -> its row in the index
        self.content = QRectF()  # what a fit shows: the image, or the JSON's size and the file's together
        self.image_item: QGraphicsPixmapItem | None = None
        self.placeholder: QGraphicsRectItem | None = None
        self.prediction_items: list[QGraphicsItem] = []  # drawn apart: no annotation id, never selected

    # ------------------------------------------------------------------ colours
    def set_categories(self, names: list[str]) -> None:
        self.colours = {name: category_colour(i) for i, name in enumerate(names)}

    def colour_of(self, name: str) -> QColor:
        return QColor(self.colours.get(name, UNKNOWN_COLOUR))

    def colour_of_row(self, index: CocoIndex, ann_row: int) -> QColor:
        return self.colour_of(category_name(index, ann_row))

    def mask_specs(self, index: CocoIndex, ref: ImageRef) -> list[MaskSpec]:
        """What the worker needs to draw the image's RLE masks in their category colours."""
        specs = []
        for ann_row in index.annotation_rows(ref.row):
            if index.ann_seg_kind[ann_row] == SEG_RLE:
                colour = self.colour_of_row(index, ann_row)
                specs.append((ann_row, (colour.red(), colour.green(), colour.blue()), bool(index.ann_iscrowd[ann_row])))
        return specs

    # ------------------------------------------------------------------ drawing
    def set_content(self, rect: QRectF) -> None:
        self.content = rect
        # Room around the image so it can be panned to the middle at any zoom.
        pad = max(rect.width(), rect.height())
        self.setSceneRect(rect.adjusted(-pad, -pad, pad, pad))

    def show_annotations(self, index: CocoIndex, ref: ImageRef) -> dict[str, int]:
        """A grey placeholder of the JSON's size and every annotation's overlays; annotations per category."""
        self.clear()
        self.items_by_id.clear()
        self.ann_rows.clear()
        self.prediction_items = []
        self.image_item = None
        width, height = int(index.image_width[ref.row]), int(index.image_height[ref.row])
        self.set_content(QRectF(0, 0, max(width, 1), max(height, 1)))
        # Grey until the pixels arrive (or for good, when they cannot be read).
        self.placeholder = QGraphicsRectItem(0, 0, width, height)
        self.placeholder.setBrush(QColor(90, 90, 96))
        self.placeholder.setPen(Qt.PenStyle.NoPen)
        self.placeholder.setZValue(-1)
        self.addItem(self.placeholder)
        counts: dict[str, int] = {}
        for ann_row in index.annotation_rows(ref.row):
            ann_id = int(index.ann_ids[ann_row])
            self.ann_rows[ann_id] = ann_row
            self.items_by_id[ann_id] = []
            name = category_name(index, ann_row)
            counts[name] = counts.get(name, 0) + 1
            x, y, w, h = index.ann_bbox[ann_row]
            has_box = not np.isnan(x)
            if has_box:
                self._add_overlay(_BoxItem(x, y, w, h), index, ann_row, "box")
            corner = QPointF(x, y) if has_box else None
            if index.ann_seg_kind[ann_row] == SEG_POLYGON:
                for poly in index.polygons(ann_row):
                    points = QPolygonF([QPointF(px, py) for px, py in poly.tolist()])
                    self._add_overlay(_PolygonItem(points), index, ann_row, "polygon")
                    if corner is None and len(poly):
                        corner = QPointF(*poly.min(axis=0).tolist())
            if corner is not None:
                label = _LabelItem(name, self.colour_of_row(index, ann_row), float(w) if has_box else None)
                label.setPos(corner)
                self._add_overlay(label, index, ann_row, "label")
        return counts

    def add_image(self, image: QImage) -> None:
        """The decoded pixels, under the overlays, in place of the placeholder."""
        self.image_item = QGraphicsPixmapItem(QPixmap.fromImage(image))
        self.image_item.setTransformationMode(Qt.TransformationMode.FastTransformation)  # see the pixels
        self.image_item.setZValue(_Z["image"])
        self.addItem(self.image_item)
        if self.placeholder is not None:
            self.placeholder.hide()

    def add_masks(self, index: CocoIndex, masks: list[tuple[int, int, int, QImage]]) -> None:
        for row, x0, y0, image in masks:
            item = _MaskItem(QPixmap.fromImage(image))
            item.setOffset(x0, y0)
            self._add_overlay(item, index, row, "mask")

    def _add_overlay(self, item: QGraphicsItem, index: CocoIndex, ann_row: int, kind: str) -> None:
        ann_id = int(index.ann_ids[ann_row])
        item.setData(ANN_ID, ann_id)
        item.setData(KIND, kind)
        item.setData(CATEGORY, category_name(index, ann_row))
        item.setData(COLOUR, self.colour_of_row(index, ann_row))
        item.setData(CROWD, bool(index.ann_iscrowd[ann_row]))
        item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        item.setZValue(_Z[kind])
        self._style(item, selected=False)
        self.addItem(item)
        self.items_by_id.setdefault(ann_id, []).append(item)

    # ------------------------------------------------------------------ predictions
    def show_predictions(self, predictions: list[Prediction]) -> None:
        """A dashed box and a "name score" tag per predicted box; a class a dashed frame round the image
        (masks come from ``add_prediction_masks``, once decoded)."""
        for item in self.prediction_items:
            self.removeItem(item)
        self.prediction_items = []
        for k, prediction in enumerate(predictions):
            tag = f"{prediction.name} {prediction.score:.2f}"
            if prediction.outcome == "fp":
                tag = f"FP {prediction.reason or ''}: {tag}".replace(" :", ":")
            if prediction.outcome == "fn" and prediction.bbox is not None:
                x, y, w, h = prediction.bbox
                self._add_prediction(QGraphicsRectItem(x, y, w, h), prediction, "miss_box", k)
                label = _LabelItem(f"missed {prediction.name}", self._prediction_colour(prediction), float(w))
                label.setPos(QPointF(x, y + h))  # inside the box's foot: the ground truth's own tag is at its top
                self._add_prediction(label, prediction, "miss_label", k)
                continue
            if prediction.bbox is not None:
                x, y, w, h = prediction.bbox
                self._add_prediction(QGraphicsRectItem(x, y, w, h), prediction, "pred_box", k)
                label = _LabelItem(tag, self._prediction_colour(prediction), float(w), predicted=True)
                label.setPos(QPointF(x, y))
            elif prediction.rle is not None:
                label = _LabelItem(tag, self.colour_of(prediction.name), None, predicted=True)
                label.setPos(self._rle_corner(prediction.rle))
            else:  # classification: the whole image is the prediction
                frame = QGraphicsRectItem(self.content.adjusted(2 * k, 2 * k, -2 * k, -2 * k))
                self._add_prediction(frame, prediction, "pred_frame", k)
                label = _LabelItem(tag, self._prediction_colour(prediction), None, predicted=True)
                label.setPos(QPointF(0, 0))
            self._add_prediction(label, prediction, "pred_label", k)

    @staticmethod
    def _rle_corner(rle: dict) -> QPointF:
        from pycocotools import mask as mask_utils

        x, y, _, _ = mask_utils.toBbox(rle).tolist()
        return QPointF(x, y)

    def add_prediction_masks(self, predictions: list[Prediction], masks: list[tuple[int, int, int, QImage]]) -> None:
        """Decoded predicted masks (index into ``predictions``, top-left x, y, image), under the boxes."""
        for k, x0, y0, image in masks:
            item = QGraphicsPixmapItem(QPixmap.fromImage(image))
            item.setOffset(x0, y0)
            self._add_prediction(item, predictions[k], "pred_mask", k)

    def _prediction_colour(self, prediction: Prediction) -> QColor:
        outcome = OUTCOME_COLOURS.get(prediction.outcome or "")
        return QColor(outcome) if outcome is not None else self.colour_of(prediction.name)

    def _add_prediction(self, item: QGraphicsItem, prediction: Prediction, kind: str, k: int) -> None:
        colour = self._prediction_colour(prediction)
        item.setData(PREDICTION, k)
        item.setData(KIND, kind)
        item.setData(CATEGORY, prediction.name)
        item.setData(COLOUR, colour)
        item.setData(SCORE, prediction.score)
        item.setZValue(_Z[kind])
        if kind in ("pred_box", "pred_frame"):
            pen = QPen(colour, 2.0, Qt.PenStyle.DashLine)
            pen.setCosmetic(True)
            item.setPen(pen)
        elif kind == "miss_box":  # solid and thick: the ground truth itself, marked as missed
            pen = QPen(colour, 4.0)
            pen.setCosmetic(True)
            item.setPen(pen)
            fill = QColor(colour)
            fill.setAlpha(50)
            item.setBrush(fill)
        self.addItem(item)
        self.prediction_items.append(item)

    def predicted_items(self, kind: str | None = None) -> list[QGraphicsItem]:
        """Prediction items of one kind ('pred_box', 'pred_mask', 'pred_label', 'pred_frame') or all."""
        return [item for item in self.prediction_items if kind is None or item.data(KIND) == kind]

    def apply_prediction_visibility(self, is_shown: Callable[[str, str, float], bool], mask_opacity: float) -> None:
        """Show each prediction item for which ``is_shown(kind, category, score)``; masks at ``mask_opacity``."""
        for item in self.prediction_items:
            item.setVisible(is_shown(item.data(KIND), item.data(CATEGORY), item.data(SCORE)))
            if item.data(KIND) == "pred_mask":
                item.setOpacity(mask_opacity)

    # ------------------------------------------------------------------ styling and visibility
    def _style(self, item: QGraphicsItem, selected: bool) -> None:
        kind, colour, crowd = item.data(KIND), QColor(item.data(COLOUR)), item.data(CROWD)
        item.setSelected(selected)
        item.setZValue(_Z[kind] + (10 if selected else 0))
        if kind not in ("box", "polygon"):
            return
        pen = QPen(colour, (4.0 if selected else 2.0) if kind == "box" else (3.0 if selected else 1.5))
        pen.setCosmetic(True)  # the same width on screen at any zoom
        if crowd:
            pen.setStyle(Qt.PenStyle.DashLine)
        item.setPen(pen)
        if kind == "polygon":
            fill = QColor(colour)
            fill.setAlpha(110 if selected else 70)
            item.setBrush(QBrush(fill, Qt.BrushStyle.BDiagPattern if crowd else Qt.BrushStyle.SolidPattern))

    def style_selection(self, ann_id: int, selected: bool) -> None:
        for item in self.items_by_id.get(ann_id, []):
            self._style(item, selected)

    def apply_visibility(self, is_shown: Callable[[str, str], bool]) -> None:
        """Show each overlay for which ``is_shown(kind, category)``."""
        for item in self.overlay_items():
            item.setVisible(is_shown(item.data(KIND), item.data(CATEGORY)))

    def update_label_density(self, scale: float) -> None:
        """Labels shrink to fit their box on screen (at view ``scale``) and fade when there are many.

        With a few dozen boxes every tag is fully drawn; with hundreds they would cover the
        image, so they fade (hover or click still names an annotation) and tags of boxes
        too small on screen almost vanish.
        """
        labels = self.overlay_items("label")
        if not labels:
            return
        many = len(labels) > LABELS_AT_FULL_OPACITY
        crowd = max(0.35, (LABELS_AT_FULL_OPACITY / len(labels)) ** 0.5) if many else 1.0
        for label in labels:
            full = label.boundingRect().width()
            if label.box_width is None:
                label.setScale(1.0)
                label.setOpacity(crowd)
                continue
            room = label.box_width * scale / full
            label.setScale(min(1.0, max(MIN_LABEL_SCALE, room)))
            label.setOpacity(1.0 if label.isSelected() else (crowd if room >= MIN_LABEL_SCALE else min(crowd, 0.2)))

    # ------------------------------------------------------------------ finding items
    def overlay_items(self, kind: str | None = None) -> list[QGraphicsItem]:
        """Overlay items of one kind ('box', 'polygon', 'mask', 'label') or all."""
        items = (item for items in self.items_by_id.values() for item in items)
        return [item for item in items if kind is None or item.data(KIND) == kind]

    def bounds_of(self, ann_id: int) -> QRectF | None:
        """Where an annotation's shapes (not its label) are, in scene coordinates."""
        items = [i for i in self.items_by_id.get(ann_id, []) if i.data(KIND) != "label"]
        if not items:
            return None
        rect = items[0].sceneBoundingRect()
        for item in items[1:]:
            rect = rect.united(item.sceneBoundingRect())
        return rect

    @staticmethod
    def prediction_among(items: Iterable[QGraphicsItem]) -> int | None:
        """The shown prediction meant among the items under the cursor (its tag, else the smallest shape)."""
        best, best_area = None, math.inf
        for item in items:
            k = item.data(PREDICTION)
            if k is None or not item.isVisible():
                continue
            rect = item.sceneBoundingRect()
            area = -1.0 if item.data(KIND) == "pred_label" else rect.width() * rect.height()
            if area < best_area:
                best, best_area = k, area
        return best

    @staticmethod
    def annotation_among(items: Iterable[QGraphicsItem]) -> int | None:
        """The annotation meant among the items under the cursor: of overlapping ones the smallest."""
        best, best_area = None, math.inf
        for item in items:
            ann_id = item.data(ANN_ID)
            if ann_id is None:
                continue
            rect = item.sceneBoundingRect() if item.data(KIND) != "label" else QRectF()
            area = rect.width() * rect.height()
            if item.data(KIND) == "label":
                area = -1.0  # a label names exactly one annotation
            if area < best_area:
                best, best_area = ann_id, area
        return best


def predicted_mask_images(
    masks: list[tuple[int, dict, tuple[int, int, int]]], cancel: threading.Event
) -> list[tuple[int, int, int, QImage]] | None:
    """For a worker: each (index, RLE, colour) as (index, top-left x, y, opaque coloured image); None once cancelled."""
    from pycocotools import mask as mask_utils

    found = []
    for k, rle, rgb in masks:
        if cancel.is_set():
            return None
        region = mask_utils.decode(rle).astype(bool)
        ys, xs = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
        if len(ys) == 0:
            continue
        y0, y1, x0, x1 = int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1
        crop = region[y0:y1, x0:x1]
        rgba = np.zeros((*crop.shape, 4), np.uint8)
        rgba[..., :3] = rgb
        rgba[..., 3] = np.where(crop, PREDICTED_MASK_ALPHA, 0)
        image = QImage(rgba.data, crop.shape[1], crop.shape[0], 4 * crop.shape[1], QImage.Format.Format_RGBA8888)
        found.append((k, x0, y0, image.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)))
    return found
