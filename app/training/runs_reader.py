"""The runs list (and any other MLflow read) in a helper process, so MLflow stays out of the GUI process.

Listing the runs (:func:`.runs_model.load_runs`) has MLflow's SQL store build every run with
its params and tags (a search's trials each log their whole config). Read from a worker
*thread*, that work held the GIL for 50-120 ms at a time while a search ran, and the event
loop waited for it every refresh (``bench/tune_chart.py``). Here one helper process (started
with spawn on first use, shared by every caller, niced like the metric readers) lists the
runs and hands back the rows; the worker thread that asked only sleeps on the answer.
Every MLflow read of the GUI belongs here (:func:`in_helper`), so that MLflow is never imported
in the GUI process: with it (and SQLAlchemy) loaded, the
interpreter holds three and a half times as many objects, and each full garbage collection,
which stops every thread, took ~170 ms instead of ~27 ms. The helper ends with the app,
however the app ends (it watches its parent).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from ..widgets.workers import BACKGROUND_NICENESS, start_helper
from . import runs_model
from .runs_model import RunRow

T = TypeVar("T")
_lock = threading.Lock()  # two tabs may ask at once, each from its own worker thread
_executor: ProcessPoolExecutor | None = None


def _pool() -> ProcessPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=start_helper,
                initargs=(BACKGROUND_NICENESS, os.getpid()),
            )
        return _executor


def _drop(executor: ProcessPoolExecutor) -> None:
    """Forget a pool whose process died: the next read starts a new one."""
    global _executor
    with _lock:
        if _executor is executor:
            _executor = None
    executor.shutdown(wait=False, cancel_futures=True)


def in_helper(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in the helper process (blocks: call it from a worker thread). ``fn`` must be a
    module's top-level function (it is sent by name); its answer comes back pickled."""
    executor = _pool()
    try:
        return executor.submit(fn, *args).result()
    except BrokenProcessPool:
        _drop(executor)
        raise RuntimeError("the helper process that reads MLflow ended; the next read starts a new one") from None


def load_runs(tracking_uri: str, experiment: str = "lightbox") -> list[RunRow]:
    """:func:`.runs_model.load_runs`, in the helper process."""
    return in_helper(runs_model.load_runs, tracking_uri, experiment)
