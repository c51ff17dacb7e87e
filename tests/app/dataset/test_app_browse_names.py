"""Browse tiles of files whose names share a long start read differently (the tooltip keeps them whole)."""

from __future__ import annotations

import json
import random

from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QStyleOptionViewItem

from app.dataset.browser import DatasetBrowser
from app.dataset.session import open_dataset
from app.widgets.elided_label import ElidedLabel, distinct_start, elide_name

PREFIX = "2019_YELLOWSTONE_LAST_FLIGHT_ortho_"


def tile_names(n: int) -> list[str]:
    return [f"{PREFIX}{k // 3}_{k % 3}_0.png" for k in range(n)]


def tiles_dataset(root, names):
    (root / "images").mkdir(parents=True)
    images = []
    for k, name in enumerate(names):
        Image.new("RGB", (24, 18), (30 + 10 * k, 90, 160)).save(root / "images" / name)
        images.append({"id": k + 1, "file_name": name, "width": 24, "height": 18})
    doc = {
        "images": images,
        "categories": [{"id": 1, "name": "tree"}],
        "annotations": [
            {"id": k + 1, "image_id": k + 1, "category_id": 1, "bbox": [1, 1, 5, 5]} for k in range(len(names))
        ],
    }
    (root / "annotations.json").write_text(json.dumps(doc))
    return root


def shown_names(browser: DatasetBrowser) -> list[str]:
    view = browser.view
    option = QStyleOptionViewItem()
    option.initFrom(view)
    out = []
    for row in range(browser.model.rowCount()):
        width = view.visualRect(browser.model.index(row)).width()
        assert width > 0
        out.append(browser.delegate.shown_name(row, width - 12, option))  # as paint() asks for it
    return out


def test_tiles_with_a_long_shared_prefix_read_differently(qtbot, tmp_path):
    names = tile_names(12)
    browser = DatasetBrowser()
    qtbot.addWidget(browser)
    browser.resize(900, 600)
    browser.show()
    browser.set_session(open_dataset(tiles_dataset(tmp_path / "tiles", names), check_files=False))
    qtbot.waitUntil(lambda: browser.model.rowCount() == 12)

    shown = shown_names(browser)
    assert all(text != name for text, name in zip(shown, names))  # too long for a tile: elided
    assert len(set(shown)) == len(names), shown
    for text, name in zip(shown, names):
        assert text.startswith("…") and name.endswith(text[1:])  # the distinguishing end is there
        tooltip = browser.model.data(browser.model.index(names.index(name)), Qt.ItemDataRole.ToolTipRole)
        assert name in tooltip  # the tooltip has the whole name
    # Cut in the middle (as before), every tile read the same.
    option = QStyleOptionViewItem()
    option.initFrom(browser.view)
    width = browser.view.visualRect(browser.model.index(0)).width() - 12
    middle = {option.fontMetrics.elidedText(n, Qt.TextElideMode.ElideMiddle, width) for n in names}
    assert len(middle) < len(names)


def test_distinct_start_keeps_the_whole_differing_number():
    assert distinct_start("tile_12_0.png", ["tile_13_0.png", "tile_11_0.png"]) == len("tile_")
    assert distinct_start("a_0_0.png", ["a_0_1.png"]) == len("a_0_")
    assert distinct_start("cat.png", ["dog.png"]) == 0
    assert distinct_start("same.png", ["same.png"]) == 0  # itself (or a copy) tells nothing


def test_elide_name_cuts_the_shared_start_and_keeps_the_end():
    metrics = QFontMetrics(QFont())
    name = PREFIX + "17_2_0.png"
    start = len(PREFIX)
    room = metrics.horizontalAdvance("…" + name[start - 6 :])
    text = elide_name(name, metrics, room, start)
    assert text.startswith("…") and text.endswith("17_2_0.png") and len(text) < len(name)
    # Too little room even for the distinguishing part: its start and the extension stay.
    long_tail = PREFIX + "17_and_a_very_long_description_of_the_tile.png"
    tight = elide_name(long_tail, metrics, metrics.horizontalAdvance("…17_and_a…tile.png"), start)
    assert tight.startswith("…17") and tight.endswith(".png")
    assert elide_name("short.png", metrics, 500, 3) == "short.png"


def test_elided_label_keeps_the_distinguishing_end(qtbot):
    names = tile_names(6)
    random.Random(0).shuffle(names)
    label = ElidedLabel()
    qtbot.addWidget(label)
    label.resize(label.fontMetrics().horizontalAdvance("…LAST_FLIGHT_ortho_1_1_0.png"), 20)
    shown = set()
    for k, name in enumerate(names):
        label.setText(name, distinct_start(name, names[max(0, k - 1) : k + 2]))
        shown.add(label.text())
        assert label.toolTip() == name and label.full_text() == name
    assert len(shown) == len(names)
