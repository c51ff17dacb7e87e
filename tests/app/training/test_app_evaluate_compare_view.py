"""The Evaluate tab's "Compare with…": the other finished runs of the task offered, run B chosen and its
evaluation read (or made with Evaluate now), a difference column sorted biggest loss first by a header
click, differences coloured, empty figures "–" and last, different data said, different tasks refused."""

from __future__ import annotations

import sys

from PySide6.QtCore import QPoint, Qt

from app.training import runs_model
from app.training.evaluate_compare import BETTER, WORSE
from app.training.runs_model import RunRow
from tests.app.training.test_app_evaluate_compare_model import evaluation_file, per_class_rows

A_ID, B_ID, BARE_ID, DET_ID = "a1" * 16, "b2" * 16, "c3" * 16, "d4" * 16
TASK = "classification"


def _run(run_id, name, run_dir, status="FINISHED", task=TASK, best=""):
    return RunRow(run_id, name, status, task, "resnet-tiny", best, 1, 1.0, str(run_dir))


def _runs(tmp_path):
    """Run A and B evaluated (B on more images), a run without an evaluation, one whose evaluation is of
    another task, and runs that are not offered (running, another task)."""
    a_rows = per_class_rows(TASK, {"cat": 0.9, "dog": 0.5, "owl": 0.4}, ((1, "cat"), (2, "dog"), (3, "owl")))
    b_rows = per_class_rows(TASK, {"cat": 0.6, "dog": 0.7, "fox": 0.3}, ((1, "cat"), (2, "dog"), (4, "fox")))
    evaluation_file(tmp_path / "a" / "evaluation", TASK, a_rows)
    evaluation_file(tmp_path / "b" / "evaluation", TASK, b_rows, num_images=12)
    evaluation_file(tmp_path / "d" / "evaluation", "detection", per_class_rows("detection", {"cat": 0.5}))
    (tmp_path / "c").mkdir()
    return [
        _run(A_ID, "early", tmp_path / "a", best="val/accuracy 0.5"),
        _run("e5" * 16, "going", tmp_path / "e", status="RUNNING"),
        _run(B_ID, "late", tmp_path / "b", best="val/accuracy 0.75"),
        _run(BARE_ID, "bare", tmp_path / "c"),
        _run("f6" * 16, "boxes", tmp_path / "f", task="detection"),
        _run(DET_ID, "mislabelled", tmp_path / "d"),
    ]


def _comparing(qtbot, tmp_path, monkeypatch):
    """The Evaluate tab showing run A, its Compare with… clicked and the runs offered read."""
    from app.training.evaluate_view import EvaluateView

    rows = _runs(tmp_path)
    monkeypatch.setattr(runs_model, "load_runs", lambda uri, *args, **kwargs: rows)
    view = EvaluateView(tmp_path / "ws")
    qtbot.addWidget(view)
    view.resize(1300, 700)
    view.show()
    with qtbot.waitSignal(view.evaluation_loaded, timeout=10_000):
        view.show_run(A_ID, str(tmp_path / "a"), "early")
    assert view.compare_button.isVisibleTo(view)
    view.compare_button.click()
    assert view.pages.currentWidget() is view.compare
    qtbot.waitUntil(lambda: not view.compare.loading, timeout=10_000)
    return view, view.compare


def _pick(qtbot, compare, run_id):
    index = compare.picker.findData(run_id)
    assert index > 0
    compare.picker.setCurrentIndex(index)
    compare.picker.activated.emit(index)  # as a user's choice in the list
    qtbot.waitUntil(lambda: not compare.loading, timeout=10_000)


def _click_header(qtbot, table, key):
    header = table.horizontalHeader()
    column = table.keys.index(key)
    x = header.sectionViewportPosition(column) + header.sectionSize(column) // 2
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, header.height() // 2))


def test_run_b_chosen_is_compared_and_a_difference_column_sorts_biggest_loss_first(qtbot, tmp_path, monkeypatch):
    view, compare = _comparing(qtbot, tmp_path, monkeypatch)
    assert compare.run_ids_offered() == [B_ID, BARE_ID, DET_ID]
    assert "no evaluation yet" in compare.picker.itemText(compare.picker.findData(BARE_ID))
    with qtbot.waitSignal(compare.compared, timeout=10_000):
        _pick(qtbot, compare, B_ID)
    header = compare.header.text()
    assert "early (a1a1a1a1) · val/accuracy 0.5" in header and "late (b2b2b2b2) · val/accuracy 0.75" in header
    table = compare.table
    assert table.column_texts("name") == ["cat", "dog", "owl", "fox"]
    assert table.column_texts("f1_diff") == ["−0.300", "+0.200", "–", "–"]
    assert table.item(0, table.keys.index("f1_diff")).foreground().color() == WORSE
    assert table.item(1, table.keys.index("f1_diff")).foreground().color() == BETTER

    _click_header(qtbot, table, "f1_diff")  # biggest loss first, empty figures last
    assert table.column_texts("name") == ["cat", "dog", "owl", "fox"]
    _click_header(qtbot, table, "f1_diff")  # again: biggest gain first, empty figures still last
    assert table.column_texts("name") == ["dog", "cat", "owl", "fox"]
    _click_header(qtbot, table, "f1_a")  # a figure: best first
    assert table.column_texts("f1_a") == ["0.900", "0.500", "0.400", "–"]

    notes = compare.notes.text()
    assert compare.notes.isVisibleTo(view) and "different data (image count)" in notes
    assert "Only in A (early): owl." in notes and "Only in B (late): fox." in notes
    summary = {compare.summary.item(r, 0).text(): compare.summary.item(r, 3).text() for r in range(2)}
    assert summary == {"accuracy": "0.000", "macro_f1": "0.000"}

    compare.back_button.click()
    assert view.pages.currentWidget() is view.classification


def test_a_run_b_without_an_evaluation_is_evaluated_now_then_compared(qtbot, tmp_path, monkeypatch):
    view, compare = _comparing(qtbot, tmp_path, monkeypatch)
    _pick(qtbot, compare, BARE_ID)
    assert "bare has no evaluation yet" in compare.message.text() and compare.evaluate_button.isVisibleTo(view)
    assert compare.eval_command()[1:6] == ["-u", "-m", "engine", "eval", BARE_ID]
    target = tmp_path / "b" / "evaluation" / "evaluation.json"  # what `engine eval` writes, copied into c
    script = (
        "import pathlib, shutil; print('evaluating', flush=True); "
        f"p = pathlib.Path({str(tmp_path / 'c' / 'evaluation')!r}); p.mkdir(); "
        f"shutil.copy({str(target)!r}, p / 'evaluation.json')"
    )
    compare.eval_command = lambda: [sys.executable, "-c", script]
    with qtbot.waitSignal(compare.compared, timeout=30_000):
        compare.evaluate_button.click()
        assert compare.process is not None and compare.busy.isVisibleTo(view)
    assert "no evaluation yet" not in compare.picker.itemText(compare.picker.findData(BARE_ID))
    assert compare.table.column_texts("name") == ["cat", "dog", "owl", "fox"]


def test_a_run_b_of_another_task_is_refused_with_a_message(qtbot, tmp_path, monkeypatch):
    view, compare = _comparing(qtbot, tmp_path, monkeypatch)
    _pick(qtbot, compare, DET_ID)
    assert "early is a classification run and mislabelled a detection run" in compare.message.text()
    assert compare.comparison is None and not compare.split.isVisibleTo(view)
