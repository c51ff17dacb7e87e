"""The engine's augmentation module, imported once per process, in the background.

``engine.data.augment`` pulls in albumentations (and with it torch): seconds of import
that must never happen at module import or on the GUI thread. The main window starts
the import once it is up, so the Augment tab is ready by the time someone opens it; a
panel shown earlier waits on the same task.

An import is a fact about the process, so one :class:`AugmentLibrary` (``LIBRARY``)
stands for it; a test may hand a panel a library of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..widgets.workers import BackgroundTask, run_in_background
from .augment_model import augment_module


def _import_augment() -> None:
    augment_module().available_transforms("classification")  # also fills the cached transform catalogue


class AugmentLibrary:
    """Starts the import once and keeps its task (and its signals) for everyone who waits on it."""

    def __init__(self, load: Callable[[], object] = _import_augment):
        self._load = load
        self.task: BackgroundTask | None = None  # held for good: the pool keeps only a raw pointer
        self.seconds: float | None = None  # how long the import took, once done

    def start(self) -> BackgroundTask:
        """The background import, started on the first call; later calls get the same task."""
        if self.task is None:
            self.task = run_in_background(self._timed_load)
        return self.task

    def _timed_load(self) -> None:
        started = time.perf_counter()
        self._load()
        self.seconds = time.perf_counter() - started


LIBRARY = AugmentLibrary()


def start_warm_up() -> BackgroundTask:
    """Import the augmentation library (albumentations, torch) in the background, once per process."""
    return LIBRARY.start()


def warm_up_seconds() -> float | None:
    """How long the background import took, once it is done."""
    return LIBRARY.seconds
