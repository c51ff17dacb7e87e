"""Suggest (the learning-rate finder) shows its steps, size and ETA, and can be cancelled (#16 item 12)."""

import re
import time
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")


def _wait(qtbot, predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        qtbot.wait(50)


def _finders_of(folder: str) -> list[int]:
    """Processes whose command line names ``folder`` (the finder's config lives there)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if folder in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def test_suggest_shows_size_steps_and_eta_and_cancel_stops_the_finder(qtbot, tmp_path, sample_dataset):
    from PySide6.QtCore import Qt

    from app.main_window import MainWindow

    window = MainWindow(tmp_path / "ws")
    qtbot.addWidget(window)
    window.show()
    window.tabs.setCurrentWidget(window.train_host)
    tab = window.train_tab
    tab.set_dataset(sample_dataset)
    # The size training will use: the form's 96 px, not a fixed one.
    for path, value in {
        "model.checkpoint": "resnet-tiny",
        "data.image_size": 96,
        "data.num_workers": 0,
        "optim.batch_size": 16,
    }.items():
        tab.form.set_value(path, value)
    lr_before = tab.form.model.values["optim.lr"]
    texts, outcomes = [], []
    suggester = tab.lr_suggester
    suggester.progress.connect(texts.append)
    suggester.failed.connect(texts.append)  # a failure's message, should the finder fail instead
    for name in ("suggested", "failed", "cancelled"):
        getattr(suggester, name).connect(lambda *a, name=name: outcomes.append(name))
    assert window.suggest_cancel.isHidden()
    assert tab.suggest_lr()
    assert not window.suggest_cancel.isHidden() and not window.suggest_progress.isHidden()
    folder = suggester._folder.name
    _wait(
        qtbot,
        lambda: any(re.match(r"step \d+/100 at 96 px · ETA \d+:\d\d$", t) for t in texts),
        180,
        f"a step with an ETA (seen: {texts[-3:]})",
    )
    assert window.suggest_progress.maximum() == 100 and window.suggest_progress.value() >= 2
    assert _finders_of(folder), "the finder runs in a process of its own"
    qtbot.mouseClick(window.suggest_cancel, Qt.MouseButton.LeftButton)
    _wait(qtbot, lambda: not suggester.running, 20, "the search to end")
    assert outcomes == ["cancelled"], texts[-3:]
    assert window.suggest_cancel.isHidden() and tab.banner.isHidden()
    assert tab.form.model.values["optim.lr"] == lr_before
    _wait(qtbot, lambda: not _finders_of(folder), 10, "the finder's process to be gone")
    assert tab.form.suggest_button.isEnabled()  # a new search can start
    window.close()
