"""The Augment tab's editors: the list of steps, and a form for the selected step's parameters.

They show what they are given and report what the user asks for (add, remove, move a
step; a parameter's new value); the panel checks every edit against the task through
the spec model and tells the editors what to show, errors included.
"""

from __future__ import annotations

from typing import Any

import yaml
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .augment_model import flow_yaml, step_text

ERROR_STYLE = "color: #c62828;"
HINT_STYLE = "color: #6b6b6b;"


def literal_names(annotation: str, choices: list) -> list[str]:
    """Readable combo entries: cv2 constants by name ("INTER_LINEAR (1)"), other values as they are."""
    if annotation.startswith("Literal[cv2.") and annotation.endswith("]"):
        names = [n.strip().removeprefix("cv2.") for n in annotation[len("Literal[") : -1].split(",")]
        if len(names) == len(choices):
            return [f"{name} ({value})" for name, value in zip(names, choices)]
    return ["(none)" if c is None else str(c) for c in choices]


def is_literal(annotation: str) -> bool:
    """True when every allowed value is one of the Literal choices (maybe or None), so a combo fits."""
    core = annotation.removesuffix(" | None")
    return core.startswith("Literal[") and core.endswith("]") and "] |" not in core and "| " not in core


def decimals(value: float) -> int:
    """Enough decimals for a spin box to show ``value`` as written."""
    text = repr(float(value))
    return min(10, max(2, len(text.split(".")[1]) if "." in text and "e" not in text else 6))


class StepList(QGroupBox):
    """The pipeline's steps, numbered, with a searchable Add box and Remove / Move buttons."""

    row_changed = Signal(int)
    add_requested = Signal(str)
    remove_requested = Signal()
    move_requested = Signal(int)  # -1 up, +1 down

    def __init__(self, parent=None):
        super().__init__("Steps", parent)
        self.list = QListWidget()
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.ElideRight)
        self.list.setUniformItemSizes(True)
        self.list.currentRowChanged.connect(self._row_changed)
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
        self.remove_button.clicked.connect(self.remove_requested)
        self.up_button = QPushButton("Move up")
        self.up_button.clicked.connect(lambda: self.move_requested.emit(-1))
        self.down_button = QPushButton("Move down")
        self.down_button.clicked.connect(lambda: self.move_requested.emit(1))
        add_row = QHBoxLayout()
        add_row.addWidget(self.add_combo, 1)
        add_row.addWidget(self.add_button)
        edit_row = QHBoxLayout()
        for button in (self.remove_button, self.up_button, self.down_button):
            edit_row.addWidget(button)
        edit_row.addStretch(1)
        self.error = QLabel(wordWrap=True, styleSheet=ERROR_STYLE)
        self.error.hide()
        layout = QVBoxLayout(self)
        layout.addWidget(self.list, 1)
        layout.addLayout(add_row)
        layout.addLayout(edit_row)
        layout.addWidget(self.error)

    def current_row(self) -> int:
        return self.list.currentRow()

    def set_transforms(self, names: list[str]) -> None:
        self.add_combo.clear()
        self.add_combo.addItems(names)
        self.add_combo.setCurrentIndex(-1)

    def clear_add_box(self) -> None:
        self.add_combo.setCurrentIndex(-1)

    def show_steps(self, spec: list[dict], row: int | None = None) -> None:
        """Fill the list and select ``row`` (clamped; the first step by default); ``row_changed`` follows."""
        self.list.blockSignals(True)
        self.list.clear()
        for k, step in enumerate(spec, 1):
            item = QListWidgetItem(step_text(step, k))
            item.setToolTip(flow_yaml(step))
            self.list.addItem(item)
        if spec:
            self.list.setCurrentRow(max(0, min(len(spec) - 1, row if row is not None else 0)))
        self.list.blockSignals(False)
        self._row_changed(self.list.currentRow())

    def update_step(self, row: int, step: dict) -> None:
        """Rewrite one line in place, leaving the selection (and the form being typed in) alone."""
        if 0 <= row < self.list.count():
            item = self.list.item(row)
            item.setText(step_text(step, row + 1))
            item.setToolTip(flow_yaml(step))

    def show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.setVisible(bool(message))

    def _add_clicked(self) -> None:
        self.add_requested.emit(self.add_combo.currentText().strip())

    def _row_changed(self, row: int) -> None:
        n = self.list.count()
        self.remove_button.setEnabled(row >= 0)
        self.up_button.setEnabled(row > 0)
        self.down_button.setEnabled(0 <= row < n - 1)
        self.row_changed.emit(row)


class ParameterForm(QGroupBox):
    """One field per parameter of a step, typed by its annotation; every change is reported by ``edited``."""

    edited = Signal(str, object)  # parameter name, new value

    def __init__(self, parent=None):
        super().__init__("Parameters", parent)
        self.doc = QLabel(wordWrap=True)
        self.doc.setStyleSheet(HINT_STYLE)
        host = QWidget()
        self.form = QFormLayout(host)
        self.form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        self.form_error = QLabel(wordWrap=True, styleSheet=ERROR_STYLE)  # errors no field owns
        self.form_error.hide()
        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(host)
        scroll.setFrameShape(QScrollArea.NoFrame)
        layout = QVBoxLayout(self)
        layout.addWidget(self.doc)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.form_error)
        self.editors: dict[str, QWidget] = {}
        self.errors: dict[str, QLabel] = {}
        self.current_error = ""

    def show_step(self, step: dict | None, info: dict | None = None) -> None:
        """Fields for ``step`` (``info`` is its ``describe_transform``), or a hint when None."""
        while self.form.rowCount():
            self.form.removeRow(0)
        self.editors.clear()
        self.errors.clear()
        self.current_error = ""
        self._show_form_error("")
        if step is None:
            self.setTitle("Parameters")
            self.doc.setText("Select a step to edit its parameters.")
            return
        self.setTitle(f"Parameters — {step['name']}")
        self.doc.setText(info["doc"])
        for param in info["params"]:
            name = param["name"]
            editor = self._make_editor(param, step.get(name, param["default"]))
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
            self.editors[name] = editor
            self.errors[name] = error

    def show_error(self, param: str | None, message: str) -> None:
        """``message`` under ``param``'s field, or under the form when no field owns it ("" clears)."""
        if param not in self.editors:
            param = None
        self.current_error = message
        for name, label in self.errors.items():
            show = bool(message) and name == param
            label.setText(message if show else "")
            label.setVisible(show)
            self.editors[name].setStyleSheet("border: 1px solid #c62828;" if show else "")
        self._show_form_error(message if message and param is None else "")

    def _show_form_error(self, message: str) -> None:
        self.form_error.setText(message)
        self.form_error.setVisible(bool(message))

    def _make_editor(self, param: dict, value: Any) -> QWidget:
        """A field for one parameter: a combo for a Literal, check box, spin box, or YAML line."""
        name, annotation, choices = param["name"], param["annotation"], param["choices"]
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        choices = choices or []
        options = choices + ([None] if annotation.endswith("| None") and None not in choices else [])
        if choices and is_literal(annotation) and value in options:
            combo = QComboBox()
            for text, option in zip(literal_names(annotation, options), options):
                combo.addItem(text, option)
            combo.setCurrentIndex(options.index(value))
            combo.currentIndexChanged.connect(lambda i: self.edited.emit(name, combo.itemData(i)))
            return combo
        if annotation == "bool" and isinstance(value, bool):
            box = QCheckBox()
            box.setChecked(value)
            box.toggled.connect(lambda checked: self.edited.emit(name, checked))
            return box
        if annotation == "int" and isinstance(value, int) and not isinstance(value, bool):
            spin = QSpinBox(minimum=-(2**31), maximum=2**31 - 1, value=value, keyboardTracking=False)
            spin.valueChanged.connect(lambda v: self.edited.emit(name, v))
            return spin
        if annotation == "float" and is_number:
            # A wide range on purpose: albumentations, not the spin box, says what is allowed.
            spin = QDoubleSpinBox(minimum=-1e9, maximum=1e9, decimals=decimals(value), keyboardTracking=False)
            spin.setSingleStep(0.05 if abs(value) <= 1 else 1.0)
            spin.setValue(value)
            spin.valueChanged.connect(
                lambda v: self.edited.emit(name, int(v) if v.is_integer() and isinstance(value, int) else v)
            )
            return spin
        line = QLineEdit(flow_yaml(value))
        line.setPlaceholderText("YAML, e.g. [0.1, 0.3]; empty for none")

        def parse() -> None:
            try:
                parsed = yaml.safe_load(line.text()) if line.text().strip() else None
            except yaml.YAMLError as err:
                self.show_error(name, f"{name}: not valid YAML ({str(err).splitlines()[0]})")
                return
            self.edited.emit(name, parsed)

        line.editingFinished.connect(parse)
        return line
