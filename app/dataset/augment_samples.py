"""The Augment tab's preview side: which image, how many samples, the seed, and the tiles.

It asks the panel for what to preview (task, spec, train or val) each time it computes,
computes in the background (``augment_preview``) with the newest request winning, and
shows the tiles or why there are none.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
)

from ..widgets.elided_label import ElidedLabel
from ..widgets.task_slot import TaskSlot
from .augment_editors import ERROR_STYLE, HINT_STYLE
from .augment_preview import compute_preview
from .augment_tiles import PreviewTile, TileGrid
from .session import DatasetSession, ImageRef

# What to preview: (task, spec, train pipeline?), or None while the library is not loaded.
PreviewRequest = Callable[[], "tuple[str, list[dict], bool] | None"]


class SamplesPane(QGroupBox):
    """N augmented samples of one dataset image (epochs 0…N-1 for one seed)."""

    def __init__(self, request: PreviewRequest, *, samples: int, seed: int, parent=None):
        super().__init__("Preview — what training does to this image, epoch by epoch", parent)
        self._request = request
        self.seed = seed
        self._session: DatasetSession | None = None
        self._ref: ImageRef | None = None
        self._slot = TaskSlot(self)
        self.last_samples: list[dict] = []  # the arrays the tiles show, for comparison with training
        self.last_index: int | None = None  # the image's position in the task's dataset
        self.last_seed: int | None = None
        self.last_spec: list[dict] | None = None

        self.source_label = ElidedLabel("No image selected")  # a long file name must not widen the window
        self.source_label.setStyleSheet("font-weight: bold")
        self.samples_spin = QSpinBox(minimum=1, maximum=64, value=samples)
        self.samples_spin.setToolTip("Number of samples (epochs 0…N-1)")
        self.samples_spin.valueChanged.connect(self._samples_changed)
        self.seed_label = QLabel()
        self.reseed_button = QPushButton("Reseed")
        self.reseed_button.setToolTip("Draw a new run seed and recompute the samples")
        self.reseed_button.clicked.connect(self.reseed)
        self.busy_label = QLabel()
        self.busy_label.setStyleSheet(HINT_STYLE)
        title = QHBoxLayout()
        title.addWidget(self.source_label, 1)
        title.addWidget(self.busy_label)
        header = QHBoxLayout()
        header.addWidget(QLabel("Samples"))
        header.addWidget(self.samples_spin)
        header.addWidget(self.seed_label)
        header.addWidget(self.reseed_button)
        self.labels_check = QCheckBox("&Labels")
        self.labels_check.setChecked(True)
        self.labels_check.setToolTip("Show category names on the boxes (Alt+L)")
        self.labels_check.toggled.connect(self.set_labels_visible)
        header.addWidget(self.labels_check)
        header.addStretch(1)

        self.grid_host = TileGrid()
        self.message = QLabel(alignment=Qt.AlignCenter, wordWrap=True)
        self.message.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.message.setMargin(24)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.grid_host)
        self.stack.addWidget(self.message)
        layout = QVBoxLayout(self)
        layout.addLayout(title)
        layout.addLayout(header)
        layout.addWidget(self.stack, 1)
        self.grid_host.set_count(samples)
        self._update_seed_label()

        # Edits come in bursts (typing, arrow keys): recompute the preview once they settle.
        self._timer = QTimer(self, singleShot=True, interval=150)
        self._timer.timeout.connect(self.start)

    @property
    def tiles(self) -> list[PreviewTile]:
        return self.grid_host.tiles

    def source(self) -> tuple[DatasetSession | None, ImageRef | None]:
        return self._session, self._ref

    def set_source(self, session: DatasetSession | None, ref: ImageRef | None) -> None:
        """The image to preview (None clears the grid)."""
        self._session, self._ref = session, ref
        if session is None or ref is None:
            self.source_label.setText("No image selected")
        else:
            name = session.index(ref.split).file_names[ref.row]
            self.source_label.setText(f"{name} ({ref.split})")
        self.schedule()

    def set_labels_visible(self, visible: bool) -> None:
        """Draw category names on the preview boxes, or only the boxes."""
        if self.labels_check.isChecked() != visible:
            self.labels_check.setChecked(visible)
        self.grid_host.set_labels_visible(visible)

    def reseed(self) -> None:
        """Draw a new run seed and recompute the samples."""
        seed = self.seed
        while seed == self.seed:
            seed = random.randrange(2**31)
        self.seed = seed
        self._update_seed_label()
        self.start()

    def is_busy(self) -> bool:
        """True while a preview is pending or being computed."""
        return self._slot.busy or self._timer.isActive()

    def schedule(self) -> None:
        """Recompute once the edits settle; whatever preview is on its way no longer matches: drop it."""
        self._slot.cancel()
        self._timer.start()

    def show_message(self, text: str, *, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet(ERROR_STYLE if error else HINT_STYLE)
        self.stack.setCurrentWidget(self.message)

    def start(self) -> None:
        """Recompute now."""
        self._timer.stop()
        self._slot.cancel()
        request = self._request()
        if request is None:
            return
        if self._session is None or self._ref is None:
            self.busy_label.clear()
            self.show_message("Select an image in the browser to see its augmented samples.")
            return
        task, spec, train = request
        self.busy_label.setText("computing…")
        self._slot.start(
            compute_preview,
            self._session,
            self._ref,
            task,
            spec,
            train,
            self.seed,
            len(self.tiles),
            on_done=self._done,
            on_error=self._failed,
        )

    def _update_seed_label(self) -> None:
        self.seed_label.setText(f"Seed {self.seed}")

    def _samples_changed(self, n: int) -> None:
        self.grid_host.set_count(n)
        self.schedule()

    def _done(self, result: dict) -> None:
        self.busy_label.clear()
        if "error" in result:
            self.last_samples, self.last_index = [], None
            self.show_message(result["error"], error=True)
            return
        self.last_samples = result["samples"]
        self.last_index = result["index"]
        self.last_seed, self.last_spec = result["seed"], result["spec"]
        self.grid_host.show_samples(result["tiles"])
        self.stack.setCurrentWidget(self.grid_host)

    def _failed(self, message: str) -> None:
        # compute_preview reports its own errors; this is only reached by a bug, so still show it.
        self.busy_label.clear()
        self.show_message(message, error=True)
