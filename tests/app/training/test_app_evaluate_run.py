"""From the Runs table to the Evaluate tab: Evaluate and Predict… for finished runs, the run's evaluation
read from its folder in the background, a run without one offered "Evaluate now" (a child process that
writes it, then it is shown), and a broken file named in a message."""

from __future__ import annotations

import json
import sys

import pytest
from PySide6.QtCore import Qt

from app.training.runs_model import RunRow
from app.training.runs_view import RunsTable
from engine.tracking.tags import SEARCH_TAG
from tests.app.training.test_app_evaluate_model import one_of_each, write_report


def _row(run_id, status="FINISHED", run_dir=None, **tags):
    return RunRow(run_id, f"name-{run_id}", status, "detection", "detr-tiny", "", 1, 1.0, run_dir, tags=tags)


def test_evaluate_and_predict_are_offered_for_finished_runs_only(qtbot):
    table = RunsTable()
    qtbot.addWidget(table)
    table.set_rows(
        [_row("done"), _row("going", "RUNNING"), _row("broken", "FAILED"), _row("search", **{SEARCH_TAG: "true"})]
    )
    enabled = {}
    for run_id in ("done", "going", "broken", "search"):
        table.select_run(run_id)
        enabled[run_id] = (table.buttons["Evaluate"].isEnabled(), table.buttons["Predict…"].isEnabled())
    assert enabled == {
        "done": (True, True),
        "going": (False, False),
        "broken": (False, False),
        "search": (False, False),
    }
    table.select_run("done")
    with qtbot.waitSignal(table.evaluate_requested) as asked:
        table.buttons["Evaluate"].click()
    assert asked.args == ["done"]
    with qtbot.waitSignal(table.predict_requested) as asked:
        table.buttons["Predict…"].click()
    assert asked.args == ["done"]


def _view(qtbot, tmp_path):
    from app.training.evaluate_view import EvaluateView

    view = EvaluateView(tmp_path / "ws")
    qtbot.addWidget(view)
    return view


def test_a_runs_evaluation_is_read_from_its_folder_in_the_background(qtbot, tmp_path):
    run_dir = tmp_path / "run"
    write_report(one_of_each(), run_dir)
    view = _view(qtbot, tmp_path)
    with qtbot.waitSignal(view.evaluation_loaded, timeout=10_000) as loaded:
        view.show_run("abc123", str(run_dir), "tidy-run")
        assert view.loading and view.pages.currentIndex() == 0  # reading: the message page says so
    assert loaded.args[0].task == "detection"
    assert view.pages.currentWidget() is view.detection
    assert "tidy-run" in view.title.text() and view.detection.figures_shown()["FP"] == "4"


def test_a_run_without_an_evaluation_offers_evaluate_now_which_runs_a_child_and_shows_it(qtbot, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    view = _view(qtbot, tmp_path)
    view.show_run("abc123", str(run_dir), "bare-run")
    qtbot.waitUntil(lambda: not view.loading, timeout=10_000)
    assert "no evaluation yet" in view.message.text() and view.evaluate_button.isVisibleTo(view)
    assert view.eval_command()[1:6] == ["-u", "-m", "engine", "eval", "abc123"]
    # The engine's place taken by a child that writes the file as `engine eval` would.
    target = run_dir / "evaluation" / "evaluation.json"
    script = (
        "import json, pathlib, sys; print('evaluating…', flush=True); "
        f"p = pathlib.Path({str(target)!r}); p.parent.mkdir(parents=True, exist_ok=True); "
        f"p.write_text({json.dumps(json.dumps(one_of_each()))})"
    )
    view.eval_command = lambda: [sys.executable, "-c", script]
    with qtbot.waitSignal(view.evaluation_loaded, timeout=30_000):
        view.evaluate_button.click()
        assert view.busy.isVisibleTo(view) and view.process is not None
    assert view.pages.currentWidget() is view.detection


def test_a_failed_evaluation_and_a_broken_file_are_said_not_raised(qtbot, tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "evaluation").mkdir(parents=True)
    (run_dir / "evaluation" / "evaluation.json").write_text("{broken")
    view = _view(qtbot, tmp_path)
    view.show_run("abc123", str(run_dir), "odd-run")
    qtbot.waitUntil(lambda: not view.loading, timeout=10_000)
    assert "evaluation.json" in view.message.text() and view.evaluate_button.isVisibleTo(view)
    view.eval_command = lambda: [sys.executable, "-c", "import sys; print('no checkpoint in run abc123'); sys.exit(2)"]
    view.evaluate_button.click()
    qtbot.waitUntil(lambda: view.process is None, timeout=30_000)
    assert "no checkpoint in run abc123" in view.message.text()


@pytest.mark.parametrize("classes", [2, 200])
def test_the_confusion_matrix_stays_readable_and_clickable_at_any_class_count(qtbot, classes):
    import numpy as np

    from app.training.confusion_view import ConfusionMatrixView

    matrix = ConfusionMatrixView()
    qtbot.addWidget(matrix)
    matrix.resize(700, 600)
    names = [f"class number {k}" for k in range(classes)]
    counts = np.arange(classes * classes).reshape(classes, classes)
    matrix.set_matrix(counts, names)
    matrix.grab()  # paints
    layout = matrix.layout_labels()
    rows = [label.rect for label in layout.rows]
    assert all(a.bottom() <= b.top() for a, b in zip(rows, rows[1:]))  # written names never overlap
    last = classes - 1
    with qtbot.waitSignal(matrix.cell_clicked) as clicked:
        qtbot.mouseClick(matrix, Qt.LeftButton, pos=matrix.cell_centre(last, 0).toPoint())
    assert clicked.args == [last, 0]
