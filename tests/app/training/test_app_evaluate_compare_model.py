"""Two runs' evaluations compared (the Qt-free model): classes matched by name and id, each task's figures
for A, B and B − A, classes only one run has, summaries, different data said, different tasks refused.

The evaluation files are written here in the engine's format (/tmp/team/evaluation_schema.md) and read
through the app's own loader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.training.evaluation_compare import (
    ComparisonError,
    RunSide,
    comparable_runs,
    compare,
    data_difference,
)
from app.training.evaluation_model import PER_CLASS_FIELDS, load_evaluation
from app.training.runs_model import RunRow
from engine.tracking.tags import SEARCH_TAG

SUMMARIES = {
    "classification": {"accuracy": 0.5, "macro_f1": 0.4},
    "detection": {"map": 0.3, "map_50": 0.5, "map_75": 0.2, "map_small": -1.0, "mar_100": 0.4},
    "segmentation": {"miou": 0.6, "mdice": 0.7, "pixel_accuracy": 0.9},
}


def evaluation_file(folder: Path, task: str, per_class: list[dict], summary: dict | None = None, **data):
    """An evaluation of ``task`` with these per-class rows (id, name, support and the task's figures)."""
    classes = [{"id": r["id"], "name": r["name"]} for r in per_class]
    names = [c["name"] for c in classes]
    doc = {
        "version": 1,
        "task": task,
        "source": {"run_id": folder.name * 4, "export_dir": None, "checkpoint": None},
        "data": {"path": "/data", "split": "val", "num_images": 10, **data},
        "classes": classes,
        "summary": SUMMARIES[task] if summary is None else summary,
        "per_class": per_class,
        "confusion": None if task == "detection" else {"labels": names, "counts": [[0] * len(names)] * len(names)},
        "curves": {"pr": {}, "threshold": {}} if task == "detection" else None,
        "match_iou": 0.5,
        "images": [],
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "evaluation.json"
    path.write_text(json.dumps(doc))
    return load_evaluation(path)


def per_class_rows(task: str, figures: dict[str, float | None], classes=((1, "cat"), (2, "dog"))) -> list[dict]:
    """Each class with ``figures[name]`` for every figure of the task (support 5)."""
    return [
        {"id": cid, "name": name, "support": 5, **dict.fromkeys(PER_CLASS_FIELDS[task], figures.get(name))}
        for cid, name in classes
    ]


@pytest.mark.parametrize("task", ["classification", "detection", "segmentation"])
def test_every_figure_of_the_task_is_shown_for_a_b_and_their_difference(tmp_path, task):
    a = evaluation_file(tmp_path / "aaaa", task, per_class_rows(task, {"cat": 0.5, "dog": 0.8}))
    b = evaluation_file(tmp_path / "bbbb", task, per_class_rows(task, {"cat": 0.75, "dog": 0.6}))
    comparison = compare(a, b)
    assert comparison.task == task and comparison.fields == PER_CLASS_FIELDS[task]
    cat, dog = comparison.rows
    for name in PER_CLASS_FIELDS[task]:
        assert (cat[f"{name}_a"], cat[f"{name}_b"], cat[f"{name}_diff"]) == (0.5, 0.75, 0.25)
        assert dog[f"{name}_diff"] == pytest.approx(-0.2)
        assert f"{name}_diff" in comparison.columns
    assert (cat["support_a"], cat["support_b"]) == (5, 5)
    assert comparison.columns[:3] == ["name", "support_a", "support_b"]
    first = PER_CLASS_FIELDS[task][-1]
    assert [comparison.header(f"{first}_{side}") for side in ("a", "b", "diff")] == [
        f"{first.replace('_', ' ')}\n{side}" for side in ("A", "B", "B−A")
    ]
    assert [s["name"] for s in comparison.summary] == list(SUMMARIES[task])
    assert all(s["diff"] in (0.0, None) for s in comparison.summary)  # the same summary on both sides
    assert comparison.notes() == []


def test_classes_match_by_name_whatever_their_ids_and_those_of_one_run_are_named(tmp_path):
    task = "classification"
    a_rows = per_class_rows(task, {"cat": 0.9, "dog": 0.5, "owl": 0.4}, ((1, "cat"), (2, "dog"), (3, "owl")))
    b_rows = per_class_rows(task, {"dog": 0.7, "cat": 0.6, "fox": 0.3}, ((7, "dog"), (1, "cat"), (4, "fox")))
    comparison = compare(
        evaluation_file(tmp_path / "a", task, a_rows),
        evaluation_file(tmp_path / "b", task, b_rows),
        RunSide("early", "a" * 32, "val/accuracy 0.5"),
        RunSide("late", "b" * 32, "val/accuracy 0.6"),
    )
    by_name = {r["name"]: r for r in comparison.rows}
    assert [r["name"] for r in comparison.rows] == ["cat", "dog", "owl", "fox"]  # A's order, then B's own
    assert (by_name["dog"]["id_a"], by_name["dog"]["id_b"], by_name["dog"]["f1_diff"]) == (2, 7, pytest.approx(0.2))
    assert by_name["owl"]["f1_b"] is None and by_name["owl"]["f1_diff"] is None and by_name["owl"]["support_b"] is None
    assert by_name["fox"]["f1_a"] is None and by_name["fox"]["f1_b"] == 0.3
    assert comparison.only_a == ["owl"] and comparison.only_b == ["fox"]
    assert comparison.notes() == ["Only in A (early): owl.", "Only in B (late): fox."]


def test_one_name_twice_pairs_by_id_first(tmp_path):
    task = "segmentation"
    a_rows = per_class_rows(task, {"road": 0.2}, ((1, "road"), (2, "road")))
    b_rows = per_class_rows(task, {"road": 0.5}, ((2, "road"), (9, "road")))
    comparison = compare(evaluation_file(tmp_path / "a", task, a_rows), evaluation_file(tmp_path / "b", task, b_rows))
    assert [(r["id_a"], r["id_b"]) for r in comparison.rows] == [(1, 9), (2, 2)]


def test_missing_figures_and_cocos_minus_one_have_no_difference_and_sort_last(tmp_path):
    task = "detection"
    a_rows = per_class_rows(task, {"cat": 0.5, "dog": 0.5}, ((1, "cat"), (2, "dog"), (3, "eel")))
    a_rows[2]["ap"] = -1.0  # COCO: no box of the class
    b_rows = per_class_rows(task, {"cat": 0.9, "dog": 0.1, "eel": 0.3}, ((1, "cat"), (2, "dog"), (3, "eel")))
    b_rows[0]["ap"] = None
    comparison = compare(evaluation_file(tmp_path / "a", task, a_rows), evaluation_file(tmp_path / "b", task, b_rows))
    assert [r["ap_diff"] for r in comparison.rows] == [None, pytest.approx(-0.4), None]
    assert [r["name"] for r in comparison.sorted_rows("ap_diff", descending=False)] == ["dog", "cat", "eel"]
    assert [r["name"] for r in comparison.sorted_rows("ap_diff", descending=True)] == ["dog", "cat", "eel"]
    small = next(s for s in comparison.summary if s["name"] == "map_small")
    assert (small["a"], small["b"], small["diff"]) == (None, None, None)


def test_summaries_of_different_names_are_all_listed(tmp_path):
    task = "classification"
    rows = per_class_rows(task, {"cat": 0.5})
    a = evaluation_file(tmp_path / "a", task, rows, {"accuracy": 0.5, "macro_f1": 0.4})
    b = evaluation_file(tmp_path / "b", task, rows, {"accuracy": 0.7, "top5_accuracy": 0.9, "macro_f1": 0.3})
    summary = {s["name"]: (s["a"], s["b"], s["diff"]) for s in compare(a, b).summary}
    assert list(summary) == ["accuracy", "macro_f1", "top5_accuracy"]
    assert summary["accuracy"] == (0.5, 0.7, pytest.approx(0.2))
    assert summary["top5_accuracy"] == (None, 0.9, None)


def test_runs_of_different_tasks_are_refused_naming_both(tmp_path):
    a = evaluation_file(tmp_path / "a", "classification", per_class_rows("classification", {"cat": 0.5}))
    b = evaluation_file(tmp_path / "b", "detection", per_class_rows("detection", {"cat": 0.5}))
    with pytest.raises(ComparisonError, match="early is a classification run and late a detection run"):
        compare(a, b, RunSide("early"), RunSide("late"))


@pytest.mark.parametrize(
    ("data", "said"),
    [
        ({"path": "/other"}, "dataset"),
        ({"split": "train"}, "split"),
        ({"num_images": 12}, "image count"),
    ],
)
def test_runs_evaluated_on_different_data_are_compared_and_it_is_said(tmp_path, data, said):
    task = "classification"
    rows = per_class_rows(task, {"cat": 0.5})
    a = evaluation_file(tmp_path / "a", task, rows)
    b = evaluation_file(tmp_path / "b", task, rows, **data)
    comparison = compare(a, b)
    assert comparison.data_note is not None and comparison.notes()[0] == comparison.data_note
    assert f"different data ({said})" in comparison.data_note
    assert "A on /data (val split, 10 images)" in comparison.data_note
    assert data_difference(a, evaluation_file(tmp_path / "c", task, rows)) is None


def test_headers_name_each_side_and_figure():
    side = RunSide("tiny-3-epochs", "4f2d9db5c36d4eadab8b54f8522def4d", "val/accuracy 0.75")
    assert side.label() == "tiny-3-epochs (4f2d9db5) · val/accuracy 0.75"
    assert RunSide("4f2d9db5", "4f2d9db5c36d").label() == "4f2d9db5"  # a run named by its id is not named twice


def _run(run_id, status="FINISHED", task="classification", **tags):
    return RunRow(run_id, f"name-{run_id}", status, task, "resnet-tiny", "", 1, 1.0, None, tags=tags)


def test_the_runs_offered_are_the_other_finished_runs_of_the_task():
    rows = [
        _run("a"),
        _run("b"),
        _run("running", "RUNNING"),
        _run("failed", "FAILED"),
        _run("det", task="detection"),
        _run("search", **{SEARCH_TAG: "true"}),
        _run("c"),
    ]
    assert [r.run_id for r in comparable_runs(rows, "a", "classification")] == ["b", "c"]
