"""The runs table (filter by status and task; tick to chart; stop, resume, open, config, copy id,
export, evaluate, predict)
and a finished run's summary (why it failed; final metrics; confusion matrix for classification).

A search's trials are listed under the search, which ticks (charts) only its best trial by
itself; a trial ASHA stopped early says so.  Until the first list of runs arrives the table
says it is loading, so an empty table means no runs."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.catalog.task_names import ALL_TASKS

from .confusion_view import ConfusionMatrixView
from .export_model import can_export
from .progress import format_duration
from .runs_model import EARLY_STOPPED, STATUSES, RunRow, best_trials, filter_runs, run_config_text, trials_of

SUMMARY_HINT = "Select a finished run to see its summary."
COLUMNS = ("Name", "Status", "Task", "Model", "Best", "Started", "Duration")
STATUS_COLOURS = {
    "RUNNING": "#1565c0",
    "LOST": "#b26a00",
    "FINISHED": "#2e7d32",
    "KILLED": "#6d4c41",
    "FAILED": "#b00020",
    EARLY_STOPPED: "#7b6f00",
}
LOADING, EMPTY = "Loading runs…", "No runs yet: Train or Tune starts one."
BUTTON_TIPS = {
    "Export…": "Export a finished run to a Hugging Face folder and ONNX (a search: its best trial)",
    "Evaluate": "Where a finished run is wrong: per-class figures, confusion, false positives and misses",
    "Predict…": "Run a finished run's model on images and draw its predictions",
}


def is_finished_run(row: RunRow | None) -> bool:
    """A run with a model to evaluate or predict with: finished, and not a search (its trials are)."""
    return row is not None and row.status == "FINISHED" and not row.is_search


class RunsTable(QWidget):
    chart_toggled = Signal(str, str, bool)  # run_id, label, ticked
    stop_requested = Signal(str)
    resume_requested = Signal(str)
    export_requested = Signal(str)  # a finished run, or a search with a finished trial (its best is exported)
    evaluate_requested = Signal(str)  # a finished run (not a search): show its evaluation
    predict_requested = Signal(str)  # a finished run (not a search): predict on images with it
    selected = Signal(object)  # RunRow or None

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list[RunRow] = []
        self.shown: list[RunRow] = []
        self.ticked: set[str] = set()
        self.loaded = False
        self._expanded: dict[str, bool] = {}  # search id -> expanded (new searches open expanded)
        self._default_ticks: dict[str, str] = {}  # search id -> the trial this table ticked as its best
        self._chosen: set[str] = set()  # searches whose trials the user ticked or unticked by hand
        self.status_filter = QComboBox()
        self.status_filter.addItem("all statuses", None)
        for status in STATUSES:
            self.status_filter.addItem(status, status)
        self.task_filter = QComboBox()
        self.task_filter.addItem("all tasks", None)
        for task in ALL_TASKS:
            self.task_filter.addItem(task, task)
        self.status_filter.currentIndexChanged.connect(self._fill)
        self.task_filter.currentIndexChanged.connect(self._fill)

        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setSelectionBehavior(QTreeWidget.SelectRows)
        self.tree.setSelectionMode(QTreeWidget.SingleSelection)
        self.tree.setEditTriggers(QTreeWidget.NoEditTriggers)
        self.tree.setUniformRowHeights(True)
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.tree.header().setStretchLastSection(True)
        self.tree.itemChanged.connect(self._item_changed)
        self.tree.itemSelectionChanged.connect(self._selection)
        self.tree.itemExpanded.connect(lambda item: self._remember_expanded(item, True))
        self.tree.itemCollapsed.connect(lambda item: self._remember_expanded(item, False))

        # Until the first list arrives (seconds, on a cold store), a busy line says so.
        self.notice = QLabel(LOADING)
        self.notice.setObjectName("runsNotice")
        self.notice.setAlignment(Qt.AlignCenter)
        self.notice.setWordWrap(True)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # no end known: an animated bar
        self.busy.setTextVisible(False)
        self.busy.setMaximumWidth(240)
        notice_page = QWidget()
        notice_layout = QVBoxLayout(notice_page)
        notice_layout.addStretch(1)
        notice_layout.addWidget(self.notice)
        notice_layout.addWidget(self.busy, 0, Qt.AlignHCenter)
        notice_layout.addStretch(1)
        self.pages = QStackedWidget()
        self.pages.addWidget(notice_page)
        self.pages.addWidget(self.tree)

        self.buttons = {}
        actions = QGridLayout()  # two short rows fit a small window where one long row clips
        for k, (name, slot) in enumerate(
            (
                ("Stop", self._stop),
                ("Resume", self._resume),
                ("Open folder", self._open),
                ("Show config", self._config),
                ("Copy id", self._copy),
                ("Export…", self._export),
                ("Evaluate", self._evaluate),
                ("Predict…", self._predict),
            )
        ):
            button = QPushButton(name)
            button.clicked.connect(slot)
            button.setToolTip(BUTTON_TIPS.get(name, ""))
            button.setEnabled(False)
            self.buttons[name] = button
            actions.addWidget(button, k // 4, k % 4)
        actions.setColumnStretch(4, 1)

        top = QHBoxLayout()
        top.addWidget(QLabel("Runs"))
        top.addStretch(1)
        top.addWidget(self.status_filter)
        top.addWidget(self.task_filter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.pages, 1)
        layout.addLayout(actions)

    # ------------------------------------------------------------------ contents
    @property
    def loading(self) -> bool:
        return self.pages.currentIndex() == 0 and not self.busy.isHidden()

    def set_rows(self, rows: list[RunRow]) -> None:
        selected = self.current()
        self.rows = rows
        self.loaded = True
        self._fill(keep=selected.run_id if selected else None)
        self._tick_best_trials()

    def set_load_failed(self, message: str) -> None:
        """The list could not be read: say so where the runs would be (the next refresh may succeed)."""
        if self.loaded:
            return  # the runs already shown stay; the next refresh tries again
        self.busy.hide()
        self.notice.setText(f"Could not read the runs: {message}")
        self.pages.setCurrentIndex(0)

    def row_for(self, run_id: str) -> RunRow | None:
        return next((r for r in self.rows if r.run_id == run_id), None)

    def item_for(self, run_id: str) -> QTreeWidgetItem | None:
        for item in self._items():
            if item.data(0, Qt.UserRole) == run_id:
                return item
        return None

    def _items(self):
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            yield top
            for j in range(top.childCount()):
                yield top.child(j)

    def _fill(self, *_args, keep: str | None = None) -> None:
        if keep is None and self.current() is not None:
            keep = self.current().run_id
        shown = filter_runs(self.rows, self.status_filter.currentData(), self.task_filter.currentData())
        groups = trials_of(self.rows)
        listed = {r.run_id for r in self.rows}
        shown_ids = {r.run_id for r in shown}
        top_rows = [
            r
            for r in self.rows
            if not (r.search_id in groups and r.search_id in listed)
            and (r.run_id in shown_ids or any(t.run_id in shown_ids for t in groups.get(r.run_id, [])))
        ]
        scrolled = self.tree.verticalScrollBar().value()
        self.tree.blockSignals(True)
        self.tree.clear()
        self.shown = []
        keep_item = None
        for row in top_rows:
            item = self._item(row, groups.get(row.run_id))
            self.tree.addTopLevelItem(item)
            self.shown.append(row)
            for trial in groups.get(row.run_id, []):
                if trial.run_id in shown_ids:
                    child = self._item(trial)
                    item.addChild(child)
                    self.shown.append(trial)
                    keep_item = child if trial.run_id == keep else keep_item
            item.setExpanded(self._expanded.get(row.run_id, True))
            keep_item = item if row.run_id == keep else keep_item
        if keep_item is not None:
            self.tree.setCurrentItem(keep_item)
        self.tree.verticalScrollBar().setValue(scrolled)  # a refresh every few seconds must not scroll
        self.tree.blockSignals(False)
        if self.loaded:
            self.busy.hide()
            self.notice.setText(EMPTY)
        self.pages.setCurrentIndex(1 if self.rows else 0)  # filters that hide every run show the empty tree
        self._selection()

    def _item(self, row: RunRow, trials: list[RunRow] | None = None) -> QTreeWidgetItem:
        best = row.best
        if trials is not None:  # a search: how many trials, and which is best
            leader = best_trials(self.rows).get(row.run_id)
            best = f"{len(trials)} trials" + (f" · best {leader.name}: {leader.best}" if leader else "")
        values = (
            row.name,
            row.shown_status,
            row.task,
            row.model,
            best,
            row.started,
            format_duration(row.duration_s) if row.duration_s is not None else "",
        )
        item = QTreeWidgetItem([str(v) for v in values])
        item.setData(0, Qt.UserRole, row.run_id)
        tip = row.run_id
        if trials is None:  # a search's own run logs no curves: its trials are charted
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(0, Qt.Checked if row.run_id in self.ticked else Qt.Unchecked)
            tip += "\ntick to chart this run"
        else:
            item.setFlags(item.flags() & ~Qt.ItemIsUserCheckable)
            tip += "\na search: its trials are listed under it"
        if row.early_stopped:
            tip += "\nthe search's scheduler (ASHA) stopped this trial early: its metric was behind the others'"
        if row.error:
            tip += f"\nwhy it failed: {row.error}"
        for column in range(len(COLUMNS)):
            item.setToolTip(column, tip)
        item.setForeground(1, pg.mkColor(STATUS_COLOURS.get(row.shown_status, "#000")))
        return item

    def current(self) -> RunRow | None:
        if not hasattr(self, "tree"):
            return None
        items = self.tree.selectedItems()
        return self.row_for(items[0].data(0, Qt.UserRole)) if items else None

    def set_ticked(self, run_id: str, ticked: bool) -> None:
        (self.ticked.add if ticked else self.ticked.discard)(run_id)
        item = self.item_for(run_id)
        if item is not None and item.flags() & Qt.ItemIsUserCheckable:
            self.tree.blockSignals(True)
            item.setCheckState(0, Qt.Checked if ticked else Qt.Unchecked)
            self.tree.blockSignals(False)

    def select_run(self, run_id: str) -> None:
        item = self.item_for(run_id)
        if item is not None:
            self.tree.setCurrentItem(item)

    def _remember_expanded(self, item: QTreeWidgetItem, expanded: bool) -> None:
        self._expanded[item.data(0, Qt.UserRole)] = expanded

    def _tick_best_trials(self) -> None:
        """Chart each going search's best trial, and only that one, until the user ticks its trials
        by hand; when a better trial takes the lead, the tick moves to it."""
        for search_id, best in best_trials(self.rows).items():
            search = self.row_for(search_id)
            if search_id in self._chosen or (search_id not in self._default_ticks and not search.can_stop):
                continue  # the user chose, or a search that had ended before this session saw it
            previous = self._default_ticks.get(search_id)
            if previous == best.run_id:
                continue
            self._default_ticks[search_id] = best.run_id
            if previous in self.ticked:
                self.set_ticked(previous, False)
                self.chart_toggled.emit(previous, self.row_for(previous).name if self.row_for(previous) else "", False)
            if best.run_id not in self.ticked:
                self.set_ticked(best.run_id, True)
                self.chart_toggled.emit(best.run_id, best.name, True)

    # ------------------------------------------------------------------ actions
    def _item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if column != 0 or not item.flags() & Qt.ItemIsUserCheckable:
            return
        run_id = item.data(0, Qt.UserRole)
        ticked = item.checkState(0) == Qt.Checked
        if ticked == (run_id in self.ticked):
            return
        (self.ticked.add if ticked else self.ticked.discard)(run_id)
        row = self.row_for(run_id)
        if row is not None and row.search_id:
            self._chosen.add(row.search_id)  # from now on the user decides what of this search is charted
        self.chart_toggled.emit(run_id, item.text(0), ticked)

    def _selection(self) -> None:
        row = self.current()
        self.buttons["Stop"].setEnabled(bool(row and row.can_stop))
        self.buttons["Resume"].setEnabled(bool(row and row.can_resume))
        for name in ("Open folder", "Show config", "Copy id"):
            self.buttons[name].setEnabled(row is not None)
        self.buttons["Export…"].setEnabled(can_export(row, self.rows))
        for name in ("Evaluate", "Predict…"):
            self.buttons[name].setEnabled(is_finished_run(row))
        self.selected.emit(row)

    def _stop(self) -> None:
        if self.current():
            self.stop_requested.emit(self.current().run_id)

    def _resume(self) -> None:
        if self.current():
            self.resume_requested.emit(self.current().run_id)

    def _export(self) -> None:
        if can_export(self.current(), self.rows):
            self.export_requested.emit(self.current().run_id)

    def _evaluate(self) -> None:
        if is_finished_run(self.current()):
            self.evaluate_requested.emit(self.current().run_id)

    def _predict(self) -> None:
        if is_finished_run(self.current()):
            self.predict_requested.emit(self.current().run_id)

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
    """The selected run: why it failed (the engine's ``lightbox.error`` tag), its final metrics,
    and its confusion matrix as a heat map."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = QLabel(SUMMARY_HINT)
        self.title.setWordWrap(True)
        self.error = QLabel()
        self.error.setObjectName("runError")
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.error.setStyleSheet("background: #fdecea; color: #b00020; border: 1px solid #f5c2c0; padding: 4px;")
        self.error.hide()
        self.metrics = QPlainTextEdit()
        self.metrics.setReadOnly(True)
        self.metrics.setMaximumWidth(320)
        self.heat = QWidget()  # the matrix under its title, hidden when the run has none
        self.matrix = ConfusionMatrixView()
        heat_layout = QVBoxLayout(self.heat)
        heat_layout.setContentsMargins(0, 0, 0, 0)
        heat_layout.addWidget(QLabel("Confusion matrix (rows: true class; point at a cell for its names)"))
        heat_layout.addWidget(self.matrix, 1)
        self.heat.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.error)
        body = QHBoxLayout()
        body.addWidget(self.metrics, 1)
        body.addWidget(self.heat, 2)
        layout.addLayout(body, 1)

    def show_summary(self, summary: dict) -> None:
        self.title.setText(f"<b>{summary['run_id'][:8]}</b> · {summary['status']} · {summary['task']}")
        error = summary.get("error")
        self.error.setText(f"Why it failed: {error}" if error else "")
        self.error.setVisible(bool(error))
        lines = [f"{k}: {v:.5g}" for k, v in sorted(summary["metrics"].items())]
        self.metrics.setPlainText("\n".join(lines))
        cm = summary.get("confusion")
        if not cm:
            self.heat.hide()
            return
        self.matrix.set_matrix(cm["matrix"], cm["labels"])
        self.heat.show()

    def clear(self, message: str = SUMMARY_HINT) -> None:
        self.title.setText(message)
        self.error.hide()
        self.metrics.clear()
        self.heat.hide()
