"""The progress line tells the truth (#16 item 11): batch, step and epoch agree, and an ETA
shows once an epoch (or a few batches) has been timed, although the bar redraws rarely."""

import pytest
from tqdm import tqdm

from app.training.progress import OutputSplitter, ProgressClock

pytest.importorskip("pytestqt")


def redraw(epoch: int, batch: int, batches: int, elapsed: float) -> str:
    """A redraw of Lightning's training bar, rendered by tqdm itself."""
    return "\r" + tqdm.format_meter(batch, batches, elapsed, prefix=f"Epoch {epoch}", ncols=100,
                                    postfix="v_num=0" if batch else None)


def test_a_rarely_redrawn_bar_still_gives_step_and_eta():
    """3 batches an epoch, a redraw every 10 steps: the bar shows each epoch's "0/3" with
    tqdm's remaining time unknown, and its end; the line used to say "batch 0/3 · step 3" at
    epoch 3 with "ETA …" for good."""
    splitter, clock, lines = OutputSplitter(), ProgressClock(), []

    def arrive(text: str, now: float, epochs: int = 5) -> str:
        splitter.feed(text)
        progress = clock.update(splitter.progress, now, epochs)
        lines.append(progress.describe(epochs))
        return lines[-1]

    assert arrive(redraw(0, 0, 3, 0.0), 0.0) == "epoch 1/5 · batch 0/3 · step 0 · ETA …"
    # The epoch's three batches timed (2 s): 12 batches left at 2/3 s each.
    assert arrive(redraw(0, 3, 3, 2.0), 2.0) == "epoch 1/5 · batch 3/3 · step 3 · ETA 0:08"
    # Validation, then epoch 2 starts at 2.5 s: one epoch takes 2.5 s, four are left.
    assert arrive("\n" + redraw(1, 0, 3, 0.0), 2.5) == "epoch 2/5 · batch 0/3 · step 3 · ETA 0:10"
    assert arrive(redraw(1, 3, 3, 2.0), 4.5) == "epoch 2/5 · batch 3/3 · step 6 · ETA 0:08"
    assert arrive("\n" + redraw(2, 0, 3, 0.0), 5.0) == "epoch 3/5 · batch 0/3 · step 6 · ETA 0:08"
    # A charted step ahead of the bar wins; one behind it does not take the line back.
    progress = splitter.progress
    assert "step 7" in progress.describe(5, step=7) and "step 6" in progress.describe(5, step=3)


def test_the_job_times_each_redraw_when_it_arrives(qtbot, tmp_path, monkeypatch):
    from app.training import job as job_module
    from app.training.process_job import ProcessJob

    now = [100.0]
    monkeypatch.setattr(job_module.time, "monotonic", lambda: now[0])
    job = ProcessJob(tmp_path, f"sqlite:///{tmp_path / 'mlflow.db'}", config_path=tmp_path / "run.yaml")
    job.epochs = 4
    seen = []
    job.progress.connect(lambda p: seen.append(p.describe(job.epochs)))
    job._feed(redraw(0, 0, 10, 0.0))
    now[0] = 103.0
    job._feed(redraw(0, 3, 10, 3.0))  # 3 batches in 3 s: 37 batches left
    job._feed("")  # nothing new: nothing emitted
    assert seen == ["epoch 1/4 · batch 0/10 · step 0 · ETA …", "epoch 1/4 · batch 3/10 · step 3 · ETA 0:37"]
