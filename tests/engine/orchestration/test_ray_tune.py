"""Ray Tune search over the real training path: trials are MLflow runs under one parent."""

import json

import pytest

pytest.importorskip("ray")
pytest.importorskip("mlflow")

from mlflow.tracking import MlflowClient  # noqa: E402

from engine.cli import main  # noqa: E402
from engine.orchestration.tune import SearchError, to_tune_space  # noqa: E402
from engine.tracking.tags import EARLY_STOPPED_TAG, PARENT_RUN_TAG, SEARCH_TAG  # noqa: E402
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray for this module's searches (the search starts it), shut down at the end."""
    import ray

    yield
    ray.shutdown()


def test_config_distributions_become_tune_domains():
    from ray.tune.search.sample import Categorical, Float, Integer

    space = to_tune_space(
        {
            "lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2},
            "optim.weight_decay": {"type": "uniform", "low": 0.0, "high": 0.1},
            "optim.batch_size": {"type": "choice", "values": [8, 16]},
            "optim.seed": {"type": "randint", "low": 0, "high": 5},
            "data.image_size": {"type": "grid", "values": [32, 48]},
        }
    )
    assert isinstance(space["optim.lr"], Float) and isinstance(space["optim.weight_decay"], Float)
    assert isinstance(space["optim.batch_size"], Categorical) and isinstance(space["optim.seed"], Integer)
    assert space["data.image_size"] == {"grid_search": [32, 48]}


def test_bad_search_space_names_the_entry():
    with pytest.raises(SearchError, match="'optim.nope'"):
        to_tune_space({"optim.nope": {"type": "uniform", "low": 0, "high": 1}})
    with pytest.raises(SearchError, match="'lr'"):
        to_tune_space({"lr": {"type": "loguniform", "low": 0, "high": 1}})
    with pytest.raises(SearchError, match="empty"):
        to_tune_space({})


def test_an_unreachable_tracking_server_or_cluster_is_a_clear_error_within_10_s(sample_dataset, tmp_path, capsys):
    import socket
    import time

    import ray

    ray.shutdown()  # a Ray this process already started would be used instead of the address
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nobody answers there
    config = tmp_path / "run.yaml"
    config.write_text(f"""
task: {{name: classification}}
data: {{path: {sample_dataset}}}
workspace: {tmp_path / "ws"}
search: {{space: {{optim.lr: {{type: grid, values: [0.001]}}}}}}
""")
    for flag, value, message in [
        ("--tracking-uri", f"http://127.0.0.1:{port}", "cannot reach the MLflow tracking server at"),
        ("--ray-address", f"127.0.0.1:{port}", "cannot reach the Ray cluster at"),
    ]:
        start = time.monotonic()
        assert main(["tune", "--config", str(config), flag, value]) == 2
        assert time.monotonic() - start < 10, flag
        assert f"{message} {value}" in capsys.readouterr().err
        assert not (tmp_path / "ws" / "runs").exists()  # nothing trained, nothing half-written


@pytest.mark.slow
def test_tune_cli_asha_stops_weak_trials_and_tags_every_trial(sample_dataset, tmp_path, capsys, ray_local):
    config = tmp_path / "run.yaml"
    config.write_text(f"""
task: {{name: classification}}
data: {{path: {sample_dataset}, image_size: 48, num_workers: 0}}
model: {{checkpoint: resnet-tiny}}
optim: {{epochs: 2, batch_size: 16, lr: 0.003}}
workspace: {tmp_path / "ws"}
search:
  num_samples: 1
  max_concurrent: 1
  grace_period: 1
  reduction_factor: 2
  space:
    optim.lr: {{type: grid, values: [0.003, 1.0e-7, 1.0e-7, 1.0e-7]}}
""")
    code = main(["tune", "--config", str(config)])
    out = capsys.readouterr().out
    assert code == 0, out[-2000:]
    summary = json.loads(out.strip().splitlines()[-1])
    trials = summary["trials"]
    assert len(trials) == 4
    statuses = [t["status"] for t in trials]
    assert set(statuses) <= {"FINISHED", "EARLY_STOPPED"}, statuses
    assert "EARLY_STOPPED" in statuses, statuses
    assert summary["best_config"]["optim.lr"] == pytest.approx(0.003)
    assert summary["best_metrics"]["val/loss"] == min(t["metrics"]["val/loss"] for t in trials)

    client = MlflowClient(summary["tracking_uri"])
    parent = client.get_run(summary["parent_run_id"])
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["lightbox.best_run_id"] == summary["best_run_id"]
    for trial in trials:
        run = client.get_run(trial["run_id"])
        assert run.data.tags[PARENT_RUN_TAG] == summary["parent_run_id"]
        assert run.info.status == "FINISHED"  # an ASHA stop is not a failure
        assert (run.data.tags.get(EARLY_STOPPED_TAG) == "true") == (trial["status"] == "EARLY_STOPPED")
        assert trial["checkpoint"], trial  # Tune kept a checkpoint for every trial
        assert "val/loss" in run.data.metrics


@pytest.mark.slow
def test_seed_api_returns_the_best_config(sample_dataset, tmp_path, ray_local):
    from ray import tune

    from engine.orchestration.task_runner import run_hyperparameter_search

    result = run_hyperparameter_search(
        task="classification",
        model_ckpt="resnet-tiny",
        search_space={"lr": tune.loguniform(1e-4, 1e-2), "weight_decay": tune.loguniform(1e-5, 1e-3)},
        num_samples=2,
        data=str(sample_dataset),
        scheduler="fifo",
        max_concurrent=2,
        config_overrides={
            "optim.epochs": 1,
            "optim.batch_size": 16,
            "data.image_size": 32,
            "data.num_workers": 0,
            "workspace": str(tmp_path / "ws"),
        },
    )
    assert result is not None and result.status == "FINISHED"
    assert set(result.best_config) == {"optim.lr", "optim.weight_decay"}
    assert 1e-4 <= result.best_config["optim.lr"] <= 1e-2
    assert result.best_run_id in {t["run_id"] for t in result.trials}
    assert [t["status"] for t in result.trials] == ["FINISHED", "FINISHED"]


def test_tune_without_a_search_section_is_a_clear_error(sample_dataset, tmp_path, capsys):
    code = main(
        ["tune", "--data", str(sample_dataset), "--task", "classification", "--workspace", str(tmp_path / "ws")]
    )
    assert code == 2
    assert "no search.space" in capsys.readouterr().err


@pytest.mark.slow
def test_a_stop_request_on_the_parent_keeps_the_finished_trials(sample_dataset, tmp_path, ray_local):
    import threading
    import time

    from engine.config import RunConfig
    from engine.orchestration.tune import search
    from engine.tracking.logger import request_stop

    workspace = tmp_path / "ws"
    uri = f"sqlite:///{workspace / 'mlflow.db'}"
    config = RunConfig.from_dict({"task": {"name": "classification"}}).with_overrides(
        {
            "data.path": str(sample_dataset),
            "model.checkpoint": "resnet-tiny",
            "optim.epochs": 1,
            "optim.batch_size": 16,
            "data.image_size": 32,
            "data.num_workers": 0,
            "workspace": str(workspace),
            "search.scheduler": "fifo",
            "search.max_concurrent": 1,
            "search.num_samples": 40,
            "search.space": {"optim.lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2}},
        }
    )
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(result=search(config, tracking_uri=uri)))
    worker.start()
    client = None
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # stop once the first trial has finished
        time.sleep(1)
        if not (workspace / "mlflow.db").is_file():
            continue
        client = client or MlflowClient(uri)
        runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
        parents = [r for r in runs if r.data.tags.get(SEARCH_TAG) == "true"]
        if parents and any(r.info.status == "FINISHED" and r.data.tags.get(PARENT_RUN_TAG) for r in runs):
            request_stop(uri, parents[0].info.run_id)
            break
    worker.join(timeout=240)
    result = outcome["result"]
    assert result.status == "KILLED"
    statuses = [t["status"] for t in result.trials]
    # Warm trial actors finish a trial in about a second: the stop comes a few trials later (12 of 12
    # had finished once on a loaded CI machine, so the search is long enough that only a stop ends it).
    assert "FINISHED" in statuses and len([s for s in statuses if s == "FINISHED"]) < 40, statuses
    assert result.best_run_id in {t["run_id"] for t in result.trials if t["status"] == "FINISHED"}
    assert client.get_run(result.parent_run_id).info.status == "KILLED"


@pytest.mark.slow
def test_ctrl_c_on_lightbox_tune_keeps_and_reports_the_finished_trials(sample_dataset, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    workspace = tmp_path / "ws"
    config = tmp_path / "run.yaml"
    config.write_text(f"""
task: {{name: classification}}
data: {{path: {sample_dataset}, image_size: 32, num_workers: 0}}
model: {{checkpoint: resnet-tiny}}
optim: {{epochs: 1, batch_size: 16}}
workspace: {workspace}
search: {{num_samples: 40, scheduler: fifo, space: {{optim.lr: {{type: loguniform, low: 1.0e-4, high: 1.0e-2}}}}}}
""")
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "tune", "--config", str(config)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while len(list(workspace.glob("runs/*/checkpoints/last.ckpt"))) < 2:  # two trials done
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3  # stopped
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["status"] == "KILLED"
    finished = [t for t in summary["trials"] if t["status"] == "FINISHED"]
    assert 2 <= len(finished) < 40 and summary["best_run_id"] in {t["run_id"] for t in finished}
    client = MlflowClient(summary["tracking_uri"])
    assert client.get_run(summary["parent_run_id"]).info.status == "KILLED"
    assert all(client.get_run(t["run_id"]).info.status == "FINISHED" for t in finished)


@pytest.mark.slow
def test_trials_of_ray_train_runs_report_to_tune_under_their_parent(sample_dataset, tmp_path, ray_local):
    import os

    from engine.config import RunConfig
    from engine.orchestration.tune import search

    workspace = tmp_path / "ws"
    config = RunConfig.from_dict({"task": {"name": "classification"}}).with_overrides(
        {
            "data.path": str(sample_dataset),
            "model.checkpoint": "resnet-tiny",
            "optim.epochs": 1,
            "optim.batch_size": 8,
            "data.image_size": 32,
            "data.num_workers": 0,
            "workspace": str(workspace),
            "compute.strategy": "ray",
            "compute.num_workers": 2,
            "search.scheduler": "fifo",
            "search.num_samples": 1,
            "search.space": {"optim.lr": {"type": "grid", "values": [0.003]}},
        }
    )
    result = search(config)
    (trial,) = result.trials
    assert result.status == "FINISHED" and trial["status"] == "FINISHED", trial
    assert "val/loss" in trial["metrics"] and trial["checkpoint"]  # the workers' reports reached Tune
    run = MlflowClient(result.tracking_uri).get_run(trial["run_id"])
    assert run.data.tags[PARENT_RUN_TAG] == result.parent_run_id and run.data.tags["lightbox.strategy"] == "ray"
    assert run.info.status == "FINISHED"
    assert os.path.isfile(workspace / "runs" / trial["run_id"] / "checkpoints" / "last.ckpt")
