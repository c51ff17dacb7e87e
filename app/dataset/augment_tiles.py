"""The Augment tab's preview grid: one tile per augmented sample, laid out as large as they fit."""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QWidget

from ..widgets.colours import text_colour
from .augment_preview import SampleTile

CROWDED_BOXES = 60  # more boxes than this on a tile: thin lines, no halo


class PreviewTile(QWidget):
    """Paints one sample to fit, with boxes drawn at screen resolution so they stay sharp."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.tile: SampleTile | None = None
        self.show_labels = True

    def set_tile(self, tile: SampleTile | None) -> None:
        self.tile = tile
        self.setToolTip(tile.caption if tile is not None else "")
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.Antialiasing)
        painter.setRenderHint(QPainter.SmoothPixmapTransform)
        caption_h = self.fontMetrics().height() + 4
        area = QRectF(self.rect()).adjusted(0, 0, 0, -caption_h)
        painter.fillRect(area, QColor("#2b2b2b"))
        if self.tile is None:
            return
        tile = self.tile
        scale = min(area.width() / tile.width, area.height() / tile.height)
        target = QRectF(0, 0, tile.width * scale, tile.height * scale)
        target.moveCenter(area.center())
        painter.drawImage(target, tile.image)
        font = QFont(self.font())
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.8))
        painter.setFont(font)
        metrics = painter.fontMetrics()
        # Hundreds of boxes: thin lines, no halo, so the image stays visible under them.
        crowded = len(tile.boxes) > CROWDED_BOXES
        for x, y, w, h, name, colour in tile.boxes:
            rect = QRectF(target.x() + x * scale, target.y() + y * scale, w * scale, h * scale)
            painter.setBrush(Qt.NoBrush)
            if not crowded:
                painter.setPen(QPen(QColor(0, 0, 0, 140), 4))  # dark halo: boxes stay visible on same-coloured objects
                painter.drawRect(rect)
            painter.setPen(QPen(QColor(colour), 1 if crowded else 2))
            painter.drawRect(rect)
            if not self.show_labels or rect.width() < 0.6 * metrics.horizontalAdvance(name):
                continue  # labels off, or no room on this box: the tag would cover its neighbours
            label = QRectF(
                rect.topLeft() - QPointF(1, metrics.height()),
                QSize(metrics.horizontalAdvance(name) + 6, metrics.height()),
            )
            label.moveTop(max(target.top(), label.top()))  # keep tags of boxes at the top edge visible
            painter.fillRect(label, QColor(colour))
            painter.setPen(text_colour(QColor(colour)))
            painter.drawText(label, Qt.AlignCenter, name)
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.setFont(self.font())
        caption = QRectF(0, self.height() - caption_h, self.width(), caption_h)
        # A narrow tile elides its caption (the tooltip has it whole) instead of cutting both ends.
        painter.drawText(
            caption, Qt.AlignCenter, self.fontMetrics().elidedText(tile.caption, Qt.ElideRight, self.width())
        )


class TileGrid(QWidget):
    """Lays tiles out in the column count that makes them largest (samples are mostly square)."""

    SPACING = 6

    def __init__(self, parent=None):
        super().__init__(parent)
        self.tiles: list[PreviewTile] = []
        self.show_labels = True

    def set_count(self, n: int) -> list[PreviewTile]:
        for tile in self.tiles:
            tile.deleteLater()
        self.tiles = [PreviewTile(self) for _ in range(n)]
        for tile in self.tiles:
            tile.show_labels = self.show_labels
            tile.show()
        self._relayout()
        return self.tiles

    def set_labels_visible(self, visible: bool) -> None:
        """Draw category names on the boxes, or only the boxes."""
        self.show_labels = visible
        for tile in self.tiles:
            tile.show_labels = visible
            tile.update()

    def show_samples(self, samples: list[SampleTile]) -> None:
        for widget, tile in zip(self.tiles, samples):
            widget.set_tile(tile)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._relayout()

    def _relayout(self) -> None:
        n = len(self.tiles)
        if not n:
            return
        caption = self.fontMetrics().height() + 4
        gap, width, height = self.SPACING, self.width(), self.height()

        def image_side(columns: int) -> float:
            rows = math.ceil(n / columns)
            return min((width - gap * (columns - 1)) / columns, (height - gap * (rows - 1)) / rows - caption)

        columns = max(range(1, n + 1), key=image_side)
        rows = math.ceil(n / columns)
        side = max(40.0, image_side(columns))
        # Centre the block of tiles in the free space.
        left = (width - (columns * side + (columns - 1) * gap)) / 2
        top = (height - (rows * (side + caption) + (rows - 1) * gap)) / 2
        for k, tile in enumerate(self.tiles):
            row, column = divmod(k, columns)
            tile.setGeometry(
                round(left + column * (side + gap)),
                round(top + row * (side + caption + gap)),
                round(side),
                round(side + caption),
            )
