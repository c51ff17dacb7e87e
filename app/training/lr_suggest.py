"""The run form's learning-rate "Suggest": ``engine.orchestration.lr_find.find_lr`` off the GUI.

The range test trains the run's model for a few steps, so it runs as its own process
(``python -m engine lr-find --config FILE``; the app never trains in its own process),
watched from a worker thread (``app.widgets.workers``): its progress bar becomes
progress signals, its closing JSON line the suggestion, and a failure the message the
command printed.  One search at a time.
"""

from __future__ import annotations

import json
import re
import selectors
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, Signal

from engine.orchestration import jobs

from ..widgets.workers import BACKGROUND_NICENESS, run_in_background

_STEPS = re.compile(r"(\d+)/(\d+) \[")
NUM_STEPS = 100  # the engine's default sweep


class LrFindError(RuntimeError):
    """The learning-rate finder failed or found nothing; the message says why."""


def run_lr_find(config_path: str | Path, *, num_steps: int = NUM_STEPS, python: str | None = None,
                progress=None, cancel: threading.Event | None = None) -> float:
    """Run ``lightbox lr-find`` on ``config_path`` in a child process; the suggested learning rate.

    ``progress(text, done, total)`` follows the child's progress bar; ``cancel`` ends the child.
    """
    command = [python or sys.executable, "-u", "-m", "engine", "lr-find", "--config", str(config_path),
               "--steps", str(num_steps)]
    command = jobs.niced_command(command, BACKGROUND_NICENESS, python=python)
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines, partial = [], ""
    with selectors.DefaultSelector() as sel:
        sel.register(child.stdout, selectors.EVENT_READ)
        while True:
            if cancel is not None and cancel.is_set():
                child.kill()
                child.wait()
                raise LrFindError("the learning-rate finder was cancelled")
            if not sel.select(timeout=0.2):
                continue
            chunk = child.stdout.read1(65536).decode("utf-8", errors="replace")
            if not chunk:
                break
            *done, partial = (partial + chunk).replace("\r", "\n").split("\n")
            for line in done:
                found = _STEPS.search(line)
                if found and progress is not None:
                    progress("finding a learning rate", int(found.group(1)), int(found.group(2)))
                elif line.strip() and not found:
                    lines.append(line.strip())
    lines += [partial.strip()] if partial.strip() else []
    code = child.wait()
    result = next((json.loads(line) for line in reversed(lines) if line.startswith('{"lr"')), None)
    if code == 0 and result is not None and result.get("lr"):
        return float(result["lr"])
    said = [line for line in lines if line.startswith("lightbox lr-find:")]
    problem = said[-1].removeprefix("lightbox lr-find:").strip() if said else (lines[-1] if lines else "")
    raise LrFindError(problem or f"the learning-rate finder exited with status {code}")


class LrSuggester(QObject):
    """Runs one learning-rate search at a time in the background and reports by signals."""

    busy = Signal(bool)
    progress = Signal(str)
    suggested = Signal(float)
    failed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.task = None
        # Its own thread: a search takes minutes, and must neither wait behind nor hold up the shared pool.
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.running = False  # until the answer has reached the GUI thread, not just the worker's end
        self._folder: tempfile.TemporaryDirectory | None = None

    def start(self, config) -> bool:
        """Search a learning rate for ``config`` (a RunConfig); False if a search is already going."""
        if self.running:
            return False
        self.running = True
        self._folder = tempfile.TemporaryDirectory(prefix="lightbox-lr-find-")
        path = config.save(Path(self._folder.name) / "run.yaml")
        self.busy.emit(True)
        self.progress.emit("starting the learning-rate finder…")
        self.task = run_in_background(run_lr_find, path, pool=self.pool, on_done=self._done, on_error=self._failed,
                                      on_progress=lambda text, done, total: self.progress.emit(
                                          f"step {done}/{total}"))
        return True

    def cancel(self) -> None:
        if self.running:
            self.task.cancel()

    def _finish(self) -> None:
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
        self.running = False
        self.busy.emit(False)

    def _done(self, lr: float) -> None:
        self._finish()
        self.suggested.emit(lr)

    def _failed(self, message: str) -> None:
        self._finish()
        self.failed.emit(message.splitlines()[0] if message else "the learning-rate finder failed")
