"""Metric reads in a helper process, so MLflow never holds the GUI process's GIL.

MLflow's SQL store turns rows into objects in C (sqlite3, SQLAlchemy) without letting
other threads run: read from a worker *thread*, loading eight runs of 10,000 steps
stalled the event loop for ~600 ms (bench/live_chart.py).  Each :class:`ReaderProcess`
keeps one ``engine.tracking.history.MetricReader`` per run in a process of its own
(started with spawn: no fork of a Qt process) and hands back plain lists.  A worker
thread waits for the answer, sleeping, not holding the GIL.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

from ..widgets.workers import BACKGROUND_NICENESS, start_helper

_READERS: dict = {}  # in the helper process: (tracking_uri, run_id) -> MetricReader


def _poll(tracking_uri: str, run_id: str, start_over: bool):
    from engine.tracking.history import MetricReader

    key = (tracking_uri, run_id)
    if start_over or key not in _READERS:
        _READERS[key] = MetricReader(tracking_uri, run_id)
    return _READERS[key].poll()


def _state(tracking_uri: str, run_id: str):
    from engine.tracking.history import run_state

    return run_state(tracking_uri, run_id)


def _forget(tracking_uri: str, run_id: str) -> None:
    _READERS.pop((tracking_uri, run_id), None)


class ReaderProcess:
    """One helper process; ``poll`` blocks (call it from a worker thread)."""

    def __init__(self) -> None:
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=start_helper,  # niced, and gone with the app however the app ends
                initargs=(BACKGROUND_NICENESS, os.getpid()),
            )
        return self._executor

    def poll(self, tracking_uri: str, run_id: str, start_over: bool = False):
        """``(new points, status, tags)`` of the run, as ``MetricReader.poll`` gives them."""
        return self._pool().submit(_poll, tracking_uri, run_id, start_over).result()

    def state(self, tracking_uri: str, run_id: str):
        """``(status, end_time)`` of the run, without reading metrics (blocks like ``poll``)."""
        return self._pool().submit(_state, tracking_uri, run_id).result()

    def forget(self, tracking_uri: str, run_id: str) -> None:
        if self._executor is not None:
            self._executor.submit(_forget, tracking_uri, run_id)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
