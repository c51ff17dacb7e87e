"""Opening an export: the runs table's Export… is enabled for a finished run and for a search with
a finished trial, and asks for that row; the dialog for a search names the trial it exports."""

import pytest

from app.training.runs_model import RunRow
from engine.tracking.tags import PARENT_RUN_TAG, SEARCH_TAG

pytest.importorskip("pytestqt")


def _row(run_id, status="FINISHED", best="val/accuracy 0.5", **tags):
    params = {"data.path": "/data/shapes", "search.metric": "val/accuracy", "search.mode": "max"}
    row = RunRow(
        run_id, f"name-{run_id}", status, "classification", "resnet-tiny", best, 1, 1.0, None, tags=tags, params=params
    )
    row.metrics["val/accuracy"] = float(best.split()[-1]) if best else 0.0
    return row


def _rows():
    return [
        _row("done"),
        _row("going", status="RUNNING"),
        _row("broken", status="FAILED"),
        _row("search", status="RUNNING", best="", **{SEARCH_TAG: "true"}),
        _row("t1", best="val/accuracy 0.6", **{PARENT_RUN_TAG: "search"}),
        _row("t2", best="val/accuracy 0.8", **{PARENT_RUN_TAG: "search"}),
        _row("empty", status="RUNNING", best="", **{SEARCH_TAG: "true"}),
        _row("t3", status="RUNNING", best="val/accuracy 0.9", **{PARENT_RUN_TAG: "empty"}),
    ]


def test_export_is_offered_for_finished_runs_and_searches_with_a_finished_trial(qtbot):
    from app.training.runs_view import RunsTable

    table = RunsTable()
    qtbot.addWidget(table)
    table.set_rows(_rows())
    button = table.buttons["Export…"]
    enabled = {}
    for run_id in ("done", "going", "broken", "search", "t1", "empty", "t3"):
        table.select_run(run_id)
        enabled[run_id] = button.isEnabled()
    assert enabled == {
        "done": True,
        "going": False,
        "broken": False,
        "search": True,
        "t1": True,
        "empty": False,
        "t3": False,
    }
    table.select_run("search")
    with qtbot.waitSignal(table.export_requested) as asked:
        button.click()
    assert asked.args == ["search"]


def test_the_dialog_for_a_search_exports_its_best_trial_and_says_which(qtbot, tmp_path):
    from app.training.export_dialog import ExportDialog

    rows = _rows()
    dialog = ExportDialog(next(r for r in rows if r.run_id == "search"), rows, tmp_path)
    qtbot.addWidget(dialog)
    assert dialog.source.currentData() == "t2" and dialog.source.count() == 2 and dialog.source.isEnabled()
    assert "its best finished trial, name-t2 (val/accuracy 0.8)" in dialog.note.text()
    assert dialog.destination.text() == str(tmp_path / "exports" / "name-t2")
    assert dialog.model_name.text() == "shapes-classification"
    dialog.source.setCurrentIndex(1)  # another trial, chosen by hand
    assert dialog.form().run_id == "t1" and dialog.destination.text().endswith("name-t1")
    assert dialog.export_button.isEnabled()


def test_predict_from_the_export_dialog_closes_it_so_the_predict_dialog_takes_input(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QApplication, QWidget

    import app.training.predict_dialog as predict_dialog
    from app.training.export_dialog import open_export_dialog
    from app.training.runs_view import RunsTable

    tab = QWidget()  # what open_export_dialog uses of the Train tab
    qtbot.addWidget(tab)
    tab.runs = RunsTable(tab)
    tab.runs.set_rows(_rows())
    tab.workspace, tab.tracking_uri = tmp_path, f"sqlite:///{tmp_path / 'm.db'}"
    tab.show()
    opened = []

    def fake_predict(parent, workspace, tracking_uri=None, run_id=None, export_dir=None):
        # What a predict dialog needs: no modal dialog left in front of it.
        opened.append((export_dir, QApplication.activeModalWidget()))

    monkeypatch.setattr(predict_dialog, "open_predict_dialog", fake_predict)
    dialog = open_export_dialog(tab, "done")
    assert dialog is not None
    qtbot.waitUntil(dialog.isVisible)
    assert QApplication.activeModalWidget() is dialog
    dialog.predict_requested.emit(str(tmp_path / "export"))
    assert opened == [(str(tmp_path / "export"), None)]
    qtbot.wait(50)  # the closed dialog deletes itself (WA_DeleteOnClose) before the tab goes
