"""The Evaluate tab's "Compare with…": the shown run (A) against a second finished run of its task (B).

The runs offered, and B's evaluation, are read in TaskSlots (never on the GUI thread); a B without an
evaluation is offered "Evaluate now" (``python -m engine eval RUN_ID`` as a QProcess, as the tab does
for one run). The per-class table has each figure for A, B and B − A, the differences coloured; a
header click sorts (a difference column's first click puts the biggest loss first), empty figures last.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QProcess, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..widgets.task_slot import TaskSlot
from .evaluation_compare import DIFF, Comparison, ComparisonError, RunSide, change, comparable_runs, compare
from .evaluation_model import REPORT_FILE, Evaluation, engine_eval_command, find_report, load_evaluation

BETTER, WORSE = QColor("#1b7a2e"), QColor("#c62828")
BETTER_FILL, WORSE_FILL = QColor("#e3f3e6"), QColor("#fbe4e4")
NOTE_STYLE = "QLabel { background: #fff4d6; border: 1px solid #e0b84c; padding: 4px; }"


def runs_to_compare(tracking_uri: str | None, workspace: str | None, run_id: str, task: str):
    """(run A's row or None, [(row, has an evaluation)]) of the runs A can be compared with (a worker's job)."""
    from engine.tracking.store import resolve_tracking_uri

    from .runs_model import load_runs

    rows = load_runs(resolve_tracking_uri(tracking_uri, workspace))
    own = next((r for r in rows if r.run_id == run_id), None)
    offered = [
        (r, bool(r.run_dir) and (Path(r.run_dir) / REPORT_FILE).is_file()) for r in comparable_runs(rows, run_id, task)
    ]
    return own, offered


def read_evaluation(run_id: str, run_dir: str | None, tracking_uri: str | None, workspace: str | None):
    """The run's evaluation, read and indexed; None when it has none yet (a worker's job)."""
    path = find_report(run_id, run_dir, tracking_uri, workspace)
    return load_evaluation(path) if path is not None else None


def shown(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def shown_difference(value: float | None) -> str:
    if value is None:
        return "–"
    return "0.000" if change(value) == 0 else f"{value:+.3f}".replace("-", "−")


def _cell(key: str, value) -> QTableWidgetItem:
    is_diff = key.endswith(DIFF)
    item = QTableWidgetItem(shown_difference(value) if is_diff else shown(value))
    if key != "name":
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    if is_diff and change(value):
        better = change(value) > 0
        item.setForeground(QBrush(BETTER if better else WORSE))
        item.setBackground(QBrush(BETTER_FILL if better else WORSE_FILL))
        item.setToolTip("B better than A" if better else "B worse than A")
    return item


def _table(parent=None) -> QTableWidget:
    table = QTableWidget(parent)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.verticalHeader().hide()
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    return table


class CompareTable(QTableWidget):
    """Per class: supports, then each figure for A, B and B − A; a header click sorts by that column."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.comparison: Comparison | None = None
        self.keys: list[str] = []
        self.sort_key: str | None = None
        self.descending = False
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.verticalHeader().hide()
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(True)
        self.horizontalHeader().setSortIndicatorShown(True)
        self.horizontalHeader().sectionClicked.connect(self._header_clicked)

    def set_comparison(self, comparison: Comparison) -> None:
        self.comparison = comparison
        self.keys = comparison.columns
        self.sort_key, self.descending = None, False
        self.setColumnCount(len(self.keys))
        self.setHorizontalHeaderLabels([comparison.header(k) for k in self.keys])
        for column, key in enumerate(self.keys):
            tip = "B − A: green where B is better, red where it is worse" if key.endswith(DIFF) else ""
            self.horizontalHeaderItem(column).setToolTip(tip)
        self.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self._fill(comparison.rows)

    def sort_by(self, key: str, descending: bool) -> None:
        if self.comparison is None:
            return
        self.sort_key, self.descending = key, descending
        order = Qt.SortOrder.DescendingOrder if descending else Qt.SortOrder.AscendingOrder
        self.horizontalHeader().setSortIndicator(self.keys.index(key), order)
        self._fill(self.comparison.sorted_rows(key, descending))

    def column_texts(self, key: str) -> list[str]:
        column = self.keys.index(key)
        return [self.item(r, column).text() for r in range(self.rowCount())]

    def _header_clicked(self, column: int) -> None:
        key = self.keys[column]
        # Again: the other way. First: names A to Z, differences biggest loss first, the rest biggest first.
        first = key != "name" and not key.endswith(DIFF)
        descending = (not self.descending) if key == self.sort_key else first
        self.sort_by(key, descending)

    def _fill(self, rows: list[dict]) -> None:
        self.clearContents()
        self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, key in enumerate(self.keys):
                self.setItem(r, c, _cell(key, row.get(key)))


class CompareView(QWidget):
    back_requested = Signal()
    compared = Signal(object)  # Comparison

    def __init__(self, workspace: str | None = None, tracking_uri: str | None = None, parent=None):
        super().__init__(parent)
        self.workspace, self.tracking_uri = workspace, tracking_uri
        self.evaluation_a: Evaluation | None = None
        self.side_a = RunSide("")
        self.run_a = ""
        self.offered: list = []  # (RunRow, has an evaluation) in the picker's order
        self.run_b = None  # the chosen RunRow
        self.comparison: Comparison | None = None
        self.process: QProcess | None = None
        self._last_line = ""
        self._runs_slot, self._load_slot = TaskSlot(self), TaskSlot(self)

        self.header = QLabel()
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.picker = QComboBox()
        self.picker.setMinimumContentsLength(40)
        self.picker.setToolTip("Finished runs of the same task; those without an evaluation can be evaluated here")
        self.picker.activated.connect(self._picked)
        self.evaluate_button = QPushButton("Evaluate now")
        self.evaluate_button.setToolTip("Run `lightbox eval` on run B (in the background), then compare")
        self.evaluate_button.clicked.connect(self.evaluate_b)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setFixedWidth(120)
        self.back_button = QPushButton("Back to A")
        self.back_button.setToolTip("Back to run A's own evaluation")
        self.back_button.clicked.connect(self.back_requested)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Compare with:"))
        bar.addWidget(self.picker, 1)
        for widget in (self.evaluate_button, self.busy, self.back_button):
            bar.addWidget(widget)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.notes = QLabel()
        self.notes.setWordWrap(True)
        self.notes.setStyleSheet(NOTE_STYLE)
        self.summary = _table()
        self.summary.setColumnCount(4)
        self.summary.setHorizontalHeaderLabels(["figure", "A", "B", "B−A"])
        self.table = CompareTable()
        per_class = QWidget()
        per_class_layout = QVBoxLayout(per_class)
        per_class_layout.setContentsMargins(0, 0, 0, 0)
        per_class_layout.addWidget(QLabel("Per class (click a header to sort; a B−A column: biggest loss first)"))
        per_class_layout.addWidget(self.table, 1)
        summary = QWidget()
        summary_layout = QVBoxLayout(summary)
        summary_layout.setContentsMargins(0, 0, 0, 0)
        summary_layout.addWidget(QLabel("Summary"))
        summary_layout.addWidget(self.summary, 1)
        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.addWidget(summary)
        self.split.addWidget(per_class)
        self.split.setSizes([250, 950])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.header)
        layout.addWidget(self.message)
        layout.addWidget(self.notes)
        layout.addWidget(self.split, 1)
        self.filler = QWidget()  # holds the lines above at the top while there is no table
        layout.addWidget(self.filler, 1)
        self._show(message="")

    # ------------------------------------------------------------------ run A, the runs offered
    def start(self, run_id: str, name: str, evaluation: Evaluation) -> None:
        """Compare ``evaluation`` (run A's) with a run to be chosen; the runs offered are read in the background."""
        self.cancel_evaluation()
        self._load_slot.cancel()
        self.run_a, self.evaluation_a = run_id, evaluation
        self.side_a = RunSide(name or run_id[:8], run_id)
        self.run_b, self.comparison, self.offered = None, None, []
        self.picker.clear()
        self.picker.addItem("reading the runs…")
        self._show(message=f"Reading the {evaluation.task} runs {self.side_a.name} can be compared with…", busy=True)
        self._runs_slot.start(
            runs_to_compare,
            self.tracking_uri,
            self.workspace,
            run_id,
            evaluation.task,
            on_done=self._runs_read,
            on_error=lambda message: self._show(message=f"Cannot read the runs: {message}"),
        )

    @property
    def loading(self) -> bool:
        return self._runs_slot.busy or self._load_slot.busy

    def _runs_read(self, found) -> None:
        own, offered = found
        if own is not None:
            self.side_a = RunSide(self.side_a.name, self.run_a, own.best)
        self.offered = list(offered)
        self.picker.clear()
        if not self.offered:
            task = self.evaluation_a.task if self.evaluation_a else ""
            self.picker.addItem("no other run")
            self._show(message=f"No other finished {task} run to compare {self.side_a.name} with: train another one.")
            return
        self.picker.addItem("choose run B…")
        for row, has_evaluation in self.offered:
            text = RunSide(row.name, row.run_id, row.best).label()
            self.picker.addItem(text if has_evaluation else f"{text} — no evaluation yet", row.run_id)
        self._show(message=f"Choose the run to compare {self.side_a.name} (A) with.")

    def run_ids_offered(self) -> list[str]:
        return [row.run_id for row, _ in self.offered]

    # ------------------------------------------------------------------ run B
    def choose(self, run_id: str) -> None:
        """Compare with ``run_id`` (one of the runs offered): its evaluation is read in the background."""
        row = next((r for r, _ in self.offered if r.run_id == run_id), None)
        if row is None or self.evaluation_a is None:
            return
        self.cancel_evaluation()
        self.run_b, self.comparison = row, None
        self.picker.setCurrentIndex(self.picker.findData(run_id))
        self._show(message=f"Reading the evaluation of {row.name}…", busy=True)
        self._load_slot.start(
            read_evaluation,
            row.run_id,
            row.run_dir,
            self.tracking_uri,
            self.workspace,
            on_done=self._b_read,
            on_error=lambda message: self._show(message=f"Cannot show {row.name}'s evaluation: {message}", offer=True),
        )

    def _picked(self, index: int) -> None:
        run_id = self.picker.itemData(index)
        if run_id:
            self.choose(run_id)

    def _b_read(self, evaluation: Evaluation | None) -> None:
        row = self.run_b
        if row is None or self.evaluation_a is None:
            return
        if evaluation is None:
            self._show(
                message=f"{row.name} has no evaluation yet. Evaluate now computes it from its best checkpoint "
                "on its validation split.",
                offer=True,
            )
            return
        index = self.picker.findData(row.run_id)
        if index >= 0:  # evaluated now: no longer "no evaluation yet"
            self.picker.setItemText(index, RunSide(row.name, row.run_id, row.best).label())
        try:
            comparison = compare(self.evaluation_a, evaluation, self.side_a, RunSide(row.name, row.run_id, row.best))
        except ComparisonError as exc:
            self._show(message=str(exc))
            return
        self.set_comparison(comparison)

    def set_comparison(self, comparison: Comparison) -> None:
        self.comparison = comparison
        self.table.set_comparison(comparison)
        self.summary.setRowCount(len(comparison.summary))
        for r, row in enumerate(comparison.summary):
            for c, key in enumerate(("name", "a", "b", DIFF)):
                self.summary.setItem(r, c, _cell(key, row[key]))
        self._show(message="")
        self.compared.emit(comparison)

    def _show(self, *, message: str, busy: bool = False, offer: bool = False) -> None:
        comparison = self.comparison
        a = comparison.a.label() if comparison else self.side_a.label()
        b = (
            comparison.b.label()
            if comparison
            else (
                RunSide(self.run_b.name, self.run_b.run_id, self.run_b.best).label()
                if self.run_b is not None
                else "to be chosen"
            )
        )
        self.header.setText(f"<b>A</b>: {a} &nbsp;&nbsp;<b>against</b>&nbsp;&nbsp; <b>B</b>: {b}")
        self.message.setText(message)
        self.message.setVisible(bool(message))
        notes = comparison.notes() if comparison else []
        self.notes.setText("\n".join(notes))
        self.notes.setVisible(bool(notes))
        self.split.setVisible(comparison is not None)
        self.filler.setVisible(comparison is None)
        self.busy.setVisible(busy or self.process is not None)
        self.evaluate_button.setVisible(offer and self.process is None)

    # ------------------------------------------------------------------ evaluate B now
    def eval_command(self) -> list[str]:
        return engine_eval_command(self.run_b.run_id, self.workspace, self.tracking_uri)

    def evaluate_b(self) -> None:
        """Run ``python -m engine eval`` on run B in the background; it is read and compared when it ends."""
        if self.run_b is None or self.process is not None:
            return
        self._last_line = ""
        process = QProcess(self)
        process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        process.readyReadStandardOutput.connect(self._read_output)
        process.finished.connect(self._evaluated)
        process.errorOccurred.connect(self._process_error)
        command = self.eval_command()
        self.process = process
        self._show(message=f"Evaluating {self.run_b.name} (lightbox eval {self.run_b.run_id})…", busy=True)
        process.start(command[0], command[1:])

    def cancel_evaluation(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.finished.disconnect(self._evaluated)
            process.kill()
            process.waitForFinished(2000)  # a kill ends at once; waits only for the OS to reap it
            process.deleteLater()

    def _read_output(self) -> None:
        if self.process is not None:
            self._take_output(self.process)
            self.message.setText(f"Evaluating {self.run_b.name}… {self._last_line}")

    def _take_output(self, process: QProcess) -> None:
        text = bytes(process.readAllStandardOutput()).decode("utf-8", "replace")
        lines = [line for line in text.replace("\r", "\n").splitlines() if line.strip()]
        if lines:
            self._last_line = lines[-1]

    def _process_error(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart and self.process is not None:
            self._evaluated(-1, QProcess.ExitStatus.CrashExit)

    def _evaluated(self, exit_code: int, status) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        self._take_output(process)
        process.deleteLater()
        if exit_code == 0 and status == QProcess.ExitStatus.NormalExit and self.run_b is not None:
            self.choose(self.run_b.run_id)
            return
        self._show(message=f"lightbox eval failed: {self._last_line or f'exit status {exit_code}'}", offer=True)
