"""The run form view: one editor per :class:`FieldSpec`, grouped by section, errors inline.

``changed`` fires on every edit; ``valid_changed(bool)`` when the form becomes valid or
invalid (the Train button follows it).  ``config()`` is the validated RunConfig or None.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox,
                               QHBoxLayout, QLabel, QLineEdit, QPushButton, QScrollArea, QSpinBox, QVBoxLayout,
                               QWidget)

from .form_model import FieldSpec, RunFormModel, format_value, parse_text
from .model_choices import check_model_folder

EMPTY = "(empty)"
INT_LIMIT = 2**31 - 1
LR_PATH = "optim.lr"  # gets a "Suggest" button (the learning-rate finder)


class _FloatSpin(QDoubleSpinBox):
    """A double spin box that shows 3e-4 as 0.0003, not 0.00."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setDecimals(12)

    def textFromValue(self, value: float) -> str:
        return f"{value:g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text, pos):
        from PySide6.QtGui import QValidator

        try:
            float(text)
            return QValidator.Acceptable, text, pos
        except ValueError:
            return QValidator.Intermediate, text, pos


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
            error.setStyleSheet("color: #b00020;")
            error.setWordWrap(True)
            error.hide()
            cell = QWidget()
            cell_layout = QVBoxLayout(cell)
            cell_layout.setContentsMargins(0, 0, 0, 0)
            cell_layout.setSpacing(1)
            cell_layout.addWidget(self._with_suggest(editor) if spec.path == LR_PATH else editor)
            if spec.path == LR_PATH:
                cell_layout.addWidget(self.suggest_status)
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
            w = QSpinBox() if spec.kind == "int" else _FloatSpin()
            low = spec.minimum if spec.minimum is not None else -INT_LIMIT
            high = spec.maximum if spec.maximum is not None else INT_LIMIT
            if spec.nullable:  # one step below the minimum means "empty"
                low = low - 1
                w.setSpecialValueText(EMPTY)
            w.setRange(low, high)
            w.valueChanged.connect(lambda v, p=spec.path, w=w, s=spec: self._edited(p, self._number(s, w, v)))
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
        self.suggest_button.setToolTip("Find a learning rate for this model and data: a short range test run "
                                       "in the background (lightbox lr-find); the result fills this field.")
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
        """Fill the model picker (presets and cached hub models), keeping what is typed."""
        combo = self.editors["model.checkpoint"].combo
        text = combo.currentText()
        self._loading = True
        combo.clear()
        for choice in choices:
            combo.addItem(choice.name)
            combo.setItemData(combo.count() - 1, f"{choice.source}: {choice.description}", Qt.ToolTipRole)
        combo.setEditText(text)
        self._loading = False

    @staticmethod
    def _number(spec: FieldSpec, w, value):
        if spec.nullable and value == w.minimum():
            return None
        return int(value) if spec.kind == "int" else float(value)

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
        self.model.set(path, value)
        self.refresh()
        self.changed.emit()

    def set_value(self, path: str, value) -> None:
        """Set one field as if the user typed it."""
        self.model.set(path, value)
        self._show(self.model.by_path[path], value)
        self.refresh()
        self.changed.emit()

    def load_config(self, config) -> None:
        self.model.load_config(config)
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
            if spec.path == "model.checkpoint" or spec.kind == "path":
                (w.combo.setEditText if hasattr(w, "combo") else w.line.setText)(value or "")
            elif spec.kind in ("enum", "tristate"):
                w.setCurrentIndex(max(0, w.findData(value)))
            elif spec.kind == "bool":
                w.setChecked(bool(value))
            elif spec.kind in ("int", "float"):
                w.setValue(w.minimum() if value is None else value)
            else:
                w.setText(format_value(value))
        finally:
            self._loading = loading

    def config(self):
        return self.model.validate()[0]

    def refresh(self) -> bool:
        """Validate, show each problem at its field; returns whether the form is valid."""
        config, problems = self.model.validate()
        checkpoint = self.model.values.get("model.checkpoint")
        if config is not None and checkpoint and ("/" in checkpoint or checkpoint.startswith(".")):
            from pathlib import Path

            if Path(checkpoint).expanduser().is_dir():
                problem = check_model_folder(Path(checkpoint).expanduser())
                if problem:
                    config, problems = None, {"model.checkpoint": problem}
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
