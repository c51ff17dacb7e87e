"""What ties the Evaluate tab to the main window's dataset views: a clicked false positive, miss or
image opens in the Image view; a confusion cell or a filter becomes Browse's list; the evaluation's
outcomes are drawn over the images (TP / FP with why / missed ground truth) at the Evaluate threshold.

The evaluation is matched to the open dataset in a worker thread (``PreparedOverlay``); with no
dataset open, the one the run was evaluated on is opened, and matched once it is open.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QTimer

from engine.data.health import plural

from ..dataset.predictions import IMAGE_LIST_LAYOUT
from ..dataset.session import ImageRef
from ..widgets.task_slot import TaskSlot
from .evaluate_overlay import PreparedOverlay
from .evaluate_view import EvaluateView

RUN_LISTS_DELAY_MS = 250  # Browse's run lists follow the Evaluate threshold once it rests this long
NOTE_MS = 8000  # how long a passing note stays in the status bar


class EvaluateLink(QObject):
    def __init__(self, window, view: EvaluateView):
        super().__init__(window)
        self.window, self.view = window, view
        self.overlay: PreparedOverlay | None = None
        self._slot = TaskSlot(self)
        self._lists_timer = QTimer(self, singleShot=True, interval=RUN_LISTS_DELAY_MS)
        self._lists_timer.timeout.connect(self._refresh_lists)
        view.evaluation_loaded.connect(lambda evaluation: self.prepare(evaluation, open_its_dataset=True))
        view.image_requested.connect(self.show_image)
        view.browse_requested.connect(self.browse)
        view.threshold_changed.connect(self._threshold_changed)

    @property
    def ready(self) -> bool:
        """Is the shown evaluation matched to the open dataset?"""
        return self.overlay is not None and self.overlay.session is self.window.session

    def dataset_opened(self) -> None:
        self.overlay = None
        if self.view.evaluation is not None:
            self.prepare(self.view.evaluation, open_its_dataset=False)

    def prepare(self, evaluation, *, open_its_dataset: bool) -> None:
        """Match the evaluation to the open dataset (a worker thread); with none open, open its own."""
        window = self.window
        self.overlay = None
        dataset = Path(str(evaluation.data.get("path") or ""))
        if window.session is None or window.session.folder.layout == IMAGE_LIST_LAYOUT:
            if open_its_dataset and dataset.is_dir():
                window.open_folder(dataset)  # dataset_opened matches the evaluation once it is open
            return
        self._slot.start(
            PreparedOverlay,
            evaluation,
            window.session,
            on_done=lambda prepared: self._prepared(prepared, open_its_dataset, dataset),
            on_error=lambda message: window.show_error(
                f"Cannot match the evaluation to the dataset: {message}", "eval"
            ),
        )

    def _prepared(self, prepared: PreparedOverlay, open_its_dataset: bool, dataset: Path) -> None:
        window, view = self.window, self.view
        if prepared.session is not window.session or prepared.evaluation is not view.evaluation:
            return  # another dataset or another evaluation since
        if not prepared.matched:
            if open_its_dataset and dataset.is_dir() and dataset.resolve() != window.session.root.resolve():
                window.open_folder(dataset)
                return
            window.show_error(
                f"None of the evaluated images is in the open dataset {window.session.root}: open the dataset "
                f"it was evaluated on ({dataset}) to see its images.",
                "eval",
            )
            return
        window.banner.clear("eval")
        self.overlay = prepared
        window.browser.set_run_filters(view.run_name, prepared.browse_lists(view.threshold), prepared.errors)
        if prepared.evaluation.task != "segmentation":  # its evaluation holds no masks to draw
            window.viewer.set_predictions(window.session, prepared.by_ref, f"evaluation of {view.run_name}")
            # A classification's one prediction per image is drawn whatever its score.
            window.viewer.set_min_score(view.threshold if prepared.evaluation.task == "detection" else 0.0)
        missing = len(prepared.refs) - prepared.matched
        if missing:
            window.statusBar().showMessage(
                f"{plural(missing, 'evaluated image')} not in the open dataset: left out of Browse", NOTE_MS
            )

    def _threshold_changed(self, threshold: float) -> None:
        if self.ready:
            self.window.viewer.set_min_score(threshold)
            self._lists_timer.start()

    def _refresh_lists(self) -> None:
        if self.ready:
            lists = self.overlay.browse_lists(self.view.threshold)
            self.window.browser.set_run_filters(self.view.run_name, lists, self.overlay.errors)

    def _ref(self, image: int) -> ImageRef | None:
        if not self.ready:
            self.window.statusBar().showMessage(
                "The evaluated images are not open yet: open the dataset the run was evaluated on.", NOTE_MS
            )
            return None
        ref = self.overlay.refs[image]
        if ref is None:
            name = self.overlay.evaluation.image_name(image)
            self.window.statusBar().showMessage(f"{name} is not in the open dataset.", NOTE_MS)
        return ref

    def show_image(self, image: int, annotation_id: int | None = None) -> None:
        """Open an evaluated image (a false positive's, a miss's) in the Image view, among Browse's list."""
        ref = self._ref(image)
        if ref is None:
            return
        self.window.show_image(ref, annotation_id)
        evaluation = self.overlay.evaluation
        if evaluation.task == "segmentation":  # what the Image view cannot draw: the image's IoU per class
            ious = evaluation.images[image].get("iou") or {}
            text = ", ".join(f"{evaluation.class_name(int(c))} {v:.2f}" for c, v in ious.items() if v is not None)
            self.window.statusBar().showMessage(
                f"{evaluation.image_name(image)}: IoU {text or 'of no class (none present)'}", NOTE_MS
            )

    def browse(self, title: str, images: list) -> None:
        """Show evaluated images (a confusion cell's, a filter's) in Browse, in their order."""
        if not self.ready:
            self._ref(0)
            return
        refs = self.overlay.refs_of(images)
        self.window.browser.show_run_list(title, refs)
        self.window.tabs.setCurrentWidget(self.window.browser)
        if refs:
            self.window.set_current(refs[0])
        self.window.statusBar().showMessage(f"{title}: {plural(len(refs), 'image')}", NOTE_MS)
