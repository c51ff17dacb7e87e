"""The Evaluate view of a detection run: per-class AP, PR curves with the operating point, a score
threshold that updates P / R / F1 and the TP / FP / FN counts as it moves, and the false positives
(with why) and misses at that threshold, each a click from its image.

Moving the slider costs two binary searches and a list reset (``DetectionMatches`` sorted
everything once), so it never stalls the event loop, whatever the number of images.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSlider,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from .evaluate_tables import PerClassTable
from .evaluation_model import Evaluation

pg.setConfigOptions(antialias=False, background="w", foreground="k")  # as the Train tab's charts

STEPS = 100  # slider positions for scores 0..1
DEFAULT_THRESHOLD = 0.5
REASON_WORDS = {
    "background": "background (no box there)",
    "wrong_class": "wrong class",
    "duplicate": "duplicate (the box was already found)",
    "localisation": "poor localisation",
}


class _PrefixModel(QAbstractTableModel):
    """The first ``count`` entries of a list sorted once: a new threshold is a new count, not a new list."""

    def __init__(self, describe, parent=None):
        super().__init__(parent)
        self.entries: list = []
        self.count = 0
        self.describe = describe

    def set_entries(self, entries: list, count: int) -> None:
        self.beginResetModel()
        self.entries, self.count = entries, count
        self.endResetModel()

    def set_count(self, count: int) -> None:
        if count == self.count:
            return
        self.beginResetModel()
        self.count = count
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 (Qt's name)
        return 0 if parent.isValid() else self.count

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802 (Qt's name)
        return 0 if parent.isValid() else 1

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if index.isValid() and role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return self.describe(self.entries[index.row()])
        return None


class DetectionPage(QWidget):
    image_requested = Signal(int, object)  # image index in the evaluation, annotation id to highlight (or None)
    threshold_changed = Signal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.evaluation: Evaluation | None = None
        self.threshold = DEFAULT_THRESHOLD
        self.category: int | None = None  # the class whose PR curves are drawn

        self.table = PerClassTable()
        self.table.class_chosen.connect(self.show_class)

        self.class_combo = QComboBox()
        self.class_combo.currentIndexChanged.connect(lambda _i: self.show_class(self.class_combo.currentData()))
        self.plot = pg.PlotWidget()
        self.plot.setLabel("bottom", "recall")
        self.plot.setLabel("left", "precision")
        self.plot.setXRange(0, 1)
        self.plot.setYRange(0, 1.02)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.addLegend(offset=(-10, -10))
        self.curve_50 = self.plot.plot([], [], pen=pg.mkPen("#1565c0", width=2), name="IoU 0.5")
        self.curve_5095 = self.plot.plot(
            [], [], pen=pg.mkPen("#7b1fa2", width=2, style=Qt.PenStyle.DashLine), name="IoU 0.5:0.95"
        )
        self.point = pg.ScatterPlotItem(size=12, brush=pg.mkBrush("#d32f2f"), pen=pg.mkPen("k"), name="at threshold")
        self.plot.addItem(self.point)
        curves = QWidget()
        curves_layout = QVBoxLayout(curves)
        curves_layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("PR curve of"))
        row.addWidget(self.class_combo, 1)
        curves_layout.addLayout(row)
        curves_layout.addWidget(self.plot, 1)

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, STEPS)
        self.slider.setValue(round(DEFAULT_THRESHOLD * STEPS))
        self.slider.setToolTip("Predictions scored at least this count; the rest are dropped")
        self.slider.valueChanged.connect(lambda v: self.set_threshold(v / STEPS))
        self.threshold_label = QLabel()
        self.figures = {name: QLabel() for name in ("P", "R", "F1", "TP", "FP", "FN")}
        counts = QGridLayout()
        for k, (name, label) in enumerate(self.figures.items()):
            label.setObjectName(f"figure{name}")
            label.setStyleSheet("font-size: 15px; font-weight: 600;")
            counts.addWidget(QLabel(name), 0, k, Qt.AlignmentFlag.AlignHCenter)
            counts.addWidget(label, 1, k, Qt.AlignmentFlag.AlignHCenter)
        threshold_box = QGroupBox("Confidence threshold (all classes)")
        threshold_layout = QVBoxLayout(threshold_box)
        slider_row = QHBoxLayout()
        slider_row.addWidget(QLabel("score ≥"))
        slider_row.addWidget(self.slider, 1)
        slider_row.addWidget(self.threshold_label)
        threshold_layout.addLayout(slider_row)
        threshold_layout.addLayout(counts)

        self.fp_model = _PrefixModel(self._describe_fp, self)
        self.miss_model = _PrefixModel(self._describe_miss, self)
        # Table views with fixed row heights: a list view lays out every row again at each reset
        # (tens of ms at thousands of rows), a table view with fixed rows computes none of it.
        self.fp_list, self.miss_list = QTableView(), QTableView()
        for view, model, slot in (
            (self.fp_list, self.fp_model, self._fp_clicked),
            (self.miss_list, self.miss_model, self._miss_clicked),
        ):
            view.setModel(model)
            view.horizontalHeader().hide()
            view.horizontalHeader().setStretchLastSection(True)
            view.verticalHeader().hide()
            view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
            view.verticalHeader().setDefaultSectionSize(view.fontMetrics().height() + 4)
            view.setShowGrid(False)
            view.setWordWrap(False)
            view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
            view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
            view.clicked.connect(slot)
            view.activated.connect(slot)
        self.fp_title, self.miss_title = QLabel(), QLabel()
        lists = QSplitter(Qt.Orientation.Horizontal)
        for title, view in ((self.fp_title, self.fp_list), (self.miss_title, self.miss_list)):
            box = QWidget()
            layout = QVBoxLayout(box)
            layout.setContentsMargins(0, 0, 0, 0)
            layout.addWidget(title)
            layout.addWidget(view, 1)
            lists.addWidget(box)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(QLabel("Per class (click a header to sort; a row draws its PR curve)"))
        left_layout.addWidget(self.table, 1)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(left)
        top.addWidget(curves)
        top.setSizes([420, 520])
        bottom = QWidget()
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 0, 0, 0)
        bottom_layout.addWidget(threshold_box)
        bottom_layout.addWidget(lists, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(bottom)
        split.setSizes([360, 380])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)

    # ------------------------------------------------------------------ contents
    def set_evaluation(self, evaluation: Evaluation) -> None:
        self.evaluation = evaluation
        self.table.set_rows(evaluation.per_class, evaluation.fields)
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        for cid in evaluation.class_ids:
            self.class_combo.addItem(evaluation.class_name(cid), cid)
        self.class_combo.blockSignals(False)
        matches = evaluation.matches
        self.fp_model.set_entries(matches.false_positives, matches.num_false_positives(self.threshold))
        self.miss_model.set_entries(matches.boxes, matches.num_misses(self.threshold))
        self.show_class(evaluation.class_ids[0] if evaluation.class_ids else None)
        self._update_figures()

    def show_class(self, category_id: int | None) -> None:
        """Draw the PR curves of one class, with its operating point at the threshold."""
        self.category = category_id
        if category_id is not None and self.class_combo.currentData() != category_id:
            self.class_combo.blockSignals(True)
            self.class_combo.setCurrentIndex(max(0, self.class_combo.findData(category_id)))
            self.class_combo.blockSignals(False)
        pr = ((self.evaluation.doc.get("curves") or {}).get("pr") or {}) if self.evaluation else {}
        curves = pr.get(str(category_id)) or {}
        for item, key in ((self.curve_50, "iou_50"), (self.curve_5095, "iou_50_95")):
            curve = curves.get(key) or {}
            recall, precision = curve.get("recall") or [], curve.get("precision") or []
            # COCO marks recall levels a class never reaches with -1 (null here): not drawn.
            points = [(r, p) for r, p in zip(recall, precision) if r is not None and p is not None and p >= 0]
            item.setData([r for r, _ in points], [p for _, p in points])
        self._update_point()

    def set_threshold(self, threshold: float) -> None:
        self.threshold = min(max(float(threshold), 0.0), 1.0)
        if self.slider.value() != round(self.threshold * STEPS):
            self.slider.blockSignals(True)
            self.slider.setValue(round(self.threshold * STEPS))
            self.slider.blockSignals(False)
        if self.evaluation is None:
            return
        matches = self.evaluation.matches
        self.fp_model.set_count(matches.num_false_positives(self.threshold))
        self.miss_model.set_count(matches.num_misses(self.threshold))
        self._update_figures()
        self.threshold_changed.emit(self.threshold)

    def _update_figures(self) -> None:
        counts = self.evaluation.matches.counts(self.threshold)
        self.threshold_label.setText(f"{self.threshold:.2f}")
        for name, value in (
            ("P", f"{counts.precision:.3f}"),
            ("R", f"{counts.recall:.3f}"),
            ("F1", f"{counts.f1:.3f}"),
            ("TP", f"{counts.tp:,}"),
            ("FP", f"{counts.fp:,}"),
            ("FN", f"{counts.fn:,}"),
        ):
            self.figures[name].setText(value)
        iou = self.evaluation.match_iou
        self.fp_title.setText(f"False positives at score ≥ {self.threshold:.2f} (IoU {iou:g}): {counts.fp:,}")
        self.miss_title.setText(f"Misses (ground truth not found): {counts.fn:,}")
        self._update_point()

    def _update_point(self) -> None:
        if self.evaluation is None or self.category is None:
            self.point.setData([], [])
            return
        counts = self.evaluation.matches.counts(self.threshold, self.category)
        if counts.tp + counts.fn == 0 or counts.tp + counts.fp == 0:
            self.point.setData([], [])
            return
        self.point.setData([counts.recall], [counts.precision])
        self.point.setToolTip(
            f"score ≥ {self.threshold:.2f}: precision {counts.precision:.3f}, recall {counts.recall:.3f}"
        )

    def figures_shown(self) -> dict[str, str]:
        return {name: label.text() for name, label in self.figures.items()}

    # ------------------------------------------------------------------ the lists
    def _describe_fp(self, fp) -> str:
        name = self.evaluation.image_name(fp.image)
        reason = REASON_WORDS.get(fp.reason, fp.reason)
        iou = "" if math.isnan(fp.iou) else f", IoU {fp.iou:.2f}"
        return f"{name} · {self.evaluation.class_name(fp.category_id)} {fp.score:.2f} · {reason}{iou}"

    def _describe_miss(self, miss) -> str:
        name = self.evaluation.image_name(miss.image)
        found = "never found" if not np.isfinite(miss.found_at) else f"found only at score {miss.found_at:.2f}"
        return f"{name} · {self.evaluation.class_name(miss.category_id)} (annotation {miss.annotation_id}) · {found}"

    def _fp_clicked(self, index: QModelIndex) -> None:
        fp = self.fp_model.entries[index.row()]
        self.image_requested.emit(fp.image, None)

    def _miss_clicked(self, index: QModelIndex) -> None:
        miss = self.miss_model.entries[index.row()]
        self.image_requested.emit(miss.image, miss.annotation_id)
