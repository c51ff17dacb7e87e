"""The Image tab's predictions controls: show ground truth / predictions, score threshold, mask opacity.

It holds no state of its own: it reads and writes the viewer's ``ViewerState`` and is shown
only while predictions are loaded.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QGroupBox, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout

from ..widgets.elided_label import ElidedLabel
from .viewer_state import ViewerState

STEPS = 100  # slider positions for 0..1


class PredictionPanel(QGroupBox):
    def __init__(self, state: ViewerState, parent=None):
        super().__init__("Predictions", parent)
        self.state = state
        self.source = ElidedLabel()
        self.truth = QCheckBox("Ground truth (solid)")
        self.truth.setToolTip("Show the dataset's annotations (key G)")
        self.truth.setChecked(True)
        self.truth.toggled.connect(state.set_truth_visible)
        self.shown = QCheckBox("Predictions (dashed)")
        self.shown.setToolTip("Show the predictions (key P)")
        self.shown.setChecked(True)
        self.shown.toggled.connect(state.set_predictions_visible)
        self.score = QSlider(Qt.Orientation.Horizontal)
        self.score.setRange(0, STEPS)
        self.score.setToolTip("Draw only predictions scored at least this")
        self.score.valueChanged.connect(lambda v: state.set_min_score(v / STEPS))
        self.score_label = QLabel()
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, STEPS)
        self.opacity.setToolTip("Opacity of the predicted masks")
        self.opacity.valueChanged.connect(lambda v: state.set_prediction_opacity(v / STEPS))
        self.count = QLabel()
        self.count.setWordWrap(True)
        self.clear_button = QPushButton("Hide these predictions")
        self.clear_button.setToolTip("Forget the predictions (the results file stays)")
        self.clear_button.clicked.connect(state.clear_predictions)

        score_row = QHBoxLayout()
        score_row.addWidget(QLabel("Score ≥"))
        score_row.addWidget(self.score, 1)
        score_row.addWidget(self.score_label)
        opacity_row = QHBoxLayout()
        opacity_row.addWidget(QLabel("Mask opacity"))
        opacity_row.addWidget(self.opacity, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addWidget(self.source)
        layout.addWidget(self.truth)
        layout.addWidget(self.shown)
        layout.addLayout(score_row)
        layout.addLayout(opacity_row)
        layout.addWidget(self.count)
        layout.addWidget(self.clear_button)
        self.refresh()

    def refresh(self) -> None:
        """Follow the state (after a change made elsewhere: keys, new predictions, another image)."""
        state = self.state
        self.setVisible(state.has_predictions)
        self.source.setText(f"from {state.predictions_source}")
        self.source.setToolTip(state.predictions_source)
        for box, on in ((self.truth, state.show_truth), (self.shown, state.show_predictions)):
            box.blockSignals(True)
            box.setChecked(on)
            box.blockSignals(False)
        for slider, value in ((self.score, state.min_score), (self.opacity, state.prediction_opacity)):
            slider.blockSignals(True)
            slider.setValue(round(value * STEPS))
            slider.blockSignals(False)
        self.score_label.setText(f"{state.min_score:.2f}")
        self.count.setText(state.predictions_text())
