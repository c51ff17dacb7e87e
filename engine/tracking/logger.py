"""``RunLogger``: one MLflow run seen from the training process.

Writing a metric to an SQLite store costs ~10 ms, far too slow for the training
loop, so ``log_metrics`` only appends to a queue; a background thread writes
the queue with ``log_batch`` every ``flush_interval`` seconds.  The same thread
polls the run's tags for a stop request (set by the desktop app through
``request_stop``) so the training loop only ever reads a cached flag.

If the store is unreachable the thread keeps the metrics queued, retries at the
next interval and reports the problem in ``last_error``: tracking trouble must
never kill a training run.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from engine.tracking.client import client
from engine.tracking.store import get_or_create_experiment, resolve_tracking_uri
from engine.tracking.tags import HEARTBEAT_TAG, LAUNCH_ID_ENV, LAUNCH_ID_TAG, STOP_TAG

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 5.0
TERMINAL_STATUSES = ("FINISHED", "FAILED", "KILLED")

# Limits of MLflow's log_batch REST call (also enforced by the SQL store).
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_KEY_LENGTH = 250
try:  # the value limits grew over MLflow versions (500 -> 6000 for params); follow the installed one
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH, MAX_TAG_VAL_LENGTH
except ImportError:  # pragma: no cover - older or reshuffled MLflow
    MAX_PARAM_VAL_LENGTH, MAX_TAG_VAL_LENGTH = 500, 5000

# Characters MLflow accepts in metric and param names on every OS.
_VALID_KEY = re.compile(r"^[\w./\- ]+$")


def request_stop(tracking_uri: str, run_id: str) -> None:
    """Ask a running training to stop (what the app calls); the run sees it within a poll interval."""
    client(tracking_uri).set_tag(run_id, STOP_TAG, "true")


def _check_key(key: str) -> str:
    # A bad key would make every later batch fail, so refuse it where the caller can see it.
    if not isinstance(key, str) or not _VALID_KEY.match(key) or posixpath.normpath(key) != key:
        raise ValueError(
            f"invalid MLflow metric name {key!r}: use letters, digits, _ - . / and spaces, "
            "without empty or '..' path parts"
        )
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"metric name longer than {MAX_KEY_LENGTH} characters: {key[:40]}...")
    return key


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class RunLogger:
    """One MLflow run, written from the training process.

    Create a new run, or pass ``run_id`` to resume an earlier one (it becomes
    RUNNING again and any old stop request is cleared).  Use it as a context
    manager, or call ``finish`` yourself.
    """

    def __init__(
        self,
        tracking_uri: str | None,
        experiment: str = "lightbox",
        run_name: str | None = None,
        run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        workspace: str | Path | None = None,
        flush_interval: float = 2.0,
        stop_poll_interval: float = 2.0,
    ) -> None:
        self.tracking_uri = resolve_tracking_uri(tracking_uri, workspace)
        self.client = client(self.tracking_uri)
        self.flush_interval = float(flush_interval)
        self.stop_poll_interval = float(stop_poll_interval)
        self.last_error: str | None = None

        # Metrics wait here until the background thread (or flush()) writes them.
        self._queue: list[Metric] = []
        self._queue_lock = threading.Lock()
        self._in_flight = 0  # taken off the queue, being written
        # One writer at a time: SQLite would answer a second one with "database is locked".
        self._store_lock = threading.RLock()
        self._flush_lock = threading.Lock()
        self._stop_requested = False
        self._finished = False
        self._wake = threading.Event()

        tags = {str(k): str(v) for k, v in (tags or {}).items()}
        tags[HEARTBEAT_TAG] = f"{time.time():.3f}"
        if os.environ.get(LAUNCH_ID_ENV):
            tags[LAUNCH_ID_TAG] = os.environ[LAUNCH_ID_ENV]
        if run_id:
            run = self.client.get_run(run_id)
            self.run_id = run.info.run_id
            self.experiment_id = run.info.experiment_id
            self._logged_params = dict(run.data.params)
            self.client.update_run(self.run_id, status="RUNNING")
            if STOP_TAG in run.data.tags:  # a stop asked of the earlier attempt must not end this one
                self.client.delete_tag(self.run_id, STOP_TAG)
            self._log_tags(tags)
        else:
            self.experiment_id = get_or_create_experiment(self.client, experiment, workspace)
            run = self.client.create_run(self.experiment_id, run_name=run_name, tags=tags)
            self.run_id = run.info.run_id
            self._logged_params = {}

        self._thread = threading.Thread(target=self._background, name=f"mlflow-{self.run_id[:8]}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ params, tags, artifacts
    def log_params(self, flat: Mapping[str, Any]) -> None:
        """Log flat ``{dotted.key: value}`` params (values stringified and truncated).

        Params already logged with the same value are skipped, so resuming a run and
        logging its config again is harmless; a *different* value still raises.
        """
        fresh: dict[str, str] = {}
        for key, value in flat.items():
            key = str(key)[:MAX_KEY_LENGTH]
            text = str(value)[:MAX_PARAM_VAL_LENGTH]
            if self._logged_params.get(key) == text:
                continue
            fresh[key] = text
        params = [Param(k, v) for k, v in fresh.items()]
        with self._store_lock:
            for chunk in _chunks(params, MAX_PARAMS_PER_BATCH):
                self.client.log_batch(self.run_id, params=chunk)
                self._logged_params.update((p.key, p.value) for p in chunk)

    def set_tag(self, key: str, value: Any) -> None:
        self._log_tags({key: value})

    def _log_tags(self, tags: Mapping[str, Any]) -> None:
        items = [RunTag(str(k), str(v)[:MAX_TAG_VAL_LENGTH]) for k, v in tags.items()]
        with self._store_lock:
            for chunk in _chunks(items, MAX_PARAMS_PER_BATCH):
                self.client.log_batch(self.run_id, tags=chunk)

    def log_config(self, yaml_text: str, name: str = "run_config.yaml") -> None:
        """Store the run's configuration as an artifact, so the run can be reproduced."""
        self.log_text(yaml_text, name)

    def log_text(self, text: str, artifact_file: str) -> None:
        with self._store_lock:
            self.client.log_text(self.run_id, text, artifact_file)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        with self._store_lock:
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    # ------------------------------------------------------------------ metrics
    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Queue metrics for ``step``; never touches the store.

        NaN and infinite values are kept on purpose: a NaN loss must show in the charts.
        """
        timestamp = int(time.time() * 1000)
        batch = [Metric(_check_key(k), float(v), timestamp, int(step)) for k, v in metrics.items()]
        with self._queue_lock:
            self._queue.extend(batch)
        if self._finished:  # nobody flushes after finish(): write straight away
            self.flush()

    def flush(self) -> bool:
        """Write all queued metrics now.

        Returns False and sets ``last_error`` when the store failed (the unwritten metrics
        stay queued for the next try) or rejected some metrics as invalid (those are dropped:
        retrying cannot help).
        """
        with self._flush_lock:
            with self._queue_lock:
                pending, self._queue = self._queue, []
                self._in_flight = len(pending)
            written, rejected = 0, None
            try:
                with self._store_lock:
                    for chunk in _chunks(pending, MAX_METRICS_PER_BATCH):
                        try:
                            self.client.log_batch(self.run_id, metrics=chunk)
                        except MlflowException as exc:
                            if exc.error_code != "INVALID_PARAMETER_VALUE":
                                raise
                            rejected = exc
                            log.warning("MLflow rejected %d metrics of run %s: %s", len(chunk), self.run_id, exc)
                        written += len(chunk)
            except Exception as exc:
                with self._queue_lock:  # put the unwritten part back in front, keeping the order
                    self._queue[:0] = pending[written:]
                    self._in_flight = 0
                self.last_error = _describe(exc)
                log.warning("could not write metrics of run %s (will retry): %s", self.run_id, self.last_error)
                return False
            with self._queue_lock:
                self._in_flight = 0
            if rejected is not None:
                self.last_error = _describe(rejected)
                return False
            if pending:
                self.last_error = None
            return True

    @property
    def pending(self) -> int:
        """Number of metric values not yet written (queued or being written)."""
        with self._queue_lock:
            return len(self._queue) + self._in_flight

    # ------------------------------------------------------------------ stop requests
    def stop_requested(self) -> bool:
        """True once the app asked this run to stop; cached, so free to call every step."""
        return self._stop_requested

    def _poll_stop(self) -> None:
        try:
            with self._store_lock:
                tags = self.client.get_run(self.run_id).data.tags
        except Exception as exc:
            self.last_error = _describe(exc)
            return
        if str(tags.get(STOP_TAG, "")).lower() == "true":
            self._stop_requested = True

    # ------------------------------------------------------------------ background thread
    def _background(self) -> None:
        now = time.monotonic()
        next_flush, next_poll = now + self.flush_interval, now + self.stop_poll_interval
        next_beat = now + HEARTBEAT_INTERVAL_S
        while not self._finished:
            self._wake.wait(max(0.0, min(next_flush, next_poll, next_beat) - time.monotonic()))
            if self._finished:
                return
            now = time.monotonic()
            if now >= next_beat:
                try:
                    self._log_tags({HEARTBEAT_TAG: f"{time.time():.3f}"})
                except Exception as exc:
                    self.last_error = _describe(exc)
                next_beat = time.monotonic() + HEARTBEAT_INTERVAL_S
            if now >= next_flush:
                try:
                    self.flush()
                except Exception as exc:  # belt and braces: this thread must survive anything
                    self.last_error = _describe(exc)
                next_flush = time.monotonic() + self.flush_interval
            if now >= next_poll and not self._stop_requested:
                self._poll_stop()
                next_poll = time.monotonic() + self.stop_poll_interval

    # ------------------------------------------------------------------ end of the run
    def finish(self, status: str = "FINISHED") -> bool:
        """Write the queued metrics and mark the run FINISHED, FAILED or KILLED.

        Only the first call counts. Store errors are reported in ``last_error`` and the
        return value (False), not raised: the training itself is over by now.
        """
        status = status.upper()
        if status not in TERMINAL_STATUSES:
            raise ValueError(f"status must be one of {TERMINAL_STATUSES}, not {status!r}")
        if self._finished:
            return True
        self._finished = True
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        ok = self.flush() or self.flush()  # one quick retry for a store that hiccupped
        try:
            with self._store_lock:
                self.client.set_terminated(self.run_id, status=status)
        except Exception as exc:
            self.last_error = _describe(exc)
            log.warning("could not mark run %s %s: %s", self.run_id, status, self.last_error)
            return False
        return ok

    @property
    def finished(self) -> bool:
        return self._finished

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:  # None: the exception is never swallowed
        if not self._finished:
            if exc_type is None:
                self.finish("FINISHED")
            elif issubclass(exc_type, KeyboardInterrupt):
                self.finish("KILLED")
            else:
                self.finish("FAILED")

    def __repr__(self) -> str:
        return f"RunLogger(run_id={self.run_id!r}, uri={self.tracking_uri!r})"


__all__ = ["HEARTBEAT_TAG", "RunLogger", "STOP_TAG", "request_stop"]
