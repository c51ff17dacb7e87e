"""One training job as the Train tab sees it, of either kind: a local process or a Ray job.

Both kinds give the same signals (log lines, progress, the MLflow run once found, the
end) and the same control (start, stop, detach at exit), so the tab has one code path.
What they share lives here: splitting output into log lines and progress, finding the
run in a worker thread, and driving ``engine.orchestration.jobs.StopSequence`` from a
timer (the stop tag first, then the kind's terminate, then its kill).
"""

from __future__ import annotations

import re
import time

from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal

from engine.orchestration import jobs

from ..widgets.task_slot import TaskSlot
from .engine_error import engine_error
from .progress import OutputSplitter, Progress

#: The engine's exit status for a run that ended KILLED on a stop request (engine.cli).
STOPPED_EXIT_CODE = 3


#: What the training prints when the recipe chose the epochs (engine.recipes: "recipe: 100 epochs of 3 ...").
RECIPE_EPOCHS = re.compile(r"^recipe: (\d+) epochs\b")


class TrainingJob(QObject):
    output = Signal(list)  # complete lines
    progress = Signal(object)  # progress.Progress
    state = Signal(str)  # a short text for the progress line when there is no progress bar (Ray)
    run_found = Signal(str)
    finished = Signal(int)  # exit code
    stopping = Signal(str)  # what the stop protocol just did

    kind = "job"
    #: what the job runs: "train" (one run) or "tune" (a search, whose run is the search's parent run)
    verb = "train"

    def __init__(
        self,
        tracking_uri: str,
        run_id: str | None = None,
        grace_s: float = jobs.STOP_GRACE_S,
        kill_grace_s: float = jobs.KILL_GRACE_S,
        parent=None,
    ):
        super().__init__(parent)
        self.tracking_uri = tracking_uri  # where the run logs, and where it is charted from
        self.run_id: str | None = run_id
        self.label: str | None = None
        #: The run's epochs: from its config, or from the recipe's line once it has chosen them.
        self.epochs: int | None = None
        self.grace_s, self.kill_grace_s = grace_s, kill_grace_s
        self.log_lines: list[str] = []
        self.exit_code: int | None = None
        #: Why the job failed, in the engine's words (set before ``finished``; None unless it failed).
        self.failure: str | None = None
        self._said: str | None = None
        self._splitter = OutputSplitter()
        self._last_progress = None
        self._stop: jobs.StopSequence | None = None
        # The job's own threads: a Ray submission can take a minute, and the shared pool is for the charts.
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)
        self._lookup_slot = TaskSlot(self, pool=self.pool)  # finding the MLflow run: one lookup at a time
        self._slots: dict = {}  # function -> its slot, for the kinds' calls (submit, poll, stop)
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._tick)

    # ------------------------------------------------------------------ what each kind provides
    def start(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must say how it starts")

    def alive(self) -> bool:
        raise NotImplementedError(f"{type(self).__name__} must say whether it runs")

    def describe(self) -> str:
        """The line the log panel shows when the job starts."""
        raise NotImplementedError(f"{type(self).__name__} must describe itself")

    def detach(self) -> None:
        """Leave the job going when the app closes (it is found again in MLflow)."""
        self._timer.stop()

    def stop_at_exit(self) -> None:
        """The app is closing and the user chose Stop: one quick, blocking request."""
        raise NotImplementedError(f"{type(self).__name__} must say how it stops at exit")

    def ended_text(self, code: int) -> str:
        """The progress line once the job has ended (with the failure's first line)."""
        return f"process ended (exit code {code})" + self._failure_suffix()

    def _failure_suffix(self) -> str:
        return f": {self.failure.splitlines()[0]}" if self.failure else ""

    def _terminate(self) -> None:
        raise NotImplementedError

    def _kill(self) -> None:
        raise NotImplementedError

    def _run_lookup(self):
        """``(function, args)`` that finds the job's MLflow run id (or None) in a worker thread."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared
    def stop(self) -> None:
        """Ask the run to stop (tag), then the kind's terminate after the grace period, then its kill."""
        if self._stop is None and self.alive():
            self._stop = jobs.StopSequence(grace_s=self.grace_s, kill_grace_s=self.kill_grace_s)
            self._tick()

    @property
    def stop_requested(self) -> bool:
        return self._stop is not None

    def _background(self, fn, *args, **kwargs):
        """``fn`` on the job's threads, in the job's slot for ``fn``: a newer call of it replaces an older one."""
        slot = self._slots.get(fn)
        if slot is None:
            slot = self._slots[fn] = TaskSlot(self, pool=self.pool)
        return slot.start(fn, *args, **kwargs)

    @property
    def last_progress(self) -> Progress | None:
        """The newest progress event the job's output held (None before the first)."""
        return self._last_progress

    def _feed(self, text: str) -> None:
        """New output of the job: complete lines to the log, the newest progress event to the line."""
        lines = self._splitter.feed(text)
        if lines:
            for line in lines:
                chosen = RECIPE_EPOCHS.match(line)
                if chosen:
                    self.epochs = int(chosen.group(1))
            self.log_lines.extend(lines)
            self.output.emit(lines)
        if self._splitter.progress is not None and self._splitter.progress is not self._last_progress:
            self._last_progress = self._splitter.progress  # each event shown once
            if self._last_progress.epochs:
                self.epochs = self._last_progress.epochs  # the training's own count (recipe and step limit applied)
            self.progress.emit(self._last_progress)

    def _conclude(self, code: int, failed: bool | None = None) -> None:
        """The job has ended with ``code``: note why it failed, if it did, then say so.

        ``failed`` defaults to a status other than 0 and 3 (the run ended KILLED on a stop
        request); after a stop we sent, the process may end any way: not a failure.
        """
        self.exit_code = int(code)
        if failed is None:
            failed = self.exit_code not in (0, STOPPED_EXIT_CODE)
        if failed and not self.stop_requested:
            # The engine's words; else what the app itself last said about the job (e.g. not submitted).
            self.failure = engine_error(self.log_lines) or self._said
        else:
            self.failure = None
        if self.run_id is None:
            self._find_run()
        self.finished.emit(self.exit_code)

    def _say(self, text: str) -> None:
        self._said = text
        self.log_lines.append(f"[lightbox] {text}")
        self.output.emit([f"[lightbox] {text}"])

    def _tick(self) -> None:
        if self.run_id is None:
            self._find_run()
        if self._stop is None or not self.alive():
            return
        for action in self._stop.step(time.monotonic(), run_known=self.run_id is not None):
            if action == "request":
                self._background(
                    jobs.request_stop,
                    self.tracking_uri,
                    self.run_id,
                    on_error=lambda m: self.stopping.emit(f"stop tag failed: {m}"),
                )
                self.stopping.emit("stop requested")
            elif action == "terminate":
                self._terminate()
            else:
                self._kill()

    def _set_run(self, run_id: str | None) -> None:
        if run_id and self.run_id is None:
            self.run_id = run_id
            self.run_found.emit(run_id)

    def _find_run(self) -> None:
        if self._lookup_slot.busy:
            return
        lookup = self._run_lookup()
        if lookup is None:
            return
        fn, args = lookup
        self._lookup_slot.start(fn, *args, on_done=self._set_run, on_error=lambda _message: None)
