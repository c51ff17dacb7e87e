"""One launcher concept for training jobs: start, find the run, status, logs, stop.

A job is a training process that logs to MLflow.  The app and the CLI talk to every
kind of job the same way (:class:`Job`): a local child process (:class:`LocalJob`,
``python -m engine train --config PATH``) today, a Ray job (through
``engine.orchestration.ray_jobs``) as a second kind of the same thing.

* **Finding the run.** The launcher puts a fresh launch id in the child's environment;
  the training process's ``RunLogger`` tags its run with it (``lightbox.launch_id``),
  so the launcher learns the MLflow run id without parsing output.
* **Status** comes from MLflow, so a run started by an earlier app session is seen the
  same way.  A RUNNING run whose heartbeat tag (``lightbox.heartbeat``, refreshed every
  few seconds by the training process) is stale is reported as ``LOST``: its process died.
* **Stop** is a protocol, :class:`StopSequence`: first the stop tag (the training
  callback ends the run KILLED after saving a checkpoint), then, if the process is still
  there after a grace period, terminate, then kill.  It is Qt-free, so the app drives the
  same sequence from a timer with its QProcess.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from engine.tracking.tags import HEARTBEAT_TAG, LAUNCH_ID_ENV, LAUNCH_ID_TAG

LOST_AFTER_S = 30.0  # six missed heartbeats
STOP_GRACE_S = 30.0  # after the stop tag, before terminate
# A search, after the stop tag, ends its running trials and closes every trial's run before it exits.
SEARCH_STOP_GRACE_S = 120.0
KILL_GRACE_S = 10.0  # after terminate, before kill
LOST = "LOST"
ACTIVE_STATUSES = ("RUNNING", "SCHEDULED")


# ---------------------------------------------------------------------- launching
def new_launch_id() -> str:
    return uuid.uuid4().hex


VERBS = ("train", "tune")


def engine_command(
    verb: str,
    config_path: str | Path | None = None,
    *,
    workspace: str | Path,
    tracking_uri: str | None = None,
    resume_run_id: str | None = None,
    python: str | None = None,
) -> list[str]:
    """The command line of a local job: ``python -m engine VERB --config PATH`` (a run resumes with
    ``--resume ID``), with the workspace and its tracking store made explicit, so the child and the
    app agree."""
    if verb not in VERBS:
        raise ValueError(f"a job runs one of {', '.join(VERBS)}, not {verb!r}")
    if config_path is None and resume_run_id is None:
        resumable = " or a run id to resume" if verb == "train" else ""
        raise ValueError(f"a {verb} command needs a config file{resumable}")
    if resume_run_id is not None and verb != "train":
        raise ValueError("only a training run resumes; a search starts again from its config")
    cmd = [python or sys.executable, "-u", "-m", "engine", verb, "--workspace", str(Path(workspace).resolve())]
    if config_path is not None:
        cmd += ["--config", str(Path(config_path).resolve())]
    if resume_run_id is not None:
        cmd += ["--resume", resume_run_id]
    if tracking_uri:
        cmd += ["--tracking-uri", tracking_uri]
    return cmd


def train_command(
    config_path: str | Path | None = None,
    *,
    workspace: str | Path,
    tracking_uri: str | None = None,
    resume_run_id: str | None = None,
    python: str | None = None,
) -> list[str]:
    """``python -m engine train --config PATH`` (or ``--resume ID``): see :func:`engine_command`."""
    return engine_command(
        "train", config_path, workspace=workspace, tracking_uri=tracking_uri, resume_run_id=resume_run_id, python=python
    )


def tune_command(
    config_path: str | Path, *, workspace: str | Path, tracking_uri: str | None = None, python: str | None = None
) -> list[str]:
    """``python -m engine tune --config PATH``: a search, whose job's run is the search's parent run."""
    return engine_command("tune", config_path, workspace=workspace, tracking_uri=tracking_uri, python=python)


def child_environment(launch_id: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a training child: the launch id, unbuffered output, no network for the hub
    unless the caller's environment allows it."""
    env = dict(os.environ if base is None else base)
    env[LAUNCH_ID_ENV] = launch_id
    env["PYTHONUNBUFFERED"] = "1"
    return env


def find_launched_run(tracking_uri: str, launch_id: str) -> str | None:
    """MLflow run id of the run a launch created (a search's parent run), or None while it has not started logging."""
    from engine.tracking.client import all_experiment_ids, client, search_runs, tag_is

    mlflow_client = client(tracking_uri)
    experiments = all_experiment_ids(mlflow_client)
    if not experiments:
        return None
    # The first run the launch opened: a search's trials inherit the launch id through Ray's
    # workers, and the job's run is the search's own (parent) run, opened before any trial.
    runs = search_runs(
        mlflow_client,
        experiments,
        tag_is(LAUNCH_ID_TAG, launch_id),
        order_by=["attributes.start_time ASC"],
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


# ---------------------------------------------------------------------- status
def effective_status(
    status: str,
    tags: Mapping[str, str],
    start_time_ms: int | None = None,
    now: float | None = None,
    lost_after_s: float = LOST_AFTER_S,
) -> str:
    """MLflow's status, except a RUNNING run with a stale heartbeat is ``LOST``.

    A run without any heartbeat tag (started by an older engine) counts from its start time.
    """
    if status != "RUNNING":
        return status
    now = time.time() if now is None else now
    beat = tags.get(HEARTBEAT_TAG)
    try:
        last = float(beat) if beat is not None else (start_time_ms or 0) / 1000.0
    except ValueError:
        last = (start_time_ms or 0) / 1000.0
    return LOST if now - last > lost_after_s else status


def run_status(tracking_uri: str, run_id: str) -> str:
    """FINISHED, FAILED, KILLED, RUNNING, SCHEDULED or LOST (see :func:`effective_status`)."""
    from engine.tracking.client import client

    run = client(tracking_uri).get_run(run_id)
    return effective_status(run.info.status, run.data.tags, run.info.start_time)


# ---------------------------------------------------------------------- stopping
@dataclass
class StopSequence:
    """The stop protocol as a schedule: ``step(now)`` returns the actions now due, each once.

    ``"request"`` (set the stop tag; repeated until the run id is known), then
    ``"terminate"`` after ``grace_s``, then ``"kill"`` after ``kill_grace_s`` more.
    """

    started: float = field(default_factory=time.monotonic)
    grace_s: float = STOP_GRACE_S
    kill_grace_s: float = KILL_GRACE_S
    requested: bool = False
    terminated: bool = False
    killed: bool = False

    def step(self, now: float | None = None, run_known: bool = True) -> list[str]:
        now = time.monotonic() if now is None else now
        due: list[str] = []
        if not self.requested:
            if run_known:
                self.requested = True
                due.append("request")
            elif now - self.started < self.grace_s:
                return due
        elapsed = now - self.started
        if not self.terminated and elapsed >= self.grace_s:
            self.terminated = True
            due.append("terminate")
        if self.terminated and not self.killed and elapsed >= self.grace_s + self.kill_grace_s:
            self.killed = True
            due.append("kill")
        return due


def request_stop(tracking_uri: str, run_id: str) -> None:
    from engine.tracking.logger import request_stop as set_stop_tag

    set_stop_tag(tracking_uri, run_id)


# ---------------------------------------------------------------------- jobs
class Job(ABC):
    """One training job of any kind; every method is safe to call from a worker thread."""

    kind: str = "abstract"

    def __init__(self, tracking_uri: str, launch_id: str | None = None, run_id: str | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.launch_id = launch_id or new_launch_id()
        self._run_id = run_id

    @property
    def run_id(self) -> str | None:
        """The MLflow run, once the job has created it."""
        if self._run_id is None:
            self._run_id = find_launched_run(self.tracking_uri, self.launch_id)
        return self._run_id

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def alive(self) -> bool:
        """Whether the job's process (or cluster job) still runs."""

    @abstractmethod
    def logs(self) -> str: ...

    @abstractmethod
    def _terminate(self) -> None: ...

    @abstractmethod
    def _kill(self) -> None: ...

    def status(self) -> str:
        """From MLflow once the run exists; before that STARTING, or FAILED if the job ended without a run."""
        run_id = self.run_id
        if run_id is None:
            return "STARTING" if self.alive() else "FAILED"
        return run_status(self.tracking_uri, run_id)

    def stop(
        self,
        *,
        grace_s: float = STOP_GRACE_S,
        kill_grace_s: float = KILL_GRACE_S,
        wait: bool = True,
        poll_s: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> bool:
        """Run the stop protocol; with ``wait`` block until the job is gone. True when it ended."""
        seq = StopSequence(grace_s=grace_s, kill_grace_s=kill_grace_s)
        while self.alive():
            for action in seq.step(run_known=self.run_id is not None):
                if action == "request":
                    request_stop(self.tracking_uri, self.run_id)
                elif action == "terminate":
                    self._terminate()
                else:
                    self._kill()
            if not wait:
                return False
            sleep(poll_s)
        return True


# ---------------------------------------------------------------------- relay
def niced_command(command: list[str], nice: int, python: str | None = None) -> list[str]:
    """``command`` started at ``nice`` more than ours (a lower CPU priority), through a tiny exec."""
    if nice <= 0:
        return list(command)
    exec_niced = "import os, sys; os.nice(int(sys.argv[1])); os.execvp(sys.argv[2], sys.argv[2:])"
    return [python or sys.executable, "-c", exec_niced, str(int(nice)), *command]


def relay_command(command: list[str], log_path: str | Path, python: str | None = None, nice: int = 0) -> list[str]:
    """``command`` run under :func:`relay`: its output goes to ``log_path`` and to our stdout.

    ``nice`` > 0 runs relay and command at a lower CPU priority (the desktop app's runs:
    training then takes every core the app leaves idle, but never delays the app's drawing)."""
    relayed = [
        python or sys.executable,
        "-u",
        "-m",
        "engine.orchestration.jobs",
        "relay",
        str(log_path),
        "--",
        *command,
    ]
    return niced_command(relayed, nice, python=python)


def relay(command: list[str], log_path: str | Path) -> int:
    """Run ``command`` in a process group of its own, copy its output to ``log_path`` and to stdout.

    A launcher that goes away (the app closed with "leave running") only closes our stdout:
    the training keeps going and its log keeps growing.  SIGTERM is passed on to the training
    (which then ends KILLED); killing the group (``os.killpg``) ends both.
    """
    import signal

    if os.getpgrp() != os.getpid():  # a launcher that gave us a session of our own made us its leader already
        os.setpgrp()
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    signal.signal(signal.SIGTERM, lambda *_: child.terminate())
    signal.signal(signal.SIGINT, lambda *_: child.send_signal(signal.SIGINT))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    out = sys.stdout.buffer
    with open(log_path, "ab") as log:
        for chunk in iter(lambda: child.stdout.read1(65536), b""):
            log.write(chunk)
            log.flush()
            if out is not None:
                try:
                    out.write(chunk)
                    out.flush()
                except OSError:  # the launcher is gone; keep the log
                    out = None
    return child.wait()


class LocalJob(Job):
    """``python -m engine train`` (or ``tune``: ``verb``) as a child process of this one (the CLI's
    and the tests' kind; the app runs the same command line under its own process job)."""

    kind = "local"

    def __init__(
        self,
        workspace: str | Path,
        tracking_uri: str,
        config_path: str | Path | None = None,
        resume_run_id: str | None = None,
        log_path: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        verb: str = "train",
    ) -> None:
        super().__init__(tracking_uri, run_id=resume_run_id)
        self.workspace = Path(workspace)
        self.command = engine_command(
            verb, config_path, workspace=workspace, tracking_uri=tracking_uri, resume_run_id=resume_run_id
        )
        self.log_path = Path(log_path) if log_path else self.workspace / "runs" / "launches" / f"{self.launch_id}.log"
        self._env = env
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        if self._process is not None:
            raise RuntimeError("this job was already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as out:  # the child keeps its own handle
            self._process = subprocess.Popen(
                self.command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=child_environment(self.launch_id, self._env),
                cwd=str(self.workspace.resolve()),
            )

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def logs(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def _terminate(self) -> None:
        if self.alive():
            self._process.terminate()

    def _kill(self) -> None:
        if self.alive():
            self._process.kill()

    def wait(self, timeout: float | None = None) -> int:
        return self._process.wait(timeout)


__all__ = [
    "Job",
    "LocalJob",
    "LOST",
    "SEARCH_STOP_GRACE_S",
    "StopSequence",
    "child_environment",
    "effective_status",
    "find_launched_run",
    "niced_command",
    "relay",
    "relay_command",
    "run_status",
    "engine_command",
    "train_command",
    "tune_command",
]


if __name__ == "__main__":  # python -m engine.orchestration.jobs relay LOG -- COMMAND...
    if len(sys.argv) < 5 or sys.argv[1] != "relay" or sys.argv[3] != "--":
        sys.exit("usage: python -m engine.orchestration.jobs relay LOG -- COMMAND...")
    sys.exit(relay(sys.argv[4:], sys.argv[2]))
