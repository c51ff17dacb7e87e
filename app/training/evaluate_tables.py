"""The Evaluate view's tables: per-class figures sorted by a header click, and lists of images."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from .evaluation_model import sort_rows

NUMBER_ROLE = Qt.ItemDataRole.UserRole + 1


def _shown(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


class PerClassTable(QTableWidget):
    """One row per class: name, support and the task's figures; a header click sorts by that column
    (again: the other way), classes without a figure last."""

    class_chosen = Signal(int)  # category id of the row clicked

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list[dict] = []
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
        self.itemSelectionChanged.connect(self._chosen)

    def set_rows(self, rows: list[dict], fields: tuple[str, ...]) -> None:
        self.rows = list(rows)
        self.keys = ["name", "support", *fields]
        self.sort_key, self.descending = None, False
        self.setColumnCount(len(self.keys))
        self.setHorizontalHeaderLabels([k.replace("_", " ") for k in self.keys])
        self.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self._fill(self.rows)

    def sort_by(self, key: str, descending: bool) -> None:
        self.sort_key, self.descending = key, descending
        column = self.keys.index(key)
        order = Qt.SortOrder.DescendingOrder if descending else Qt.SortOrder.AscendingOrder
        self.horizontalHeader().setSortIndicator(column, order)
        self._fill(sort_rows(self.rows, key, descending))

    def shown_names(self) -> list[str]:
        return [self.item(r, 0).text() for r in range(self.rowCount())]

    def _header_clicked(self, column: int) -> None:
        key = self.keys[column]
        # Figures read best first; names A to Z.
        descending = (not self.descending) if key == self.sort_key else key != "name"
        self.sort_by(key, descending)

    def _fill(self, rows: list[dict]) -> None:
        self.blockSignals(True)
        self.clearContents()
        self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, key in enumerate(self.keys):
                item = QTableWidgetItem(_shown(row.get(key)))
                item.setData(NUMBER_ROLE, row.get("id"))
                if key != "name":
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.setItem(r, c, item)
        self.blockSignals(False)

    def _chosen(self) -> None:
        items = self.selectedItems()
        if items and items[0].data(NUMBER_ROLE) is not None:
            self.class_chosen.emit(int(items[0].data(NUMBER_ROLE)))


class ImageTable(QTableWidget):
    """Images (by their index in the evaluation) with a few columns; a click opens one."""

    image_chosen = Signal(int)

    def __init__(self, headers: list[str], parent=None):
        super().__init__(0, len(headers), parent)
        self.images: list[int] = []
        self.setHorizontalHeaderLabels(headers)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.verticalHeader().hide()
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(True)
        self.cellClicked.connect(lambda row, _column: self.image_chosen.emit(self.images[row]))
        self.cellActivated.connect(lambda row, _column: self.image_chosen.emit(self.images[row]))

    def set_images(self, images: list[int], rows: list[list]) -> None:
        self.images = list(images)
        self.setRowCount(len(rows))
        for r, values in enumerate(rows):
            for c, value in enumerate(values):
                item = QTableWidgetItem(_shown(value))
                if not isinstance(value, str):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.setItem(r, c, item)
