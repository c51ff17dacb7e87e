"""The health report as a table; activating a problem opens the offending image.

Above the table, a warning strip says what would keep the dataset's train/validation split
from training well (the engine's split check, the same one a run prints before it trains);
those warnings are rows of the table too.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QTableView, QVBoxLayout, QWidget

from engine.data.health import plural
from engine.data.problems import Problem
from engine.data.split_check import check_folder_split

from ..widgets.banner import Banner
from ..widgets.task_slot import TaskSlot

COLUMNS = ("Severity", "Problem", "File", "Image", "Annotation", "Message")
PROBLEM_ROLE = Qt.UserRole + 1


class ProblemTableModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.problems: list[Problem] = []

    def set_problems(self, problems: list[Problem]) -> None:
        self.beginResetModel()
        self.problems = list(problems)
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.problems)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.DisplayRole):
        if role == Qt.DisplayRole and orientation == Qt.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex, role=Qt.DisplayRole):
        if not index.isValid():
            return None
        problem = self.problems[index.row()]
        column = index.column()
        if role == PROBLEM_ROLE:
            return problem
        if role == Qt.DisplayRole:
            values = (
                problem.severity,
                problem.code,
                Path(problem.file).name + (f":{problem.line}:{problem.column}" if problem.line else ""),
                "" if problem.image_id is None else str(problem.image_id),
                "" if problem.annotation_id is None else str(problem.annotation_id),
                problem.message,
            )
            return values[column]
        if role == Qt.ToolTipRole:
            return str(problem)
        if role == Qt.ForegroundRole and column == 0:
            return QColor("#c62828") if problem.severity == "error" else QColor("#b26a00")
        if role == Qt.UserRole and column in (3, 4):  # numeric sort for ids
            value = problem.image_id if column == 3 else problem.annotation_id
            return -1 if value is None else value
        return None


class ProblemFilter(QSortFilterProxyModel):
    """Rows of one problem code (or all) whose text contains the search string."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.code: str | None = None
        self.text = ""
        self.setSortRole(Qt.UserRole)

    def set_filter(self, code: str | None, text: str) -> None:
        self.code, self.text = code, text.strip().lower()
        self.invalidate()

    def filterAcceptsRow(self, row: int, parent: QModelIndex) -> bool:
        problem = self.sourceModel().problems[row]
        if self.code is not None and problem.code != self.code:
            return False
        return not self.text or self.text in str(problem).lower()

    def lessThan(self, left: QModelIndex, right: QModelIndex) -> bool:
        a, b = left.data(Qt.UserRole), right.data(Qt.UserRole)
        if a is None or b is None:
            return str(left.data()) < str(right.data())
        return a < b


class HealthPanel(QWidget):
    """Problems of the opened dataset; ``problem_activated`` asks the window to show one."""

    problem_activated = Signal(object)  # Problem

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = ProblemTableModel(self)
        self.proxy = ProblemFilter(self)
        self.proxy.setSourceModel(self.model)
        self.dataset_problems: list[Problem] = []
        self.split_problems: list[Problem] = []
        self._checked_files = True
        self._split_slot = TaskSlot(self)  # the split check of the dataset opened last
        self.split_banner = Banner("splitBanner")
        self.summary = QLabel("No dataset open.")
        self.summary.setObjectName("healthSummary")
        self.code_filter = QComboBox()
        self.code_filter.addItem("All problems")
        self.code_filter.currentTextChanged.connect(self._apply_filter)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Filter problems (id, file, text)")
        self.search.textChanged.connect(self._apply_filter)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QTableView.SelectRows)
        self.table.setSelectionMode(QTableView.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.activated.connect(self._activated)
        self.table.doubleClicked.connect(self._activated)

        bar = QHBoxLayout()
        bar.addWidget(self.code_filter)
        bar.addWidget(self.search, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.split_banner)
        layout.addWidget(self.summary)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)

    def set_session(self, session) -> None:
        """Check the opened dataset's train/validation split in the background (a DatasetSession:
        its indexes are already loaded, so nothing is read from disk again)."""
        self._split_slot.cancel()  # a result for a dataset opened before is dropped
        self.set_split_problems([])
        if session is None:
            return
        self._split_slot.start(
            check_folder_split,
            session.folder,
            dict(session.indexes),
            on_done=self.set_split_problems,
            on_error=self._split_failed,
        )

    def _split_failed(self, message: str) -> None:
        self.split_banner.show_message(f"The training split could not be checked: {message}", "error", cause="split")

    def split_check_pending(self) -> bool:
        return self._split_slot.busy

    def set_split_problems(self, problems: list[Problem]) -> None:
        """What keeps the train/validation split from training well: the strip and table rows."""
        self.split_problems = list(problems)
        if problems:
            lines = "\n".join(f"• {Path(p.file).name}: {p.message}" for p in problems)
            kind = "error" if any(p.severity == "error" for p in problems) else "warning"
            self.split_banner.show_message(
                f"Training on this dataset's split: {plural(len(problems), 'problem')}\n{lines}", kind, cause="split"
            )
        else:
            self.split_banner.clear("split")
        self._show(self.dataset_problems + self.split_problems)

    def set_problems(self, problems: list[Problem], checked_files: bool = True) -> None:
        """The health check's problems of the dataset (the split's stay beside them)."""
        self.dataset_problems, self._checked_files = list(problems), checked_files
        self._show(self.dataset_problems + self.split_problems)

    def _show(self, problems: list[Problem]) -> None:
        checked_files = self._checked_files
        self.model.set_problems(problems)
        codes = sorted({p.code for p in problems})
        chosen = self.code_filter.currentText()  # kept when the split check's rows arrive later
        self.code_filter.blockSignals(True)
        self.code_filter.clear()
        self.code_filter.addItem("All problems")
        self.code_filter.addItems(codes)
        if chosen in codes:
            self.code_filter.setCurrentText(chosen)
        self.code_filter.blockSignals(False)
        errors = sum(p.severity == "error" for p in problems)
        if not problems:
            text = "No problems found." + ("" if checked_files else " (image files not checked)")
        else:
            text = (
                f"{plural(errors, 'error')}, {plural(len(problems) - errors, 'warning')}. "
                "Double-click a row to open the image."
            )
        self.summary.setText(text)
        self._apply_filter()

    def visible_problems(self) -> list[Problem]:
        return [self.proxy.index(r, 0).data(PROBLEM_ROLE) for r in range(self.proxy.rowCount())]

    def _apply_filter(self, *_):
        code = self.code_filter.currentText()
        self.proxy.set_filter(None if code in ("", "All problems") else code, self.search.text())

    def _activated(self, index: QModelIndex) -> None:
        problem = self.proxy.index(index.row(), 0).data(PROBLEM_ROLE)
        if problem is not None:
            self.problem_activated.emit(problem)
