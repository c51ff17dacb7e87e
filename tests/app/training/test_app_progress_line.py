"""The progress line is read from the training's progress events (JSON lines), not a bar's redraw:
epoch, batch and step with their totals and the ETA the training timed, whatever else the log holds."""

import pytest

from app.training.progress import OutputSplitter, parse_progress
from engine.tracking.progress_events import encode_event

pytest.importorskip("pytestqt")


def event(kind="step", **fields) -> str:
    counts = dict(epoch=3, epochs=34, batch=2, batches=3, step=8, steps=102, eta_s=41.2, loss=0.53)
    return encode_event(kind, **{**counts, **fields})


def test_events_become_the_progress_line_and_never_reach_the_log():
    splitter = OutputSplitter()
    assert splitter.feed("recipe: 34 epochs of 3 optimiser steps\n" + event()[:20]) == [
        "recipe: 34 epochs of 3 optimiser steps"
    ]
    assert splitter.progress is None  # half an event is not read
    assert splitter.feed(event()[20:] + "\nhello\n") == ["hello"]
    assert splitter.progress.describe() == "epoch 3/34 · batch 2/3 · step 8/102 · ETA 0:41"
    assert splitter.progress.loss == pytest.approx(0.53)
    # Not timed yet; a charted step ahead of the event's wins, one behind it does not take the line back.
    splitter.feed(event("epoch_start", epoch=1, batch=0, step=0, eta_s=None) + "\n")
    assert splitter.progress.describe() == "epoch 1/34 · batch 0/3 · step 0/102 · ETA …"
    assert "step 7/102" in splitter.progress.describe(step=7)
    assert "step 8/102" in parse_progress(event()).describe(step=3)


def test_an_event_behind_a_prefix_is_read_and_a_cut_one_is_dropped():
    """Ray writes the worker's name (in colour) before each of its lines; a killed child may leave half a line."""
    ray_line = "\x1b[36m(RayTrainWorker pid=4242)\x1b[0m " + event(step=9, eta_s=3725) + "\n"
    splitter = OutputSplitter()
    assert splitter.feed(ray_line) == []
    assert splitter.progress.describe() == "epoch 3/34 · batch 2/3 · step 9/102 · ETA 1:02:05"
    assert splitter.feed(event()[:-5] + "\n") == []  # cut short: not a log line, not progress
    assert splitter.progress.step == 9
    assert parse_progress("Epoch 2:  33%|###       | 1/3 [00:02<00:04, 0.5it/s]") is None


def test_the_job_shows_each_event_once_and_takes_the_trainings_epoch_count(qtbot, tmp_path):
    from app.training.process_job import ProcessJob
    from engine.tracking.progress_events import EVENTS_ENV

    job = ProcessJob(tmp_path, f"sqlite:///{tmp_path / 'mlflow.db'}", config_path=tmp_path / "run.yaml")
    assert job.environment[EVENTS_ENV] == "1"  # the child is asked for events
    job.epochs = 40  # the form's count; the training's own (a step limit applied) wins
    seen, logged = [], []
    job.progress.connect(lambda p: seen.append(p.describe(job.epochs)))
    job.output.connect(logged.extend)
    job._feed(event("epoch_start", epoch=1, batch=0, step=0, eta_s=None) + "\n")
    job._feed(event(epoch=1, batch=3, step=3, eta_s=37) + "\nsome warning\n")
    job._feed("")  # nothing new: nothing emitted
    assert seen == ["epoch 1/34 · batch 0/3 · step 0/102 · ETA …", "epoch 1/34 · batch 3/3 · step 3/102 · ETA 0:37"]
    assert job.epochs == 34 and logged == ["some warning"] and job.log_lines == ["some warning"]
