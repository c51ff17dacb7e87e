"""The Train tab: the run and search forms, Train / Tune / Stop, the child's log and progress,
live charts, the runs.

Train writes the run config into ``<workspace>/configs/`` and starts
``python -m engine train --config ...`` as a child process (:class:`ProcessJob`); Tune writes
it with the search form's ``search:`` section and starts ``python -m engine tune`` through the
same launcher (the job's run is the search's parent run, its trials are overlaid on the charts
and plotted on the Search scatter: :class:`SearchView`). A run, or,
when ``compute.ray_address`` is a Ray dashboard URL, submits it as a Ray job
(:class:`RayJob`): two kinds of one :class:`TrainingJob`, so the rest of the tab does
not care which.  The GUI process never trains.  Run lists, metric points and summaries
are read from MLflow in worker threads.

Augmentation: the form's config leaves it to the recipe (``auto``); the Augment tab,
once attached (``augmentation_source``), follows the form's task and image size and
shows what the recipe resolves to. Only a pipeline edited there is written into the
run config, and the line under the form says so, with a way back to ``auto``.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..widgets.banner import Banner
from ..widgets.task_slot import TaskSlot
from . import tune_launch as launch
from .charts import ChartPanel, MetricPoller
from .export_dialog import open_export_dialog
from .form_memory import FormMemory
from .job import TrainingJob
from .lr_suggest import LrSuggester
from .process_job import ProcessJob
from .progress import Progress
from .ray_job import RayJob
from .run_form import RunForm
from .runs_view import RunsTable, RunSummary
from .search_form import SearchForm
from .search_scatter import SearchScatter
from .search_view import SearchView
from .target_panel import RunsAtTarget
from .tune_config_files import ConfigFiles
from .tune_launch import TUNE

RUNS_REFRESH_MS = 3000


class TrainTab(ConfigFiles, RunsAtTarget, QWidget):
    run_started = Signal(str)  # run id, once known
    message = Signal(str)

    def __init__(self, workspace: str | Path, tracking_uri: str | None = None, parent=None):
        super().__init__(parent)
        from engine.tracking.store import resolve_tracking_uri

        self.workspace = Path(workspace).resolve()
        self._add_target_panel(resolve_tracking_uri(tracking_uri, self.workspace))  # sets self.tracking_uri
        self.jobs: list[TrainingJob] = []
        self._augmentation_source = None  # the Augment tab's panel, once attached (see the property)
        # MLflow reads and checks in the background, each kind in its own slot: the newest request wins.
        self._model_choices_slot = TaskSlot(self)
        self._runs_slot = TaskSlot(self)
        self._summary_slot = TaskSlot(self)
        self._split_slot = TaskSlot(self)
        self._stop_slots: dict[str, TaskSlot] = {}  # run id -> its stop request
        self._auto_charted: set[str] = set()
        self._session = None  # the dataset as the window opened it, when it did

        self.form = RunForm()
        self.search_form = SearchForm(self.form.model.data)
        self.train_button = QPushButton("Train")
        self.train_button.setDefault(True)
        self.tune_button = QPushButton("Tune")
        self.tune_button.setToolTip("Search the Search tab's space: one run per trial, ranked by its metric")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.save_button = QPushButton("Save…")
        self.load_button = QPushButton("Load…")
        self.train_button.clicked.connect(self.train)
        self.tune_button.clicked.connect(self.tune)
        self.stop_button.clicked.connect(self.stop)
        self.save_button.clicked.connect(self._save_dialog)
        self.load_button.clicked.connect(self._load_dialog)
        self.lr_suggester = LrSuggester(self)
        self.lr_suggester.busy.connect(self._suggest_busy)
        self.lr_suggester.progress.connect(self._suggest_progress)
        self.lr_suggester.suggested.connect(self._lr_suggested)
        self.lr_suggester.failed.connect(
            lambda m: self.show_error(f"Learning-rate finder failed: {m}", cause="suggest")
        )
        if self.form.suggest_button is not None:
            self.form.suggest_button.clicked.connect(self._suggest_clicked)
        self.banner = Banner()
        self.form.valid_changed.connect(self._valid_changed)
        self.search_form.valid_changed.connect(lambda _valid: self._valid_changed(self.form.is_valid))
        self._valid_changed(self.form.is_valid)
        # What the run augments with: the recipe, or an override (from the Augment tab or a loaded file).
        self.augmentation_line = QLabel()
        self.augmentation_line.setObjectName("augmentationLine")
        self.augmentation_line.setWordWrap(True)
        self.auto_button = QPushButton("Back to auto")
        self.auto_button.setToolTip("Drop the augmentation override: the run uses its recipe (auto)")
        self.auto_button.clicked.connect(self.use_auto_augmentation)
        left = self._left_column()

        self.progress_label = QLabel("No run going.")
        self.progress_label.setObjectName("progressLine")
        self.charts = ChartPanel()
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.log.setLineWrapMode(QPlainTextEdit.NoWrap)
        self.runs = RunsTable()
        self.summary = RunSummary()
        self.scatter = SearchScatter()
        self.bottom = QTabWidget()
        self.bottom.addTab(self.runs, "Runs")
        self.bottom.addTab(self.summary, "Summary")
        self.bottom.addTab(self.scatter, "Search")
        self.bottom.addTab(self.log, "Log")
        right_split = QSplitter(Qt.Vertical)
        right_split.addWidget(self.charts)
        right_split.addWidget(self.bottom)
        right_split.setSizes([500, 300])
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.progress_label)
        right_layout.addWidget(right_split, 1)
        split = QSplitter(Qt.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([380, 900])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)

        self.poller = MetricPoller(self.tracking_uri, parent=self)
        self.poller.points.connect(self.charts.add_points)
        self.search_view = SearchView(self.charts, self.poller, self.scatter, self.runs.ticked.__contains__, self)
        self.runs.chart_toggled.connect(self._chart_toggled)
        self.runs.stop_requested.connect(self.stop_run)
        self.runs.resume_requested.connect(self.resume)
        self.runs.export_requested.connect(lambda run_id: open_export_dialog(self, run_id))
        self.runs.selected.connect(self._selected)
        self.runs_timer = QTimer(self)
        self.runs_timer.setInterval(RUNS_REFRESH_MS)
        self.runs_timer.timeout.connect(self.refresh_runs)
        self.runs_timer.start()
        self.refresh_runs()
        self._model_choices_slot.start(
            _models_for, self.form.model.values["task.name"], on_done=self.form.set_model_choices
        )
        self._last_task = self.form.model.values["task.name"]
        self.form.changed.connect(self._form_changed)
        self._follow_target()
        self.search_form.follow_run_form()
        self._show_augmentation()

    def _left_column(self) -> QWidget:
        """The left column, top to bottom: the banner, the run and search forms, the augmentation
        line, the buttons. Every part of it is added here."""
        self.forms = QTabWidget()
        self.forms.addTab(self.form, "Run")
        self.forms.addTab(self.search_form, "Search")
        self.forms.addTab(self._target_page(), "Where to run")
        augmentation_row = QHBoxLayout()
        augmentation_row.addWidget(self.augmentation_line, 1)
        augmentation_row.addWidget(self.auto_button, 0, Qt.AlignTop)
        buttons = QGridLayout()  # two short rows: one row of five clipped in a small window
        for k, button in enumerate(
            (self.train_button, self.tune_button, self.stop_button, self.save_button, self.load_button)
        ):
            buttons.addWidget(button, k // 3, k % 3)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.banner)
        left_layout.addWidget(self.forms, 1)
        left_layout.addLayout(augmentation_row)
        left_layout.addWidget(self.target_line)
        left_layout.addLayout(buttons)
        return left

    # ------------------------------------------------------------------ form
    def set_dataset(self, folder: str | Path, session=None) -> None:
        """Train on ``folder``; ``session``: that dataset as the window opened it (its indexes are reused)."""
        self._session = session
        # The form as it was last used on this dataset (a small JSON file: cheap enough here).
        self.form.restore_values(FormMemory.in_workspace(self.workspace).recall(folder))
        self.form.set_value("data.path", str(folder))
        self._check_split()

    def _check_split(self) -> None:
        """Warn (in the background) about a train/validation split this form's run cannot learn well from."""
        config = self._form_config()
        if config is None:
            return
        from engine.data.split_check import check_run_data

        data = config.data
        session = self._session
        loaded = (session.folder, session.indexes) if session is not None else (None, None)
        self._split_slot.start(
            check_run_data,
            data,
            *loaded,
            on_done=lambda problems: self._split_checked(data, problems),
            on_error=lambda m: None,
        )  # unreadable data: Health says why

    def _split_checked(self, data, problems) -> None:
        current = self._form_config()
        if current is None or current.data != data:  # the form moved on: a newer check decides
            return
        if not problems:
            self.banner.clear("split")
            return
        lines = [f"{Path(p.file).name}: {p.message}" if p.file else p.message for p in problems[:4]]
        if len(problems) > 4:
            lines.append(f"… and {len(problems) - 4} more (Health tab)")
        kind = "error" if any(p.severity == "error" for p in problems) else "warning"
        self.banner.show_message("This split may not train well:\n" + "\n".join(lines), kind=kind, cause="split")

    def _valid_changed(self, valid: bool) -> None:
        self.train_button.setEnabled(valid)
        self.train_button.setToolTip("" if valid else "fix the fields marked in red first")
        searchable = valid and self.search_form.is_valid
        self.tune_button.setEnabled(searchable)
        self.tune_button.setToolTip(
            "Search the Search tab's space: one run per trial, ranked by its metric"
            if searchable
            else "fix the fields marked in red first (Run and Search tabs)"
        )
        if self.form.suggest_button is not None:
            self.form.suggest_button.setEnabled(valid or self.lr_suggester.running)  # running: Cancel
        if valid:
            self.banner.clear("form")

    def show_error(self, text: str, cause: str | None = None) -> None:
        """Show ``text`` in the tab's banner; with ``cause``, ``banner.clear(cause)`` takes it down when
        that cause is gone (a message without one stays until dismissed)."""
        self.banner.show_message(text, "error", cause)

    # ------------------------------------------------------------------ augmentation
    @property
    def augmentation_source(self):
        """The Augment tab's panel: it follows the form, and its edits override the recipe."""
        return self._augmentation_source

    @augmentation_source.setter
    def augmentation_source(self, panel) -> None:
        if panel is self._augmentation_source:
            return
        if self._augmentation_source is not None:
            self._augmentation_source.state_changed.disconnect(self._show_augmentation)
        self._augmentation_source = panel
        if panel is not None:
            panel.state_changed.connect(self._show_augmentation)
            config = self._form_config()
            if config is not None and _has_own_steps(config.augmentation):
                panel.load_config(config)  # steps from a loaded file are overrides there too
            panel.set_run_config(config)
        self._show_augmentation()

    def _form_config(self):
        """The form's config in this workspace (without the Augment tab's overrides); None if invalid."""
        config = self.form.config()
        return None if config is None else config.model_copy(update={"workspace": str(self.workspace)})

    def use_auto_augmentation(self) -> None:
        """Back to ``auto``: no override from the Augment tab, none kept from a loaded file."""
        self.form.model.extra.pop("augmentation", None)  # a loaded file's augmentation section
        if self._augmentation_source is not None:
            self._augmentation_source.use_recipe()
            self._augmentation_source.set_run_config(self._form_config())
        self.banner.clear("augmentation")
        self._show_augmentation()

    def _show_augmentation(self) -> None:
        """Say under the form what the run augments with, and offer the way back to auto."""
        config = self._form_config()
        panel = self._augmentation_source
        edited = panel.overridden_splits() if panel is not None else ()
        aug = config.augmentation if config is not None else None
        if edited:
            which = " and ".join(edited)
            text = (
                f"Augmentation: overridden in the Augment tab ({which} steps): the run uses them instead of the recipe."
            )
        elif aug is not None and _has_own_steps(aug):
            text = "Augmentation: steps from the loaded config, not the recipe."
        elif aug is not None and aug.strength != "auto":
            text = f"Augmentation: {aug.strength} (from the loaded config), not auto."
        else:
            resolved = panel.recipe_text if panel is not None else ""
            text = f"Augmentation: {resolved or 'auto'} (see the Augment tab)."
            self.augmentation_line.setText(text)
            self.augmentation_line.setStyleSheet("color: #6b6b6b;")
            self.auto_button.hide()
            return
        self.augmentation_line.setText(text)
        self.augmentation_line.setStyleSheet("color: #7a4b00; background: #fff4e5; padding: 4px;")
        self.auto_button.show()

    # ------------------------------------------------------------------ learning-rate suggestion
    def suggest_lr(self) -> bool:
        """Run the learning-rate finder on the form's config in the background; False if it cannot start."""
        if self.lr_suggester.running:
            return False
        config = self.run_config()
        if config is None:
            self.show_error("Learning-rate finder: fix the fields marked in red first", cause="form")
            return False
        self.banner.clear("suggest")
        return self.lr_suggester.start(config)

    def _suggest_clicked(self) -> None:
        """Suggest starts the finder; while it runs the same button cancels it."""
        if self.lr_suggester.running:
            self.lr_suggester.cancel()
        else:
            self.suggest_lr()

    def _suggest_busy(self, busy: bool) -> None:
        button = self.form.suggest_button
        if button is not None:
            button.setText("Cancel" if busy else "Suggest")
            button.setToolTip("Stop the learning-rate finder" if busy else "")
            button.setEnabled(busy or self.form.is_valid)
            self.form.suggest_status.setVisible(busy)

    def _suggest_progress(self, text: str) -> None:
        if self.form.suggest_status is not None:
            self.form.suggest_status.setText(text)

    def _lr_suggested(self, lr: float) -> None:
        self.form.set_value("optim.lr", float(f"{lr:.3g}"))
        if self.form.suggest_status is not None:  # said beside the field, not in the window's message bar
            self.form.suggest_status.setText(f"suggested {lr:.3g} (range test)")
            self.form.suggest_status.show()

    def _form_changed(self) -> None:
        task = self.form.model.values["task.name"]
        if task != self._last_task:
            self._last_task = task
            self._model_choices_slot.start(_models_for, task, on_done=self.form.set_model_choices)
        if self._augmentation_source is not None:  # it follows the form's task and image size
            self._augmentation_source.set_run_config(self._form_config())
        self.search_form.follow_run_form()  # its metric follows the task; it is checked with the run's values
        self._show_augmentation()

    def run_config(self):
        """The form's config with the workspace and the Augment tab's overrides; None (and a banner) if invalid."""
        config = self._form_config()
        if config is None:
            self.show_error("Fix the fields marked in red first.", cause="form")
            return None
        self.banner.clear("form")
        if self._augmentation_source is not None:
            try:
                config = self._augmentation_source.apply_to_config(config)
            except ValueError as exc:
                self.show_error(f"Augmentation: {exc}", cause="augmentation")
                return None
        self.banner.clear("augmentation")
        return config

    # ------------------------------------------------------------------ train / stop / resume
    def train(self) -> TrainingJob | None:
        config = self.run_config()
        return None if config is None else self._launch(config, "train")

    def tune(self) -> TrainingJob | None:
        """Start a search of the search form's space around the run form's config."""
        config = self.search_config()
        return None if config is None else self._launch(config, TUNE)

    def _launch(self, config, verb: str) -> TrainingJob | None:
        """``python -m engine VERB`` of ``config``: a Ray job for a dashboard address, else a local process."""
        from engine.orchestration.ray_cli import is_job_address

        placed = self._at_target(config)
        if placed is None:
            return None
        config, tracking_uri = placed
        on_ray = is_job_address(config.compute.ray_address)
        self.banner.clear("run")  # the last run's failure is not this one's
        if config.data.path:  # the next start on this dataset opens the form as it is now
            try:
                FormMemory.in_workspace(self.workspace).remember(config.data.path, self.form.remembered_values())
            except OSError as exc:  # a convenience: the run itself does not depend on it
                self.message.emit(f"Could not remember the form for this dataset: {exc}")
        stamp = launch.launch_stamp()
        config = launch.named_for_launch(config, verb, stamp)
        if on_ray:
            config, note = launch.for_ray_job(config, tracking_uri)
            config.save(self.workspace / "configs" / f"ray-{config.tracking.run_name}.yaml")
            job = RayJob(config, config.compute.ray_address, config.tracking.uri, verb=verb, parent=self)
            if note:
                self._append_log([f"[lightbox] {note}"])
        else:
            path = config.save(launch.config_file(self.workspace, verb, stamp))
            job = ProcessJob(self.workspace, tracking_uri, config_path=path, verb=verb, parent=self)
        job.label = config.tracking.run_name
        job.epochs = config.optim.epochs  # empty: the recipe's line says once the run has started
        return self._start(job)

    def resume(self, run_id: str) -> ProcessJob:
        return self._start(ProcessJob(self.workspace, self.tracking_uri, resume_run_id=run_id, parent=self))

    def _start(self, job: TrainingJob) -> TrainingJob:
        self.jobs.append(job)
        job.output.connect(self._append_log)
        job.progress.connect(lambda p, job=job: self._show_progress(job, p))
        job.state.connect(lambda text, job=job: self._show_state(job, text))
        job.run_found.connect(lambda run_id, job=job: self._run_found(job, run_id))
        job.finished.connect(lambda code, job=job: self._job_finished(job, code))
        job.stopping.connect(lambda what: self._append_log([f"[lightbox] {what}"]))
        self._append_log([f"[lightbox] {job.describe()}"])
        job.start()
        if job.run_id:
            self._run_found(job, job.run_id)
        self.stop_button.setEnabled(True)
        self.progress_label.setText("Starting…")
        return job

    def current_job(self) -> TrainingJob | None:
        live = [j for j in self.jobs if j.alive()]
        return live[-1] if live else None

    def stop(self) -> None:
        job = self.current_job()
        if job is not None:
            job.stop()
            self.progress_label.setText(launch.stopping_text(getattr(job, "verb", "train")))

    def stop_run(self, run_id: str) -> None:
        """Stop from the runs table: our own child by the full protocol, any other run by its tag."""
        job = next((j for j in self.jobs if j.run_id == run_id and j.alive()), None)
        if job is not None:
            job.stop()
            return
        from engine.orchestration.jobs import request_stop

        slot = self._stop_slots.setdefault(run_id, TaskSlot(self))
        slot.start(request_stop, self.tracking_uri, run_id, on_error=lambda m: self.message.emit(f"Stop failed: {m}"))

    def _run_found(self, job: TrainingJob, run_id: str) -> None:
        if getattr(job, "verb", "train") == TUNE:  # the search's own run logs no curves: its trials are charted
            self.search_view.follow(run_id)
            self.refresh_runs()
            self.run_started.emit(run_id)
            return
        label = job.label or (self.runs.row_for(run_id).name if self.runs.row_for(run_id) else run_id[:8])
        self.charts.add_run(run_id, label)
        self.runs.set_ticked(run_id, True)
        self.poller.watch(run_id, job.tracking_uri, live=True)
        self.refresh_runs()
        self.run_started.emit(run_id)

    def _append_log(self, lines: list[str]) -> None:
        self.log.appendPlainText("\n".join(lines))

    def _charted_step(self, job: TrainingJob) -> int | None:
        if job.run_id and job.run_id in self.charts.runs:
            series = self.charts.runs[job.run_id].series.get("train/loss")
            return int(series.step[-1]) if series is not None and len(series) else None
        return None

    def _show_progress(self, job: TrainingJob, progress: Progress) -> None:
        self.progress_label.setText(launch.progress_line(job, self._charted_step(job)))

    def _show_state(self, job: TrainingJob, text: str) -> None:
        """A Ray job's state, with its newest progress event when its log has one, else the newest charted step."""
        self.progress_label.setText(launch.progress_line(job, self._charted_step(job), text))

    def _job_finished(self, job: TrainingJob, code: int) -> None:
        self.stop_button.setEnabled(self.current_job() is not None)
        self.progress_label.setText(f"{job.run_id[:8] if job.run_id else 'run'}: {job.ended_text(code)}")
        if job.failure:  # the engine's own reason, not only an exit code
            self.show_error(launch.failure_text(getattr(job, "verb", "train"), job.failure), cause="run")
        self.poller.poll()
        self.refresh_runs()

    # ------------------------------------------------------------------ runs and charts
    def refresh_runs(self) -> None:
        if self._runs_slot.busy:  # the read going on answers this request too
            return
        from .runs_model import load_runs

        self._runs_slot.start(load_runs, self.tracking_uri, on_done=self._runs_loaded, on_error=self._runs_failed)

    def _runs_failed(self, message: str) -> None:
        self.runs.set_load_failed(message)  # not "Loading runs…" for ever
        self.show_error(f"Runs: {message}", cause="runs")

    def _runs_loaded(self, rows) -> None:
        self.banner.clear("runs")
        self.search_view.show_rows(rows)  # first: a live trial is then read by the live poller
        self.runs.set_rows(rows)
        for row in rows:  # runs still going (e.g. left running by an earlier session) are charted again
            # A search's trials are not ticked here: the runs tree ticks its best one (chart_toggled).
            if (
                row.status == "RUNNING"
                and not row.search_id
                and not row.is_search
                and row.run_id not in self._auto_charted
            ):
                self._auto_charted.add(row.run_id)
                self.runs.set_ticked(row.run_id, True)
                self._chart_toggled(row.run_id, row.name, True, live=True)

    def _chart_toggled(self, run_id: str, label: str, ticked: bool, live: bool = False) -> None:
        if not ticked and self.search_view.holds(run_id):
            return  # a trial of a search shown on the charts: it stays, drawn thin
        if ticked:
            self.charts.add_run(run_id, label or run_id[:8])
            self.poller.watch(run_id, live=live)
        else:
            self.poller.unwatch(run_id)
            self.charts.remove_run(run_id)

    def _selected(self, row) -> None:
        self.search_view.select(row)
        if row is None or row.status in ("RUNNING", "SCHEDULED"):
            self._summary_slot.cancel()  # a summary still being read is no longer the selected run's
            self.summary.clear()
            return
        from .runs_model import run_summary

        self._summary_slot.start(
            run_summary,
            self.tracking_uri,
            row.run_id,
            on_done=self.summary.show_summary,
            on_error=lambda m: self.summary.clear(f"No summary: {m}"),
        )

    # ------------------------------------------------------------------ closing
    def active_jobs(self) -> list[TrainingJob]:
        return [j for j in self.jobs if j.alive()]

    def ask_close_choice(self) -> str:
        """ "stop", "leave" or "cancel" (a dialog; tests replace this method)."""
        box = QMessageBox(self)
        box.setWindowTitle("Training is running")
        box.setText(
            f"{len(self.active_jobs())} training run(s) are going. Stop them, or leave them running? "
            "A run left running keeps training and is found again when Lightbox reopens."
        )
        stop = box.addButton("Stop", QMessageBox.DestructiveRole)
        leave = box.addButton("Leave running", QMessageBox.AcceptRole)
        box.addButton(QMessageBox.Cancel)
        box.exec()
        return "stop" if box.clickedButton() is stop else "leave" if box.clickedButton() is leave else "cancel"

    def confirm_close(self) -> bool:
        """Called by the main window before it closes; False keeps it open."""
        active = self.active_jobs()
        if active:
            choice = self.ask_close_choice()
            if choice == "cancel":
                return False
            for job in active:
                if choice == "stop":
                    job.stop_at_exit()
                job.detach()  # a local run's relay (or the Ray cluster) keeps it going after the app is gone
        self.runs_timer.stop()
        self.poller.close()
        self.lr_suggester.cancel()
        return True


def _has_own_steps(augmentation) -> bool:
    """True when a config's augmentation section gives steps (or turns the preset off) instead of the recipe."""
    return not augmentation.preset or augmentation.train is not None or augmentation.val is not None


def _models_for(task: str):
    from .model_choices import model_choices

    return model_choices(task)
