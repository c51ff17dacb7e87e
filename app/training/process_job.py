"""A local training job run by a QProcess: the app's face of ``engine.orchestration.jobs``.

Same command line, launch id and stop protocol as the engine's ``LocalJob``; only the
process is a QProcess, so output arrives by signals and nothing blocks the event loop.
MLflow calls (finding the run, setting the stop tag) go to worker threads.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from engine.orchestration import jobs

from ..widgets.workers import run_in_background
from .progress import OutputSplitter


class ProcessJob(QObject):
    output = Signal(list)  # complete lines
    progress = Signal(object)  # progress.Progress
    run_found = Signal(str)
    finished = Signal(int)  # exit code
    stopping = Signal(str)  # what the stop protocol just did

    kind = "local"

    def __init__(self, workspace: str | Path, tracking_uri: str, config_path: str | Path | None = None,
                 resume_run_id: str | None = None, grace_s: float = jobs.STOP_GRACE_S,
                 kill_grace_s: float = jobs.KILL_GRACE_S, parent=None):
        super().__init__(parent)
        self.workspace = Path(workspace)
        self.tracking_uri = tracking_uri
        self.launch_id = jobs.new_launch_id()
        self.run_id: str | None = resume_run_id
        self.log_path = self.workspace / "runs" / "launches" / f"{self.launch_id}.log"
        # Under the relay, so a run left going when the app closes keeps its output (in log_path).
        self.command = jobs.relay_command(jobs.train_command(config_path, workspace=workspace,
                                                             tracking_uri=tracking_uri,
                                                             resume_run_id=resume_run_id), self.log_path)
        self.grace_s, self.kill_grace_s = grace_s, kill_grace_s
        self.log_lines: list[str] = []
        self.exit_code: int | None = None
        self._splitter = OutputSplitter()
        self._stop: jobs.StopSequence | None = None
        self._tasks: list = []
        self._looking = False
        self.process = QProcess(self)
        self.process.setProcessChannelMode(QProcess.MergedChannels)
        self.process.setWorkingDirectory(str(self.workspace))
        env = QProcessEnvironment()
        for key, value in jobs.child_environment(self.launch_id).items():
            env.insert(key, value)
        self.process.setProcessEnvironment(env)
        self.process.readyReadStandardOutput.connect(self._read)
        self.process.finished.connect(self._finished)
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._tick)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.process.start(self.command[0], self.command[1:])
        self._timer.start()

    def alive(self) -> bool:
        return self.process is not None and self.process.state() != QProcess.NotRunning

    def stop(self) -> None:
        """Ask the run to stop (tag), then terminate after the grace period, then kill."""
        if self._stop is None and self.alive():
            self._stop = jobs.StopSequence(grace_s=self.grace_s, kill_grace_s=self.kill_grace_s)
            self._tick()

    @property
    def stop_requested(self) -> bool:
        return self._stop is not None

    def detach(self) -> int:
        """Leave the run going when the app closes; returns its process id.

        QProcess kills its child when it is destroyed, so the C++ object is let go of
        without being destroyed; the relay then keeps the training and its log going.
        """
        import shiboken6

        self._timer.stop()
        self.process.readyReadStandardOutput.disconnect(self._read)
        self.process.finished.disconnect(self._finished)
        pid = int(self.process.processId())
        self.process.setParent(None)
        shiboken6.Shiboken.invalidate(self.process)
        self.process = None
        return pid

    def _kill_group(self) -> None:
        import os
        import signal

        pid = int(self.process.processId())
        try:
            os.killpg(pid, signal.SIGKILL)  # the relay and the training (one process group)
        except (ProcessLookupError, PermissionError):
            self.process.kill()

    # ------------------------------------------------------------------ internals
    def _read(self) -> None:
        chunk = bytes(self.process.readAllStandardOutput()).decode("utf-8", errors="replace")
        lines = self._splitter.feed(chunk)
        if lines:
            self.log_lines.extend(lines)
            self.output.emit(lines)
        if self._splitter.progress is not None:
            self.progress.emit(self._splitter.progress)

    def _finished(self, code: int, _status=None) -> None:
        self._read()
        self._timer.stop()
        self.exit_code = int(code)
        if self.run_id is None:
            self._find_run()
        self.finished.emit(self.exit_code)

    def _tick(self) -> None:
        if self.run_id is None:
            self._find_run()
        if self._stop is None or not self.alive():
            return
        for action in self._stop.step(time.monotonic(), run_known=self.run_id is not None):
            if action == "request":
                self._tasks.append(run_in_background(jobs.request_stop, self.tracking_uri, self.run_id,
                                                     on_error=lambda m: self.stopping.emit(f"stop tag failed: {m}")))
                self.stopping.emit("stop requested")
            elif action == "terminate":
                self.process.terminate()
                self.stopping.emit("terminated")
            else:
                self._kill_group()
                self.stopping.emit("killed")

    def _find_run(self) -> None:
        if self._looking:
            return
        self._looking = True

        def found(run_id):
            self._looking = False
            if run_id and self.run_id is None:
                self.run_id = run_id
                self.run_found.emit(run_id)

        def failed(_message):
            self._looking = False

        self._tasks = [t for t in self._tasks if not t.done.is_set()]
        self._tasks.append(run_in_background(jobs.find_launched_run, self.tracking_uri, self.launch_id,
                                             on_done=found, on_error=failed))
