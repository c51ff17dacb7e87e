"""The search scatter: one small plot per searched setting, each trial's metric against its value.

It shows one search (the one selected in the runs table, else the one this tab started),
from the rows the runs table already read: no MLflow call of its own. The best trial is a
star; a point names its trial when the mouse is over it.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from .search_scatter_data import SearchPoints

HINT = "Select a search (or one of its trials) in Runs: each searched setting is plotted against its metric here."
COLUMNS = 3  # plots per row
POINT, BEST = "#1f77b4", "#d62728"


class SearchScatter(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.points: SearchPoints | None = None  # what the view shows (drawn once it is visible)
        self._drawn: SearchPoints | None = None
        self._name = ""
        self.title = QLabel(HINT)
        self.title.setObjectName("scatterTitle")
        self.title.setWordWrap(True)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setMinimumHeight(120)
        self.plots: dict[str, pg.PlotItem] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.view, 1)

    def show_points(self, points: SearchPoints | None, name: str = "") -> None:
        """Show ``points`` (None: nothing selected). Plots are built and drawn only while the view is
        shown (making pyqtgraph plots costs tens of ms): a hidden view draws what it holds once shown."""
        self.points, self._name = points, name
        if self.isVisible():
            self._draw_points()

    def showEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        self._draw_points()

    def _draw_points(self) -> None:
        points = self.points
        if points == self._drawn:
            return
        drawn, self._drawn = self._drawn, points
        same_layout = (
            points is not None
            and drawn is not None
            and points.search_id == drawn.search_id
            and [p.path for p in points.params] == list(self.plots)
        )
        if points is None:
            self.title.setText(HINT)
            self._clear()
            return
        goal = "lower is better" if points.mode == "min" else "higher is better"
        scored = len(points.params[0].x) if points.params else 0
        self.title.setText(
            f"Search {self._name or points.search_id[:8]}: {points.metric} ({goal}) of {scored} of "
            f"{points.trials} trials against each searched setting; ★ the best"
            + ("" if points.params else " (this search logged no searched settings)")
        )
        if not same_layout:
            self._clear()
            for i, param in enumerate(points.params):
                plot = self.view.addPlot(row=i // COLUMNS, col=i % COLUMNS, title=param.path)
                plot.setLabel("left", points.metric)
                plot.getAxis("left").enableAutoSIPrefix(False)
                self.plots[param.path] = plot
        for param in points.params:
            self._draw(self.plots[param.path], param)

    def _clear(self) -> None:
        self.view.clear()
        self.plots = {}

    @staticmethod
    def _draw(plot: pg.PlotItem, param) -> None:
        plot.clear()
        axis = plot.getAxis("bottom")
        # A log scale by hand: the points at log10(x), the axis labelled in powers of ten.
        axis.setLogMode(param.log)
        xs = [math.log10(v) for v in param.x] if param.log else list(param.x)
        axis.setTicks([list(enumerate(param.labels))] if param.labels is not None else None)
        others = [i for i in range(len(param.x)) if i != param.best]
        plot.addItem(
            pg.ScatterPlotItem(
                [xs[i] for i in others],
                [param.y[i] for i in others],
                data=[param.names[i] for i in others],
                size=8,
                brush=pg.mkBrush(POINT),
                pen=None,
                hoverable=True,
                tip=lambda x, y, data: f"{data}\n{y:.4g}",
            )
        )
        if param.best is not None:
            plot.addItem(
                pg.ScatterPlotItem(
                    [xs[param.best]],
                    [param.y[param.best]],
                    data=[param.names[param.best]],
                    symbol="star",
                    size=16,
                    brush=pg.mkBrush(BEST),
                    pen=pg.mkPen("k"),
                    hoverable=True,
                    tip=lambda x, y, data: f"best: {data}\n{y:.4g}",
                )
            )
