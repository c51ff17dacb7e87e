"""The Evaluate tab: where a finished run is wrong, one click from the images.

The run's ``evaluation.json`` is found and read in a TaskSlot (never on the GUI thread); a run
without one says so and offers "Evaluate now", which runs ``python -m engine eval RUN_ID`` as a
child process (QProcess: its output is read as it comes, never waited for) and then reads the
result. The page shown follows the task (``evaluate_detection``, ``evaluate_pages``); what the
user clicks becomes ``image_requested`` (one image) or ``browse_requested`` (a list for Browse).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QProcess, Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ..widgets.task_slot import TaskSlot
from .evaluate_compare import CompareView
from .evaluate_detection import DetectionPage
from .evaluate_pages import ClassificationPage, SegmentationPage
from .evaluation_model import FILTERS, Evaluation, engine_eval_command, find_report, load_evaluation

HINT = "Select a finished run in the Train tab's Runs table and click Evaluate."
OUTPUT_LINES = 12  # the last lines of `engine eval` shown while it runs (and when it fails)


def find_and_load(run_id: str, run_dir: str | None, tracking_uri: str | None, workspace: str | None):
    """The run's evaluation, read and indexed; None when it has none yet (a worker thread's job)."""
    path = find_report(run_id, run_dir, tracking_uri, workspace)
    return load_evaluation(path) if path is not None else None


class EvaluateView(QWidget):
    image_requested = Signal(int, object)  # image index in the evaluation, annotation id to highlight or None
    browse_requested = Signal(str, list)  # what the list is, image indices in their order
    threshold_changed = Signal(float)  # detection's score threshold moved
    evaluation_loaded = Signal(object)  # Evaluation

    def __init__(self, workspace: str | Path | None = None, tracking_uri: str | None = None, parent=None):
        super().__init__(parent)
        self.workspace = str(workspace) if workspace is not None else None
        self.tracking_uri = tracking_uri
        self.run_id: str | None = None
        self.run_dir: str | None = None
        self.run_name = ""
        self.evaluation: Evaluation | None = None
        self.process: QProcess | None = None
        self._output: list[str] = []
        self._slot = TaskSlot(self)

        self.title = QLabel(HINT)
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.browse_buttons: dict[str, QPushButton] = {}
        browse = QHBoxLayout()
        browse.addWidget(QLabel("In Browse:"))
        for name in FILTERS:
            button = QPushButton(name)
            button.setToolTip(f"Show the run's images in Browse: {name} (worst first)")
            button.clicked.connect(lambda _=False, n=name: self.browse(n))
            browse.addWidget(button)
            self.browse_buttons[name] = button
        browse.addStretch(1)
        self.compare_button = QPushButton("Compare with…")
        self.compare_button.setToolTip("This run's per-class figures against another finished run's of its task")
        self.compare_button.clicked.connect(self.compare_with)
        browse.addWidget(self.compare_button)
        self.again_button = QPushButton("Evaluate again")
        self.again_button.setToolTip("Run `lightbox eval` on this run again (the file is replaced)")
        self.again_button.clicked.connect(self.evaluate_now)
        browse.addWidget(self.again_button)
        self.browse_bar = QWidget()
        self.browse_bar.setLayout(browse)
        self.browse_bar.hide()

        # The page for a run without an evaluation, or while one is read or computed.
        self.message = QLabel(HINT)
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.evaluate_button = QPushButton("Evaluate now")
        self.evaluate_button.setToolTip("Run `lightbox eval` on this run (in the background) and show the result")
        self.evaluate_button.clicked.connect(self.evaluate_now)
        self.evaluate_button.hide()
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setFixedWidth(300)
        self.busy.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_evaluation)
        self.cancel_button.hide()
        self.output = QPlainTextEdit()
        self.output.setReadOnly(True)
        self.output.setMaximumHeight(180)
        self.output.hide()
        message_page = QWidget()
        message_layout = QVBoxLayout(message_page)
        message_layout.addStretch(1)
        message_layout.addWidget(self.message)
        for widget in (self.evaluate_button, self.busy, self.cancel_button):
            message_layout.addWidget(widget, 0, Qt.AlignmentFlag.AlignHCenter)
        message_layout.addWidget(self.output)
        message_layout.addStretch(1)

        self.classification = ClassificationPage()
        self.detection = DetectionPage()
        self.segmentation = SegmentationPage()
        self.classification.cell_requested.connect(self.browse_requested)
        self.detection.image_requested.connect(self.image_requested)
        self.segmentation.image_requested.connect(self.image_requested)
        self.detection.threshold_changed.connect(self.threshold_changed)
        self.compare = CompareView(self.workspace, tracking_uri)
        self.compare.back_requested.connect(self._back_from_compare)
        self.pages = QStackedWidget()
        for page in (message_page, self.classification, self.detection, self.segmentation, self.compare):
            self.pages.addWidget(page)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addWidget(self.browse_bar)
        layout.addWidget(self.pages, 1)

    # ------------------------------------------------------------------ which run
    @property
    def threshold(self) -> float:
        return self.detection.threshold

    def show_run(self, run_id: str, run_dir: str | None = None, name: str = "") -> None:
        """Find and read ``run_id``'s evaluation in the background, then show it (or offer to make one)."""
        if self.process is not None and self.run_id != run_id:
            self.cancel_evaluation()
        self.run_id, self.run_dir, self.run_name = run_id, run_dir, name or run_id[:8]
        self.evaluation = None
        self.compare.cancel_evaluation()
        self.title.setText(f"<b>{self.run_name}</b> · reading its evaluation…")
        self.browse_bar.hide()
        self._message(f"Reading the evaluation of {self.run_name}…", busy=True)
        self._slot.start(
            find_and_load,
            run_id,
            run_dir,
            self.tracking_uri,
            self.workspace,
            on_done=self._loaded,
            on_error=self._load_failed,
        )

    @property
    def loading(self) -> bool:
        return self._slot.busy

    def _loaded(self, evaluation: Evaluation | None) -> None:
        if evaluation is None:
            self.title.setText(f"<b>{self.run_name}</b> · no evaluation yet")
            self._message(
                f"The run {self.run_name} has no evaluation yet (runs finished before evaluations were "
                "written, or one whose evaluation was removed). Evaluate now computes it from the run's best "
                "checkpoint on its validation split.",
                offer=True,
            )
            return
        self.set_evaluation(evaluation)

    def _load_failed(self, message: str) -> None:
        self.title.setText(f"<b>{self.run_name}</b> · the evaluation cannot be shown")
        self._message(f"Cannot show the evaluation: {message}", offer=self.run_id is not None)

    def set_evaluation(self, evaluation: Evaluation) -> None:
        """Show ``evaluation`` (the page of its task)."""
        self.evaluation = evaluation
        page = self._page()
        page.set_evaluation(evaluation)
        self.pages.setCurrentWidget(page)
        if not self.run_name:  # shown without a run (a file): named by the run it names
            self.run_name = (evaluation.source.get("run_id") or "")[:8] or evaluation.path.parent.name
        self.title.setText(f"<b>{self.run_name}</b> · {evaluation.headline()}")
        self.title.setToolTip(str(evaluation.path))
        usable = set(evaluation.filters())
        for filter_name, button in self.browse_buttons.items():
            button.setVisible(filter_name in usable)
        self.again_button.setVisible(self.run_id is not None)
        self.compare_button.setVisible(self.run_id is not None)
        self.browse_bar.show()
        self.evaluation_loaded.emit(evaluation)

    def _page(self) -> QWidget:
        task = self.evaluation.task if self.evaluation is not None else ""
        return {"classification": self.classification, "detection": self.detection}.get(task, self.segmentation)

    def compare_with(self) -> None:
        """Show this run against a second finished run of its task (chosen in the compare page)."""
        if self.evaluation is not None and self.run_id is not None:
            self.compare.start(self.run_id, self.run_name, self.evaluation)
            self.pages.setCurrentWidget(self.compare)

    def _back_from_compare(self) -> None:
        self.compare.cancel_evaluation()
        if self.evaluation is not None:
            self.pages.setCurrentWidget(self._page())

    def _message(self, text: str, *, busy: bool = False, offer: bool = False) -> None:
        self.message.setText(text)
        self.busy.setVisible(busy)
        self.evaluate_button.setVisible(offer and self.process is None)
        self.cancel_button.setVisible(self.process is not None)
        self.output.setVisible(bool(self._output))
        self.pages.setCurrentIndex(0)

    def browse(self, name: str) -> None:
        """Ask for the run's images of a filter in Browse (detection's at the slider's threshold)."""
        if self.evaluation is not None:
            self.browse_requested.emit(name, self.evaluation.filter_images(name, self.threshold))

    # ------------------------------------------------------------------ evaluate now
    def eval_command(self) -> list[str]:
        return engine_eval_command(self.run_id, self.workspace, self.tracking_uri)

    def evaluate_now(self) -> None:
        """Run ``python -m engine eval RUN_ID`` in the background; the result is read when it ends."""
        if self.run_id is None or self.process is not None:
            return
        self._slot.cancel()
        self._output = []
        self.output.clear()
        process = QProcess(self)
        process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        process.readyReadStandardOutput.connect(self._read_output)
        process.finished.connect(self._evaluated)
        process.errorOccurred.connect(self._process_error)
        command = self.eval_command()
        self.process = process
        self.browse_bar.hide()
        self.title.setText(f"<b>{self.run_name}</b> · evaluating…")
        self._message(f"Evaluating {self.run_name} (lightbox eval {self.run_id})…", busy=True)
        process.start(command[0], command[1:])

    def cancel_evaluation(self) -> None:
        self.compare.cancel_evaluation()  # run B's, when one is evaluated for a comparison
        process, self.process = self.process, None
        if process is not None:
            process.finished.disconnect(self._evaluated)
            process.kill()
            process.waitForFinished(2000)  # a kill ends at once; waits only for the OS to reap it
            process.deleteLater()
            self._message("Evaluation cancelled.", offer=True)

    def _read_output(self) -> None:
        if self.process is None:
            return
        text = bytes(self.process.readAllStandardOutput()).decode("utf-8", "replace")
        lines = [line for line in text.replace("\r", "\n").splitlines() if line.strip()]
        self._output = (self._output + lines)[-OUTPUT_LINES:]
        self.output.setPlainText("\n".join(self._output))
        self.output.show()

    def _process_error(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart and self.process is not None:
            self._evaluated(-1, QProcess.ExitStatus.CrashExit)

    def _evaluated(self, exit_code: int, status) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        self._read_output_of(process)
        process.deleteLater()
        if exit_code == 0 and status == QProcess.ExitStatus.NormalExit:
            self._output = []
            self.output.clear()
            self.show_run(self.run_id, self.run_dir, self.run_name)
            return
        self.title.setText(f"<b>{self.run_name}</b> · the evaluation failed")
        last = self._output[-1] if self._output else f"exit status {exit_code}"
        self._message(f"lightbox eval failed: {last}", offer=True)

    def _read_output_of(self, process: QProcess) -> None:
        text = bytes(process.readAllStandardOutput()).decode("utf-8", "replace")
        self._output = (self._output + [line for line in text.splitlines() if line.strip()])[-OUTPUT_LINES:]
        self.output.setPlainText("\n".join(self._output))
