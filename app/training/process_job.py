"""A local training job or search: the first kind of :class:`TrainingJob`.

``verb`` picks ``python -m engine train`` or ``tune`` (a search, whose run is the search's
parent run); everything else is the same for both. Same command line, launch id and stop
protocol as the engine's ``LocalJob``. The relay (and the training under it) runs in a
session of its own with no tie to the app: its output goes to its log file only, never to a
pipe the app owns, so a run (or a search) left going when the app closes (or when the app
dies) keeps going and logging. The app follows
the run by reading the log file's new bytes on a timer (a small read of a local file;
no pipe to block on). MLflow calls (finding the run, setting the stop tag) go to worker
threads.
"""

from __future__ import annotations

import codecs
import os
import signal
import subprocess
import time
from pathlib import Path

from PySide6.QtCore import QTimer

from engine.orchestration import jobs
from engine.tracking.progress_events import EVENTS_ENV

from ..widgets.workers import BACKGROUND_NICENESS
from .job import TrainingJob

#: How often the log file is read for new output (ms).
LOG_POLL_MS = 200
#: Most bytes taken from the log per read, so one read never holds the event loop long.
LOG_CHUNK = 256 * 1024
#: After this long, MLflow is asked for the run even if no new run folder was seen.
LOOKUP_ANYWAY_S = 20.0


class ProcessJob(TrainingJob):
    kind = "local"

    def __init__(
        self,
        workspace: str | Path,
        tracking_uri: str,
        config_path: str | Path | None = None,
        resume_run_id: str | None = None,
        grace_s: float | None = None,
        kill_grace_s: float = jobs.KILL_GRACE_S,
        verb: str = "train",
        parent=None,
    ):
        if grace_s is None:  # a search takes longer to end after the stop tag: its trials close first
            grace_s = jobs.SEARCH_STOP_GRACE_S if verb == "tune" else jobs.STOP_GRACE_S
        super().__init__(tracking_uri, run_id=resume_run_id, grace_s=grace_s, kill_grace_s=kill_grace_s, parent=parent)
        self.workspace = Path(workspace)
        self.launch_id = jobs.new_launch_id()
        self.log_path = self.workspace / "runs" / "launches" / f"{self.launch_id}.log"
        self.verb = verb
        self.command = jobs.relay_command(
            jobs.engine_command(
                verb, config_path, workspace=workspace, tracking_uri=tracking_uri, resume_run_id=resume_run_id
            ),
            self.log_path,
            nice=BACKGROUND_NICENESS,
        )
        # This process's environment, plus the launch id and a request for progress events.
        self.environment = {**jobs.child_environment(self.launch_id), EVENTS_ENV: "1"}
        self.process: subprocess.Popen | None = None
        self._log_offset = 0
        self._runs_stamp: int | None = None
        self._started = 0.0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._log_timer = QTimer(self)
        self._log_timer.setInterval(LOG_POLL_MS)
        self._log_timer.timeout.connect(self._poll)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.touch()
        self._log_offset = self.log_path.stat().st_size  # a resumed launch id never repeats, but be safe
        self._runs_stamp = self._runs_folder_stamp()
        self._started = time.monotonic()
        self.process = subprocess.Popen(
            self.command,
            cwd=self.workspace,
            env=self.environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # its own session and process group: nothing of the app's reaches it
        self._log_timer.start()
        self._timer.start()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def describe(self) -> str:
        return " ".join(self.command)

    def detach(self) -> int | None:
        """Leave the run going when the app closes; returns the relay's process id.

        Nothing needs undoing: the relay has its own session and writes only to its log.
        """
        super().detach()
        self._log_timer.stop()
        pid = self.pid
        self.process = None  # forgotten, not killed: Popen never kills on garbage collection
        return pid

    def stop_at_exit(self) -> None:
        if self.run_id:
            jobs.request_stop(self.tracking_uri, self.run_id)  # one write; the run then ends KILLED by itself
        elif self.alive():
            self.process.terminate()  # not logging yet: nothing to keep

    def _terminate(self) -> None:
        self.process.terminate()  # the relay passes SIGTERM on: the training saves and ends KILLED
        self.stopping.emit("terminated")

    def _kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # the relay and the training (one process group)
        except (ProcessLookupError, PermissionError):
            self.process.kill()
        self.stopping.emit("killed")

    def _run_lookup(self):
        return self._find_launched_run, ()

    def _runs_folder_stamp(self) -> int | None:
        try:
            return (self.workspace / "runs").stat().st_mtime_ns
        except OSError:
            return None

    def _find_launched_run(self) -> str | None:
        """Worker thread: the run id, asked of MLflow only once a run folder has appeared.

        The training opens its run (and its folder) only after importing torch and building
        the model; asking MLflow every second before that costs the GUI process's interpreter
        lock for nothing, and at the start it would build a second store beside the Train
        tab's first one (seconds of schema checks on a new workspace: bench/train_click.py).
        """
        if self._runs_folder_stamp() == self._runs_stamp and time.monotonic() - self._started < LOOKUP_ANYWAY_S:
            return None
        return jobs.find_launched_run(self.tracking_uri, self.launch_id)

    # ------------------------------------------------------------------ output
    def _read_log(self) -> bool:
        """Feed the log's new bytes; False when there were none."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset)
                data = log.read(LOG_CHUNK)
        except OSError:
            return False
        if not data:
            return False
        self._log_offset += len(data)
        self._feed(self._decoder.decode(data))  # keeps a character cut by the read for the next one
        return True

    def _poll(self) -> None:
        self._read_log()
        if self.process is None or self.process.poll() is None:
            return
        while self._read_log():  # the rest of the log, now complete
            pass
        self._feed(self._decoder.decode(b"", final=True))
        self._finished(self.process.returncode)

    def _finished(self, code: int) -> None:
        self._log_timer.stop()
        self._timer.stop()
        self._conclude(code)
