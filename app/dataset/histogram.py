"""The browser's category histogram: annotations per category, a count on every bar, click to filter.

A plot of its own that knows nothing of sessions or filters: the browser hands it the
counts to show and listens for a clicked bar.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontMetrics

from engine.data.health import plural

BAR_COLOUR = "#5b8bd0"
SELECTED_BAR_COLOUR = "#e65100"


class CategoryHistogram(pg.PlotWidget):
    """Bars of annotation counts per category; a click on a bar emits its category's name."""

    bar_clicked = Signal(str)  # the category whose bar was clicked
    _built = False  # pyqtgraph resizes the view while it is being built, before the bars exist

    def __init__(self, parent=None):
        super().__init__(parent, background="w")
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.setMinimumHeight(120)
        self.getAxis("left").setLabel("annotations")
        # Room for one line of names: the axis would otherwise size itself from
        # the numeric ticks it had before the names arrived and clip them.
        self.getAxis("bottom").setHeight(QFontMetrics(self.font()).height() + 14)
        self.showGrid(y=True, alpha=0.25)
        self.bars: pg.BarGraphItem | None = None
        self.bar_labels: list[pg.TextItem] = []
        self._bar_names: list[str] = []
        self._bar_heights: list[int] = []
        self.scene().sigMouseMoved.connect(self._hover_bar)
        self.scene().sigMouseClicked.connect(self._clicked)
        self._built = True

    def clear_counts(self) -> None:
        """No dataset: no bars, no title."""
        self._remove_bars()
        self.setTitle(None)
        self._bar_names = []
        self._update_ticks()

    def show_counts(self, counts: dict[str, int], selected: str | None, where: str) -> None:
        """One bar per category of ``counts`` (in its order), ``selected``'s highlighted; ``where`` titles it."""
        self._remove_bars()
        names = list(counts)
        heights = np.array([counts[n] for n in names], float)
        brushes = [pg.mkBrush(SELECTED_BAR_COLOUR if name == selected else BAR_COLOUR) for name in names]
        self.bars = pg.BarGraphItem(
            x=np.arange(len(names)), height=heights, width=0.7, brushes=brushes, pens=[pg.mkPen(None)] * len(names)
        )
        self.addItem(self.bars)
        self._bar_names, self._bar_heights = names, [counts[n] for n in names]
        # The count on every bar: a class of 9 beside one of 975 is a sliver, but its number reads.
        for i, name in enumerate(names):
            text = pg.TextItem(f"{counts[name]:,}", color="#333333", anchor=(0.5, 1.0))
            text.setPos(i, counts[name])
            self.addItem(text)
            self.bar_labels.append(text)
        self._update_ticks()
        self.setXRange(-0.6, len(names) - 0.4, padding=0)
        self.setYRange(0, max(1.0, heights.max(initial=0)) * 1.22, padding=0)  # room for the counts
        self.setTitle(f"Annotations per category · {where}", size="9pt")

    def bar_at(self, scene_pos) -> int | None:
        """The bar under a scene position, or None."""
        x = self.getPlotItem().vb.mapSceneToView(scene_pos).x()
        i = round(x)
        return i if self._bar_names and 0 <= i < len(self._bar_names) and abs(x - i) <= 0.35 else None

    def select_bar(self, i: int) -> None:
        """What a click on bar ``i`` does: say which category it is."""
        self.bar_clicked.emit(self._bar_names[i])

    def _remove_bars(self) -> None:
        if self.bars is not None:
            self.removeItem(self.bars)
            self.bars = None
        for text in self.bar_labels:
            self.removeItem(text)
        self.bar_labels = []

    def _update_ticks(self) -> None:
        """Label every bar: names longer than a bar's room are elided (hover shows them whole)."""
        names = self._bar_names
        axis = self.getAxis("bottom")
        if not names:
            axis.setTicks([[]])
            return
        metrics = QFontMetrics(axis.style.get("tickFont") or self.font())
        width = max(100, self.width() - 60)  # less the left axis
        room = max(metrics.horizontalAdvance("ab…"), int(width / len(names)) - 6)
        axis.setTicks([[(i, metrics.elidedText(n, Qt.TextElideMode.ElideRight, room)) for i, n in enumerate(names)]])

    def _clicked(self, event) -> None:
        i = self.bar_at(event.scenePos())
        if i is not None and event.button() == Qt.MouseButton.LeftButton:
            self.select_bar(i)

    def _hover_bar(self, position) -> None:
        """Name and count of the bar under the mouse: not every bar has its label."""
        i = self.bar_at(position)
        self.setToolTip(
            ""
            if i is None
            else f"{self._bar_names[i]}: {plural(self._bar_heights[i], 'annotation')}\nclick to show only this category"
        )

    def resizeEvent(self, event) -> None:
        if self._built:
            self._update_ticks()  # the room each name has follows the width
        super().resizeEvent(event)
