"""A run that had ended and is resumed (the same MLflow run, RUNNING again) keeps
being charted, without unticking and ticking it again."""

import time

import pytest

pytest.importorskip("mlflow")


def _wait(qtbot, predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        qtbot.wait(50)


def _log(run, steps):
    for step in steps:
        run.log_metrics({"train/loss": 1.0 / (step + 1)}, step)
    run.flush()


def test_a_resumed_run_keeps_growing_in_the_chart(qtbot, tmp_path):
    from app.training.charts import ChartPanel, MetricPoller
    from engine.tracking.logger import RunLogger

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = RunLogger(uri, workspace=tmp_path, flush_interval=60)
    _log(first, range(10))
    first.finish("KILLED")  # stopped at step 9

    panel = ChartPanel()
    qtbot.addWidget(panel)
    poller = MetricPoller(uri, interval_ms=100)
    poller.points.connect(panel.add_points)
    statuses = []
    poller.status.connect(lambda run_id, status, tags: statuses.append(status))
    try:
        panel.add_run(first.run_id, "run")
        poller.watch(first.run_id)
        _wait(qtbot, lambda: panel.point_count(first.run_id) == 10 and statuses, 60, "the first ten steps")
        # Resume as the Train tab does it: it watches the run (live) before the new process has
        # reopened it, so the first answer still says KILLED.
        statuses.clear()
        poller.watch(first.run_id, live=True)
        _wait(qtbot, lambda: "KILLED" in statuses, 30, "the poll of the still-ended run")
        second = RunLogger(uri, workspace=tmp_path, run_id=first.run_id, flush_interval=60)
        _log(second, range(10, 16))
        _wait(qtbot, lambda: panel.point_count(first.run_id) == 16, 20, "the resumed steps in the chart")
        _log(second, range(16, 20))
        second.finish("FINISHED")
        _wait(qtbot, lambda: panel.point_count(first.run_id) == 20, 20, "the last steps in the chart")
        _wait(qtbot, lambda: statuses[-1:] == ["FINISHED"], 20, "the run's new end")
        steps = list(panel.runs[first.run_id].series["train/loss"].step)
        assert steps == list(range(20))  # every step once, in order
    finally:
        poller.close()
