"""Reading a results file of `lightbox predict` and matching it to the open dataset's images (no Qt)."""

from __future__ import annotations

import json
import shutil

import pytest

from app.dataset.predictions import (
    IMAGE_LIST_LAYOUT,
    PredictionsError,
    above,
    load_predictions,
    prepare_predictions,
)
from app.dataset.session import open_dataset


def _val_files(dataset):
    return sorted((dataset / "val").glob("*.jpg"))


def _write(path, doc):
    path.write_text(json.dumps(doc))
    return path


def test_export_results_are_grouped_per_image_named_and_filtered_by_score(sample_dataset, tmp_path):
    first, second = _val_files(sample_dataset)[:2]
    results = _write(
        tmp_path / "results.json",
        [
            {"image_id": 1, "file_name": str(first), "category_id": 2, "bbox": [1, 2, 30, 40], "score": 0.9},
            {"image_id": 1, "file_name": str(first), "category_id": 1, "bbox": [5, 5, 10, 10], "score": 0.2},
            {"image_id": 2, "file_name": str(second), "category_id": 3, "bbox": [0, 0, 8, 8], "score": 0.6},
        ],
    )
    found = load_predictions(results, categories={1: "circle", 2: "square", 3: "triangle"})
    assert found.task == "detection" and found.count == 3
    mine = found.by_file[first]
    assert [(p.name, p.score, p.bbox) for p in mine] == [
        ("square", 0.9, (1, 2, 30, 40)),
        ("circle", 0.2, (5, 5, 10, 10)),
    ]
    assert [p.name for p in above(mine, 0.5)] == ["square"]


def test_a_run_document_of_classes_is_read_by_label_name(tmp_path, sample_dataset):
    folder = sample_dataset / "val"
    files = _val_files(sample_dataset)
    doc = {
        "run_id": "abc",
        "task": "classification",
        "predictions": [{"image_id": 1, "label": 0, "label_name": "circle", "score": 0.7, "file_name": files[0].name}],
    }
    found = load_predictions(_write(tmp_path / "p.json", doc), image_root=folder, images=files)
    assert [(p.name, p.score, p.bbox) for p in found.by_file[files[0]]] == [("circle", 0.7, None)]
    assert found.by_file[files[1]] == []  # predicted, nothing found: still an image to look at


def test_predictions_on_the_datasets_own_images_are_drawn_over_it(sample_dataset, tmp_path):
    session = open_dataset(sample_dataset, check_files=False)
    files = _val_files(sample_dataset)
    results = _write(
        tmp_path / "r.json",
        [{"image_id": 3, "file_name": str(files[2]), "category_id": 1, "bbox": [0, 0, 4, 4], "score": 0.5}],
    )
    prepared = prepare_predictions(results, session, images=files)
    assert prepared.on_dataset and prepared.session is session
    assert [session.index(r.split).file_names[r.row] for r in prepared.refs] == [f.name for f in files]
    assert [p.name for p in prepared.by_ref[prepared.refs[2]]] == ["circle"]  # the dataset's name for id 1
    assert prepared.note == ""


def test_images_outside_the_dataset_open_as_a_plain_image_list_and_say_so(sample_dataset, tmp_path):
    session = open_dataset(sample_dataset, check_files=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    inside = _val_files(sample_dataset)[0]
    outside = shutil.copy(_val_files(sample_dataset)[1], elsewhere / "new.jpg")
    results = _write(
        tmp_path / "r.json",
        [{"image_id": 2, "file_name": str(outside), "category_id": 7, "bbox": [1, 1, 5, 5], "score": 0.8}],
    )
    prepared = prepare_predictions(results, session, categories={7: "kite"}, images=[inside, outside])
    assert not prepared.on_dataset
    listed = prepared.session
    assert listed.folder.layout == IMAGE_LIST_LAYOUT and listed.num_images == 2 and listed.num_annotations == 0
    assert listed.image_path(prepared.refs[1]) == outside
    assert [p.name for p in prepared.by_ref[prepared.refs[1]]] == ["kite"]
    assert "1 of 2 predicted images are not in" in prepared.note and str(outside) in prepared.note


def test_segmentation_results_keep_their_rle(tmp_path, sample_dataset):
    file = _val_files(sample_dataset)[0]
    rle = {"size": [120, 160], "counts": "PQ81"}
    found = load_predictions(
        _write(
            tmp_path / "s.json",
            [{"image_id": 1, "file_name": str(file), "category_id": 1, "segmentation": rle, "score": 0.4}],
        ),
        categories={1: "circle"},
    )
    assert found.task == "segmentation" and found.by_file[file][0].rle == rle


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("not json", "not a JSON results file"),
        (json.dumps({"a": 1}), "not a results file of 'lightbox predict'"),
        (json.dumps({"task": "multitask", "predictions": []}), "a 'multitask' model cannot be drawn"),
        (json.dumps([{"file_name": "/x.jpg", "category_id": 1, "bbox": [1, 2], "score": 0.5}]), "result 1: 'bbox'"),
        (json.dumps([{"file_name": "/x.jpg", "category_id": 1, "bbox": [1, 2, 3, 4]}]), "result 1 has no numeric"),
        (json.dumps([{"category_id": 1, "score": 0.5}]), "result 1 names no file_name"),
        (json.dumps([]), "no predicted image"),
    ],
)
def test_a_bad_results_file_is_refused_naming_the_file_and_the_record(tmp_path, content, said):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(PredictionsError) as caught:
        prepare_predictions(path, None)
    assert str(path) in str(caught.value) and said in str(caught.value)


def test_images_the_predictor_skipped_are_left_out_of_the_list(sample_dataset, tmp_path):
    good = shutil.copy(_val_files(sample_dataset)[0], tmp_path / "good.jpg")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    results = _write(
        tmp_path / "r.json",
        [{"image_id": 2, "file_name": str(good), "category_id": 1, "bbox": [1, 1, 5, 5], "score": 0.8}],
    )
    prepared = prepare_predictions(results, None, images=[broken, good], unreadable=[broken])
    assert prepared.session.num_images == 1 and prepared.session.image_path(prepared.refs[0]) == good


def test_the_viewer_state_shows_a_prediction_by_score_toggle_and_session(sample_dataset):
    from app.dataset.predictions import Prediction
    from app.dataset.session import ImageRef
    from app.dataset.viewer_state import ViewerState

    session = open_dataset(sample_dataset, check_files=False)
    other = open_dataset(sample_dataset, check_files=False)
    state, ref = ViewerState(), ImageRef("val", 0)
    found = [Prediction("circle", 0.7, 1, (0, 0, 4, 4)), Prediction("square", 0.2, 2, (1, 1, 4, 4))]
    state.set_predictions(session, {ref: found}, "r.json")
    state.show(session, ref)
    assert state.predictions_of(ref) == found
    assert state.is_prediction_shown("pred_box", "circle", 0.7) and not state.is_prediction_shown("pred_box", "x", 0.2)
    assert state.predictions_text() == "1 of 2 predictions with score ≥ 0.50"
    state.set_min_score(0.1)
    state.set_layer_visible("labels", False)
    assert state.is_prediction_shown("pred_box", "square", 0.2) and not state.is_prediction_shown(
        "pred_label", "square", 0.2
    )
    state.set_truth_visible(False)
    assert not state.is_shown("box", "circle") and state.is_prediction_shown("pred_box", "circle", 0.7)
    state.set_predictions_visible(False)
    assert not state.is_prediction_shown("pred_box", "circle", 0.7) and state.predictions_text().endswith("(hidden)")
    state.show(other, ref)  # the same row of another dataset is not the predicted image
    assert state.predictions_of(ref) == []
