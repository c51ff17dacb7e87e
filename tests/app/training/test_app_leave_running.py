"""Closing the app with a run going: "Leave running" keeps it training, "Stop" ends it KILLED.

The app is a real process here (a small script driving the Train tab's job), and it exits
as the app does, so the test sees what a user sees after quitting: the run outlives the
app, keeps its log growing and is found RUNNING, or ends KILLED with its checkpoint.
"""

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from engine.config import RunConfig
from tests.conftest import REPO_ROOT

APP = textwrap.dedent("""
    import sys
    import time

    from PySide6.QtWidgets import QApplication

    from app.training.process_job import ProcessJob

    workspace, uri, config, choice = sys.argv[1:5]
    app = QApplication([])
    from mlflow import MlflowClient

    MlflowClient(uri).search_experiments()  # the store exists before Train, as the Train tab opens it
    job = ProcessJob(workspace, uri, config_path=config)
    job.start()
    deadline = time.monotonic() + 240
    while job.run_id is None or not list(
            (__import__("pathlib").Path(workspace) / "runs" / job.run_id / "checkpoints").glob("*.ckpt")):
        if not job.alive() or time.monotonic() > deadline:
            print("NO RUN", job.exit_code, "".join(job.log_lines[-20:]), flush=True)
            sys.exit(1)
        app.processEvents()
        time.sleep(0.1)
    if choice == "stop":
        job.stop_at_exit()
    print(job.run_id, job.detach(), flush=True)
    app.quit()  # the app ends here, as after the close dialog
""")


def _start_app(tmp_path, dataset, choice):
    workspace = tmp_path / "ws"
    uri = f"sqlite:///{workspace / 'mlflow.db'}"
    config = RunConfig.from_dict({"task": {"name": "classification"}}).with_overrides(
        {
            "data.path": str(dataset),
            "model.checkpoint": "resnet-tiny",
            "data.image_size": 32,
            "data.num_workers": 0,
            "optim.batch_size": 8,
            "optim.epochs": 500,
            "optim.lr": 1e-3,
            "workspace": str(workspace),
        }
    )
    path = config.save(tmp_path / "run.yaml")
    script = tmp_path / "quitting_app.py"
    script.write_text(APP)
    done = subprocess.run(
        [sys.executable, str(script), str(workspace), uri, str(path), choice],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
        env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(REPO_ROOT)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    run_id, pid = done.stdout.split()[-2:]
    return workspace, uri, run_id, int(pid)


def _alive(pid: int) -> bool:
    try:
        import os

        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def _wait_for(predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(0.5)


@pytest.mark.slow
def test_a_run_left_running_outlives_the_app_and_is_found_running(tmp_path, sample_dataset):
    from engine.orchestration.jobs import request_stop, run_status

    workspace, uri, run_id, pid = _start_app(tmp_path, sample_dataset, "leave")
    log = next((workspace / "runs" / "launches").glob("*.log"))
    size = log.stat().st_size
    time.sleep(12)  # the trainer died about 10 s after the app before
    assert _alive(pid), "the relay did not outlive the app"
    assert run_status(uri, run_id) == "RUNNING"
    _wait_for(lambda: log.stat().st_size > size, 60, "the run's log to keep growing")
    request_stop(uri, run_id)  # as Stop from the reopened app's runs table
    _wait_for(lambda: not _alive(pid), 120, "the stopped run to end")
    assert run_status(uri, run_id) == "KILLED"
    assert list((workspace / "runs" / run_id / "checkpoints").glob("*.ckpt"))


@pytest.mark.slow
def test_stop_at_close_ends_the_run_killed_with_its_checkpoint(tmp_path, sample_dataset):
    from engine.orchestration.jobs import run_status

    workspace, uri, run_id, pid = _start_app(tmp_path, sample_dataset, "stop")
    _wait_for(lambda: not _alive(pid), 120, "the run to stop after the app closed")
    assert run_status(uri, run_id) == "KILLED"  # it ended FAILED: the app's exit killed it mid-stop
    assert list((workspace / "runs" / run_id / "checkpoints").glob("*.ckpt"))
