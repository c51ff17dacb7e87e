"""The image viewer: overlays per annotation kind, toggles, selection, navigation, bad images."""

import pytest
from PySide6.QtCore import QPoint, Qt

from app.dataset.session import ImageRef, open_dataset
from app.dataset.viewer import ImageViewer
from app.widgets.colours import category_colour
from engine.data.coco_index import SEG_POLYGON, SEG_RLE


@pytest.fixture
def viewer(qtbot):
    widget = ImageViewer()
    qtbot.addWidget(widget)
    widget.resize(1000, 700)
    widget.show()
    return widget


def _show(qtbot, viewer, session, ref):
    viewer.show_image(session, ref)
    qtbot.waitUntil(lambda: not viewer.is_loading() and viewer.ref == ref, timeout=10_000)


def _rich_ref(session) -> ImageRef:
    """A train image with a polygon, an RLE 'blob' and an uncompressed-RLE crowd region."""
    index = session.index("train")
    for row in range(index.num_images):
        rows = index.annotation_rows(row)
        kinds = {int(index.ann_seg_kind[r]) for r in rows}
        has_crowd = any(index.ann_iscrowd[r] for r in rows)
        if kinds == {SEG_POLYGON, SEG_RLE} and has_crowd and len(rows) >= 3:
            return ImageRef("train", row)
    raise AssertionError("the sample dataset has no image with every kind of segmentation")


def test_colours_are_distinct_and_stable():
    colours = [category_colour(i).name() for i in range(12)]
    assert len(set(colours)) == 12
    assert category_colour(3) == category_colour(3)


def test_overlays_match_the_annotations(qtbot, viewer, session):
    ref = _rich_ref(session)
    _show(qtbot, viewer, session, ref)
    index = session.index(ref.split)
    rows = list(index.annotation_rows(ref.row))
    assert viewer.image_item is not None
    assert viewer.image_item.pixmap().width() == index.image_width[ref.row]
    assert not viewer.message.isVisible()
    assert len(viewer.overlay_items("box")) == len(rows)
    assert len(viewer.overlay_items("label")) == len(rows)
    polygon_ids = {int(index.ann_ids[r]) for r in rows if index.ann_seg_kind[r] == SEG_POLYGON}
    assert {i.data(0) for i in viewer.overlay_items("polygon")} == polygon_ids
    rle_ids = {int(index.ann_ids[r]) for r in rows if index.ann_seg_kind[r] == SEG_RLE}
    crowd_ids = {int(index.ann_ids[r]) for r in rows if index.ann_iscrowd[r]}
    blob_ids = {
        int(index.ann_ids[r])
        for r in rows
        if index.category_names[index.ann_label[r]] == "blob" and not index.ann_iscrowd[r]
    }
    masks = {i.data(0) for i in viewer.overlay_items("mask")}
    assert masks == rle_ids and crowd_ids <= masks and blob_ids <= masks
    # The crowd mask sits in the bottom-left corner, where the sample draws it.
    crowd = next(i for i in viewer.overlay_items("mask") if i.data(0) in crowd_ids)
    assert crowd.offset().x() == 0
    assert crowd.offset().y() + crowd.pixmap().height() == index.image_height[ref.row]


def test_category_and_layer_toggles_hide_items(qtbot, viewer, session):
    ref = _rich_ref(session)
    _show(qtbot, viewer, session, ref)
    viewer.set_category_visible("blob", False)
    for item in viewer.overlay_items():
        assert item.isVisible() == (item.data(2) != "blob")
    checked = {
        viewer.category_list.item(i).data(Qt.UserRole): viewer.category_list.item(i).checkState()
        for i in range(viewer.category_list.count())
    }
    assert checked["blob"] == Qt.Unchecked
    viewer.set_category_visible("blob", True)
    viewer.layer_boxes["boxes"].setChecked(False)
    assert not any(i.isVisible() for i in viewer.overlay_items("box"))
    assert all(i.isVisible() for i in viewer.overlay_items("label"))
    viewer.set_layer_visible("labels", False)
    assert not any(i.isVisible() for i in viewer.overlay_items("label"))
    assert all(i.isVisible() for i in viewer.overlay_items("mask") + viewer.overlay_items("polygon"))


def test_highlight_selects_and_fills_the_info(qtbot, viewer, session):
    ref = _rich_ref(session)
    index = session.index(ref.split)
    target = int(index.ann_ids[list(index.annotation_rows(ref.row))[-1]])
    viewer.show_image(session, ref)
    assert viewer.highlight_annotation(target)  # right away, as the health panel does
    qtbot.waitUntil(lambda: not viewer.is_loading(), timeout=10_000)
    selected = viewer.scene.selectedItems()
    assert selected and {i.data(0) for i in selected} == {target}
    box = next(i for i in selected if i.data(1) == "box")
    assert box.pen().widthF() > 2
    assert f"id: {target}" in viewer.info.text()
    assert not viewer.highlight_annotation(999_999)


def test_hover_and_click_show_the_fields(qtbot, viewer, session):
    ref = _rich_ref(session)
    _show(qtbot, viewer, session, ref)
    index = session.index(ref.split)
    row = next(r for r in index.annotation_rows(ref.row) if index.ann_seg_kind[r] == SEG_POLYGON)
    ann_id, name = int(index.ann_ids[row]), index.category_names[index.ann_label[row]]
    x, y, w, h = index.ann_bbox[row]
    point = viewer.view.mapFromScene(x + w / 2, y + h / 2)
    qtbot.mouseMove(viewer.view.viewport(), point)
    qtbot.waitUntil(lambda: f"id: {ann_id}" in viewer.info.text(), timeout=2_000)
    assert f"category: {name} (id {int(index.ann_category_id[row])})" in viewer.info.text()
    viewer.info.clear()
    qtbot.mouseClick(viewer.view.viewport(), Qt.LeftButton, pos=point)
    assert viewer.selected_annotation() == ann_id
    assert f"id: {ann_id}" in viewer.info.text() and "segmentation: polygon" in viewer.info.text()
    # A click on the empty margin drops the selection.
    qtbot.mouseClick(viewer.view.viewport(), Qt.LeftButton, pos=QPoint(3, 3))
    assert viewer.selected_annotation() is None


def test_next_and_previous_walk_the_refs(qtbot, viewer, session):
    refs = [ImageRef("train", r) for r in range(4)]
    viewer.set_refs(refs, refs[1])
    _show(qtbot, viewer, session, refs[1])
    seen = []
    viewer.current_changed.connect(seen.append)
    viewer.next()
    qtbot.keyClick(viewer.view, Qt.Key_PageDown)
    qtbot.keyClick(viewer.view, Qt.Key_Right)  # past the end: stays
    assert seen == [refs[2], refs[3]] and viewer.ref == refs[3]
    qtbot.keyClick(viewer.view, Qt.Key_Left)
    viewer.previous()
    assert seen[-2:] == [refs[2], refs[1]] and viewer.ref == refs[1]
    qtbot.waitUntil(lambda: not viewer.is_loading(), timeout=10_000)
    assert viewer.image_item.pixmap().width() == session.index("train").image_width[1]


def test_zoom_and_fit(qtbot, viewer, session):
    _show(qtbot, viewer, session, ImageRef("train", 0))
    fitted = viewer.view.scale_factor()
    qtbot.keyClick(viewer.view, Qt.Key_Plus)
    assert viewer.view.scale_factor() == pytest.approx(fitted * 1.25)
    qtbot.keyClick(viewer.view, Qt.Key_Minus)
    qtbot.keyClick(viewer.view, Qt.Key_Minus)
    assert viewer.view.scale_factor() < fitted
    qtbot.keyClick(viewer.view, Qt.Key_F)
    assert viewer.view.scale_factor() == pytest.approx(fitted)


def test_unreadable_image_shows_the_error(qtbot, viewer, sample_copy):
    session = open_dataset(sample_copy, check_files=False)
    ref = ImageRef("train", 0)
    path = session.image_path(ref)
    path.write_bytes(b"this is not a jpeg" * 10)
    _show(qtbot, viewer, session, ref)
    assert viewer.message.isVisible()
    assert str(path) in viewer.message.text() and "not an image" in viewer.message.text()
    assert viewer.image_item is None
    assert len(viewer.overlay_items("box")) == len(session.index("train").annotation_rows(0))
    _show(qtbot, viewer, session, ImageRef("train", 1))  # and the next image works
    assert not viewer.message.isVisible() and viewer.image_item is not None


def test_size_mismatch_is_drawn_and_reported(qtbot, viewer, sample_copy):
    from PIL import Image

    session = open_dataset(sample_copy, check_files=False)
    ref = ImageRef("train", 0)
    Image.new("RGB", (300, 50), "white").save(session.image_path(ref))
    _show(qtbot, viewer, session, ref)
    assert viewer.image_item.pixmap().width() == 300
    assert "300×50" in viewer.image_info.text() and "JSON coordinates" in viewer.image_info.text()
    assert viewer.overlay_items("box")


def test_fast_switching_ends_on_the_last_image(qtbot, viewer, session):
    refs = [ImageRef("train", r) for r in range(5, 10)]
    loaded = []
    viewer.image_loaded.connect(loaded.append)
    for ref in refs:
        viewer.show_image(session, ref)
    qtbot.waitUntil(lambda: not viewer.is_loading(), timeout=10_000)
    viewer._pool.waitForDone(5_000)
    qtbot.wait(50)  # let any late result of an older request arrive (and be dropped)
    index = session.index("train")
    assert viewer.ref == refs[-1] and loaded == [refs[-1]]
    assert viewer.image_item.pixmap().width() == index.image_width[refs[-1].row]
    assert len(viewer.overlay_items("box")) == len(index.annotation_rows(refs[-1].row))


def test_screenshot(qtbot, viewer, session, screenshot_dir):
    ref = _rich_ref(session)
    viewer.set_refs(session.select(split="train"), ref)
    _show(qtbot, viewer, session, ref)
    index = session.index(ref.split)
    viewer.highlight_annotation(int(index.ann_ids[list(index.annotation_rows(ref.row))[0]]))
    viewer.fit()
    assert viewer.grab().save(str(screenshot_dir / "viewer.png"))


@pytest.mark.parametrize("where", [(0.25, 0.3), (0.8, 0.7)])
def test_wheel_zooms_about_the_point_under_the_cursor(qtbot, viewer, session, where):
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    _show(qtbot, viewer, session, ImageRef("train", 0))
    port = viewer.view.viewport()
    pos = QPointF(int(port.width() * where[0]), int(port.height() * where[1]))
    before = viewer.view.mapToScene(pos.toPoint())
    fitted = viewer.view.scale_factor()
    for steps in (1, 1, 2, -1):
        event = QWheelEvent(
            pos,
            port.mapToGlobal(pos),
            QPoint(0, 0),
            QPoint(0, 120 * steps),
            Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier,
            Qt.ScrollPhase.NoScrollPhase,
            False,
        )
        QApplication.sendEvent(port, event)
        after = viewer.view.mapFromScene(before)
        assert abs(after.x() - pos.x()) <= 3 and abs(after.y() - pos.y()) <= 3
    assert viewer.view.scale_factor() == pytest.approx(fitted * 1.25**3)


def _crowded_session(sample_copy, n=300):
    import json

    ann = sample_copy / "annotations" / "instances_train.json"
    doc = json.loads(ann.read_text())
    image = doc["images"][0]
    next_id = max(a["id"] for a in doc["annotations"]) + 1
    cat = doc["categories"][0]["id"]
    for k in range(n):
        x, y = (k % 20) * (image["width"] / 20), (k // 20) * (image["height"] / 16)
        doc["annotations"].append(
            {
                "id": next_id + k,
                "image_id": image["id"],
                "category_id": cat,
                "bbox": [x, y, 4, 4],
                "area": 16,
                "iscrowd": 0,
            }
        )
    ann.write_text(json.dumps(doc))
    return open_dataset(sample_copy, check_files=False)


def test_labels_fade_and_shrink_when_an_image_is_crowded(qtbot, viewer, session, sample_copy):
    _show(qtbot, viewer, session, ImageRef("train", 0))
    few = viewer.overlay_items("label")
    assert len(few) < 30 and all(label.opacity() == 1.0 for label in few)
    crowded = _crowded_session(sample_copy)
    _show(qtbot, viewer, crowded, ImageRef("train", 0))
    labels = viewer.overlay_items("label")
    assert len(labels) > 300
    assert max(label.opacity() for label in labels) < 0.5
    tiny = [label for label in labels if label.box_width == 4]
    assert tiny and all(label.scale() == pytest.approx(0.6) and label.opacity() <= 0.2 for label in tiny)
    for _ in range(12):  # zoomed far in, a tag fits its box again
        qtbot.keyClick(viewer.view, Qt.Key_Plus)
    assert tiny[0].scale() == pytest.approx(1.0) and tiny[0].opacity() > 0.2


def test_keys_toggle_boxes_masks_and_labels(qtbot, viewer, session):
    _show(qtbot, viewer, session, _rich_ref(session))
    for key, layer, kind in ((Qt.Key_B, "boxes", "box"), (Qt.Key_M, "masks", "polygon"), (Qt.Key_L, "labels", "label")):
        qtbot.keyClick(viewer.view, key)
        assert not viewer.layer_boxes[layer].isChecked()
        assert not any(item.isVisible() for item in viewer.overlay_items(kind))
        qtbot.keyClick(viewer.view, key)
        assert viewer.layer_boxes[layer].isChecked() and all(i.isVisible() for i in viewer.overlay_items(kind))
