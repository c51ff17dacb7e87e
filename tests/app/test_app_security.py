"""The app never opens an image whose file_name leaves the dataset folder; it says why instead."""

import json

import pytest
from PIL import Image

from app.dataset.session import ImageRef, open_dataset
from app.dataset.thumbnail_model import UNREADABLE_ROLE
from app.dataset.viewer import ImageViewer
from engine.data import images as image_io
from engine.data.paths import UnsafeFileName


@pytest.fixture
def unsafe(sample_copy, tmp_path):
    """The sample with three train images pointing outside: '..', an absolute path and a symlink."""
    outside = tmp_path / "outside.jpg"
    Image.new("RGB", (40, 30), "red").save(outside)
    (sample_copy / "train" / "out_link.jpg").symlink_to(outside)
    ann = sample_copy / "annotations" / "instances_train.json"
    doc = json.loads(ann.read_text())
    doc["images"][0]["file_name"] = "../../outside.jpg"
    doc["images"][1]["file_name"] = str(outside)
    doc["images"][2]["file_name"] = "out_link.jpg"
    ann.write_text(json.dumps(doc))
    return open_dataset(sample_copy, check_files=False), outside


@pytest.fixture
def spy(monkeypatch):
    opened: list[str] = []
    real = image_io.load_image

    def load(path, *args, **kwargs):
        opened.append(str(path))
        return real(path, *args, **kwargs)

    import app.dataset.thumbnails as thumbnails
    import app.dataset.viewer_decode as viewer_decode

    monkeypatch.setattr(thumbnails, "load_image", load)
    monkeypatch.setattr(viewer_decode, "load_image", load)
    return opened


def test_session_refuses_each_unsafe_file_name(unsafe):
    session, _ = unsafe
    reasons = []
    for row in range(3):
        with pytest.raises(UnsafeFileName) as info:
            session.image_path(ImageRef("train", row))
        reasons.append(info.value.reason)
    assert "'..'" in reasons[0] and "absolute" in reasons[1] and "symlink" in reasons[2]
    assert session.image_path(ImageRef("train", 3)).is_file()


def test_viewer_shows_refused_image_with_reason(qtbot, unsafe, spy):
    session, outside = unsafe
    viewer = ImageViewer()
    qtbot.addWidget(viewer)
    viewer.show()
    viewer.show_image(session, ImageRef("train", 0))
    qtbot.waitUntil(lambda: not viewer.is_loading(), timeout=10_000)
    assert viewer.message.isVisible() and "Refused" in viewer.message.text()
    assert "climbs out" in viewer.message.text()
    assert viewer.image_item is None and viewer.overlay_items("box")  # boxes still drawn on the placeholder
    viewer.show_image(session, ImageRef("train", 3))
    qtbot.waitUntil(lambda: not viewer.is_loading() and viewer.image_item is not None, timeout=10_000)
    assert not viewer.message.isVisible()
    assert not any("outside" in p or "out_link" in p for p in spy)


def test_browser_marks_refused_thumbnails(qtbot, browser, unsafe, spy):
    session, _ = unsafe
    browser.set_session(session)
    model = browser.model
    rows = {model.ref(r): r for r in range(model.rowCount())}
    for ref_row, word in ((0, "'..'"), (1, "absolute"), (2, "symlink")):
        index = model.index(rows[ImageRef("train", ref_row)])
        model.data(index, 1)  # DecorationRole
        assert word in model.data(index, UNREADABLE_ROLE)
        assert "refused" in model.data(index, 3)  # ToolTipRole
    browser.model.loader.wait_idle(10)
    assert not any("outside" in p or "out_link" in p for p in spy)


def test_augment_preview_refuses_unsafe_image(unsafe):
    from app.dataset.augment_panel import compute_preview

    session, _ = unsafe
    result = compute_preview(session, ImageRef("train", 0), "detection", [], True, 0, 1)
    assert "Refused" in result["error"] and "'..'" in result["error"]
