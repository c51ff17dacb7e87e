"""The run form's learning-rate "Suggest": ``engine.orchestration.lr_find.find_lr`` off the GUI.

The range test trains the run's model for a few steps, so it runs as its own process
(``python -m engine lr-find --config FILE``; the app never trains in its own process),
watched from a worker thread (``app.widgets.workers``): its first line says the size and
batch it runs at (the config's, resolved by the same recipe as training), its progress
events (``engine.tracking.progress_events``: step, steps, the ETA it timed) become
progress, its closing JSON line the suggestion, and a failure the message the command
printed.  One search at a time; a search can be cancelled (its
process group is killed).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, Signal

from engine.orchestration import jobs
from engine.orchestration.lr_find import SETUP_PREFIX
from engine.tracking.progress_events import EVENTS_ENV

from ..widgets.task_slot import TaskSlot
from ..widgets.workers import BACKGROUND_NICENESS
from .child_output import follow_child
from .progress import format_duration

_SETUP = re.compile(r"at (\d+) px")
NUM_STEPS = 100  # the engine's default sweep


class LrFindError(RuntimeError):
    """The learning-rate finder failed or found nothing; the message says why."""


class LrFindCancelled(LrFindError):
    """The search was cancelled; nothing is wrong."""


def finder_environment() -> dict[str, str]:
    """The finder's environment: ours, asking for progress events and no bars (Lightning's
    finder draws one of its own, which would only fill the lines kept for its message)."""
    return {**os.environ, EVENTS_ENV: "1", "TQDM_DISABLE": "1"}


def run_lr_find(
    config_path: str | Path,
    *,
    num_steps: int = NUM_STEPS,
    python: str | None = None,
    progress=None,
    cancel: threading.Event | None = None,
) -> float:
    """Run ``lightbox lr-find`` on ``config_path`` in a child process; the suggested learning rate.

    ``progress(text, done, total)`` follows the child: ``text`` says the size it runs at and the
    ETA; ``cancel`` ends the child (and raises :class:`LrFindCancelled`).
    """
    command = [
        python or sys.executable,
        "-u",
        "-m",
        "engine",
        "lr-find",
        "--config",
        str(config_path),
        "--steps",
        str(num_steps),
    ]
    command = jobs.niced_command(command, BACKGROUND_NICENESS, python=python)
    # A session of its own: cancelling kills the finder and any data-loading workers it started.
    child = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env=finder_environment(),
    )
    lines: list[str] = []
    where = ""  # "at 64 px", once the finder has said its size

    def on_event(event: dict) -> None:
        if progress is not None and isinstance(event.get("step"), int) and event.get("steps"):
            eta = event.get("eta_s")
            progress(
                where + (f" · ETA {format_duration(eta)}" if eta is not None else " · ETA …"),
                event["step"],
                int(event["steps"]),
            )

    def on_line(line: str) -> None:
        nonlocal where
        lines.append(line)
        found = _SETUP.search(line) if line.startswith(SETUP_PREFIX) else None
        if found:
            where = f"at {found.group(1)} px"
            if progress is not None:
                progress(f"{where} · preparing the data and the model", 0, num_steps)

    follow_child(
        child,
        on_event=on_event,
        on_line=on_line,
        cancel=cancel,
        cancelled=lambda: LrFindCancelled("the learning-rate finder was cancelled"),
    )
    code = child.returncode
    result = next((json.loads(line) for line in reversed(lines) if line.startswith('{"lr"')), None)
    if code == 0 and result is not None and result.get("lr"):
        return float(result["lr"])
    said = [line for line in lines if line.startswith("lightbox lr-find:")]
    problem = said[-1].removeprefix("lightbox lr-find:").strip() if said else (lines[-1] if lines else "")
    raise LrFindError(problem or f"the learning-rate finder exited with status {code}")


class LrSuggester(QObject):
    """Runs one learning-rate search at a time in the background and reports by signals."""

    busy = Signal(bool)
    progress = Signal(str)  # "step 5/100 at 256 px · ETA 2:10"
    steps = Signal(int, int)  # done, total (for a progress bar)
    suggested = Signal(float)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        # Its own thread: a search takes minutes, and must neither wait behind nor hold up the shared pool.
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._search = TaskSlot(self, pool=self.pool)
        self._cancel_asked = False
        self._folder: tempfile.TemporaryDirectory | None = None

    @property
    def running(self) -> bool:
        """True until the answer has reached the GUI thread, not just until the worker's end."""
        return self._search.busy

    def start(self, config) -> bool:
        """Search a learning rate for ``config`` (a RunConfig); False if a search is already going."""
        if self.running:
            return False
        self._cancel_asked = False
        self._folder = tempfile.TemporaryDirectory(prefix="lightbox-lr-find-")
        path = config.save(Path(self._folder.name) / "run.yaml")
        self._search.start(run_lr_find, path, on_done=self._done, on_error=self._failed, on_progress=self._progressed)
        self.busy.emit(True)
        self.progress.emit("starting the learning-rate finder…")
        return True

    def cancel(self) -> None:
        """End the search; ``cancelled`` follows once its process is gone."""
        if self.running and not self._cancel_asked:
            # The task's own cancel, not the slot's: the search's end (``cancelled``) is still wanted.
            self._cancel_asked = True
            self._search.task.cancel()
            self.progress.emit("cancelling…")

    def _progressed(self, text: str, done: int, total: int) -> None:
        if self._cancel_asked:
            return  # a late step of a search being cancelled
        self.progress.emit(f"step {done}/{total} {text}" if text else f"step {done}/{total}")
        self.steps.emit(done, total)

    def _finish(self) -> None:
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
        self.busy.emit(False)

    def _done(self, lr: float) -> None:
        self._finish()
        self.suggested.emit(lr)

    def _failed(self, message: str) -> None:
        cancelled = self._cancel_asked
        self._finish()
        if cancelled:
            self.cancelled.emit()
        else:
            self.failed.emit(message.splitlines()[0] if message else "the learning-rate finder failed")
