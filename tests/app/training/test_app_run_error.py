"""A failed run says why, from the ``lightbox.error`` tag the engine
records (its last error line): in the run's Summary and as the Runs table row's tooltip."""

import pytest

pytest.importorskip("mlflow")

REASON = "RuntimeError: Sizes of tensors must match except in dimension 1. Expected size 26 but got size 25"


@pytest.fixture
def failed_run(tmp_path):
    from engine.tracking.logger import RunLogger

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = RunLogger(uri, workspace=tmp_path, run_name="rt-detr-0101", tags={"lightbox.task": "detection"})
    run.log_metrics({"train/loss": 58.0}, 0)
    run.set_tag("lightbox.error", REASON)
    run.finish("FAILED")
    fine = RunLogger(uri, workspace=tmp_path, run_name="resnet-0102", tags={"lightbox.task": "classification"})
    fine.finish("FINISHED")
    return uri, run.run_id, fine.run_id


def test_the_summary_of_a_failed_run_says_why(qtbot, failed_run):
    from app.training.runs_model import run_summary
    from app.training.runs_view import RunSummary

    uri, failed, fine = failed_run
    summary = RunSummary()
    qtbot.addWidget(summary)
    summary.show()
    summary.show_summary(run_summary(uri, failed))
    assert summary.error.isVisible() and REASON in summary.error.text()
    summary.show_summary(run_summary(uri, fine))  # a run that did not fail shows no reason
    assert not summary.error.isVisible()
    summary.show_summary(run_summary(uri, failed))
    summary.clear()
    assert not summary.error.isVisible()


def test_the_runs_table_row_of_a_failed_run_has_the_reason_as_its_tooltip(qtbot, failed_run):
    from app.training.runs_model import load_runs
    from app.training.runs_view import RunsTable

    uri, failed, fine = failed_run
    table = RunsTable()
    qtbot.addWidget(table)
    table.set_rows(load_runs(uri))
    row = table.item_for(failed)
    assert all(REASON in row.toolTip(column) for column in range(table.tree.columnCount()))
    assert "error" not in table.item_for(fine).toolTip(0).lower()
