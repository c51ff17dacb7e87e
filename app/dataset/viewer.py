"""One image with its annotations drawn over it: zoom, pan, toggles, details on hover.

The parts: ``zoom_view`` (wheel zoom, drag to pan), ``viewer_state`` (Qt-free: which image,
layers, categories, selection, fit), ``viewer_scene`` (the image's overlays as graphics
items), ``viewer_decode`` (the image file and RLE masks, decoded in a worker whose result
is dropped when a newer image was asked for meanwhile). This module is the widget that
wires them: the view, navigation, the side panel with the toggles, the category list and
the details.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRectF, Qt, QThreadPool, Signal
from PySide6.QtGui import QColor, QFontMetricsF, QIcon, QPixmap, QTransform
from PySide6.QtWidgets import (
    QCheckBox,
    QGraphicsItem,
    QGraphicsPixmapItem,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.data.paths import UnsafeFileName

from ..widgets.elided_label import ElidedLabel
from ..widgets.task_slot import TaskSlot
from .prediction_panel import PredictionPanel
from .predictions import Prediction, describe
from .session import DatasetSession, ImageRef
from .viewer_decode import Decoded, decode
from .viewer_scene import AnnotationScene, predicted_mask_images
from .viewer_state import LAYERS, ViewerState, annotation_fields, fields_text
from .zoom_view import ZoomView

LAYER_KEYS = {Qt.Key.Key_B: "boxes", Qt.Key.Key_M: "masks", Qt.Key.Key_L: "labels"}  # toggle keys
# G: ground truth, P: predictions (while predictions are loaded)
_FIT_MARGIN = 28  # view pixels around a fitted image, room for labels on boxes at the top edge
_HOVER_HINT = "Hover over or click an annotation to see its fields."


class ImageViewer(QWidget):
    """An image of the dataset with its annotations; next/previous through a list of refs."""

    current_changed = Signal(object)  # ImageRef, after next()/previous()
    image_loaded = Signal(object)  # ImageRef, once the image (or its error) is on the scene

    def __init__(self, parent=None):
        super().__init__(parent)
        self.state = ViewerState()
        self.state.visibility_changed.connect(self._apply_visibility)
        self.state.selection_changed.connect(self._selection_changed)
        self.state.position_changed.connect(self._update_position)
        self.state.predictions_changed.connect(self._predictions_changed)
        # Its own small pool: fast browsing must not queue behind dataset checks on the global one.
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)
        self._decoding = TaskSlot(self, pool=self._pool)
        self._predicted_masks = TaskSlot(self, pool=self._pool)
        self._pending_centre: int | None = None  # an annotation to centre on once the image is in

        self.scene = AnnotationScene(self)
        self.view = ZoomView(self._handle_key)
        self.view.setScene(self.scene)
        self.view.zoomed.connect(self._user_zoomed)
        self.view.clicked.connect(lambda pos: self.state.select(self._annotation_at(pos)))
        self.view.hovered.connect(self._hovered)
        self.view.double_clicked.connect(self.fit)
        self.view.resized.connect(self._view_resized)

        # Errors read better in a widget above the view than painted into a zoomable scene.
        self.message = QLabel()
        self.message.setObjectName("viewerMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setStyleSheet(
            "#viewerMessage { background: #fdecea; color: #8a1c1c; padding: 6px; "
            "border: 1px solid #f5c2c0; border-radius: 3px; }"
        )
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
        self.info = QLabel(_HOVER_HINT)
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.info.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)

        panel = QWidget()
        panel_layout = QVBoxLayout(panel)
        panel_layout.setContentsMargins(4, 0, 0, 0)
        panel_layout.addLayout(toggles)
        self.prediction_panel = PredictionPanel(self.state)
        panel_layout.addWidget(self.prediction_panel)
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

    # ------------------------------------------------------------------ what callers read
    @property
    def session(self) -> DatasetSession | None:
        return self.state.session

    @property
    def ref(self) -> ImageRef | None:
        return self.state.ref

    @property
    def image_item(self) -> QGraphicsPixmapItem | None:
        return self.scene.image_item

    def is_loading(self) -> bool:
        return self.state.loading

    def overlay_items(self, kind: str | None = None) -> list[QGraphicsItem]:
        """Overlay items of one kind ('box', 'polygon', 'mask', 'label') or all."""
        return self.scene.overlay_items(kind)

    def items_of(self, ann_id: int) -> list[QGraphicsItem]:
        return list(self.scene.items_by_id.get(ann_id, []))

    def prediction_items(self, kind: str | None = None) -> list[QGraphicsItem]:
        """Prediction items of one kind ('pred_box', 'pred_mask', 'pred_label', 'pred_frame') or all."""
        return self.scene.predicted_items(kind)

    def selected_annotation(self) -> int | None:
        return self.state.selected

    def category_colour_of(self, name: str) -> QColor:
        return self.scene.colour_of(name)

    def is_category_visible(self, name: str) -> bool:
        return self.state.is_category_visible(name)

    def annotation_fields(self, ann_id: int) -> dict:
        """The fields the info panel shows for one annotation of the current image."""
        return annotation_fields(self.session.index(self.ref.split), self.scene.ann_rows[ann_id])

    # ------------------------------------------------------------------ navigation
    def set_refs(self, refs: list[ImageRef], current: ImageRef | None = None) -> None:
        """The images next()/previous() walk through, and where in them we are."""
        self.state.set_refs(refs, current)

    def next(self) -> None:
        self._step(+1)

    def previous(self) -> None:
        self._step(-1)

    def _step(self, delta: int) -> None:
        ref = self.state.step(delta)
        if ref is None:
            return
        if self.session is not None:
            self.show_image(self.session, ref)
        else:
            self._update_position()
        self.current_changed.emit(ref)

    def _update_position(self) -> None:
        self.prev_button.setEnabled(self.state.can_go(-1))
        self.next_button.setEnabled(self.state.can_go(+1))
        self.position_label.setText(self.state.position_text())

    def _handle_key(self, event) -> bool:
        key = event.key()
        if key in (Qt.Key.Key_Right, Qt.Key.Key_PageDown):
            self.next()
        elif key in (Qt.Key.Key_Left, Qt.Key.Key_PageUp):
            self.previous()
        elif key == Qt.Key.Key_F:
            self.fit()
        elif key == Qt.Key.Key_G and self.state.has_predictions:
            self.state.set_truth_visible(not self.state.show_truth)
        elif key == Qt.Key.Key_P and self.state.has_predictions:
            self.state.set_predictions_visible(not self.state.show_predictions)
        elif key in LAYER_KEYS:
            layer = LAYER_KEYS[key]
            self.set_layer_visible(layer, not self.state.layers[layer])
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
        self.state.fitted = True
        content = self.scene.content
        if content.isEmpty():
            return
        port = self.view.viewport().rect()
        scale = min(
            (port.width() - 2 * _FIT_MARGIN) / content.width(), (port.height() - 2 * _FIT_MARGIN) / content.height()
        )
        scale = max(scale, ZoomView.MIN_SCALE)
        self.view.setTransform(QTransform.fromScale(scale, scale))
        self.view.centerOn(content.center())
        self.scene.update_label_density(self.view.scale_factor())

    def _user_zoomed(self) -> None:
        self.state.fitted = False
        self.scene.update_label_density(self.view.scale_factor())

    def _view_resized(self) -> None:
        if self.state.fitted:
            self.fit()

    # ------------------------------------------------------------------ loading
    def show_image(self, session: DatasetSession, ref: ImageRef) -> None:
        """Show ``ref``: overlays at once, the image and masks when the background task is done."""
        if self.state.show(session, ref):
            self._set_categories(session)
        self._pending_centre = None
        index = session.index(ref.split)
        self.message.hide()
        self.info.setText(_HOVER_HINT)
        self._show_counts(self.scene.show_annotations(index, ref))
        self._draw_predictions()
        self._apply_visibility()
        self.scene.update_label_density(self.view.scale_factor())
        try:
            path = session.image_path(ref)
        except UnsafeFileName as exc:
            self._decoding.cancel()
            self._refuse(exc)
            return
        self._decoding.start(
            decode, path, index, self.scene.mask_specs(index, ref), on_done=self._decoded, on_error=self._decode_failed
        )
        self._update_position()
        self._update_image_info()
        self.fit()

    def _refuse(self, exc: UnsafeFileName) -> None:
        """Never open a file outside the dataset: say why, and draw the boxes on the placeholder."""
        self.state.loading = False
        self.state.notes = []
        self.message.setText(
            f"Refused to open '{exc.file_name}': {exc.reason}.\n"
            "The annotations are drawn on a grey placeholder of the size the JSON gives."
        )
        self.message.show()
        self._update_position()
        self._update_image_info()
        self.fit()

    def _decoded(self, result: Decoded | None) -> None:
        if result is None or self.session is None:
            return  # cancelled
        self.state.loading = False
        index = self.session.index(self.ref.split)
        json_size = (int(index.image_width[self.ref.row]), int(index.image_height[self.ref.row]))
        self.state.notes = list(result.mask_problems)
        if result.image is None:
            path = self.session.image_path(self.ref)
            self.message.setText(
                f"Cannot show {path}:\n{result.error}\n"
                "The annotations are drawn on a grey placeholder of the size the JSON gives."
            )
            self.message.show()
        else:
            self.message.hide()
            self.scene.add_image(result.image)
            size = (result.image.width(), result.image.height())
            if size != json_size:
                self.state.notes.insert(
                    0,
                    f"The file is {size[0]}×{size[1]} but the JSON says "
                    f"{json_size[0]}×{json_size[1]}; annotations are drawn in JSON "
                    "coordinates.",
                )
                self.scene.set_content(QRectF(0, 0, *json_size).united(QRectF(0, 0, *size)))
        self.scene.add_masks(index, result.masks)
        self._apply_visibility()
        if self.state.selected is not None:
            self.scene.style_selection(self.state.selected, True)
        self._update_image_info()
        if self.state.fitted:
            self.fit()
        if self._pending_centre is not None:
            self._centre_on(self._pending_centre)  # again: a mismatched image size moved the fit
            self._pending_centre = None
        self.image_loaded.emit(self.ref)

    def _decode_failed(self, message: str) -> None:
        # An unexpected error in the worker (not a bad image, which decode reports itself).
        self.state.loading = False
        self.message.setText(f"Cannot show this image: {message}")
        self.message.show()
        self.image_loaded.emit(self.ref)

    # ------------------------------------------------------------------ categories and layers
    def _set_categories(self, session: DatasetSession) -> None:
        names = session.category_names()
        self.scene.set_categories(names)
        self.category_list.blockSignals(True)
        self.category_list.clear()
        for name in names:
            item = QListWidgetItem(name)
            item.setData(Qt.ItemDataRole.UserRole, name)
            swatch = QPixmap(14, 14)
            swatch.fill(self.scene.colour_of(name))
            item.setIcon(QIcon(swatch))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            shown = self.state.categories.setdefault(name, True)
            item.setCheckState(Qt.CheckState.Checked if shown else Qt.CheckState.Unchecked)
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

    def set_category_visible(self, name: str, visible: bool) -> None:
        self.state.set_category_visible(name, visible)
        self.category_list.blockSignals(True)
        for i in range(self.category_list.count()):
            item = self.category_list.item(i)
            if item.data(Qt.ItemDataRole.UserRole) == name:
                item.setCheckState(Qt.CheckState.Checked if visible else Qt.CheckState.Unchecked)
        self.category_list.blockSignals(False)

    def _category_item_changed(self, item: QListWidgetItem) -> None:
        self.set_category_visible(item.data(Qt.ItemDataRole.UserRole), item.checkState() == Qt.CheckState.Checked)

    def set_layer_visible(self, layer: str, visible: bool) -> None:
        """Show or hide all 'boxes', 'masks' (polygons and RLE) or 'labels'."""
        self.state.set_layer_visible(layer, visible)
        box = self.layer_boxes[layer]
        if box.isChecked() != visible:
            box.setChecked(visible)

    def _apply_visibility(self) -> None:
        self.scene.apply_visibility(self.state.is_shown)
        self.scene.apply_prediction_visibility(self.state.is_prediction_shown, self.state.prediction_opacity)
        self.prediction_panel.refresh()

    # ------------------------------------------------------------------ predictions
    def set_predictions(self, session: DatasetSession, by_ref: dict[ImageRef, list[Prediction]], source: str) -> None:
        """Draw ``by_ref`` (predictions per image of ``session``) apart from the ground truth."""
        self.state.set_predictions(session, by_ref, source)

    def clear_predictions(self) -> None:
        self.state.clear_predictions()

    def set_min_score(self, score: float) -> None:
        self.state.set_min_score(score)

    def _predictions_changed(self) -> None:
        if self.session is not None and self.ref is not None:
            self._draw_predictions()
        self._apply_visibility()

    def _draw_predictions(self) -> None:
        """The current image's predictions: boxes and tags at once, masks when a worker has decoded them."""
        found = self.state.predictions_of(self.ref)
        self.scene.show_predictions(found)
        masks = []
        for k, prediction in enumerate(found):
            if prediction.rle is not None:
                colour = self.scene.colour_of(prediction.name)
                masks.append((k, prediction.rle, (colour.red(), colour.green(), colour.blue())))
        if not masks:
            self._predicted_masks.cancel()
            return
        self._predicted_masks.start(
            predicted_mask_images,
            masks,
            on_done=lambda decoded: self._predicted_masks_decoded(found, decoded),
            on_error=lambda message: self.state.notes.append(f"predicted masks not drawn: {message}"),
        )

    def _predicted_masks_decoded(self, found: list[Prediction], decoded) -> None:
        if decoded is None or found is not self.state.predictions_of(self.ref):
            return  # cancelled, or another image (or other predictions) since
        self.scene.add_prediction_masks(found, decoded)
        self._apply_visibility()

    # ------------------------------------------------------------------ selection and details
    def highlight_annotation(self, ann_id: int) -> bool:
        """Select an annotation and centre the view on it (False when this image has no such id)."""
        if ann_id not in self.scene.items_by_id:
            self.info.setText(f"Annotation {ann_id} is not among this image's indexed annotations.")
            return False
        self.state.select(ann_id)
        self._pending_centre = ann_id
        self._centre_on(ann_id)
        return True

    def _selection_changed(self, previous: int | None, ann_id: int | None) -> None:
        if previous is not None:
            self.scene.style_selection(previous, False)
        if ann_id is not None:
            self.scene.style_selection(ann_id, True)
            self._show_fields(ann_id)

    def _centre_on(self, ann_id: int) -> None:
        rect = self.scene.bounds_of(ann_id)
        if rect is None:
            return
        # Zoom in on small annotations so they can be seen; never zoom out past the fit.
        target = rect.adjusted(-rect.width(), -rect.height(), rect.width(), rect.height())
        content = self.scene.content
        if target.width() < content.width() and target.height() < content.height():
            self.view.fitInView(target, Qt.AspectRatioMode.KeepAspectRatio)
            self.state.fitted = False
        self.view.centerOn(rect.center())

    def _annotation_at(self, view_pos: QPoint) -> int | None:
        return self.scene.annotation_among(self.view.items(view_pos))

    def _hovered(self, view_pos: QPoint) -> None:
        ann_id = self._annotation_at(view_pos)
        predicted = self.scene.prediction_among(self.view.items(view_pos)) if ann_id is None else None
        if ann_id is not None:
            self._show_fields(ann_id)
        elif predicted is not None:
            self.info.setText(describe(self.state.predictions_of(self.ref)[predicted]))
        elif self.state.selected is not None:
            self._show_fields(self.state.selected)

    def _show_fields(self, ann_id: int) -> None:
        self.info.setText(fields_text(self.annotation_fields(ann_id), selected=ann_id == self.state.selected))

    def _update_image_info(self) -> None:
        if self.session is None or self.ref is None:
            self.image_info.clear()
            return
        name = self.session.index(self.ref.split).file_names[self.ref.row]
        # Long names are elided in the middle (start and extension stay); the tooltip has it whole.
        room = max(80, self.image_info.width() - 8)
        shown = QFontMetricsF(self.image_info.font()).elidedText(name, Qt.TextElideMode.ElideMiddle, room * 0.8)
        self.image_info.setToolTip(f"{self.session.image_dir(self.ref.split)}/{name}")
        self.image_info.setText("\n".join(self.state.image_lines(shown, len(self.scene.items_by_id))))
