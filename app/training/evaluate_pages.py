"""The Evaluate view of a classification run (confusion heat map whose cells open their images, per-class
precision / recall / F1) and of a segmentation run (per-class IoU bars, the pixel confusion matrix, the
images by IoU, worst first)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from .confusion_view import ConfusionMatrixView
from .evaluate_tables import ImageTable, PerClassTable
from .evaluation_model import Evaluation

pg.setConfigOptions(antialias=False, background="w", foreground="k")  # as the Train tab's charts


def _matrix_box(title: str, matrix: ConfusionMatrixView) -> tuple[QWidget, QCheckBox]:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    row = QHBoxLayout()
    row.addWidget(QLabel(title), 1)
    normalised = QCheckBox("Row-normalised")
    normalised.setToolTip("Each row divided by its sum: the share of a true class predicted as each class")
    normalised.toggled.connect(matrix.set_normalised)
    row.addWidget(normalised)
    layout.addLayout(row)
    layout.addWidget(matrix, 1)
    return box, normalised


class ClassificationPage(QWidget):
    cell_requested = Signal(str, list)  # title, image indices (most confident first)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.evaluation: Evaluation | None = None
        self.matrix = ConfusionMatrixView()
        self.matrix.cell_clicked.connect(self._cell_clicked)
        box, self.normalised = _matrix_box(
            "Confusion matrix (rows: true class; click a cell for its images)", self.matrix
        )
        self.table = PerClassTable()
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(QLabel("Per class (click a header to sort)"))
        right_layout.addWidget(self.table, 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(box)
        split.addWidget(right)
        split.setSizes([620, 380])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)

    def set_evaluation(self, evaluation: Evaluation) -> None:
        self.evaluation = evaluation
        self.matrix.set_matrix(evaluation.confusion, evaluation.confusion_labels)
        self.table.set_rows(evaluation.per_class, evaluation.fields)

    def _cell_clicked(self, row: int, column: int) -> None:
        if self.evaluation is not None:
            self.cell_requested.emit(self.evaluation.cell_title(row, column), self.evaluation.cell_images(row, column))


class SegmentationPage(QWidget):
    image_requested = Signal(int, object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.evaluation: Evaluation | None = None
        self.bars = pg.PlotWidget()
        self.bars.setLabel("left", "IoU")
        self.bars.setYRange(0, 1)
        self.bars.setMouseEnabled(x=True, y=False)
        self.matrix = ConfusionMatrixView()
        box, self.normalised = _matrix_box("Pixel confusion matrix (rows: true class)", self.matrix)
        self.normalised.setChecked(True)  # pixel counts span orders of magnitude: shares read better
        self.table = PerClassTable()
        self.images = ImageTable(["image", "mean IoU", "error"])
        self.images.image_chosen.connect(lambda image: self.image_requested.emit(image, None))

        per_class = QSplitter(Qt.Orientation.Vertical)
        per_class.addWidget(self.bars)
        per_class.addWidget(self.table)
        images = QWidget()
        images_layout = QVBoxLayout(images)
        images_layout.setContentsMargins(0, 0, 0, 0)
        images_layout.addWidget(QLabel("Images, worst first (click one to open it)"))
        images_layout.addWidget(self.images, 1)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(box)
        right.addWidget(images)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(per_class)
        split.addWidget(right)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)

    def set_evaluation(self, evaluation: Evaluation) -> None:
        self.evaluation = evaluation
        self.matrix.set_matrix(evaluation.confusion, evaluation.confusion_labels)
        self.table.set_rows(evaluation.per_class, evaluation.fields)
        self.bars.clear()
        rows = evaluation.per_class
        heights = [float(r.get("iou") or 0.0) for r in rows]
        self.bars.addItem(pg.BarGraphItem(x=list(range(len(rows))), height=heights, width=0.7, brush="#1565c0"))
        stride = max(1, len(rows) // 25)  # every k-th name at many classes, so none overlap
        ticks = [(k, str(r.get("name"))) for k, r in enumerate(rows) if k % stride == 0]
        self.bars.getAxis("bottom").setTicks([ticks])
        self.bars.setXRange(-0.6, max(len(rows), 1) - 0.4)
        order = evaluation.worst_first.tolist()
        self.images.set_images(
            order,
            [[evaluation.image_name(i), evaluation.image_iou(i), float(evaluation.errors[i])] for i in order],
        )
