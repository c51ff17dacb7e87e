"""The Image view draws predictions apart from ground truth: dashed, scored, thresholded, toggled."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

from app.dataset.predictions import Prediction  # noqa: E402
from app.dataset.session import ImageRef  # noqa: E402
from app.dataset.viewer import ImageViewer  # noqa: E402


@pytest.fixture
def viewer(qtbot):
    widget = ImageViewer()
    qtbot.addWidget(widget)
    widget.resize(900, 600)
    widget.show()
    return widget


def _rle(width, height, box):
    from pycocotools import mask as mask_utils

    mask = np.zeros((height, width), np.uint8)
    x, y, w, h = box
    mask[y : y + h, x : x + w] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def _shown(items):
    return [item for item in items if item.isVisible()]


def test_predicted_boxes_are_dashed_with_their_score_and_follow_the_threshold(qtbot, viewer, session):
    ref = ImageRef("val", 0)
    predictions = [
        Prediction("circle", 0.9, 1, (10, 10, 30, 30)),
        Prediction("square", 0.3, 2, (50, 20, 20, 20)),
    ]
    viewer.set_predictions(session, {ref: predictions}, "results.json")
    viewer.show_image(session, ref)
    truth = viewer.overlay_items("box")
    boxes = viewer.prediction_items("pred_box")
    assert len(boxes) == 2 and all(b.pen().style() == Qt.PenStyle.DashLine for b in boxes)
    assert all(b.pen().style() == Qt.PenStyle.SolidLine for b in truth if not b.data(4))  # crowds are dashed
    assert sorted(label.text for label in viewer.prediction_items("pred_label")) == ["circle 0.90", "square 0.30"]
    assert len(_shown(boxes)) == 1  # the default threshold (0.5) hides the 0.3 box
    assert "1 of 2 predictions with score ≥ 0.50" in viewer.prediction_panel.count.text()

    viewer.prediction_panel.score.setValue(20)  # the slider: 0.20
    assert len(_shown(boxes)) == 2
    viewer.prediction_panel.shown.setChecked(False)
    assert _shown(viewer.prediction_items()) == [] and len(_shown(truth)) == len(truth)
    viewer.prediction_panel.shown.setChecked(True)
    viewer.prediction_panel.truth.setChecked(False)
    assert _shown(truth) == [] and len(_shown(boxes)) == 2
    qtbot.keyClick(viewer.view, Qt.Key.Key_G)  # G brings the ground truth back
    assert len(_shown(truth)) == len(truth) and viewer.prediction_panel.truth.isChecked()


def test_predicted_masks_are_an_overlay_with_their_own_opacity(qtbot, viewer, session):
    ref = ImageRef("val", 1)
    index = session.index("val")
    width, height = int(index.image_width[1]), int(index.image_height[1])
    viewer.set_predictions(
        session, {ref: [Prediction("triangle", 0.8, 3, rle=_rle(width, height, (4, 6, 20, 10)))]}, "r.json"
    )
    viewer.show_image(session, ref)
    qtbot.waitUntil(lambda: len(viewer.prediction_items("pred_mask")) == 1, timeout=10_000)
    mask = viewer.prediction_items("pred_mask")[0]
    assert (mask.offset().x(), mask.offset().y()) == (4, 6)
    assert (mask.pixmap().width(), mask.pixmap().height()) == (20, 10)
    viewer.prediction_panel.opacity.setValue(80)
    assert mask.opacity() == pytest.approx(0.8)
    assert viewer.overlay_items("mask") == [] or all(m.opacity() == 1.0 for m in viewer.overlay_items("mask"))


def test_a_class_prediction_frames_the_image_and_other_images_show_none(qtbot, viewer, session):
    predicted, other = ImageRef("val", 2), ImageRef("val", 3)
    viewer.set_predictions(session, {predicted: [Prediction("square", 0.75, 2)]}, "r.json")
    viewer.show_image(session, predicted)
    assert len(viewer.prediction_items("pred_frame")) == 1
    assert [label.text for label in viewer.prediction_items("pred_label")] == ["square 0.75"]
    viewer.show_image(session, other)
    assert viewer.prediction_items() == []
    assert "not predicted" in viewer.prediction_panel.count.text()
    viewer.prediction_panel.clear_button.click()
    assert viewer.prediction_panel.isHidden()


def test_hovering_a_prediction_lists_its_fields(qtbot, viewer, session):
    ref = ImageRef("val", 0)
    viewer.set_predictions(session, {ref: [Prediction("square", 0.9, 2, (10, 10, 30, 30))]}, "r.json")
    viewer.show_image(session, ref)
    viewer.prediction_panel.truth.setChecked(False)  # nothing of the ground truth under the cursor
    box = viewer.prediction_items("pred_box")[0]
    viewer.view.hovered.emit(viewer.view.mapFromScene(box.rect().center()))
    assert viewer.info.text().startswith("prediction (dashed)")
    assert "category: square (id 2)" in viewer.info.text() and "score: 0.900" in viewer.info.text()
