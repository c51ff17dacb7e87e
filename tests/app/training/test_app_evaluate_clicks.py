"""The Evaluate tab in the main window over the sample dataset: a confusion cell, a false positive and a
miss land on the right images; the threshold slider's figures equal a direct count; Browse sorts and
filters by the run's errors and the Image view walks the filtered list."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from app.main_window import MainWindow
from app.training.evaluation_model import load_evaluation
from tests.app.training.test_app_evaluate_model import (
    brute_counts,
    generated_classification,
    generated_detection,
    generated_segmentation,
    sample_coco,
    write_report,
)


@pytest.fixture
def window(qtbot, tmp_path, sample_dataset):
    win = MainWindow(tmp_path / "ws")
    qtbot.addWidget(win)
    win.show()
    task = win.open_folder(sample_dataset)
    qtbot.waitUntil(lambda: task.done.is_set() and not win.is_busy(), timeout=30_000)
    return win


def _show(qtbot, window, doc, tmp_path):
    doc["data"]["path"] = str(window.session.root)
    evaluation = load_evaluation(write_report(doc, tmp_path / "run"))
    window.tabs.setCurrentWidget(window.evaluate_host)
    window.evaluate_view.set_evaluation(evaluation)
    qtbot.waitUntil(lambda: window.evaluate_link.ready, timeout=10_000)
    return evaluation


def _ids(window, refs):
    return [int(window.session.index(r.split).image_ids[r.row]) for r in refs]


def test_a_confusion_cell_opens_its_images_in_browse_most_confident_first(qtbot, window, tmp_path, sample_dataset):
    doc = generated_classification(sample_coco(sample_dataset), seed=4)
    evaluation = _show(qtbot, window, doc, tmp_path)
    matrix = window.evaluate_view.classification.matrix
    counts = evaluation.confusion
    row, column = max(
        ((r, c) for r in range(len(counts)) for c in range(len(counts)) if r != c), key=lambda rc: counts[rc]
    )
    assert counts[row, column] >= 1
    qtbot.mouseClick(matrix, Qt.LeftButton, pos=matrix.cell_centre(row, column).toPoint())
    assert window.tabs.currentWidget() is window.browser
    expected = [
        im
        for im in doc["images"]
        if im["label"] == doc["classes"][row]["id"] and im["predicted"] == doc["classes"][column]["id"]
    ]
    expected.sort(key=lambda im: -im["score"])
    assert _ids(window, window.browser.current_refs()) == [im["image_id"] for im in expected]
    assert window.browser.current_ref() == window.browser.current_refs()[0]
    # Counts and shares: the same matrix, each row summing to one.
    window.evaluate_view.classification.normalised.setChecked(True)
    assert matrix.matrix.sum(axis=1) == pytest.approx([1.0] * len(counts))


def test_a_false_positive_and_a_miss_open_their_image_with_outcomes_drawn(qtbot, window, tmp_path, sample_dataset):
    doc = generated_detection(sample_coco(sample_dataset), seed=5)
    evaluation = _show(qtbot, window, doc, tmp_path)
    page = window.evaluate_view.detection
    false_positives = evaluation.matches.false_positives_at(page.threshold)
    assert page.fp_model.rowCount() == len(false_positives) >= 2
    k = 1
    fp = false_positives[k]
    index = page.fp_model.index(k, 0)
    qtbot.mouseClick(page.fp_list.viewport(), Qt.LeftButton, pos=page.fp_list.visualRect(index).center())
    assert window.tabs.currentWidget() is window.viewer
    assert _ids(window, [window.viewer.ref]) == [doc["images"][fp.image]["image_id"]]
    boxes = window.viewer.prediction_items("pred_box")
    red = [item for item in boxes if item.isVisible() and item.pen().color().name() == "#d32f2f"]
    assert any(abs(item.data(5) - fp.score) < 1e-9 for item in red)  # item data 5: its score
    tags = [item.text for item in window.viewer.prediction_items("pred_label") if item.isVisible()]
    assert any(tag.startswith(f"FP {fp.reason}") for tag in tags)

    window.tabs.setCurrentWidget(window.evaluate_host)
    misses = evaluation.matches.misses_at(page.threshold)
    miss = misses[0]
    qtbot.mouseClick(
        page.miss_list.viewport(), Qt.LeftButton, pos=page.miss_list.visualRect(page.miss_model.index(0, 0)).center()
    )
    assert _ids(window, [window.viewer.ref]) == [doc["images"][miss.image]["image_id"]]
    assert window.viewer.selected_annotation() == miss.annotation_id
    assert any(item.isVisible() for item in window.viewer.prediction_items("miss_box"))


def test_the_threshold_slider_counts_equal_a_direct_count(qtbot, window, tmp_path, sample_dataset):
    doc = generated_detection(sample_coco(sample_dataset), seed=6)
    _show(qtbot, window, doc, tmp_path)
    page = window.evaluate_view.detection
    for value in (0, 17, 50, 73, 100):
        page.slider.setValue(value)
        tp, fp, fn = brute_counts(doc, value / 100)
        shown = page.figures_shown()
        assert (shown["TP"], shown["FP"], shown["FN"]) == (f"{tp:,}", f"{fp:,}", f"{fn:,}")
        precision = tp / (tp + fp) if tp + fp else 0.0
        assert shown["P"] == f"{precision:.3f}"
        assert page.fp_model.rowCount() == fp and page.miss_model.rowCount() == fn
        assert window.viewer.state.min_score == pytest.approx(value / 100)  # the Image view follows


def test_browse_sorts_worst_first_filters_and_the_image_view_walks_the_list(qtbot, window, tmp_path, sample_dataset):
    doc = generated_detection(sample_coco(sample_dataset), seed=7)
    _show(qtbot, window, doc, tmp_path)
    browser = window.browser
    error_of = {im["image_id"]: im["error"] for im in doc["images"]}
    browser.split_combo.setCurrentText("val")
    browser.sort_combo.setCurrentText("worst first")
    errors = [error_of[i] for i in _ids(window, browser.current_refs())]
    assert len(errors) == len(doc["images"]) and errors == sorted(errors, reverse=True)

    browser.run_combo.setCurrentText("has misses")
    expected = {
        doc["images"][m.image]["image_id"]
        for m in load_evaluation(window.evaluate_view.evaluation.path).matches.misses_at(0.5)
    }
    shown = _ids(window, browser.current_refs())
    assert set(shown) == expected and [error_of[i] for i in shown] == sorted((error_of[i] for i in shown), reverse=True)
    browser.run_combo.setCurrentText("has false positives")
    with_fp = _ids(window, browser.current_refs())
    assert with_fp and all(
        any(p["outcome"] == "fp" and p["score"] >= 0.5 for p in im["predictions"])
        for im in doc["images"]
        if im["image_id"] in with_fp
    )

    refs = browser.current_refs()
    window.show_image(refs[0])
    qtbot.keyClick(window.viewer.view, Qt.Key_Right)
    assert window.viewer.ref == refs[1]  # the arrow walks the filtered list, not the dataset


def test_a_segmentation_image_opens_from_the_iou_list_worst_first(qtbot, window, tmp_path, sample_dataset):
    doc = generated_segmentation(sample_coco(sample_dataset), seed=8)
    _show(qtbot, window, doc, tmp_path)
    page = window.evaluate_view.segmentation
    worst = max(doc["images"], key=lambda im: im["error"])
    assert page.images.item(0, 0).text() == worst["file_name"]
    page.images.cellClicked.emit(0, 0)
    assert window.tabs.currentWidget() is window.viewer
    assert _ids(window, [window.viewer.ref]) == [worst["image_id"]]
    assert window.statusBar().currentMessage().startswith(f"{worst['file_name']}: IoU")
    assert page.bars.getPlotItem().listDataItems() or page.bars.getPlotItem().items  # the per-class bars
