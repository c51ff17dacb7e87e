"""Background work for the GUI: run a function on a thread pool, report back by signals.

The function gets ``progress(text, done, total)`` and ``cancel`` (a
threading.Event) keyword arguments when it accepts them. Signals emitted from
the worker thread reach slots on the GUI thread queued, so slots may touch
widgets. The GUI thread never waits on a task.
"""

from __future__ import annotations

import inspect
import os
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

# The niceness of every process the app starts to work beside it (training runs, the lr
# finder, metric readers): they take every core the app leaves idle, but the GUI thread
# never waits for a core behind them (bench/live_chart.py).
BACKGROUND_NICENESS = 10
PARENT_CHECK_S = 1.0


def start_helper(niceness: int, parent: int) -> None:
    """Initializer of the app's helper processes (a ProcessPoolExecutor's): work at ``niceness``,
    and end once the app (``parent``) is gone. An app killed, or one that leaves by ``os._exit``,
    never tells its pool to stop, and the pool's worker holds its own end of the task queue open,
    so it would wait for work for ever."""
    os.nice(niceness)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class TaskSignals(QObject):
    progress = Signal(str, int, int)
    finished = Signal(object)
    failed = Signal(str)


class BackgroundTask(QRunnable):
    """``fn`` on a pool thread. With ``progress_interval`` (seconds) progress reports closer
    together than that are dropped, except the latest, which is sent before the result, so
    a chatty function does not flood the GUI thread with events it would repaint for."""

    def __init__(self, fn: Callable[..., Any], *args: Any, progress_interval: float = 0.0, **kwargs: Any):
        super().__init__()
        self.setAutoDelete(False)  # the owner keeps it until a signal says it is done
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.signals = TaskSignals()
        self.cancel_event = threading.Event()
        self.done = threading.Event()
        self.progress_interval = progress_interval
        self._last_progress_at = float("-inf")
        self._held_progress: tuple[str, int, int] | None = None
        accepted = inspect.signature(fn).parameters
        if "progress" in accepted:
            self.kwargs["progress"] = self._progress
        if "cancel" in accepted:
            self.kwargs["cancel"] = self.cancel_event

    def _progress(self, text: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last_progress_at < self.progress_interval:
            self._held_progress = (text, done, total)
            return
        self._last_progress_at, self._held_progress = now, None
        self._emit(self.signals.progress, text, done, total)

    def _send_held_progress(self) -> None:
        if self._held_progress is not None:
            held, self._held_progress = self._held_progress, None
            self._emit(self.signals.progress, *held)

    def _emit(self, signal, *args: Any) -> None:
        # The window (and with it these signals) may be gone at quit: nobody is left to tell.
        try:
            signal.emit(*args)
        except RuntimeError:
            self.cancel_event.set()

    def cancel(self) -> None:
        self.cancel_event.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until ``run`` has returned; False if it is still running after ``timeout`` s."""
        return self.done.wait(timeout)

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def run(self) -> None:
        try:
            result = self.fn(*self.args, **self.kwargs)
            self._send_held_progress()
        except Exception as exc:  # reported to the GUI, never raised into Qt's thread
            message = str(exc) or type(exc).__name__
            self._emit(self.signals.failed, message + ("" if str(exc) else "\n" + traceback.format_exc()))
        else:
            self._emit(self.signals.finished, result)
        finally:
            self.done.set()


def run_in_background(
    fn: Callable[..., Any],
    *args: Any,
    on_done: Callable[[Any], None] | None = None,
    on_error: Callable[[str], None] | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    pool: QThreadPool | None = None,
    **kwargs: Any,
) -> BackgroundTask:
    """Start ``fn(*args, **kwargs)`` on ``pool`` (the global pool by default)."""
    task = BackgroundTask(fn, *args, **kwargs)
    if on_done is not None:
        task.signals.finished.connect(on_done)
    if on_error is not None:
        task.signals.failed.connect(on_error)
    if on_progress is not None:
        task.signals.progress.connect(on_progress)
    (pool or QThreadPool.globalInstance()).start(task)
    return task
