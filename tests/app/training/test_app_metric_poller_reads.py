"""MetricPoller's reads: a read's answer never reaches a poller that is gone or a run that is
no longer watched, and a run is read once at a time.

The helper process is replaced by a reader whose reads wait for the test to let them answer,
so each read is in flight exactly as long as the test says."""

import threading

import pytest
import shiboken6
from PySide6.QtCore import QObject

from app.training import reader_process

POINTS = {"train/loss": [(0, 1.0, 1000)]}


class HeldReader:
    """Stands in for a ReaderProcess: each read waits for ``release``; counts what it was asked."""

    made: list["HeldReader"] = []

    def __init__(self):
        self.release = threading.Event()
        self.answered = threading.Event()
        self.polls: list[tuple[str, str, bool]] = []
        self.forgotten: list[str] = []
        HeldReader.made.append(self)

    def poll(self, tracking_uri, run_id, start_over=False):
        self.polls.append((tracking_uri, run_id, start_over))
        try:
            assert self.release.wait(10), "the test never let the read answer"
            return POINTS, "RUNNING", {}
        finally:
            self.answered.set()

    def state(self, tracking_uri, run_id):
        return "RUNNING", None

    def forget(self, tracking_uri, run_id):
        self.forgotten.append(run_id)

    def close(self):
        self.release.set()


@pytest.fixture
def held_readers(monkeypatch):
    HeldReader.made = []
    monkeypatch.setattr(reader_process, "ReaderProcess", HeldReader)
    yield HeldReader.made
    for reader in HeldReader.made:
        reader.release.set()


def _backlog(readers):
    return readers[1]  # made in the poller's order: live, backlog


def test_an_answer_arriving_after_the_poller_is_deleted_calls_nothing(qtbot, held_readers):
    from app.training.charts import MetricPoller

    owner = QObject()  # the poller's widget (the Train tab), closed while a read is in flight
    poller = MetricPoller("sqlite:///unused.db", interval_ms=60_000, parent=owner)
    poller.watch("run-1")
    reader = _backlog(held_readers)
    qtbot.waitUntil(lambda: bool(reader.polls), timeout=5000)
    # Deleting the poller waits for its reading threads, so the read answers meanwhile: its answer
    # is queued for the GUI thread, to arrive once the poller is gone.
    threading.Timer(0.2, reader.release.set).start()
    shiboken6.delete(owner)  # and its poller with it
    assert not shiboken6.isValid(poller)
    assert reader.answered.is_set()
    qtbot.wait(200)  # the answer's queued signal is delivered (or dropped) here; pytest-qt fails on an error


def test_an_answer_for_an_unwatched_run_is_not_charted(qtbot, held_readers):
    from app.training.charts import MetricPoller

    poller = MetricPoller("sqlite:///unused.db", interval_ms=60_000)
    got = []
    poller.points.connect(lambda run_id, points: got.append(run_id))
    poller.status.connect(lambda run_id, status, tags: got.append(status))
    poller.watch("run-1")
    reader = _backlog(held_readers)
    qtbot.waitUntil(lambda: bool(reader.polls), timeout=5000)
    poller.unwatch("run-1")
    assert reader.forgotten == ["run-1"]
    reader.release.set()
    assert reader.answered.wait(5)
    qtbot.wait(200)
    assert got == []
    poller.close()


def test_a_run_is_read_once_at_a_time_and_its_answer_is_charted(qtbot, held_readers):
    from app.training.charts import MetricPoller

    poller = MetricPoller("sqlite:///unused.db", interval_ms=60_000)
    got = []
    poller.points.connect(lambda run_id, points: got.append((run_id, points)))
    poller.watch("run-1", tracking_uri="sqlite:///own.db", live=True)
    reader = held_readers[0]
    qtbot.waitUntil(lambda: bool(reader.polls), timeout=5000)
    for _ in range(3):  # ticks while the first read is in flight start no other read of it
        poller.poll()
    qtbot.wait(100)
    assert reader.polls == [("sqlite:///own.db", "run-1", True)]
    reader.release.set()
    qtbot.waitUntil(lambda: got == [("run-1", POINTS)], timeout=5000)
    poller.poll()  # answered: the next tick reads on where it left off
    qtbot.waitUntil(lambda: len(reader.polls) == 2, timeout=5000)
    assert reader.polls[1] == ("sqlite:///own.db", "run-1", False)
    poller.close()
