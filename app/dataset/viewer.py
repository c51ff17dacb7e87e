"""One image with its annotations drawn over it: zoom, pan, toggles, details on hover.

Boxes, polygons and labels come straight from the index arrays and are drawn at
once on the GUI thread (cheap), so they are there even while, or when, the image
cannot be read. Decoding the image and the RLE masks is slow for large files and
runs in a background task; its result is dropped when a newer image was asked
for meanwhile. Everything is in the JSON's pixel coordinates.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QThreadPool, Signal
from PySide6.QtGui import (QBrush, QColor, QFont, QFontMetricsF, QIcon, QImage, QPainter, QPen, QPixmap,
                           QPolygonF, QTransform)
from PySide6.QtWidgets import (QCheckBox, QGraphicsItem, QGraphicsPixmapItem, QGraphicsPolygonItem,
                               QGraphicsRectItem, QGraphicsScene, QGraphicsView, QHBoxLayout, QLabel,
                               QListWidget, QListWidgetItem, QSplitter, QStyle, QStyleOptionGraphicsItem,
                               QToolButton, QVBoxLayout, QWidget)

from engine.data.coco_index import SEG_POLYGON, SEG_RLE, CocoIndex
from engine.data.images import ImageReadError, load_image
from engine.data.masks import annotation_mask
from engine.data.health import plural
from engine.data.paths import UnsafeFileName

from .session import DatasetSession, ImageRef
from ..widgets.colours import UNKNOWN_RGB, category_colour, text_colour
from ..widgets.elided_label import ElidedLabel
from ..widgets.workers import BackgroundTask, run_in_background

# Item data keys: which annotation an overlay item draws, and how.
ANN_ID, KIND, CATEGORY, COLOUR, CROWD = range(5)
LAYERS = ("boxes", "masks", "labels")
LAYER_KEYS = {Qt.Key.Key_B: "boxes", Qt.Key.Key_M: "masks", Qt.Key.Key_L: "labels"}  # toggle keys
_LAYER_OF = {"box": "boxes", "polygon": "masks", "mask": "masks", "label": "labels"}
_Z = {"image": 0, "mask": 1, "polygon": 2, "box": 3, "label": 4}
UNKNOWN_COLOUR = QColor(*UNKNOWN_RGB)
LABELS_AT_FULL_OPACITY = 30  # more labels than this on one image fade
MIN_LABEL_SCALE = 0.6  # labels shrink to fit their box, down to this
_FIT_MARGIN = 28  # view pixels around a fitted image, room for labels on boxes at the top edge


# ---------------------------------------------------------------------- background work
@dataclass
class _Prepared:
    """What the worker hands back: the image (or why not) and the RLE masks as images."""

    request: int
    image: QImage | None = None
    error: str | None = None
    # (annotation row, top-left x, top-left y, mask image cropped to its extent)
    masks: list[tuple[int, int, int, QImage]] = field(default_factory=list)
    mask_problems: list[str] = field(default_factory=list)


def _rgb_to_qimage(rgb: np.ndarray) -> QImage:
    h, w, _ = rgb.shape
    # copy(): the QImage must own its pixels once the numpy array is gone.
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def _mask_to_qimage(mask: np.ndarray, rgb: tuple[int, int, int], crowd: bool) -> tuple[int, int, QImage] | None:
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


def _prepare(request: int, path: Path, index: CocoIndex, mask_specs: list[tuple[int, tuple, bool]],
             cancel: threading.Event) -> _Prepared | None:
    """Decode the image and the RLE masks (worker thread: engine code and QImage only)."""
    result = _Prepared(request)
    if cancel.is_set():
        return None
    try:
        result.image = _rgb_to_qimage(load_image(path))
    except ImageReadError as exc:
        result.error = exc.reason
    except OSError as exc:  # e.g. the folder vanished
        result.error = exc.strerror or str(exc)
    for ann_row, rgb, crowd in mask_specs:
        if cancel.is_set():
            return None
        ann_id = int(index.ann_ids[ann_row])
        try:
            cropped = _mask_to_qimage(annotation_mask(index, ann_row), rgb, crowd)
        except Exception as exc:  # a malformed RLE must not hide the others
            result.mask_problems.append(f"annotation {ann_id}: mask not drawn: {exc}")
            continue
        if cropped is not None:
            result.masks.append((ann_row, *cropped))
    return result


# ---------------------------------------------------------------------- scene items
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

    def __init__(self, text: str, colour: QColor, box_width: float | None = None):
        super().__init__()
        self.text = text
        self.box_width = box_width  # in image pixels: how much room the tag has on screen
        self.colour = QColor(colour)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.font = QFont()
        self.font.setPointSizeF(9)
        self.font.setBold(True)
        metrics = QFontMetricsF(self.font)
        w, h = metrics.horizontalAdvance(text) + 8, metrics.height() + 2
        self._rect = QRectF(0, -h, w, h)

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(self, painter: QPainter, option, widget=None):
        painter.setPen(QPen(self.colour.darker(160), 1.5 if self.isSelected() else 0))
        painter.setBrush(self.colour)
        painter.drawRect(self._rect)
        painter.setPen(text_colour(self.colour))
        painter.setFont(self.font)
        painter.drawText(self._rect, Qt.AlignmentFlag.AlignCenter, self.text)


# ---------------------------------------------------------------------- the view
class _View(QGraphicsView):
    """Wheel zoom around the cursor, drag to pan, keys and hover reported to the viewer."""

    MIN_SCALE, MAX_SCALE = 0.01, 64.0

    def __init__(self, owner: "ImageViewer"):
        super().__init__()
        self.owner = owner
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        # Clicks and hovers are handled here rather than by the items, so dragging on an
        # annotation pans instead of grabbing it.
        self.setInteractive(False)
        self.viewport().setMouseTracking(True)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        # Panning works without scrollbars; hiding them keeps a fitted image uncluttered.
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.setBackgroundBrush(QColor(48, 48, 52))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._press_pos = None

    def scale_factor(self) -> float:
        return self.transform().m11()

    def zoom(self, factor: float, *, under_mouse: bool = True) -> None:
        factor = min(max(factor, self.MIN_SCALE / self.scale_factor()), self.MAX_SCALE / self.scale_factor())
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse if under_mouse
                                     else QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.scale(factor, factor)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.owner._auto_fit = False
        self.owner._update_label_density()

    def zoom_at(self, factor: float, pos: QPointF) -> None:
        """Zoom keeping the scene point under viewport position ``pos`` where it is."""
        factor = min(max(factor, self.MIN_SCALE / self.scale_factor()), self.MAX_SCALE / self.scale_factor())
        anchor = self.mapToScene(pos.toPoint())
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.scale(factor, factor)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        # Centre the view so that the anchor lands back under the cursor (works whether or
        # not the mouse moved before the wheel turned, which AnchorUnderMouse needs).
        scale = self.scale_factor()
        middle = QPointF(self.viewport().width() / 2, self.viewport().height() / 2)
        self.centerOn(anchor - (pos - middle) / scale)
        self.owner._auto_fit = False
        self.owner._update_label_density()

    def wheelEvent(self, event):
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom_at(1.25 ** steps, event.position())
        event.accept()

    def mouseDoubleClickEvent(self, event):
        self.owner.fit()

    def mousePressEvent(self, event):
        self._press_pos = event.position()
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event):
        super().mouseReleaseEvent(event)
        start, self._press_pos = self._press_pos, None
        # A press and release in about the same place is a click, not the end of a drag.
        if (event.button() == Qt.MouseButton.LeftButton and start is not None
                and (event.position() - start).manhattanLength() < 4):
            self.owner._clicked(self.mapToScene(event.position().toPoint()), event.position().toPoint())

    def mouseMoveEvent(self, event):
        super().mouseMoveEvent(event)
        if not event.buttons():
            self.owner._hovered(event.position().toPoint())

    def keyPressEvent(self, event):
        if not self.owner._handle_key(event):
            super().keyPressEvent(event)

    def resizeEvent(self, event):
        super().resizeEvent(event)
        if self.owner._auto_fit:
            self.owner.fit()


# ---------------------------------------------------------------------- the widget
class ImageViewer(QWidget):
    """An image of the dataset with its annotations; next/previous through a list of refs."""

    current_changed = Signal(object)  # ImageRef, after next()/previous()
    image_loaded = Signal(object)  # ImageRef, once the image (or its error) is on the scene

    def __init__(self, parent=None):
        super().__init__(parent)
        self.session: DatasetSession | None = None
        self.ref: ImageRef | None = None
        self._refs: list[ImageRef] = []
        self._position = -1
        self._request = 0
        self._loading = False
        self._tasks: list[BackgroundTask] = []
        # Its own small pool: fast browsing must not queue behind dataset checks on the global one.
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)
        self._auto_fit = True
        self._content = QRectF()
        self._category_visible: dict[str, bool] = {}
        self._layer_visible = {name: True for name in LAYERS}
        self._colours: dict[str, QColor] = {}
        self._items: dict[int, list[QGraphicsItem]] = {}  # annotation id -> its overlay items
        self._ann_rows: dict[int, int] = {}
        self._selected: int | None = None
        self._pending_centre: int | None = None
        self._image_notes: list[str] = []
        self.image_item: QGraphicsPixmapItem | None = None
        self.placeholder: QGraphicsRectItem | None = None

        self.scene = QGraphicsScene(self)
        self.view = _View(self)
        self.view.setScene(self.scene)

        # Errors read better in a widget above the view than painted into a zoomable scene.
        self.message = QLabel()
        self.message.setObjectName("viewerMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setStyleSheet("#viewerMessage { background: #fdecea; color: #8a1c1c; padding: 6px; "
                                   "border: 1px solid #f5c2c0; border-radius: 3px; }")
        self.message.hide()

        self.prev_button = QToolButton(text="◀")
        self.prev_button.setToolTip("Previous image (Left, PageUp)")
        self.prev_button.clicked.connect(self.previous)
        self.next_button = QToolButton(text="▶")
        self.next_button.setToolTip("Next image (Right, PageDown)")
        self.next_button.clicked.connect(self.next)
        fit_button = QToolButton(text="Fit")
        fit_button.setToolTip("Fit the image in the view (F, double-click)")
        fit_button.clicked.connect(self.fit)
        self.position_label = ElidedLabel()  # a long file name must not widen the window
        nav = QHBoxLayout()
        nav.setContentsMargins(0, 0, 0, 0)
        nav.addWidget(self.prev_button)
        nav.addWidget(self.next_button)
        nav.addWidget(self.position_label, 1)
        nav.addWidget(fit_button)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.message)
        left_layout.addWidget(self.view, 1)
        left_layout.addLayout(nav)

        self.layer_boxes: dict[str, QCheckBox] = {}
        toggles = QHBoxLayout()
        for name in LAYERS:
            box = QCheckBox(name.capitalize())
            box.setToolTip(f"Show {name} (key {name[0].upper()})")
            box.setChecked(True)
            box.toggled.connect(lambda on, n=name: self.set_layer_visible(n, on))
            self.layer_boxes[name] = box
            toggles.addWidget(box)
        self.category_list = QListWidget()
        self.category_list.setToolTip("Untick a category to hide its annotations")
        self.category_list.itemChanged.connect(self._category_item_changed)
        self.image_info = QLabel()
        self.image_info.setWordWrap(True)
        self.image_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.info = QLabel("Hover over or click an annotation to see its fields.")
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.info.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)

        panel = QWidget()
        panel_layout = QVBoxLayout(panel)
        panel_layout.setContentsMargins(4, 0, 0, 0)
        panel_layout.addLayout(toggles)
        panel_layout.addWidget(QLabel("<b>Categories</b>"))
        panel_layout.addWidget(self.category_list, 1)
        panel_layout.addWidget(QLabel("<b>Image</b>"))
        panel_layout.addWidget(self.image_info)
        panel_layout.addWidget(QLabel("<b>Annotation</b>"))
        panel_layout.addWidget(self.info, 1)
        panel.setMinimumWidth(220)

        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(panel)
        splitter.setStretchFactor(0, 1)
        splitter.setSizes([760, 240])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self._update_position()

    # ------------------------------------------------------------------ navigation
    def set_refs(self, refs: list[ImageRef], current: ImageRef | None = None) -> None:
        """The images next()/previous() walk through, and where in them we are."""
        self._refs = list(refs)
        self._position = self._refs.index(current) if current in self._refs else (0 if self._refs else -1)
        self._update_position()

    def next(self) -> None:
        self._step(+1)

    def previous(self) -> None:
        self._step(-1)

    def _step(self, delta: int) -> None:
        target = self._position + delta
        if not 0 <= target < len(self._refs):
            return
        self._position = target
        ref = self._refs[target]
        if self.session is not None:
            self.show_image(self.session, ref)
        else:
            self._update_position()
        self.current_changed.emit(ref)

    def _update_position(self) -> None:
        n = len(self._refs)
        self.prev_button.setEnabled(self._position > 0)
        self.next_button.setEnabled(0 <= self._position < n - 1)
        if self.ref is None:
            self.position_label.setText("No image")
            return
        where = f"{self._position + 1} / {n}   " if 0 <= self._position < n else ""
        name = self.session.index(self.ref.split).file_names[self.ref.row] if self.session else ""
        self.position_label.setText(f"{where}{self.ref.split} / {name}")

    def _handle_key(self, event) -> bool:
        key = event.key()
        if key in (Qt.Key.Key_Right, Qt.Key.Key_PageDown):
            self.next()
        elif key in (Qt.Key.Key_Left, Qt.Key.Key_PageUp):
            self.previous()
        elif key == Qt.Key.Key_F:
            self.fit()
        elif key in LAYER_KEYS:
            layer = LAYER_KEYS[key]
            self.set_layer_visible(layer, not self._layer_visible[layer])
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_in()
        elif key in (Qt.Key.Key_Minus, Qt.Key.Key_Underscore):
            self.zoom_out()
        else:
            return False
        return True

    def keyPressEvent(self, event):
        # Keys the side panel did not use (it keeps the arrows for its list).
        if not self._handle_key(event):
            super().keyPressEvent(event)

    # ------------------------------------------------------------------ zoom
    def zoom_in(self) -> None:
        self.view.zoom(1.25, under_mouse=False)

    def zoom_out(self) -> None:
        self.view.zoom(0.8, under_mouse=False)

    def fit(self) -> None:
        """Show the whole image, with a margin for labels; stays fitted when the view resizes."""
        self._auto_fit = True
        if self._content.isEmpty():
            return
        port = self.view.viewport().rect()
        scale = min((port.width() - 2 * _FIT_MARGIN) / self._content.width(),
                    (port.height() - 2 * _FIT_MARGIN) / self._content.height())
        self.view.setTransform(QTransform.fromScale(max(scale, _View.MIN_SCALE), max(scale, _View.MIN_SCALE)))
        self.view.centerOn(self._content.center())
        self._update_label_density()

    # ------------------------------------------------------------------ loading
    def show_image(self, session: DatasetSession, ref: ImageRef) -> None:
        """Show ``ref``: overlays at once, the image and masks when the background task is done."""
        if session is not self.session:
            self.session = session
            self._set_categories(session)
        self.ref = ref
        if ref in self._refs:
            self._position = self._refs.index(ref)
        self._request += 1
        for task in self._tasks:
            task.cancel()
        self._tasks = [t for t in self._tasks if not t.done.is_set()]  # running ones must stay referenced
        self._loading = True
        index = session.index(ref.split)
        self._build_scene(index, ref)
        mask_specs = []
        for ann_row in index.annotation_rows(ref.row):
            if index.ann_seg_kind[ann_row] == SEG_RLE:
                colour = self._colour_of_row(index, ann_row)
                mask_specs.append((ann_row, (colour.red(), colour.green(), colour.blue()),
                                   bool(index.ann_iscrowd[ann_row])))
        try:
            path = session.image_path(ref)
        except UnsafeFileName as exc:
            self._refuse(exc)
            return
        self._tasks.append(run_in_background(
            _prepare, self._request, path, index, mask_specs,
            on_done=self._prepared, on_error=lambda message, r=self._request: self._prepare_failed(r, message),
            pool=self._pool))
        self._update_position()
        self._update_image_info()
        self._auto_fit = True
        self.fit()

    def _refuse(self, exc: UnsafeFileName) -> None:
        """Never open a file outside the dataset: say why, and draw the boxes on the placeholder."""
        self._loading = False
        self._image_notes = []
        self.message.setText(f"Refused to open '{exc.file_name}': {exc.reason}.\n"
                             "The annotations are drawn on a grey placeholder of the size the JSON gives.")
        self.message.show()
        self._update_position()
        self._update_image_info()
        self._auto_fit = True
        self.fit()

    def is_loading(self) -> bool:
        return self._loading

    def _prepared(self, result: _Prepared | None) -> None:
        if result is None or result.request != self._request or self.session is None:
            return  # cancelled, or an older request: a newer image is on its way
        self._loading = False
        index = self.session.index(self.ref.split)
        json_size = (int(index.image_width[self.ref.row]), int(index.image_height[self.ref.row]))
        self._image_notes = list(result.mask_problems)
        if result.image is None:
            path = self.session.image_path(self.ref)
            self.message.setText(f"Cannot show {path}:\n{result.error}\n"
                                 "The annotations are drawn on a grey placeholder of the size the JSON gives.")
            self.message.show()
        else:
            self.message.hide()
            self.image_item = QGraphicsPixmapItem(QPixmap.fromImage(result.image))
            self.image_item.setTransformationMode(Qt.TransformationMode.FastTransformation)  # see the pixels
            self.image_item.setZValue(_Z["image"])
            self.scene.addItem(self.image_item)
            if self.placeholder is not None:
                self.placeholder.hide()
            size = (result.image.width(), result.image.height())
            if size != json_size:
                self._image_notes.insert(0, f"The file is {size[0]}×{size[1]} but the JSON says "
                                            f"{json_size[0]}×{json_size[1]}; annotations are drawn in JSON "
                                            "coordinates.")
                self._set_content(QRectF(0, 0, *json_size).united(QRectF(0, 0, *size)))
        for row, x0, y0, image in result.masks:
            item = _MaskItem(QPixmap.fromImage(image))
            item.setOffset(x0, y0)
            self._add_overlay(item, index, row, "mask")
        self._apply_visibility()
        if self._selected is not None:
            self._style_selection(self._selected, True)
        self._update_image_info()
        if self._auto_fit:
            self.fit()
        if self._pending_centre is not None:
            self._centre_on(self._pending_centre)  # again: a mismatched image size moved the fit
            self._pending_centre = None
        self.image_loaded.emit(self.ref)

    def _prepare_failed(self, request: int, message: str) -> None:
        # An unexpected error in the worker (not a bad image, which _prepare reports itself).
        if request != self._request:
            return
        self._loading = False
        self.message.setText(f"Cannot show this image: {message}")
        self.message.show()
        self.image_loaded.emit(self.ref)

    # ------------------------------------------------------------------ scene
    def _set_content(self, rect: QRectF) -> None:
        self._content = rect
        # Room around the image so it can be panned to the middle at any zoom.
        pad = max(rect.width(), rect.height())
        self.scene.setSceneRect(rect.adjusted(-pad, -pad, pad, pad))

    def _build_scene(self, index: CocoIndex, ref: ImageRef) -> None:
        self.scene.clear()
        self._items.clear()
        self._ann_rows.clear()
        self._selected = self._pending_centre = None
        self._image_notes = []
        self.image_item = None
        self.message.hide()
        self.info.setText("Hover over or click an annotation to see its fields.")
        width, height = int(index.image_width[ref.row]), int(index.image_height[ref.row])
        self._set_content(QRectF(0, 0, max(width, 1), max(height, 1)))
        # Grey until the pixels arrive (or for good, when they cannot be read).
        self.placeholder = QGraphicsRectItem(0, 0, width, height)
        self.placeholder.setBrush(QColor(90, 90, 96))
        self.placeholder.setPen(Qt.PenStyle.NoPen)
        self.placeholder.setZValue(-1)
        self.scene.addItem(self.placeholder)
        counts: dict[str, int] = {}
        for ann_row in index.annotation_rows(ref.row):
            ann_id = int(index.ann_ids[ann_row])
            self._ann_rows[ann_id] = ann_row
            self._items[ann_id] = []
            name = self._category_name(index, ann_row)
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
                label = _LabelItem(name, self._colour_of_row(index, ann_row), float(w) if has_box else None)
                label.setPos(corner)
                self._add_overlay(label, index, ann_row, "label")
        self._show_counts(counts)
        self._apply_visibility()
        self._update_label_density()

    def _add_overlay(self, item: QGraphicsItem, index: CocoIndex, ann_row: int, kind: str) -> None:
        ann_id = int(index.ann_ids[ann_row])
        item.setData(ANN_ID, ann_id)
        item.setData(KIND, kind)
        item.setData(CATEGORY, self._category_name(index, ann_row))
        item.setData(COLOUR, self._colour_of_row(index, ann_row))
        item.setData(CROWD, bool(index.ann_iscrowd[ann_row]))
        item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        item.setZValue(_Z[kind])
        self._style(item, selected=False)
        self.scene.addItem(item)
        self._items.setdefault(ann_id, []).append(item)

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

    # ------------------------------------------------------------------ categories and layers
    def _set_categories(self, session: DatasetSession) -> None:
        names = session.category_names()
        self._colours = {name: category_colour(i) for i, name in enumerate(names)}
        self.category_list.blockSignals(True)
        self.category_list.clear()
        for name in names:
            item = QListWidgetItem(name)
            item.setData(Qt.ItemDataRole.UserRole, name)
            swatch = QPixmap(14, 14)
            swatch.fill(self._colours[name])
            item.setIcon(QIcon(swatch))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if self._category_visible.setdefault(name, True)
                               else Qt.CheckState.Unchecked)
            self.category_list.addItem(item)
        self.category_list.blockSignals(False)

    def _show_counts(self, counts: dict[str, int]) -> None:
        """Category names with how many annotations of each this image has."""
        self.category_list.blockSignals(True)
        for i in range(self.category_list.count()):
            item = self.category_list.item(i)
            name = item.data(Qt.ItemDataRole.UserRole)
            item.setText(f"{name}  ({counts[name]})" if counts.get(name) else name)
        self.category_list.blockSignals(False)

    def _category_name(self, index: CocoIndex, ann_row: int) -> str:
        label = int(index.ann_label[ann_row])
        if label < 0:
            return f"unknown category {int(index.ann_category_id[ann_row])}"
        return index.category_names[label]

    def _colour_of_row(self, index: CocoIndex, ann_row: int) -> QColor:
        return QColor(self._colours.get(self._category_name(index, ann_row), UNKNOWN_COLOUR))

    def category_colour_of(self, name: str) -> QColor:
        return QColor(self._colours.get(name, UNKNOWN_COLOUR))

    def set_category_visible(self, name: str, visible: bool) -> None:
        self._category_visible[name] = visible
        for i in range(self.category_list.count()):
            item = self.category_list.item(i)
            if item.data(Qt.ItemDataRole.UserRole) == name:
                self.category_list.blockSignals(True)
                item.setCheckState(Qt.CheckState.Checked if visible else Qt.CheckState.Unchecked)
                self.category_list.blockSignals(False)
        self._apply_visibility()

    def is_category_visible(self, name: str) -> bool:
        return self._category_visible.get(name, True)

    def _category_item_changed(self, item: QListWidgetItem) -> None:
        self.set_category_visible(item.data(Qt.ItemDataRole.UserRole), item.checkState() == Qt.CheckState.Checked)

    def set_layer_visible(self, layer: str, visible: bool) -> None:
        """Show or hide all 'boxes', 'masks' (polygons and RLE) or 'labels'."""
        if layer not in self._layer_visible:
            raise ValueError(f"unknown layer '{layer}'; use one of {', '.join(LAYERS)}")
        self._layer_visible[layer] = visible
        box = self.layer_boxes[layer]
        if box.isChecked() != visible:
            box.setChecked(visible)
        self._apply_visibility()

    def _update_label_density(self) -> None:
        """Labels shrink to fit their box on screen and fade when there are many of them.

        With a few dozen boxes every tag is fully drawn; with hundreds they would cover the
        image, so they fade (hover or click still names an annotation) and tags of boxes
        too small on screen almost vanish.
        """
        labels = [item for items in self._items.values() for item in items if item.data(KIND) == "label"]
        if not labels:
            return
        scale = self.view.scale_factor()
        crowd = 1.0 if len(labels) <= LABELS_AT_FULL_OPACITY else max(0.35, (LABELS_AT_FULL_OPACITY / len(labels)) ** 0.5)
        for label in labels:
            full = label.boundingRect().width()
            if label.box_width is None:
                label.setScale(1.0)
                label.setOpacity(crowd)
                continue
            room = label.box_width * scale / full
            label.setScale(min(1.0, max(MIN_LABEL_SCALE, room)))
            label.setOpacity(1.0 if label.isSelected() else (crowd if room >= MIN_LABEL_SCALE else min(crowd, 0.2)))

    def _apply_visibility(self) -> None:
        for items in self._items.values():
            for item in items:
                item.setVisible(self._layer_visible[_LAYER_OF[item.data(KIND)]]
                                and self._category_visible.get(item.data(CATEGORY), True))

    # ------------------------------------------------------------------ items, for callers and tests
    def overlay_items(self, kind: str | None = None) -> list[QGraphicsItem]:
        """Overlay items of one kind ('box', 'polygon', 'mask', 'label') or all."""
        return [item for items in self._items.values() for item in items if kind is None or item.data(KIND) == kind]

    def items_of(self, ann_id: int) -> list[QGraphicsItem]:
        return list(self._items.get(ann_id, []))

    def selected_annotation(self) -> int | None:
        return self._selected

    # ------------------------------------------------------------------ selection and details
    def highlight_annotation(self, ann_id: int) -> bool:
        """Select an annotation and centre the view on it (False when this image has no such id)."""
        if ann_id not in self._items:
            self.info.setText(f"Annotation {ann_id} is not among this image's indexed annotations.")
            return False
        self._select(ann_id)
        self._pending_centre = ann_id
        self._centre_on(ann_id)
        return True

    def _select(self, ann_id: int | None) -> None:
        if self._selected is not None:
            self._style_selection(self._selected, False)
        self._selected = ann_id
        if ann_id is not None:
            self._style_selection(ann_id, True)
            self._show_fields(ann_id)

    def _style_selection(self, ann_id: int, selected: bool) -> None:
        for item in self._items.get(ann_id, []):
            self._style(item, selected)

    def _centre_on(self, ann_id: int) -> None:
        items = [i for i in self._items.get(ann_id, []) if i.data(KIND) != "label"]
        if not items:
            return
        rect = items[0].sceneBoundingRect()
        for item in items[1:]:
            rect = rect.united(item.sceneBoundingRect())
        # Zoom in on small annotations so they can be seen; never zoom out past the fit.
        target = rect.adjusted(-rect.width(), -rect.height(), rect.width(), rect.height())
        if target.width() < self._content.width() and target.height() < self._content.height():
            self.view.fitInView(target, Qt.AspectRatioMode.KeepAspectRatio)
            self._auto_fit = False
        self.view.centerOn(rect.center())

    def _annotation_at(self, view_pos) -> int | None:
        """The annotation under the cursor; of overlapping ones the smallest, usually the one meant."""
        best, best_area = None, math.inf
        for item in self.view.items(view_pos):
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

    def _hovered(self, view_pos) -> None:
        ann_id = self._annotation_at(view_pos)
        if ann_id is not None:
            self._show_fields(ann_id)
        elif self._selected is not None:
            self._show_fields(self._selected)

    def _clicked(self, scene_pos: QPointF, view_pos) -> None:
        self._select(self._annotation_at(view_pos))

    def annotation_fields(self, ann_id: int) -> dict:
        """The fields the info panel shows for one annotation of the current image."""
        index = self.session.index(self.ref.split)
        row = self._ann_rows[ann_id]
        kind = int(index.ann_seg_kind[row])
        if kind == SEG_POLYGON:
            polys = index.polygons(row)
            segmentation = f"polygon ({len(polys)} part{'s' if len(polys) != 1 else ''})"
        elif kind == SEG_RLE:
            counts = (index.segmentation(row) or {}).get("counts")
            segmentation = "RLE (uncompressed)" if isinstance(counts, list) else "RLE (compressed)"
        else:
            segmentation = "none"
        area = float(index.ann_area[row])
        return {
            "id": ann_id,
            "category": self._category_name(index, row),
            "category_id": int(index.ann_category_id[row]),
            "bbox": [float(v) for v in index.ann_bbox[row]],
            "area": None if math.isnan(area) else area,
            "iscrowd": int(index.ann_iscrowd[row]),
            "segmentation": segmentation,
        }

    def _show_fields(self, ann_id: int) -> None:
        f = self.annotation_fields(ann_id)
        bbox = ("missing" if math.isnan(f["bbox"][0])
                else "x {:.1f}, y {:.1f}, w {:.1f}, h {:.1f}".format(*f["bbox"]))
        area = "missing" if f["area"] is None else f"{f['area']:.1f}"
        selected = "  (selected)" if ann_id == self._selected else ""
        self.info.setText(f"id: {f['id']}{selected}\ncategory: {f['category']} (id {f['category_id']})\n"
                          f"bbox: {bbox}\narea: {area}\niscrowd: {f['iscrowd']}\n"
                          f"segmentation: {f['segmentation']}")

    def _update_image_info(self) -> None:
        if self.session is None or self.ref is None:
            self.image_info.clear()
            return
        index = self.session.index(self.ref.split)
        row = self.ref.row
        name = index.file_names[row]
        # Long names are elided in the middle (start and extension stay); the tooltip has it whole.
        room = max(80, self.image_info.width() - 8)
        shown = QFontMetricsF(self.image_info.font()).elidedText(name, Qt.TextElideMode.ElideMiddle, room * 0.8)
        self.image_info.setToolTip(f"{self.session.image_dir(self.ref.split)}/{name}")
        lines = [f"{shown} (id {int(index.image_ids[row])}, {self.ref.split})",
                 f"JSON size: {int(index.image_width[row])}×{int(index.image_height[row])}",
                 plural(len(self._items), 'annotation') + (" — loading image…" if self._loading else "")]
        lines += self._image_notes
        problems = self.session.problems_of(self.ref)
        if problems:
            lines.append(f"{plural(len(problems), 'problem')}:")
            lines += [f"• {p.message}" for p in problems[:5]]
            if len(problems) > 5:
                lines.append(f"… and {len(problems) - 5} more (see Health)")
        self.image_info.setText("\n".join(lines))
