"""What froze the window after clicking Train (bench/train_click.py measures it):
full garbage-collector passes set off by background imports, the Augment tab's torch import
starting under the Train tab, and the job asking MLflow for its run before the run exists."""

import gc
import sys
import time

import pytest

pytest.importorskip("pytestqt")


@pytest.fixture
def restore_gc():
    threshold = gc.get_threshold()
    yield
    gc.set_threshold(*threshold)
    gc.unfreeze()


def test_full_collections_are_rare_and_big_imports_are_frozen(qtbot, tmp_path, restore_gc):
    from app.main_window import MainWindow
    from app.widgets.gc_pacing import FULL_PASS_EVERY

    gc.unfreeze()
    window = MainWindow(tmp_path / "ws")
    qtbot.addWidget(window)
    assert gc.get_threshold()[2] == FULL_PASS_EVERY > 10  # Python's default of 10 made one every second or so
    window.show()
    window.tabs.setCurrentWidget(window.train_host)
    assert window._freeze_timer.isActive()
    before = gc.get_freeze_count()
    qtbot.waitUntil(lambda: not window._freeze_timer.isActive(), timeout=60_000)
    assert gc.get_freeze_count() > before  # what the Train tab's background work loaded is out of the passes
    window.close()


def test_the_augment_warm_up_waits_while_the_train_tab_is_shown(qtbot, tmp_path, monkeypatch):
    from app.dataset import augment_panel
    from app.main_window import MainWindow

    started = []
    monkeypatch.setattr(augment_panel, "start_warm_up", lambda: started.append(1))
    window = MainWindow(tmp_path / "ws")
    qtbot.addWidget(window)
    window.show()
    window.tabs.setCurrentWidget(window.train_host)
    window._preload_augment()
    assert started == [] and window._preload_timer.isActive()  # asked again later
    assert "loading" not in window.tabs.tabText(window.tabs.indexOf(window.augment_host))
    window.close()


def test_the_job_asks_mlflow_for_its_run_only_once_a_run_folder_appears(qtbot, tmp_path, monkeypatch):
    from app.training import process_job
    from app.training.process_job import ProcessJob

    asked = []
    monkeypatch.setattr(process_job.jobs, "find_launched_run", lambda uri, launch: asked.append(launch) or "r1")
    workspace = tmp_path / "ws"
    job = ProcessJob(workspace, f"sqlite:///{workspace / 'mlflow.db'}", config_path=tmp_path / "run.yaml")
    job.command = [sys.executable, "-c", "import time; time.sleep(30)"]  # a child still importing torch
    job.start()
    try:
        assert job._find_launched_run() is None and asked == []
        time.sleep(0.05)  # a new mtime, even on a coarse clock
        (workspace / "runs" / "0123abcd").mkdir()  # the training opened its run and its folder
        assert job._find_launched_run() == "r1" and asked == [job.launch_id]
    finally:
        job.process.kill()
        job.process.wait()
