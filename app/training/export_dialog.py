"""The Export dialog: formats, destination, parity tolerances and MLflow registration for a
finished run (a search's best trial by default), the export in the background with its steps,
then the parity table, the raw differences and the images that differed most.

What to offer, the checks and the table's rows come from ``export_model``; the export runs in a
child process watched from a TaskSlot thread (``export_worker``), so the window stays live.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.export.build import FORMAT_TITLES, FORMATS

from ..widgets.task_slot import TaskSlot
from ..widgets.workers import BACKGROUND_NICENESS
from .export_model import (
    ALIAS_FIELD,
    DESTINATION_FIELD,
    EXPORTS_FOLDER,
    FORMATS_FIELD,
    IMAGES_FIELD,
    NAME_FIELD,
    PARITY_COLUMNS,
    RAW_COLUMNS,
    REPORT_ONLY,
    TOLERANCE_FIELDS,
    WORST_COLUMNS,
    ExportForm,
    ExportOutcome,
    ExportRequest,
    TableRow,
    default_destination,
    default_fields,
    default_model_name,
    export_choices,
    parity_rows,
    raw_rows,
    search_note,
    validate,
    verdict,
    worst_rows,
)
from .export_worker import run_export
from .runs_model import RunRow

ERROR_STYLE = "color: #b00020;"
PASSED_STYLE = "background: #e8f5e9; color: #1b5e20; border: 1px solid #a5d6a7; padding: 4px;"
FAILED_STYLE = "background: #fdecea; color: #b00020; border: 1px solid #f5c2c0; padding: 4px;"
MOVED = QColor("#b00020")
WORST_TITLE = "Images where the two models differed most"
NO_WORST = "No image differed: both models made the same decisions on every compared image."


def _error_label() -> QLabel:
    label = QLabel()
    label.setStyleSheet(ERROR_STYLE)
    label.setWordWrap(True)
    label.hide()
    return label


def _table(columns: tuple[str, ...]) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(columns)
    table.setEditTriggers(QTableWidget.NoEditTriggers)
    table.verticalHeader().hide()
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeToContents)
    header.setSectionResizeMode(0, QHeaderView.Stretch)  # the names take the room; figures stay beside them
    return table


def _fill(table: QTableWidget, rows: list[TableRow], figures: bool = True) -> None:
    """Rows into ``table``; a row beyond tolerance in red; ``figures``: right-align all but the first column."""
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, text in enumerate(row.cells):
            item = QTableWidgetItem(text)
            if figures and c > 0:
                item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
            if not row.ok:
                item.setForeground(MOVED)
            table.setItem(r, c, item)


class ExportDialog(QDialog):
    """Export one finished run (or one of a search's finished trials)."""

    predict_requested = Signal(str)  # the export folder, once written
    exported = Signal(str)  # the export folder, once written
    step_started = Signal(str, int, int)  # what the export does now, its step, of how many

    def __init__(
        self,
        row: RunRow,
        rows: list[RunRow],
        workspace: str | Path,
        tracking_uri: str | None = None,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.setWindowTitle(f"Export {row.name}")
        self.workspace, self.tracking_uri = Path(workspace), tracking_uri
        self.choices = export_choices(row, rows)
        self.outcome: ExportOutcome | None = None
        self.errors: dict[str, str] = {}
        self.slot = TaskSlot(self)
        # The form on the left, the results beside it once an export has ended (the form stays
        # editable for another try with other tolerances or another folder).
        form = QVBoxLayout()
        for part in (self._source_box(row), self._output_box(), self._parity_box(), self._register_box()):
            part.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Maximum)
            form.addWidget(part)
        form.addWidget(self._progress_row())
        form.addStretch(1)
        body = QHBoxLayout()
        body.addLayout(form, 0)
        body.addWidget(self._results(), 1)
        layout = QVBoxLayout(self)
        layout.addLayout(body, 1)
        # How the export ended, across the dialog above its buttons (beside them: Open folder, Predict).
        self.verdict = QLabel()
        self.verdict.setWordWrap(True)
        self.verdict.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.verdict.hide()
        layout.addWidget(self.verdict)
        layout.addLayout(self._buttons())
        self.resize(620, 700)
        self._choose_source()
        self.recheck()

    # ------------------------------------------------------------------ building
    def _source_box(self, row: RunRow) -> QGroupBox:
        box = QGroupBox("Run")
        form = QFormLayout(box)
        self.source = QComboBox()
        for choice in self.choices:
            self.source.addItem(choice.label, choice.run_id)
        self.source.setEnabled(len(self.choices) > 1)
        self.source.currentIndexChanged.connect(self._choose_source)
        form.addRow("Export", self.source)
        self.note = QLabel(search_note(row, self.choices) or "")
        self.note.setWordWrap(True)
        self.note.setVisible(bool(self.note.text()))
        form.addRow(self.note)
        if not self.choices:
            self.note.setText(f"{row.name} has no finished run to export yet.")
            self.note.show()
        return box

    def _output_box(self) -> QGroupBox:
        box = QGroupBox("Output")
        form = QFormLayout(box)
        formats = QHBoxLayout()
        self.formats: dict[str, QCheckBox] = {}
        for name in FORMATS:
            check = QCheckBox(FORMAT_TITLES[name])
            check.setChecked(True)
            check.toggled.connect(self.recheck)
            self.formats[name] = check
            formats.addWidget(check)
        formats.addStretch(1)
        form.addRow("Formats", formats)
        self.field_errors = {key: _error_label() for key in (FORMATS_FIELD, DESTINATION_FIELD, IMAGES_FIELD)}
        form.addRow(self.field_errors[FORMATS_FIELD])
        self.destination = QLineEdit()
        self.destination.textChanged.connect(self.recheck)
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._browse)
        where = QHBoxLayout()
        where.addWidget(self.destination, 1)
        where.addWidget(browse)
        form.addRow("Destination", where)
        self.replace = QCheckBox("Replace it whole if it exists (only once the new export is complete)")
        self.replace.toggled.connect(self.recheck)
        form.addRow("", self.replace)
        form.addRow(self.field_errors[DESTINATION_FIELD])
        return box

    def _parity_box(self) -> QGroupBox:
        self.parity_box = QGroupBox("Parity check of the ONNX model against the checkpoint")
        form = QFormLayout(self.parity_box)
        defaults = default_fields()
        self.fields: dict[str, QLineEdit] = {}
        for key, (label, _, may_be_blank, _) in TOLERANCE_FIELDS.items():
            edit = QLineEdit(defaults[key])
            edit.setPlaceholderText(REPORT_ONLY if may_be_blank else defaults[key])
            edit.textChanged.connect(self.recheck)
            self.fields[key] = edit
            self.field_errors[key] = _error_label()
            form.addRow(label, edit)
            form.addRow(self.field_errors[key])
        images = QLineEdit(defaults[IMAGES_FIELD])
        images.textChanged.connect(self.recheck)
        self.fields[IMAGES_FIELD] = images
        form.addRow("Validation images", images)
        form.addRow(self.field_errors[IMAGES_FIELD])
        return self.parity_box

    def _register_box(self) -> QGroupBox:
        box = QGroupBox("MLflow model registry")
        form = QFormLayout(box)
        self.register = QCheckBox("Register the export as a new model version")
        self.register.toggled.connect(self.recheck)
        form.addRow(self.register)
        self.model_name = QLineEdit()
        self.alias = QLineEdit(default_fields()[ALIAS_FIELD])
        for key, edit, label in ((NAME_FIELD, self.model_name, "Model name"), (ALIAS_FIELD, self.alias, "Alias")):
            edit.textChanged.connect(self.recheck)
            self.field_errors[key] = _error_label()
            form.addRow(label, edit)
            form.addRow(self.field_errors[key])
        return box

    def _progress_row(self) -> QWidget:
        self.progress_box = QWidget()
        row = QHBoxLayout(self.progress_box)
        row.setContentsMargins(0, 0, 0, 0)
        self.step = QLabel()
        self.bar = QProgressBar()
        self.bar.setFormat("step %v of %m")
        row.addWidget(self.step, 1)
        row.addWidget(self.bar)
        self.progress_box.hide()
        return self.progress_box

    def _results(self) -> QWidget:
        self.results = QWidget()
        layout = QVBoxLayout(self.results)
        layout.setContentsMargins(0, 0, 0, 0)
        self.parity_table, self.raw_table, self.worst_table = (
            _table(PARITY_COLUMNS),
            _table(RAW_COLUMNS),
            _table(WORST_COLUMNS),
        )
        self.worst_title = QLabel(WORST_TITLE)
        self.worst_title.setWordWrap(True)
        layout.addWidget(self.parity_table, 3)
        layout.addWidget(self.raw_table, 0)
        layout.addWidget(self.worst_title)
        layout.addWidget(self.worst_table, 1)
        self.results.hide()
        return self.results

    def _buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.open_button = QPushButton("Open folder")
        self.open_button.clicked.connect(self._open_folder)
        self.predict_button = QPushButton("Predict on images…")
        self.predict_button.clicked.connect(self._predict)
        for button in (self.open_button, self.predict_button):
            button.hide()
            row.addWidget(button)
        row.addStretch(1)
        self.export_button = QPushButton("Export")
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.start_export)
        self.cancel_button = QPushButton("Cancel export")
        self.cancel_button.clicked.connect(self.cancel_export)
        self.cancel_button.hide()
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.reject)
        for button in (self.export_button, self.cancel_button, self.close_button):
            row.addWidget(button)
        return row

    # ------------------------------------------------------------------ the form
    def _choose_source(self) -> None:
        index = self.source.currentIndex()
        if index < 0:
            return
        self._offer_destination()
        self.model_name.setText(default_model_name(self.choices[index]))

    def _offer_destination(self) -> None:
        """The chosen run's default folder under the workspace's exports (a new one)."""
        self.destination.setText(str(default_destination(self.workspace, self.choices[self.source.currentIndex()])))

    def _browse(self) -> None:
        current = Path(self.destination.text() or self.workspace)
        parent = QFileDialog.getExistingDirectory(self, "Folder to write the export in", str(current.parent))
        if parent:
            self.destination.setText(str(Path(parent) / current.name))

    def form(self) -> ExportForm:
        return ExportForm(
            run_id=self.source.currentData() or "",
            formats=[name for name, check in self.formats.items() if check.isChecked()],
            destination=self.destination.text(),
            replace=self.replace.isChecked(),
            register=self.register.isChecked(),
            model_name=self.model_name.text(),
            alias=self.alias.text(),
            **{key: edit.text() for key, edit in self.fields.items()},
        )

    def recheck(self) -> ExportRequest | None:
        """Check the form; each message beside its field; Export only when all is well."""
        onnx = self.formats["onnx"].isChecked()
        self.parity_box.setEnabled(onnx)
        for edit in (self.model_name, self.alias):
            edit.setEnabled(self.register.isChecked())
        request, self.errors = validate(self.form(), tracking_uri=self.tracking_uri, workspace=self.workspace)
        for key, label in self.field_errors.items():
            label.setText(self.errors.get(key, ""))
            label.setVisible(key in self.errors)
        self.export_button.setEnabled(request is not None and bool(self.choices) and not self.slot.busy)
        return request

    def _set_editable(self, editable: bool) -> None:
        for box in self.findChildren(QGroupBox):
            box.setEnabled(editable)
        if editable:
            self.parity_box.setEnabled(self.formats["onnx"].isChecked())

    # ------------------------------------------------------------------ the export
    def start_export(self) -> None:
        request = self.recheck()
        if request is None or self.slot.busy:
            return
        self.outcome = None
        self.results.hide()
        self.verdict.hide()
        for button in (self.open_button, self.predict_button):
            button.hide()
        self._set_editable(False)
        self.export_button.setEnabled(False)
        self.cancel_button.show()
        self.cancel_button.setEnabled(True)
        self.step.setText("starting the export process")
        self.bar.setRange(0, 0)
        self.progress_box.show()
        self.slot.start(
            run_export,
            request,
            niceness=BACKGROUND_NICENESS,
            on_done=self._ended,
            on_error=lambda message: self._ended(ExportOutcome(False, request.out, message)),
            on_progress=self._progressed,
        )

    @property
    def exporting(self) -> bool:
        return self.slot.busy

    def cancel_export(self) -> None:
        """Stop the export; its process is killed and nothing it wrote is left behind."""
        task = self.slot.task
        if task is not None:
            task.cancel()  # the worker kills the child, tidies, then reports (not dropped: we want to say so)
            self.cancel_button.setEnabled(False)
            self.step.setText("cancelling: stopping the export and removing what it wrote")

    def _progressed(self, text: str, step: int, steps: int) -> None:
        self.step.setText(text[:1].upper() + text[1:] + "…")
        self.bar.setRange(0, steps)
        self.bar.setValue(step + 1)
        self.step_started.emit(text, step, steps)

    def _ended(self, outcome: ExportOutcome) -> None:
        self.outcome = outcome
        self.progress_box.hide()
        self.cancel_button.hide()
        self._set_editable(True)
        self.show_outcome(outcome)
        self.recheck()
        if outcome.ok:
            if self.destination.text() == str(outcome.out) and outcome.out.parent.name == EXPORTS_FOLDER:
                self._offer_destination()  # the default folder is taken now: offer the next one for another export
            self.exported.emit(str(outcome.out))

    def show_outcome(self, outcome: ExportOutcome) -> None:
        """The verdict, and where there are figures, the parity table, raw differences and worst images."""
        text = verdict(outcome)
        if outcome.ok and outcome.parity is not None:
            text += " " + outcome.message
        if outcome.notes and outcome.parity is None and not outcome.cancelled:
            text += "\n" + "\n".join(outcome.notes[-2:])  # what the engine said before it stopped
        self.verdict.setText(text)
        self.verdict.setToolTip("\n".join(outcome.notes))  # the exporter used, the parity in one paragraph
        self.verdict.setStyleSheet(PASSED_STYLE if outcome.ok else FAILED_STYLE)
        self.verdict.show()
        parity = outcome.parity
        self.results.setVisible(parity is not None)  # the figures, where the parity check ran
        if parity is not None:
            worst = bool(parity["worst_images"])
            self.worst_title.setText(WORST_TITLE if worst else NO_WORST)
            self.worst_table.setVisible(worst)
            _fill(self.parity_table, parity_rows(parity))
            _fill(self.raw_table, raw_rows(parity))
            rows_height = sum(self.raw_table.rowHeight(r) for r in range(self.raw_table.rowCount()))
            self.raw_table.setFixedHeight(rows_height + self.raw_table.horizontalHeader().height() + 4)
            _fill(self.worst_table, worst_rows(parity), figures=False)
            self._make_room(1300, 720)
        for button in (self.open_button, self.predict_button):
            button.setVisible(outcome.ok)

    def _make_room(self, width: int, height: int) -> None:
        """At least this big for the tables beside the form, as far as the screen allows, and on it."""
        area = self.screen().availableGeometry()
        width, height = min(max(self.width(), width), area.width()), min(max(self.height(), height), area.height())
        self.resize(width, height)
        x = max(area.x(), min(self.x(), area.x() + area.width() - width))
        y = max(area.y(), min(self.y(), area.y() + area.height() - height))
        self.move(x, y)

    def _open_folder(self) -> None:
        if self.outcome is not None and self.outcome.ok:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.outcome.out)))

    def _predict(self) -> None:
        if self.outcome is not None and self.outcome.ok:
            self.predict_requested.emit(str(self.outcome.out))

    def reject(self) -> None:
        """Close (Escape, the window's close button, Close): an export still going is cancelled;
        the worker kills its process and tidies after it even once this dialog is gone."""
        task = self.slot.task
        if task is not None:
            task.cancel()
            self.slot.cancel()
        super().reject()


def open_export_dialog(tab, run_id: str) -> ExportDialog | None:
    """The Export dialog for a run of ``tab``'s Runs table (a search: its best finished trial); its
    Predict on images… opens the predict dialog on the export."""
    from .predict_dialog import open_predict_dialog

    row = tab.runs.row_for(run_id)
    if row is None:
        return None
    dialog = ExportDialog(row, tab.runs.rows, tab.workspace, tab.tracking_uri, parent=tab)
    dialog.setAttribute(Qt.WA_DeleteOnClose)

    def predict(folder: str) -> None:
        # The export is done; this dialog is window-modal, so a predict dialog beside it would get no input.
        dialog.close()
        open_predict_dialog(tab, tab.workspace, tab.tracking_uri, export_dir=folder)

    dialog.predict_requested.connect(predict)
    dialog.open()
    return dialog
