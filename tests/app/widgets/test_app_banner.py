"""The message banner: shown for a cause, cleared only by that cause, dismissable by the user."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

from app.widgets.banner import Banner  # noqa: E402


def test_banner_clears_only_for_its_own_cause(qtbot):
    banner = Banner()
    qtbot.addWidget(banner)
    banner.show_message("the panel holds detection augmentations", cause="augment")
    assert not banner.isHidden()
    banner.clear("training")  # another cause: the message stays
    assert not banner.isHidden() and "detection" in banner.text()
    banner.clear("augment")
    assert banner.isHidden() and banner.text() == ""


def test_banner_close_button_dismisses(qtbot):
    banner = Banner()
    qtbot.addWidget(banner)
    banner.show_message("run failed: CUDA out of memory", kind="warning")
    with qtbot.waitSignal(banner.dismissed, timeout=1000):
        qtbot.mouseClick(banner.close_button, Qt.MouseButton.LeftButton)
    assert banner.isHidden()


def test_banner_rejects_unknown_kind(qtbot):
    banner = Banner()
    qtbot.addWidget(banner)
    with pytest.raises(ValueError, match="kind"):
        banner.show_message("x", kind="fatal")
