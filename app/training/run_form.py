"""The run form view: one editor per :class:`FieldSpec`, grouped by section, errors inline.

``changed`` fires on every edit; ``valid_changed(bool)`` when the form becomes valid or
invalid (the Train button follows it).  ``config()`` is the validated RunConfig or None.

Number fields are line edits that keep what was typed (``-0.5``, ``abc``, ``0``): the config
judges it and its message appears at the field, as on the command line.  Under the model
picker a note says which weights the run starts from (random for every offline preset).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from .form_model import FieldSpec, RunFormModel, format_number, format_value, parse_number, parse_text
from .model_choices import check_model_folder

EMPTY = "(empty)"
LR_PATH = "optim.lr"  # gets a "Suggest" button (the learning-rate finder)
CHECKPOINT_PATH = "model.checkpoint"
PRETRAINED_PATH = "model.pretrained"
ERROR_COLOUR = "#b00020"
NOTE_COLOUR = "#8a5300"  # random weights: worth noticing, not an error
PRETRAINED_COLOUR = "#1b5e20"
MODEL_NAME_CHARS = 18  # the picker's minimum width in characters


class NumberEdit(QLineEdit):
    """A number typed as text and kept as typed; the config, not the editor, says what is wrong."""

    def __init__(self, spec: FieldSpec, parent=None):
        super().__init__(parent)
        self.spec = spec
        self.setPlaceholderText(EMPTY if spec.nullable else "a number")

    def value(self):
        """The number shown (None when empty; the text itself when it is no number)."""
        return parse_number(self.text())

    def setValue(self, value) -> None:  # noqa: N802 - the spin box name callers already use
        self.setText(format_number(value))


class RunForm(QWidget):
    changed = Signal()
    valid_changed = Signal(bool)

    def __init__(self, model: RunFormModel | None = None, parent=None):
        super().__init__(parent)
        self.model = model or RunFormModel()
        self.editors: dict[str, QWidget] = {}
        self.errors: dict[str, QLabel] = {}
        self._valid: bool | None = None
        self._loading = False
        self.suggest_button: QPushButton | None = None
        self.suggest_status: QLabel | None = None
        self.weights_note: QLabel | None = None
        self._cached: set[str] = set()  # hub ids the background scan found in the local cache
        self._auto_checkpoint: str | None = None  # a cached checkpoint the form picked, not the user
        self.general_error = QLabel()
        self.general_error.setObjectName("formError")
        self.general_error.setWordWrap(True)
        self.general_error.setStyleSheet("color: #b00020;")
        self.general_error.hide()

        inner = QWidget()
        column = QVBoxLayout(inner)
        column.addWidget(self.general_error)
        groups: dict[str, QFormLayout] = {}
        for spec in self.model.fields:
            if spec.section not in groups:
                box = QGroupBox(spec.section)
                groups[spec.section] = QFormLayout(box)
                # In a narrow window a field goes under its label instead of scrolling sideways.
                groups[spec.section].setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
                column.addWidget(box)
            editor = self._editor(spec)
            editor.setToolTip(spec.description)
            error = QLabel()
            error.setStyleSheet(f"color: {ERROR_COLOUR};")
            error.setWordWrap(True)
            error.hide()
            cell = QWidget()
            cell_layout = QVBoxLayout(cell)
            cell_layout.setContentsMargins(0, 0, 0, 0)
            cell_layout.setSpacing(1)
            cell_layout.addWidget(self._with_suggest(editor) if spec.path == LR_PATH else editor)
            if spec.path == LR_PATH:
                cell_layout.addWidget(self.suggest_status)
            if spec.path == CHECKPOINT_PATH:
                cell_layout.addWidget(self.weights_note)
            cell_layout.addWidget(error)
            label = QLabel(spec.title)
            label.setToolTip(spec.description)
            groups[spec.section].addRow(label, cell)
            self.errors[spec.path] = error
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)
        for spec in self.model.fields:
            self._show(spec, self.model.values[spec.path])
        self.refresh()

    # ------------------------------------------------------------------ editors
    def _editor(self, spec: FieldSpec) -> QWidget:
        if spec.path == "model.checkpoint":
            return self._model_picker(spec)
        if spec.kind == "enum":
            w = QComboBox()
            if spec.nullable:
                w.addItem(EMPTY, None)
            for choice in spec.choices:
                w.addItem(str(choice), choice)
            w.currentIndexChanged.connect(lambda _i, p=spec.path, w=w: self._edited(p, w.currentData()))
        elif spec.kind == "bool":
            w = QCheckBox()
            w.toggled.connect(lambda on, p=spec.path: self._edited(p, bool(on)))
        elif spec.kind == "tristate":
            w = QComboBox()
            for text, value in (("automatic", None), ("on", True), ("off", False)):
                w.addItem(text, value)
            w.currentIndexChanged.connect(lambda _i, p=spec.path, w=w: self._edited(p, w.currentData()))
        elif spec.kind in ("int", "float"):
            w = NumberEdit(spec)
            w.textChanged.connect(lambda t, p=spec.path: self._edited(p, parse_number(t)))
        elif spec.kind == "path":
            w = QWidget()
            row = QHBoxLayout(w)
            row.setContentsMargins(0, 0, 0, 0)
            line = QLineEdit()
            line.setPlaceholderText(EMPTY)
            browse = QPushButton("Browse…")
            browse.clicked.connect(lambda _c=False, line=line, s=spec: self._browse(line, s))
            row.addWidget(line, 1)
            row.addWidget(browse)
            w.line = line
            line.textChanged.connect(lambda t, p=spec.path: self._edited(p, t.strip() or None))
        else:
            w = QLineEdit()
            w.setPlaceholderText(EMPTY)
            w.textChanged.connect(lambda t, p=spec.path: self._edited(p, parse_text(t)))
        self.editors[spec.path] = w
        return w

    def _with_suggest(self, editor: QWidget) -> QWidget:
        """The learning rate's editor with a Suggest button beside it and a status line under it."""
        row_widget = QWidget()
        row = QHBoxLayout(row_widget)
        row.setContentsMargins(0, 0, 0, 0)
        self.suggest_button = QPushButton("Suggest")
        self.suggest_button.setToolTip(
            "Find a learning rate for this model and data: a short range test run "
            "in the background (lightbox lr-find); the result fills this field."
        )
        self.suggest_status = QLabel()
        self.suggest_status.setObjectName("suggestStatus")
        self.suggest_status.setStyleSheet("color: #555;")
        self.suggest_status.hide()
        row.addWidget(editor, 1)
        row.addWidget(self.suggest_button)
        return row_widget

    def _model_picker(self, spec: FieldSpec) -> QWidget:
        w = QWidget()
        row = QHBoxLayout(w)
        row.setContentsMargins(0, 0, 0, 0)
        combo = QComboBox()
        combo.setEditable(True)
        combo.lineEdit().setPlaceholderText("task default, a preset, a folder or a hub id")
        combo.setInsertPolicy(QComboBox.NoInsert)
        # Whole names, in the field and in the list ("rt-d...-r18" told nothing): a width that puts the
        # field under its label in the narrow form column, where it gets the whole row; a list as wide
        # as its longest name (set_model_choices), never elided.
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(MODEL_NAME_CHARS)
        combo.view().setTextElideMode(Qt.TextElideMode.ElideNone)
        self.weights_note = QLabel()
        self.weights_note.setObjectName("weightsNote")
        self.weights_note.setWordWrap(True)
        folder = QPushButton("Folder…")
        folder.clicked.connect(lambda: self._browse_model(combo))
        row.addWidget(combo, 1)
        row.addWidget(folder)
        w.line = combo.lineEdit()
        w.combo = combo
        combo.currentTextChanged.connect(lambda t, p=spec.path: self._edited(p, t.strip() or None))
        self.editors[spec.path] = w
        return w

    def set_model_choices(self, choices) -> None:
        """Fill the model picker (cached pretrained checkpoints, then presets), keeping what is typed.

        While the field is empty (the task default, an offline preset) or holds a checkpoint the
        form picked itself, the first pretrained checkpoint of the local cache is preferred.
        """
        combo = self.editors[CHECKPOINT_PATH].combo
        text = combo.currentText()
        self._loading = True
        combo.clear()
        for choice in choices:
            combo.addItem(choice.name)
            combo.setItemData(combo.count() - 1, choice.description, Qt.ToolTipRole)
        combo.setEditText(text)
        self._loading = False
        widest = max((combo.fontMetrics().horizontalAdvance(c.name) for c in choices), default=0)
        combo.view().setMinimumWidth(widest + 40)
        self._cached = {c.name for c in choices if c.source == "cache"}
        current = self.model.values.get(CHECKPOINT_PATH)
        if not current or current == self._auto_checkpoint:
            self._auto_checkpoint = next((c.name for c in choices if c.source == "cache"), None)
            if self._auto_checkpoint != current:
                self._put(CHECKPOINT_PATH, self._auto_checkpoint)
                return
        self.refresh()  # the note may now know the checkpoint is cached

    def _browse(self, line: QLineEdit, spec: FieldSpec) -> None:
        folder = QFileDialog.getExistingDirectory(self, spec.title, line.text())
        if folder:
            line.setText(folder)

    def _browse_model(self, combo: QComboBox) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Model folder (saved with save_pretrained)")
        if folder:
            combo.setEditText(folder)

    # ------------------------------------------------------------------ values
    def _edited(self, path: str, value) -> None:
        if self._loading:
            return
        if path == CHECKPOINT_PATH:
            self._auto_checkpoint = None  # typed or picked by the user: theirs from now on
        self.model.set(path, value)
        self.refresh()
        self.changed.emit()

    def set_value(self, path: str, value) -> None:
        """Set one field as if the user typed it."""
        if path == CHECKPOINT_PATH:
            self._auto_checkpoint = None
        self._put(path, value)

    def _put(self, path: str, value) -> None:
        self.model.set(path, value)
        self._show(self.model.by_path[path], value)
        self.refresh()
        self.changed.emit()

    def load_config(self, config) -> None:
        self.model.load_config(config)
        self._auto_checkpoint = None  # a loaded checkpoint is the user's choice
        self._show_all()

    def remembered_values(self) -> dict:
        """The form as plain data, for :class:`~app.training.form_memory.FormMemory`."""
        return self.model.remembered()

    def restore_values(self, values: dict | None) -> None:
        """Show values from :meth:`remembered_values` (None: nothing remembered, nothing changes)."""
        if values is None:
            return
        self.model.restore(values)
        self._auto_checkpoint = None  # a remembered checkpoint is the user's choice
        self._show_all()

    def _show_all(self) -> None:
        self._loading = True
        for spec in self.model.fields:
            self._show(spec, self.model.values[spec.path])
        self._loading = False
        self.refresh()
        self.changed.emit()

    def _show(self, spec: FieldSpec, value) -> None:
        w = self.editors[spec.path]
        loading, self._loading = self._loading, True
        try:
            if spec.path == CHECKPOINT_PATH or spec.kind == "path":
                (w.combo.setEditText if hasattr(w, "combo") else w.line.setText)(value or "")
            elif spec.kind in ("enum", "tristate"):
                w.setCurrentIndex(max(0, w.findData(value)))
            elif spec.kind == "bool":
                w.setChecked(bool(value))
            elif spec.kind in ("int", "float"):
                w.setValue(value)
            else:
                w.setText(format_value(value))
        finally:
            self._loading = loading

    def config(self):
        return self.model.validate()[0]

    def refresh(self) -> bool:
        """Validate, show each problem at its field; returns whether the form is valid."""
        config, problems = self.model.validate()
        checkpoint = self.model.values.get(CHECKPOINT_PATH)
        if config is not None and checkpoint and ("/" in checkpoint or checkpoint.startswith(".")):
            from pathlib import Path

            if Path(checkpoint).expanduser().is_dir():
                problem = check_model_folder(Path(checkpoint).expanduser())
                if problem:
                    config, problems = None, {CHECKPOINT_PATH: problem}
        no_weights = self._show_weights(config)
        if no_weights:
            config, problems = None, {**problems, CHECKPOINT_PATH: no_weights}
        for path, label in self.errors.items():
            message = problems.get(path)
            label.setText(message or "")
            label.setVisible(bool(message))
        general = problems.get("")
        self.general_error.setText(general or "")
        self.general_error.setVisible(bool(general))
        valid = config is not None
        if valid != self._valid:
            self._valid = valid
            self.valid_changed.emit(valid)
        return valid

    @property
    def is_valid(self) -> bool:
        return bool(self._valid)

    # ------------------------------------------------------------------ which weights
    def _show_weights(self, config) -> str | None:
        """Say under the picker which weights the run starts from; the problem when they cannot load."""
        from engine.catalog.checkpoints import ModelLoadError
        from engine.config import DEFAULT_CHECKPOINTS
        from engine.models.weights import starting_weights

        values = self.model.values
        task = values.get("task.name")
        if config is not None:
            checkpoints = dict(config.model.checkpoints) if task == "multitask" else {"": config.model.checkpoint}
        else:
            checkpoints = (
                {} if task == "multitask" else {"": values.get(CHECKPOINT_PATH) or DEFAULT_CHECKPOINTS.get(task)}
            )
        lines, sources = [], set()
        for name, checkpoint in checkpoints.items():
            try:
                weights = starting_weights(
                    checkpoint or "", bool(values.get(PRETRAINED_PATH)), cached=self._cached.__contains__
                )
            except ModelLoadError:
                sources.add("unknown")
                continue  # a name that is no checkpoint: the config's own error says so
            sources.add(weights.source)
            if weights.source == "missing":
                self.weights_note.hide()
                self._show_pretrained(enabled=True)  # unticking it is the way out
                return weights.text
            text = weights.text
            if weights.source == "cache" and checkpoint == self._auto_checkpoint:
                text += " (preferred to the offline preset; clear the field to use the preset)"
            elif not values.get(CHECKPOINT_PATH) and task != "multitask":
                text = f"the task default, {text}"
            lines.append(f"{name}: {text}" if name else text)
        self.weights_note.setText(("Starts from " + "\n".join(lines)) if lines else "")
        self.weights_note.setVisible(bool(lines))
        random = bool(sources & {"preset", "random"})
        self.weights_note.setStyleSheet(f"color: {NOTE_COLOUR if random else PRETRAINED_COLOUR};")
        self._show_pretrained(enabled=sources != {"preset"})
        return None

    def _show_pretrained(self, enabled: bool) -> None:
        """Offline presets have no trained weights: the box is shown off and cannot be ticked for them."""
        box = self.editors[PRETRAINED_PATH]
        loading, self._loading = self._loading, True
        box.setEnabled(enabled)
        box.setChecked(bool(self.model.values.get(PRETRAINED_PATH)) and enabled)
        box.setToolTip(
            self.model.by_path[PRETRAINED_PATH].description
            if enabled
            else "Offline presets have no trained weights: they always start from random weights."
        )
        self._loading = loading
