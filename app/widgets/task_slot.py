"""One place for "the newest request wins": a slot that holds at most one live background task.

Starting a task in a slot cancels the one before it (its ``cancel`` Event is set) and cuts it
off: whatever it still reports (progress, result, error) never reaches the slot's callbacks.
The pool runs a slot's task through a launcher that lets go of it when it has run (a QRunnable
handed to the pool itself is kept by PySide for ever); the slot keeps its own reference until
then, whatever became of the slot's widget, so the last reference, and with it the task's
signals object, always goes on the GUI thread. Callers hold no references, compare no
identities and count no generations. Progress is throttled in the
worker (``PROGRESS_INTERVAL_S``), the latest report always arriving before the result.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Slot

from .workers import BackgroundTask

# At most one progress report per this many seconds reaches the GUI thread from one task.
PROGRESS_INTERVAL_S = 0.05


class _Launch:
    """What the pool runs: the task, then ``let_go`` once this thread holds no reference to it."""

    def __init__(self, task: BackgroundTask):
        self._task: BackgroundTask | None = task
        self.let_go = threading.Event()

    def __call__(self) -> None:
        task, self._task = self._task, None
        try:
            task.run()
        finally:
            del task
            self.let_go.set()


# Every slot's tasks that a pool thread may still hold, so none is freed there; emptied (on the
# GUI thread) of those let go of as tasks start and end.
_UNFINISHED: list[tuple[BackgroundTask, _Launch]] = []


def _keep_until_let_go(task: BackgroundTask | None = None, launch: _Launch | None = None) -> None:
    _UNFINISHED[:] = [held for held in _UNFINISHED if not held[1].let_go.is_set()]
    if task is not None and launch is not None:
        _UNFINISHED.append((task, launch))


class TaskSlot(QObject):
    """Runs one background task at a time; the newest start wins.

    Give it the widget it reports to as ``parent``: once that is gone, so is the slot, and Qt
    drops whatever its tasks still report instead of calling into a deleted widget."""

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        pool: QThreadPool | None = None,
        progress_interval: float = PROGRESS_INTERVAL_S,
    ):
        super().__init__(parent)
        self._pool = pool
        self._progress_interval = progress_interval
        self._started = 0  # numbers the tasks, so a report names its task without holding it
        self._current = 0  # the number of the task whose reports are wanted, 0 for none
        self._callbacks: tuple[Callable | None, Callable | None, Callable | None] = (None, None, None)
        self._running: dict[int, BackgroundTask] = {}  # started here, end not yet seen, current or not
        self._numbers: dict[QObject, int] = {}  # a running task's signals object -> its number

    @property
    def task(self) -> BackgroundTask | None:
        """The task whose reports are wanted, None when idle or after ``cancel``."""
        return self._running.get(self._current)

    @property
    def busy(self) -> bool:
        return self.task is not None

    @property
    def running(self) -> tuple[BackgroundTask, ...]:
        """Every task started here whose end has not been seen yet, cancelled ones included."""
        return tuple(self._running.values())

    def start(
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        on_progress: Callable[[str, int, int], None] | None = None,
        **kwargs: Any,
    ) -> BackgroundTask:
        """Cancel the current task, then start ``fn(*args, **kwargs)`` and report it to the callbacks."""
        self.cancel()
        task = BackgroundTask(fn, *args, progress_interval=self._progress_interval, **kwargs)
        self._started += 1
        number = self._current = self._started
        self._callbacks = (on_done, on_error, on_progress)
        self._running[number] = task
        self._numbers[task.signals] = number
        launch = _Launch(task)
        _keep_until_let_go(task, launch)
        # Bound methods of this QObject: Qt disconnects them when the slot goes, and they hold no
        # reference to the task (one through its own signals would hide it from the collector).
        task.signals.progress.connect(self._progressed)
        task.signals.finished.connect(self._finished)
        task.signals.failed.connect(self._failed)
        (self._pool or QThreadPool.globalInstance()).start(launch)
        return task

    def cancel(self) -> None:
        """Ask the current task to stop and drop whatever it reports from now on."""
        task = self.task
        if task is not None:
            task.cancel()
        self._current = 0
        self._callbacks = (None, None, None)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every task started here has returned; False if one still runs after ``timeout`` s.

        For quitting: the window's signals must outlive the threads that emit them."""
        return all(task.join(timeout) for task in self.running)

    @Slot(str, int, int)
    def _progressed(self, text: str, done: int, total: int) -> None:
        on_progress = self._callbacks[2]
        if self._numbers.get(self.sender()) == self._current and on_progress is not None:
            on_progress(text, done, total)

    @Slot(object)
    def _finished(self, result: Any) -> None:
        self._ended(0, result)

    @Slot(str)
    def _failed(self, message: str) -> None:
        self._ended(1, message)

    def _ended(self, outcome: int, value: Any) -> None:
        number = self._numbers.pop(self.sender(), None)
        self._running.pop(number, None)
        _keep_until_let_go()
        if number is None or number != self._current:
            return  # replaced or cancelled: its late word is not wanted
        callback = self._callbacks[outcome]
        self._current = 0
        self._callbacks = (None, None, None)
        if callback is not None:
            callback(value)  # last, so the callback may start the next task in this slot
