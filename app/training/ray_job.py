"""A training run submitted to a Ray cluster: the second kind of :class:`TrainingJob`.

Every call to the cluster (``engine.orchestration.ray_jobs``: submit, status, logs,
stop) runs in a worker thread; the GUI thread only shows what comes back.  The job logs
to MLflow at ``tracking.uri``, so its run is found there (by its distinct run name) and
charted like a local run.  Stop follows the same protocol as a local run: the stop tag
first (the run saves a checkpoint and ends KILLED), then ``stop_job`` after the grace
period, or at once while the run is not known yet.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer

from engine.orchestration import jobs

from ..widgets.task_slot import TaskSlot
from .job import TrainingJob

POLL_MS = 2000
DONE = ("SUCCEEDED", "FAILED", "STOPPED")
EXIT_CODES = {"SUCCEEDED": 0, "FAILED": 1, "STOPPED": 143}  # 143: ended by a stop, as after SIGTERM
CLOCK_SLACK_MS = 120_000  # the cluster's clock may differ from ours


def _ray_jobs():
    from engine.orchestration import ray_jobs

    return ray_jobs


def submit(config, address: str, verb: str = "train") -> tuple[str, str | None]:
    """Worker thread: ``(job id, token)`` of ``lightbox VERB`` (train or tune) submitted to the cluster;
    the token is found where Ray keeps it (never shown)."""
    ray_jobs = _ray_jobs()
    token = ray_jobs.read_token()
    # Progress events in the job's log give the progress line its epoch, step and ETA.
    return ray_jobs.submit_job(config, address, verb=verb, token=token, progress_events=True), token


def poll(address: str, job_id: str, token: str | None) -> tuple[dict, str]:
    """Worker thread: the job's status and its whole log so far."""
    ray_jobs = _ray_jobs()
    return ray_jobs.job_status(address, job_id, token), ray_jobs.job_logs(address, job_id, token)


def stop(address: str, job_id: str, token: str | None) -> bool:
    return _ray_jobs().stop_job(address, job_id, token)


def find_run_by_name(tracking_uri: str, experiment: str, run_name: str, since_ms: int) -> str | None:
    """The newest run called ``run_name`` started after ``since_ms`` (None while there is none)."""
    from engine.tracking.client import client, experiment_id, run_name_is, search_runs, started_since

    mlflow_client = client(tracking_uri)
    found = experiment_id(mlflow_client, experiment)
    if found is None:
        return None
    runs = search_runs(
        mlflow_client,
        [found],
        run_name_is(run_name),
        started_since(since_ms),
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


class RayJob(TrainingJob):
    kind = "ray"

    def __init__(
        self,
        config,
        address: str,
        tracking_uri: str,
        grace_s: float = jobs.STOP_GRACE_S,
        kill_grace_s: float = jobs.KILL_GRACE_S,
        poll_ms: int = POLL_MS,
        verb: str = "train",
        parent=None,
    ):
        if not config.tracking.run_name:
            raise ValueError("a Ray job needs a distinct tracking.run_name: its run is found by that name")
        super().__init__(tracking_uri, grace_s=grace_s, kill_grace_s=kill_grace_s, parent=parent)
        self.config = config
        self.address = address
        self.verb = verb  # train, or tune for a search (its run is the search's parent)
        self.job_id: str | None = None
        self.status = "NEW"
        self._token: str | None = None
        self._since_ms = 0
        self._log_len = 0
        self._poll_slot = TaskSlot(self, pool=self.pool)  # one status-and-log read at a time
        self._stop_when_submitted = False
        self._last_error: str | None = None
        self._poll_timer = QTimer(self)
        self._poll_timer.setInterval(poll_ms)
        self._poll_timer.timeout.connect(self._poll)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self.status != "NEW":
            raise RuntimeError("this Ray job was already started")
        self.status = "SUBMITTING"
        self._since_ms = int(time.time() * 1000) - CLOCK_SLACK_MS
        self.state.emit(f"submitting to the Ray cluster at {self.address}…")
        self._background(
            submit, self.config, self.address, self.verb, on_done=self._submitted, on_error=self._submit_failed
        )
        self._timer.start()

    def alive(self) -> bool:
        return self.status in ("SUBMITTING", "PENDING", "RUNNING")

    def describe(self) -> str:
        return (
            f"Ray job on {self.address}: python -m engine {self.verb} --config run.yaml "
            f"(run {self.config.tracking.run_name!r}, tracking {self.tracking_uri})"
        )

    def stop(self) -> None:
        if self.alive() and self.run_id is None and self._stop is None:
            # No run to tag (not logging yet, or its store is not readable from here): Ray stops it.
            self._stop = jobs.StopSequence(grace_s=0, kill_grace_s=self.kill_grace_s)
            self._terminate()
            self._stop.requested = self._stop.terminated = True
            return
        super().stop()

    def detach(self) -> str | None:
        """The job keeps running on the cluster; returns its id."""
        super().detach()
        self._poll_timer.stop()
        return self.job_id

    def stop_at_exit(self) -> None:
        if self.run_id:
            jobs.request_stop(self.tracking_uri, self.run_id)
        elif self.job_id:
            stop(self.address, self.job_id, self._token)

    def ended_text(self, code: int) -> str:
        return f"Ray job {self.job_id or '(not submitted)'} ended {self.status}" + self._failure_suffix()

    def _terminate(self) -> None:
        if self.job_id is None:
            self._stop_when_submitted = True
            self.stopping.emit("stop asked before the job was submitted; it is stopped once it is")
            return
        self._background(
            stop, self.address, self.job_id, self._token, on_error=lambda m: self.stopping.emit(f"stop_job failed: {m}")
        )
        self.stopping.emit(f"stop_job {self.job_id}")

    def _kill(self) -> None:
        self._terminate()  # Ray itself kills a job that outlives its stop request

    def _run_lookup(self):
        return find_run_by_name, (
            self.tracking_uri,
            self.config.tracking.experiment,
            self.config.tracking.run_name,
            self._since_ms,
        )

    # ------------------------------------------------------------------ answers from the cluster
    def _submitted(self, answer) -> None:
        self.job_id, self._token = answer
        self.status = "PENDING"
        self._say(f"submitted Ray job {self.job_id} to {self.address}")
        self.state.emit(f"Ray job {self.job_id}: PENDING")
        self._poll_timer.start()
        if self._stop_when_submitted:
            self._terminate()
        self._poll()

    def _submit_failed(self, message: str) -> None:
        self.status = "FAILED"
        self._say(f"the Ray job was not submitted: {message}")
        self._end()

    def _poll(self) -> None:
        if self._poll_slot.busy or self.job_id is None or not self.alive():
            return
        self._poll_slot.start(
            poll, self.address, self.job_id, self._token, on_done=self._polled, on_error=self._poll_failed
        )

    def _polled(self, answer) -> None:
        self._last_error = None
        info, logs = answer
        if len(logs) < self._log_len:  # the cluster restarted the log: show it again from the top
            self._log_len = 0
        fresh, self._log_len = logs[self._log_len :], len(logs)
        if fresh:
            self._feed(fresh)
        if self.run_id is None:
            self._set_run(_ray_jobs().run_id_of(logs))
        if not self.alive():
            return
        self.status = str(info.get("status", "RUNNING"))
        self.state.emit(f"Ray job {self.job_id}: {self.status}")
        if self.status in DONE:
            message = info.get("message")
            if message and self.status != "SUCCEEDED":
                self._say(f"Ray: {message}")
            self._end()

    def _poll_failed(self, message: str) -> None:
        if message != self._last_error:  # say it once, keep trying
            self._last_error = message
            self._say(f"cannot follow the Ray job: {message}")

    def _end(self) -> None:
        self._feed("\n")  # the last line, if it had no newline
        self._poll_timer.stop()
        self._timer.stop()
        self._conclude(EXIT_CODES.get(self.status, 1), failed=self.status not in ("SUCCEEDED", "STOPPED"))
