"""The browser's grid: a card per image (thumbnail, file name, problem badge, boxes), columns that fill the width."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QModelIndex, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QListView, QStyle, QStyledItemDelegate

from ..widgets.colours import category_colour
from ..widgets.elided_label import elide_name
from .session import DatasetSession, ImageRef
from .thumbnail_model import PROBLEM_RED, ROW_MEMO_ROWS, ThumbnailModel

_SELECTED = QStyle.StateFlag.State_Selected.value
_HOVERED = QStyle.StateFlag.State_MouseOver.value
_HOVER_FILL = QColor(0, 0, 0, 18)
_CENTRED = Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter


class ThumbnailDelegate(QStyledItemDelegate):
    """A card per image: the thumbnail centred in a 4:3 box, the file name under it, a problem badge."""

    def __init__(self, model: ThumbnailModel, parent=None):
        super().__init__(parent)
        self.model = model
        self.show_boxes = False  # draw each image's boxes on its thumbnail
        self._colours: dict[str, QColor] = {}
        self._box: tuple[int, QSize] | None = None
        self._names: dict[tuple, str] = {}  # (ref, width, font) -> the file name as drawn
        self._names_session = None

    def box_size(self) -> QSize:
        size = self.model.thumb_size
        if self._box is None or self._box[0] != size:
            self._box = (size, QSize(size, size * 3 // 4))  # most photos are landscape; portraits shrink to fit
        return self._box[1]

    def shown_name(self, row: int, width: int, option) -> str:
        """The row's file name elided to ``width`` (a text layout: worth remembering)."""
        if self._names_session is not self.model.session:  # refs name other files in another dataset
            self._names.clear()
            self._names_session = self.model.session
        key = (self.model.refs[row], width, option.font.key())
        name = self._names.get(key)
        if name is None:
            if len(self._names) >= ROW_MEMO_ROWS:
                self._names.clear()
            full, metrics = self.model.file_name(row), option.fontMetrics
            # Names that share a long start keep the end that tells them apart (the tooltip has it whole).
            keep = self.model.distinct_start(row) if metrics.horizontalAdvance(full) > width else 0
            name = self._names[key] = elide_name(full, metrics, width, keep)
        return name

    def cell_size(self) -> QSize:
        box = self.box_size()
        return QSize(box.width() + 16, box.height() + 32)

    def sizeHint(self, option, index) -> QSize:
        return self.cell_size()

    def paint(self, painter: QPainter, option, index: QModelIndex) -> None:
        # Plain ints and module constants: a scroll paints ~35 fresh cells a page, and each
        # QRect helper or enum operation here is a Python -> C++ round trip.
        cell = option.rect
        x, y, width, height = cell.x(), cell.y(), cell.width(), cell.height()
        state = option.state.value
        painter.save()
        if state & _SELECTED or state & _HOVERED:
            palette = option.palette
            rect = QRect(x + 2, y + 2, width - 4, height - 4)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            if state & _SELECTED:
                fill = QColor(palette.highlight().color())
                fill.setAlpha(70)
                painter.setPen(QPen(palette.highlight().color(), 1.5))
                painter.setBrush(fill)
            else:
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(_HOVER_FILL)
            painter.drawRoundedRect(rect, 6, 6)

        box_size = self.box_size()
        box_width, box_height = box_size.width(), box_size.height()
        box_left, box_top = x + (width - box_width) // 2, y + 7
        # Straight to the Python model: going through index.data() costs a C++
        # round trip (and a GIL hand-over) per role per painted item.
        model, row = self.model, index.row()
        pixmap = model.decoration(row)
        badge = None
        if not pixmap.isNull():
            shown_width, shown_height = pixmap.width(), pixmap.height()
            scaled = shown_width > box_width or shown_height > box_height
            if scaled:
                shown = pixmap.size().scaled(box_size, Qt.AspectRatioMode.KeepAspectRatio)
                shown_width, shown_height = shown.width(), shown.height()
            target = QRect(
                box_left + (box_width - shown_width) // 2,
                box_top + (box_height - shown_height) // 2,
                shown_width,
                shown_height,
            )
            if scaled:
                painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
                painter.drawPixmap(target, pixmap)
            else:
                painter.drawPixmap(target.x(), target.y(), pixmap)  # no scaling: a straight copy
            if self.show_boxes and model.session is not None and not model.has_unreadable(row):
                self._boxes(painter, target, model.session, model.refs[row])
            problems = model.problems_count(model.refs[row])
            if problems:
                badge = (target, problems)

        metrics = option.fontMetrics
        text_rect = QRect(x + 6, box_top + box_height + 4, width - 12, metrics.height())
        name = self.shown_name(row, width - 12, option)
        painter.setFont(option.font)
        painter.setPen(option.palette.text().color())
        painter.drawText(text_rect, _CENTRED, name)
        if badge is not None:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            self._badge(painter, *badge)  # last: it changes the painter's font
        painter.restore()

    def _boxes(self, painter: QPainter, target: QRect, session: DatasetSession, ref: ImageRef) -> None:
        """The image's boxes, scaled from JSON coordinates to the thumbnail, in category colours."""
        index = session.index(ref.split)
        width, height = int(index.image_width[ref.row]), int(index.image_height[ref.row])
        if width <= 0 or height <= 0:
            return
        sx, sy = target.width() / width, target.height() / height
        if not self._colours or self._colours.get(None) is not session:
            self._colours = {name: category_colour(i) for i, name in enumerate(session.category_names())}
            self._colours[None] = session  # which session the colours belong to
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for ann_row in index.annotation_rows(ref.row):
            x, y, w, h = index.ann_bbox[ann_row]
            if np.isnan(x):
                continue
            label = int(index.ann_label[ann_row])
            name = index.category_names[label] if label >= 0 else None
            painter.setPen(QPen(self._colours.get(name, QColor(160, 160, 160)), 1.5))
            painter.drawRect(QRectF(target.x() + x * sx, target.y() + y * sy, w * sx, h * sy))

    def _badge(self, painter: QPainter, target: QRect, count: int) -> None:
        """A red disc with the number of problems on the thumbnail's top-right corner."""
        diameter = 18
        disc = QRect(target.right() - diameter + 4, target.top() - 4, diameter, diameter)
        painter.setPen(QPen(QColor("white"), 1.5))
        painter.setBrush(PROBLEM_RED)
        painter.drawEllipse(disc)
        font = QFont(painter.font())
        font.setBold(True)
        font.setPixelSize(10)
        painter.setFont(font)
        painter.drawText(disc, Qt.AlignmentFlag.AlignCenter, str(count) if count < 100 else "99+")


class GridView(QListView):
    """An icon grid whose cells widen so the columns fill the viewport, no ragged right margin."""

    def __init__(self, delegate: ThumbnailDelegate, parent=None):
        super().__init__(parent)
        self.delegate = delegate
        # Icon mode lays out as if the scroll bar were there anyway; keeping it
        # always on makes the viewport width the layout width, so columns fit exactly.
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)

    def fit_grid(self) -> None:
        cell = self.delegate.cell_size()
        width = self.viewport().width()
        columns = max(1, width // cell.width())
        grid = QSize(max(cell.width(), width // columns), cell.height())
        if grid != self.gridSize():
            self.setGridSize(grid)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.fit_grid()
