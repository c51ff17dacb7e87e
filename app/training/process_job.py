"""A local training job run by a QProcess: the first kind of :class:`TrainingJob`.

Same command line, launch id and stop protocol as the engine's ``LocalJob``; only the
process is a QProcess, so output arrives by signals and nothing blocks the event loop.
MLflow calls (finding the run, setting the stop tag) go to worker threads.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QProcess, QProcessEnvironment

from engine.orchestration import jobs

from ..widgets.workers import BACKGROUND_NICENESS
from .job import TrainingJob


class ProcessJob(TrainingJob):
    kind = "local"

    def __init__(self, workspace: str | Path, tracking_uri: str, config_path: str | Path | None = None,
                 resume_run_id: str | None = None, grace_s: float = jobs.STOP_GRACE_S,
                 kill_grace_s: float = jobs.KILL_GRACE_S, parent=None):
        super().__init__(tracking_uri, run_id=resume_run_id, grace_s=grace_s, kill_grace_s=kill_grace_s,
                         parent=parent)
        self.workspace = Path(workspace)
        self.launch_id = jobs.new_launch_id()
        self.log_path = self.workspace / "runs" / "launches" / f"{self.launch_id}.log"
        # Under the relay, so a run left going when the app closes keeps its output (in log_path).
        self.command = jobs.relay_command(jobs.train_command(config_path, workspace=workspace,
                                                             tracking_uri=tracking_uri,
                                                             resume_run_id=resume_run_id), self.log_path,
                                           nice=BACKGROUND_NICENESS)
        self.process = QProcess(self)
        self.process.setProcessChannelMode(QProcess.MergedChannels)
        self.process.setWorkingDirectory(str(self.workspace))
        env = QProcessEnvironment()
        for key, value in jobs.child_environment(self.launch_id).items():
            env.insert(key, value)
        self.process.setProcessEnvironment(env)
        self.process.readyReadStandardOutput.connect(self._read)
        self.process.finished.connect(self._finished)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.process.start(self.command[0], self.command[1:])
        self._timer.start()

    def alive(self) -> bool:
        return self.process is not None and self.process.state() != QProcess.NotRunning

    def describe(self) -> str:
        return " ".join(self.command)

    def detach(self) -> int:
        """Leave the run going when the app closes; returns its process id.

        QProcess kills its child when it is destroyed, so the C++ object is let go of
        without being destroyed; the relay then keeps the training and its log going.
        """
        import shiboken6

        super().detach()
        self.process.readyReadStandardOutput.disconnect(self._read)
        self.process.finished.disconnect(self._finished)
        pid = int(self.process.processId())
        self.process.setParent(None)
        shiboken6.Shiboken.invalidate(self.process)
        self.process = None
        return pid

    def stop_at_exit(self) -> None:
        if self.run_id:
            jobs.request_stop(self.tracking_uri, self.run_id)  # one write; the run then ends KILLED by itself
        else:
            self.process.terminate()  # not logging yet: nothing to keep

    def _terminate(self) -> None:
        self.process.terminate()
        self.stopping.emit("terminated")

    def _kill(self) -> None:
        import os
        import signal

        pid = int(self.process.processId())
        try:
            os.killpg(pid, signal.SIGKILL)  # the relay and the training (one process group)
        except (ProcessLookupError, PermissionError):
            self.process.kill()
        self.stopping.emit("killed")

    def _run_lookup(self):
        return jobs.find_launched_run, (self.tracking_uri, self.launch_id)

    # ------------------------------------------------------------------ output
    def _read(self) -> None:
        self._feed(bytes(self.process.readAllStandardOutput()).decode("utf-8", errors="replace"))

    def _finished(self, code: int, _status=None) -> None:
        self._read()
        self._timer.stop()
        self.exit_code = int(code)
        if self.run_id is None:
            self._find_run()
        self.finished.emit(self.exit_code)
