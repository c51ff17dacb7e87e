"""Warnings for a train/validation split that cannot train well, naming the file and the items.

Each test writes a tiny COCO folder (a handful of 16x16 images) with one thing wrong and
checks the engine's split check, the data module a run trains with, and the CLI.
"""

from __future__ import annotations

import json

import pytest

from engine.cli import main
from engine.data.coco_index import CocoIndex
from engine.data.problems import DatasetError
from engine.data.split_check import MIN_TRAINING_IMAGES, check_dataset_split, check_run_data
from engine.tasks.classification.datamodule import ClassificationDataModule
from tests.conftest import TINY_CATEGORIES, tiny_coco_doc, tiny_coco_folder, tiny_images, write_json

CATEGORIES = TINY_CATEGORIES
_images, _doc, _write, coco_folder = tiny_images, tiny_coco_doc, write_json, tiny_coco_folder


def codes(problems) -> list[str]:
    return [p.code for p in problems]


def test_two_images_warn_naming_the_file(tmp_path):
    root = tmp_path / "two"
    _write(root / "annotations.json", _doc(_images(root / "images", ["a.png", "b.png"]), [1, 1]))
    problems = check_dataset_split(root)
    (few,) = [p for p in problems if p.code == "few_training_images"]
    assert few.severity == "warning" and few.file == str(root / "annotations.json")
    assert "only 1 training image (and 1 for validation)" in few.message
    assert str(MIN_TRAINING_IMAGES) in few.message
    # Two unused categories, each named, in the training file.
    unused = [p for p in problems if p.code == "category_without_examples"]
    assert [p.category_id for p in unused] == [2, 3]
    assert "'square'" in unused[0].message and "'triangle'" in unused[1].message


def test_validation_categories_never_seen_in_training(tmp_path):
    root = coco_folder(tmp_path / "ds", train=[1] * 12, val=[1, 2, 2, 3])
    problems = check_dataset_split(root)
    unseen = [p for p in problems if p.code == "unseen_validation_category"]
    val_file = str(root / "annotations" / "instances_val.json")
    assert [(p.category_id, p.file) for p in unseen] == [(2, val_file), (3, val_file)]
    assert "category 'square' (id 2) has 2 annotations in validation but has no training" in unseen[0].message
    assert "has no training annotation" in unseen[0].message
    assert "category_without_examples" not in codes(problems)  # seen in validation: reported once, above


def test_validation_category_the_training_file_does_not_define(tmp_path):
    root = coco_folder(tmp_path / "ds", train=[1] * 12, val=[1])
    val_path = root / "annotations" / "instances_val.json"
    doc = json.loads(val_path.read_text())
    doc["categories"].append({"id": 9, "name": "hexagon"})
    doc["annotations"][0]["category_id"] = 9
    _write(val_path, doc)
    (unseen,) = [p for p in check_dataset_split(root) if p.code == "unseen_validation_category"]
    assert "'hexagon' (id 9)" in unseen.message and "is not a category of" in unseen.message
    assert str(root / "annotations" / "instances_train.json") in unseen.message


def test_a_category_with_no_training_example(tmp_path):
    root = coco_folder(tmp_path / "ds", train=[1] * 6 + [2] * 6, val=[1, 2])
    (unused,) = check_dataset_split(root)
    assert unused.code == "category_without_examples" and unused.category_id == 3
    assert unused.file == str(root / "annotations" / "instances_train.json") and "'triangle'" in unused.message


def test_train_and_val_holding_the_same_images(tmp_path):
    # One image folder for both files (COCO layout, images/): the validation file lists four training images.
    root = tmp_path / "ds"
    names = [f"tile_{k:03d}.png" for k in range(12)]
    train = _doc(_images(root / "images", names), [1, 2, 3] * 4)
    _write(root / "annotations" / "instances_train.json", train)
    val_path = _write(root / "annotations" / "instances_val.json", _doc(train["images"][:4], [1, 2, 3, 1]))
    (overlap,) = [p for p in check_dataset_split(root) if p.code == "train_val_overlap"]
    assert overlap.file == str(val_path) and overlap.image_id == 1
    assert "all 4 validation images are also training images" in overlap.message
    assert "'tile_000.png', 'tile_001.png', 'tile_002.png' and 1 more" in overlap.message
    # The same split for both: said as such.
    (same,) = [p for p in check_dataset_split(root, val_split="train") if p.code == "train_val_overlap"]
    assert "training and validation are the same file" in same.message


def test_datamodule_warns_about_the_overlap_of_what_it_trains_on(tmp_path, capsys):
    root = tmp_path / "ds"
    names = [f"tile_{k:03d}.png" for k in range(12)]
    train = _doc(_images(root / "images", names), [1, 2, 3] * 4)
    _write(root / "annotations" / "instances_train.json", train)
    _write(root / "annotations" / "instances_val.json", _doc(train["images"][:3], [1, 2, 3]))
    data = ClassificationDataModule.from_folder(root, num_workers=0, image_size=16)
    data.setup("fit")
    assert codes(data.split_problems) == ["train_val_overlap"]
    assert "instances_val.json: warning: all 3 validation images are also training images" in capsys.readouterr().err


def test_empty_validation_split(tmp_path):
    root = coco_folder(tmp_path / "ds", train=[1, 2, 3] * 4, val=[])
    (empty,) = check_dataset_split(root)
    assert empty.code == "no_validation_images"
    assert empty.file == str(root / "annotations" / "instances_val.json")


def test_a_healthy_split_has_no_problem(tmp_path, sample_dataset):
    assert check_dataset_split(sample_dataset) == []
    assert check_dataset_split(coco_folder(tmp_path / "ds", train=[1, 2, 3] * 4, val=[1, 2, 3])) == []


def test_run_data_section_uses_the_runs_split_settings(sample_dataset):
    from engine.config import RunConfig

    config = RunConfig.from_dict({"task": {"name": "classification"}, "data": {"path": str(sample_dataset)}})
    assert check_run_data(config.data) == []
    same = config.with_overrides({"data.val_split": "train"})
    assert codes(check_run_data(same.data)) == ["train_val_overlap"]


# ---------------------------------------------------------------------- at train time
def test_datamodule_prints_the_warnings_before_training(tmp_path, capsys):
    root = coco_folder(tmp_path / "ds", train=[1] * 4, val=[1, 2])
    data = ClassificationDataModule.from_folder(root, num_workers=0, image_size=16)
    data.setup("fit")
    err = capsys.readouterr().err
    assert "instances_train.json: warning: only 4 training images" in err
    assert "instances_val.json: warning: category 'square' (id 2) has 1 annotation in validation" in err
    assert codes(data.split_problems) == [
        "few_training_images",
        "unseen_validation_category",
        "category_without_examples",
    ]
    assert set(codes(data.split_problems)) <= set(codes(data.problems))  # recorded with the run's data problems


def test_held_out_split_is_named_in_the_warning(tmp_path, capsys):
    root = tmp_path / "one"
    _write(root / "annotations.json", _doc(_images(root / "images", ["only.png"]), [1]))
    data = ClassificationDataModule.from_folder(root, num_workers=0, image_size=16)
    data.setup("fit")
    (empty,) = [p for p in data.split_problems if p.code == "no_validation_images"]
    assert f"the automatic 20% validation split (split_seed 0) of {root / 'annotations.json'}" in empty.message


def test_no_training_image_is_refused_naming_the_file(tmp_path):
    root = coco_folder(tmp_path / "ds", train=[], val=[1, 2])
    data = ClassificationDataModule.from_folder(root, num_workers=0, image_size=16)
    with pytest.raises(DatasetError, match="instances_train.json: cannot train on this split") as info:
        data.setup("fit")
    assert codes(info.value.problems) == ["no_training_images"]


def test_training_images_all_unusable_is_refused_and_says_why(tmp_path):
    root = coco_folder(tmp_path / "ds", train=[1, 2], val=[1, 2])
    for image in (root / "train").iterdir():
        image.unlink()  # the skip policy leaves both out
    data = ClassificationDataModule.from_folder(root, num_workers=0, image_size=16)
    with pytest.raises(DatasetError) as info:
        data.setup("fit")
    (problem,) = info.value.problems
    assert "2 left out as unusable" in problem.message and problem.file.endswith("instances_train.json")


def test_cli_train_refuses_an_empty_training_split(tmp_path, capsys):
    root = coco_folder(tmp_path / "ds", train=[], val=[1, 2])
    code = main(
        [
            "train",
            "--data",
            str(root),
            "--task",
            "classification",
            "--model",
            "resnet-tiny",
            "--epochs",
            "1",
            "--image-size",
            "32",
            "--num-workers",
            "0",
            "--workspace",
            str(tmp_path / "ws"),
            "--no-progress",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "instances_train.json: cannot train on this split" in err and "[no_training_images]" in err


def test_cli_train_prints_split_warnings_and_still_trains(tmp_path, capsys):
    root = coco_folder(tmp_path / "ds", train=[1, 2] * 2, val=[1, 2, 3])
    code = main(
        [
            "train",
            "--data",
            str(root),
            "--task",
            "classification",
            "--model",
            "resnet-tiny",
            "--epochs",
            "1",
            "--batch-size",
            "2",
            "--image-size",
            "32",
            "--num-workers",
            "0",
            "--workspace",
            str(tmp_path / "ws"),
            "--no-progress",
        ]
    )
    assert code == 0
    err = capsys.readouterr().err
    assert "instances_train.json: warning: only 4 training images" in err
    assert "category 'triangle' (id 3) has 1 annotation in validation" in err


def test_an_open_datasets_indexes_are_used_instead_of_reading_its_files_again(tmp_path, monkeypatch):
    from engine.config import RunConfig
    from engine.data import split_check
    from engine.data.folders import find_splits

    root = coco_folder(tmp_path / "set", [1, 2], [1, 2])
    folder = find_splits(root)
    indexes = {name: CocoIndex.load(split.annotation_file) for name, split in folder.splits.items()}
    data = RunConfig.from_dict({"task": {"name": "classification"}, "data": {"path": str(root)}}).data
    expected = codes(check_run_data(data))

    def no_reads(path):
        raise AssertionError(f"{path} was read again")

    monkeypatch.setattr(split_check.CocoIndex, "load", staticmethod(no_reads))
    assert codes(check_run_data(data, folder, indexes)) == expected
