"""`lightbox train` end to end: MLflow records, resume after a kill, NaN, stop requests, bad inputs."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from mlflow.tracking import MlflowClient

from engine.cli import main
from engine.config import RunConfig
from engine.orchestration.local import TrainingError, train
from engine.tracking.history import metric_history
from engine.tracking.logger import request_stop
from tests.conftest import REPO_ROOT

ROOT = REPO_ROOT


def _config(data, workspace, **overrides):
    base = {
        "data.path": str(data),
        "model.checkpoint": "resnet-tiny",
        "optim.epochs": 2,
        "optim.batch_size": 16,
        "optim.lr": 3e-3,
        "data.image_size": 48,
        "data.num_workers": 0,
        "workspace": str(workspace),
    }
    base.update(overrides)
    return RunConfig.from_dict({"task": {"name": "classification"}}).with_overrides(base)


def test_cli_train_on_the_demo_dataset_is_readable_with_mlflow(sample_dataset, tmp_path, capsys):
    code = main(
        [
            "train",
            "--data",
            str(sample_dataset),
            "--task",
            "classification",
            "--model",
            "resnet-tiny",
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--image-size",
            "48",
            "--num-workers",
            "0",
            "--workspace",
            str(tmp_path / "ws"),
            "--no-progress",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["status"] == "FINISHED" and Path(result["best_checkpoint"]).is_file()
    assert result["tracking_uri"] == f"sqlite:///{tmp_path / 'ws' / 'mlflow.db'}"
    client = MlflowClient(result["tracking_uri"])
    run = client.get_run(result["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["optim.batch_size"] == "16" and run.data.params["task.name"] == "classification"
    assert {"val/accuracy", "val/loss", "train/loss"} <= set(run.data.metrics)
    assert run.data.tags["lightbox.best_checkpoint"] == result["best_checkpoint"]
    artifacts = {a.path for a in client.list_artifacts(result["run_id"])}
    assert "run_config.yaml" in artifacts
    history = metric_history(result["tracking_uri"], result["run_id"], ["val/accuracy"])
    assert len(history["val/accuracy"]) == 2  # one point per epoch
    assert not (Path.cwd() / "mlruns").exists()


@pytest.mark.slow
def test_resume_after_a_kill_continues_the_same_run(sample_dataset, tmp_path):
    workspace = tmp_path / "ws"
    config = _config(sample_dataset, workspace, **{"optim.epochs": 40, "optim.batch_size": 8})
    config_file = tmp_path / "run.yaml"
    config.save(config_file)
    script = (
        "import sys; from engine.config import RunConfig; from engine.orchestration.local import train; "
        "train(RunConfig.load(sys.argv[1]), progress=False, checkpoint_every_n_steps=2)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(config_file)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 120
        found = []
        while time.time() < deadline and not found:
            time.sleep(0.5)
            found = list(workspace.glob("runs/*/checkpoints/latest-step=*.ckpt"))
            found = [p for p in found if int(p.stem.split("=")[1]) >= 6]
        assert found, "no checkpoint written before the deadline"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    run_id = found[0].parent.parent.name
    uri = f"sqlite:///{workspace / 'mlflow.db'}"
    assert MlflowClient(uri).get_run(run_id).info.status == "RUNNING"  # killed: nobody closed it
    killed_step = max(int(p.stem.split("=")[1]) for p in workspace.glob("runs/*/checkpoints/latest-step=*.ckpt"))

    result = train(resume_run_id=run_id, workspace=workspace, progress=False)
    assert result.run_id == run_id and result.status == "FINISHED"
    run = MlflowClient(uri).get_run(run_id)
    assert run.info.status == "FINISHED"
    steps = [s for s, _, _ in metric_history(uri, run_id, ["train/loss"])["train/loss"]]
    assert max(steps) > killed_step and min(steps) <= killed_step
    assert len(metric_history(uri, run_id, ["val/accuracy"])["val/accuracy"]) >= 40 - 1


class _PoisonWeights(pl.Callback):
    """Makes the loss NaN from a given step on, as a diverging run would."""

    def __init__(self, at_step):
        self.at_step = at_step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.at_step:
            with torch.no_grad():
                next(pl_module.model.parameters()).fill_(float("nan"))


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(sample_dataset, tmp_path):
    config = _config(sample_dataset, tmp_path / "ws", **{"optim.epochs": 5, "optim.batch_size": 8})
    result = train(config, progress=False, callbacks=[_PoisonWeights(at_step=9)], checkpoint_every_n_steps=2)
    assert result.status == "FAILED"
    assert "NaN" in result.message and "step 9" in result.message
    state = torch.load(result.last_checkpoint, map_location="cpu", weights_only=False)
    assert state["global_step"] <= 9
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values() if v.is_floating_point())
    assert MlflowClient(result.tracking_uri).get_run(result.run_id).info.status == "FAILED"


class _RequestStopOnce(pl.Callback):
    def __init__(self):
        self.sent = False

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if not self.sent and trainer.global_step >= 2:
            mlflow_cb = next(c for c in trainer.callbacks if type(c).__name__ == "MlflowCallback")
            request_stop(mlflow_cb.logger.tracking_uri, mlflow_cb.logger.run_id)
            self.sent = True


def test_a_stop_request_ends_the_run_as_killed_with_its_checkpoint(sample_dataset, tmp_path):
    config = _config(sample_dataset, tmp_path / "ws", **{"optim.epochs": 500, "optim.batch_size": 8})
    started = time.time()
    result = train(config, progress=False, callbacks=[_RequestStopOnce()], checkpoint_every_n_steps=2)
    assert result.status == "KILLED"
    assert time.time() - started < 120
    assert result.last_checkpoint and Path(result.last_checkpoint).is_file()
    assert MlflowClient(result.tracking_uri).get_run(result.run_id).info.status == "KILLED"


def test_gpu_requested_but_absent_is_a_clear_error(sample_dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config = _config(sample_dataset, tmp_path / "ws", **{"compute.accelerator": "gpu"})
    with pytest.raises(TrainingError, match="GPU was requested"):
        train(config, progress=False)


def test_unknown_model_is_reported_by_the_cli(sample_dataset, tmp_path, capsys):
    code = main(
        [
            "train",
            "--data",
            str(sample_dataset),
            "--task",
            "classification",
            "--model",
            "resnet-19",
            "--workspace",
            str(tmp_path / "ws"),
            "--no-progress",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "resnet-19" in err and "resnet-18" in err


def test_missing_dataset_is_reported_by_the_cli(tmp_path, capsys):
    code = main(
        [
            "train",
            "--data",
            str(tmp_path / "nowhere"),
            "--task",
            "classification",
            "--workspace",
            str(tmp_path / "ws"),
            "--no-progress",
        ]
    )
    assert code == 2
    assert "nowhere" in capsys.readouterr().err


def test_eval_and_predict_use_the_best_checkpoint(sample_dataset, tmp_path, capsys):
    workspace = tmp_path / "ws"
    result = train(_config(sample_dataset, workspace), progress=False)
    assert main(["eval", result.run_id, "--workspace", str(workspace), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # Both must hold: eval loads the best checkpoint, and scores it as training's monitor did.
    assert evaluated["checkpoint"] == result.best_checkpoint
    run = MlflowClient(result.tracking_uri).get_run(result.run_id)
    assert run.data.tags["lightbox.best_monitor"] == "val/accuracy"
    assert evaluated["summary"]["accuracy"] == pytest.approx(run.data.metrics["best_score"], abs=1e-6)
    out = tmp_path / "preds.json"
    assert (
        main(["predict", result.run_id, str(sample_dataset / "val"), "--out", str(out), "--workspace", str(workspace)])
        == 0
    )
    predictions = json.loads(out.read_text())["predictions"]
    assert len(predictions) == 16
    assert {p["label_name"] for p in predictions} <= {"circle", "square", "triangle", "blob"}


def test_out_of_memory_suggests_a_smaller_batch(sample_dataset, tmp_path, monkeypatch):
    from engine.tasks.classification.lightning_module import ClassificationModule

    def no_memory(self, batch):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(ClassificationModule, "compute_loss", no_memory)
    config = _config(sample_dataset, tmp_path / "ws", **{"optim.batch_size": 16})
    with pytest.raises(TrainingError, match="--batch-size 8"):
        train(config, progress=False)
    runs = MlflowClient(f"sqlite:///{tmp_path / 'ws' / 'mlflow.db'}").search_runs(
        [MlflowClient(f"sqlite:///{tmp_path / 'ws' / 'mlflow.db'}").get_experiment_by_name("lightbox").experiment_id]
    )
    assert [r.info.status for r in runs] == ["FAILED"]


def test_models_lists_the_offline_presets(capsys):
    assert main(["models", "--task", "detection"]) == 0
    out = capsys.readouterr().out
    assert "detr-resnet-50" in out and "detr-tiny" in out and "resnet-18" not in out


@pytest.mark.slow
def test_multitask_run_trains_and_predicts_every_task(sample_dataset, tmp_path):
    workspace = tmp_path / "ws"
    config = RunConfig.from_dict(
        {"task": {"name": "multitask", "tasks": ["classification", "detection", "segmentation"]}}
    )
    config = config.with_overrides(
        {
            "data.path": str(sample_dataset),
            "model.checkpoints.classification": "resnet-tiny",
            "optim.epochs": 1,
            "optim.batch_size": 8,
            "data.image_size": 64,
            "data.num_workers": 0,
            "workspace": str(workspace),
        }
    )
    result = train(config, progress=False)
    assert result.status == "FINISHED"
    assert {"val/accuracy", "val/map", "val/miou"} <= set(result.metrics)
    out = tmp_path / "preds.json"
    assert (
        main(["predict", result.run_id, str(sample_dataset / "val"), "--out", str(out), "--workspace", str(workspace)])
        == 0
    )
    predictions = json.loads(out.read_text())["predictions"]
    assert len(predictions) == 16
    first = predictions[0]
    assert {"label_name", "detections", "mask_file"} <= set(first)
    from PIL import Image

    with Image.open(first["mask_file"]) as mask:
        assert mask.size == Image.open(sample_dataset / "val" / first["file_name"]).size
