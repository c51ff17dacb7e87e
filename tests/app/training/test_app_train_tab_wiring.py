"""The Train tab joins the pieces: the form remembered per dataset, split warnings when a dataset
is set, and a search's trials left to the runs tree (only its best one charted)."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

from tests.conftest import two_training_images  # noqa: E402


def test_the_form_comes_back_as_it_was_last_trained_on_this_dataset(qtbot, sample_dataset, tmp_path, started):
    from app.training.train_tab import TrainTab

    tab = TrainTab(tmp_path / "ws")
    qtbot.addWidget(tab)
    tab.set_dataset(sample_dataset)
    tab.form.set_value("task.name", "detection")
    tab.form.set_value("optim.batch_size", 3)
    qtbot.mouseClick(tab.train_button, Qt.LeftButton)
    assert len(started) == 1, tab.banner.text()

    again = TrainTab(tmp_path / "ws")  # the next start of the app, same workspace
    qtbot.addWidget(again)
    assert again.form.model.values["task.name"] == "classification"
    again.set_dataset(sample_dataset)
    assert again.form.model.values["task.name"] == "detection"
    assert again.form.model.values["optim.batch_size"] == 3
    other = tmp_path / "other"
    shutil.copytree(sample_dataset, other)
    fresh = TrainTab(tmp_path / "ws")
    qtbot.addWidget(fresh)
    fresh.set_dataset(other)  # nothing remembered for another dataset: the defaults
    assert fresh.form.model.values["task.name"] == "classification"


def test_a_split_that_cannot_train_well_is_named_when_the_dataset_is_set(qtbot, sample_dataset, tmp_path):
    from app.training.train_tab import TrainTab

    tiny = two_training_images(sample_dataset, tmp_path / "tiny")
    train_file = next((tiny / "annotations").glob("*train*.json"))

    tab = TrainTab(tmp_path / "ws")
    qtbot.addWidget(tab)
    tab.set_dataset(tiny)
    qtbot.waitUntil(lambda: not tab.banner.isHidden(), timeout=15000)
    assert tab.banner.cause == "split"
    assert train_file.name in tab.banner.text() and "2 training images" in tab.banner.text()

    tab.set_dataset(sample_dataset)  # a healthy split takes the warning down
    qtbot.waitUntil(lambda: tab.banner.isHidden(), timeout=15000)


def test_a_running_searchs_trials_are_not_all_charted(qtbot, tmp_path):
    from app.training.runs_model import RunRow
    from app.training.train_tab import TrainTab
    from engine.tracking.history import PARENT_RUN_TAG

    tab = TrainTab(tmp_path / "ws")
    qtbot.addWidget(tab)
    charted = []
    tab._chart_toggled = lambda run_id, label, ticked, live=False: charted.append(run_id) if ticked else None

    def row(run_id, tags):
        return RunRow(run_id, run_id, "RUNNING", "classification", "resnet-tiny", "", 1, None, None, tags=tags)

    tab._runs_loaded([row("plain", {}), row("t1", {PARENT_RUN_TAG: "search"}), row("t2", {PARENT_RUN_TAG: "search"})])
    assert "plain" in charted
    assert "t1" not in charted and "t2" not in charted


def test_the_augment_tab_opened_first_already_follows_the_form(qtbot, sample_dataset, tmp_path):
    """Opening Augment before Train builds the run form too, so the panel shows the recipe at once
    (it showed the detection preset at 800 px until Train was opened)."""
    from app.main_window import MainWindow

    window = MainWindow(tmp_path / "ws")
    qtbot.addWidget(window)
    window.show()
    window.open_folder(sample_dataset)
    qtbot.waitUntil(lambda: window.session is not None, timeout=60000)
    window.tabs.setCurrentWidget(window.augment_host)
    panel = window.augment
    assert window.train_tab is not None and window.train_tab.augmentation_source is panel
    qtbot.waitUntil(lambda: panel.recipe_text.startswith("auto → "), timeout=60000)
    assert panel.task == "classification"


def test_the_health_tab_names_a_split_that_cannot_train_once_a_dataset_opens(qtbot, sample_dataset, tmp_path):
    from app.main_window import MainWindow

    tiny = two_training_images(sample_dataset, tmp_path / "tiny")

    window = MainWindow(tmp_path / "ws")
    qtbot.addWidget(window)
    window.open_folder(tiny)
    qtbot.waitUntil(lambda: window.session is not None, timeout=60000)
    qtbot.waitUntil(lambda: "2 training images" in window.health.split_banner.text(), timeout=30000)


def test_a_failed_run_says_why_in_the_train_tabs_banner_until_the_next_train(qtbot, tmp_path, sample_dataset, started):
    from types import SimpleNamespace

    from app.training.train_tab import TrainTab

    tab = TrainTab(tmp_path / "ws")
    qtbot.addWidget(tab)
    tab.set_dataset(sample_dataset)
    reason = "instances_train.json: cannot train on this split"
    job = SimpleNamespace(run_id="abc12345", failure=reason, ended_text=lambda code: f"process ended ({code})")
    tab._job_finished(job, 2)
    assert not tab.banner.isHidden() and reason in tab.banner.text()
    qtbot.mouseClick(tab.train_button, Qt.LeftButton)
    assert len(started) == 1 and tab.banner.cause != "run"
