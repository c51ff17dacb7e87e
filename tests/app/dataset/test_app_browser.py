"""The dataset browser: counts, filters, sorting, lazy thumbnails, broken files, the cache and the queue."""

import threading

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QImage

from app.dataset.session import ImageRef, open_dataset
from app.dataset.thumbnail_model import PROBLEMS_ROLE, REF_ROLE, UNREADABLE_ROLE
from app.dataset.thumbnails import ThumbnailCache, ThumbnailLoader


def _visible_rows(browser) -> list[int]:
    viewport = browser.view.viewport().rect()
    model = browser.model
    return [r for r in range(model.rowCount()) if browser.view.visualRect(model.index(r)).intersects(viewport)]


def _wait_for_thumbnails(qtbot, browser) -> list[int]:
    qtbot.waitUntil(lambda: len(_visible_rows(browser)) > 0, timeout=5000)
    rows = _visible_rows(browser)
    browser.view.viewport().repaint()  # painting is what asks for thumbnails
    qtbot.waitUntil(lambda: all(browser.model.has_thumbnail(r) for r in rows), timeout=10_000)
    return rows


def test_counts_filters_and_sort(qtbot, browser, sample_dataset):
    session = open_dataset(sample_dataset)
    browser.set_session(session)
    assert browser.status.text() == f"64 images · {session.num_annotations:,} annotations · 64 shown · 0 with problems"
    assert [browser.split_combo.itemText(i) for i in range(browser.split_combo.count())] == [
        "All splits",
        "train",
        "val",
    ]
    assert browser.category_combo.itemText(0) == "All categories"
    assert len(browser.current_refs()) == 64

    browser.split_combo.setCurrentText("val")
    assert len(browser.current_refs()) == 16 and {r.split for r in browser.current_refs()} == {"val"}
    assert "16 shown" in browser.status.text()
    assert list(browser.histogram.bars.opts["height"]) == list(session.class_counts("val").values())
    # Hovering a bar names it (labels may be thinned out when there are many categories).
    vb = browser.histogram.getPlotItem().vb
    browser.histogram._hover_bar(vb.mapViewToScene(QPointF(1, 1)))
    assert browser.histogram.toolTip().startswith(f"square: {session.class_counts('val')['square']} annotations")

    browser.category_combo.setCurrentText("circle")
    expected = session.select(split="val", category="circle")
    assert browser.current_refs() == expected and 0 < len(expected) < 16

    browser.split_combo.setCurrentIndex(0)
    browser.category_combo.setCurrentIndex(0)
    browser.sort_combo.setCurrentText("annotations")
    counts = [browser.model.index(r).data(Qt.ItemDataRole.UserRole + 2) for r in range(64)]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]
    tip = browser.model.index(0).data(Qt.ItemDataRole.ToolTipRole)
    assert browser.current_refs()[0].split in tip and f"{counts[0]} annotations" in tip


def test_selection_and_activation_signals(qtbot, browser, sample_dataset):
    browser.set_session(open_dataset(sample_dataset, check_files=False))
    target = ImageRef("val", 3)
    with qtbot.waitSignal(browser.selection_changed) as selected:
        assert browser.select_ref(target)
    assert selected.args == [target]
    with qtbot.waitSignal(browser.image_activated) as activated:
        qtbot.keyClick(browser.view, Qt.Key.Key_Return)
    assert activated.args == [target]
    browser.split_combo.setCurrentText("train")
    assert not browser.select_ref(target)  # hidden by the filter


def test_thumbnails_arrive_for_visible_rows_only(qtbot, browser, sample_dataset, screenshot_dir):
    browser.set_session(open_dataset(sample_dataset, check_files=False))
    rows = _wait_for_thumbnails(qtbot, browser)
    assert 0 < len(rows) < 64
    for r in rows:
        pixmap = browser.model.index(r).data(Qt.ItemDataRole.DecorationRole)
        assert max(pixmap.width(), pixmap.height()) == 128  # the real thumbnail, ~160x120 shrunk
    assert browser.model.index(rows[0]).data(REF_ROLE) == browser.current_refs()[rows[0]]
    # Rows far below the fold were never asked for.
    assert not browser.model.has_thumbnail(63)

    # A new size re-requests what is on screen, at that size.
    browser.size_slider.setValue(96)
    assert browser.model.thumb_size == 96 and not browser.model.has_thumbnail(rows[0])
    rows = _wait_for_thumbnails(qtbot, browser)
    assert max(browser.model.decoration(rows[0]).size().toTuple()) == 96
    browser.size_slider.setValue(128)
    _wait_for_thumbnails(qtbot, browser)
    browser.view.setCurrentIndex(browser.model.index(2))
    qtbot.wait(50)
    assert browser.grab().save(str(screenshot_dir / "browser.png"))


def test_unreadable_image_gets_the_placeholder_and_problem_filter(qtbot, browser, sample_copy):
    broken = sample_copy / "train" / "train_0000.jpg"
    broken.write_bytes(b"this is not a jpeg" * 10)
    session = open_dataset(sample_copy)
    browser.set_session(session)
    assert browser.status.text().endswith("64 shown · 1 with problems")
    assert browser.model.index(0).data(PROBLEMS_ROLE) >= 1

    _wait_for_thumbnails(qtbot, browser)
    index = browser.model.index(0)
    assert browser.model.index(0).data(REF_ROLE) == ImageRef("train", 0)
    assert index.data(UNREADABLE_ROLE)  # the reason, for the tooltip
    assert "unreadable" in index.data(Qt.ItemDataRole.ToolTipRole)
    card = index.data(Qt.ItemDataRole.DecorationRole).toImage()
    border = card.pixelColor(1, card.height() // 2)
    assert border.red() > 150 and border.green() < 100  # the red 'unreadable' card
    assert browser.model.index(1).data(UNREADABLE_ROLE) is None

    browser.problems_check.setChecked(True)
    assert browser.current_refs() == [ImageRef("train", 0)]
    assert "1 shown" in browser.status.text()
    browser.view.viewport().repaint()  # painting the broken card again must not crash
    browser.sort_combo.setCurrentText("problems")
    browser.problems_check.setChecked(False)
    assert browser.current_refs()[0] == ImageRef("train", 0)


def test_refresh_problems_after_the_file_check(qtbot, browser, sample_copy):
    (sample_copy / "val" / "val_0002.jpg").write_bytes(b"")
    session = open_dataset(sample_copy, check_files=False)
    browser.set_session(session)
    assert browser.status.text().endswith("0 with problems")
    from app.dataset.session import check_files

    session.problems = session.problems + check_files(session)
    browser.refresh_problems()
    assert browser.status.text().endswith("1 with problems")


def _image(width: int, height: int) -> QImage:
    image = QImage(width, height, QImage.Format.Format_RGB888)
    image.fill(0)
    return image


def test_cache_is_an_lru_bounded_by_bytes():
    one = _image(100, 100).sizeInBytes()
    cache = ThumbnailCache(max_bytes=3 * one)
    for i in range(3):
        cache.put((f"{i}.jpg", 128), _image(100, 100))
    assert cache.get(("0.jpg", 128)) is not None  # 0 is now the most recent
    cache.put(("3.jpg", 128), _image(100, 100))
    assert len(cache) == 3 and cache.bytes_used == 3 * one
    assert cache.get(("1.jpg", 128)) is None  # the least recently used went
    assert cache.get(("0.jpg", 128)) is not None
    cache.put(("big.jpg", 128), _image(400, 400))  # larger than the whole budget: not kept
    assert cache.get(("big.jpg", 128)) is None and cache.bytes_used <= cache.max_bytes
    cache.put(("wide.jpg", 128), _image(200, 100))  # worth two: evicts two
    assert len(cache) == 2 and cache.bytes_used <= cache.max_bytes


def test_loader_drops_stale_requests_and_serves_newest_first(qtbot):
    gate = threading.Event()
    decoded: list[str] = []

    def slow_decode(path, size):
        if path == "k0":
            gate.wait(5)  # hold the only worker so the others queue up
        decoded.append(path)
        return _image(4, 3)

    loader = ThumbnailLoader(ThumbnailCache(), max_pending=3, max_threads=1, decode=slow_decode)
    delivered = []
    loader.ready.connect(lambda key, image: delivered.append(key))
    loader.request("k0", "k0", 64)
    qtbot.waitUntil(lambda: loader.pending_count() == 0)  # the worker took k0
    for i in range(1, 10):
        loader.request(f"k{i}", f"k{i}", 64)
    loader.request("k0", "k0", 64)  # in flight: not queued twice
    assert loader.pending_count() == 3
    gate.set()
    assert loader.wait_idle(5)
    assert delivered == ["k0", "k9", "k8", "k7"]
    assert decoded == ["k0", "k9", "k8", "k7"]

    loader.request("k9", "k9", 64)  # cached now: delivered without decoding again
    assert loader.wait_idle(5)
    assert delivered[-1] == "k9" and len(decoded) == 4


def test_loader_reports_unreadable_files(qtbot, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    good = tmp_path / "good.png"
    from PIL import Image

    Image.fromarray(np.full((30, 40, 3), 200, np.uint8)).save(good)
    loader = ThumbnailLoader()
    results = {}
    loader.ready.connect(lambda key, image: results.__setitem__(key, image))
    loader.failed.connect(lambda key, message: results.__setitem__(key, message))
    loader.request("bad", bad, 32)
    loader.request("good", good, 32)
    loader.request("missing", tmp_path / "nope.jpg", 32)
    assert loader.wait_idle(5)
    assert isinstance(results["good"], QImage) and results["good"].size().toTuple() == (32, 24)
    assert results["good"].pixelColor(5, 5).red() == 200
    assert isinstance(results["bad"], str) and results["bad"]
    assert results["missing"] == "file not found"


def test_ctrl_f_searches_file_names_and_says_when_nothing_matches(qtbot, browser, session):
    browser.set_session(session)
    browser.activateWindow()
    qtbot.waitUntil(browser.isActiveWindow, timeout=3_000)
    browser.view.setFocus()
    qtbot.keyClick(browser.view, Qt.Key_F, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(browser.search_edit.hasFocus, timeout=3_000)
    wanted = session.index("val").file_names[2]
    qtbot.keyClicks(browser.search_edit, wanted.upper())  # case does not matter
    qtbot.waitUntil(
        lambda: [session.index(r.split).file_names[r.row] for r in browser.current_refs()] == [wanted], timeout=3_000
    )
    assert not browser.no_matches.isVisible()
    browser.search_edit.setText("no-such-file")
    qtbot.waitUntil(lambda: not browser.current_refs(), timeout=3_000)
    assert browser.no_matches.isVisible() and "no-such-file" in browser.no_matches.text()
    browser.search_edit.clear()
    qtbot.waitUntil(lambda: len(browser.current_refs()) == session.num_images, timeout=3_000)
    assert not browser.no_matches.isVisible()
    browser.problems_check.setChecked(True)  # the sample has no problems: an empty filter result
    assert browser.no_matches.isVisible() and "filters" in browser.no_matches.text()


def test_histogram_labels_every_bar_shows_counts_and_filters_on_click(qtbot, browser, sample_dataset):
    session = open_dataset(sample_dataset, check_files=False)
    browser.set_session(session)
    counts = session.class_counts()
    assert [t.toPlainText() for t in browser.histogram.bar_labels] == [f"{n:,}" for n in counts.values()]
    vb = browser.histogram.getPlotItem().vb
    assert browser.histogram.bar_at(vb.mapViewToScene(QPointF(2, 1))) == 2
    assert browser.histogram.bar_at(vb.mapViewToScene(QPointF(2.5, 1))) is None  # between bars
    browser.histogram.select_bar(2)  # what a click on the bar does
    name = list(counts)[2]
    assert browser.category_combo.currentText() == name
    assert browser.current_refs() == session.select(category=name)
    browser.histogram.select_bar(2)  # again: back to all categories
    assert browser.category_combo.currentIndex() == 0 and len(browser.current_refs()) == 64

    # Twenty long names on a narrow plot: every bar keeps a label, elided to its room.
    from PySide6.QtGui import QFontMetrics

    browser.histogram.resize(500, 160)
    browser.histogram._bar_names = [f"a rather long category name {k}" for k in range(20)]
    browser.histogram._update_ticks()
    axis = browser.histogram.getAxis("bottom")
    (ticks,) = axis._tickLevels
    assert [i for i, _ in ticks] == list(range(20))
    metrics = QFontMetrics(axis.style.get("tickFont") or browser.histogram.font())
    assert all(metrics.horizontalAdvance(text) <= max(440 / 20, metrics.horizontalAdvance("ab…")) for _, text in ticks)


def test_thumbnail_box_overlay_toggle(qtbot, browser, session):
    browser.set_session(session)
    model = browser.model
    qtbot.waitUntil(lambda: all(model.has_thumbnail(r) for r in range(4)), timeout=10_000)
    rect = browser.view.visualRect(model.index(0))
    plain = browser.view.viewport().grab(rect).toImage()
    assert not browser.delegate.show_boxes
    browser.boxes_check.setChecked(True)
    assert browser.delegate.show_boxes
    with_boxes = browser.view.viewport().grab(rect).toImage()
    assert with_boxes != plain  # the boxes are drawn on the card
    browser.set_thumbnail_boxes(False)
    assert not browser.boxes_check.isChecked() and browser.view.viewport().grab(rect).toImage() == plain
