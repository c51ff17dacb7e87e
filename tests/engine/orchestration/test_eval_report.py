"""A finished run has its evaluation report, and `lightbox eval` reproduces it (logged to MLflow too)."""

from __future__ import annotations

import json

import pytest

from engine.cli import main
from engine.config import RunConfig
from engine.metrics.report import load_report
from engine.orchestration import evaluate
from engine.orchestration.local import train

pytestmark = pytest.mark.slow


def _config(data, workspace, task, model):
    return RunConfig.from_dict({"task": {"name": task}}).with_overrides(
        {
            "data.path": str(data),
            "model.checkpoint": model,
            "optim.epochs": 1,
            "optim.batch_size": 8,
            "data.image_size": 32,
            "data.num_workers": 0,
            "workspace": str(workspace),
        }
    )


@pytest.fixture(scope="module", params=[("classification", "resnet-tiny"), ("detection", "detr-tiny")])
def finished_run(request, sample_dataset, tmp_path_factory):
    task, model = request.param
    workspace = tmp_path_factory.mktemp("ws")
    result = train(_config(sample_dataset, workspace, task, model), progress=False)
    assert result.status == "FINISHED"
    return task, result, workspace


def _mlflow_metrics(workspace, run_id):
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{workspace / 'mlflow.db'}")
    return client, client.get_run(run_id).data.metrics


def test_training_writes_the_report_with_the_validation_figures(finished_run):
    task, result, workspace = finished_run
    path = evaluate.report_path(result.run_id, workspace=str(workspace))
    assert path is not None and path == workspace / "runs" / result.run_id / "evaluation" / "evaluation.json"
    report = load_report(path)
    assert report["task"] == task and report["data"]["split"] == "val"
    assert report["source"]["run_id"] == result.run_id
    assert report["data"]["num_images"] == len(report["images"]) > 0
    # The same figures training's own validation logged (same checkpoint: one epoch).
    headline = {"classification": ("accuracy", "val/accuracy"), "detection": ("map", "val/map")}[task]
    assert report["summary"][headline[0]] == pytest.approx(result.metrics[headline[1]], abs=1e-6)
    client, metrics = _mlflow_metrics(workspace, result.run_id)
    assert metrics[f"eval/{headline[0]}"] == pytest.approx(report["summary"][headline[0]])
    first = report["per_class"][0]
    figure = {"classification": "f1", "detection": "ap"}[task]
    if first[figure] is not None:
        assert metrics[f"eval/{figure}/{first['name']}"] == pytest.approx(first[figure])
    logged = {a.path for a in client.list_artifacts(result.run_id, "evaluation")}
    assert "evaluation/evaluation.json" in logged
    if task == "detection":
        assert set(report["curves"]["pr"]) <= {str(c["id"]) for c in report["classes"]}
        assert all("annotations" in image and "predictions" in image for image in report["images"])
    else:
        assert len(report["confusion"]["counts"]) == len(report["classes"])


def test_lightbox_eval_reproduces_the_report_of_training(finished_run, capsys):
    _, result, workspace = finished_run
    trained = load_report(evaluate.report_path(result.run_id, workspace=str(workspace)))
    assert main(["eval", result.run_id, "--workspace", str(workspace), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    again = load_report(printed["report"])
    assert again["summary"] == pytest.approx(trained["summary"], abs=1e-9)
    assert [r["support"] for r in again["per_class"]] == [r["support"] for r in trained["per_class"]]
    assert [i["error"] for i in again["images"]] == pytest.approx([i["error"] for i in trained["images"]], abs=1e-6)


def test_eval_of_another_split_to_another_folder_prints_a_table(finished_run, tmp_path, capsys):
    task, result, workspace = finished_run
    out = tmp_path / "train-eval"
    assert main(["eval", result.run_id, "--workspace", str(workspace), "--split", "train", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "support" in text and f"evaluation written to {out / 'evaluation.json'}" in text
    report = load_report(out / "evaluation.json")
    assert report["data"]["split"] == "train"
    val = load_report(evaluate.report_path(result.run_id, workspace=str(workspace)))
    assert {i["image_id"] for i in report["images"]}.isdisjoint({i["image_id"] for i in val["images"]})
    assert main(["eval", result.run_id, "--workspace", str(workspace), "--split", "test"]) == 2
    assert "val, train or all" in capsys.readouterr().err


def test_report_path_of_an_unknown_run_is_none(tmp_path):
    assert evaluate.report_path("no-such-run", workspace=str(tmp_path)) is None


def test_a_failed_evaluation_never_fails_the_trained_run(sample_dataset, tmp_path, monkeypatch, capsys):
    from engine.orchestration import evaluation_run

    def broken(*_args, **_kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(evaluation_run, "build_run_report", broken)
    workspace = tmp_path / "ws"
    result = train(_config(sample_dataset, workspace, "classification", "resnet-tiny"), progress=False)
    assert result.status == "FINISHED" and result.best_checkpoint
    assert "evaluation report not written (RuntimeError: disk full); run `lightbox eval`" in capsys.readouterr().err
    assert evaluate.report_path(result.run_id, workspace=str(workspace)) is None
