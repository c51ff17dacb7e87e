"""A confusion matrix drawn as a heat map whose class names stay readable at any class count.

An axis of tick labels (pyqtgraph's) wrote the names of four classes into one another
("circlesquaretriangleblob").  Here each name gets the room of its own cell: column names
are written upright when they fit their column and turned on their side when not, a name
longer than its room loses its middle, not the end that tells it apart (the whole name is
in the cell's tooltip), and when cells are smaller than a line of text only every k-th
name is written.

Counts or each row divided by its sum (``set_normalised``); a click on a cell says which
(``cell_clicked``), so the Evaluate view can show the images behind it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QFontMetricsF, QImage, QPainter
from PySide6.QtWidgets import QToolTip, QWidget

MARGIN = 4
GAP = 3  # between a name and its cell
MAX_NAME_SHARE = 0.3  # names take at most this share of the width (row names) or height (column names)


@dataclass
class Label:
    index: int
    text: str  # as drawn (maybe elided)
    rect: QRectF  # where it is drawn, in widget coordinates (for a turned name: its turned box)
    turned: bool = False


@dataclass
class MatrixLayout:
    grid: QRectF
    cell: float
    rows: list[Label] = field(default_factory=list)
    columns: list[Label] = field(default_factory=list)


class ConfusionMatrixView(QWidget):
    """Rows: the true class; columns: the predicted class; each cell's count written in it."""

    cell_clicked = Signal(int, int)  # row (true class), column (predicted class)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.matrix = np.zeros((0, 0))
        self.counts = np.zeros((0, 0))
        self.normalised = False  # each row divided by its sum
        self._shades: QImage | None = None  # one pixel per cell, scaled onto the grid when painted
        self.names: list[str] = []
        self.colours = pg.colormap.get("viridis")
        self.setMinimumSize(260, 220)
        self.setMouseTracking(True)

    def set_matrix(self, matrix, names) -> None:
        counts = np.asarray(matrix, dtype=float)
        if counts.shape != (len(names), len(names)):
            raise ValueError(f"confusion matrix of shape {counts.shape} for {len(names)} class names")
        self.counts = counts
        self.names = [str(n) for n in names]
        self._refresh()

    def set_normalised(self, normalised: bool) -> None:
        """Show each row divided by its sum (the share of a true class predicted as each class), or counts."""
        self.normalised = normalised
        self._refresh()

    def _refresh(self) -> None:
        if self.normalised:
            sums = self.counts.sum(axis=1, keepdims=True)
            self.matrix = np.divide(self.counts, sums, out=np.zeros(self.counts.shape), where=sums > 0)
        else:
            self.matrix = self.counts
        self._shades = None
        self.update()

    def cell_text(self, row: int, column: int) -> str:
        value = self.matrix[row, column]
        return f"{value:.2f}" if self.normalised else f"{int(value)}"

    def cell_centre(self, row: int, column: int) -> QPointF:
        """Where cell (row, column) is drawn, in widget coordinates (for clicks, and tests)."""
        layout = self.layout_labels()
        return QPointF(layout.grid.left() + (column + 0.5) * layout.cell, layout.grid.top() + (row + 0.5) * layout.cell)

    # ------------------------------------------------------------------ geometry
    def layout_labels(self) -> MatrixLayout:
        """Where the grid and every written name go at the widget's present size."""
        n = len(self.names)
        metrics = QFontMetricsF(self.font())
        line = metrics.height()
        if not n:
            return MatrixLayout(QRectF(), 0.0)
        widest = max(metrics.horizontalAdvance(name) for name in self.names)
        edge = max(MARGIN, line / 2 + 1)  # a name centred on the first row (last column) of small cells stays inside
        title = line + GAP  # "true" on the left, "predicted" at the bottom
        row_room = min(widest, MAX_NAME_SHARE * self.width())
        left = MARGIN + title + row_room + GAP
        # Upright column names if the widest fits the cell it would get; else turned on their side.
        upright_cell = min((self.width() - left - edge) / n, (self.height() - edge - MARGIN - title - line - GAP) / n)
        upright = widest + GAP <= upright_cell
        column_room = line if upright else min(widest, MAX_NAME_SHARE * self.height())
        bottom = GAP + column_room + title + MARGIN
        cell = max(1.0, min((self.width() - left - edge) / n, (self.height() - edge - bottom) / n))
        grid = QRectF(left, edge, cell * n, cell * n)
        stride = max(1, math.ceil((line + 1) / cell))  # names one line tall never touch
        out = MatrixLayout(grid, cell)
        for i, name in enumerate(self.names):
            if i % stride:
                continue
            row_text = metrics.elidedText(name, Qt.ElideMiddle, row_room)
            row_width = metrics.horizontalAdvance(row_text)
            centre = grid.top() + (i + 0.5) * cell
            out.rows.append(Label(i, row_text, QRectF(left - GAP - row_width, centre - line / 2, row_width, line)))
            centre = grid.left() + (i + 0.5) * cell
            if upright:
                col_text = metrics.elidedText(name, Qt.ElideMiddle, cell - GAP)
                col_width = metrics.horizontalAdvance(col_text)
                rect = QRectF(centre - col_width / 2, grid.bottom() + GAP, col_width, line)
            else:
                col_text = metrics.elidedText(name, Qt.ElideMiddle, column_room)
                length = metrics.horizontalAdvance(col_text)
                rect = QRectF(centre - line / 2, grid.bottom() + GAP, line, length)
            out.columns.append(Label(i, col_text, rect, turned=not upright))
        return out

    def cell_at(self, pos: QPointF) -> tuple[int, int] | None:
        layout = self.layout_labels()
        if not self.names or not layout.grid.contains(pos):
            return None
        n = len(self.names)
        row = min(n - 1, int((pos.y() - layout.grid.top()) // layout.cell))
        col = min(n - 1, int((pos.x() - layout.grid.left()) // layout.cell))
        return row, col

    # ------------------------------------------------------------------ drawing
    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        painter.fillRect(self.rect(), Qt.white)
        if not self.names:
            return
        layout = self.layout_labels()
        metrics = QFontMetricsF(self.font())
        top = max(1.0 if not self.normalised else 1e-12, float(self.matrix.max()))
        n, cell = len(self.names), layout.cell
        if self._shades is None:  # one pixel per cell: 200 classes paint as fast as 2
            rgba = self.colours.map(self.matrix.ravel() / top, mode="byte").reshape(n, n, -1)
            rgba = np.ascontiguousarray(rgba[..., :3], dtype=np.uint8)
            self._shades = QImage(rgba.data, n, n, 3 * n, QImage.Format_RGB888).copy()
        painter.drawImage(layout.grid, self._shades)
        if metrics.height() <= cell:
            widest = metrics.horizontalAdvance("0.00" if self.normalised else f"{int(self.matrix.max())}")
            if widest + 2 <= cell:
                for r in range(n):
                    for c in range(n):
                        box = QRectF(layout.grid.left() + c * cell, layout.grid.top() + r * cell, cell, cell)
                        painter.setPen(Qt.black if self.matrix[r, c] / top > 0.6 else Qt.white)
                        painter.drawText(box, Qt.AlignCenter, self.cell_text(r, c))
        painter.setPen(Qt.black)
        for label in layout.rows:
            painter.drawText(label.rect, Qt.AlignRight | Qt.AlignVCenter, label.text)
        for label in layout.columns:
            if not label.turned:
                painter.drawText(label.rect, Qt.AlignCenter, label.text)
                continue
            painter.save()  # read from bottom to top, ending at the grid
            painter.translate(label.rect.left(), label.rect.top())
            painter.rotate(-90)
            painter.drawText(
                QRectF(-label.rect.height(), 0, label.rect.height(), label.rect.width()),
                Qt.AlignRight | Qt.AlignVCenter,
                label.text,
            )
            painter.restore()
        line = metrics.height()
        painter.drawText(
            QRectF(layout.grid.left(), self.height() - MARGIN - line, layout.grid.width(), line),
            Qt.AlignCenter,
            "predicted",
        )
        painter.save()
        painter.translate(MARGIN, layout.grid.bottom())
        painter.rotate(-90)
        painter.drawText(QRectF(0, 0, layout.grid.height(), line), Qt.AlignCenter, "true")
        painter.restore()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        cell = self.cell_at(event.position())
        if cell is None:
            QToolTip.hideText()
            return
        r, c = cell
        QToolTip.showText(
            event.globalPosition().toPoint(),
            f"true {self.names[r]}, predicted {self.names[c]}: {int(self.counts[r, c])}"
            + (f" ({self.matrix[r, c]:.1%} of the true {self.names[r]})" if self.normalised else ""),
            self,
        )

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        cell = self.cell_at(event.position())
        if cell is not None and event.button() == Qt.LeftButton:
            self.cell_clicked.emit(*cell)
        super().mousePressEvent(event)
