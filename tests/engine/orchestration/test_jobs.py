"""The launcher (engine.orchestration.jobs): command line, stop protocol, lost runs, incremental reading."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.config import RunConfig
from engine.orchestration.jobs import (
    HEARTBEAT_TAG,
    LAUNCH_ID_TAG,
    LOST,
    LocalJob,
    StopSequence,
    effective_status,
    niced_command,
    relay_command,
    run_status,
    train_command,
)


def test_train_command_names_the_config_workspace_and_store(tmp_path):
    cmd = train_command(tmp_path / "run.yaml", workspace=tmp_path, tracking_uri="sqlite:///x.db")
    assert cmd[0] == sys.executable and cmd[cmd.index("-m") + 1 : cmd.index("-m") + 3] == ["engine", "train"]
    assert cmd[cmd.index("--config") + 1] == str((tmp_path / "run.yaml").resolve())
    assert cmd[cmd.index("--workspace") + 1] == str(tmp_path.resolve())
    assert cmd[cmd.index("--tracking-uri") + 1] == "sqlite:///x.db"
    resume = train_command(workspace=tmp_path, resume_run_id="abc")
    assert resume[resume.index("--resume") + 1] == "abc" and "--config" not in resume
    with pytest.raises(ValueError, match="config file or a run id"):
        train_command(workspace=tmp_path)


def test_the_relay_runs_its_command_at_the_niceness_asked_and_keeps_its_output(tmp_path):
    """The app's runs train below the app's CPU priority (so its drawing never waits behind them)."""
    probe = [sys.executable, "-c", "import os; print('niceness', os.nice(0))"]
    base = os.nice(0)
    for asked, expected in ((0, base), (7, min(base + 7, 19))):
        log = tmp_path / f"relay-{asked}.log"
        out = subprocess.run(relay_command(probe, log, nice=asked), capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == f"niceness {expected}"
        assert log.read_text().strip() == f"niceness {expected}"
    assert "--nice" not in relay_command(probe, tmp_path / "x.log")
    niced = subprocess.run(niced_command(probe, 5), capture_output=True, text=True, timeout=60)
    assert niced.stdout.strip() == f"niceness {min(base + 5, 19)}", niced.stderr
    assert niced_command(probe, 0) == probe


def test_stop_sequence_requests_then_terminates_then_kills():
    seq = StopSequence(started=0.0, grace_s=10, kill_grace_s=5)
    assert seq.step(0.0) == ["request"]
    assert seq.step(9.9) == []
    assert seq.step(10.0) == ["terminate"]
    assert seq.step(14.0) == []
    assert seq.step(15.0) == ["kill"]
    assert seq.step(99.0) == []


def test_stop_sequence_waits_for_the_run_before_terminating():
    seq = StopSequence(started=0.0, grace_s=10, kill_grace_s=5)
    assert seq.step(1.0, run_known=False) == []
    assert seq.step(2.0, run_known=True) == ["request"]
    late = StopSequence(started=0.0, grace_s=10, kill_grace_s=5)
    assert late.step(11.0, run_known=False) == ["terminate"]  # never logged: nothing to lose


def test_a_running_run_with_a_stale_heartbeat_is_lost():
    now = 1000.0
    assert effective_status("RUNNING", {HEARTBEAT_TAG: "995"}, now=now) == "RUNNING"
    assert effective_status("RUNNING", {HEARTBEAT_TAG: "900"}, now=now) == LOST
    assert effective_status("RUNNING", {}, start_time_ms=990_000, now=now) == "RUNNING"
    assert effective_status("RUNNING", {}, start_time_ms=100_000, now=now) == LOST
    assert effective_status("KILLED", {HEARTBEAT_TAG: "1"}, now=now) == "KILLED"


def test_metric_reader_returns_only_new_points(tmp_path):
    from engine.tracking.history import MetricReader
    from engine.tracking.logger import RunLogger

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with RunLogger(uri, workspace=tmp_path, flush_interval=60) as run:
        reader = MetricReader(uri, run.run_id)
        for step in range(5):
            run.log_metrics({"train/loss": 1.0 / (step + 1)}, step)
        run.flush()
        first, status, tags = reader.poll()
        assert [p[0] for p in first["train/loss"]] == [0, 1, 2, 3, 4] and status == "RUNNING"
        assert HEARTBEAT_TAG in tags
        assert reader.poll()[0] == {}
        run.log_metrics({"train/loss": 0.1, "lr": 0.5}, 5)
        run.flush()
        second, _, _ = reader.poll()
        assert [p[0] for p in second["train/loss"]] == [5] and second["lr"][0][1] == 0.5
    assert reader.poll()[1] == "FINISHED"


@pytest.mark.slow
def test_a_local_job_is_found_stopped_and_ends_killed_with_a_checkpoint(sample_dataset, tmp_path):
    workspace = tmp_path / "ws"
    uri = f"sqlite:///{workspace / 'mlflow.db'}"
    config = RunConfig.from_dict({"task": {"name": "classification"}}).with_overrides(
        {
            "data.path": str(sample_dataset),
            "model.checkpoint": "resnet-tiny",
            "optim.epochs": 200,
            "optim.batch_size": 8,
            "data.image_size": 32,
            "data.num_workers": 0,
            "workspace": str(workspace),
            "tracking.log_every_n_steps": 1,
        }
    )
    config_file = config.save(workspace / "configs" / "run.yaml")
    job = LocalJob(workspace, uri, config_path=config_file)
    job.start()
    try:
        deadline = time.monotonic() + 120
        while job.run_id is None and job.alive() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert job.run_id is not None, job.logs()
        from mlflow import MlflowClient

        client = MlflowClient(uri)
        assert client.get_run(job.run_id).data.tags[LAUNCH_ID_TAG] == job.launch_id
        while not list((workspace / "runs" / job.run_id / "checkpoints").glob("*.ckpt")) and job.alive():
            assert time.monotonic() < deadline, job.logs()
            time.sleep(0.5)
        assert job.status() == "RUNNING"
        assert job.stop(grace_s=60, kill_grace_s=10)
    finally:
        if job.alive():
            job._kill()
    assert run_status(uri, job.run_id) == "KILLED", job.logs()
    assert list(Path(workspace / "runs" / job.run_id / "checkpoints").glob("*.ckpt"))
    assert job.returncode is not None
