"""A Ray job asks the cluster for its status and log once at a time: a timer tick while a read is
in flight starts no second one, and the next tick after its answer does."""

import threading
from types import SimpleNamespace

import pytest

pytest.importorskip("pytestqt")

from engine.orchestration import ray_jobs  # noqa: E402

ADDRESS = "http://127.0.0.1:8265"


class SlowStatusCluster:
    """A pretend cluster whose status reads wait for ``release``."""

    def __init__(self):
        self.release = threading.Event()
        self.status_calls = 0
        self.status = "RUNNING"

    def submit_job(self, config, address, *, verb="train", token=None, **_):
        return "raysubmit_1"

    def job_status(self, address, job_id, token=None):
        self.status_calls += 1
        assert self.release.wait(10), "the test never let the status read answer"
        return {"job_id": job_id, "status": self.status, "message": None}

    def job_logs(self, address, job_id, token=None):
        return "job started\n"

    def stop_job(self, address, job_id, token=None):
        return True


@pytest.fixture
def cluster(monkeypatch):
    from app.training import ray_job

    fake = SlowStatusCluster()
    for name in ("submit_job", "job_status", "job_logs", "stop_job"):
        monkeypatch.setattr(ray_jobs, name, getattr(fake, name))
    monkeypatch.setattr(ray_jobs, "read_token", lambda token_file=None: None)
    monkeypatch.setattr(ray_job, "find_run_by_name", lambda *args: None)  # no MLflow store in this test
    yield fake
    fake.release.set()


def test_one_status_read_at_a_time(qtbot, cluster):
    from app.training.ray_job import RayJob

    config = SimpleNamespace(tracking=SimpleNamespace(run_name="ray-polls", experiment="lightbox"))
    job = RayJob(config, ADDRESS, "sqlite:///unused.db", poll_ms=60_000)
    ended = []
    job.finished.connect(lambda *args: ended.append(args))
    job.start()
    qtbot.waitUntil(lambda: cluster.status_calls == 1, timeout=5000)  # the first read, once submitted
    for _ in range(3):
        job._poll()  # what the poll timer does on each tick
    qtbot.wait(100)
    assert cluster.status_calls == 1
    cluster.release.set()
    qtbot.waitUntil(lambda: job.status == "RUNNING", timeout=5000)
    assert job.log_lines[-1] == "job started"
    cluster.status = "SUCCEEDED"
    job._poll()  # answered: the next tick reads again
    qtbot.waitUntil(lambda: bool(ended), timeout=5000)
    assert cluster.status_calls == 2 and job.exit_code == 0
