"""The Train tab's second job kind: a Ray job (a fake cluster stands in for ray_jobs)."""

import time

import pytest

pytest.importorskip("pytestqt")
pytest.importorskip("mlflow")

from app.training.target_model import REMOTE_RAY, Target  # noqa: E402
from engine.orchestration import ray_jobs  # noqa: E402
from engine.tracking.progress_events import encode_event  # noqa: E402
from tests.conftest import wait_until as _wait  # noqa: E402

pytestmark = pytest.mark.usefixtures("stop_at_close")  # the close dialog answers "stop"

ADDRESS = "http://127.0.0.1:8265"


class FakeCluster:
    """``submit_job`` / ``job_status`` / ``job_logs`` / ``stop_job`` of one pretend cluster, slow to submit."""

    def __init__(self, submit_s=0.5, fail_with=None):
        self.submit_s, self.fail_with = submit_s, fail_with
        self.submitted, self.stopped, self.polls = [], [], 0
        self.status, self.logs = "PENDING", ""
        self.calls_on_gui_thread = 0

    def _note_thread(self):
        from PySide6.QtCore import QCoreApplication, QThread

        if QThread.currentThread() is QCoreApplication.instance().thread():
            self.calls_on_gui_thread += 1

    def submit_job(self, config, address, *, verb="train", token=None, progress_events=False, **_):
        self._note_thread()
        self.progress_events = progress_events
        time.sleep(self.submit_s)  # a real submission uploads files and probes the dataset
        if self.fail_with:
            raise ray_jobs.RayJobError(self.fail_with)
        self.submitted.append((config, address, verb))
        self.status, self.logs = "RUNNING", "job started\n"
        if progress_events:  # what the job's training process writes when asked for events
            self.logs += encode_event("step", epoch=2, epochs=5, batch=1, batches=3, step=4, steps=15) + "\n"
        return f"raysubmit_{len(self.submitted)}"

    def job_status(self, address, job_id, token=None):
        self._note_thread()
        self.polls += 1
        return {
            "job_id": job_id,
            "status": self.status,
            "message": "stopped by the user" if self.status == "STOPPED" else None,
        }

    def job_logs(self, address, job_id, token=None):
        self._note_thread()
        return self.logs

    def stop_job(self, address, job_id, token=None):
        self._note_thread()
        self.stopped.append(job_id)
        self.status = "STOPPED"
        self.logs += "stopping\n"
        return True


@pytest.fixture
def cluster(monkeypatch):
    fake = FakeCluster()
    for name in ("submit_job", "job_status", "job_logs", "stop_job"):
        monkeypatch.setattr(ray_jobs, name, getattr(fake, name))
    monkeypatch.setattr(ray_jobs, "read_token", lambda token_file=None: None)
    return fake


def _tab(qtbot, workspace, dataset):
    from app.training.train_tab import TrainTab

    tab = TrainTab(workspace)
    qtbot.addWidget(tab)
    tab.set_dataset(dataset)
    tab.form.set_value("model.checkpoint", "resnet-tiny")
    tab.target_panel.set_target(Target(where=REMOTE_RAY, dashboard=ADDRESS))
    assert tab.form.is_valid
    return tab


def _log_like_the_job(tracking_uri, run_name, steps):
    """What the job on the cluster does: a run with that name in the store, with loss points."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    from engine.tracking.store import get_or_create_experiment

    client = MlflowClient(tracking_uri)
    experiment = get_or_create_experiment(client, "lightbox")  # artifacts beside the store, not in the cwd
    run = client.create_run(experiment, run_name=run_name)
    now = int(time.time() * 1000)
    client.log_batch(run.info.run_id, metrics=[Metric("train/loss", 1.0 / s, now, s) for s in range(1, steps + 1)])
    return run.info.run_id


def test_train_with_a_ray_address_submits_a_job_logs_it_charts_it_and_stop_calls_stop_job(
    qtbot, cluster, sample_dataset, tmp_path
):
    tab = _tab(qtbot, tmp_path / "ws", sample_dataset)
    cluster.submit_s = 3.0
    started = time.monotonic()
    job = tab.train()
    assert time.monotonic() - started < 2.0, "Train waited for the cluster on the GUI thread"
    assert job.kind == "ray" and job.status == "SUBMITTING" and job.alive() and tab.stop_button.isEnabled()
    _wait(qtbot, lambda: cluster.submitted and job.job_id == "raysubmit_1", 30, "the submission")
    config, address, verb = cluster.submitted[0]
    assert (address, verb) == (ADDRESS, "train") and cluster.progress_events
    assert config.tracking.uri == tab.tracking_uri and config.tracking.run_name == job.label
    _wait(qtbot, lambda: "job started" in tab.log.toPlainText(), 30, "the job's log in the log panel")
    assert "submitted Ray job raysubmit_1" in tab.log.toPlainText()
    _wait(qtbot, lambda: "RUNNING" in tab.progress_label.text(), 30, "the job's state in the progress line")
    _wait(qtbot, lambda: "epoch 2/5" in tab.progress_label.text(), 30, "the job's progress event in the line")
    assert "lightbox_progress" not in tab.log.toPlainText()  # events are read, not shown

    run_id = _log_like_the_job(tab.tracking_uri, config.tracking.run_name, steps=5)
    _wait(
        qtbot,
        lambda: job.run_id == run_id and tab.charts.point_count(run_id) == 5,
        30,
        "the job's run charted from MLflow",
    )
    cluster.logs += "more output\n"
    _wait(qtbot, lambda: "more output" in tab.log.toPlainText(), 30, "new log lines")
    assert tab.log.toPlainText().count("job started") == 1, "only the new part of the log is appended"

    job.grace_s = 0.5  # the stop tag first; stop_job once the grace period is over
    tab.stop()
    from mlflow import MlflowClient

    from engine.tracking.logger import STOP_TAG

    _wait(qtbot, lambda: STOP_TAG in MlflowClient(tab.tracking_uri).get_run(run_id).data.tags, 30, "the stop tag")
    _wait(qtbot, lambda: cluster.stopped == ["raysubmit_1"], 30, "stop_job")
    _wait(qtbot, lambda: not job.alive(), 30, "the job to end")
    assert job.exit_code == 143 and "ended STOPPED" in tab.progress_label.text()
    assert not tab.stop_button.isEnabled()
    assert cluster.calls_on_gui_thread == 0


def test_stop_before_the_run_is_known_calls_stop_job_at_once(qtbot, cluster, sample_dataset, tmp_path):
    tab = _tab(qtbot, tmp_path / "ws", sample_dataset)
    job = tab.train()
    tab.stop()  # still submitting: stopped as soon as it has an id
    _wait(qtbot, lambda: cluster.stopped == ["raysubmit_1"], 30, "stop_job after the submission")
    _wait(qtbot, lambda: not job.alive(), 30, "the job to end")
    assert "Ray: stopped by the user" in tab.log.toPlainText()


def test_a_refused_submission_is_shown_and_nothing_stays_running(qtbot, cluster, sample_dataset, tmp_path):
    cluster.fail_with = f"cannot reach the Ray cluster at {ADDRESS}: Connection refused"
    tab = _tab(qtbot, tmp_path / "ws", sample_dataset)
    job = tab.train()
    _wait(qtbot, lambda: not job.alive(), 30, "the failed submission")
    assert f"the Ray job was not submitted: cannot reach the Ray cluster at {ADDRESS}" in tab.log.toPlainText()
    assert job.exit_code == 1 and not tab.stop_button.isEnabled()
    assert cluster.polls == 0


def test_closing_the_app_with_a_ray_job_going_stops_it_or_leaves_it_on_the_cluster(
    qtbot, cluster, sample_dataset, tmp_path, monkeypatch
):
    from app.training.train_tab import TrainTab

    tab = _tab(qtbot, tmp_path / "ws", sample_dataset)
    job = tab.train()
    _wait(qtbot, lambda: job.job_id is not None, 30, "the submission")
    monkeypatch.setattr(TrainTab, "ask_close_choice", lambda self: "leave")
    assert tab.confirm_close()
    assert cluster.stopped == [] and not job._poll_timer.isActive()

    tab2 = _tab(qtbot, tmp_path / "ws2", sample_dataset)
    job2 = tab2.train()
    _wait(qtbot, lambda: job2.job_id is not None, 30, "the second submission")
    monkeypatch.setattr(TrainTab, "ask_close_choice", lambda self: "stop")
    assert tab2.confirm_close()
    assert cluster.stopped == [job2.job_id]


def test_a_form_without_a_dashboard_address_still_trains_as_a_local_process(
    qtbot, cluster, sample_dataset, tmp_path, monkeypatch
):
    from app.training.process_job import ProcessJob

    monkeypatch.setattr(ProcessJob, "start", lambda self: None)  # the command line is all this test needs
    tab = _tab(qtbot, tmp_path / "ws", sample_dataset)
    tab.target_panel.set_target(Target())
    job = tab.train()
    assert job.kind == "local" and "engine train" in job.describe() and cluster.submitted == []


def test_tune_at_a_remote_cluster_submits_a_search_job(qtbot, cluster, sample_dataset, tmp_path):
    tab = _tab(qtbot, tmp_path / "ws", sample_dataset)
    tab.search_form.add_entry("optim.lr")
    assert tab.tune_button.isEnabled()
    job = tab.tune()
    assert job is not None and job.verb == "tune", tab.banner.text()
    _wait(qtbot, lambda: cluster.submitted, 10, "the search's submission")
    config, address, verb = cluster.submitted[0]
    assert (address, verb) == (ADDRESS, "tune")
    assert "optim.lr" in config.search.space
    assert "python -m engine tune" in job.describe()
    tab.stop()
    _wait(qtbot, lambda: cluster.stopped, 30, "stop_job of the search")


def test_the_line_under_the_forms_says_where_runs_go(qtbot, cluster, sample_dataset, tmp_path):
    tab = _tab(qtbot, tmp_path / "ws", sample_dataset)
    assert tab.target_line.text().startswith(f"Runs on the Ray cluster at {ADDRESS}; tracked in")
    tab.target_panel.set_target(Target())
    assert tab.target_line.text().startswith("Runs on this computer (")
    tab.target_panel.set_target(Target(where=REMOTE_RAY, dashboard="ray://head:10001"))
    assert "Fix the fields marked in Where to run" in tab.target_line.text()
