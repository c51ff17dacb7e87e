"""One category colour map for every view, and label text that contrasts with it."""

import pytest

from app.dataset.session import ImageRef
from app.widgets.colours import category_colour, category_rgb, luminance, text_colour, text_rgb


def _contrast(a, b) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_label_text_is_black_on_pale_and_white_on_dark():
    assert text_rgb((255, 255, 180)) == (0, 0, 0)  # pale yellow
    assert text_rgb((250, 190, 212)) == (0, 0, 0)  # pink
    assert text_rgb((0, 0, 117)) == (255, 255, 255)  # navy
    assert text_colour(category_colour(0)).name() in ("#000000", "#ffffff")


@pytest.mark.parametrize("label", range(40))
def test_every_category_label_is_readable(label):
    background = category_rgb(label)
    assert _contrast(background, text_rgb(background)) >= 4.5


def test_image_and_augment_draw_a_category_in_the_same_colour(qtbot, session):
    from app.dataset.augment_panel import compute_preview
    from app.dataset.viewer import ImageViewer

    viewer = ImageViewer()
    qtbot.addWidget(viewer)
    viewer._set_categories(session)
    index = session.index("train")
    row = next(r for r in range(index.num_images) if len(index.annotation_rows(r)) >= 2)
    result = compute_preview(session, ImageRef("train", row), "detection", [], True, 0, 1)
    assert "error" not in result, result.get("error")
    boxes = result["tiles"][0].boxes
    assert boxes
    for *_, name, colour in boxes:
        assert colour == viewer.category_colour_of(name).name()
        assert colour == category_colour(session.category_names().index(name)).name()
