"""A real search from the Train tab: Tune charts its trials and marks the best; Stop ends the search
and keeps the trials that finished. Each starts Ray and trains (about a minute on two cores)."""

import time

import pytest

pytest.importorskip("pytestqt")
pytest.importorskip("ray")

from PySide6.QtCore import Qt  # noqa: E402

from engine.orchestration.jobs import run_status  # noqa: E402
from tests.conftest import wait_until  # noqa: E402


@pytest.fixture
def tab(qtbot, tmp_path, sample_dataset, stop_at_close):
    from app.training.train_tab import TrainTab

    tab = TrainTab(tmp_path / "ws")
    qtbot.addWidget(tab)
    tab.set_dataset(sample_dataset)
    for path, value in {
        "model.checkpoint": "resnet-tiny",
        "data.image_size": 32,
        "data.num_workers": 0,
        "optim.epochs": 1,
        "optim.batch_size": 16,
    }.items():
        tab.form.set_value(path, value)
    tab.search_form.add_entry("optim.lr")
    # The tab's first read creates the workspace's store; a search started meanwhile would create it too.
    wait_until(qtbot, lambda: tab.runs.loaded, 60, "the runs list")
    yield tab
    tab.confirm_close()


@pytest.mark.slow
def test_tune_charts_every_trial_and_marks_the_best(qtbot, tab):
    tab.search_form.set_value("num_samples", 2)
    qtbot.mouseClick(tab.tune_button, Qt.LeftButton)
    job = tab.current_job()
    assert job is not None and job.verb == "tune", tab.banner.text()
    wait_until(qtbot, lambda: job.exit_code is not None, 300, "the search to end")
    assert job.exit_code == 0, "\n".join(job.log_lines[-20:])
    assert run_status(tab.tracking_uri, job.run_id) == "FINISHED"
    tab.refresh_runs()

    def listed():
        search = tab.runs.row_for(job.run_id)
        trials = [r for r in tab.runs.rows if r.search_id == job.run_id]
        return search is not None and search.status == "FINISHED" and len(trials) == 2

    wait_until(qtbot, listed, 60, "the search and its 2 trials in the runs table")
    trials = [r for r in tab.runs.rows if r.search_id == job.run_id]
    assert sorted(tab.charts.roles.values()) == ["best", "trial"]
    assert [r.best.startswith("★") for r in trials].count(True) == 1 and all("lr=" in r.best for r in trials)
    wait_until(qtbot, lambda: all(tab.charts.point_count(r.run_id) for r in trials), 90, "the trials' curves")
    tab.bottom.setCurrentWidget(tab.scatter)
    assert len(tab.scatter.points.params[0].x) == 2


@pytest.mark.slow
def test_stop_on_a_search_ends_it_and_keeps_its_finished_trials(qtbot, tab):
    from mlflow import MlflowClient

    tab.search_form.set_value("num_samples", 30)
    tab.search_form.set_value("scheduler", "fifo")
    qtbot.mouseClick(tab.tune_button, Qt.LeftButton)
    job = tab.current_job()
    client = MlflowClient(tab.tracking_uri)

    def a_trial_finished():
        if job.run_id is None:
            return False
        runs = client.search_runs([client.get_run(job.run_id).info.experiment_id])
        return any(r.data.tags.get("mlflow.parentRunId") == job.run_id and r.info.end_time for r in runs)

    wait_until(qtbot, a_trial_finished, 300, "a first trial to end")
    started = time.monotonic()
    qtbot.mouseClick(tab.stop_button, Qt.LeftButton)
    assert "finished trials are kept" in tab.progress_label.text()
    wait_until(qtbot, lambda: job.exit_code is not None, 180, "the stopped search to end")
    assert time.monotonic() - started < job.grace_s, "the search ignored its stop tag: it had to be terminated"
    assert job.exit_code == 3 and job.failure is None
    assert run_status(tab.tracking_uri, job.run_id) == "KILLED"
    trials = [r for r in client.search_runs([client.get_run(job.run_id).info.experiment_id])]
    trials = [r for r in trials if r.data.tags.get("mlflow.parentRunId") == job.run_id]
    finished = [r for r in trials if r.info.status == "FINISHED"]
    assert 1 <= len(finished) < 30 and all(r.data.metrics.get("val/loss") is not None for r in finished)
