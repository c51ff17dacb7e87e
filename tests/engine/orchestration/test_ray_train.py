"""Ray Train data parallel: gradients are averaged across workers; one MLflow run, logged by rank 0."""

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("ray")
pytest.importorskip("mlflow")

import torch  # noqa: E402

from tests.conftest import REPO_ROOT

ROOT = REPO_ROOT
INPUTS = torch.arange(32, dtype=torch.float32).reshape(8, 4) / 32
TARGETS = INPUTS.sum(dim=1, keepdim=True) * 0.5 + 0.1


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        configure_logging=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}},
    )
    yield
    ray.shutdown()


def _toy_module():
    import lightning.pytorch as pl

    class Toy(pl.LightningModule):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return torch.nn.functional.mse_loss(self.layer(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.5)

    return Toy()


def _toy_worker(cfg):
    import lightning.pytorch as pl
    import ray.train
    from ray.train.lightning import prepare_trainer
    from torch.utils.data import DataLoader, TensorDataset

    from engine.orchestration.ray_worker import ray_trainer_settings

    module = _toy_module()
    per_worker = len(INPUTS) // ray.train.get_context().get_world_size()
    loader = DataLoader(TensorDataset(INPUTS, TARGETS), batch_size=per_worker, shuffle=False)
    trainer = prepare_trainer(pl.Trainer(max_steps=3, **ray_trainer_settings([])))
    trainer.fit(module, train_dataloaders=loader)
    if ray.train.get_context().get_world_rank() == 0:
        torch.save(module.layer.state_dict(), cfg["out"])


@pytest.mark.slow
def test_two_workers_give_the_weights_of_one_process_on_the_combined_batch(ray_cluster, tmp_path):
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    out = tmp_path / "weights.pt"
    TorchTrainer(
        _toy_worker,
        train_loop_config={"out": str(out)},
        scaling_config=ScalingConfig(num_workers=2),
        run_config=RunConfig(storage_path=str(tmp_path / "ray"), name="toy"),
    ).fit()
    distributed = torch.load(out)

    reference = _toy_module()  # one process, the whole batch of 8 in every step
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.5)
    for _ in range(3):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(reference.layer(INPUTS), TARGETS).backward()
        optimizer.step()
    untrained = _toy_module().layer.weight
    assert not torch.allclose(reference.layer.weight, untrained)
    assert torch.allclose(distributed["weight"], reference.layer.weight, atol=1e-5)
    assert torch.allclose(distributed["bias"], reference.layer.bias, atol=1e-5)


def _kill_once_callback(marker: Path, starts: Path):
    """Rank 1 kills its own process at step 3 (epoch 2's first batch), once; every start's step is noted."""
    import signal
    import time

    import lightning.pytorch as pl

    class KillWorkerOnce(pl.Callback):
        def on_train_start(self, trainer, pl_module):
            if trainer.global_rank == 0:
                with open(starts, "a") as out:
                    out.write(f"{trainer.global_step}\n")

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.global_rank == 1 and trainer.global_step == 3 and not marker.exists():
                marker.touch()
                # The controller collects epoch 1's checkpoint at its next poll (every 2 s): let it.
                time.sleep(8)
                os.kill(os.getpid(), signal.SIGKILL)

    return KillWorkerOnce()


@pytest.mark.slow
def test_strategy_ray_trains_into_one_mlflow_run_and_a_killed_worker_resumes_it(ray_cluster, sample_dataset, tmp_path):
    from mlflow.tracking import MlflowClient

    from engine.config import RunConfig
    from engine.orchestration.ray_train import train_distributed

    config = RunConfig.from_dict({"task": {"name": "classification"}}).with_overrides(
        {
            "data.path": str(sample_dataset),
            "model.checkpoint": "resnet-tiny",
            "optim.epochs": 2,
            "optim.batch_size": 8,
            "data.image_size": 32,
            "data.num_workers": 0,
            "workspace": str(tmp_path / "ws"),
            "compute.strategy": "ray",
            "compute.num_workers": 2,
            "tracking.log_every_n_steps": 1,
        }
    )
    marker, starts = tmp_path / "killed", tmp_path / "starts"
    result = train_distributed(config, callbacks=[_kill_once_callback(marker, starts)])
    assert result.status == "FINISHED" and result.last_checkpoint and os.path.isfile(result.last_checkpoint)
    assert marker.exists()
    # The group restarted from the checkpoint of epoch 1 (3 steps), not from scratch.
    assert starts.read_text().split() == ["0", "3"]
    client = MlflowClient(result.tracking_uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["lightbox.strategy"] == "ray"
    assert len(client.search_runs([run.info.experiment_id])) == 1  # the restart logged into the same run
    steps = [m.step for m in client.get_metric_history(result.run_id, "train/loss")]
    assert steps and len(steps) == len(set(steps)), steps  # rank 0 alone logs
    # 48 training images, 8 per worker and step on 2 workers: 3 steps an epoch.
    assert max(steps) == 6
    assert "val/loss" in run.data.metrics


def _ray_config(sample_dataset, workspace, **overrides):
    from engine.config import RunConfig

    return RunConfig.from_dict({"task": {"name": overrides.pop("task", "classification")}}).with_overrides(
        {
            "data.path": str(sample_dataset),
            "model.checkpoint": "resnet-tiny",
            "optim.epochs": 2,
            "optim.lr": 3e-3,
            "optim.batch_size": 8,
            "data.image_size": 32,
            "data.num_workers": 0,
            "workspace": str(workspace),
            "compute.strategy": "ray",
            "compute.num_workers": 2,
            "tracking.log_every_n_steps": 1,
            **overrides,
        }
    )


@pytest.mark.slow
def test_a_ray_run_is_evaluated_exported_and_predicted_like_a_local_one(ray_cluster, sample_dataset, tmp_path):
    import json

    from mlflow.tracking import MlflowClient

    from engine.export.build import export_run
    from engine.orchestration.evaluate import evaluate_run, predict_run
    from engine.orchestration.ray_train import train_distributed

    workspace = tmp_path / "ws"
    result = train_distributed(_ray_config(sample_dataset, workspace))
    assert result.status == "FINISHED"
    folder = workspace / "runs" / result.run_id / "checkpoints"
    (best,) = folder.glob("best-*.ckpt")  # the best by the task's monitor, named as a local run names it
    assert result.best_checkpoint == str(best) and result.last_checkpoint == str(folder / "last.ckpt")
    assert (folder / "last.ckpt").is_file()
    run = MlflowClient(result.tracking_uri).get_run(result.run_id)
    assert run.data.tags["lightbox.best_checkpoint"] == str(best)
    assert run.data.tags["lightbox.best_monitor"] == "val/accuracy"
    # The copy is the checkpoint whose score was best among the epochs Ray saw.
    accuracies = [m.value for m in MlflowClient(result.tracking_uri).get_metric_history(result.run_id, "val/accuracy")]
    assert len(accuracies) == 2 and run.data.metrics["best_score"] == max(accuracies)

    evaluated = evaluate_run(result.run_id, workspace=str(workspace))
    assert evaluated["checkpoint"] == str(best) and "val/accuracy" in evaluated["metrics"]
    manifest = export_run(
        result.run_id, tmp_path / "export", formats="onnx", workspace=str(workspace), say=lambda _: None
    )
    assert (tmp_path / "export" / "model.onnx").is_file() and "best-" in manifest["source"]["checkpoint"]
    out = predict_run(result.run_id, sample_dataset / "val", tmp_path / "predictions.json", workspace=str(workspace))
    predictions = json.loads(out.read_text())["predictions"]
    assert len(predictions) == len(list((sample_dataset / "val").glob("*.*")))


@pytest.mark.slow
def test_a_stop_request_ends_a_ray_run_killed_with_exit_3_and_its_checkpoints(
    ray_cluster, sample_dataset, tmp_path, capsys
):
    import threading
    import time

    from mlflow.tracking import MlflowClient

    from engine.cli import main
    from engine.tracking.logger import request_stop

    workspace = tmp_path / "ws"
    config_file = tmp_path / "run.yaml"
    _ray_config(sample_dataset, workspace, **{"optim.epochs": 200}).save(config_file)
    uri = f"sqlite:///{workspace / 'mlflow.db'}"
    asked = {}

    def stop_once_it_trains():  # what the app does: a stop tag on the run, once it logs
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not asked:
            time.sleep(1)
            if not (workspace / "mlflow.db").is_file():
                continue
            client = MlflowClient(uri)
            for run in client.search_runs([e.experiment_id for e in client.search_experiments()]):
                if run.info.status == "RUNNING" and client.get_metric_history(run.info.run_id, "val/loss"):
                    request_stop(uri, run.info.run_id)
                    asked["run_id"] = run.info.run_id

    stopper = threading.Thread(target=stop_once_it_trains, daemon=True)
    stopper.start()
    code = main(["train", "--config", str(config_file), "--tracking-uri", uri, "--no-progress"])
    stopper.join(timeout=5)
    out = capsys.readouterr().out
    assert asked and code == 3, out[-2000:]
    summary = json.loads([line for line in out.splitlines() if line.startswith('{"run_id"')][-1])
    assert summary["status"] == "KILLED" and summary["run_id"] == asked["run_id"]
    assert MlflowClient(uri).get_run(asked["run_id"]).info.status == "KILLED"
    folder = workspace / "runs" / asked["run_id"] / "checkpoints"
    assert (folder / "last.ckpt").is_file() and list(folder.glob("best-*.ckpt"))


@pytest.mark.slow
def test_conditional_detr_with_parameters_no_loss_reaches_trains_under_ray(ray_cluster, sample_dataset, tmp_path):
    from engine.orchestration.ray_train import train_distributed

    config = _ray_config(
        sample_dataset,
        tmp_path / "ws",
        task="detection",
        **{"model.checkpoint": "conditional-detr-tiny", "optim.epochs": 1, "data.image_size": 64},
    )
    result = train_distributed(config)
    assert result.status == "FINISHED", result.message
    assert result.best_checkpoint and os.path.isfile(result.best_checkpoint)


def test_train_hands_its_callbacks_and_tags_to_ray_train(monkeypatch, sample_dataset):
    """``train()`` with ``strategy: ray`` used to drop the caller's callbacks and tags."""
    import engine.orchestration.ray_train as ray_train
    from engine.config import RunConfig
    from engine.orchestration.local import train

    seen = {}
    monkeypatch.setattr(ray_train, "train_distributed", lambda config, **kwargs: seen.update(kwargs) or "result")
    config = RunConfig.from_dict({"task": {"name": "classification"}}).with_overrides(
        {"data.path": str(sample_dataset), "compute.strategy": "ray"}
    )
    marker = object()
    assert train(config, callbacks=[marker], tags={"lightbox.parent": "p"}) == "result"
    assert seen["callbacks"] == [marker] and seen["tags"] == {"lightbox.parent": "p"}
