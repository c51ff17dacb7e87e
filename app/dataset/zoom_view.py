"""A graphics view for looking at an image closely: wheel zoom around the cursor, drag to pan.

It handles no click, hover or key itself: it reports them (signals, and a key callback that
says whether the key was used), so the widget that owns it decides what they mean.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPoint, QPointF, Qt, Signal
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QGraphicsView


class ZoomView(QGraphicsView):
    """Wheel zoom around the cursor, drag to pan; clicks, hovers and keys are reported, not handled."""

    MIN_SCALE, MAX_SCALE = 0.01, 64.0
    zoomed = Signal()  # by the user (wheel, keys), not by a fit
    clicked = Signal(QPoint)  # a press and release in about the same place, viewport position
    hovered = Signal(QPoint)  # the mouse moved with no button down
    double_clicked = Signal()
    resized = Signal()

    def __init__(self, keys: Callable[[object], bool]):
        super().__init__()
        self._keys = keys  # returns True for a key it used
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        # Clicks and hovers are handled by the viewer rather than by the items, so dragging on an
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

    def _bounded(self, factor: float) -> float:
        return min(max(factor, self.MIN_SCALE / self.scale_factor()), self.MAX_SCALE / self.scale_factor())

    def zoom(self, factor: float, *, under_mouse: bool = True) -> None:
        factor = self._bounded(factor)
        self.setTransformationAnchor(
            QGraphicsView.ViewportAnchor.AnchorUnderMouse
            if under_mouse
            else QGraphicsView.ViewportAnchor.AnchorViewCenter
        )
        self.scale(factor, factor)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.zoomed.emit()

    def zoom_at(self, factor: float, pos: QPointF) -> None:
        """Zoom keeping the scene point under viewport position ``pos`` where it is."""
        factor = self._bounded(factor)
        anchor = self.mapToScene(pos.toPoint())
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.scale(factor, factor)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        # Centre the view so that the anchor lands back under the cursor (works whether or
        # not the mouse moved before the wheel turned, which AnchorUnderMouse needs).
        scale = self.scale_factor()
        middle = QPointF(self.viewport().width() / 2, self.viewport().height() / 2)
        self.centerOn(anchor - (pos - middle) / scale)
        self.zoomed.emit()

    def wheelEvent(self, event):
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom_at(1.25**steps, event.position())
        event.accept()

    def mouseDoubleClickEvent(self, event):
        self.double_clicked.emit()

    def mousePressEvent(self, event):
        self._press_pos = event.position()
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event):
        super().mouseReleaseEvent(event)
        start, self._press_pos = self._press_pos, None
        # A press and release in about the same place is a click, not the end of a drag.
        if (
            event.button() == Qt.MouseButton.LeftButton
            and start is not None
            and (event.position() - start).manhattanLength() < 4
        ):
            self.clicked.emit(event.position().toPoint())

    def mouseMoveEvent(self, event):
        super().mouseMoveEvent(event)
        if not event.buttons():
            self.hovered.emit(event.position().toPoint())

    def keyPressEvent(self, event):
        if not self._keys(event):
            super().keyPressEvent(event)

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self.resized.emit()
