"""TaskSlot: the newest task wins, the old one is cancelled and cut off, progress is throttled,
and nothing is held once the tasks have returned."""

import gc
import threading
import time
import weakref

from app.widgets.task_slot import PROGRESS_INTERVAL_S, TaskSlot


class Record:
    def __init__(self):
        self.done, self.errors, self.progress = [], [], []

    def callbacks(self):
        return {
            "on_done": self.done.append,
            "on_error": self.errors.append,
            "on_progress": lambda *report: self.progress.append(report),
        }


def _held(release: threading.Event, value, *, progress=None, cancel=None):
    progress("working", 1, 2)
    release.wait(10)
    progress("late", 2, 2)
    return value


def test_the_newest_task_wins_and_the_old_ones_word_never_arrives(qtbot):
    slot, record = TaskSlot(), Record()
    release_old, release_new = threading.Event(), threading.Event()
    old = slot.start(_held, release_old, "old", **record.callbacks())
    qtbot.waitUntil(lambda: record.progress == [("working", 1, 2)], timeout=5000)
    new = slot.start(_held, release_new, "new", **record.callbacks())
    assert old.cancelled and not new.cancelled  # starting the new one set the old one's cancel Event
    assert slot.task is new and slot.busy
    release_new.set()
    qtbot.waitUntil(lambda: record.done == ["new"], timeout=5000)
    release_old.set()  # the old task finishes last, with a result and progress of its own
    qtbot.waitUntil(lambda: not slot.running, timeout=5000)
    qtbot.wait(50)
    assert record.done == ["new"] and record.errors == []
    assert ("late", 2, 2) in record.progress and record.progress.count(("late", 2, 2)) == 1  # the new one's only
    assert not slot.busy and slot.task is None


def test_a_late_error_of_a_replaced_task_is_dropped(qtbot):
    slot, record = TaskSlot(), Record()
    release = threading.Event()

    def fails(*, cancel=None):
        release.wait(10)
        raise ValueError("stale failure")

    slot.start(fails, **record.callbacks())
    slot.start(lambda: "fresh", **record.callbacks())
    release.set()
    qtbot.waitUntil(lambda: not slot.running, timeout=5000)
    qtbot.wait(50)
    assert record.done == ["fresh"] and record.errors == []


def test_cancel_sets_the_event_and_drops_the_result(qtbot):
    slot, record = TaskSlot(), Record()
    release = threading.Event()
    task = slot.start(_held, release, "x", **record.callbacks())
    slot.cancel()
    assert task.cancelled and slot.task is None and not slot.busy
    release.set()
    qtbot.waitUntil(lambda: not slot.running, timeout=5000)
    qtbot.wait(50)
    assert record.done == []


def test_errors_reach_the_current_tasks_callback(qtbot):
    slot, record = TaskSlot(), Record()

    def fails():
        raise ValueError("no such file: a.json")

    slot.start(fails, **record.callbacks())
    qtbot.waitUntil(lambda: bool(record.errors), timeout=5000)
    assert record.errors == ["no such file: a.json"] and record.done == []
    assert not slot.busy


def test_a_callback_may_start_the_next_task_in_the_same_slot(qtbot):
    slot, results = TaskSlot(), []

    def first_done(value):
        results.append(value)
        slot.start(lambda: "second", on_done=results.append)

    slot.start(lambda: "first", on_done=first_done)
    qtbot.waitUntil(lambda: results == ["first", "second"], timeout=5000)


def test_progress_is_throttled_and_the_last_report_arrives_before_the_result(qtbot):
    slot, order = TaskSlot(), []

    def chatty(*, progress=None):
        started = time.monotonic()
        for step in range(1, 2001):
            progress("step", step, 2000)
        return time.monotonic() - started

    slot.start(
        chatty,
        on_done=lambda took: order.append(("done", took)),
        on_progress=lambda text, done, total: order.append(("progress", done)),
    )
    qtbot.waitUntil(lambda: bool(order) and order[-1][0] == "done", timeout=5000)
    reports = [done for kind, done in order if kind == "progress"]
    took = order[-1][1]
    assert len(reports) <= 2 + took / PROGRESS_INTERVAL_S  # the first, one per interval, and the last
    assert len(reports) < 20
    assert reports[0] == 1 and reports[-1] == 2000  # the latest report is never lost
    assert order[-2] == ("progress", 2000)


def test_no_reference_is_held_once_the_tasks_have_returned(qtbot):
    slot, results = TaskSlot(), []
    tasks = [slot.start(lambda: "a", on_done=results.append)]
    qtbot.waitUntil(lambda: results == ["a"], timeout=5000)
    tasks.append(slot.start(lambda: "b", on_done=results.append))
    qtbot.waitUntil(lambda: results == ["a", "b"], timeout=5000)
    qtbot.waitUntil(lambda: all(task.done.is_set() for task in tasks), timeout=5000)
    qtbot.wait(20)  # their threads let go of them just after
    refs = [weakref.ref(task) for task in tasks]
    tasks.clear()
    slot.start(lambda: None)  # a start (or an end) lets go of the tasks that have returned
    qtbot.waitUntil(lambda: not slot.running, timeout=5000)

    def released():
        gc.collect()
        return all(ref() is None for ref in refs)

    qtbot.waitUntil(released, timeout=5000)


def test_a_task_outlives_its_dropped_slot_until_it_returns(qtbot):
    release, seen = threading.Event(), []
    slot = TaskSlot()
    task_ref = weakref.ref(slot.start(_held, release, "x", on_done=seen.append))
    del slot
    gc.collect()
    assert task_ref() is not None  # still running: kept alive, or the pool would run a freed object
    release.set()
    qtbot.waitUntil(lambda: task_ref() is None or task_ref().done.is_set(), timeout=5000)


def test_join_waits_for_cancelled_tasks_too(qtbot):
    slot = TaskSlot()
    release = threading.Event()
    old = slot.start(_held, release, "old")
    slot.start(lambda: "new")
    assert not slot.join(0.05)
    release.set()
    assert slot.join(5)
    assert old.done.is_set()


def test_a_slot_whose_owner_is_gone_calls_nothing(qtbot):
    from PySide6.QtWidgets import QLabel

    owner, seen = QLabel(), []
    slot = TaskSlot(owner)
    release = threading.Event()
    task = slot.start(_held, release, "late", on_done=lambda value: seen.append(owner.setText(value)))
    owner.deleteLater()
    qtbot.wait(20)  # the owner, and the slot with it, are deleted now
    release.set()
    qtbot.waitUntil(task.done.is_set, timeout=5000)
    qtbot.wait(50)
    assert seen == []  # no call into a deleted widget
