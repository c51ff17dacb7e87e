"""The augmentation editor: build a spec step by step and watch what training will do with it.

The left side edits the spec (a list of ``{"name": ..., **params}`` steps, see
``engine.data.augment``) for the train or the val pipeline; the right side
shows N augmented samples of the selected dataset image.

Attached to a run (``set_run_config``, the Train tab's form), the panel follows the
run's task and image size and shows the steps its recipe resolves to: what the run
really trains with. An edit makes that pipeline an explicit override, which
``apply_to_config`` writes into the run config; ``use_recipe`` goes back to the recipe.
A pipeline nobody edited is never written, so the recipe (and the form's image size)
decides it. The samples come
from the task's own dataset class (``dataset.augmented(i, epoch)``), the very
call training makes, so sample k is what the model sees of that image in
epoch k for the shown seed.

``engine.data.augment`` pulls in albumentations (and with it torch), so it
is imported on first show, in the background, and never at module import.
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontDatabase, QImage, QPainter, QPen
from PySide6.QtWidgets import (QCheckBox, QComboBox, QCompleter, QDoubleSpinBox, QFormLayout,
                               QGridLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QListWidget,
                               QListWidgetItem,
                               QPlainTextEdit, QPushButton, QScrollArea, QSpinBox, QSplitter,
                               QStackedWidget, QVBoxLayout, QWidget)

from engine.data.paths import UnsafeFileName

from .augment_recipe import recipe_key, resolve_run_recipe
from .session import DatasetSession, ImageRef
from ..widgets.colours import UNKNOWN_RGB, category_rgb, text_colour
from ..widgets.elided_label import ElidedLabel
from ..widgets.workers import BackgroundTask, run_in_background

if TYPE_CHECKING:
    from engine.config import RunConfig

TASKS = ("classification", "detection", "segmentation")
SPLITS = ("train", "val")
DEFAULT_SAMPLES = 8
RENDER_SIZE = 512  # longest side of a rendered sample; tiles scale it down to fit
CROWDED_BOXES = 60  # more boxes than this on a tile: thin lines, no halo
PROBE_LABEL = -1  # val pipelines carry a whole-image "probe" box that is not an annotation
ERROR_STYLE = "color: #c62828;"
HINT_STYLE = "color: #6b6b6b;"
OVERRIDE_STYLE = "color: #7a4b00; background: #fff4e5; padding: 4px;"
_RUNNING: list[BackgroundTask] = []  # background tasks still in flight, kept alive until done


def _augment():
    """The engine's augmentation module, imported on demand (it loads albumentations and torch)."""
    from engine.data import augment

    return augment


def _warm_up() -> None:
    """Background import, so the first synchronous use finds the module loaded."""
    started = time.perf_counter()
    _augment().available_transforms("classification")  # also fills the cached transform catalogue
    _WARM_UP_SECONDS.append(time.perf_counter() - started)


_WARM_UP: BackgroundTask | None = None
_WARM_UP_SECONDS: list[float] = []


def start_warm_up() -> BackgroundTask:
    """Import the augmentation library (albumentations, torch) in the background, once per process.

    The main window calls this once it is up, so the Augment tab is ready by the time
    someone opens it; the panel waits on the same task if it is still running.
    """
    global _WARM_UP
    if _WARM_UP is None:
        _WARM_UP = run_in_background(_warm_up)
        _RUNNING.append(_WARM_UP)
    return _WARM_UP


def warm_up_seconds() -> float | None:
    """How long the background import took, once it is done."""
    return _WARM_UP_SECONDS[0] if _WARM_UP_SECONDS else None


def _dataset_class(task: str):
    # The training dataset classes import torch: only ever called from a background task.
    if task == "classification":
        from engine.tasks.classification.datamodule import ClassificationDataset as cls
    elif task == "detection":
        from engine.tasks.detection.datamodule import DetectionDataset as cls
    else:
        from engine.tasks.segmentation.datamodule import SegmentationDataset as cls
    return cls


# ----------------------------------------------------------------------------- preview computation


@dataclass
class SampleTile:
    """One augmented sample, ready to paint: the image (mask already blended in) and its boxes."""

    image: QImage
    width: int  # size of the augmented sample, which box coordinates refer to
    height: int
    boxes: list[tuple[float, float, float, float, str, str]] = field(default_factory=list)  # x, y, w, h, name, colour
    caption: str = ""


def _mask_lut(label_rgb: dict[int, tuple[int, int, int]]) -> np.ndarray:
    """RGBA per mask value: classes in translucent colour, background clear, "ignore" (255) grey."""
    lut = np.zeros((256, 4), np.uint8)
    for value in range(1, 255):
        lut[value] = (*label_rgb.get(value - 1, category_rgb(value - 1)), 120)  # mask value = label + 1
    lut[255] = (128, 128, 128, 150)
    return lut


def label_colours(session: DatasetSession, label_names: list[str]) -> dict[int, tuple[int, int, int]]:
    """A dataset's contiguous labels -> the window's one colour per category name."""
    window = {name: i for i, name in enumerate(session.category_names())}
    return {label: category_rgb(window.get(name, -1)) for label, name in enumerate(label_names)}


def _qimage(rgb: np.ndarray) -> QImage:
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    fmt = QImage.Format_RGBA8888 if rgb.shape[2] == 4 else QImage.Format_RGB888
    return QImage(rgb.data, w, h, rgb.strides[0], fmt).copy()  # copy: the QImage must own its pixels


def _render(sample: dict, epoch: int, names: dict[int, str], task: str,
            label_rgb: dict[int, tuple[int, int, int]]) -> SampleTile:
    """Turn a sample into a paintable tile (QImage work is allowed off the GUI thread)."""
    image = sample["image"]
    h, w = image.shape[:2]
    qimage = _qimage(image)
    scale = min(1.0, RENDER_SIZE / max(h, w))
    if scale < 1:
        qimage = qimage.scaled(max(1, round(w * scale)), max(1, round(h * scale)),
                               Qt.IgnoreAspectRatio, Qt.SmoothTransformation)
    mask = sample.get("mask")
    if mask is not None:
        overlay = _qimage(_mask_lut(label_rgb)[np.asarray(mask).astype(np.intp).clip(0, 255)])
        qimage = qimage.convertToFormat(QImage.Format_ARGB32_Premultiplied)
        painter = QPainter(qimage)
        # Nearest-neighbour scaling keeps class borders crisp.
        painter.drawImage(QRectF(0, 0, qimage.width(), qimage.height()), overlay)
        painter.end()
    boxes = []
    for (x, y, bw, bh), label in zip(sample["boxes"].tolist(), sample["labels"].tolist()):
        if label == PROBE_LABEL:
            continue
        boxes.append((x, y, bw, bh, names.get(label, str(label)), "#%02x%02x%02x" % label_rgb.get(label, UNKNOWN_RGB)))
    caption = f"epoch {epoch} · {w}×{h}"
    if task == "detection":
        caption += f" · {len(boxes)} box{'es' if len(boxes) != 1 else ''}"
    return SampleTile(qimage, w, h, boxes, caption)


def compute_preview(session: DatasetSession, ref: ImageRef, task: str, spec: list[dict], train: bool,
                    seed: int, n: int, generation: int, cancel=None) -> dict:
    """Augment ``ref`` n times through the task's training dataset class (runs in a worker).

    Problems come back as ``{"error": message}`` rather than as exceptions, so the
    panel can tell which request they belong to.
    """
    result: dict[str, Any] = {"generation": generation, "seed": seed, "spec": spec, "train": train}
    try:
        session.image_path(ref)  # the one resolver: refuses a file_name that leaves the dataset folder
    except UnsafeFileName as exc:
        return {**result, "error": f"Refused to open this image: {exc.reason}."}
    try:
        dataset = _dataset_class(task)(session.image_dir(ref.split), index=session.index(ref.split),
                                       transforms=spec, train=train, seed=seed, check_files=False)
        # Match by image id: the dataset may leave images out, so its positions differ from the index rows.
        image_id = int(session.index(ref.split).image_ids[ref.row])
        found = np.flatnonzero(dataset.index.image_ids[dataset.rows] == image_id)
        if not len(found):
            why = [p.message for p in dataset.problems if p.image_id == image_id and p.severity == "error"]
            reason = why[0] if why else f"it has no annotation that {task} training can use"
            return {**result, "error": f"Training leaves this image out: {reason}."}
        i = int(found[0])
        names = dataset.id2label if task == "detection" else {}
        label_rgb = label_colours(session, list(dataset.index.category_names))
        samples, tiles = [], []
        for epoch in range(n):
            if cancel is not None and cancel.is_set():
                return {**result, "cancelled": True}
            try:
                sample = dataset.augmented(i, epoch)
            except Exception as exc:  # a transform that cannot handle this image, e.g. a crop too large
                return {**result, "error": f"Sample {epoch} failed: {exc}"}
            samples.append(sample)
            tiles.append(_render(sample, epoch, names, task, label_rgb))
        return {**result, "index": i, "samples": samples, "tiles": tiles}
    except Exception as exc:
        return {**result, "error": f"{type(exc).__name__}: {exc}"}


def _recipe_for(run_config: RunConfig, generation: int) -> dict:
    """The run's recipe (runs in a worker); a problem comes back as ``{"error": message}``."""
    try:
        return {"generation": generation, "recipe": resolve_run_recipe(run_config)}
    except Exception as exc:  # a dataset the engine cannot read: said in the recipe line
        return {"generation": generation, "error": f"{type(exc).__name__}: {exc}"}


# ----------------------------------------------------------------------------- widgets


class PreviewTile(QWidget):
    """Paints one sample to fit, with boxes drawn at screen resolution so they stay sharp."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.tile: SampleTile | None = None
        self.show_labels = True

    def set_tile(self, tile: SampleTile | None) -> None:
        self.tile = tile
        self.setToolTip(tile.caption if tile is not None else "")
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.Antialiasing)
        painter.setRenderHint(QPainter.SmoothPixmapTransform)
        caption_h = self.fontMetrics().height() + 4
        area = QRectF(self.rect()).adjusted(0, 0, 0, -caption_h)
        painter.fillRect(area, QColor("#2b2b2b"))
        if self.tile is None:
            return
        tile = self.tile
        scale = min(area.width() / tile.width, area.height() / tile.height)
        target = QRectF(0, 0, tile.width * scale, tile.height * scale)
        target.moveCenter(area.center())
        painter.drawImage(target, tile.image)
        font = QFont(self.font())
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.8))
        painter.setFont(font)
        metrics = painter.fontMetrics()
        # Hundreds of boxes: thin lines, no halo, so the image stays visible under them.
        crowded = len(tile.boxes) > CROWDED_BOXES
        for x, y, w, h, name, colour in tile.boxes:
            rect = QRectF(target.x() + x * scale, target.y() + y * scale, w * scale, h * scale)
            painter.setBrush(Qt.NoBrush)
            if not crowded:
                painter.setPen(QPen(QColor(0, 0, 0, 140), 4))  # dark halo: boxes stay visible on same-coloured objects
                painter.drawRect(rect)
            painter.setPen(QPen(QColor(colour), 1 if crowded else 2))
            painter.drawRect(rect)
            if not self.show_labels or rect.width() < 0.6 * metrics.horizontalAdvance(name):
                continue  # labels off, or no room on this box: the tag would cover its neighbours
            label = QRectF(rect.topLeft() - QPointF(1, metrics.height()),
                           QSize(metrics.horizontalAdvance(name) + 6, metrics.height()))
            label.moveTop(max(target.top(), label.top()))  # keep tags of boxes at the top edge visible
            painter.fillRect(label, QColor(colour))
            painter.setPen(text_colour(QColor(colour)))
            painter.drawText(label, Qt.AlignCenter, name)
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.setFont(self.font())
        caption = QRectF(0, self.height() - caption_h, self.width(), caption_h)
        # A narrow tile elides its caption (the tooltip has it whole) instead of cutting both ends.
        painter.drawText(caption, Qt.AlignCenter,
                         self.fontMetrics().elidedText(tile.caption, Qt.ElideRight, self.width()))


class TileGrid(QWidget):
    """Lays tiles out in the column count that makes them largest (samples are mostly square)."""

    SPACING = 6

    def __init__(self, parent=None):
        super().__init__(parent)
        self.tiles: list[PreviewTile] = []

    def set_count(self, n: int) -> list[PreviewTile]:
        for tile in self.tiles:
            tile.deleteLater()
        self.tiles = [PreviewTile(self) for _ in range(n)]
        for tile in self.tiles:
            tile.show()
        self._relayout()
        return self.tiles

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._relayout()

    def _relayout(self) -> None:
        n = len(self.tiles)
        if not n:
            return
        caption = self.fontMetrics().height() + 4
        gap, width, height = self.SPACING, self.width(), self.height()

        def image_side(columns: int) -> float:
            rows = math.ceil(n / columns)
            return min((width - gap * (columns - 1)) / columns, (height - gap * (rows - 1)) / rows - caption)

        columns = max(range(1, n + 1), key=image_side)
        rows = math.ceil(n / columns)
        side = max(40.0, image_side(columns))
        # Centre the block of tiles in the free space.
        left = (width - (columns * side + (columns - 1) * gap)) / 2
        top = (height - (rows * (side + caption) + (rows - 1) * gap)) / 2
        for k, tile in enumerate(self.tiles):
            row, column = divmod(k, columns)
            tile.setGeometry(round(left + column * (side + gap)), round(top + row * (side + caption + gap)),
                             round(side), round(side + caption))


def _flow_yaml(value: Any) -> str:
    """A value as one line of YAML, for the generic line-edit fields."""
    if value is None:
        return ""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000)
    return text.removesuffix("...\n").strip()


def _literal_names(annotation: str, choices: list) -> list[str]:
    """Readable combo entries: cv2 constants by name ("INTER_LINEAR (1)"), other values as they are."""
    if annotation.startswith("Literal[cv2.") and annotation.endswith("]"):
        names = [n.strip().removeprefix("cv2.") for n in annotation[len("Literal["):-1].split(",")]
        if len(names) == len(choices):
            return [f"{name} ({value})" for name, value in zip(names, choices)]
    return ["(none)" if c is None else str(c) for c in choices]


def _is_literal(annotation: str) -> bool:
    """True when every allowed value is one of the Literal choices (maybe or None), so a combo fits."""
    core = annotation.removesuffix(" | None")
    return core.startswith("Literal[") and core.endswith("]") and "] |" not in core and "| " not in core


def _decimals(value: float) -> int:
    text = repr(float(value))
    return min(10, max(2, len(text.split(".")[1]) if "." in text and "e" not in text else 6))


# Sensible starting values for parameters that have no default, so "Add" gives a working step.
def _required_guess(name: str, size: int) -> Any:
    return {"height": size, "width": size, "size": [size, size], "max_size": size,
            "min_max_height": [size // 2, size], "num_grid_xy": [4, 4], "magnitude": 10}.get(name)


class AugmentationPanel(QWidget):
    """Edit the train/val augmentation specs of a run and preview them on a dataset image.

    Public API: ``spec()``, ``spec_yaml()``, ``set_spec(spec)``, ``set_task(task)``,
    ``load_config(run_config)``, ``apply_to_config(run_config)``, ``set_source(session, ref)``,
    ``reseed()``; following a run: ``set_run_config(run_config)``, ``use_recipe()``,
    ``overridden_splits()``, ``recipe_text``; signal ``spec_changed(list)`` carries the edited
    split's spec, ``state_changed()`` fires when the overrides or the recipe's answer change.
    """

    spec_changed = Signal(list)
    state_changed = Signal()

    def __init__(self, parent=None, *, task: str = "detection", seed: int = 0, samples: int = DEFAULT_SAMPLES):
        super().__init__(parent)
        self.seed = seed
        self._task = task
        self._split = "train"
        self._specs: dict[str, list[dict]] | None = None  # filled once the engine module is loaded
        self._ready = False
        self._loader: BackgroundTask | None = None
        self._session: DatasetSession | None = None
        self._ref: ImageRef | None = None
        self._generation = 0
        self._running: BackgroundTask | None = None
        self.current_error = ""
        self.last_samples: list[dict] = []  # the arrays the tiles show, for comparison with training
        self.last_index: int | None = None  # the image's position in the task's dataset
        self.last_seed: int | None = None
        self.last_spec: list[dict] | None = None
        # Following a run: its config, the pipelines the user edited (explicit overrides), and
        # what the recipe resolves to for the others.
        self._run: RunConfig | None = None
        self._overrides: set[str] = set()
        self._recipe = None  # augment_recipe.RunRecipe once resolved
        self._recipe_key: str | None = None
        self._recipe_generation = 0
        self._recipe_error = ""

        self._build_editor()
        self._build_preview(samples)
        # The editor scrolls in a short window instead of forcing the window taller.
        editor_scroll = QScrollArea(widgetResizable=True, frameShape=QScrollArea.NoFrame)
        editor_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        editor_scroll.setWidget(self.editor)
        editor_scroll.setMinimumWidth(self.editor.minimumSizeHint().width())
        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(editor_scroll)
        splitter.addWidget(self.preview_box)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([430, 770])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

        # Edits come in bursts (typing, arrow keys): recompute the preview once they settle.
        self._preview_timer = QTimer(self, singleShot=True, interval=150)
        self._preview_timer.timeout.connect(self._start_preview)
        # The run form changes on every keystroke: ask the recipe again once it settles.
        self._recipe_timer = QTimer(self, singleShot=True, interval=250)
        self._recipe_timer.timeout.connect(self._resolve_recipe)
        self._show_message("Loading the augmentation library…")
        self._loading_since = time.perf_counter()
        self._loading_timer = QTimer(self, interval=500)
        self._loading_timer.timeout.connect(self._loading_tick)

    # ------------------------------------------------------------------ layout
    def _build_editor(self) -> None:
        self.task_combo = QComboBox()
        self.task_combo.addItems(TASKS)
        self.task_combo.setCurrentText(self._task)
        self.task_combo.currentTextChanged.connect(self.set_task)
        self.split_combo = QComboBox()
        self.split_combo.addItems(SPLITS)
        self.split_combo.setToolTip("Which pipeline to edit: training or validation")
        self.split_combo.currentTextChanged.connect(self._split_changed)
        self.size_spin = QSpinBox(minimum=16, maximum=8192, singleStep=32)
        self.size_spin.setToolTip("Image size the preset is built for")
        self.preset_button = QPushButton("Load preset")
        self.preset_button.setToolTip("Replace the steps with the task's recommended pipeline")
        self.preset_button.clicked.connect(self.load_preset)
        # Two short rows rather than one long one, so the panel fits a small window.
        top = QGridLayout()
        for k, (text, widget) in enumerate((("Task", self.task_combo), ("Pipeline", self.split_combo),
                                            ("Size", self.size_spin))):
            top.addWidget(QLabel(text), k // 2, 2 * (k % 2))
            top.addWidget(widget, k // 2, 2 * (k % 2) + 1)
        top.addWidget(self.preset_button, 1, 2, 1, 2)
        top.setColumnStretch(1, 1)
        top.setColumnStretch(3, 1)

        # Whose steps these are: the run's recipe, or an override made here.
        self.recipe_label = QLabel(wordWrap=True)
        self.recipe_label.setObjectName("recipeLine")
        self.recipe_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.auto_button = QPushButton("Back to auto")
        self.auto_button.setToolTip("Drop the edits made here: the run uses its recipe again")
        self.auto_button.clicked.connect(self.use_recipe)
        recipe_row = QHBoxLayout()
        recipe_row.addWidget(self.recipe_label, 1)
        recipe_row.addWidget(self.auto_button, 0, Qt.AlignTop)
        self.recipe_box = QWidget()
        self.recipe_box.setLayout(recipe_row)
        recipe_row.setContentsMargins(0, 0, 0, 0)
        self.recipe_box.hide()  # a panel that follows no run has no recipe to show

        self.step_list = QListWidget()
        self.step_list.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.step_list.setTextElideMode(Qt.ElideRight)
        self.step_list.setUniformItemSizes(True)
        self.step_list.currentRowChanged.connect(self._step_selected)
        self.add_combo = QComboBox()
        self.add_combo.setEditable(True)
        self.add_combo.setInsertPolicy(QComboBox.NoInsert)
        self.add_combo.lineEdit().setPlaceholderText("Search transforms…")
        self.add_combo.completer().setFilterMode(Qt.MatchContains)
        self.add_combo.completer().setCompletionMode(QCompleter.PopupCompletion)
        self.add_combo.lineEdit().returnPressed.connect(self._add_clicked)
        self.add_button = QPushButton("Add")
        self.add_button.clicked.connect(self._add_clicked)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_step)
        self.up_button = QPushButton("Move up")
        self.up_button.clicked.connect(lambda: self.move_step(-1))
        self.down_button = QPushButton("Move down")
        self.down_button.clicked.connect(lambda: self.move_step(1))
        add_row = QHBoxLayout()
        add_row.addWidget(self.add_combo, 1)
        add_row.addWidget(self.add_button)
        edit_row = QHBoxLayout()
        for button in (self.remove_button, self.up_button, self.down_button):
            edit_row.addWidget(button)
        edit_row.addStretch(1)
        self.list_error = QLabel(wordWrap=True, styleSheet=ERROR_STYLE)
        self.list_error.hide()
        steps = QGroupBox("Steps")
        steps_layout = QVBoxLayout(steps)
        steps_layout.addWidget(self.step_list, 1)
        steps_layout.addLayout(add_row)
        steps_layout.addLayout(edit_row)
        steps_layout.addWidget(self.list_error)

        self.params_box = QGroupBox("Parameters")
        self.params_doc = QLabel(wordWrap=True)
        self.params_doc.setStyleSheet(HINT_STYLE)
        self.form_host = QWidget()
        self.form = QFormLayout(self.form_host)
        self.form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        self.form_error = QLabel(wordWrap=True, styleSheet=ERROR_STYLE)  # errors no field owns
        self.form_error.hide()
        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(self.form_host)
        scroll.setFrameShape(QScrollArea.NoFrame)
        params_layout = QVBoxLayout(self.params_box)
        params_layout.addWidget(self.params_doc)
        params_layout.addWidget(scroll, 1)
        params_layout.addWidget(self.form_error)
        self.param_editors: dict[str, QWidget] = {}
        self.param_errors: dict[str, QLabel] = {}

        self.yaml_view = QPlainTextEdit(readOnly=True)
        self.yaml_view.setFont(QFontDatabase.systemFont(QFontDatabase.FixedFont))
        yaml_box = QGroupBox("YAML (as saved in the run config)")
        QVBoxLayout(yaml_box).addWidget(self.yaml_view)

        self.editor = QWidget()
        self.editor.setEnabled(False)  # until the engine module is loaded
        layout = QVBoxLayout(self.editor)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(top)
        layout.addWidget(self.recipe_box)
        layout.addWidget(steps, 3)
        layout.addWidget(self.params_box, 3)
        layout.addWidget(yaml_box, 2)

    def _build_preview(self, samples: int) -> None:
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
        self.tiles: list[PreviewTile] = []
        self.message = QLabel(alignment=Qt.AlignCenter, wordWrap=True)
        self.message.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.message.setMargin(24)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.grid_host)
        self.stack.addWidget(self.message)

        self.preview_box = QGroupBox("Preview — what training does to this image, epoch by epoch")
        layout = QVBoxLayout(self.preview_box)
        layout.addLayout(title)
        layout.addLayout(header)
        layout.addWidget(self.stack, 1)
        self._make_tiles(samples)
        self._update_seed_label()

    def _make_tiles(self, n: int) -> None:
        self.tiles = self.grid_host.set_count(n)
        for tile in self.tiles:
            tile.show_labels = self.labels_check.isChecked()

    def set_labels_visible(self, visible: bool) -> None:
        """Draw category names on the preview boxes, or only the boxes."""
        if self.labels_check.isChecked() != visible:
            self.labels_check.setChecked(visible)
        for tile in self.tiles:
            tile.show_labels = visible
            tile.update()

    # ------------------------------------------------------------------ engine loading
    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._ready and self._loader is None:
            self._loader = start_warm_up()
            self._loader.signals.finished.connect(self._engine_loaded)
            self._loader.signals.failed.connect(self._engine_failed)
            self._loading_since = time.perf_counter()
            self._loading_timer.start()
            if self._loader.done.is_set():  # finished before the connects: its signal has gone
                QTimer.singleShot(0, self, self._engine_loaded)

    def _loading_tick(self) -> None:
        if self._ready:
            self._loading_timer.stop()
            return
        waited = time.perf_counter() - self._loading_since
        self._show_message(f"Loading the augmentation library… {waited:.0f} s\n"
                           "(albumentations and torch are imported once; the rest of the window stays usable)")

    def _engine_loaded(self, _result=None) -> None:
        self._ensure_ready()

    def _engine_failed(self, message: str) -> None:
        self._loading_timer.stop()
        self._show_message(f"The augmentation library could not be loaded:\n{message}", error=True)

    def _ensure_ready(self) -> None:
        """Load the engine module (blocking if the background import is still running) and fill the editor."""
        if self._ready:
            return
        augment = _augment()
        self._ready = True
        if self._run is None:
            self.size_spin.setValue(augment.DEFAULT_IMAGE_SIZE[self._task])
        if self._specs is None:
            self._specs = {s: augment.preset(self._task, s, self.size_spin.value()) for s in SPLITS}
        if self._recipe is not None and self._recipe.task == self._task:
            for split in SPLITS:
                if split not in self._overrides:
                    self._specs[split] = copy.deepcopy(self._recipe.specs[split])
        self._fill_transforms()
        self.editor.setEnabled(True)
        self._rebuild_steps(0)
        self._refresh_yaml()
        self._schedule_preview()

    def _fill_transforms(self) -> None:
        self.add_combo.clear()
        self.add_combo.addItems(_augment().available_transforms(self._task))
        self.add_combo.setCurrentIndex(-1)

    # ------------------------------------------------------------------ public API
    @property
    def task(self) -> str:
        return self._task

    @property
    def split(self) -> str:
        return self._split

    def spec(self, split: str | None = None) -> list[dict]:
        """The last valid spec of ``split`` (default: the pipeline being edited)."""
        self._ensure_ready()
        return copy.deepcopy(self._specs[split or self._split])

    def spec_yaml(self, split: str | None = None) -> str:
        """``spec_to_yaml`` of the spec: the text the YAML view shows."""
        return _augment().spec_to_yaml(self.spec(split))

    def set_spec(self, spec: list[dict], split: str | None = None) -> None:
        """Replace a pipeline's steps (an explicit override); raises AugmentationSpecError when ``spec``
        is invalid for the task."""
        self._ensure_ready()
        normal = _augment().validate_spec(spec, task=self._task)
        self._commit(normal, split=split or self._split, rebuild=True)

    def set_split(self, split: str) -> None:
        self.split_combo.setCurrentText(split)

    def set_task(self, task: str) -> None:
        """Switch task; pipelines nobody edited take the new task's steps, and edits the new task
        cannot use are dropped (with a note saying why)."""
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}")
        if self.task_combo.currentText() != task:
            self.task_combo.setCurrentText(task)  # comes back here through the signal
            return
        if task == self._task:
            return
        self._task = task
        if not self._ready:
            return
        augment = _augment()
        if self._run is None:  # following a run, the size is the run's
            self.size_spin.setValue(augment.DEFAULT_IMAGE_SIZE[task])
        self._fill_transforms()
        notes = []
        for split in SPLITS:
            if split in self._overrides:
                try:
                    augment.validate_spec(self._specs[split], task=task)
                    continue
                except augment.AugmentationSpecError as err:
                    notes.append(f"{split}: {err}")
                    self._overrides.discard(split)
            self._specs[split] = self._default_spec(split)
        self._show_list_error(("Dropped the edits because " + "; ".join(notes)) if notes else "")
        self._rebuild_steps(0)
        self._refresh_yaml()
        self._update_recipe_line()
        self.spec_changed.emit(self.spec())
        self.state_changed.emit()
        self._schedule_preview()

    def load_preset(self) -> None:
        """Replace the edited pipeline with ``preset(task, split, size)`` (an explicit override)."""
        self._ensure_ready()
        spec = _augment().preset(self._task, self._split, self.size_spin.value())
        self._show_list_error("")
        self._commit(spec, split=self._split, rebuild=True)

    def load_config(self, run_config: RunConfig) -> None:
        """Show a run config's augmentation: its own steps as overrides, the recipe (or preset) for the rest."""
        if run_config.task.name in TASKS:
            self.set_task(run_config.task.name)
        self._ensure_ready()
        aug = run_config.augmentation
        # With the preset off, a pipeline without steps really is empty.
        explicit = {split: (getattr(aug, split) or []) for split in SPLITS
                    if not aug.preset or getattr(aug, split) is not None}
        self._overrides = set(explicit)
        if self._run is None and run_config.data.image_size:
            self.size_spin.setValue(run_config.data.image_size)
        for split in SPLITS:
            spec = explicit[split] if split in explicit else self._default_spec(split)
            self._specs[split] = _augment().validate_spec(spec, task=self._task)
        self._show_list_error("")
        self._rebuild_steps(0)
        self._refresh_yaml()
        self._update_recipe_line()
        self.spec_changed.emit(self.spec())
        self.state_changed.emit()
        self._schedule_preview()

    def apply_to_config(self, run_config: RunConfig) -> RunConfig:
        """A copy of ``run_config`` carrying this panel's overrides; unchanged when nothing was edited."""
        self._ensure_ready()
        if not self._overrides:
            return run_config  # the recipe decides, at the run's own image size
        name = run_config.task.name
        if name not in TASKS:
            raise ValueError(f"the Augment tab's {self._task} steps cannot be used by a {name} run; "
                             "go back to auto to use its own")
        if name != self._task:
            # A spec is checked against its task: a classification crop may drop every detection box.
            raise ValueError(f"the panel holds {self._task} augmentations but the config trains {name}")
        aug = run_config.augmentation
        if self._overrides == set(SPLITS):
            augmentation = type(aug)(preset=False, train=self.spec("train"), val=self.spec("val"))
        else:  # the pipeline not edited stays the recipe's, at the run's image size
            augmentation = aug.model_copy(update={split: self.spec(split) for split in self._overrides})
        return run_config.model_copy(update={"augmentation": augmentation})

    # ------------------------------------------------------------------ following a run
    def overridden_splits(self) -> tuple[str, ...]:
        """The pipelines edited here, which replace the run's recipe ("train", "val")."""
        return tuple(split for split in SPLITS if split in self._overrides)

    @property
    def recipe_text(self) -> str:
        """What the run's recipe resolves to, in words ("" until known)."""
        return self._recipe.text if self._recipe is not None else ""

    def set_run_config(self, run_config: RunConfig | None) -> None:
        """Follow this run: its task, its image size, and the steps its recipe resolves to.

        None (the run form has errors) keeps the last run. Edits made here stay overrides.
        """
        if run_config is None:
            return
        first = self._run is None
        self._run = run_config
        self.recipe_box.show()
        if first:
            self.task_combo.setEnabled(False)
            self.task_combo.setToolTip("The run's task: change it in the Train tab's form")
            self.size_spin.setEnabled(False)
            self.size_spin.setToolTip("The run's image size: change it in the Train tab's form")
        task = run_config.task.name
        if task in TASKS:
            self.set_task(task)
        if recipe_key(run_config) != self._recipe_key:
            self._recipe_timer.start()
        self._update_recipe_line()

    def use_recipe(self) -> None:
        """Drop every override: both pipelines are the recipe's again."""
        if not self._overrides:
            return
        self._overrides.clear()
        if self._ready:
            for split in SPLITS:
                self._specs[split] = self._default_spec(split)
            self._show_list_error("")
            self._rebuild_steps(0)
            self._refresh_yaml()
            self.spec_changed.emit(self.spec())
            self._schedule_preview()
        self._update_recipe_line()
        self.state_changed.emit()

    def _default_spec(self, split: str) -> list[dict]:
        """A pipeline nobody edited: the run's recipe once known, else the task's preset at the size shown."""
        if self._recipe is not None and self._recipe.task == self._task:
            return copy.deepcopy(self._recipe.specs[split])
        return _augment().preset(self._task, split, self.size_spin.value())

    def _resolve_recipe(self) -> None:
        """Ask the engine (in a worker: it reads the dataset) what the run's recipe resolves to."""
        if self._run is None or self._run.task.name not in TASKS:
            return
        self._recipe_key = recipe_key(self._run)
        self._recipe_generation += 1
        self._track(run_in_background(_recipe_for, self._run, self._recipe_generation,
                                      on_done=self._recipe_resolved))
        self._update_recipe_line()

    def _recipe_resolved(self, result: dict) -> None:
        if result["generation"] != self._recipe_generation:
            return  # the run changed while it was being worked out
        if "error" in result:
            self._recipe_error = result["error"]
            self._update_recipe_line()
            return
        recipe = result["recipe"]
        self._recipe, self._recipe_error = recipe, ""
        if recipe.task == self._task:
            self.size_spin.setValue(recipe.image_size)
            if self._ready:
                changed = False
                for split in SPLITS:
                    if split not in self._overrides and self._specs[split] != recipe.specs[split]:
                        self._specs[split] = copy.deepcopy(recipe.specs[split])
                        changed = True
                if changed:
                    self._rebuild_steps(0)
                    self._refresh_yaml()
                    self.spec_changed.emit(self.spec())
                    self._schedule_preview()
        self._update_recipe_line()
        self.state_changed.emit()

    def _update_recipe_line(self) -> None:
        if self._run is None:
            return
        task = self._run.task.name
        self.auto_button.setVisible(bool(self._overrides))
        if task not in TASKS:
            self.recipe_label.setText(f"The run is {task}: its augmentation is not edited here.")
            return
        pending = self._recipe_generation and self._recipe is None and not self._recipe_error
        if self._recipe_error:
            recipe = f"could not work out the recipe: {self._recipe_error}"
        elif pending or self._recipe_timer.isActive() or self._recipe_key != recipe_key(self._run):
            recipe = "working out the recipe…"
        else:
            recipe = self._recipe.text if self._recipe is not None else ""
        if not self._overrides:
            self.recipe_label.setText(f"Recipe — {recipe}. These are the steps the run uses; "
                                      "an edit here overrides them.")
            self.recipe_label.setStyleSheet(HINT_STYLE)
            return
        edited = " and ".join(self.overridden_splits())
        rest = [s for s in SPLITS if s not in self._overrides]
        tail = f"; {rest[0]} follows the recipe ({recipe})" if rest else ""
        self.recipe_label.setText(f"Overridden here: the run uses the {edited} steps below instead of "
                                  f"the recipe{tail}.")
        self.recipe_label.setStyleSheet(OVERRIDE_STYLE)

    def source(self) -> tuple[DatasetSession | None, ImageRef | None]:
        """The session and image being previewed."""
        return self._session, self._ref

    def set_source(self, session: DatasetSession | None, ref: ImageRef | None) -> None:
        """The image to preview (None clears the grid)."""
        self._session, self._ref = session, ref
        if session is None or ref is None:
            self.source_label.setText("No image selected")
        else:
            name = session.index(ref.split).file_names[ref.row]
            self.source_label.setText(f"{name} ({ref.split})")
        self._schedule_preview()

    def reseed(self) -> None:
        """Draw a new run seed and recompute the samples."""
        seed = self.seed
        while seed == self.seed:
            seed = random.randrange(2**31)
        self.seed = seed
        self._update_seed_label()
        self._start_preview()

    def is_ready(self) -> bool:
        """True once the augmentation library is loaded and the editor is usable."""
        return self._ready

    def is_busy(self) -> bool:
        """True while a preview is pending or being computed."""
        return self._running is not None or self._preview_timer.isActive()

    # ------------------------------------------------------------------ step list
    def _step_text(self, step: dict, number: int) -> str:
        params = ", ".join(f"{k}={_flow_yaml(v) if not isinstance(v, str) else v}"
                           for k, v in step.items() if k != "name")
        if len(params) > 70:
            params = params[:69] + "…"
        # Numbered like the "step N" of validation messages.
        return f"{number}. {step['name']}   {params}" if params else f"{number}. {step['name']}"

    def _rebuild_steps(self, row: int | None = None) -> None:
        spec = self._specs[self._split]
        self.step_list.blockSignals(True)
        self.step_list.clear()
        for k, step in enumerate(spec, 1):
            item = QListWidgetItem(self._step_text(step, k))
            item.setToolTip(_flow_yaml(step))
            self.step_list.addItem(item)
        if spec:
            self.step_list.setCurrentRow(max(0, min(len(spec) - 1, row if row is not None else 0)))
        self.step_list.blockSignals(False)
        self._step_selected(self.step_list.currentRow())

    def _update_buttons(self) -> None:
        row, n = self.step_list.currentRow(), self.step_list.count()
        self.remove_button.setEnabled(row >= 0)
        self.up_button.setEnabled(row > 0)
        self.down_button.setEnabled(0 <= row < n - 1)

    def _add_clicked(self) -> None:
        self.add_step(self.add_combo.currentText().strip())

    def add_step(self, name: str) -> bool:
        """Append a step after the selected one (or at the end); False (with a message) when it is invalid."""
        self._ensure_ready()
        if not name:
            return False
        augment = _augment()
        step: dict[str, Any] = {"name": name}
        try:
            for param in augment.describe_transform(name)["params"]:
                guess = _required_guess(param["name"], self.size_spin.value())
                if param["required"] and guess is not None:
                    step[param["name"]] = guess
        except augment.AugmentationSpecError:
            pass  # unknown name: validation below says so, with suggestions
        spec = self.spec()
        row = self.step_list.currentRow()
        at = row + 1 if row >= 0 else len(spec)
        spec.insert(at, step)
        try:
            normal = augment.validate_spec(spec, task=self._task)
        except augment.AugmentationSpecError as err:
            self._show_list_error(str(err))
            return False
        self._show_list_error("")
        self.add_combo.setCurrentIndex(-1)
        self._commit(normal, split=self._split, rebuild=True, row=at)
        return True

    def remove_step(self) -> None:
        row = self.step_list.currentRow()
        if row < 0:
            return
        spec = self.spec()
        del spec[row]
        self._commit(spec, split=self._split, rebuild=True, row=min(row, len(spec) - 1))

    def move_step(self, delta: int) -> None:
        row = self.step_list.currentRow()
        to = row + delta
        spec = self.spec()
        if row < 0 or not 0 <= to < len(spec):
            return
        spec[row], spec[to] = spec[to], spec[row]
        self._commit(spec, split=self._split, rebuild=True, row=to)

    def _split_changed(self, split: str) -> None:
        self._split = split
        if self._ready:
            self._rebuild_steps(0)
            self._refresh_yaml()
            self._schedule_preview()

    # ------------------------------------------------------------------ parameter form
    def _step_selected(self, row: int) -> None:
        self._update_buttons()
        while self.form.rowCount():
            self.form.removeRow(0)
        self.param_editors.clear()
        self.param_errors.clear()
        self.current_error = ""
        self._show_form_error("")
        spec = self._specs[self._split] if self._specs else []
        if not 0 <= row < len(spec):
            self.params_box.setTitle("Parameters")
            self.params_doc.setText("Select a step to edit its parameters.")
            return
        step = spec[row]
        info = _augment().describe_transform(step["name"])
        self.params_box.setTitle(f"Parameters — {step['name']}")
        self.params_doc.setText(info["doc"])
        for param in info["params"]:
            name = param["name"]
            value = step.get(name, param["default"])
            editor = self._make_editor(param, value)
            editor.setToolTip(param["annotation"])
            error = QLabel(wordWrap=True, styleSheet=ERROR_STYLE)
            error.hide()
            cell = QWidget()
            cell_layout = QVBoxLayout(cell)
            cell_layout.setContentsMargins(0, 0, 0, 0)
            cell_layout.setSpacing(2)
            cell_layout.addWidget(editor)
            cell_layout.addWidget(error)
            label = QLabel(name + (" *" if param["required"] else ""))
            label.setToolTip(param["annotation"])
            self.form.addRow(label, cell)
            self.param_editors[name] = editor
            self.param_errors[name] = error

    def _make_editor(self, param: dict, value: Any) -> QWidget:
        """A field for one parameter; every change goes through ``_edit_param``."""
        name, annotation, choices = param["name"], param["annotation"], param["choices"]
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        choices = choices or []
        options = choices + ([None] if annotation.endswith("| None") and None not in choices else [])
        if choices and _is_literal(annotation) and value in options:
            combo = QComboBox()
            for text, option in zip(_literal_names(annotation, options), options):
                combo.addItem(text, option)
            combo.setCurrentIndex(options.index(value))
            combo.currentIndexChanged.connect(lambda i: self._edit_param(name, combo.itemData(i)))
            return combo
        if annotation == "bool" and isinstance(value, bool):
            box = QCheckBox()
            box.setChecked(value)
            box.toggled.connect(lambda checked: self._edit_param(name, checked))
            return box
        if annotation == "int" and isinstance(value, int) and not isinstance(value, bool):
            spin = QSpinBox(minimum=-(2**31), maximum=2**31 - 1, value=value, keyboardTracking=False)
            spin.valueChanged.connect(lambda v: self._edit_param(name, v))
            return spin
        if annotation == "float" and is_number:
            # A wide range on purpose: albumentations, not the spin box, says what is allowed.
            spin = QDoubleSpinBox(minimum=-1e9, maximum=1e9, decimals=_decimals(value), keyboardTracking=False)
            spin.setSingleStep(0.05 if abs(value) <= 1 else 1.0)
            spin.setValue(value)
            spin.valueChanged.connect(lambda v: self._edit_param(name, int(v) if v.is_integer() and
                                                                 isinstance(value, int) else v))
            return spin
        line = QLineEdit(_flow_yaml(value))
        line.setPlaceholderText("YAML, e.g. [0.1, 0.3]; empty for none")

        def parse() -> None:
            try:
                parsed = yaml.safe_load(line.text()) if line.text().strip() else None
            except yaml.YAMLError as err:
                self._show_param_error(name, f"{name}: not valid YAML ({str(err).splitlines()[0]})")
                return
            self._edit_param(name, parsed)

        line.editingFinished.connect(parse)
        return line

    def _edit_param(self, name: str, value: Any) -> None:
        """Apply one field's new value if the whole spec still validates; else show why, keep the old spec."""
        row = self.step_list.currentRow()
        spec = self.spec()
        if not 0 <= row < len(spec):
            return
        augment = _augment()
        defaults = {p["name"]: p["default"] for p in augment.describe_transform(spec[row]["name"])["params"]}
        if name not in spec[row] and name in defaults and value == defaults[name]:
            self._show_param_error(None, "")
            return  # leaving a field at its default is no edit (it would override the recipe)
        spec[row][name] = value
        try:
            normal = augment.validate_spec(spec, task=self._task)
        except augment.AugmentationSpecError as err:
            self._show_param_error(err.param if err.param in self.param_editors else None, str(err))
            return
        self._show_param_error(None, "")
        if normal != self._specs[self._split]:
            self._commit(normal, split=self._split, rebuild=False, row=row)

    def _show_param_error(self, param: str | None, message: str) -> None:
        self.current_error = message
        for name, label in self.param_errors.items():
            show = bool(message) and name == param
            label.setText(message if show else "")
            label.setVisible(show)
            editor = self.param_editors[name]
            editor.setStyleSheet("border: 1px solid #c62828;" if show else "")
        self._show_form_error(message if message and param is None else "")

    def _show_form_error(self, message: str) -> None:
        self.form_error.setText(message)
        self.form_error.setVisible(bool(message))

    def _show_list_error(self, message: str) -> None:
        self.list_error.setText(message)
        self.list_error.setVisible(bool(message))

    # ------------------------------------------------------------------ committing a valid spec
    def _commit(self, spec: list[dict], *, split: str, rebuild: bool, row: int | None = None) -> None:
        """Store an edit: the pipeline is now an explicit override of the run's recipe."""
        self._specs[split] = spec
        if split not in self._overrides:
            self._overrides.add(split)
            self._update_recipe_line()
            self.state_changed.emit()
        if split != self._split:
            return  # not on screen; still saved by apply_to_config
        if rebuild:
            self._rebuild_steps(row)
        elif row is not None and 0 <= row < self.step_list.count():
            item = self.step_list.item(row)  # the form stays as the user is typing in it
            item.setText(self._step_text(spec[row], row + 1))
            item.setToolTip(_flow_yaml(spec[row]))
        self._refresh_yaml()
        self.spec_changed.emit(copy.deepcopy(spec))
        self._schedule_preview()

    def _refresh_yaml(self) -> None:
        self.yaml_view.setPlainText(self.spec_yaml())

    # ------------------------------------------------------------------ preview
    def _update_seed_label(self) -> None:
        self.seed_label.setText(f"Seed {self.seed}")

    def _samples_changed(self, n: int) -> None:
        self._make_tiles(n)
        self._schedule_preview()

    def _schedule_preview(self) -> None:
        self._invalidate()
        self._preview_timer.start()

    def _invalidate(self) -> None:
        """Whatever preview is on its way no longer matches the spec, seed or image: drop it."""
        self._generation += 1
        if self._running is not None:
            self._running.cancel()
            self._running = None

    def _show_message(self, text: str, *, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet(ERROR_STYLE if error else HINT_STYLE)
        self.stack.setCurrentWidget(self.message)

    @staticmethod
    def _track(task: BackgroundTask) -> BackgroundTask:
        # Module-level, so a task outlives a panel closed while it runs (the pool only holds a raw pointer).
        _RUNNING[:] = [t for t in _RUNNING if not t.done.is_set()] + [task]
        return task

    def _start_preview(self) -> None:
        self._preview_timer.stop()
        self._invalidate()
        if not self._ready:
            return
        if self._session is None or self._ref is None:
            self.busy_label.clear()
            self._show_message("Select an image in the browser to see its augmented samples.")
            return
        self.busy_label.setText("computing…")
        self._running = self._track(run_in_background(
            compute_preview, self._session, self._ref, self._task, self.spec(), self._split == "train",
            self.seed, len(self.tiles), self._generation, on_done=self._preview_done, on_error=self._preview_failed))

    def _preview_done(self, result: dict) -> None:
        if result["generation"] != self._generation or result.get("cancelled"):
            return  # the spec, seed or image changed while it ran
        self._running = None
        self.busy_label.clear()
        if "error" in result:
            self.last_samples, self.last_index = [], None
            self._show_message(result["error"], error=True)
            return
        self.last_samples = result["samples"]
        self.last_index = result["index"]
        self.last_seed, self.last_spec = result["seed"], result["spec"]
        for widget, tile in zip(self.tiles, result["tiles"]):
            widget.set_tile(tile)
        self.stack.setCurrentWidget(self.grid_host)

    def _preview_failed(self, message: str) -> None:
        # compute_preview reports its own errors; this is only reached by a bug, so still show it.
        self._running = None
        self.busy_label.clear()
        self._show_message(message, error=True)
