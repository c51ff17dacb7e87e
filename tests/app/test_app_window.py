"""The main window: opening datasets (good and bad), the health panel, navigation, start-up time."""

import json
import os
import subprocess
import sys

import pytest
from PySide6.QtCore import Qt

from app.dataset.health_panel import HealthPanel
from app.dataset.session import open_dataset
from app.main_window import MainWindow
from tests.conftest import REPO_ROOT

ROOT = REPO_ROOT


@pytest.fixture
def window(qtbot, tmp_path):
    win = MainWindow(tmp_path / "ws")
    qtbot.addWidget(win)
    win.show()
    return win


def _open(qtbot, window, folder):
    task = window.open_folder(folder)
    qtbot.waitUntil(lambda: task.done.is_set(), timeout=30_000)
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=30_000)
    return task


def test_open_a_dataset_fills_every_panel_and_is_remembered(qtbot, window, sample_dataset):
    _open(qtbot, window, sample_dataset)
    assert window.session is not None and window.session.num_images == 64
    assert "64 images" in window.status_text.text()
    assert window.health.model.rowCount() == 0
    assert "No problems found" in window.health.summary.text()
    assert window.recent_datasets()[0] == str(sample_dataset)
    again = MainWindow(window.workspace)
    qtbot.addWidget(again)
    assert again.recent_datasets()[0] == str(sample_dataset)
    assert [a.text() for a in again.recent_menu.actions()][0] == str(sample_dataset)


def test_a_dataset_opened_by_a_relative_path_has_an_absolute_root(sample_dataset, monkeypatch):
    # The demo opens ./lightbox-workspace/datasets/shapes; a run started from the Train tab reads
    # its config from another folder, where the relative path named nothing (exit 2, missing_folder).
    monkeypatch.chdir(sample_dataset.parent)
    session = open_dataset(sample_dataset.name, check_files=False)
    assert session.root.is_absolute() and session.root == sample_dataset.absolute()


@pytest.mark.parametrize("breakage", ["no_coco_file", "broken_json", "missing_folder"])
def test_bad_folders_show_a_message_and_the_app_stays_usable(qtbot, window, sample_dataset, tmp_path, breakage):
    _open(qtbot, window, sample_dataset)
    bad = tmp_path / "bad"
    if breakage == "no_coco_file":
        (bad / "images").mkdir(parents=True)
    elif breakage == "broken_json":
        bad.mkdir()
        (bad / "annotations.json").write_text('{"images": [')
    _open(qtbot, window, bad)
    assert window.banner.isVisible()
    assert str(bad) in window.banner.text()
    # The dataset that was open stays open and usable.
    assert window.session.root == sample_dataset
    assert window.browser.current_refs()


def test_missing_and_corrupt_images_become_problems_not_crashes(qtbot, window, sample_copy):
    (sample_copy / "train" / "train_0001.jpg").unlink()
    (sample_copy / "val" / "val_0002.jpg").write_bytes(b"not an image")
    _open(qtbot, window, sample_copy)
    codes = sorted(p.code for p in window.health.model.problems)
    assert codes == ["missing_file", "unreadable_image"]
    assert "2 errors" in window.health.summary.text()


def test_activating_a_problem_opens_the_image_with_the_annotation_highlighted(qtbot, window, sample_copy):
    doc_path = sample_copy / "annotations" / "instances_train.json"
    doc = json.loads(doc_path.read_text())
    ann = doc["annotations"][5]
    ann["bbox"] = [ann["bbox"][0], ann["bbox"][1], 0, 10]
    doc_path.write_text(json.dumps(doc))
    _open(qtbot, window, sample_copy)
    (problem,) = [p for p in window.health.model.problems if p.code == "bbox_nonpositive"]
    highlighted = []
    window.viewer.highlight_annotation = highlighted.append
    window.health.problem_activated.emit(problem)
    assert window.tabs.currentWidget() is window.viewer
    assert highlighted == [ann["id"]]


def test_health_panel_filters_by_code_and_text(qtbot, sample_copy):
    (sample_copy / "train" / "train_0001.jpg").unlink()
    (sample_copy / "train" / "train_0003.jpg").unlink()
    (sample_copy / "val" / "val_0002.jpg").write_bytes(b"not an image")
    session = open_dataset(sample_copy)
    panel = HealthPanel()
    qtbot.addWidget(panel)
    panel.set_problems(session.problems)
    assert len(panel.visible_problems()) == 3
    panel.code_filter.setCurrentText("missing_file")
    assert {p.code for p in panel.visible_problems()} == {"missing_file"}
    panel.search.setText("train_0003")
    assert len(panel.visible_problems()) == 1
    emitted = []
    panel.problem_activated.connect(emitted.append)
    panel.table.doubleClicked.emit(panel.proxy.index(0, 0))
    assert emitted and "train_0003" in emitted[0].message


def test_cancel_drops_the_result(qtbot, window, sample_dataset):
    task = window.open_folder(sample_dataset)
    window.cancel_open()
    qtbot.waitUntil(lambda: task.done.is_set(), timeout=30_000)
    qtbot.wait(50)
    assert window.session is None
    assert not window.progress.isVisible()


def test_start_up_path_imports_no_torch_or_training_stack(tmp_path):
    # Start-up time itself is measured in bench/gui_browse.py; here: what start-up must not load.
    code = (
        "import sys; from app.main import run; "
        f"rc = run(None, {str(tmp_path / 'ws')!r}, exit_after_show=True); "
        "print('heavy', [m for m in ('torch', 'lightning', 'mlflow', 'ray', 'albumentations') "
        "if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert done.returncode == 0, done.stderr
    assert "window shown after" in done.stdout
    assert "heavy []" in done.stdout, done.stdout


def test_screenshots_of_the_window_and_health_panel(qtbot, window, sample_copy, screenshot_dir):
    (sample_copy / "train" / "train_0001.jpg").unlink()
    (sample_copy / "val" / "val_0002.jpg").write_bytes(b"not an image")
    doc_path = sample_copy / "annotations" / "instances_train.json"
    doc = json.loads(doc_path.read_text())
    doc["annotations"][3]["bbox"][2] = -4
    doc["annotations"][7]["category_id"] = 99
    doc_path.write_text(json.dumps(doc))
    _open(qtbot, window, sample_copy)
    shots = screenshot_dir
    window.resize(1280, 840)
    qtbot.waitUntil(lambda: window.browser.model.rowCount() and window.browser.model.has_thumbnail(0), timeout=10_000)
    qtbot.wait(200)
    assert window.grab().save(str(shots / "main_window.png"))
    window.tabs.setCurrentWidget(window.health)
    qtbot.wait(50)
    assert window.grab().save(str(shots / "health.png"))
    assert window.health.model.rowCount() == 4


def test_browse_image_and_augment_share_one_current_image(qtbot, window, sample_dataset):
    from PySide6.QtCore import Qt

    _open(qtbot, window, sample_dataset)
    refs = window.browser.current_refs()
    assert window.current == refs[0]
    window.browser.select_ref(refs[3])  # a click in Browse
    assert window.current == refs[3]
    window.tabs.setCurrentWidget(window.viewer)
    qtbot.waitUntil(lambda: not window.viewer.is_loading(), timeout=10_000)
    assert window.viewer.ref == refs[3]
    qtbot.keyClick(window.viewer.view, Qt.Key_Right)  # next image in Image
    assert window.current == refs[4] and window.browser.current_ref() == refs[4]
    window.tabs.setCurrentWidget(window.augment_host)
    qtbot.waitUntil(lambda: window.augment is not None and window.augment.is_ready(), timeout=60_000)
    assert window.augment.source() == (window.session, refs[4])
    window.tabs.setCurrentWidget(window.browser)
    window.browser.select_ref(refs[6])
    window.tabs.setCurrentWidget(window.augment_host)
    assert window.augment.source()[1] == refs[6]
    window.tabs.setCurrentWidget(window.viewer)
    assert window.viewer.ref == refs[6]
    qtbot.waitUntil(lambda: not window.augment.is_busy(), timeout=60_000)


def test_augmentation_library_loads_in_the_background_once_the_window_is_up(qtbot, window):
    from app.dataset import augment_library

    tab = window.tabs.indexOf(window.augment_host)
    qtbot.waitUntil(lambda: augment_library.LIBRARY.task is not None, timeout=5_000)  # started without opening Augment
    assert window.augment is None
    qtbot.waitUntil(lambda: augment_library.LIBRARY.task.done.is_set(), timeout=60_000)
    qtbot.waitUntil(lambda: window.tabs.tabText(tab) == "Augment", timeout=5_000)
    window.tabs.setCurrentWidget(window.augment_host)
    qtbot.waitUntil(window.augment.is_ready, timeout=2_000)  # no second import


def test_augment_panel_shows_progress_while_the_library_loads(qtbot, monkeypatch):
    import threading

    import app.dataset.augment_panel as augment_panel
    from app.dataset.augment_library import AugmentLibrary

    release = threading.Event()
    panel = augment_panel.AugmentationPanel(library=AugmentLibrary(load=lambda: release.wait(10)))
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitUntil(lambda: " s\n" in panel.message.text(), timeout=3_000)
    assert "Loading the augmentation library" in panel.message.text() and not panel.is_ready()
    release.set()
    qtbot.waitUntil(panel.is_ready, timeout=30_000)


def test_health_double_click_notes_fade_and_duplicate_ids_jump_to_their_image(qtbot, window, sample_copy):
    from engine.data.problems import Problem

    doc_path = sample_copy / "annotations" / "instances_train.json"
    doc = json.loads(doc_path.read_text())
    doc["annotations"][7]["id"] = doc["annotations"][2]["id"]  # a duplicate annotation id
    doc_path.write_text(json.dumps(doc))
    _open(qtbot, window, sample_copy)
    summary = window.status_text.text()
    assert "1 problem " in summary or "1 problem (" in summary
    orphan = Problem("empty_dataset", "the dataset has no images", str(doc_path))
    window.show_problem(orphan)
    assert "names no image" in window.statusBar().currentMessage()
    (dup,) = [p for p in window.session.problems if p.code == "duplicate_annotation_id"]
    window.show_problem(dup)
    assert window.statusBar().currentMessage() == ""  # no stale note
    assert window.status_text.text() == summary
    assert window.tabs.currentWidget() is window.viewer
    index = window.session.index(window.viewer.ref.split)
    assert int(index.image_ids[window.viewer.ref.row]) == doc["annotations"][2]["image_id"]
    assert window.current == window.viewer.ref


def test_quitting_during_the_file_check_cancels_and_joins_it(qtbot, tmp_path, sample_dataset, monkeypatch, capfd):
    import time

    import app.main_window as main_window

    def slow_check(session, *, progress=None, cancel=None):
        while not cancel.is_set():
            progress("checking image files", 1, 2)
            time.sleep(0.01)
        time.sleep(0.2)  # stopping takes a moment, as a process pool's does
        progress("checking image files", 2, 2)  # reported after the window has started to close
        return []

    monkeypatch.setattr(main_window, "check_files", slow_check)
    win = MainWindow(tmp_path / "ws")
    win.show()
    win.open_folder(sample_dataset)
    qtbot.waitUntil(lambda: win._check_slot.busy and "checking" in win.status_text.text(), timeout=30_000)
    task = win._check_slot.task
    win.close()
    assert task.cancelled and task.done.is_set()  # joined before the window went
    win.deleteLater()
    qtbot.wait(50)
    assert "Signal source has been deleted" not in capfd.readouterr().err


def test_a_task_whose_window_is_gone_stops_quietly(qtbot, capfd):
    from app.widgets.workers import BackgroundTask

    task = BackgroundTask(lambda progress=None: progress("x", 1, 1) or 5)
    task.signals.deleteLater()
    qtbot.wait(20)  # the signals object is deleted now
    task.run()
    assert task.done.is_set() and task.cancelled
    assert "Signal source has been deleted" not in capfd.readouterr().err


def test_first_window_offers_open_recent_and_demo(qtbot, tmp_path, sample_dataset):
    win = MainWindow(tmp_path / "ws")
    qtbot.addWidget(win)
    win.show()
    page = win.browser.start_page
    assert win.browser.pages.currentWidget() is page
    assert page.open_button.isVisible() and page.demo_button.isVisible() and not page.recent_list.isVisible()
    _open(qtbot, win, sample_dataset)
    assert win.browser.pages.currentWidget() is not page
    again = MainWindow(tmp_path / "ws")
    qtbot.addWidget(again)
    again.show()
    assert again.browser.start_page.recent_list.count() == 1
    assert again.browser.start_page.recent_list.item(0).data(256) == str(sample_dataset)
    again.browser.start_page.demo_button.click()  # writes the sample into the workspace and opens it
    qtbot.waitUntil(lambda: again.session is not None and not again.is_busy(), timeout=60_000)
    assert (
        again.session.root == (tmp_path / "ws" / "datasets" / "shapes").resolve()
        or again.session.root == tmp_path / "ws" / "datasets" / "shapes"
    )


def test_plain_lightbox_reopens_the_last_dataset(qtbot, tmp_path, sample_dataset, monkeypatch):
    from PySide6.QtWidgets import QApplication

    import app.main

    first = MainWindow(tmp_path / "ws")
    qtbot.addWidget(first)
    _open(qtbot, first, sample_dataset)
    opened = []
    monkeypatch.setattr(MainWindow, "open_folder", lambda self, folder: opened.append(str(folder)))
    monkeypatch.setattr(QApplication, "exec", lambda self: 0)
    assert app.main.run(None, tmp_path / "ws", reopen_last=True) == 0
    assert opened == [str(sample_dataset)]
    assert app.main.run(None, tmp_path / "ws") == 0 and len(opened) == 1
    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, MainWindow) and widget is not first:
            widget.close()


def _clipped(page) -> list[str]:
    from PySide6.QtWidgets import QAbstractButton, QComboBox, QLabel, QWidget

    out = []
    for child in page.findChildren(QWidget):
        one_line = isinstance(child, (QAbstractButton, QComboBox)) or (
            isinstance(child, QLabel) and not child.wordWrap()
        )
        if one_line and child.isVisible() and child.width() < child.minimumSizeHint().width():
            text = child.text() if hasattr(child, "text") else type(child).__name__
            out.append(f"{text!r}: {child.width()} < {child.minimumSizeHint().width()}")
    return out


def test_small_window_clips_no_control_and_long_file_names_are_elided(qtbot, window, sample_copy):
    import json as _json

    long_name = "a_very_long_file_name_that_a_camera_export_would_write_" * 3 + ".jpg"
    ann = sample_copy / "annotations" / "instances_train.json"
    doc = _json.loads(ann.read_text())
    old = doc["images"][0]["file_name"]
    (sample_copy / "train" / old).rename(sample_copy / "train" / long_name)
    doc["images"][0]["file_name"] = long_name
    ann.write_text(_json.dumps(doc))
    window.resize(800, 560)
    _open(qtbot, window, sample_copy)
    qtbot.wait(50)
    assert window.width() == 800 and window.height() == 560  # no minimum size forces it bigger
    assert _clipped(window.browser) == []
    window.show_image(window.browser.current_refs()[0])
    qtbot.waitUntil(lambda: not window.viewer.is_loading(), timeout=10_000)
    qtbot.wait(50)
    assert (window.width(), window.height()) == (800, 560) and _clipped(window.viewer) == []  # not widened
    assert long_name not in window.viewer.image_info.text() and "…" in window.viewer.image_info.text()
    assert long_name in window.viewer.image_info.toolTip()
    window.tabs.setCurrentWidget(window.augment_host)
    qtbot.waitUntil(
        lambda: window.augment is not None and window.augment.is_ready() and not window.augment.is_busy(),
        timeout=60_000,
    )
    qtbot.wait(200)  # the layout settles after the busy label's last change
    assert (window.width(), window.height()) == (800, 560) and _clipped(window.augment_host) == []
    window.tabs.setCurrentWidget(window.train_host)
    qtbot.waitUntil(lambda: window.train_tab is not None, timeout=60_000)
    qtbot.wait(200)
    assert (window.width(), window.height()) == (800, 560) and _clipped(window.train_host) == []


def test_a_closed_or_hidden_window_never_starts_the_preload(qtbot, window, monkeypatch):
    import app.dataset.augment_panel as augment_panel

    started = []
    monkeypatch.setattr(augment_panel, "start_warm_up", lambda: started.append(1))
    window.close()
    assert not window._preload_timer.isActive()
    window._preload_augment()  # a timeout already queued when it closed
    assert not started


def test_augmentation_preload_waits_while_the_grid_scrolls_or_a_dataset_opens(
    qtbot, window, sample_dataset, monkeypatch
):
    import app.dataset.augment_panel as augment_panel
    from app.dataset import augment_library
    from app.widgets.workers import run_in_background

    monkeypatch.setattr(augment_library, "LIBRARY", augment_library.AugmentLibrary())
    started = []
    monkeypatch.setattr(augment_panel, "start_warm_up", lambda: started.append(1) or run_in_background(lambda: None))
    # The interval is long so that only the test decides when the quiet moment comes: a loaded
    # machine can stall the event loop for longer than any real interval.
    window._preload_timer.setInterval(60_000)
    window._preload_timer.setTimerType(Qt.TimerType.PreciseTimer)  # a coarse one rounds remainingTime()
    window._preload_started = False
    window.hide()
    window.show()
    assert window._preload_timer.isActive()
    bar = window.browser.view.verticalScrollBar()
    bar.setRange(0, 1000)
    for k in range(1, 6):
        qtbot.wait(30)
        before = window._preload_timer.remainingTime()
        bar.setValue(k * 10)
        assert window._preload_timer.remainingTime() > before  # a scroll restarts the wait
    assert not started
    window._preload_timer.setInterval(300)
    window.open_folder(sample_dataset)
    window._preload_timer.start()
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=30_000)
    qtbot.waitUntil(lambda: bool(started), timeout=5_000)
