"""The runs table (filter by status and task; tick to chart; stop, resume, open, config, copy id)
and a finished run's summary (final metrics; confusion matrix heat map for classification)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (QComboBox, QGridLayout, QHBoxLayout, QHeaderView, QLabel, QMessageBox,
                               QPlainTextEdit, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from .progress import format_duration
from .runs_model import STATUSES, RunRow, filter_runs, run_config_text

COLUMNS = ("Name", "Status", "Task", "Model", "Best", "Started", "Duration")
STATUS_COLOURS = {"RUNNING": "#1565c0", "LOST": "#b26a00", "FINISHED": "#2e7d32", "KILLED": "#6d4c41",
                  "FAILED": "#b00020"}


class RunsTable(QWidget):
    chart_toggled = Signal(str, str, bool)  # run_id, label, ticked
    stop_requested = Signal(str)
    resume_requested = Signal(str)
    selected = Signal(object)  # RunRow or None

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list[RunRow] = []
        self.shown: list[RunRow] = []
        self.ticked: set[str] = set()
        self.status_filter = QComboBox()
        self.status_filter.addItem("all statuses", None)
        for status in STATUSES:
            self.status_filter.addItem(status, status)
        self.task_filter = QComboBox()
        self.task_filter.addItem("all tasks", None)
        for task in ("classification", "detection", "segmentation", "multitask"):
            self.task_filter.addItem(task, task)
        self.status_filter.currentIndexChanged.connect(self._fill)
        self.task_filter.currentIndexChanged.connect(self._fill)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QTableWidget.SelectRows)
        self.table.setSelectionMode(QTableWidget.SingleSelection)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemChanged.connect(self._item_changed)
        self.table.itemSelectionChanged.connect(self._selection)

        self.buttons = {}
        actions = QGridLayout()  # two short rows fit a small window where one long row clips
        for k, (name, slot) in enumerate((("Stop", self._stop), ("Resume", self._resume),
                                          ("Open folder", self._open), ("Show config", self._config),
                                          ("Copy id", self._copy))):
            button = QPushButton(name)
            button.clicked.connect(slot)
            button.setEnabled(False)
            self.buttons[name] = button
            actions.addWidget(button, k // 3, k % 3)
        actions.setColumnStretch(3, 1)

        top = QHBoxLayout()
        top.addWidget(QLabel("Runs"))
        top.addStretch(1)
        top.addWidget(self.status_filter)
        top.addWidget(self.task_filter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addLayout(actions)

    # ------------------------------------------------------------------ contents
    def set_rows(self, rows: list[RunRow]) -> None:
        selected = self.current()
        self.rows = rows
        self._fill(keep=selected.run_id if selected else None)

    def row_for(self, run_id: str) -> RunRow | None:
        return next((r for r in self.rows if r.run_id == run_id), None)

    def _fill(self, *_args, keep: str | None = None) -> None:
        if keep is None and self.current() is not None:
            keep = self.current().run_id
        self.shown = filter_runs(self.rows, self.status_filter.currentData(), self.task_filter.currentData())
        self.table.blockSignals(True)
        self.table.setRowCount(len(self.shown))
        for i, row in enumerate(self.shown):
            values = (row.name, row.status, row.task, row.model, row.best, row.started,
                      format_duration(row.duration_s) if row.duration_s is not None else "")
            for j, value in enumerate(values):
                item = QTableWidgetItem(value)
                if j == 0:
                    item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
                    item.setCheckState(Qt.Checked if row.run_id in self.ticked else Qt.Unchecked)
                    item.setToolTip(f"{row.run_id}\ntick to chart this run")
                    item.setData(Qt.UserRole, row.run_id)
                if j == 1:
                    item.setForeground(pg.mkColor(STATUS_COLOURS.get(row.status, "#000")))
                self.table.setItem(i, j, item)
            if row.run_id == keep:
                self.table.selectRow(i)
        self.table.blockSignals(False)
        self._selection()

    def current(self) -> RunRow | None:
        items = self.table.selectedItems() if hasattr(self, "table") else []
        if not items:
            return None
        index = items[0].row()
        return self.shown[index] if index < len(self.shown) else None

    def set_ticked(self, run_id: str, ticked: bool) -> None:
        (self.ticked.add if ticked else self.ticked.discard)(run_id)
        for i, row in enumerate(self.shown):
            if row.run_id == run_id:
                self.table.blockSignals(True)
                self.table.item(i, 0).setCheckState(Qt.Checked if ticked else Qt.Unchecked)
                self.table.blockSignals(False)

    def select_run(self, run_id: str) -> None:
        for i, row in enumerate(self.shown):
            if row.run_id == run_id:
                self.table.selectRow(i)

    # ------------------------------------------------------------------ actions
    def _item_changed(self, item: QTableWidgetItem) -> None:
        if item.column() != 0:
            return
        run_id = item.data(Qt.UserRole)
        ticked = item.checkState() == Qt.Checked
        (self.ticked.add if ticked else self.ticked.discard)(run_id)
        self.chart_toggled.emit(run_id, item.text(), ticked)

    def _selection(self) -> None:
        row = self.current()
        self.buttons["Stop"].setEnabled(bool(row and row.can_stop))
        self.buttons["Resume"].setEnabled(bool(row and row.can_resume))
        for name in ("Open folder", "Show config", "Copy id"):
            self.buttons[name].setEnabled(row is not None)
        self.selected.emit(row)

    def _stop(self) -> None:
        if self.current():
            self.stop_requested.emit(self.current().run_id)

    def _resume(self) -> None:
        if self.current():
            self.resume_requested.emit(self.current().run_id)

    def _open(self) -> None:
        row = self.current()
        if row and row.run_dir:
            QDesktopServices.openUrl(QUrl.fromLocalFile(row.run_dir))

    def _config(self) -> None:
        row = self.current()
        if row is None:
            return
        try:
            text = run_config_text(row)
        except FileNotFoundError as exc:
            text = str(exc)
        box = QMessageBox(self)
        box.setWindowTitle(f"Configuration of {row.name}")
        box.setText(f"{row.run_dir}/run.yaml" if row.run_dir else row.run_id)
        box.setDetailedText(text)
        box.open()

    def _copy(self) -> None:
        row = self.current()
        if row:
            QGuiApplication.clipboard().setText(row.run_id)


class RunSummary(QWidget):
    """Final metrics of the selected run, and its confusion matrix as a heat map."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = QLabel("Select a finished run to see its summary.")
        self.title.setWordWrap(True)
        self.metrics = QPlainTextEdit()
        self.metrics.setReadOnly(True)
        self.metrics.setMaximumWidth(320)
        self.heat = pg.PlotWidget(title="Confusion matrix (rows: true class)")
        self.heat.setMinimumSize(260, 220)
        self.heat.setAspectLocked(True)
        self.heat.invertY(True)
        self.image = pg.ImageItem()
        self.heat.addItem(self.image)
        self.heat.hide()
        self._labels: list = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        body = QHBoxLayout()
        body.addWidget(self.metrics, 1)
        body.addWidget(self.heat, 2)
        layout.addLayout(body, 1)

    def show_summary(self, summary: dict) -> None:
        self.title.setText(f"<b>{summary['run_id'][:8]}</b> · {summary['status']} · {summary['task']}")
        lines = [f"{k}: {v:.5g}" for k, v in sorted(summary["metrics"].items())]
        self.metrics.setPlainText("\n".join(lines))
        for item in self._labels:
            self.heat.removeItem(item)
        self._labels = []
        cm = summary.get("confusion")
        if not cm:
            self.heat.hide()
            return
        matrix = np.asarray(cm["matrix"], dtype=float)
        self.image.setImage(matrix.T, levels=(0, max(1.0, matrix.max())))
        self.image.setColorMap(pg.colormap.get("viridis"))
        names = cm["labels"]
        ticks = [[(i + 0.5, str(n)) for i, n in enumerate(names)]]
        self.heat.getAxis("bottom").setTicks(ticks)
        self.heat.getAxis("left").setTicks(ticks)
        self.heat.setLabel("bottom", "predicted")
        self.heat.setLabel("left", "true")
        for r in range(matrix.shape[0]):
            for c in range(matrix.shape[1]):
                text = pg.TextItem(f"{int(matrix[r, c])}", color="w", anchor=(0.5, 0.5))
                text.setPos(c + 0.5, r + 0.5)
                self.heat.addItem(text)
                self._labels.append(text)
        self.heat.setRange(xRange=(0, matrix.shape[1]), yRange=(0, matrix.shape[0]), padding=0.02)
        self.heat.show()

    def clear(self, message: str = "Select a finished run to see its summary.") -> None:
        self.title.setText(message)
        self.metrics.clear()
        self.heat.hide()
