"""Predict on images with an export folder or a finished run, in the background.

The prediction runs as ``python -m engine predict`` in a child process (onnxruntime and torch
never load into the app), watched from a worker thread (``TaskSlot``): its progress events
(``engine.tracking.progress_events``) fill the dialog's bar, and a failure shows the message
the command printed, which names the file. When the results file is written the dialog
emits ``predicted`` and the main window draws the results over the images.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.orchestration import jobs
from engine.tracking.progress_events import EVENTS_ENV

from ..widgets.task_slot import TaskSlot
from ..widgets.workers import BACKGROUND_NICENESS
from .child_output import follow_child

BACKENDS = {"onnx": "ONNX (onnxruntime)", "torch": "PyTorch (Hugging Face folder)"}
RUN_BACKEND = "the run's checkpoint (PyTorch)"
PATH_SEPARATOR = ";"  # several images or folders in one field
DIALOG_NAME = "predictDialog"  # the main window finds its open dialogs by it, to stop them when it closes


class PredictError(RuntimeError):
    """The prediction could not run; the message names the file or the run."""


class PredictCancelled(PredictError):
    """The user stopped it."""


@dataclass
class PredictRequest:
    source: str  # an export folder, or a run id
    images: list[str]  # image files and folders
    out: Path  # the results file to write
    backend: str = "onnx"  # for an export: onnx or torch
    workspace: Path | None = None
    tracking_uri: str | None = None

    @property
    def is_export(self) -> bool:
        return Path(self.source).is_dir()


@dataclass
class PredictResult:
    """What the main window needs to draw the results."""

    results: Path
    images: list[Path]  # the predicted files, in the predictor's order (image id k is images[k - 1])
    image_root: Path | None  # where relative file names in the results lie
    categories: dict[int, str] = field(default_factory=dict)  # the export's category id -> name
    skipped: list[str] = field(default_factory=list)  # "file: why", images the predictor could not read
    summary: str = ""
    unreadable: list[Path] = field(default_factory=list)  # the files of ``skipped``


def _export_facts(folder: Path) -> dict:
    """The export's manifest, refused when its task cannot be drawn (ExportError names the file)."""
    from engine.export.manifest import ExportError, read_manifest

    from ..dataset.predictions import TASKS

    manifest = read_manifest(folder)
    if manifest["task"] not in TASKS:
        raise ExportError(f"{folder}: a '{manifest['task']}' export cannot be drawn (only {', '.join(TASKS)})")
    return manifest


def available_backends(folder: Path) -> list[str]:
    """The backends an export folder holds (``onnx``: model.onnx; ``torch``: the Hugging Face folder)."""
    from engine.export.manifest import ONNX_NAME

    manifest = _export_facts(folder)
    found = ["onnx"] if (folder / ONNX_NAME).is_file() else []
    return found + (["torch"] if "hf" in manifest else [])


def _run_images(images: list[str]) -> tuple[list[Path], Path]:
    """A run predicts one folder: its images in the order ``lightbox predict RUN_ID`` numbers them."""
    from engine.orchestration.evaluate import IMAGE_SUFFIXES

    if len(images) != 1 or not Path(images[0]).is_dir():
        raise PredictError("a run predicts one folder of images: choose a folder (or use an export for files)")
    folder = Path(images[0]).absolute()
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise PredictError(f"{folder}: no images found ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files, folder


def prediction_command(request: PredictRequest, python: str | None = None) -> list[str]:
    command = [python or sys.executable, "-u", "-m", "engine", "predict", request.source, *request.images]
    command += ["--out", str(request.out)]
    if request.is_export:
        command += ["--backend", request.backend]
    if request.workspace is not None:
        command += ["--workspace", str(request.workspace)]
    if request.tracking_uri:
        command += ["--tracking-uri", request.tracking_uri]
    return jobs.niced_command(command, BACKGROUND_NICENESS, python=python)


def run_prediction(
    request: PredictRequest, *, progress=None, cancel: threading.Event | None = None, python: str | None = None
) -> PredictResult:
    """Run ``lightbox predict`` for ``request`` in a child process (call from a worker thread)."""
    from engine.export.manifest import ExportError

    try:
        if request.is_export:
            from engine.export.predict import expand_images

            categories = {int(c["id"]): str(c["name"]) for c in _export_facts(Path(request.source))["categories"]}
            files, root = expand_images(request.images), None
        else:
            categories = {}
            files, root = _run_images(request.images)
    except ExportError as exc:
        raise PredictError(str(exc)) from None
    if progress is not None:
        progress(f"{len(files)} images, starting the predictor…", 0, len(files))
    request.out.parent.mkdir(parents=True, exist_ok=True)
    child = subprocess.Popen(
        prediction_command(request, python),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # a cancel kills the predictor and whatever it started
        env={**os.environ, EVENTS_ENV: "1", "TQDM_DISABLE": "1"},
    )
    lines: list[str] = []

    def on_event(event: dict) -> None:
        if progress is not None and event.get("steps"):
            progress(f"{event['step']}/{event['steps']} images", int(event["step"]), int(event["steps"]))

    follow_child(
        child,
        on_event=on_event,
        on_line=lines.append,
        cancel=cancel,
        cancelled=lambda: PredictCancelled("the prediction was cancelled"),
    )
    said = [line.removeprefix("lightbox predict:").strip() for line in lines if line.startswith("lightbox predict:")]
    if child.returncode != 0 or not request.out.is_file():
        fallback = lines[-1] if lines else f"the predictor exited with status {child.returncode}"
        raise PredictError(said[-1] if said else fallback)
    skipped = [line.removeprefix("skipped ") for line in lines if line.startswith("skipped ")]
    unreadable = [f for f in files if any(text.startswith(f"{f}: ") for text in skipped)]
    summary = next((line for line in reversed(lines) if "written to" in line), f"predictions written to {request.out}")
    return PredictResult(request.out, files, root, categories, skipped, summary, unreadable)


def default_results_path(workspace: Path) -> Path:
    """A new results file under the workspace (predictions never write over earlier ones)."""
    return workspace / "predictions" / time.strftime("%Y%m%d-%H%M%S") / "results.json"


class PredictDialog(QDialog):
    """Choose a model (an export folder or a run), the images and the backend; predict in the background."""

    predicted = Signal(object)  # PredictResult, once the results file is written

    def __init__(
        self,
        workspace: str | Path,
        *,
        tracking_uri: str | None = None,
        run_id: str | None = None,
        export_dir: str | Path | None = None,
        images: str | Path | None = None,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.setObjectName(DIALOG_NAME)
        self.setWindowTitle("Predict on images")
        self.workspace = Path(workspace)
        self.tracking_uri = tracking_uri
        self._slot = TaskSlot(self)
        self.result: PredictResult | None = None

        self.source = QLineEdit(str(export_dir) if export_dir else (run_id or ""))
        self.source.setPlaceholderText("an export folder (lightbox export), or a run id")
        self.source.editingFinished.connect(self._source_changed)
        browse_export = QPushButton("Export folder…")
        browse_export.clicked.connect(self._choose_export)
        source_row = QHBoxLayout()
        source_row.addWidget(self.source, 1)
        source_row.addWidget(browse_export)

        self.backend = QComboBox()
        self.images = QLineEdit(str(images) if images else "")
        self.images.setPlaceholderText(f"image files or folders, separated by '{PATH_SEPARATOR}'")
        pick_folder, pick_files = QPushButton("Folder…"), QPushButton("Images…")
        pick_folder.clicked.connect(self._choose_image_folder)
        pick_files.clicked.connect(self._choose_image_files)
        images_row = QHBoxLayout()
        images_row.addWidget(self.images, 1)
        images_row.addWidget(pick_folder)
        images_row.addWidget(pick_files)
        self.out = QLineEdit(str(default_results_path(self.workspace)))
        self.out.setToolTip("The COCO results file to write (JSON)")

        form = QFormLayout()
        form.addRow("Model", self._wrap(source_row))
        form.addRow("Backend", self.backend)
        form.addRow("Images", self._wrap(images_row))
        form.addRow("Results file", self.out)

        self.progress = QProgressBar()
        self.progress.hide()
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox()
        self.predict_button = self.buttons.addButton("Predict", QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self.buttons.addButton("Stop", QDialogButtonBox.ButtonRole.ActionRole)
        self.cancel_button.hide()
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.predict_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.close)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.resize(640, 240)
        self._source_changed()

    @staticmethod
    def _wrap(row: QHBoxLayout) -> QWidget:
        holder = QWidget()
        row.setContentsMargins(0, 0, 0, 0)
        holder.setLayout(row)
        return holder

    # ------------------------------------------------------------------ choices
    def _choose_export(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose an export folder", str(self.workspace))
        if folder:
            self.source.setText(folder)
            self._source_changed()

    def _choose_image_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder of images", str(self.workspace))
        if folder:
            self.images.setText(folder)

    def _choose_image_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Choose images", str(self.workspace), "Images (*.jpg *.jpeg *.png *.bmp *.tif *.tiff *.webp)"
        )
        if files:
            self.images.setText(PATH_SEPARATOR.join(files))

    def _source_changed(self) -> None:
        """Offer the backends the chosen model has; say at once what is wrong with it."""
        from engine.export.manifest import ExportError

        text = self.source.text().strip()
        self.backend.clear()
        if not text:
            return
        if Path(text).is_dir():
            try:
                backends = available_backends(Path(text))
            except ExportError as exc:
                self.show_message(str(exc), error=True)
                return
            for name in backends:
                self.backend.addItem(BACKENDS[name], name)
            self.show_message("")
        elif os.sep in text:
            self.show_message(f"{text}: no such folder (an export folder or a run id is needed)", error=True)
        else:
            self.backend.addItem(RUN_BACKEND, "torch")
            self.show_message("")

    def show_message(self, text: str, *, error: bool = False) -> None:
        self.message.setStyleSheet("color: #8a1c1c;" if error else "")
        self.message.setText(text)

    # ------------------------------------------------------------------ running
    def request(self) -> PredictRequest | None:
        """The request the fields make, or None (with the reason shown)."""
        from engine.export.manifest import ExportError

        source = self.source.text().strip()
        images = [p.strip() for p in self.images.text().split(PATH_SEPARATOR) if p.strip()]
        out = self.out.text().strip()
        if not source:
            self.show_message("Choose an export folder or give a run id.", error=True)
            return None
        if Path(source).is_dir():
            try:
                available_backends(Path(source))
            except ExportError as exc:
                self.show_message(str(exc), error=True)
                return None
        elif os.sep in source:
            self.show_message(f"{source}: no such folder", error=True)
            return None
        if self.backend.currentData() is None:
            self.show_message(f"{source}: this export holds neither model.onnx nor a Hugging Face folder", error=True)
            return None
        if not images:
            self.show_message("Choose the images (files or a folder) to predict on.", error=True)
            return None
        missing = [p for p in images if not Path(p).exists() and not any(c in p for c in "*?[")]
        if missing:
            self.show_message(f"{missing[0]}: no such file or folder", error=True)
            return None
        if not out:
            self.show_message("Give the results file to write.", error=True)
            return None
        if Path(out).exists():
            self.show_message(f"{out} already exists: choose another results file", error=True)
            return None
        return PredictRequest(
            source, images, Path(out).absolute(), self.backend.currentData(), self.workspace, self.tracking_uri
        )

    def start(self):
        """Start predicting; returns the background task (None when a field is wrong)."""
        request = self.request()
        if request is None:
            return None
        self.result = None
        self.show_message("Starting the predictor…")
        self.progress.setRange(0, 0)
        self.progress.show()
        self.predict_button.setEnabled(False)
        self.cancel_button.show()
        return self._slot.start(
            run_prediction, request, on_done=self._done, on_error=self._failed, on_progress=self._progressed
        )

    @property
    def running(self) -> bool:
        return self._slot.busy

    def cancel(self) -> None:
        if self._slot.busy:
            self._slot.task.cancel()  # the task's own cancel: its end still reaches _failed
            self.show_message("Stopping…")

    def _progressed(self, text: str, done: int, total: int) -> None:
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
        self.show_message(f"Predicting: {text}")

    def _finish(self) -> None:
        self.progress.hide()
        self.predict_button.setEnabled(True)
        self.cancel_button.hide()

    def _done(self, result: PredictResult) -> None:
        self._finish()
        self.result = result
        self.out.setText(str(default_results_path(self.workspace)))  # the next run writes a new file
        lines = [result.summary]
        if result.skipped:
            lines += [f"Skipped {len(result.skipped)} unreadable images:"] + result.skipped[:5]
        self.show_message("\n".join(lines))
        self.predicted.emit(result)
        if not result.skipped:
            self.close()  # the predictions are in the Image view now; skipped files stay listed here

    def _failed(self, message: str) -> None:
        self._finish()
        if message.startswith("the prediction was cancelled"):
            self.show_message("Stopped; nothing was drawn.")
        else:
            self.show_message(f"Prediction failed: {message}", error=True)

    def closeEvent(self, event) -> None:
        # The predictor is this dialog's child: closing stops it rather than leave it running unseen.
        if self._slot.busy:
            self._slot.task.cancel()
        super().closeEvent(event)


def open_predict_dialog(
    parent: QWidget,
    workspace: str | Path,
    tracking_uri: str | None = None,
    run_id: str | None = None,
    export_dir: str | Path | None = None,
) -> PredictDialog:
    """Open the dialog (not modal); its results go to the main window's Image view when it has one."""
    window = parent.window() if parent is not None else None
    session = getattr(window, "session", None)
    images = None
    if session is not None and session.splits:
        split = "val" if "val" in session.splits else session.splits[0]
        images = session.image_dir(split)
    dialog = PredictDialog(
        workspace, tracking_uri=tracking_uri, run_id=run_id, export_dir=export_dir, images=images, parent=window
    )
    if hasattr(window, "show_prediction_result"):
        dialog.predicted.connect(window.show_prediction_result)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    return dialog
