"""Closing the app with a search going: "Leave running" lets the search finish on its own, "Stop"
ends it KILLED with the trials it finished. The app is a real process that quits, as in
test_app_leave_running; the job is the Train tab's launcher with the tune verb."""

import os
import subprocess
import sys
import textwrap
import time

import pytest

pytest.importorskip("ray")

from engine.config import RunConfig  # noqa: E402
from tests.conftest import REPO_ROOT  # noqa: E402

APP = textwrap.dedent("""
    import sys
    import time

    from PySide6.QtWidgets import QApplication

    from app.training.process_job import ProcessJob

    workspace, uri, config, choice = sys.argv[1:5]
    app = QApplication([])
    from mlflow import MlflowClient

    MlflowClient(uri).search_experiments()  # the store exists before Tune, as the Train tab opens it
    job = ProcessJob(workspace, uri, config_path=config, verb="tune")
    job.start()
    deadline = time.monotonic() + 240
    while job.run_id is None:  # the search's own run: it is found once its first trial opens a folder
        if not job.alive() or time.monotonic() > deadline:
            print("NO RUN", job.exit_code, "".join(job.log_lines[-20:]), flush=True)
            sys.exit(1)
        app.processEvents()
        time.sleep(0.1)
    if choice == "stop":
        job.stop_at_exit()
    print(job.run_id, job.detach(), flush=True)
    app.quit()
""")


def _close_app(tmp_path, dataset, choice, samples, epochs=1):
    workspace = tmp_path / "ws"
    uri = f"sqlite:///{workspace / 'mlflow.db'}"
    config = RunConfig.from_dict({"task": {"name": "classification"}}).with_overrides(
        {
            "data.path": str(dataset),
            "model.checkpoint": "resnet-tiny",
            "data.image_size": 32,
            "data.num_workers": 0,
            "optim.batch_size": 16,
            "optim.epochs": epochs,
            "workspace": str(workspace),
            "search.num_samples": samples,
            "search.scheduler": "fifo",
            "search.space": {"optim.lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2}},
        }
    )
    script = tmp_path / "quitting_app.py"
    script.write_text(APP)
    done = subprocess.run(
        [sys.executable, str(script), str(workspace), uri, str(config.save(tmp_path / "search.yaml")), choice],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(REPO_ROOT)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    run_id, pid = done.stdout.split()[-2:]
    return uri, run_id, int(pid)


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return "zombie" not in status.read().lower()
    except FileNotFoundError:
        return False


def _wait_gone(pid: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while _running(pid):
        assert time.monotonic() < deadline, "the search's relay is still there"
        time.sleep(0.5)


def _trials(uri, run_id):
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_run(run_id).info.experiment_id])
    return [r for r in runs if r.data.tags.get("mlflow.parentRunId") == run_id]


@pytest.mark.slow
def test_a_search_left_running_finishes_after_the_app_has_gone(tmp_path, sample_dataset):
    from engine.orchestration.jobs import run_status

    uri, run_id, pid = _close_app(tmp_path, sample_dataset, "leave", 2, epochs=30)
    assert run_status(uri, run_id) == "RUNNING"
    _wait_gone(pid, 240)
    assert run_status(uri, run_id) == "FINISHED"
    assert [r.info.status for r in _trials(uri, run_id)] == ["FINISHED"] * 2


@pytest.mark.slow
def test_stop_at_close_ends_the_search_killed_and_keeps_its_finished_trials(tmp_path, sample_dataset):
    from engine.orchestration.jobs import run_status

    uri, run_id, pid = _close_app(tmp_path, sample_dataset, "stop", 40)
    _wait_gone(pid, 180)
    assert run_status(uri, run_id) == "KILLED"
    statuses = [r.info.status for r in _trials(uri, run_id)]
    assert "RUNNING" not in statuses and statuses.count("FINISHED") < 40
