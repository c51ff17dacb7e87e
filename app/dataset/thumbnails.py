"""Thumbnails for the browser: a byte-bounded LRU of QImages and a background decoder.

Decoding happens on the loader's own thread pool, never on the GUI thread.
Workers build QImages (safe off the GUI thread, unlike QPixmaps); the GUI
turns them into pixmaps when it paints. Pending requests form a short LIFO
stack: what the user scrolled to last is decoded first, and requests for
items scrolled away long ago fall off the bottom instead of piling up.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QImage

from engine.data.images import ImageReadError, load_image

DEFAULT_BUDGET = 256 * 2**20
DEFAULT_MAX_PENDING = 256

CacheKey = tuple[str, int]  # (path, size)


def default_threads() -> int:
    """Up to 4 decoders, leaving one core to the GUI thread.

    Decoding holds the GIL part of the time; with every core decoding, the GUI
    thread waits for the GIL and scrolling stutters (measured on 2 cores: p99
    event-loop stall 31 ms with 2 decoders, 4 ms with 1, same time to first
    thumbnails).
    """
    return max(1, min(4, (os.cpu_count() or 1) - 1))


class ThumbnailCache:
    """Least-recently-used QImages keyed by (path, size), bounded by their bytes; thread-safe."""

    def __init__(self, max_bytes: int = DEFAULT_BUDGET):
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[CacheKey, QImage] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: CacheKey) -> QImage | None:
        with self._lock:
            image = self._items.get(key)
            if image is not None:
                self._items.move_to_end(key)
            return image

    def put(self, key: CacheKey, image: QImage) -> None:
        size = image.sizeInBytes()
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.sizeInBytes()
            if size > self.max_bytes:
                return  # would evict everything and still not fit
            self._items[key] = image
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= evicted.sizeInBytes()

    def __contains__(self, key: CacheKey) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    @property
    def bytes_used(self) -> int:
        with self._lock:
            return self._bytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


def decode_thumbnail(path: str | Path, size: int) -> QImage:
    """Decode ``path`` so that its longer side is at most ``size``; raises ImageReadError."""
    rgb = np.ascontiguousarray(load_image(path, max_side=size))
    height, width = rgb.shape[:2]
    # QImage only borrows the numpy buffer; copy() gives it its own before the array dies.
    return QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


class _Relay(QObject):
    """Carries results from worker threads; the loader receives them queued, on the GUI thread.

    A separate object (kept alive by the workers too) so a late worker never
    emits on a loader that Qt has already deleted.
    """

    decoded = Signal(object, object, str)  # key, QImage or None, error message


class ThumbnailLoader(QObject):
    """Decodes thumbnails in the background; ``ready``/``failed`` arrive on the GUI thread."""

    ready = Signal(object, QImage)  # key, thumbnail
    failed = Signal(object, str)  # key, why it could not be read

    def __init__(
        self,
        cache: ThumbnailCache | None = None,
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
        max_threads: int | None = None,
        decode: Callable[[str, int], QImage] = decode_thumbnail,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.cache = cache if cache is not None else ThumbnailCache()
        self.max_pending = max_pending
        self.decode = decode
        self.pool = QThreadPool()  # own pool: thumbnails never queue behind dataset checks
        self.pool.setMaxThreadCount(max_threads or default_threads())
        self._lock = threading.Lock()
        self._pending: OrderedDict[Hashable, tuple[str, int]] = OrderedDict()  # newest last
        self._in_flight: set[Hashable] = set()  # taken by a worker, result not yet delivered
        self._workers = 0
        self._relay = _Relay()
        self._relay.decoded.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    def request(self, key: Hashable, path: str | Path, size: int) -> None:
        """Ask for a thumbnail; a repeated request only moves it to the front of the queue."""
        with self._lock:
            if key in self._in_flight:
                return
            self._pending[key] = (str(path), int(size))
            self._pending.move_to_end(key)
            while len(self._pending) > self.max_pending:
                self._pending.popitem(last=False)  # the stalest: scrolled away long ago
            start = self._workers < self.pool.maxThreadCount()
            if start:
                self._workers += 1
        if start:
            relay = self._relay
            self.pool.start(lambda: self._work(relay))

    def cancel_pending(self) -> None:
        """Forget every request no worker has started yet."""
        with self._lock:
            self._pending.clear()

    def pending_count(self) -> int:
        with self._lock:
            return len(self._pending)

    def is_idle(self) -> bool:
        with self._lock:
            return not self._pending and not self._in_flight

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """For tests and benchmarks: process events until every request is delivered."""
        deadline = time.monotonic() + timeout
        while not self.is_idle():
            if time.monotonic() > deadline:
                return False
            QCoreApplication.processEvents()
            time.sleep(0.002)
        return True

    # ---------------------------------------------------------------- worker side
    def _work(self, relay: _Relay) -> None:
        """One worker: take the newest request until none is left."""
        while True:
            with self._lock:
                if not self._pending:
                    self._workers -= 1
                    return
                key, (path, size) = self._pending.popitem(last=True)
                self._in_flight.add(key)
            image, message = self.cache.get((path, size)), ""
            if image is None:
                try:
                    image = self.decode(path, size)
                    self.cache.put((path, size), image)
                except ImageReadError as exc:
                    image, message = None, exc.reason
                except Exception as exc:  # a thumbnail must never take the app down
                    image, message = None, str(exc) or type(exc).__name__
            try:
                relay.decoded.emit(key, image, message)
            except RuntimeError:  # the app is shutting down
                return

    @Slot(object, object, str)
    def _deliver(self, key: Hashable, image: QImage | None, message: str) -> None:
        with self._lock:
            self._in_flight.discard(key)
        if image is None:
            self.failed.emit(key, message)
        else:
            self.ready.emit(key, image)
