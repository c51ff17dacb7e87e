"""What Browse shows before a dataset is open: open a folder, a recent dataset, or the demo."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget


class StartPage(QWidget):
    choose_folder = Signal()  # "Open folder…"
    open_recent = Signal(str)  # a recent dataset folder
    open_demo = Signal()  # write (once) and open the sample dataset

    def __init__(self, parent=None):
        super().__init__(parent)
        title = QLabel("<h2>Open a COCO dataset</h2>")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        hint = QLabel(
            "A folder with COCO JSON annotations and its images (official COCO, Roboflow, "
            "CVAT, Label Studio or a plain annotations.json)."
        )
        hint.setWordWrap(True)
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.open_button = QPushButton("Open folder…")
        self.open_button.setDefault(True)
        self.open_button.clicked.connect(self.choose_folder)
        self.demo_button = QPushButton("Open the demo dataset")
        self.demo_button.setToolTip("64 generated images of shapes with boxes and masks, written into the workspace")
        self.demo_button.clicked.connect(self.open_demo)
        self.recent_title = QLabel("<b>Recent datasets</b>")
        self.recent_list = QListWidget()
        self.recent_list.setToolTip("Double-click (or Enter) to open")
        self.recent_list.itemActivated.connect(lambda item: self.open_recent.emit(item.data(Qt.ItemDataRole.UserRole)))

        column = QVBoxLayout()
        column.addStretch(1)
        column.addWidget(title)
        column.addWidget(hint)
        column.addSpacing(12)
        column.addWidget(self.open_button)
        column.addWidget(self.demo_button)
        column.addSpacing(12)
        column.addWidget(self.recent_title)
        column.addWidget(self.recent_list, 2)
        column.addStretch(1)
        box = QWidget()
        box.setLayout(column)
        box.setMaximumWidth(560)
        outer = QVBoxLayout(self)
        outer.addWidget(box, 0, Qt.AlignmentFlag.AlignHCenter)
        self.set_recent([])

    def set_recent(self, folders: list[str]) -> None:
        self.recent_list.clear()
        for folder in folders:
            item = QListWidgetItem(f"{Path(folder).name}    {folder}")
            item.setData(Qt.ItemDataRole.UserRole, folder)
            item.setToolTip(folder)
            self.recent_list.addItem(item)
        self.recent_title.setVisible(bool(folders))
        self.recent_list.setVisible(bool(folders))
