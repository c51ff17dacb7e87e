"""`lightbox eval EXPORT_DIR --data DIR`: an export's report on labelled data, never over an earlier one."""

from __future__ import annotations

import json

import pytest

from engine.cli import main
from engine.config import RunConfig
from engine.metrics.report import load_report
from engine.orchestration import evaluate
from engine.orchestration.local import train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def detection_export(sample_dataset, tmp_path_factory):
    workspace = tmp_path_factory.mktemp("ws")
    config = RunConfig.from_dict({"task": {"name": "detection"}}).with_overrides(
        {
            "data.path": str(sample_dataset),
            "model.checkpoint": "detr-tiny",
            "optim.epochs": 1,
            "optim.batch_size": 8,
            "data.image_size": 32,
            "data.num_workers": 0,
            "workspace": str(workspace),
        }
    )
    result = train(config, progress=False)
    out = workspace / "export"
    assert main(["export", result.run_id, "--workspace", str(workspace), "--out", str(out)]) == 0
    return result, workspace, out


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_an_export_evaluated_on_the_runs_validation_data_gives_the_runs_figures(
    detection_export, sample_dataset, capsys, backend
):
    result, workspace, export_dir = detection_export
    args = ["eval", str(export_dir), "--data", str(sample_dataset), "--workspace", str(workspace)]
    assert main([*args, "--backend", backend, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    report = load_report(printed["report"])
    assert printed["report"].startswith(str(workspace / "evaluations"))
    assert report["source"]["export_dir"] == str(export_dir.resolve())
    run = load_report(evaluate.report_path(result.run_id, workspace=str(workspace)))
    # The same validation images through the export's own pre-processing and backend.
    assert report["data"]["split"] == "val" and report["data"]["num_images"] == run["data"]["num_images"]
    assert report["classes"] == run["classes"]
    assert report["summary"] == pytest.approx(run["summary"], abs=1e-4)
    assert [r["support"] for r in report["per_class"]] == [r["support"] for r in run["per_class"]]


def test_an_evaluation_is_never_written_over(detection_export, sample_dataset, tmp_path, capsys):
    _, workspace, export_dir = detection_export
    out = tmp_path / "eval"
    args = ["eval", str(export_dir), "--data", str(sample_dataset), "--out", str(out)]
    assert main(args) == 0
    first = (out / "evaluation.json").read_text()
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "evaluation.json").read_text() == first
    # Without --out: a fresh folder each time.
    default = ["eval", str(export_dir), "--data", str(sample_dataset), "--workspace", str(workspace), "--json"]
    assert main(default) == 0 and main(default) == 0
    reports = [json.loads(line)["report"] for line in capsys.readouterr().out.strip().splitlines()[-2:]]
    assert reports[0] != reports[1]


def test_bad_data_is_refused_with_its_name(detection_export, sample_dataset, tmp_path, capsys):
    _, _, export_dir = detection_export
    assert main(["eval", str(export_dir)]) == 2
    assert "--data" in capsys.readouterr().err
    assert main(["eval", str(export_dir), "--data", str(sample_dataset), "--split", "nope"]) == 2
    assert "no split 'nope'" in capsys.readouterr().err
    assert main(["eval", str(export_dir), "--data", str(tmp_path / "missing")]) == 2
    assert str(tmp_path / "missing") in capsys.readouterr().err
