"""A failed run says why (#16 item 8): the engine's error line reaches the job, the progress
line and the window's banner (which can be dismissed), and the MLflow run carries it as the
``lightbox.error`` tag."""

import shutil
import time

import pytest

from app.training.engine_error import engine_error

pytest.importorskip("pytestqt")

# What the engine printed for a split whose images are all unreadable (captured from a real run).
DATASET_FAILURE = [
    "recipe: 0 warm-up steps (6 optimiser steps in the run)",
    "lightbox train: shapes/annotations/instances_train.json: cannot train on this split",
    "  shapes/annotations/instances_train.json: error: the training split has no images (48 left out as "
    "unusable: see the health check); nothing to train on [no_training_images]",
]


def test_the_engines_error_is_read_from_the_log():
    assert engine_error(DATASET_FAILURE) == (
        DATASET_FAILURE[1].removeprefix("lightbox train: ") + "\n" + DATASET_FAILURE[2]
    )
    nan = (
        '{"run_id": "ab", "status": "FAILED", "message": "the loss became NaN or infinite at step 2; training stopped"}'
    )
    assert (
        engine_error(["Epoch 1 ...", nan, "[lightbox] process ended"])
        == "the loss became NaN or infinite at step 2; training stopped"
    )
    crash = [
        "Traceback (most recent call last):",
        '  File "x.py", line 1, in <module>',
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
        "[lightbox] note",
    ]
    assert engine_error(crash) == "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    # The engine's own line wins over a traceback printed before it.
    assert engine_error(crash[:3] + ["lightbox train: RuntimeError: boom"]) == "RuntimeError: boom"
    assert engine_error(["[lightbox] python -m engine train"]) is None


def test_the_cli_ends_a_crash_with_one_line_naming_it(monkeypatch, capsys, tmp_path):
    from engine import cli
    from engine.orchestration import training

    def crash(*_args, **_kwargs):
        raise RuntimeError("Sizes of tensors must match except in dimension 1. Expected size 26 but got 25")

    monkeypatch.setattr(training, "train", crash)
    (tmp_path / "data").mkdir()
    code = cli.main(["train", "--data", str(tmp_path / "data"), "--task", "classification"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and "Traceback (most recent call last):" in err
    assert err[-1] == (
        "lightbox train: RuntimeError: Sizes of tensors must match except in dimension 1. Expected size 26 but got 25"
    )


def _tiny_config(dataset, workspace, **optim):
    from engine.config import RunConfig

    return RunConfig.from_dict(
        {
            "task": {"name": "classification"},
            "model": {"checkpoint": "resnet-tiny"},
            "data": {"path": str(dataset), "image_size": 32, "num_workers": 0},
            "optim": {"batch_size": 8, "epochs": 1, "lr": 1e-3, **optim},
            "workspace": str(workspace),
        },
        "test",
    )


def test_a_crash_inside_training_is_tagged_on_the_failed_run(sample_dataset, tmp_path):
    import lightning.pytorch as pl
    from mlflow import MlflowClient

    from engine.orchestration.local import train
    from engine.tracking.run_error import ERROR_TAG

    class Crash(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            raise RuntimeError("Sizes of tensors must match except in dimension 1. Expected size 26 but got 25")

    uri = f"sqlite:///{tmp_path / 'ws' / 'mlflow.db'}"
    with pytest.raises(RuntimeError, match="Sizes of tensors"):
        train(_tiny_config(sample_dataset, tmp_path / "ws"), tracking_uri=uri, callbacks=[Crash()], progress=False)
    client = MlflowClient(uri)
    [run] = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "FAILED"
    assert run.data.tags[ERROR_TAG] == (
        "RuntimeError: Sizes of tensors must match except in dimension 1. Expected size 26 but got 25"
    )


def _wait(qtbot, predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        qtbot.wait(100)


def _train_from_window(qtbot, tmp_path, dataset, **values):
    from app.main_window import MainWindow

    window = MainWindow(tmp_path / "ws")
    qtbot.addWidget(window)
    window.show()
    window.tabs.setCurrentWidget(window.train_host)
    tab = window.train_tab
    tab.set_dataset(dataset)
    for path, value in {
        "model.checkpoint": "resnet-tiny",
        "data.image_size": 32,
        "data.num_workers": 0,
        "optim.batch_size": 8,
        "optim.epochs": 2,
        "tracking.log_every_n_steps": 1,
        **values,
    }.items():
        tab.form.set_value(path, value)
    job = tab.train()
    assert job is not None, tab.banner.text()
    with qtbot.waitSignal(job.finished, timeout=180_000):
        pass
    return window, tab, job


def test_a_run_that_cannot_start_shows_the_engines_reason_in_a_dismissable_banner(qtbot, tmp_path, sample_dataset):
    from PySide6.QtCore import Qt

    broken = tmp_path / "shapes"
    shutil.copytree(sample_dataset, broken)
    for image in (broken / "train").glob("*.jpg"):  # every training image cut short: nothing to train on
        image.write_bytes(image.read_bytes()[:100])
    window, tab, job = _train_from_window(qtbot, tmp_path, broken)
    assert job.exit_code == 2
    assert job.failure.splitlines()[0].endswith("instances_train.json: cannot train on this split")
    assert "the training split has no images" in job.failure
    # The progress line names the reason, not only the exit code.
    assert tab.progress_label.text().endswith("instances_train.json: cannot train on this split")
    window.show_error(job.failure, cause="run")
    assert window.banner.isVisible() and "the training split has no images" in window.banner.text()
    qtbot.mouseClick(window.banner.close_button, Qt.MouseButton.LeftButton)
    assert window.banner.isHidden()
    window.close()


def test_a_run_that_fails_while_training_carries_the_reason_as_a_tag(qtbot, tmp_path, sample_dataset):
    from mlflow import MlflowClient

    from engine.tracking.run_error import ERROR_TAG

    window, tab, job = _train_from_window(qtbot, tmp_path, sample_dataset, **{"optim.lr": 1e12})
    assert job.exit_code == 1 and job.failure.startswith("the loss became NaN or infinite at step")
    _wait(qtbot, lambda: job.run_id is not None, 30, "the run id")
    run = MlflowClient(tab.tracking_uri).get_run(job.run_id)
    assert run.info.status == "FAILED" and run.data.tags[ERROR_TAG] == job.failure
    assert job.failure.splitlines()[0] in tab.progress_label.text()
    window.close()
