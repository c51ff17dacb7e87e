"""The Image tab's state, without Qt: which image among which, what is shown, what is selected."""

import subprocess
import sys

import pytest

from app.dataset.session import ImageRef
from app.dataset.viewer_state import ViewerState, annotation_fields, category_name, fields_text
from engine.data.coco_index import SEG_POLYGON


def _recorder(state: ViewerState) -> list:
    seen: list = []
    state.visibility_changed.connect(lambda: seen.append("visibility"))
    state.selection_changed.connect(lambda old, new: seen.append(("selection", old, new)))
    state.position_changed.connect(lambda: seen.append("position"))
    return seen


def test_the_state_imports_no_qt():
    code = "import sys, app.dataset.viewer_state; print(any(m.startswith('PySide6') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_next_and_previous_walk_the_list_and_stop_at_its_ends(session):
    state = ViewerState()
    seen = _recorder(state)
    refs = [ImageRef("train", r) for r in range(3)]
    assert state.position_text() == "No image"
    state.set_refs(refs, refs[1])
    assert seen == ["position"] and state.position == 1
    assert state.can_go(-1) and state.can_go(+1)
    assert state.step(+1) == refs[2] and not state.can_go(+1)
    assert state.step(+1) is None and state.position == 2  # past the end: stays
    assert state.show(session, refs[0]) is True and state.position == 0
    name = session.index("train").file_names[0]
    assert state.position_text() == f"1 / 3   train / {name}"
    assert state.show(session, ImageRef("val", 0)) is False  # the same session
    assert state.position == 0 and state.position_text() == "1 / 3   val / val_0000.jpg"  # not among them: stays


def test_showing_an_image_clears_the_selection_and_notes_and_loads(session):
    state = ViewerState()
    state.show(session, ImageRef("train", 0))
    state.select(5)
    state.notes = ["mask not drawn"]
    state.loading = False
    state.show(session, ImageRef("train", 1))
    assert state.selected is None and state.notes == [] and state.loading


def test_layers_and_categories_decide_what_is_drawn():
    state = ViewerState()
    seen = _recorder(state)
    assert state.is_shown("polygon", "blob") and state.is_shown("label", "circle")
    state.set_layer_visible("masks", False)
    assert not state.is_shown("polygon", "blob") and not state.is_shown("mask", "blob")
    assert state.is_shown("box", "blob")
    state.set_category_visible("blob", False)
    assert not state.is_shown("box", "blob") and state.is_shown("box", "circle")
    assert not state.is_category_visible("blob") and state.is_category_visible("never seen")
    assert seen == ["visibility", "visibility"]
    with pytest.raises(ValueError, match="unknown layer 'keypoints'; use one of boxes, masks, labels"):
        state.set_layer_visible("keypoints", True)


def test_a_selection_says_what_it_replaced():
    state = ViewerState()
    seen = _recorder(state)
    state.select(7)
    state.select(9)
    state.select(None)
    assert seen == [("selection", None, 7), ("selection", 7, 9), ("selection", 9, None)]


def test_an_annotations_fields_and_their_text(session):
    index = session.index("train")
    row = next(r for r in range(len(index.ann_ids)) if index.ann_seg_kind[r] == SEG_POLYGON)
    fields = annotation_fields(index, row)
    assert fields["id"] == int(index.ann_ids[row]) and fields["category"] == category_name(index, row)
    assert fields["segmentation"].startswith("polygon (")
    text = fields_text(fields, selected=True)
    assert text.startswith(f"id: {fields['id']}  (selected)\ncategory: {fields['category']}")
    assert "x {:.1f}".format(fields["bbox"][0]) in text
    assert "(selected)" not in fields_text(fields, selected=False)


def test_the_image_lines_say_loading_notes_and_problems(session):
    state = ViewerState()
    ref = ImageRef("train", 0)
    state.show(session, ref)
    state.notes = ["The file is 300×50 but the JSON says 64×64"]
    lines = state.image_lines("a.jpg", 3)
    assert lines[0].startswith("a.jpg (id ") and lines[2] == "3 annotations — loading image…"
    assert lines[3] == state.notes[0]
    state.loading = False
    assert state.image_lines("a.jpg", 1)[2] == "1 annotation"
