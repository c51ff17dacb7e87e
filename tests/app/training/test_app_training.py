"""The Train tab: run form from the config schema, Train / Stop, live charts, the runs table."""

import os
import time
from pathlib import Path

import numpy as np
import pytest

from app.training.chart_data import RunData, ema
from app.training.form_model import RunFormModel, field_from_schema, form_fields
from app.training.progress import parse_progress
from engine.tracking.progress_events import encode_event
from tests.conftest import wait_until

pytest.importorskip("pytestqt")


# ---------------------------------------------------------------------- Qt-free parts
def test_a_computed_default_is_shown_as_the_value_the_run_gets():
    """ "Loader workers" showed 0 (the spin box's minimum) while the run got the computed default
    (1 on two cores): what the form shows is what the config holds."""
    from app.training.form_model import RunFormModel
    from engine.config import default_num_workers

    model = RunFormModel()
    assert model.values["data.num_workers"] == default_num_workers()
    config, problems = model.validate()
    assert problems == {} and config.data.num_workers == model.values["data.num_workers"]
    model.set("data.num_workers", 0)
    assert model.validate()[0].data.num_workers == 0


def test_the_progress_line_knows_the_epochs_the_recipe_chose(qtbot, tmp_path):
    """With epochs left empty the line said "epoch 3" with no total: the job takes it from the recipe's line."""
    from app.training.process_job import ProcessJob

    job = ProcessJob(tmp_path, f"sqlite:///{tmp_path / 'mlflow.db'}", config_path=tmp_path / "run.yaml")
    assert job.epochs is None
    job._feed(
        "recipe: learning rate 0.001: rt_detr_v2 from random weights\n"
        "recipe: 100 epochs of 3 optimiser steps (at least 300 steps for rt_detr_v2 from random weights)\n"
    )
    assert job.epochs == 100
    progress = parse_progress(encode_event("step", epoch=3, batch=1, batches=3, step=7))
    assert progress.describe(job.epochs).startswith("epoch 3/100")


def test_the_form_follows_the_schema_and_a_new_field_appears_without_app_changes():
    kinds = {f.path: f.kind for f in form_fields()}
    assert kinds["task.name"] == "enum" and kinds["model.pretrained"] == "bool"
    assert kinds["optim.batch_size"] == "int" and kinds["optim.lr"] == "float"
    assert kinds["data.path"] == "path" and kinds["compute.channels_last"] == "tristate"
    assert not any(p.startswith(("augmentation.", "search.")) for p in kinds)
    from engine.config import json_schema

    schema = json_schema()
    schema["$defs"]["OptimConfig"]["properties"]["new_knob"] = {
        "type": "integer",
        "minimum": 2,
        "maximum": 9,
        "default": 3,
        "title": "New knob",
        "description": "d",
    }
    added = {f.path: f for f in form_fields(schema)}["optim.new_knob"]
    assert (added.kind, added.minimum, added.maximum, added.title, added.section) == (
        "int",
        2,
        9,
        "New knob",
        "Optimisation",
    )
    enum = field_from_schema("x.y", "X", {"anyOf": [{"enum": ["a", "b"], "type": "string"}, {"type": "null"}]})
    assert enum.kind == "enum" and enum.nullable and enum.choices == ("a", "b")


def test_the_configs_own_error_lands_on_the_field_it_names(tmp_path):
    model = RunFormModel()
    assert model.validate()[0] is not None
    model.set("optim.lr", 0.0)
    model.set("data.val_split", "train")
    model.set("data.train_split", "train")
    config, problems = model.validate()
    assert config is None
    assert "greater than 0" in problems["optim.lr"] and "differ" in problems["data.val_split"]
    model.set("optim.lr", 3e-4)
    model.set("data.val_split", "val")
    config, problems = model.validate()
    assert problems == {} and config.optim.lr == 3e-4
    config.save(tmp_path / "run.yaml")
    again = RunFormModel()
    from engine.config import RunConfig

    again.load_config(RunConfig.load(tmp_path / "run.yaml"))
    assert again.values["optim.lr"] == 3e-4 and again.values["data.val_split"] == "val"


def test_epochs_and_smoothing_of_chart_points():
    run = RunData("r", "r")
    run.add({"train/loss": [(s, 1.0, 1000 + s) for s in range(1, 21)], "epoch": [(10, 0.0, 1010), (20, 1.0, 1020)]})
    x, _ = run.xy("train/loss", "epoch")
    assert x[4] == pytest.approx(0.5) and x[-1] == pytest.approx(2.0)
    xt, _ = run.xy("train/loss", "wall time")
    assert xt[0] == 0.0 and xt[-1] == pytest.approx(0.019)
    smoothed = ema(np.array([0.0, 10.0, 10.0]), 0.5)
    assert smoothed.tolist() == [0.0, 5.0, 7.5]


# ---------------------------------------------------------------------- the tab, end to end
pytestmark = pytest.mark.usefixtures("stop_at_close")  # closing with a run going answers "stop"
_wait = wait_until


def _tiny(tab, **more):
    values = {
        "model.checkpoint": "resnet-tiny",
        "data.image_size": 32,
        "data.num_workers": 0,
        "optim.batch_size": 8,
        "tracking.log_every_n_steps": 1,
        **more,
    }
    for path, value in values.items():
        tab.form.set_value(path, value)


def _open_window(qtbot, workspace, dataset=None):
    from app.main_window import MainWindow

    window = MainWindow(workspace)
    qtbot.addWidget(window)
    window.resize(1400, 900)
    window.show()
    if dataset is not None:
        window.open_folder(dataset)
        _wait(qtbot, lambda: window.session is not None, 60, "the dataset to open")
    return window


@pytest.mark.slow
def test_train_chart_stop_and_find_the_runs_again(qtbot, sample_dataset, tmp_path, screenshot_dir):
    from PySide6.QtCore import Qt

    workspace = tmp_path / "ws"
    window = _open_window(qtbot, workspace, sample_dataset)
    window.tabs.setCurrentWidget(window.train_host)
    tab = window.train_tab
    assert tab.form.model.values["data.path"] == str(sample_dataset)
    _tiny(tab, **{"optim.max_steps": 12, "optim.epochs": 2})
    assert tab.train_button.isEnabled() and tab.train_button.text() == "Train"

    clicked = time.monotonic()
    qtbot.mouseClick(tab.train_button, Qt.LeftButton)
    first = tab.jobs[-1]
    # 30 s on an otherwise idle 2-core CPU (the issue's bound); a loaded shared machine may set more.
    bound = float(os.environ.get("LIGHTBOX_FIRST_POINT_S", "30"))
    _wait(
        qtbot,
        lambda: first.run_id is not None and tab.charts.point_count(first.run_id) > 0,
        bound,
        "the first loss points in the chart",
    )
    seconds_to_first_point = time.monotonic() - clicked
    _wait(qtbot, lambda: not first.alive(), 120, "the first run to end")
    _wait(
        qtbot,
        lambda: (
            (tab.runs.row_for(first.run_id) or None) is not None and tab.runs.row_for(first.run_id).status == "FINISHED"
        ),
        20,
        "the first run FINISHED in the table",
    )
    assert any("[lightbox]" in line for line in tab.log.toPlainText().splitlines())
    tab.runs.select_run(first.run_id)
    _wait(qtbot, lambda: tab.summary.metrics.toPlainText() != "", 20, "the run summary")
    _wait(qtbot, lambda: not tab.summary.heat.isHidden(), 20, "the confusion matrix")
    tab.bottom.setCurrentWidget(tab.summary)
    tab.summary.grab().save(str(screenshot_dir / "run_summary.png"))
    tab.grab().save(str(screenshot_dir / "train_tab.png"))
    tab.charts.grab().save(str(screenshot_dir / "train_charts.png"))

    # A second run, stopped with the Stop button: it ends KILLED and keeps its checkpoint.
    _tiny(tab, **{"optim.max_steps": None, "optim.epochs": 500})
    qtbot.mouseClick(tab.train_button, Qt.LeftButton)
    second = tab.jobs[-1]
    _wait(qtbot, lambda: second.run_id is not None, 60, "the second run to start")
    ckpts = lambda: list((workspace / "runs" / second.run_id / "checkpoints").glob("*.ckpt"))  # noqa: E731
    _wait(qtbot, lambda: bool(ckpts()), 90, "a checkpoint of the second run")
    assert tab.stop_button.isEnabled() and tab.stop_button.text() == "Stop"
    qtbot.mouseClick(tab.stop_button, Qt.LeftButton)
    _wait(qtbot, lambda: not second.alive(), 60, "the stopped run's process to end")
    from engine.orchestration.jobs import run_status

    assert run_status(tab.tracking_uri, second.run_id) == "KILLED", "\n".join(second.log_lines[-20:])
    assert ckpts()
    tab.refresh_runs()
    _wait(
        qtbot,
        lambda: getattr(tab.runs.row_for(second.run_id), "status", "") == "KILLED",
        20,
        "KILLED in the runs table",
    )
    assert tab.runs.row_for(first.run_id).name != tab.runs.row_for(second.run_id).name
    tab.bottom.setCurrentWidget(tab.runs)
    tab.runs.grab().save(str(screenshot_dir / "runs_table.png"))
    window.close()

    again = _open_window(qtbot, workspace)
    again.tabs.setCurrentWidget(again.train_host)
    tab2 = again.train_tab
    _wait(
        qtbot,
        lambda: {first.run_id, second.run_id} <= {r.run_id for r in tab2.runs.rows},
        30,
        "both runs in the reopened window's table",
    )
    statuses = {r.run_id: r.status for r in tab2.runs.rows}
    assert statuses[first.run_id] == "FINISHED" and statuses[second.run_id] == "KILLED"
    assert seconds_to_first_point < bound
    again.close()


def test_a_running_run_whose_process_died_is_lost_and_resumable(qtbot, tmp_path):
    from engine.tracking.logger import HEARTBEAT_TAG, RunLogger

    workspace = tmp_path / "ws"
    uri = f"sqlite:///{workspace / 'mlflow.db'}"
    run = RunLogger(uri, workspace=workspace, tags={"lightbox.task": "classification"})
    run.client.set_tag(run.run_id, HEARTBEAT_TAG, f"{time.time() - 600:.3f}")
    run._finished = True  # the process "died": no heartbeat, no final status
    from app.training.train_tab import TrainTab

    tab = TrainTab(workspace)
    qtbot.addWidget(tab)
    _wait(qtbot, lambda: tab.runs.row_for(run.run_id) is not None, 20, "the run in the table")
    assert tab.runs.row_for(run.run_id).status == "LOST"
    tab.runs.select_run(run.run_id)
    assert tab.runs.buttons["Resume"].isEnabled() and not tab.runs.buttons["Stop"].isEnabled()
    assert Path(workspace / "mlflow.db").is_file()


# ---------------------------------------------------------------------- learning-rate Suggest
def _suggest_tab(qtbot, tmp_path, dataset):
    from app.training.train_tab import TrainTab

    tab = TrainTab(tmp_path / "ws")
    qtbot.addWidget(tab)
    tab.set_dataset(dataset)
    _tiny(tab)
    return tab


def test_suggest_runs_in_the_background_fills_the_lr_and_cannot_run_twice(qtbot, monkeypatch, tmp_path, sample_dataset):
    import threading

    from PySide6.QtCore import Qt

    from app.training import lr_suggest

    release, calls = threading.Event(), []

    def fake_lr_find(config_path, *, progress=None, cancel=None, **_):
        from engine.config import RunConfig

        calls.append(RunConfig.load(config_path))
        progress("finding a learning rate", 40, 100)
        assert release.wait(20), "the test never released the finder"
        return 0.012345

    monkeypatch.setattr(lr_suggest, "run_lr_find", fake_lr_find)
    tab = _suggest_tab(qtbot, tmp_path, sample_dataset)
    button = tab.form.suggest_button
    assert button.text() == "Suggest" and button.isEnabled()
    qtbot.mouseClick(button, Qt.LeftButton)
    assert button.text() == "Cancel" and button.isEnabled()  # while it runs, the button cancels it
    _wait(qtbot, lambda: "40/100" in tab.form.suggest_status.text(), 10, "the finder's progress")
    assert not tab.form.suggest_status.isHidden()
    assert tab.suggest_lr() is False  # and the slot itself refuses a second search
    release.set()
    _wait(qtbot, lambda: tab.form.model.values["optim.lr"] == 0.0123, 10, "the suggestion in the lr field")
    assert len(calls) == 1 and calls[0].model.checkpoint == "resnet-tiny"
    assert calls[0].data.path == str(sample_dataset) and calls[0].workspace == str(tab.workspace)
    assert button.text() == "Suggest" and button.isEnabled() and tab.banner.isHidden()
    assert tab.form.editors["optim.lr"].value() == pytest.approx(0.0123)


def test_a_failed_suggestion_shows_a_banner_naming_the_problem(qtbot, monkeypatch, tmp_path, sample_dataset):
    from app.training import lr_suggest

    def failing(config_path, **_):
        raise lr_suggest.LrFindError("the loss did not fall anywhere in the range; try a wider range")

    monkeypatch.setattr(lr_suggest, "run_lr_find", failing)
    tab = _suggest_tab(qtbot, tmp_path, sample_dataset)
    before = tab.form.model.values["optim.lr"]
    assert tab.suggest_lr()
    _wait(qtbot, lambda: not tab.banner.isHidden(), 10, "the error banner")
    assert tab.banner.text() == (
        "Learning-rate finder failed: the loss did not fall anywhere in the range; try a wider range"
    )
    assert tab.form.model.values["optim.lr"] == before and tab.form.suggest_button.isEnabled()
    tab.form.set_value("optim.lr", 0.0)  # an invalid form cannot be searched
    assert not tab.form.suggest_button.isEnabled() and tab.suggest_lr() is False


@pytest.mark.slow
def test_the_real_finder_suggests_a_learning_rate_for_a_tiny_preset(tmp_path, sample_dataset):
    from app.training.lr_suggest import run_lr_find
    from engine.config import RunConfig

    config = RunConfig.from_dict(
        {
            "task": {"name": "classification"},
            "model": {"checkpoint": "resnet-tiny"},
            "data": {"path": str(sample_dataset), "image_size": 32, "num_workers": 0},
            "optim": {"batch_size": 8},
        },
        "test",
    )
    seen = []
    lr = run_lr_find(config.save(tmp_path / "run.yaml"), num_steps=20, progress=lambda *a: seen.append(a[1:]))
    assert 1e-6 <= lr <= 1.0 and seen and seen[-1][1] == 20
