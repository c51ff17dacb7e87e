"""The health report as a table; activating a problem opens the offending image."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QTableView,
                               QVBoxLayout, QWidget)

from engine.data.health import plural
from engine.data.problems import Problem

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
            values = (problem.severity, problem.code, Path(problem.file).name + (
                f":{problem.line}:{problem.column}" if problem.line else ""),
                "" if problem.image_id is None else str(problem.image_id),
                "" if problem.annotation_id is None else str(problem.annotation_id), problem.message)
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
        layout.addWidget(self.summary)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)

    def set_problems(self, problems: list[Problem], checked_files: bool = True) -> None:
        self.model.set_problems(problems)
        codes = sorted({p.code for p in problems})
        self.code_filter.blockSignals(True)
        self.code_filter.clear()
        self.code_filter.addItem("All problems")
        self.code_filter.addItems(codes)
        self.code_filter.blockSignals(False)
        errors = sum(p.severity == "error" for p in problems)
        if not problems:
            text = "No problems found." + ("" if checked_files else " (image files not checked)")
        else:
            text = (f"{plural(errors, 'error')}, {plural(len(problems) - errors, 'warning')}. "
                    "Double-click a row to open the image.")
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
