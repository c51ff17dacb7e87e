"""The search-space form view: the search's settings, then one row per searched setting.

Everything it shows comes from :class:`~app.training.search_form_model.SearchFormModel`
(generated from the config's schema); each problem the config finds appears under the field
it names. A setting that is not listed keeps the run form's value; "Search" adds one with a
distribution that suits its type around the run form's value.

``changed`` fires on every edit; ``valid_changed(bool)`` when the search becomes valid or
invalid (the Tune button follows it, with the run form's validity).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
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

from .form_model import FieldSpec, format_number, parse_number
from .run_form import ERROR_COLOUR, NumberEdit
from .search_form_model import SPACE, SearchFormModel, entry_key, format_values, metric_presets, parse_values

SPACE_NOTE = "Settings not listed here keep the run form's value in every trial."


def _error_label() -> QLabel:
    label = QLabel()
    label.setStyleSheet(f"color: {ERROR_COLOUR};")
    label.setWordWrap(True)
    label.hide()
    return label


def _show_error(label: QLabel, message: str | None) -> None:
    label.setText(message or "")
    label.setVisible(bool(message))


class EntryRow(QGroupBox):
    """One searched setting: its distribution and that distribution's fields, errors under each."""

    def __init__(self, form: SearchForm, path: str):
        spec = form.model.tunable[path]
        super().__init__(f"{spec.title} ({path})")
        self.setObjectName(f"entry:{path}")
        self.setToolTip(spec.description)
        self.form, self.path = form, path
        self.kind = QComboBox()
        for name, distribution in form.model.distributions.items():
            self.kind.addItem(name, name)
            self.kind.setItemData(self.kind.count() - 1, distribution.description, 3)  # Qt.ToolTipRole
        self.kind.setCurrentIndex(max(0, self.kind.findData(form.model.space[path].kind)))
        self.kind.currentIndexChanged.connect(lambda _i: form.kind_changed(path, self.kind.currentData()))
        self.remove = QPushButton("Fix")
        self.remove.setToolTip("Stop searching this setting: every trial uses the run form's value")
        self.remove.clicked.connect(lambda: form.remove_entry(path))
        self.errors: dict[str, QLabel] = {"": _error_label(), "type": _error_label()}
        self.editors: dict[str, QLineEdit] = {}
        self.layout_ = QFormLayout(self)
        self.layout_.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        head = QHBoxLayout()
        head.addWidget(self.kind, 1)
        head.addWidget(self.remove)
        self.layout_.addRow("Distribution", head)
        self.layout_.addRow(self.errors["type"])
        self.layout_.addRow(self.errors[""])
        self._field_rows = 0
        self.show_fields()

    def show_fields(self) -> None:
        """The current distribution's fields (low, high, q or values), filled from the model."""
        for _ in range(self._field_rows):
            self.layout_.removeRow(self.layout_.rowCount() - 1)
        self.editors.clear()
        for name in [k for k in self.errors if k not in ("", "type")]:
            del self.errors[name]
        entry = self.form.model.space[self.path]
        fields = self.form.model.distributions[entry.kind].fields
        for spec in fields:
            self.layout_.addRow(spec.title, self._editor(spec, entry.values.get(spec.path)))
            self.errors[spec.path] = _error_label()
            self.layout_.addRow(self.errors[spec.path])
        self._field_rows = 2 * len(fields)

    def _editor(self, spec: FieldSpec, value) -> QLineEdit:
        if spec.path == "values":
            editor = QLineEdit(format_values(value))
            editor.setPlaceholderText("values, separated by commas")
            editor.textChanged.connect(lambda t: self.form.value_edited(self.path, "values", parse_values(t)))
        else:
            editor = NumberEdit(spec)
            editor.setValue(value)
            editor.textChanged.connect(lambda t, n=spec.path: self.form.value_edited(self.path, n, parse_number(t)))
        editor.setToolTip(spec.description)
        self.editors[spec.path] = editor
        return editor

    def show_problems(self, problems: dict[str, str]) -> None:
        for name, label in self.errors.items():
            _show_error(label, problems.get(entry_key(self.path, name or None)))


class SearchForm(QWidget):
    changed = Signal()
    valid_changed = Signal(bool)

    def __init__(self, run_data: Callable[[], dict] | None = None, model: SearchFormModel | None = None, parent=None):
        super().__init__(parent)
        self.model = model or SearchFormModel()
        #: the run form's values (``RunFormModel.data``): the search is checked with them, and a newly
        #: searched setting starts around its run form value
        self.run_data = run_data or dict
        self.editors: dict[str, QWidget] = {}
        self.errors: dict[str, QLabel] = {}
        self.rows: dict[str, EntryRow] = {}
        self._valid: bool | None = None
        self._loading = False
        self.general_error = _error_label()
        self.general_error.setObjectName("searchFormError")

        settings = QGroupBox("Search")
        settings_layout = QFormLayout(settings)
        settings_layout.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        for spec in self.model.fields:
            cell = QWidget()
            cell_layout = QVBoxLayout(cell)
            cell_layout.setContentsMargins(0, 0, 0, 0)
            cell_layout.setSpacing(1)
            cell_layout.addWidget(self._editor(spec))
            self.errors[spec.path] = _error_label()
            cell_layout.addWidget(self.errors[spec.path])
            label = QLabel(spec.title)
            label.setToolTip(spec.description)
            settings_layout.addRow(label, cell)

        space = QGroupBox("Search space")
        space_layout = QVBoxLayout(space)
        note = QLabel(SPACE_NOTE)
        note.setWordWrap(True)
        note.setStyleSheet("color: #555;")
        self.entries = QVBoxLayout()
        self.errors[SPACE] = _error_label()
        self.add_choice = QComboBox()
        self.add_choice.setToolTip("A setting to vary from trial to trial")
        self.add_button = QPushButton("Search")
        self.add_button.setToolTip("Vary this setting; it starts from a range around the run form's value")
        self.add_button.clicked.connect(lambda: self.add_entry(self.add_choice.currentData()))
        add_row = QHBoxLayout()
        add_row.addWidget(self.add_choice, 1)
        add_row.addWidget(self.add_button)
        space_layout.addWidget(note)
        space_layout.addLayout(self.entries)
        space_layout.addWidget(self.errors[SPACE])
        space_layout.addLayout(add_row)

        inner = QWidget()
        column = QVBoxLayout(inner)
        column.addWidget(self.general_error)
        column.addWidget(settings)
        column.addWidget(space)
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)
        self._show_all()

    # ------------------------------------------------------------------ editors
    def _editor(self, spec: FieldSpec) -> QWidget:
        if spec.path == "metric":
            w = QComboBox()
            w.setEditable(True)
            w.currentTextChanged.connect(self._metric_edited)
        elif spec.kind == "enum":
            w = QComboBox()
            for choice in spec.choices:
                w.addItem(str(choice), choice)
            w.currentIndexChanged.connect(lambda _i, p=spec.path, w=w: self._edited(p, w.currentData()))
        elif spec.kind in ("int", "float"):
            w = NumberEdit(spec)
            w.textChanged.connect(lambda t, p=spec.path: self._edited(p, parse_number(t)))
        else:
            w = QLineEdit()
            w.textChanged.connect(lambda t, p=spec.path: self._edited(p, t.strip() or None))
        w.setToolTip(spec.description)
        self.editors[spec.path] = w
        return w

    def _metric_edited(self, text: str) -> None:
        if not self._loading:
            self.model.choose_metric(text.strip() or None, self._task())
            self._show_setting("mode")
            self._changed()

    def set_value(self, name: str, value) -> None:
        """Set one of the search's settings as if the user typed it."""
        self.model.set(name, value)
        self._show_setting(name)
        self._changed()

    def _edited(self, name: str, value) -> None:
        if not self._loading:
            self.model.set(name, value)
            self._changed()

    def _task(self) -> str | None:
        return (self.run_data().get("task") or {}).get("name")

    # ------------------------------------------------------------------ the space
    def add_entry(self, path: str | None) -> None:
        if not path or path in self.model.space:
            return
        section, key = path.split(".", 1)
        self.model.add(path, (self.run_data().get(section) or {}).get(key))
        self._show_space()
        self._changed()

    def remove_entry(self, path: str) -> None:
        self.model.remove(path)
        self._show_space()
        self._changed()

    def kind_changed(self, path: str, kind: str) -> None:
        if self._loading:
            return
        self.model.set_kind(path, kind)
        self.rows[path].show_fields()
        self._changed()

    def value_edited(self, path: str, name: str, value) -> None:
        if not self._loading:
            self.model.set_value(path, name, value)
            self._changed()

    def _show_space(self) -> None:
        for row in self.rows.values():
            self.entries.removeWidget(row)
            row.deleteLater()
        self.rows = {}
        for path in self.model.space:
            self.rows[path] = EntryRow(self, path)
            self.entries.addWidget(self.rows[path])
        self.add_choice.clear()
        for path in self.model.searchable():
            self.add_choice.addItem(f"{self.model.tunable[path].title} ({path})", path)

    # ------------------------------------------------------------------ values
    def follow_run_form(self) -> None:
        """The run form changed: its task presets the metric (until the user picks one); check again."""
        self.model.follow_task(self._task())
        self._loading = True
        self._show_metric()
        self._loading = False
        self.refresh()

    def load_search(self, search) -> None:
        """Show a config's ``search`` section (None: an empty search, the metric preset from the task)."""
        self.model.load(search)
        if search is None:
            self.model.follow_task(self._task())
        self._show_all()
        self.changed.emit()

    def _show_all(self) -> None:
        self._loading = True
        for spec in self.model.fields:
            self._show_setting(spec.path)
        self._show_space()
        self._loading = False
        self.refresh()

    def _show_metric(self) -> None:
        combo: QComboBox = self.editors["metric"]
        combo.clear()
        for metric, mode in metric_presets(self._task()):
            combo.addItem(metric)
            combo.setItemData(combo.count() - 1, f"goal: {mode}", 3)  # Qt.ToolTipRole
        combo.setEditText(self.model.values.get("metric") or "")
        self._show_setting("mode")

    def _show_setting(self, name: str) -> None:
        loading, self._loading = self._loading, True
        try:
            w, value = self.editors[name], self.model.values.get(name)
            if name == "metric":
                self._show_metric()
            elif isinstance(w, NumberEdit):
                w.setText(format_number(value))
            elif isinstance(w, QComboBox):
                w.setCurrentIndex(max(0, w.findData(value)))
            else:
                w.setText("" if value is None else str(value))
        finally:
            self._loading = loading

    def _changed(self) -> None:
        self.refresh()
        self.changed.emit()

    def config_for(self, config):
        """The run form's ``config`` with this search (ConfigError when the search is not valid)."""
        return self.model.apply_to(config)

    def refresh(self) -> bool:
        """Validate with the run form's values, show each problem at its field; returns whether valid."""
        config, problems = self.model.validate(self.run_data())
        for name, label in self.errors.items():
            _show_error(label, problems.get(name))
        for row in self.rows.values():
            row.show_problems(problems)
        _show_error(self.general_error, problems.get(""))
        valid = config is not None
        if valid != self._valid:
            self._valid = valid
            self.valid_changed.emit(valid)
        return valid

    @property
    def is_valid(self) -> bool:
        return bool(self._valid)
