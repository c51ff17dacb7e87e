"""A real training run writes its progress as JSON lines when asked (LIGHTBOX_PROGRESS_EVENTS=1), and
the app's reader turns them into the right progress line; the learning-rate finder counts its sweep."""

import io
import json
import stat
from types import SimpleNamespace

import pytest

from app.training.progress import OutputSplitter
from engine.config import RunConfig
from engine.tracking.progress_events import EVENTS_ENV, decode_event


def _config(data, workspace, **overrides):
    base = {
        "data.path": str(data),
        "model.checkpoint": "resnet-tiny",
        "optim.epochs": 2,
        "optim.batch_size": 16,
        "optim.lr": 3e-3,
        "data.image_size": 32,
        "data.num_workers": 0,
        "workspace": str(workspace),
    }
    base.update(overrides)
    return RunConfig.from_dict({"task": {"name": "classification"}}).with_overrides(base)


def _events(text: str) -> list[dict]:
    return [event for line in text.splitlines() if (event := decode_event(line)) is not None]


def test_a_tiny_run_writes_events_the_app_reads(sample_dataset, tmp_path, monkeypatch, capsys):
    from engine.orchestration.training import train

    monkeypatch.setenv(EVENTS_ENV, "1")
    result = train(_config(sample_dataset, tmp_path / "ws"), progress=True)
    assert result.status == "FINISHED"
    out, err = capsys.readouterr()
    events = _events(err)
    batches = events[0]["batches"]
    assert batches and all(e["batches"] == batches and e["epochs"] == 2 for e in events)
    assert all(e["steps"] == 2 * batches for e in events)  # one optimiser step per batch, two epochs
    kinds = [(e["event"], e["epoch"]) for e in events if e["event"] != "step"]
    assert kinds == [("epoch_start", 1), ("epoch_end", 1), ("epoch_start", 2), ("epoch_end", 2)]
    steps = [e for e in events if e["event"] == "step"]
    assert steps[-1]["step"] == 2 * batches and steps[-1]["batch"] == batches and steps[-1]["eta_s"] == 0
    assert all(e["step"] == (e["epoch"] - 1) * batches + e["batch"] for e in steps)
    assert all(isinstance(e["loss"], float) for e in steps)
    assert "val/loss" in events[-1]["metrics"]
    assert "%|" not in out + err and not _events(out)  # the bar gave way to the events, on stderr
    splitter = OutputSplitter()
    logged = splitter.feed(err)
    assert (
        splitter.progress.describe() == f"epoch 2/2 · batch {batches}/{batches} · step {2 * batches}/"
        f"{2 * batches} · ETA 0:00"
    )
    assert not any("lightbox_progress" in line for line in logged)


def test_without_the_request_a_run_writes_no_events(sample_dataset, tmp_path, monkeypatch, capsys):
    from engine.orchestration.training import train

    monkeypatch.delenv(EVENTS_ENV, raising=False)
    train(_config(sample_dataset, tmp_path / "ws", **{"optim.epochs": 1}), progress=True)
    out, err = capsys.readouterr()
    assert not _events(out + err) and "Epoch 0: 100%|" in out  # a person at a terminal keeps the bar


def _trainer(step=0, epoch=0, batches=100, steps=200, rank0=True):
    return SimpleNamespace(
        global_step=step,
        current_epoch=epoch,
        num_training_batches=batches,
        max_epochs=2,
        estimated_stepping_batches=steps,
        accumulate_grad_batches=1,
        is_global_zero=rank0,
        callback_metrics={},
    )


def test_step_lines_are_throttled_but_an_epochs_last_batch_always_written(monkeypatch):
    from engine.tracking import progress_callback
    from engine.tracking.progress_callback import ProgressEvents

    now = [0.0]
    monkeypatch.setattr(progress_callback.time, "monotonic", lambda: now[0])
    out = io.StringIO()
    events = ProgressEvents(stream=out)
    for batch in range(100):  # 100 batches in 1 s: four lines a second, and the last batch
        now[0] = batch / 100
        events.on_train_batch_end(_trainer(step=batch + 1), None, {"loss": 0.5}, None, batch)
    written = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["batch"] for e in written] == [1, 26, 51, 76, 100]
    # 99 steps after the first one took 0.99 s: 100 steps left take 1 s.
    assert written[-1]["eta_s"] == pytest.approx(1.0) and written[-1]["step"] == 100
    out.truncate(0)
    events.on_train_batch_end(_trainer(step=101, rank0=False), None, None, None, 0)
    assert out.getvalue() == ""  # rank 0 speaks for all


def test_lr_find_counts_the_sweeps_steps(sample_dataset, monkeypatch, capsys):
    from engine.orchestration.lr_find import find_lr

    monkeypatch.setenv(EVENTS_ENV, "1")
    result = find_lr(_config(sample_dataset, "unused", **{"optim.batch_size": 8}), num_steps=6, progress=True)
    steps = [e for e in _events(capsys.readouterr().err) if e["event"] == "step"]
    assert steps and all(e["steps"] == 6 for e in steps)  # the sweep's steps, not the config's epochs
    assert steps[0]["step"] == 1 and steps[-1]["step"] == result.steps and steps[-1]["eta_s"] == 0


def test_the_suggest_watcher_reads_the_finders_events(tmp_path):
    """The finder's events become (text, done, total) with the ETA it timed; its JSON line the answer."""
    from app.training.lr_suggest import run_lr_find
    from engine.tracking.progress_events import encode_event

    lines = [
        "lr-find: 6 steps at 96 px, batch 16, on the cpu",
        encode_event("step", epoch=1, epochs=2, batch=1, batches=3, step=1, steps=6, eta_s=None),
        encode_event("step", epoch=1, epochs=2, batch=3, batches=3, step=3, steps=6, eta_s=75.0),
        json.dumps({"lr": 0.01}),
    ]
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\n" + "".join(f"echo '{line}'\n" for line in lines))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    seen = []
    lr = run_lr_find(tmp_path / "run.yaml", num_steps=6, python=str(fake), progress=lambda *a: seen.append(a))
    assert lr == 0.01
    assert seen == [
        ("at 96 px · preparing the data and the model", 0, 6),
        ("at 96 px · ETA …", 1, 6),
        ("at 96 px · ETA 1:15", 3, 6),
    ]
