"""evaluation.json as the app reads it, and the report's figures as MLflow metric names."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from engine.metrics.report import load_report, metric_part, printed_summary, tracking_metrics, write_report


def _report(task="classification", names=("cat", "dog")):
    return {
        "version": 1,
        "task": task,
        "source": {"run_id": "r1", "export_dir": None, "checkpoint": "best.ckpt"},
        "data": {"path": "/data", "split": "val", "num_images": 1},
        "classes": [{"id": i + 1, "name": n} for i, n in enumerate(names)],
        "summary": {"accuracy": 0.5, "macro_f1": None},
        "per_class": [
            {"id": i + 1, "name": n, "support": 1, "precision": 0.5, "recall": 1.0, "f1": None}
            for i, n in enumerate(names)
        ],
        "confusion": {"labels": list(names), "counts": [[1, 0], [1, 0]]},
        "curves": None,
        "match_iou": 0.5,
        "images": [{"image_id": 1, "file_name": "a.jpg", "error": 0.1}],
    }


def test_reading_the_report_imports_no_torch():
    code = "import sys, engine.metrics.report; assert 'torch' not in sys.modules and 'numpy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(version=2), "key 'version' is 2"),
        (lambda r: r.pop("per_class"), "key 'per_class' is missing"),
        (lambda r: r.update(task="tracking"), "key 'task' is 'tracking'"),
        (lambda r: r["data"].update(split="test"), "key 'data.split'"),
        (lambda r: r["per_class"][1].pop("support"), r"key 'per_class\[1\]'"),
        (lambda r: r.update(confusion=None), "key 'confusion'"),
        (lambda r: r["images"][0].pop("error"), r"key 'images\[0\]'"),
    ],
)
def test_a_wrong_report_is_refused_naming_the_file_and_key(tmp_path, change, message):
    report = _report()
    change(report)
    path = tmp_path / "evaluation.json"
    path.write_text(json.dumps(report))
    with pytest.raises(ValueError, match=message) as caught:
        load_report(path)
    assert str(path) in str(caught.value)


def test_unreadable_files_are_refused_with_their_name(tmp_path):
    with pytest.raises(ValueError, match="cannot read"):
        load_report(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="invalid JSON"):
        load_report(tmp_path / "bad.json")


def test_metric_names_are_valid_for_mlflow_and_never_collide():
    from mlflow.utils.validation import _validate_metric_name

    report = _report(names=("traffic light/red", "..", "traffic light?red", "été"))
    report["per_class"][2]["f1"] = 0.25
    metrics = tracking_metrics(report)
    for name in metrics:
        _validate_metric_name(name)
    assert metrics["eval/accuracy"] == 0.5 and "eval/macro_f1" not in metrics  # null: not logged
    assert metrics["eval/precision/traffic light_red_1"] == 0.5
    assert metrics["eval/f1/traffic light_red_3"] == 0.25
    assert "eval/precision/_" in metrics and "eval/precision/_t_" in metrics
    assert metric_part("a:b-c.d e") == "a:b-c.d e"


def test_the_printed_summary(tmp_path):
    report = _report()
    path = write_report(report, tmp_path)
    text = printed_summary(report, path)
    assert "accuracy  0.5000" in text and "macro_f1  -" in text and "cat" in text
    line = json.loads(printed_summary(report, path, as_json=True))
    assert line == {
        "report": str(path),
        "task": "classification",
        "run_id": "r1",
        "checkpoint": "best.ckpt",
        "summary": {"accuracy": 0.5, "macro_f1": None},
    }
