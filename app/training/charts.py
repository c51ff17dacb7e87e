"""Live charts: training loss, validation metrics, learning rate, for any set of runs.

Validation losses and validation scores (accuracy, mAP, ...) share a plot but not an axis:
losses on the left, scores in [0, 1] on the right.  Legends sit under their plot's axis,
never over a curve.

A :class:`MetricPoller` reads new points of every charted run from MLflow about twice a
second in helper processes (one poll per run at a time, incremental; long histories in a
process of their own); the GUI thread only appends and redraws the curves that changed,
each drawn at one min/max pair per pixel column (``bench/live_chart.py`` measures it).
"""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGraphicsItem,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from ..widgets.task_slot import TaskSlot
from .chart_data import LEARNING_RATE, TRAIN_LOSS, X_AXES, RunData, curve_style, is_loss

pg.setConfigOptions(antialias=False, background="w", foreground="k")
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")


POLL_MS = 500
SETTLED_RECHECK_MS = 2000  # how often a run that has ended is asked (status only) whether it was resumed
ENDED = ("FINISHED", "FAILED", "KILLED")
SLICE_POINTS = 4000  # a long history reaches the chart in slices, one per event-loop turn


def slices(fresh: dict, size: int = SLICE_POINTS) -> list[dict]:
    """``{key: points}`` cut into pieces of about ``size`` points, each key's points in order."""
    out, current, count = [], {}, 0
    for key, points in fresh.items():
        for start in range(0, len(points), size):
            piece = points[start : start + size]
            if count and count + len(piece) > size:
                out.append(current)
                current, count = {}, 0
            current.setdefault(key, []).extend(piece)
            count += len(piece)
    if current:
        out.append(current)
    return out


class MetricPoller(QObject):
    """Polls every charted run about twice a second, each run as its own task.

    The reads run in helper processes (:mod:`.reader_process`), waited for by worker
    threads.  A run's whole history (maybe 10,000s of points) is read by a backlog
    process, so it never delays the small incremental reads of live runs, which have a
    process of their own.  A run that has ended and been read to its end is "settled": only
    its status is asked, every ``SETTLED_RECHECK_MS``, and once it runs again (resumed: the
    same MLflow run, RUNNING again) or has ended anew, its points are read again.
    """

    points = Signal(str, object)  # run_id, {key: [(step, value, ts)]}
    status = Signal(str, str, dict)  # run_id, status, tags
    polled = Signal(float)  # wall time a poll's answer reached the GUI thread

    def __init__(self, tracking_uri: str, interval_ms: int = POLL_MS, parent=None):
        super().__init__(parent)
        from .reader_process import ReaderProcess

        self.tracking_uri = tracking_uri
        self.readers: dict[str, tuple[str, str]] = {}  # run_id -> (tracking uri, "live" | "backlog")
        self._slots: dict[str, TaskSlot] = {}  # run_id -> the slot of its reads (one at a time)
        self._start_over: set[str] = set()
        # run_id -> the (status, end_time) it was settled at (None until its first status check)
        self._settled: dict[str, tuple | None] = {}
        self._recheck_every = max(1, SETTLED_RECHECK_MS // max(1, interval_ms))
        self._ticks = 0
        self._processes = {"live": ReaderProcess(), "backlog": ReaderProcess()}
        self._threads = {}
        for name in self._processes:  # one waiting thread per process
            self._threads[name] = QThreadPool(self)
            self._threads[name].setMaxThreadCount(1)
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.poll)

    def watch(self, run_id: str, tracking_uri: str | None = None, live: bool = False) -> None:
        """Chart ``run_id``, read from ``tracking_uri`` (a Ray job's own store) or the workspace's.

        ``live``: a run known to be going is read by the live process, so it never waits
        behind the histories of finished runs.
        """
        if run_id not in self.readers:
            process = "live" if live else "backlog"
            self.readers[run_id] = (tracking_uri or self.tracking_uri, process)
            # A child of the poller: once the poller is gone, no read's answer can call into it.
            self._slots[run_id] = TaskSlot(self, pool=self._threads[process])
            self._start_over.add(run_id)
        self._settled.pop(run_id, None)  # watched again (e.g. resumed): it may grow again
        if not self.timer.isActive():
            self.timer.start()
        self.poll()

    def unwatch(self, run_id: str) -> None:
        uri, process = self.readers.pop(run_id, (None, None))
        if uri is not None:
            self._processes[process].forget(uri, run_id)
            slot = self._slots.pop(run_id)
            slot.cancel()  # a read in flight is not charted
            slot.deleteLater()
        self._settled.pop(run_id, None)

    def poll(self) -> None:
        self._ticks += 1
        for run_id, reader in list(self.readers.items()):
            slot = self._slots[run_id]
            if slot.busy:
                continue  # one read per run at a time
            uri, process = reader
            if run_id in self._settled:
                if self._ticks % self._recheck_every == 0:
                    slot.start(
                        self._processes[process].state,
                        uri,
                        run_id,
                        on_done=lambda state, r=run_id: self._rechecked(r, state),
                    )
                continue
            start_over = run_id in self._start_over
            self._start_over.discard(run_id)
            slot.start(
                self._processes[process].poll,
                uri,
                run_id,
                start_over,
                on_done=lambda result, r=run_id: self._answered(r, result),
            )

    def _answered(self, run_id: str, result) -> None:
        reader = self.readers[run_id]  # its slot was dropped if it was unwatched: it is still watched
        fresh, status, tags = result
        if status in ENDED:
            self._settled[run_id] = None  # it had ended before these points were read: no more will come
        pieces = slices(fresh) if fresh else []
        if pieces:
            self.points.emit(run_id, pieces[0])
        for later, piece in enumerate(pieces[1:], 1):  # the event loop runs (and paints) between slices
            QTimer.singleShot(20 * later, self, lambda r=run_id, rd=reader, p=piece: self._emit_slice(r, rd, p))
        self.status.emit(run_id, status, tags)
        self.polled.emit(time.time())

    def _rechecked(self, run_id: str, state: tuple) -> None:
        if run_id not in self._settled:
            return
        known, (status, _end) = self._settled[run_id], state
        if status not in ENDED or (known is not None and tuple(known) != tuple(state)):
            del self._settled[run_id]  # resumed (or ended again since): read what it logged
            self.poll()
        else:
            self._settled[run_id] = tuple(state)

    def _emit_slice(self, run_id: str, reader, piece: dict) -> None:
        if self.readers.get(run_id) is reader:
            self.points.emit(run_id, piece)

    def close(self) -> None:
        """Stop polling and end the helper processes (the app is closing)."""
        self.timer.stop()
        for process in self._processes.values():
            process.close()


class SparseAxis(pg.AxisItem):
    """A vertical axis whose labels stay apart on a short plot.

    pyqtgraph always puts at least ~5 major ticks on an axis, however short: on the
    learning-rate plot of an 800x560 window their labels lay on top of each other.
    Here the major spacing grows (1, 2, 5 x 10^k) until each label has ``MIN_LABEL_PX``.
    """

    MIN_LABEL_PX = 18

    def tickSpacing(self, minVal, maxVal, size):  # noqa: N802 (pyqtgraph's name)
        levels = super().tickSpacing(minVal, maxVal, size)
        if not levels or self.orientation not in ("left", "right"):
            return levels
        span, fit = abs(maxVal - minVal), max(1, int(size // self.MIN_LABEL_PX))
        major, offset = levels[0]
        while span / major > fit:
            mantissa = major / 10 ** np.floor(np.log10(major))
            major *= 2.5 if round(mantissa) == 2 else 2.0  # 1 -> 2 -> 5 -> 10
        return [(major, offset)] + [level for level in levels[1:] if level[0] < major]


PLOT_LAYOUT = (  # name, title, (row, column, column span); the short bottom plot is named on its axis
    ("loss", "Training loss", (0, 0, 1)),
    ("val", "Validation", (0, 1, 1)),
    ("lr", None, (1, 0, 2)),
)
# Plots other than the loss redraw this much later, one after another: each plot is a view
# of its own, so each paints in its own event-loop turn and no single paint holds the loop
# for all three (bench/live_chart.py).
STAGGER_MS = 15
LEGENDED = ("loss", "val")  # the learning rate's curves have the training loss's colours: no legend of its own
LEGEND_MARGIN_PX = 90  # what the axes take of a view's width beside the legend
LEGEND_ROW = 4  # the row of a PlotItem's own layout under its bottom axis (rows 0-3 are pyqtgraph's)


class ChartPanel(QWidget):
    """Three plots (loss by step, validation metrics, learning rate) with smoothing, log scale,
    x axis choice, a legend and the values under the cursor."""

    drawn = Signal(str, dict)  # run_id, {key: newest timestamp drawn (ms)} (for the latency bench)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.runs: dict[str, RunData] = {}
        self.curves: dict[tuple[str, str, str], pg.PlotDataItem] = {}
        self._metric_style: dict[str, int] = {}  # validation metric -> its line style's number
        self._metric_samples: dict[str, pg.PlotDataItem] = {}  # validation metric -> its legend entry
        self.roles: dict[str, str] = {}  # run_id -> "best" | "trial": a search's trial (chart_data.curve_style)
        self.x_axis = "step"
        self.alpha = 0.0

        self.axis_combo = QComboBox()
        self.axis_combo.addItems(X_AXES)
        self.axis_combo.currentTextChanged.connect(self._axis_changed)
        self.smooth = QDoubleSpinBox()
        self.smooth.setRange(0.0, 0.99)
        self.smooth.setSingleStep(0.1)
        self.smooth.setPrefix("EMA ")
        self.smooth.valueChanged.connect(self._smooth_changed)
        self.log_box = QCheckBox("Log scale")
        self.log_box.toggled.connect(self._log_changed)
        # Off by default: grid lines make every axis span its whole plot, and repainting
        # them on each range change was the largest cost of a live chart's paint.
        self.grid_box = QCheckBox("Grid")
        self.grid_box.toggled.connect(self._grid_changed)
        self.cursor_label = QLabel(" ")
        self.cursor_label.setObjectName("cursorValues")
        bar = QHBoxLayout()
        bar.addWidget(QLabel("x:"))
        bar.addWidget(self.axis_combo)
        bar.addWidget(self.smooth)
        bar.addWidget(self.log_box)
        bar.addWidget(self.grid_box)
        bar.addStretch(1)
        bar.addWidget(self.cursor_label)

        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(0)
        self.views: dict[str, pg.PlotWidget] = {}
        self.plots: dict[str, pg.PlotItem] = {}
        self._pending: dict[str, dict[str, set | None]] = {}  # plot -> {run_id: keys to redraw (None: all)}
        self._flush_timers: dict[str, QTimer] = {}
        self._proxies = []
        for order, (name, title, (row, col, span)) in enumerate(PLOT_LAYOUT):
            axes = {"left": SparseAxis("left")}
            if name == "val":
                axes["right"] = SparseAxis("right")
            view = pg.PlotWidget(title=title, axisItems=axes)
            plot = view.getPlotItem()
            if title is None:
                plot.setLabel("left", "lr")  # pyqtgraph adds the scale: "lr (x1e-06)"
            else:  # a loss of 0.4 reads 0.4, not "400 (x0.001)"
                plot.getAxis("left").enableAutoSIPrefix(False)
            # The legend is a row of the plot's own layout, under the axis: inside the view box
            # (pyqtgraph's place for it) it covered the newest points of every curve.
            if name in LEGENDED:
                legend = pg.LegendItem(offset=None, labelTextSize="8pt")
                plot.layout.addItem(legend, LEGEND_ROW, 1)
                plot.legend = legend  # plot(name=...) and removeItem keep it up to date
                view.sigDeviceRangeChanged.connect(lambda *_args, p=plot: self._fit_legend(p))  # on resize
            plot.setClipToView(True)
            plot.setDownsampling(auto=True, mode="peak")
            for axis in plot.axes.values():  # repainted from a cached pixmap unless its ticks changed
                axis["item"].setCacheMode(QGraphicsItem.DeviceCoordinateCache)
            # Fewer tick labels than pyqtgraph's default on short axes: they overlapped on the
            # learning-rate plot of a small window.
            plot.getAxis("left").setStyle(textFillLimits=[(0, 0.5), (2, 0.3)])
            view.setMinimumSize(120, 50)  # the Train tab still fits an 800x560 window
            grid.addWidget(view, row, col, 1, span)
            self.views[name], self.plots[name] = view, plot
            if order:  # the loss draws at once
                timer = QTimer(self)
                timer.setSingleShot(True)
                timer.setInterval(STAGGER_MS * order)
                timer.timeout.connect(lambda n=name: self._flush(n))
                self._flush_timers[name] = timer
            self._proxies.append(
                pg.SignalProxy(
                    view.scene().sigMouseMoved, rateLimit=30, slot=lambda event, n=name: self._mouse(n, event)
                )
            )
        grid.setRowStretch(0, 2)
        grid.setRowStretch(1, 1)
        self.score_box = self._score_axis(self.plots["val"])
        self._set_labels()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addLayout(grid, 1)

    @staticmethod
    def _score_axis(plot: pg.PlotItem) -> pg.ViewBox:
        """A second view box over ``plot``'s, sharing its x, with its own y axis on the right."""
        box = pg.ViewBox()
        plot.scene().addItem(box)
        plot.getAxis("right").linkToView(box)
        plot.getAxis("right").enableAutoSIPrefix(False)  # a score reads 0.08, not "80 (x0.001)"
        box.setXLink(plot.vb)
        box.setZValue(plot.vb.zValue() + 1)
        plot.vb.sigResized.connect(lambda vb: box.setGeometry(vb.mapRectToScene(vb.rect())))
        plot.setLabel("left", "loss")
        plot.setLabel("right", "score")
        return box

    def _fit_legend(self, plot: pg.PlotItem) -> None:
        """As many legend columns as the view's width holds: a legend wider than its view would
        widen the plot past the view's edge."""
        legend = plot.legend
        if legend is None or not legend.items:
            return
        widest = max(sample.boundingRect().width() + label.boundingRect().width() + 8 for sample, label in legend.items)
        room = plot.getViewWidget().width() - LEGEND_MARGIN_PX
        legend.setColumnCount(max(1, min(len(legend.items), int(room // max(widest, 1.0)))))

    # ------------------------------------------------------------------ runs
    def add_run(self, run_id: str, label: str) -> None:
        if run_id not in self.runs:
            self.runs[run_id] = RunData(run_id, label)

    def set_roles(self, roles: dict[str, str]) -> None:
        """Draw a search's trials as such: ``{run_id: "best" | "trial"}`` (runs not named: plain)."""
        changed = {r for r in set(roles) | set(self.roles) if roles.get(r) != self.roles.get(r)}
        self.roles = dict(roles)
        for (run_id, plot_name, key), curve in self.curves.items():
            if run_id in changed:
                self._style(curve, run_id, plot_name, key)

    def _style(self, curve: pg.PlotDataItem, run_id: str, plot_name: str, key: str) -> None:
        pen = self._pen(run_id, plot_name, key)
        curve.setPen(pen)
        if plot_name == "val":
            curve.setSymbolBrush(pen.color())
            curve.setSymbolPen(pen.color())
        curve.setZValue(curve_style(self.roles.get(run_id))[2])

    def _pen(self, run_id: str, plot_name: str, key: str) -> pg.QtGui.QPen:
        width, opacity, _z = curve_style(self.roles.get(run_id))
        colour = pg.mkColor(self._colour(run_id))
        colour.setAlpha(opacity)
        if plot_name == "val":
            pen = self._metric_pen(key, colour)
            pen.setWidth(width)
            return pen
        return pg.mkPen(colour, width=width)

    def remove_run(self, run_id: str) -> None:
        self.runs.pop(run_id, None)
        for key in [k for k in self.curves if k[0] == run_id]:
            curve = self.curves.pop(key)
            plot = self.plots[key[1]]
            if curve.getViewBox() is self.score_box:
                self.score_box.removeItem(curve)
            else:
                plot.removeItem(curve)  # and from its legend
        self._fit_legend(self.plots["loss"])
        charted = {key for (_run, plot_name, key) in self.curves if plot_name == "val"}
        for key in [k for k in self._metric_samples if k not in charted]:  # no run shows it any more
            self.plots["val"].legend.removeItem(self._metric_samples.pop(key))
        self._fit_legend(self.plots["val"])

    def run_ids(self) -> list[str]:
        return list(self.runs)

    def add_points(self, run_id: str, points: dict) -> None:
        run = self.runs.get(run_id)
        if run is None:
            return
        changed = run.add(points)
        keys = None if "epoch" in changed else changed  # new epoch marks move every point on an epoch axis
        self._draw_run(run, keys, "loss")  # at once: the live loss is what a user watches
        for name, timer in self._flush_timers.items():
            pending = self._pending.setdefault(name, {})
            known = pending.get(run_id, set())
            pending[run_id] = None if keys is None or known is None else known | set(keys)
            if not timer.isActive():
                timer.start()
        newest = {k: int(max(p[2] for p in v)) for k, v in points.items() if v}
        self.drawn.emit(run_id, newest)

    def point_count(self, run_id: str, key: str = TRAIN_LOSS) -> int:
        run = self.runs.get(run_id)
        return len(run.series[key]) if run is not None and key in run.series else 0

    # ------------------------------------------------------------------ drawing
    def _colour(self, run_id: str, index: int = 0) -> str:
        base = list(self.runs).index(run_id) if run_id in self.runs else 0
        return PALETTE[(base + index * 3) % len(PALETTE)]

    def _targets(self, run: RunData) -> list[tuple[str, str]]:
        out = []
        if TRAIN_LOSS in run.series:
            out.append(("loss", TRAIN_LOSS))
        out += [("val", key) for key in run.validation_keys()]
        if LEARNING_RATE in run.series:
            out.append(("lr", LEARNING_RATE))
        return out

    def _flush(self, plot_name: str) -> None:
        for run_id, keys in self._pending.pop(plot_name, {}).items():
            run = self.runs.get(run_id)
            if run is not None:
                self._draw_run(run, keys, plot_name)

    def _draw_run(self, run: RunData, keys, only_plot: str | None = None) -> None:
        vals = run.validation_keys()
        for plot_name, key in self._targets(run):
            if (keys is not None and key not in keys) or (only_plot is not None and plot_name != only_plot):
                continue
            axis = self.x_axis if plot_name != "val" or self.x_axis == "wall time" else "epoch"
            alpha = self.alpha if plot_name == "loss" else 0.0
            x, y = run.xy(key, axis, alpha)
            if plot_name == "val" and not np.isfinite(x).any():
                x = run.series[key].step.astype(np.float64)
            curve = self.curves.get((run.run_id, plot_name, key))
            if curve is None:
                curve = self._new_curve(run, plot_name, key, vals)
                self.curves[(run.run_id, plot_name, key)] = curve
            curve.setData(x, y)

    def _metric_pen(self, key: str, colour) -> pg.QtGui.QPen:
        """A validation metric's line style, the same for every run (losses first: solid, then dashed ...)."""
        style = self._metric_style[key] % 4
        # Width 1: a wider pen goes through Qt's stroker, several times slower to paint.
        return pg.mkPen(
            colour,
            width=1,
            style=[pg.QtCore.Qt.SolidLine, pg.QtCore.Qt.DashLine, pg.QtCore.Qt.DotLine, pg.QtCore.Qt.DashDotLine][
                style
            ],
        )

    def _new_curve(self, run: RunData, plot_name: str, key: str, vals: list[str]) -> pg.PlotDataItem:
        """A run has one colour in every plot.  The loss legend names the runs by colour; the
        validation legend names the metrics by line style (one entry per metric, not per run and
        metric: with three runs of four metrics that legend was taller than its plot)."""
        plot = self.plots[plot_name]
        z = curve_style(self.roles.get(run.run_id))[2]
        if plot_name != "val":
            pen = self._pen(run.run_id, plot_name, key)
            # One min/max pair per pixel column ("peak"): 10,000 steps draw as ~1,000 points.
            curve = plot.plot(name=run.label if plot.legend is not None else None, pen=pen, autoDownsampleFactor=1.0)
            curve.setZValue(z)
            self._fit_legend(plot)
            return curve
        for k in sorted(vals, key=lambda k: not is_loss(k)):
            self._metric_style.setdefault(k, len(self._metric_style))
        symbol = "o" if is_loss(key) else "t"
        pen = self._pen(run.run_id, plot_name, key)
        curve = pg.PlotDataItem(pen=pen, symbol=symbol, symbolSize=5, symbolBrush=pen.color(), symbolPen=pen.color())
        curve.setZValue(z)
        if is_loss(key):
            plot.addItem(curve)
        else:  # a score: against the right-hand axis
            self.score_box.addItem(curve)
        if key not in self._metric_samples:
            sample = pg.PlotDataItem(
                pen=self._metric_pen(key, "#444"), symbol=symbol, symbolSize=5, symbolBrush="#444", symbolPen="#444"
            )
            self._metric_samples[key] = sample
            plot.legend.addItem(sample, key[4:] + ("" if is_loss(key) else " (right axis)"))
            self._fit_legend(plot)
        return curve

    def redraw(self) -> None:
        self._pending.clear()
        for run in self.runs.values():
            self._draw_run(run, None)
        self._set_labels()

    def _set_labels(self) -> None:
        xlabel = {"step": "step", "epoch": "epoch", "wall time": "seconds"}[self.x_axis]
        self.plots["loss"].setLabel("bottom", xlabel)
        self.plots["lr"].setLabel("bottom", xlabel)
        self.plots["val"].setLabel("bottom", "seconds" if self.x_axis == "wall time" else "epoch")

    def _axis_changed(self, text: str) -> None:
        self.x_axis = text
        self.redraw()

    def _smooth_changed(self, value: float) -> None:
        self.alpha = float(value)
        self.redraw()

    def _log_changed(self, on: bool) -> None:
        self.plots["loss"].setLogMode(y=on)
        self.plots["lr"].setLogMode(y=on)

    def _grid_changed(self, on: bool) -> None:
        for plot in self.plots.values():
            plot.showGrid(x=on, y=on, alpha=0.2)

    def set_log_scale(self, on: bool) -> None:
        self.log_box.setChecked(on)

    def _mouse(self, name: str, event) -> None:
        pos = event[0]
        plot = self.plots[name]
        if plot.sceneBoundingRect().contains(pos):
            point = plot.vb.mapSceneToView(pos)
            parts = []
            for (run_id, plot_name, key), curve in self.curves.items():
                if plot_name != name:
                    continue
                x, y = curve.getOriginalDataset()  # every point, not the ones drawn per pixel
                if x is None or not len(x):
                    continue
                i = int(np.clip(np.searchsorted(x, point.x()), 0, len(x) - 1))
                value = y[i]
                if plot.ctrl.logYCheck.isChecked():
                    value = 10**value
                parts.append(f"{self.runs[run_id].label} {key}: {value:.4g} @ {x[i]:.4g}")
            self.cursor_label.setText(" | ".join(parts[:4]) or " ")
            return
