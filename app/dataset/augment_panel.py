"""The augmentation editor: build a spec step by step and watch what training will do with it.

The left side edits the spec of the train or the val pipeline (the steps, the selected
step's parameters, the YAML as saved); the right side shows N augmented samples of the
selected dataset image (``augment_preview``). What the pipelines hold, which of them are
overrides and what the run's recipe resolves to is the Qt-free ``AugmentSpecs``
(``augment_model``); this panel wires it to the editors and the tiles.

``engine.data.augment`` pulls in albumentations (and with it torch), so it is imported on
first show, in the background (``augment_library``), and never at module import.
"""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ..widgets.task_slot import TaskSlot
from . import augment_library
from .augment_editors import HINT_STYLE, ParameterForm, StepList
from .augment_library import AugmentLibrary, start_warm_up, warm_up_seconds
from .augment_model import SPLITS, TASKS, AugmentSpecs, augment_module, recipe_for
from .augment_preview import compute_preview
from .augment_samples import SamplesPane
from .session import DatasetSession, ImageRef

if TYPE_CHECKING:
    from engine.config import RunConfig

DEFAULT_SAMPLES = 8
OVERRIDE_STYLE = "color: #7a4b00; background: #fff4e5; padding: 4px;"


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

    def __init__(
        self,
        parent=None,
        *,
        task: str = "detection",
        seed: int = 0,
        samples: int = DEFAULT_SAMPLES,
        library: AugmentLibrary | None = None,
    ):
        super().__init__(parent)
        self.model = AugmentSpecs(task)
        self._split = "train"
        self._library = library or augment_library.LIBRARY
        self._loader = None  # the library's import task, once waited on
        self._recipe_task = TaskSlot(self)

        self._build_editor()
        self.preview_box = SamplesPane(self._preview_request, samples=samples, seed=seed)
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
        self.task_combo.setCurrentText(self.model.task)
        self.task_combo.currentTextChanged.connect(self.set_task)
        self.split_combo = QComboBox()
        self.split_combo.addItems(SPLITS)
        self.split_combo.setToolTip("Which pipeline to edit: training or validation")
        self.split_combo.currentTextChanged.connect(self._split_changed)
        self.size_spin = QSpinBox(minimum=16, maximum=8192, singleStep=32)
        self.size_spin.setToolTip("Image size the preset is built for")
        self.size_spin.valueChanged.connect(self._size_changed)
        self.preset_button = QPushButton("Load preset")
        self.preset_button.setToolTip("Replace the steps with the task's recommended pipeline")
        self.preset_button.clicked.connect(self.load_preset)
        # Two short rows rather than one long one, so the panel fits a small window.
        top = QGridLayout()
        for k, (text, widget) in enumerate(
            (("Task", self.task_combo), ("Pipeline", self.split_combo), ("Size", self.size_spin))
        ):
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

        self.steps = StepList()
        self.steps.row_changed.connect(self._step_selected)
        self.steps.add_requested.connect(self.add_step)
        self.steps.remove_requested.connect(self.remove_step)
        self.steps.move_requested.connect(self.move_step)
        self.params = ParameterForm()
        self.params.edited.connect(self._edit_param)

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
        layout.addWidget(self.steps, 3)
        layout.addWidget(self.params, 3)
        layout.addWidget(yaml_box, 2)

    # The editors' parts, by the names callers and tests know them.
    step_list = property(lambda self: self.steps.list)
    add_combo = property(lambda self: self.steps.add_combo)
    add_button = property(lambda self: self.steps.add_button)
    remove_button = property(lambda self: self.steps.remove_button)
    up_button = property(lambda self: self.steps.up_button)
    down_button = property(lambda self: self.steps.down_button)
    list_error = property(lambda self: self.steps.error)
    param_editors = property(lambda self: self.params.editors)
    param_errors = property(lambda self: self.params.errors)
    current_error = property(lambda self: self.params.current_error)
    # The preview's parts and results.
    seed = property(lambda self: self.preview_box.seed)
    last_samples = property(lambda self: self.preview_box.last_samples)
    last_index = property(lambda self: self.preview_box.last_index)
    last_seed = property(lambda self: self.preview_box.last_seed)
    last_spec = property(lambda self: self.preview_box.last_spec)
    tiles = property(lambda self: self.preview_box.tiles)
    grid_host = property(lambda self: self.preview_box.grid_host)
    message = property(lambda self: self.preview_box.message)
    stack = property(lambda self: self.preview_box.stack)
    samples_spin = property(lambda self: self.preview_box.samples_spin)
    seed_label = property(lambda self: self.preview_box.seed_label)
    reseed_button = property(lambda self: self.preview_box.reseed_button)
    labels_check = property(lambda self: self.preview_box.labels_check)

    # ------------------------------------------------------------------ engine loading
    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self.model.loaded and self._loader is None:
            self._loader = self._library.start()
            self._loader.signals.finished.connect(self._engine_loaded)
            self._loader.signals.failed.connect(self._engine_failed)
            self._loading_since = time.perf_counter()
            self._loading_timer.start()
            if self._loader.done.is_set():  # finished before the connects: its signal has gone
                QTimer.singleShot(0, self, self._engine_loaded)

    def _loading_tick(self) -> None:
        if self.model.loaded:
            self._loading_timer.stop()
            return
        waited = time.perf_counter() - self._loading_since
        self._show_message(
            f"Loading the augmentation library… {waited:.0f} s\n"
            "(albumentations and torch are imported once; the rest of the window stays usable)"
        )

    def _engine_loaded(self, _result=None) -> None:
        self._ensure_ready()

    def _engine_failed(self, message: str) -> None:
        self._loading_timer.stop()
        self._show_message(f"The augmentation library could not be loaded:\n{message}", error=True)

    def _ensure_ready(self) -> None:
        """Load the engine module (blocking if the background import is still running) and fill the editor."""
        if self.model.loaded:
            return
        self.model.load()
        self._show_size()
        self.steps.set_transforms(self.model.transforms())
        self.editor.setEnabled(True)
        self._rebuild_steps(0)
        self._refresh_yaml()
        self._schedule_preview()

    # ------------------------------------------------------------------ public API
    @property
    def task(self) -> str:
        return self.model.task

    @property
    def split(self) -> str:
        return self._split

    def spec(self, split: str | None = None) -> list[dict]:
        """The last valid spec of ``split`` (default: the pipeline being edited)."""
        self._ensure_ready()
        return self.model.spec(split or self._split)

    def spec_yaml(self, split: str | None = None) -> str:
        """``spec_to_yaml`` of the spec: the text the YAML view shows."""
        self._ensure_ready()
        return self.model.spec_yaml(split or self._split)

    def set_spec(self, spec: list[dict], split: str | None = None) -> None:
        """Replace a pipeline's steps (an explicit override); raises AugmentationSpecError when ``spec``
        is invalid for the task."""
        self._ensure_ready()
        self._commit(self.model.validate(spec), split=split or self._split, rebuild=True)

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
        notes = self.model.set_task(task)
        if notes is None:
            return  # the same task, or nothing loaded yet to redo
        self._show_size()
        self.steps.set_transforms(self.model.transforms())
        self.steps.show_error(("Dropped the edits because " + "; ".join(notes)) if notes else "")
        self._pipelines_replaced()
        self.state_changed.emit()

    def load_preset(self) -> None:
        """Replace the edited pipeline with ``preset(task, split, size)`` (an explicit override)."""
        self._ensure_ready()
        spec = self.model.preset(self._split)
        self.steps.show_error("")
        self._commit(spec, split=self._split, rebuild=True)

    def load_config(self, run_config: RunConfig) -> None:
        """Show a run config's augmentation: its own steps as overrides, the recipe (or preset) for the rest."""
        if run_config.task.name in TASKS:
            self.set_task(run_config.task.name)
        self._ensure_ready()
        self.model.load_config(run_config)
        self._show_size()
        self.steps.show_error("")
        self._pipelines_replaced()
        self.state_changed.emit()

    def apply_to_config(self, run_config: RunConfig) -> RunConfig:
        """A copy of ``run_config`` carrying this panel's overrides; unchanged when nothing was edited."""
        self._ensure_ready()
        return self.model.apply_to_config(run_config)

    def source(self) -> tuple[DatasetSession | None, ImageRef | None]:
        """The session and image being previewed."""
        return self.preview_box.source()

    def set_source(self, session: DatasetSession | None, ref: ImageRef | None) -> None:
        """The image to preview (None clears the grid)."""
        self.preview_box.set_source(session, ref)

    def reseed(self) -> None:
        """Draw a new run seed and recompute the samples."""
        self.preview_box.reseed()

    def set_labels_visible(self, visible: bool) -> None:
        """Draw category names on the preview boxes, or only the boxes."""
        self.preview_box.set_labels_visible(visible)

    def is_ready(self) -> bool:
        """True once the augmentation library is loaded and the editor is usable."""
        return self.model.loaded

    def is_busy(self) -> bool:
        """True while a preview is pending or being computed."""
        return self.preview_box.is_busy()

    # ------------------------------------------------------------------ following a run
    def overridden_splits(self) -> tuple[str, ...]:
        """The pipelines edited here, which replace the run's recipe ("train", "val")."""
        return self.model.overridden_splits()

    @property
    def recipe_text(self) -> str:
        """What the run's recipe resolves to, in words ("" until known)."""
        return self.model.recipe_text

    def set_run_config(self, run_config: RunConfig | None) -> None:
        """Follow this run: its task, its image size, and the steps its recipe resolves to.

        None (the run form has errors) keeps the last run. Edits made here stay overrides.
        """
        if run_config is None:
            return
        first = self.model.run is None
        self.model.set_run(run_config)
        self.recipe_box.show()
        if first:
            self.task_combo.setEnabled(False)
            self.task_combo.setToolTip("The run's task: change it in the Train tab's form")
            self.size_spin.setEnabled(False)
            self.size_spin.setToolTip("The run's image size: change it in the Train tab's form")
        task = run_config.task.name
        if task in TASKS:
            self.set_task(task)
        if self.model.recipe_outdated():
            self._recipe_timer.start()
        self._update_recipe_line()

    def use_recipe(self) -> None:
        """Drop every override: both pipelines are the recipe's again."""
        if not self.model.use_recipe():
            return
        if self.model.loaded:
            self.steps.show_error("")
            self._rebuild_steps(0)
            self._refresh_yaml()
            self.spec_changed.emit(self.spec())
            self._schedule_preview()
        self._update_recipe_line()
        self.state_changed.emit()

    def _resolve_recipe(self) -> None:
        """Ask the engine (in a worker: it reads the dataset) what the run's recipe resolves to."""
        run_config = self.model.recipe_request()
        if run_config is None:
            return
        self._recipe_task.start(recipe_for, run_config, on_done=self._recipe_resolved)
        self._update_recipe_line()

    def _recipe_resolved(self, result: dict) -> None:
        changed = self.model.recipe_resolved(result)
        self._show_size()
        if changed:
            self._rebuild_steps(0)
            self._refresh_yaml()
            self.spec_changed.emit(self.spec())
            self._schedule_preview()
        self._update_recipe_line()
        if changed is not None:  # an error only changes the recipe line
            self.state_changed.emit()

    def _update_recipe_line(self) -> None:
        line = self.model.recipe_line(waiting=self._recipe_timer.isActive())
        if line is None:
            return
        self.auto_button.setVisible(bool(self.model.overrides))
        self.recipe_label.setText(line.text)
        if line.overridden is not None:
            self.recipe_label.setStyleSheet(OVERRIDE_STYLE if line.overridden else HINT_STYLE)

    def _show_size(self) -> None:
        self.size_spin.setValue(self.model.image_size)
        self.model.image_size = self.size_spin.value()  # the box's range bounds the size presets get

    def _size_changed(self, size: int) -> None:
        self.model.image_size = size  # standing alone, the size presets are built for is the user's

    # ------------------------------------------------------------------ steps and parameters
    def _rebuild_steps(self, row: int | None = None) -> None:
        self.steps.show_steps(self.model.spec(self._split), row)

    def add_step(self, name: str) -> bool:
        """Append a step after the selected one (or at the end); False (with a message) when it is invalid."""
        self._ensure_ready()
        if not name:
            return False
        row = self.steps.current_row()
        at = row + 1 if row >= 0 else len(self.model.spec(self._split))
        try:
            normal = self.model.with_step_added(self._split, name, at)
        except self._spec_error() as err:
            self.steps.show_error(str(err))
            return False
        self.steps.show_error("")
        self.steps.clear_add_box()
        self._commit(normal, split=self._split, rebuild=True, row=at)
        return True

    def remove_step(self) -> None:
        row = self.steps.current_row()
        if row < 0:
            return
        spec = self.spec()
        del spec[row]
        self._commit(spec, split=self._split, rebuild=True, row=min(row, len(spec) - 1))

    def move_step(self, delta: int) -> None:
        row = self.steps.current_row()
        to = row + delta
        spec = self.spec()
        if row < 0 or not 0 <= to < len(spec):
            return
        spec[row], spec[to] = spec[to], spec[row]
        self._commit(spec, split=self._split, rebuild=True, row=to)

    def _split_changed(self, split: str) -> None:
        self._split = split
        if self.model.loaded:
            self._rebuild_steps(0)
            self._refresh_yaml()
            self._schedule_preview()

    def _step_selected(self, row: int) -> None:
        spec = self.model.spec(self._split) if self.model.loaded else []
        if not 0 <= row < len(spec):
            self.params.show_step(None)
            return
        self.params.show_step(spec[row], self.model.describe(spec[row]["name"]))

    def _edit_param(self, name: str, value) -> None:
        """Apply one field's new value if the whole spec still validates; else show why, keep the old spec."""
        row = self.steps.current_row()
        if not 0 <= row < len(self.spec()):
            return
        try:
            normal = self.model.with_param(self._split, row, name, value)
        except self._spec_error() as err:
            self.params.show_error(err.param, str(err))
            return
        self.params.show_error(None, "")
        if normal is not None and normal != self.model.spec(self._split):
            self._commit(normal, split=self._split, rebuild=False, row=row)

    @staticmethod
    def _spec_error() -> type[Exception]:
        return augment_module().AugmentationSpecError

    def _commit(self, spec: list[dict], *, split: str, rebuild: bool, row: int | None = None) -> None:
        """Store an edit: the pipeline is now an explicit override of the run's recipe."""
        if self.model.commit(spec, split):
            self._update_recipe_line()
            self.state_changed.emit()
        if split != self._split:
            return  # not on screen; still saved by apply_to_config
        if rebuild:
            self._rebuild_steps(row)
        elif row is not None:
            self.steps.update_step(row, spec[row])  # the form stays as the user is typing in it
        self._refresh_yaml()
        self.spec_changed.emit(copy.deepcopy(spec))
        self._schedule_preview()

    def _pipelines_replaced(self) -> None:
        """Both pipelines were set anew (task, config): show the edited one from its first step."""
        self._rebuild_steps(0)
        self._refresh_yaml()
        self._update_recipe_line()
        self.spec_changed.emit(self.spec())
        self._schedule_preview()

    def _refresh_yaml(self) -> None:
        self.yaml_view.setPlainText(self.spec_yaml())

    # ------------------------------------------------------------------ preview
    def _preview_request(self) -> tuple[str, list[dict], bool] | None:
        return (self.model.task, self.spec(), self._split == "train") if self.model.loaded else None

    def _schedule_preview(self) -> None:
        self.preview_box.schedule()

    def _show_message(self, text: str, *, error: bool = False) -> None:
        self.preview_box.show_message(text, error=error)


# Names read from this module by the main window and the tests.
__all__ = ["AugmentationPanel", "compute_preview", "start_warm_up", "warm_up_seconds"]
