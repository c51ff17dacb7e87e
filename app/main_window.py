"""Lightbox's main window: open a dataset, browse it, look at images, read its health, preview augmentations,
train, and see where a finished run is wrong (the Evaluate tab, one click from the images).

Opening a folder runs in a background task (find splits, index, check files)
with progress and a Cancel button; the window stays responsive and a broken
dataset shows a message instead of taking the app down. The augmentation tab
is built the first time it is shown, so albumentations stays off start-up.
"""

from __future__ import annotations

import gc
from functools import partial
from pathlib import Path

from PySide6.QtCore import QSettings, QThreadPool, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.data.health import plural

from .dataset.browser import DatasetBrowser
from .dataset.health_panel import HealthPanel
from .dataset.predictions import IMAGE_LIST_LAYOUT, PreparedPredictions, prepare_predictions
from .dataset.session import DatasetSession, ImageRef, check_files, open_dataset
from .dataset.viewer import ImageViewer
from .widgets.banner import Banner
from .widgets.gc_pacing import freeze_survivors, pace_full_collections
from .widgets.task_slot import TaskSlot
from .widgets.workers import BackgroundTask

MAX_RECENT = 10
CLOSE_JOIN_S = 20.0  # the longest a quit waits for cancelled background work to stop
PRELOAD_QUIET_MS = 1500  # the augmentation import starts after this long without opening or scrolling
STATUS_NOTE_MS = 8000  # how long a passing note stays in the status bar


class MainWindow(QMainWindow):
    def __init__(self, workspace: str | Path, parent=None):
        super().__init__(parent)
        self.workspace = Path(workspace).expanduser().resolve()
        self.workspace.mkdir(parents=True, exist_ok=True)
        # Per-workspace settings (recent datasets) in a plain INI file beside the MLflow store.
        self.settings = QSettings(str(self.workspace / "settings.ini"), QSettings.IniFormat)
        self.session: DatasetSession | None = None
        self.current: ImageRef | None = None  # the one current image: Browse, Image and Augment agree
        # Opening a dataset is two tasks (index, then check the files); a new open replaces both.
        self._open_slot = TaskSlot(self)
        self._check_slot = TaskSlot(self)
        self._preload_started = False
        self._preload_timer = QTimer(self, singleShot=True, interval=PRELOAD_QUIET_MS)
        self._preload_timer.timeout.connect(self._preload_augment)
        self._demo_slot = TaskSlot(self)
        self._predictions_slot = TaskSlot(self)  # reading and matching a results file
        self._pending_config: Path | None = None  # a run config to load once the dataset is open
        pace_full_collections()  # a full collection stalls the GUI thread for 100s of ms
        self._freeze_timer = QTimer(self, interval=1000)
        self._freeze_timer.timeout.connect(self._freeze_when_idle)
        self.setWindowTitle("Lightbox")
        self.resize(1280, 840)

        self.banner = Banner("errorBanner")  # the window's errors; the close button dismisses one

        self.browser = DatasetBrowser()
        self.viewer = ImageViewer()
        self.health = HealthPanel()
        self.augment_host = QWidget()
        self.augment_host.setLayout(QVBoxLayout())
        self.augment = None  # built on first use
        self.tabs = QTabWidget()
        self.tabs.addTab(self.browser, "Browse")
        self.tabs.addTab(self.viewer, "Image")
        self.tabs.addTab(self.health, "Health")
        self.tabs.addTab(self.augment_host, "Augment")
        self.train_host = QWidget()
        self.train_host.setLayout(QVBoxLayout())
        self.train_tab = None  # built on first use (charts, MLflow reads)
        self.tabs.addTab(self.train_host, "Train")
        self.evaluate_host = QWidget()
        self.evaluate_host.setLayout(QVBoxLayout())
        self.evaluate_view = None  # built on first use (pyqtgraph)
        self.evaluate_link = None  # what ties it to Browse and Image (training.evaluate_link)
        self.tabs.addTab(self.evaluate_host, "Evaluate")
        self.tabs.currentChanged.connect(self._tab_changed)

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.banner)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        self.progress = QProgressBar()
        self.progress.setMaximumWidth(240)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.cancel_open)
        self.status_text = QLabel("Open a COCO dataset folder to begin (File ▸ Open).")
        self.status_text.setWordWrap(True)  # a long dataset path wraps instead of widening the window
        self.statusBar().addWidget(self.status_text, 1)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.cancel_button)
        # The learning-rate finder (the run form's Suggest) runs for minutes: its steps and a way to stop it.
        self.suggest_progress = QProgressBar()
        self.suggest_progress.setMaximumWidth(200)
        self.suggest_progress.setFormat("lr %v/%m")
        self.suggest_progress.hide()
        self.suggest_cancel = QPushButton("Cancel suggestion")
        self.suggest_cancel.setToolTip("Stop the learning-rate finder (Suggest); the learning rate is left as it is")
        self.suggest_cancel.hide()
        self.statusBar().addPermanentWidget(self.suggest_progress)
        self.statusBar().addPermanentWidget(self.suggest_cancel)

        self._build_menu()
        self.browser.image_activated.connect(self.show_image)
        self.browser.view.verticalScrollBar().valueChanged.connect(self._postpone_preload)
        self.browser.start_page.choose_folder.connect(self._choose_folder)
        self.browser.start_page.open_recent.connect(self.open_folder)
        self.browser.start_page.open_demo.connect(self.open_demo)
        self.browser.start_page.set_recent(self.recent_datasets())
        self.browser.selection_changed.connect(self._selection_changed)
        self.viewer.current_changed.connect(self._viewer_moved)
        self.health.problem_activated.connect(self.show_problem)

    # ---------------------------------------------------------------- menu
    def _build_menu(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        open_action = QAction("&Open dataset folder…", self)
        open_action.setShortcut(QKeySequence.Open)
        open_action.triggered.connect(self._choose_folder)
        file_menu.addAction(open_action)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self._refresh_recent_menu()
        self.recheck_action = QAction("Check &again", self)
        self.recheck_action.setShortcut(QKeySequence("F5"))
        self.recheck_action.triggered.connect(self._check_again)
        file_menu.addAction(self.recheck_action)
        file_menu.addSeparator()
        predict_action = QAction("&Predict on images…", self)
        predict_action.setToolTip("Run an export or a finished run on images and draw its predictions")
        predict_action.triggered.connect(lambda: self.open_predict_dialog())
        file_menu.addAction(predict_action)
        results_action = QAction("Show &predictions from a results file…", self)
        results_action.triggered.connect(self._choose_results_file)
        file_menu.addAction(results_action)
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)

    def _check_again(self) -> None:
        if self.session is not None and self.session.folder.layout != IMAGE_LIST_LAYOUT:  # a list is no dataset
            self.open_folder(self.session.root)

    def recent_datasets(self) -> list[str]:
        value = self.settings.value("recent", [])
        if isinstance(value, str):  # QSettings returns a bare string for one-element lists
            value = [value]
        return [v for v in (value or []) if v]

    def _remember(self, folder: Path) -> None:
        recent = [str(folder)] + [r for r in self.recent_datasets() if r != str(folder)]
        self.settings.setValue("recent", recent[:MAX_RECENT])
        self.settings.sync()
        self._refresh_recent_menu()

    def _refresh_recent_menu(self) -> None:
        self.recent_menu.clear()
        for folder in self.recent_datasets():
            action = self.recent_menu.addAction(folder)
            action.triggered.connect(lambda _=False, f=folder: self.open_folder(f))
        self.recent_menu.setEnabled(bool(self.recent_datasets()))
        if hasattr(self, "browser"):
            self.browser.start_page.set_recent(self.recent_datasets())

    def open_demo(self) -> BackgroundTask:
        """Write the sample dataset into the workspace (once, off the GUI thread) and open it."""
        from engine.data.sample import write_sample_dataset

        dataset = self.workspace / "datasets" / "shapes"
        if (dataset / "annotations").is_dir():
            return self.open_folder(dataset)
        self.status_text.setText(f"Writing the demo dataset to {dataset}…")
        return self._demo_slot.start(
            write_sample_dataset,
            dataset,
            on_done=lambda _=None: self.open_folder(dataset),
            on_error=lambda message: self.show_error(f"Could not write the demo dataset: {message}", "dataset"),
        )

    def _choose_folder(self) -> None:
        start = self.recent_datasets()[0] if self.recent_datasets() else str(self.workspace)
        folder = QFileDialog.getExistingDirectory(self, "Open a COCO dataset folder", start)
        if folder:
            self.open_folder(folder)

    # ---------------------------------------------------------------- opening
    def open_folder(self, folder: str | Path) -> BackgroundTask:
        """Start opening a dataset in the background; returns the task (tests wait on it)."""
        self.cancel_open()
        folder = Path(folder).expanduser()
        self.banner.clear("dataset")  # a new dataset: the last one's problem no longer stands
        self.status_text.setText(f"Opening {folder}…")
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_button.show()
        # Phase 1 indexes the JSON (fast) so the browser fills at once; phase 2 checks the files.
        return self._open_slot.start(
            open_dataset,
            folder,
            check_files=False,
            on_done=self._opened,
            on_error=partial(self._open_failed, folder),
            on_progress=self._progress,
        )

    def cancel_open(self) -> None:
        for slot in (self._open_slot, self._check_slot):
            if slot.task is not None and not slot.task.done.is_set():
                self.status_text.setText("Cancelled.")
            slot.cancel()
        self._end_progress()

    def is_busy(self) -> bool:
        return self._open_slot.busy or self._check_slot.busy

    def _progress(self, text: str, done: int, total: int) -> None:
        self.status_text.setText(text + (f" {done}/{total}" if total else "…"))
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
        else:
            self.progress.setRange(0, 0)

    def _end_progress(self) -> None:
        self.progress.hide()
        self.cancel_button.hide()

    def _opened(self, session: DatasetSession) -> None:
        # The index's Python objects live as long as the session: keep the garbage
        # collector from walking them again and again (pauses of 50 ms at 100k images).
        gc.collect()
        gc.freeze()
        self.session = session
        self._remember(session.root)
        self.setWindowTitle(f"Lightbox — {session.root.name}")
        self.browser.set_session(session)
        self.health.set_problems(session.problems, session.checked_files)
        self.health.set_session(session)  # the train/validation split's own checks, in the background
        self._show_summary()
        self._check_slot.start(
            check_files, session, on_done=self._checked, on_error=self._check_failed, on_progress=self._progress
        )
        self.current = None
        self.viewer.clear_predictions()  # they were drawn over the dataset open before
        refs = self.browser.current_refs()
        self.set_current(refs[0] if refs else None)
        if self.train_tab is not None:
            self.train_tab.set_dataset(session.root, session)
        if self.evaluate_link is not None:
            self.evaluate_link.dataset_opened()
        self._apply_pending_config()

    def _show_summary(self) -> None:
        session = self.session
        errors = sum(p.severity == "error" for p in session.problems)
        checked = "" if session.checked_files else "; checking image files…"
        self.status_text.setText(
            f"{session.root} ({session.folder.layout} layout): {plural(session.num_images, 'image')}, "
            f"{plural(session.num_annotations, 'annotation')}, "
            f"{plural(len(session.category_names()), 'category', 'categories')}, "
            f"{plural(len(session.problems), 'problem')} ({plural(errors, 'error')}){checked}"
        )

    def _checked(self, problems: list) -> None:
        if self.session is None:
            return
        self._end_progress()
        self.session.problems = self.session.problems + problems
        self.session.checked_files = True
        self.health.set_problems(self.session.problems, True)
        self.browser.refresh_problems()
        self._show_summary()

    def _check_failed(self, message: str) -> None:
        self._end_progress()
        self.show_error(f"Checking the image files failed: {message}", "dataset")

    def _open_failed(self, folder: Path, message: str) -> None:
        self._end_progress()
        self._apply_pending_config()  # the form opens anyway, with the config's other settings
        self.show_error(f"Could not open {folder}:\n{message}", "dataset")
        self.status_text.setText(
            "The dataset could not be opened; the previous one stays open."
            if self.session
            else "Open a COCO dataset folder to begin (File ▸ Open)."
        )

    def show_error(self, message: str, cause: str | None = None) -> None:
        """Show ``message`` in the window's banner; ``cause`` lets the code that raised it take it down."""
        self.banner.show_message(message, "error", cause)

    # ---------------------------------------------------------------- run configuration
    def load_run_config(self, path: str | Path) -> None:
        """Fill the Train tab's forms from ``path`` (a run or search config) and show that tab.

        Loaded once the dataset being opened is open (opening it sets the form's dataset); a
        config that cannot be loaded is shown in the Train tab's banner, naming the file and key.
        """
        self._pending_config = Path(path).expanduser()
        if not self._open_slot.busy:
            self._apply_pending_config()

    def _apply_pending_config(self) -> None:
        path, self._pending_config = self._pending_config, None
        if path is None:
            return
        self._ensure_train_tab()
        self.tabs.setCurrentWidget(self.train_host)
        try:
            self.train_tab.load_config(path)
        except (ValueError, OSError) as exc:  # ConfigError is a ValueError
            text = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
            self.train_tab.show_error(f"Could not load the run configuration:\n{text}", cause="file")
            return
        if self.session is not None and self.session.folder.layout != IMAGE_LIST_LAYOUT:
            # The dataset named on the command line is the one to train on, whatever the file says.
            self.train_tab.form.set_value("data.path", str(self.session.root))

    # ---------------------------------------------------------------- predictions
    def open_predict_dialog(self, run_id: str | None = None, export_dir: str | Path | None = None):
        from .training.predict_dialog import open_predict_dialog

        return open_predict_dialog(self, self.workspace, None, run_id=run_id, export_dir=export_dir)

    def _choose_results_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Show predictions from a results file", str(self.workspace / "predictions"), "JSON (*.json)"
        )
        if path:
            self.show_predictions_file(path)

    def show_prediction_result(self, result) -> BackgroundTask:
        """Draw what the predict dialog wrote (a ``PredictResult``) over its images."""
        return self.show_predictions_file(
            result.results,
            categories=result.categories,
            image_root=result.image_root,
            images=result.images,
            unreadable=result.unreadable,
        )

    def show_predictions_file(self, path: str | Path, **known) -> BackgroundTask:
        """Read a results file of `lightbox predict` in the background, then draw it in the Image view:
        over the open dataset's images when they are its, else over the images as a plain list."""
        self.status_text.setText(f"Reading the predictions in {path}…")
        return self._predictions_slot.start(
            prepare_predictions,
            Path(path),
            self.session,
            **known,
            on_done=self._predictions_prepared,
            on_error=lambda message: self.show_error(f"Cannot show the predictions: {message}", "predictions"),
        )

    def _predictions_prepared(self, prepared: PreparedPredictions) -> None:
        if prepared.on_dataset and prepared.session is not self.session:
            self.show_error(
                "Another dataset was opened while the predictions were read: show them again with "
                f"File ▸ Show predictions from a results file ({prepared.predictions.path})",
                "predictions",
            )
            return
        self.banner.clear("predictions")
        if not prepared.on_dataset:
            self._show_image_list(prepared.session)
        if prepared.note:
            self.banner.show_message(prepared.note, "warning", "predictions")
        session, first = prepared.session, prepared.refs[0]
        self.viewer.set_predictions(session, prepared.by_ref, str(prepared.predictions.path))
        self.current = first
        if self.browser.current_ref() != first:
            self.browser.select_ref(first)
        self.viewer.set_refs(prepared.refs, first)
        self.viewer.show_image(session, first)
        self.tabs.setCurrentWidget(self.viewer)
        self.status_text.setText(
            f"{plural(prepared.predictions.count, 'prediction')} on {plural(len(prepared.refs), 'image')} "
            f"from {prepared.predictions.path}"
        )

    def _show_image_list(self, session: DatasetSession) -> None:
        """Browse the predicted images as a plain list: not a dataset (no ground truth, not remembered)."""
        self.cancel_open()
        self.session = session
        self.setWindowTitle(f"Lightbox — {plural(session.num_images, 'predicted image')} ({session.root})")
        self.browser.set_session(session)
        self.health.set_session(None)
        self.health.set_problems([], True)

    # ---------------------------------------------------------------- navigation
    def show_image(self, ref: ImageRef, annotation_id: int | None = None) -> None:
        if self.session is None:
            return
        self.current = ref
        if self.browser.current_ref() != ref:
            self.browser.select_ref(ref)
        refs = self.browser.current_refs()
        self.viewer.set_refs(refs if ref in refs else [ref], ref)
        self.viewer.show_image(self.session, ref)
        if annotation_id is not None:
            self.viewer.highlight_annotation(annotation_id)
        self.tabs.setCurrentWidget(self.viewer)

    def show_problem(self, problem) -> None:
        """Open the image a problem names, with the offending annotation highlighted."""
        if self.session is None:
            return
        split = self.session.split_of_file(problem.file)
        ref = self.session.find_image(split, problem.image_id) if split and problem.image_id is not None else None
        if ref is None:
            # A passing note: the summary in the status bar comes back after it.
            self.statusBar().showMessage(
                f"This problem names no image that is in the index: {problem.message}", STATUS_NOTE_MS
            )
            return
        self.statusBar().clearMessage()
        self.show_image(ref, problem.annotation_id)

    def set_current(self, ref: ImageRef | None) -> None:
        """Make ``ref`` the window's current image; each view follows it (the hidden ones when shown)."""
        if ref == self.current:
            return
        self.current = ref
        if ref is not None and self.browser.current_ref() != ref:
            self.browser.select_ref(ref)
        self._sync_current()

    def _sync_current(self) -> None:
        ref, page = self.current, self.tabs.currentWidget()
        if self.session is None or ref is None:
            return
        if page is self.viewer and self.viewer.ref != ref:
            refs = self.browser.current_refs()
            self.viewer.set_refs(refs if ref in refs else [ref], ref)
            self.viewer.show_image(self.session, ref)
        if page is self.augment_host and self.augment is not None and self.augment.source() != (self.session, ref):
            self.augment.set_source(self.session, ref)

    def _selection_changed(self, ref: ImageRef) -> None:
        self.set_current(ref)

    def _viewer_moved(self, ref: ImageRef) -> None:
        self.set_current(ref)

    def _tab_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self.augment_host and self.augment is None:
            from .dataset.augment_panel import AugmentationPanel

            self.augment = AugmentationPanel()
            self.augment_host.layout().addWidget(self.augment)
            # The panel follows the run form (task, size, recipe) from its first moment: the
            # form lives in the Train tab, so that tab is built now too (not shown).
            self._ensure_train_tab()
        if self.tabs.widget(index) is self.train_host:
            self._ensure_train_tab()
        if self.tabs.widget(index) is self.evaluate_host:
            self._ensure_evaluate_view()
        self._sync_current()

    def _ensure_train_tab(self) -> None:
        if self.train_tab is None:
            from .training.train_tab import TrainTab

            self.train_tab = TrainTab(self.workspace)
            self.train_tab.augmentation_source = self.augment
            self.train_tab.message.connect(self.show_error)
            self.train_tab.runs.evaluate_requested.connect(self.evaluate_run)
            self.train_tab.runs.predict_requested.connect(self._predict_with_run)
            suggester = self.train_tab.lr_suggester
            suggester.busy.connect(self._suggest_busy)
            suggester.steps.connect(self._suggest_steps)
            suggester.progress.connect(self.suggest_progress.setToolTip)
            self.suggest_cancel.clicked.connect(suggester.cancel)
            if self.session is not None:
                self.train_tab.set_dataset(self.session.root, self.session)
            self.train_host.layout().addWidget(self.train_tab)
            self._freeze_timer.start()  # once the tab's background imports (MLflow) are done
        elif self.train_tab.augmentation_source is not self.augment:
            self.train_tab.augmentation_source = self.augment

    # ---------------------------------------------------------------- evaluation of a run
    def _ensure_evaluate_view(self):
        if self.evaluate_view is None:
            from .training.evaluate_link import EvaluateLink
            from .training.evaluate_view import EvaluateView

            tracking_uri = self.train_tab.tracking_uri if self.train_tab is not None else None
            self.evaluate_view = EvaluateView(self.workspace, tracking_uri)
            self.evaluate_link = EvaluateLink(self, self.evaluate_view)
            self.evaluate_host.layout().addWidget(self.evaluate_view)
        return self.evaluate_view

    def evaluate_run(self, run_id: str) -> None:
        """Show ``run_id``'s evaluation in the Evaluate tab (the Runs table's Evaluate)."""
        view = self._ensure_evaluate_view()
        row = self.train_tab.runs.row_for(run_id) if self.train_tab is not None else None
        view.show_run(run_id, row.run_dir if row else None, row.name if row else "")
        self.tabs.setCurrentWidget(self.evaluate_host)

    def _predict_with_run(self, run_id: str) -> None:
        from .training.predict_dialog import open_predict_dialog

        open_predict_dialog(self.train_tab, self.workspace, self.train_tab.tracking_uri, run_id=run_id)

    def _suggest_busy(self, busy: bool) -> None:
        self.suggest_progress.setRange(0, 0)  # busy until the first step is counted
        self.suggest_progress.setVisible(busy)
        self.suggest_cancel.setVisible(busy)

    def _suggest_steps(self, done: int, total: int) -> None:
        self.suggest_progress.setRange(0, max(1, total))
        self.suggest_progress.setValue(done)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._preload_started:
            self._preload_started = True
            self._preload_timer.start()

    def _postpone_preload(self, *_) -> None:
        if self._preload_timer.isActive():
            self._preload_timer.start()  # the grid is scrolling: wait for a quiet moment

    def _preload_augment(self) -> None:
        """Import the augmentation library in the background, so Augment opens without a wait.

        It holds the interpreter lock in long stretches (event-loop stalls of 100s of ms), so it
        waits for a quiet moment: no dataset being opened or checked, the grid not scrolled for a
        while, and the Train tab not shown (a run being started and charted there stalled with it:
        bench/train_click.py).
        """
        if not self.isVisible():
            self._preload_started = False  # closed or hidden: the next showEvent starts it again
            return
        if self.is_busy() or self.tabs.currentWidget() is self.train_host:
            self._preload_timer.start()
            return
        from .dataset.augment_panel import start_warm_up  # light: albumentations loads in the task

        task, tab = start_warm_up(), self.tabs.indexOf(self.augment_host)
        self.tabs.setTabText(tab, "Augment (loading…)")
        self.tabs.setTabToolTip(tab, "The augmentation library is being imported in the background")
        task.signals.finished.connect(self._preload_done)  # a bound slot: dropped if the window goes
        task.signals.failed.connect(self._preload_done)
        if task.done.is_set():
            self._preload_done()

    def _freeze_when_idle(self) -> None:
        """Freeze what the background imports loaded once none is running (full collections stay short)."""
        if QThreadPool.globalInstance().activeThreadCount() == 0:
            self._freeze_timer.stop()
            freeze_survivors()

    def _preload_done(self, *_) -> None:
        freeze_survivors()  # albumentations and torch stay loaded
        tab = self.tabs.indexOf(self.augment_host)
        self.tabs.setTabText(tab, "Augment")
        self.tabs.setTabToolTip(tab, "")

    def closeEvent(self, event) -> None:
        if self.train_tab is not None and not self.train_tab.confirm_close():
            event.ignore()  # the user chose Cancel: a run is going
            return
        self.cancel_open()
        from .training.predict_dialog import DIALOG_NAME

        for dialog in self.findChildren(QDialog, DIALOG_NAME):
            dialog.close()  # stops its predictor: no child process outlives the window
        self._preload_timer.stop()  # a closed window has nothing to preload for
        if self.evaluate_view is not None:
            self.evaluate_view.cancel_evaluation()  # no `engine eval` child outlives the window
        for slot in (self._open_slot, self._check_slot):  # join: no worker may outlive the window it reports to
            if not slot.join(CLOSE_JOIN_S):
                self.status_text.setText("Background work is still stopping…")
        super().closeEvent(event)
