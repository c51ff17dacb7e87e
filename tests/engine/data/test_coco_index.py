"""The COCO index against pycocotools, plus splits and category remapping."""

import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO

from engine.data.coco_index import SEG_POLYGON, SEG_RLE, CocoIndex
from engine.data.problems import CocoFormatError
from engine.data.splits import primary_labels, stratified_split


@pytest.fixture(scope="module")
def train_file(sample_dataset):
    return sample_dataset / "annotations" / "instances_train.json"


def _pycoco(path):
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def test_index_agrees_with_pycocotools(train_file):
    index = CocoIndex.load(train_file)
    ref = _pycoco(train_file)
    assert index.num_images == len(ref.imgs)
    assert index.num_annotations == len(ref.anns)
    assert index.category_ids.tolist() == sorted(ref.cats)
    for row, image_id in enumerate(index.image_ids.tolist()):
        ref_anns = ref.imgToAnns[image_id]
        rows = index.annotation_rows(row)
        assert sorted(index.ann_ids[list(rows)].tolist()) == sorted(a["id"] for a in ref_anns)
        for r in rows:
            ann = ref.anns[int(index.ann_ids[r])]
            assert index.ann_bbox[r].tolist() == pytest.approx(ann["bbox"])
            assert index.ann_area[r] == pytest.approx(ann["area"])
            assert bool(index.ann_iscrowd[r]) == bool(ann["iscrowd"])
            assert index.segmentation(r) == ann["segmentation"]
            assert index.category_id_of(int(index.ann_label[r])) == ann["category_id"]


def test_category_ids_remap_to_contiguous_labels_and_back(train_file):
    index = CocoIndex.load(train_file)
    # The sample skips id 4 on purpose.
    assert index.category_ids.tolist() == [1, 2, 3, 5]
    assert [index.label_of(c) for c in (1, 2, 3, 5)] == [0, 1, 2, 3]
    assert index.category_id_of(3) == 5
    with pytest.raises(KeyError, match="unknown category id 4"):
        index.label_of(4)


def test_class_counts_match_pycocotools(train_file):
    index = CocoIndex.load(train_file)
    ref = _pycoco(train_file)
    for cat_id, name in zip(index.category_ids.tolist(), index.category_names):
        assert index.class_counts()[name] == len(ref.getAnnIds(catIds=[cat_id]))
        assert index.images_per_class()[name] == len(ref.getImgIds(catIds=[cat_id]))


def test_segmentation_kinds_are_recognised(train_file):
    index = CocoIndex.load(train_file)
    kinds = set(index.ann_seg_kind.tolist())
    assert {SEG_POLYGON, SEG_RLE} <= kinds
    poly_row = int(np.flatnonzero(index.ann_seg_kind == SEG_POLYGON)[0])
    polys = index.polygons(poly_row)
    assert polys and polys[0].shape[1] == 2 and len(polys[0]) >= 3


def test_subset_keeps_annotations_with_their_images(train_file):
    index = CocoIndex.load(train_file)
    rows = [5, 2, 9]
    sub = index.subset(rows)
    assert sub.image_ids.tolist() == index.image_ids[rows].tolist()
    for new_row, old_row in enumerate(rows):
        old = index.ann_ids[list(index.annotation_rows(old_row))].tolist()
        new = sub.ann_ids[list(sub.annotation_rows(new_row))].tolist()
        assert old == new
    assert sub.category_ids.tolist() == index.category_ids.tolist()


def test_round_trip_through_to_coco_dict(train_file, tmp_path):
    index = CocoIndex.load(train_file)
    out = tmp_path / "copy.json"
    index.save(out)
    again = CocoIndex.load(out)
    assert again.ann_ids.tolist() == index.ann_ids.tolist()
    assert np.array_equal(again.ann_bbox, index.ann_bbox)
    assert [again.segmentation(r) for r in range(again.num_annotations)] == [
        index.segmentation(r) for r in range(index.num_annotations)
    ]


def test_unknown_references_are_kept_but_flagged():
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
        "categories": [{"id": 7, "name": "x"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 7, "bbox": [0, 0, 2, 2]},
            {"id": 2, "image_id": 99, "category_id": 7, "bbox": [0, 0, 2, 2]},
            {"id": 3, "image_id": 1, "category_id": 8, "bbox": [0, 0, 2, 2]},
        ],
    }
    index = CocoIndex.from_dict(doc)
    assert index.ann_ids.tolist() == [1, 3, 2]  # sorted by image, unknown image last
    assert index.ann_image.tolist() == [0, 0, -1]
    assert index.ann_label.tolist() == [0, -1, 0]
    assert index.annotation_rows(0) == range(0, 2)


def test_tolerant_load_reports_every_bad_item_and_keeps_the_rest():
    doc = {
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 10, "height": 10},
            {"id": "2", "file_name": "b.jpg", "width": 10},
            {"id": 3, "file_name": "c.jpg", "width": 10, "height": 10},
        ],
        "categories": [{"id": 1, "name": "x"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": "0 0 1 1"},
            {"id": 2, "image_id": 3, "category_id": 1, "bbox": [0, 0, 1, 1]},
        ],
    }
    index = CocoIndex.from_dict(doc, "bad.json")
    codes = sorted(p.code for p in index.problems)
    assert codes == ["bad_type", "bad_type", "missing_key"]
    assert any("images[1]" in p.message and "'height'" in p.message for p in index.problems)
    assert all(p.file == "bad.json" for p in index.problems)
    assert index.image_ids.tolist() == [1, 3]
    assert index.ann_ids.tolist() == [2]


def test_syntax_error_names_line_and_column(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "images": [],\n  "categories": [}\n')
    with pytest.raises(CocoFormatError) as info:
        CocoIndex.load(path)
    (problem,) = info.value.problems
    assert problem.code == "json_syntax"
    assert (problem.line, problem.column) == (3, 18)
    assert str(path) in str(info.value)


def test_bom_and_missing_annotations_key_are_accepted():
    data = b'\xef\xbb\xbf{"images": [{"id": 1, "file_name": "a.jpg", "width": 4, "height": 4}], "categories": []}'
    index = CocoIndex.from_bytes(data)
    assert index.num_images == 1 and index.num_annotations == 0


def test_stratified_split_is_deterministic_and_stratified(train_file):
    index = CocoIndex.load(train_file)
    train_a, val_a = stratified_split(index, 0.25, seed=3)
    train_b, val_b = stratified_split(index, 0.25, seed=3)
    assert val_a.tolist() == val_b.tolist() and train_a.tolist() == train_b.tolist()
    assert not set(train_a) & set(val_a)
    assert len(train_a) + len(val_a) == index.num_images
    labels = primary_labels(index)
    for label in range(index.num_categories):
        total = int((labels == label).sum())
        in_val = int((labels[val_a] == label).sum())
        assert abs(in_val - total * 0.25) <= 1
    _, val_other = stratified_split(index, 0.25, seed=4)
    assert val_other.tolist() != val_a.tolist()


def test_split_does_not_depend_on_file_order(train_file):
    index = CocoIndex.load(train_file)
    shuffled = index.subset(np.random.default_rng(0).permutation(index.num_images))
    _, val_a = stratified_split(index, 0.3, seed=1)
    _, val_b = stratified_split(shuffled, 0.3, seed=1)
    assert sorted(index.image_ids[val_a].tolist()) == sorted(shuffled.image_ids[val_b].tolist())


def test_label_rules():
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}],
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 50, 50], "area": 2500},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [0, 0, 10, 10], "area": 100},
            {"id": 3, "image_id": 1, "category_id": 2, "bbox": [0, 0, 10, 10], "area": 100},
            {"id": 4, "image_id": 1, "category_id": 1, "bbox": [0, 0, 90, 90], "area": 8100, "iscrowd": 1},
        ],
    }
    index = CocoIndex.from_dict(doc)
    assert primary_labels(index, "largest").tolist() == [0]
    assert primary_labels(index, "majority").tolist() == [1]
