"""`lightbox train --devices 2` on the CPU: two processes (DDP over gloo), one run.

Lightning starts the second process by running the same command again, so these tests
run the real command line in a child process (in pytest, Lightning would start pytest again).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import REPO_ROOT

ROOT = REPO_ROOT
TIMEOUT_S = 420


def _train(args, workspace, script=None, launch_id="launch-1"):
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "LIGHTBOX_LAUNCH_ID": launch_id,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("PL_GLOBAL_SEED", None)
    entry = [sys.executable, str(script)] if script else [sys.executable, "-m", "engine"]
    command = [
        *entry,
        "train",
        *args,
        "--accelerator",
        "cpu",
        "--devices",
        "2",
        "--num-workers",
        "0",
        "--workspace",
        str(workspace),
        "--no-progress",
    ]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)


def _json_lines(stdout):
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def _runs(workspace):
    client = MlflowClient(f"sqlite:///{workspace / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client, client.search_runs(experiments)


@pytest.mark.slow
def test_two_processes_train_one_run_with_a_model_that_leaves_parameters_unused(sample_dataset, tmp_path):
    """conditional-detr-tiny has a decoder module no loss reaches (query_scale with one decoder layer)."""
    workspace = tmp_path / "ws"
    done = _train(
        [
            "--data",
            str(sample_dataset),
            "--task",
            "detection",
            "--model",
            "conditional-detr-tiny",
            "--epochs",
            "1",
            "--max-steps",
            "3",
            "--batch-size",
            "2",
            "--image-size",
            "64",
            "--lr",
            "1e-4",
        ],
        workspace,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (result,) = _json_lines(done.stdout)  # rank 1 reports nothing of its own
    assert result["status"] == "FINISHED"
    client, runs = _runs(workspace)
    assert [r.info.run_id for r in runs] == [result["run_id"]]  # no phantom run for rank 1
    assert [p.name for p in (workspace / "runs").iterdir()] == [result["run_id"]]
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["lightbox.processes"] == "2"
    assert run.data.tags["lightbox.launch_id"] == "launch-1"
    assert Path(result["last_checkpoint"]).is_file()
    assert "train/loss" in run.data.metrics


POISON = '''
import sys

from engine.tasks.classification.lightning_module import ClassificationModule

real = ClassificationModule.compute_loss


def poisoned(self, batch):
    """Rank 1 alone sees a NaN loss from step 2 on."""
    loss, outputs = real(self, batch)
    if self.training and self.global_rank == 1 and self.global_step >= 2:
        loss = loss * float("nan")
    return loss, outputs


ClassificationModule.compute_loss = poisoned
from engine.cli import main

sys.exit(main(sys.argv[1:]))
'''


@pytest.mark.slow
def test_a_nan_loss_on_one_process_stops_every_process_with_the_nan_message(sample_dataset, tmp_path):
    workspace = tmp_path / "ws"
    script = tmp_path / "poisoned_train.py"
    script.write_text(POISON)
    done = _train(
        [
            "--data",
            str(sample_dataset),
            "--task",
            "classification",
            "--model",
            "resnet-tiny",
            "--epochs",
            "3",
            "--batch-size",
            "4",
            "--image-size",
            "32",
            "--lr",
            "1e-3",
        ],
        workspace,
        script,
    )
    assert done.returncode == 1, done.stderr[-3000:]
    (result,) = _json_lines(done.stdout)
    assert result["status"] == "FAILED"
    assert "NaN" in result["message"] and "step 2" in result["message"]
    assert "Connection closed" not in done.stderr
    client, runs = _runs(workspace)
    assert [r.info.run_id for r in runs] == [result["run_id"]]
    assert runs[0].info.status == "FAILED"
    # Nothing was saved from the NaN step on (the sample's epoch has fewer steps than that).
    assert not list(workspace.glob("runs/*/checkpoints/*.ckpt")) and result["last_checkpoint"] is None
