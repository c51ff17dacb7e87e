"""engine.tracking against real (temporary) SQLite MLflow stores.

Creating an MLflow database takes about a second (schema migrations), so most
tests share one store per module and keep apart by run id or experiment name.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow")

from mlflow import MlflowClient  # noqa: E402

from engine.tracking.history import list_runs, metric_history, run_status  # noqa: E402
from engine.tracking.logger import STOP_TAG, RunLogger, request_stop  # noqa: E402
from engine.tracking.store import (  # noqa: E402
    DEFAULT_DB_NAME,
    artifact_location_for,
    get_or_create_experiment,
    resolve_tracking_uri,
)

# No background flush or stop poll unless a test asks for one: keeps tests deterministic.
QUIET = dict(flush_interval=3600, stop_poll_interval=3600)


@pytest.fixture(autouse=True)
def _no_env_uri(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("workspace")


@pytest.fixture(scope="module")
def uri(workspace) -> str:
    uri = resolve_tracking_uri(workspace=workspace)
    MlflowClient(uri).search_experiments()  # create the schema once, up front
    return uri


def wait_for(predicate, timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# ---------------------------------------------------------------------- store
def test_import_does_not_pull_mlflow_or_torch():
    code = (
        "import sys, engine.tracking, engine.tracking.store, engine.tracking.history; "
        "bad = [m for m in ('mlflow', 'torch') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


def test_resolve_explicit_uri_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert resolve_tracking_uri("http://example:5000", tmp_path) == "http://example:5000"
    assert resolve_tracking_uri("sqlite:////data/x.db", tmp_path) == "sqlite:////data/x.db"


def test_resolve_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert resolve_tracking_uri(None, tmp_path) == "http://127.0.0.1:5999"


def test_resolve_workspace_default_is_absolute_sqlite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ws = Path("rel") / "ws"
    got = resolve_tracking_uri(workspace=ws)
    expected = (tmp_path / "rel" / "ws" / DEFAULT_DB_NAME).resolve()
    assert got == "sqlite:///" + expected.as_posix()
    assert Path(got[len("sqlite:///") :]).is_absolute()
    assert expected.parent.is_dir()


def test_resolve_relative_sqlite_is_pinned_to_workspace(tmp_path):
    got = resolve_tracking_uri("sqlite:///runs.db", tmp_path)
    assert got == "sqlite:///" + (tmp_path.resolve() / "runs.db").as_posix()


@pytest.mark.parametrize("bad", ["FOLDER", "file://FOLDER", "./mlruns"])
def test_resolve_rejects_folders(tmp_path, monkeypatch, bad):
    bad = bad.replace("FOLDER", str(tmp_path / "mlruns"))
    with pytest.raises(ValueError, match=r"sqlite:///.*http\(s\)://") as info:
        resolve_tracking_uri(bad, tmp_path)
    assert "Try sqlite:///" in str(info.value)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", bad)  # a bad environment is refused as well
    with pytest.raises(ValueError):
        resolve_tracking_uri(None, tmp_path)


def test_experiment_artifacts_live_in_workspace(uri, workspace):
    client = MlflowClient(uri)
    exp_id = get_or_create_experiment(client, "artifacts-here", workspace)
    assert get_or_create_experiment(client, "artifacts-here", workspace) == exp_id
    assert client.get_experiment(exp_id).artifact_location == artifact_location_for(workspace)
    assert (workspace / "mlartifacts").is_dir()


# ---------------------------------------------------------------------- RunLogger
def test_logs_params_config_and_metrics(uri, workspace):
    with RunLogger(uri, experiment="basic", run_name="first", workspace=workspace, **QUIET) as run:
        run.log_params({"optim.lr": 1e-3, "model.checkpoint": "resnet", "long": "x" * 10_000, "none": None})
        run.log_config("optim:\n  lr: 0.001\n")
        for step in range(20):
            run.log_metrics({"train/loss": 1.0 / (step + 1), "lr": 0.1}, step)
        run.log_metrics({"train/loss": float("nan")}, 20)  # a NaN loss must stay visible
        run.set_tag("lightbox.note", "hello")

    client = MlflowClient(uri)
    got = client.get_run(run.run_id)
    assert got.info.status == "FINISHED"
    assert got.info.run_name == "first"
    assert got.data.params["optim.lr"] == "0.001"
    assert got.data.params["none"] == "None"
    assert 500 <= len(got.data.params["long"]) < 10_000  # truncated to MLflow's limit
    assert got.data.tags["lightbox.note"] == "hello"
    config = Path(client.download_artifacts(run.run_id, "run_config.yaml", str(workspace / "dl")))
    assert config.read_text() == "optim:\n  lr: 0.001\n"
    assert Path(got.info.artifact_uri.removeprefix("file://")).is_relative_to(workspace / "mlartifacts")

    history = metric_history(uri, run.run_id)
    assert set(history) == {"train/loss", "lr"}
    loss = history["train/loss"]
    assert [p[0] for p in loss] == list(range(21))
    assert loss[3][1] == pytest.approx(0.25)
    assert loss[-1][1] != loss[-1][1]  # NaN
    assert all(isinstance(p[2], int) and p[2] > 0 for p in loss)
    assert metric_history(uri, run.run_id, keys=["lr"]).keys() == {"lr"}

    rows = list_runs(uri, experiment="basic")
    assert [r["run_id"] for r in rows] == [run.run_id]
    assert rows[0]["status"] == "FINISHED" and rows[0]["metrics"]["lr"] == 0.1
    # Only the config keys the app shows ("long" and "none" are left out).
    assert rows[0]["params"] == {"optim.lr": "0.001", "model.checkpoint": "resnet"}
    assert list_runs(uri, experiment="basic", param_keys=["optim.lr"])[0]["params"] == {"optim.lr": "0.001"}
    assert rows[0]["tags"]["lightbox.note"] == "hello"
    assert list_runs(uri, experiment="no-such-experiment") == []


def test_metrics_are_batched_off_the_hot_path(uri, monkeypatch):
    calls: list[int] = []
    original = MlflowClient.log_batch

    def counting(self, run_id, metrics=(), params=(), tags=(), synchronous=None):
        if metrics:
            calls.append(len(metrics))
        return original(self, run_id, metrics=metrics, params=params, tags=tags, synchronous=synchronous)

    monkeypatch.setattr(MlflowClient, "log_batch", counting)
    run = RunLogger(uri, experiment="batched", **QUIET)
    started = time.perf_counter()
    for step in range(500):
        run.log_metrics({"a": step, "b": 2.0, "c": 3.0}, step)
    assert time.perf_counter() - started < 0.5  # ~11 ms per write would be 5+ s
    assert calls == []  # log_metrics never touched the store
    assert run.pending == 1500
    assert run.flush()
    assert calls == [1000, 500]  # MLflow's per-call limit, not one call per metric
    run.finish()
    assert len(metric_history(uri, run.run_id, ["a"])["a"]) == 500


def test_background_thread_flushes(uri):
    run = RunLogger(uri, experiment="background", flush_interval=0.1, stop_poll_interval=3600)
    for step in range(10):
        run.log_metrics({"x": step}, step)
    assert wait_for(lambda: run.pending == 0, timeout=5)
    assert len(metric_history(uri, run.run_id, ["x"])["x"]) == 10  # visible before finish
    run.finish()


def test_invalid_metric_name_is_refused_at_once(uri):
    run = RunLogger(uri, experiment="names", **QUIET)
    with pytest.raises(ValueError, match="metric name"):
        run.log_metrics({"bad//name": 1.0}, 0)
    run.finish()


@pytest.mark.parametrize(
    ("exc", "status"), [(None, "FINISHED"), (RuntimeError, "FAILED"), (KeyboardInterrupt, "KILLED")]
)
def test_context_manager_status(uri, exc, status):
    holder = {}
    try:
        with RunLogger(uri, experiment="status", **QUIET) as run:
            holder["run"] = run
            run.log_metrics({"x": 1.0}, 0)
            if exc is not None:
                raise exc("boom")
    except (RuntimeError, KeyboardInterrupt):
        pass
    run = holder["run"]
    assert run_status(uri, run.run_id) == status
    assert metric_history(uri, run.run_id, ["x"])["x"][0][:2] == (0, 1.0)  # flushed before ending


def test_finish_is_idempotent(uri):
    with RunLogger(uri, experiment="status", **QUIET) as run:
        run.finish("KILLED")
        run.finish("FAILED")  # ignored: the first status stands
    assert run_status(uri, run.run_id) == "KILLED"
    with pytest.raises(ValueError):
        run.finish("DONE")


def test_stop_request_seen_within_two_polls(uri):
    poll = 0.2
    run = RunLogger(uri, experiment="stop", flush_interval=3600, stop_poll_interval=poll)
    assert not run.stop_requested()
    request_stop(uri, run.run_id)  # the app side: its own client
    started = time.monotonic()
    assert wait_for(run.stop_requested, timeout=2 * poll + 0.5)
    assert time.monotonic() - started < 2 * poll + 0.5
    run.finish("KILLED")
    assert MlflowClient(uri).get_run(run.run_id).data.tags[STOP_TAG] == "true"


def test_resume_reopens_the_same_run(uri, workspace):
    with RunLogger(uri, experiment="resume", workspace=workspace, **QUIET) as first:
        first.log_params({"a": 1, "b": "x"})
        for step in range(5):
            first.log_metrics({"loss": 10 - step}, step)
        first.finish("KILLED")
    request_stop(uri, first.run_id)  # an old stop request must not stop the resumed run

    second = RunLogger(uri, run_id=first.run_id, workspace=workspace, stop_poll_interval=0.05, flush_interval=3600)
    assert second.run_id == first.run_id and second.experiment_id == first.experiment_id
    assert run_status(uri, first.run_id) == "RUNNING"
    assert list_runs(uri, experiment="resume")[0]["end_time"] is None
    second.log_params({"a": 1, "b": "x", "c": 3.5})  # same values again: no error
    with pytest.raises(mlflow.exceptions.MlflowException):
        second.log_params({"a": 2})  # MLflow never lets a param change
    for step in range(5, 10):
        second.log_metrics({"loss": 10 - step}, step)
    time.sleep(0.2)
    assert not second.stop_requested()
    second.finish()

    got = MlflowClient(uri).get_run(first.run_id)
    assert got.info.status == "FINISHED"
    assert got.data.params == {"a": "1", "b": "x", "c": "3.5"}
    assert [p[0] for p in metric_history(uri, first.run_id, ["loss"])["loss"]] == list(range(10))
    assert len(list_runs(uri, experiment="resume")) == 1


def test_failing_store_loses_no_metrics(uri, monkeypatch):
    original = MlflowClient.log_batch
    failures = {"left": 1}

    def flaky(self, run_id, metrics=(), params=(), tags=(), synchronous=None):
        if metrics and failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("store unreachable")
        return original(self, run_id, metrics=metrics, params=params, tags=tags, synchronous=synchronous)

    monkeypatch.setattr(MlflowClient, "log_batch", flaky)

    # Explicit flushes: the failure is reported and the metrics stay queued.
    run = RunLogger(uri, experiment="flaky", **QUIET)
    for step in range(30):
        run.log_metrics({"m": step}, step)
    assert run.flush() is False
    assert "store unreachable" in run.last_error
    assert run.pending == 30
    assert run.flush() is True and run.last_error is None
    run.finish()
    assert [p[1] for p in metric_history(uri, run.run_id, ["m"])["m"]] == [float(s) for s in range(30)]

    # The background thread: it survives the error and retries at the next interval.
    failures["left"] = 1
    run = RunLogger(uri, experiment="flaky", flush_interval=0.05, stop_poll_interval=3600)
    for step in range(30):
        run.log_metrics({"m": step}, step)
    assert wait_for(lambda: failures["left"] == 0 and run.pending == 0, timeout=5)
    assert run._thread.is_alive()
    run.finish()
    assert [p[0] for p in metric_history(uri, run.run_id, ["m"])["m"]] == list(range(30))


# ---------------------------------------------------------------------- Lightning
def _tiny_fit(tmp_path, run, max_steps=30, step_delay=0.0, on_step=None):
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint
    from torch import nn
    from torch.utils.data import DataLoader, Dataset

    from engine.tracking.callback import MlflowCallback

    class Points(Dataset):
        def __init__(self, n):
            g = torch.Generator().manual_seed(0)
            self.x = torch.randn(n, 4, generator=g)
            self.y = self.x.sum(1, keepdim=True)

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return {"pixel_values": self.x[i], "labels": self.y[i]}

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))

        def training_step(self, batch, batch_idx):
            if on_step is not None:
                on_step(self.global_step)
            if step_delay:
                time.sleep(step_delay)
            loss = nn.functional.mse_loss(self.net(batch["pixel_values"]), batch["labels"])
            return {"loss": loss}

        def validation_step(self, batch, batch_idx):
            loss = nn.functional.mse_loss(self.net(batch["pixel_values"]), batch["labels"])
            self.log("val/loss", loss)
            self.log("val/score", 1.0 / (1.0 + loss))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    callback = MlflowCallback(run, log_every_n_steps=5)
    best = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="val/loss", mode="min", save_top_k=1)
    trainer = pl.Trainer(
        max_steps=max_steps,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback, best],
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
    )
    trainer.fit(Tiny(), DataLoader(Points(64), batch_size=8), DataLoader(Points(16), batch_size=8))
    return trainer, callback, best


def test_callback_logs_a_real_lightning_run(uri, tmp_path):
    run = RunLogger(uri, experiment="lightning", **QUIET)
    trainer, callback, best = _tiny_fit(tmp_path, run, max_steps=30)
    assert trainer.global_step == 30 and not callback.stopped_by_request
    run.finish(callback.final_status)

    history = metric_history(uri, run.run_id)
    # Every 5 steps, plus the first step and each epoch's last (8 batches per epoch).
    assert [p[0] for p in history["train/loss"]] == [1, 5, 8, 10, 15, 16, 20, 24, 25, 30]
    assert {"lr", "train/throughput_img_s", "val/loss", "val/score", "epoch", "best_score"} <= set(history)
    assert history["lr"][0][1] == pytest.approx(0.01)
    assert all(v > 0 for _, v, _ in history["train/throughput_img_s"])
    # 8 batches per epoch; max_steps ends epoch 3 before its validation.
    assert [p[0] for p in history["val/loss"]] == [8, 16, 24]
    assert [p[1] for p in history["epoch"]] == [0.0, 1.0, 2.0]
    tags = MlflowClient(uri).get_run(run.run_id).data.tags
    assert tags["lightbox.best_checkpoint"] == best.best_model_path
    assert tags["lightbox.best_monitor"] == "val/loss"
    assert run_status(uri, run.run_id) == "FINISHED"


def test_stop_request_stops_training_early(uri, tmp_path):
    run = RunLogger(uri, experiment="lightning", flush_interval=0.2, stop_poll_interval=0.05)

    def app_presses_stop(step):
        if step == 3:
            request_stop(uri, run.run_id)

    trainer, callback, _ = _tiny_fit(tmp_path, run, max_steps=400, step_delay=0.01, on_step=app_presses_stop)
    assert callback.stopped_by_request
    assert trainer.global_step < 100
    run.finish(callback.final_status)
    got = MlflowClient(uri).get_run(run.run_id)
    assert got.info.status == "KILLED"
    assert got.data.tags["lightbox.stopped_by_request"] == "true"


def test_exception_in_training_marks_run_failed(uri, tmp_path):
    run = RunLogger(uri, experiment="lightning", **QUIET)

    def crash(step):
        if step == 7:
            raise RuntimeError("CUDA error (simulated)")

    with pytest.raises(RuntimeError, match="simulated"):
        _tiny_fit(tmp_path, run, on_step=crash)
    assert run.finished
    assert run_status(uri, run.run_id) == "FAILED"
    assert [p[0] for p in metric_history(uri, run.run_id, ["train/loss"])["train/loss"]] == [1, 5]


# ---------------------------------------------------------------------- a real server
@pytest.mark.skipif(
    not os.environ.get("LIGHTBOX_TEST_MLFLOW_URI"),
    reason="set LIGHTBOX_TEST_MLFLOW_URI=http://127.0.0.1:PORT to test against mlflow server",
)
def test_against_mlflow_server(tmp_path):
    server = os.environ["LIGHTBOX_TEST_MLFLOW_URI"]
    experiment = f"lightbox-test-{uuid.uuid4().hex[:8]}"
    with RunLogger(server, experiment=experiment, flush_interval=0.2, stop_poll_interval=0.2) as run:
        run.log_params({"optim.lr": 0.001})
        run.log_config("optim:\n  lr: 0.001\n")
        for step in range(50):
            run.log_metrics({"train/loss": 1.0 / (step + 1)}, step)
        request_stop(server, run.run_id)
        assert wait_for(run.stop_requested, timeout=5)

    assert run_status(server, run.run_id) == "FINISHED"
    assert [p[0] for p in metric_history(server, run.run_id)["train/loss"]] == list(range(50))
    rows = list_runs(server, experiment=experiment, param_keys=["optim.lr"])
    assert rows[0]["run_id"] == run.run_id and rows[0]["params"] == {"optim.lr": "0.001"}
    config = MlflowClient(server).download_artifacts(run.run_id, "run_config.yaml", str(tmp_path))
    assert Path(config).read_text() == "optim:\n  lr: 0.001\n"
