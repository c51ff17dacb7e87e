"""The "Where to run" panel: this computer, a Ray started here or a remote Ray cluster, and where to track.

A view of :class:`~app.training.target_model.Target`: radio choices with their few fields, each
field's problem in red under it, and, for each remote place (a Ray cluster, an MLflow server), a
**Test connection** button whose check runs in a :class:`TaskSlot` (at most 10 s, never on the GUI
thread) and whose answer, what was found or what is wrong, shows on the line under it. The target
is saved in the workspace whenever it changes; the Train tab asks :meth:`TargetPanel.apply` for
the config to launch and the URI to chart from (:class:`RunsAtTarget`, its side of the panel).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..widgets.task_slot import TaskSlot
from .target_model import (
    LOCAL,
    LOCAL_RAY,
    MLFLOW_SERVER,
    REMOTE_RAY,
    WORKSPACE_STORE,
    Target,
    TargetError,
    TargetMemory,
    apply_target,
    local_gpus,
    machine_problems,
    notes,
    summary,
    target_from_config,
    tracking_uri,
)

ERROR_COLOUR = "#b00020"
OK_COLOUR = "#1b5e20"
NOTE_COLOUR = "#8a5300"
CHECK_TIMEOUT_S = 10.0
ACCELERATOR_CHOICES = (("Auto", "auto"), ("CPU", "cpu"), ("GPU", "gpu"))


def _check_ray(address: str, dataset_path: str | None, timeout: float):
    from engine.orchestration.connection_check import check_ray

    return check_ray(address, dataset_path=dataset_path, timeout=timeout)


def _check_mlflow(uri: str, timeout: float):
    from engine.orchestration.connection_check import check_mlflow

    return check_mlflow(uri, timeout=timeout)


class ResultLine(QLabel):
    """A connection check's answer: green with what was found, red with what is wrong."""

    def __init__(self) -> None:
        super().__init__()
        self.setWordWrap(True)
        self.hide()

    def testing(self, what: str) -> None:
        self.setText(f"Testing {what}… (at most {CHECK_TIMEOUT_S:.0f} s)")
        self.setStyleSheet("color: #555;")
        self.show()

    def show_result(self, result) -> None:
        found = result.found()
        if result.ok:
            self.setText(f"✓ {found} ({result.seconds:.1f} s)")
            self.setStyleSheet(f"color: {OK_COLOUR};")
        else:
            self.setText(f"✗ {result.problem}" + (f"\nFound: {found}" if found else ""))
            self.setStyleSheet(f"color: {ERROR_COLOUR};")
        self.show()

    def show_failure(self, message: str) -> None:
        self.setText(f"✗ the check itself failed: {message}")
        self.setStyleSheet(f"color: {ERROR_COLOUR};")
        self.show()

    def clear_result(self) -> None:
        self.clear()
        self.hide()


class TargetPanel(QGroupBox):
    """Where the Train tab's runs execute and are tracked; saved per workspace."""

    changed = Signal()
    valid_changed = Signal(bool)
    # Where runs are now tracked: the MLflow server's URI, or "" for the workspace's store. Said when
    # a usable choice is saved (a finished address, not each key), so the Runs table follows it.
    tracking_chosen = Signal(str)

    def __init__(self, workspace: str | Path, parent=None, detect_gpus=local_gpus) -> None:
        super().__init__("Where to run", parent)
        self._memory = TargetMemory.in_workspace(workspace)
        self._dataset_path: str | None = None
        self._gpus: list[str] | None = None  # None until this computer was asked
        self._loading = False
        self._valid = True
        self._tracking: str | None = None  # the last tracking_chosen said
        self._ray_slot = TaskSlot(self)
        self._mlflow_slot = TaskSlot(self)
        self._gpu_slot = TaskSlot(self)
        self.errors: dict[str, QLabel] = {}

        self.local_radio = QRadioButton("This computer")
        self.local_ray_radio = QRadioButton("Ray on this computer")
        self.remote_radio = QRadioButton("Remote Ray cluster")
        self.where_group = QButtonGroup(self)
        for radio in (self.local_radio, self.local_ray_radio, self.remote_radio):
            self.where_group.addButton(radio)

        self.accelerator = QComboBox()
        for text, value in ACCELERATOR_CHOICES:
            self.accelerator.addItem(text, value)
        self.devices = QSpinBox()
        self.devices.setRange(0, 64)
        self.devices.setSpecialValueText("all")  # 0 stands for every device found
        self.devices.setToolTip("How many GPUs to train on; 'all' uses every one found")
        self.gpus_line = QLabel("Looking for GPUs…")
        self.gpus_line.setStyleSheet("color: #555;")

        self.workers = QSpinBox()
        self.workers.setRange(1, 1024)
        self.workers.setToolTip("Ray Train workers, each a training process with a copy of the model")
        self.gpu_per_worker = QCheckBox("one GPU per worker")

        self.dashboard = QLineEdit()
        self.dashboard.setPlaceholderText("http://host:8265 (the cluster's dashboard)")
        self.dashboard.setToolTip(
            "The Ray dashboard address. Its token is taken as Ray takes it: RAY_AUTH_TOKEN, the file "
            "named by RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token; it is never shown."
        )
        self.test_ray_button = QPushButton("Test connection")
        self.ray_result = ResultLine()

        self.workspace_radio = QRadioButton("This workspace's store")
        self.mlflow_radio = QRadioButton("MLflow server")
        self.tracking_group = QButtonGroup(self)
        self.tracking_group.addButton(self.workspace_radio)
        self.tracking_group.addButton(self.mlflow_radio)
        self.mlflow_uri = QLineEdit()
        self.mlflow_uri.setPlaceholderText("http://host:5000 (e.g. lightbox server)")
        self.test_mlflow_button = QPushButton("Test connection")
        self.mlflow_result = ResultLine()
        self.notes_line = QLabel()
        self.notes_line.setWordWrap(True)
        self.notes_line.setStyleSheet(f"color: {NOTE_COLOUR};")
        self.notes_line.hide()

        self._lay_out()
        self._show(self._memory.recall())
        self._tracking = tracking_uri(self.target(), "") if self._valid else ""
        for signal in (
            self.where_group.buttonToggled,
            self.tracking_group.buttonToggled,
            self.accelerator.currentIndexChanged,
            self.devices.valueChanged,
            self.workers.valueChanged,
            self.gpu_per_worker.toggled,
            self.dashboard.textChanged,
            self.mlflow_uri.textChanged,
        ):
            signal.connect(self._edited)
        # Saved when a choice changes or an address is finished, not at every key.
        for signal in (
            self.where_group.buttonToggled,
            self.tracking_group.buttonToggled,
            self.accelerator.currentIndexChanged,
            self.devices.valueChanged,
            self.workers.valueChanged,
            self.gpu_per_worker.toggled,
            self.dashboard.editingFinished,
            self.mlflow_uri.editingFinished,
        ):
            signal.connect(self.save)
        self.dashboard.textChanged.connect(lambda: self._forget_check(self._ray_slot, self.ray_result))
        self.mlflow_uri.textChanged.connect(lambda: self._forget_check(self._mlflow_slot, self.mlflow_result))
        self.test_ray_button.clicked.connect(self.test_ray)
        self.test_mlflow_button.clicked.connect(self.test_mlflow)
        self._gpu_slot.start(detect_gpus, on_done=self._gpus_found, on_error=lambda m: self._gpus_found([]))

    def _error_label(self, name: str) -> QLabel:
        label = QLabel()
        label.setWordWrap(True)
        label.setStyleSheet(f"color: {ERROR_COLOUR};")
        label.hide()
        self.errors[name] = label
        return label

    def _lay_out(self) -> None:
        # Each choice's fields sit indented under it and show only while it is chosen.
        self.local_fields = _indented(
            _row(QLabel("Hardware"), self.accelerator, QLabel("devices"), self.devices),
            self.gpus_line,
            self._error_label("accelerator"),
            self._error_label("devices"),
        )
        self.remote_fields = _indented(
            _row(QLabel("Dashboard"), self.dashboard, self.test_ray_button, stretch=False),
            self._error_label("dashboard"),
            self.ray_result,
        )
        self.ray_fields = _indented(
            _row(QLabel("Ray workers"), self.workers, self.gpu_per_worker),
            self._error_label("ray_workers"),
        )
        self.mlflow_fields = _indented(
            _row(self.mlflow_uri, self.test_mlflow_button, stretch=False),
            self._error_label("mlflow_uri"),
            self.mlflow_result,
        )
        track_title = QLabel("Where to track")
        track_title.setStyleSheet("font-weight: bold; margin-top: 6px;")
        layout = QVBoxLayout(self)
        layout.setSpacing(4)
        for widget in (
            self.local_radio,
            self.local_fields,
            self.local_ray_radio,
            self.ray_fields,
            self.remote_radio,
            self.remote_fields,
            track_title,
            self.workspace_radio,
            self.mlflow_radio,
            self.mlflow_fields,
            self.notes_line,
        ):
            layout.addWidget(widget)
        layout.addStretch(1)

    # ------------------------------------------------------------------ the target
    def target(self) -> Target:
        where = (
            REMOTE_RAY if self.remote_radio.isChecked() else LOCAL_RAY if self.local_ray_radio.isChecked() else LOCAL
        )
        return Target(
            where=where,
            accelerator=self.accelerator.currentData(),
            devices=self.devices.value() or None,
            ray_workers=self.workers.value(),
            ray_gpu_per_worker=self.gpu_per_worker.isChecked(),
            dashboard=self.dashboard.text().strip(),
            tracking=MLFLOW_SERVER if self.mlflow_radio.isChecked() else WORKSPACE_STORE,
            mlflow_uri=self.mlflow_uri.text().strip(),
        )

    def set_target(self, target: Target) -> None:
        """Show ``target`` (e.g. from a loaded config: ``target_model.target_from_config``) and save it."""
        self._show(target)
        self.save()

    def _show(self, target: Target) -> None:
        self._loading = True
        try:
            radio = {LOCAL: self.local_radio, LOCAL_RAY: self.local_ray_radio, REMOTE_RAY: self.remote_radio}
            radio.get(target.where, self.local_radio).setChecked(True)
            index = self.accelerator.findData(target.accelerator)
            self.accelerator.setCurrentIndex(max(index, 0))
            self.devices.setValue(target.devices or 0)
            self.workers.setValue(max(1, target.ray_workers))
            self.gpu_per_worker.setChecked(target.ray_gpu_per_worker)
            self.dashboard.setText(target.dashboard)
            (self.mlflow_radio if target.tracking == MLFLOW_SERVER else self.workspace_radio).setChecked(True)
            self.mlflow_uri.setText(target.mlflow_uri)
        finally:
            self._loading = False
        self._edited()

    def problems(self) -> dict[str, str]:
        """What is wrong with the target shown, each under its field's name."""
        target = self.target()
        return {**machine_problems(target, None if self._gpus is None else len(self._gpus)), **target.problems()}

    @property
    def is_valid(self) -> bool:
        return self._valid

    def apply(self, config, workspace_uri: str):
        """``(config to launch, tracking URI)`` for ``config`` run at the target shown (TargetError if unusable)."""
        problems = self.problems()
        if problems:
            raise TargetError(problems)
        return apply_target(config, self.target(), workspace_uri)

    def tracking_uri(self, workspace_uri: str) -> str:
        """Where runs are tracked as the panel was last saved: its MLflow server, else ``workspace_uri``."""
        return self._tracking or workspace_uri

    def set_dataset_path(self, path: str | Path | None) -> None:
        """The dataset a cluster test checks it can read (the run form's ``data.path``)."""
        self._dataset_path = str(path) if path else None

    def _edited(self, *args) -> None:
        if self._loading:
            return
        target = self.target()
        local, remote = target.where == LOCAL, target.is_remote
        mlflow = target.tracking == MLFLOW_SERVER
        self.local_fields.setVisible(local)
        self.devices.setEnabled(target.accelerator == "gpu")
        self.ray_fields.setVisible(target.where == LOCAL_RAY)
        self.remote_fields.setVisible(remote)
        self.test_ray_button.setEnabled(bool(target.dashboard))
        self.mlflow_fields.setVisible(mlflow)
        self.test_mlflow_button.setEnabled(bool(target.mlflow_uri))
        problems = self.problems()
        for name, label in self.errors.items():
            label.setText(problems.get(name, ""))
            label.setVisible(name in problems)
        told = notes(target) if not problems else []
        self.notes_line.setText("\n".join(told))
        self.notes_line.setVisible(bool(told))
        if self._valid != (not problems):
            self._valid = not problems
            self.valid_changed.emit(self._valid)
        self.changed.emit()

    def save(self, *args) -> None:
        """Remember the target in the workspace (a usable one only: a half-typed address is not kept)."""
        if self._loading or not self._valid:
            return
        target = self.target()
        with contextlib.suppress(OSError):  # a convenience: runs do not depend on it
            self._memory.remember(target)
        chosen = tracking_uri(target, "")
        if chosen != self._tracking:
            self._tracking = chosen
            self.tracking_chosen.emit(chosen)

    def _gpus_found(self, names: list[str]) -> None:
        self._gpus = list(names)
        if names:
            listed = ", ".join(names[:2]) + (f" and {len(names) - 2} more" if len(names) > 2 else "")
            self.gpus_line.setText(f"{len(names)} GPU{'s' if len(names) > 1 else ''} found: {listed}")
            self.devices.setMaximum(len(names))
        else:
            self.gpus_line.setText("No GPU found: runs here train on the CPU.")
        self._edited()

    # ------------------------------------------------------------------ Test connection
    def test_ray(self) -> None:
        """Ask the cluster (in the background) for its version, nodes, CPUs/GPUs, and whether it reads the dataset."""
        address = self.dashboard.text().strip()
        if not address:
            return
        self.ray_result.testing(address)
        self._ray_slot.start(
            _check_ray,
            address,
            self._dataset_path,
            CHECK_TIMEOUT_S,
            on_done=self.ray_result.show_result,
            on_error=self.ray_result.show_failure,
        )

    def test_mlflow(self) -> None:
        """Ask the MLflow server (in the background) whether it answers and takes a write."""
        uri = self.mlflow_uri.text().strip()
        if not uri:
            return
        self.mlflow_result.testing(uri)
        self._mlflow_slot.start(
            _check_mlflow,
            uri,
            CHECK_TIMEOUT_S,
            on_done=self.mlflow_result.show_result,
            on_error=self.mlflow_result.show_failure,
        )

    @staticmethod
    def _forget_check(slot: TaskSlot, line: ResultLine) -> None:
        """A changed address makes the answer about the old one stale."""
        slot.cancel()
        line.clear_result()


def _row(*widgets: QWidget, stretch: bool = True) -> QHBoxLayout:
    """Widgets side by side; with ``stretch`` they keep their own width and the space goes right."""
    row = QHBoxLayout()
    row.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        row.addWidget(widget, 0 if stretch or not isinstance(widget, QLineEdit) else 1)
    if stretch:
        row.addStretch(1)
    return row


def _indented(*parts: QWidget | QHBoxLayout) -> QWidget:
    """A block of fields indented under the choice they belong to."""
    block = QWidget()
    layout = QVBoxLayout(block)
    layout.setContentsMargins(22, 0, 0, 4)
    layout.setSpacing(3)
    for part in parts:
        if isinstance(part, QWidget):
            layout.addWidget(part)
        else:
            layout.addLayout(part)
    return block


class RunsAtTarget:
    """The Train tab's side of the panel (a mixin of ``TrainTab``): runs launch at the panel's target
    and the tab reads runs where they are tracked.

    Uses the tab's ``workspace``, ``form``, ``poller``, ``banner``, ``show_error`` and
    ``refresh_runs``; sets ``workspace_uri`` (the store the app was opened with), ``tracking_uri``
    (where runs are read from now) and ``target_panel``.
    """

    def _add_target_panel(self, workspace_uri: str) -> None:
        """Make the panel; before the poller, which starts on the tracking URI the panel says."""
        self.workspace_uri = workspace_uri
        self.target_panel = TargetPanel(self.workspace)
        self.tracking_uri = self.target_panel.tracking_uri(workspace_uri)
        # The panel is a tab beside the forms; this line keeps where runs go in sight.
        self.target_line = QLabel()
        self.target_line.setObjectName("targetLine")
        self.target_line.setWordWrap(True)
        self.target_panel.changed.connect(self._show_target_line)
        self._show_target_line()

    def _target_page(self) -> QScrollArea:
        """The panel as a tab page: it scrolls, being taller than a small window's form area."""
        page = QScrollArea()
        page.setWidgetResizable(True)
        page.setFrameShape(QScrollArea.NoFrame)
        page.setWidget(self.target_panel)
        return page

    def _show_target_line(self) -> None:
        problems = self.target_panel.problems()
        text = summary(self.target_panel.target())
        if problems:
            text += " Fix the fields marked in Where to run first."
        self.target_line.setText(text)

    def _follow_target(self) -> None:
        """Once the form and the poller exist: follow the tracking choice and the form's dataset."""
        self.target_panel.tracking_chosen.connect(self._tracking_chosen)
        self.form.changed.connect(self._dataset_to_target)
        self._dataset_to_target()

    def _dataset_to_target(self) -> None:
        self.target_panel.set_dataset_path(self.form.model.values.get("data.path"))

    def _tracking_chosen(self, server_uri: str) -> None:
        """Runs are tracked elsewhere now: the Runs table and the charts' reads follow."""
        self.tracking_uri = self.poller.tracking_uri = server_uri or self.workspace_uri
        self.refresh_runs()

    def _at_target(self, config):
        """``(config to launch, tracking URI)`` at the panel's target; None (and a banner) if it is unusable."""
        try:
            placed = self.target_panel.apply(config, self.workspace_uri)
        except TargetError as exc:
            self.show_error(f"Where to run: {exc}", cause="target")
            return None
        self.banner.clear("target")
        return placed

    def _target_from_loaded(self, config) -> None:
        """A loaded config's compute section and tracking URI, where it sets them, move the panel."""
        self.target_panel.set_target(target_from_config(config, self.target_panel.target()))
