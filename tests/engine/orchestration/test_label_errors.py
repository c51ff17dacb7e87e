"""`lightbox label-errors`: out-of-fold runs find planted label errors, and ids map back to the COCO file."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from engine.cli import main
from engine.config import RunConfig
from engine.data.coco_index import CocoIndex
from engine.orchestration.label_errors import FOLDS_FOLDER, assign_folds, find_label_errors, score_run
from engine.tracking.tags import FOLD_TAG, LABEL_ERRORS_FILE_TAG, LABEL_ERRORS_TAG, PARENT_RUN_TAG, SEARCH_TAG

FLIPPED = 3


def _config(data, workspace, task="classification", model="resnet-tiny", epochs=4):
    return RunConfig.from_dict({"task": {"name": task}}).with_overrides(
        {
            "data.path": str(data),
            "model.checkpoint": model,
            "optim.epochs": epochs,
            "optim.batch_size": 8,
            "optim.lr": 0.003,
            "data.image_size": 32,
            "data.num_workers": 0,
            "workspace": str(workspace),
        }
    )


def _flip_labels(folder, count):
    """Give ``count`` training images' annotations another class; returns {annotation id: true category}."""
    path = folder / "annotations" / "instances_train.json"
    doc = json.loads(path.read_text())
    categories = [c["id"] for c in doc["categories"]]
    by_image: dict[int, list[dict]] = {}
    for ann in doc["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    flipped = {}
    for image in doc["images"][5 : 5 + 7 * count : 7]:
        anns = [a for a in by_image[image["id"]] if not a.get("iscrowd")]
        true = max(anns, key=lambda a: a["area"])["category_id"]
        wrong = categories[(categories.index(true) + 1) % len(categories)]
        for ann in anns:  # every object of the image: the image's class changes whatever the label rule
            if ann["category_id"] == true:
                ann["category_id"] = wrong
                flipped[ann["id"]] = true
    path.write_text(json.dumps(doc))
    return flipped


@pytest.fixture(scope="module")
def found(sample_dataset, tmp_path_factory):
    data = tmp_path_factory.mktemp("flipped") / "shapes"
    shutil.copytree(sample_dataset, data)
    flipped = _flip_labels(data, FLIPPED)
    workspace = tmp_path_factory.mktemp("ws")
    out = workspace / "errors.json"
    result = find_label_errors(_config(data, workspace), folds=2, out=out)
    return data, workspace, flipped, result


@pytest.mark.slow
def test_flipped_labels_rank_at_the_top_with_their_true_class_suggested(found):
    _, _, flipped, result = found
    document = json.loads(result.errors_file.read_text())
    entries = document["entries"]
    top = entries[: FLIPPED + 2]
    found_ids = {e["annotation_id"] for e in top} & set(flipped)
    assert len(found_ids) >= FLIPPED - 1, [(e["annotation_id"], e["score"]) for e in entries[:8]]
    for entry in entries:
        if entry["annotation_id"] in found_ids:
            assert entry["kind"] == "wrong_label"
            assert entry["suggested"]["category_id"] == flipped[entry["annotation_id"]]
    assert [e["score"] for e in entries] == sorted(e["score"] for e in entries)


@pytest.mark.slow
def test_every_entry_maps_back_to_the_coco_file_exactly(found):
    data, _, _, result = found
    index = CocoIndex.load(data / "annotations" / "instances_train.json")
    doc = json.loads((data / "annotations" / "instances_train.json").read_text())
    file_of = {im["id"]: im["file_name"] for im in doc["images"]}
    ann_of = {a["id"]: a for a in doc["annotations"]}
    categories = {c["id"]: c["name"] for c in doc["categories"]}
    document = json.loads(result.errors_file.read_text())
    assert document["data"]["num_images"] == index.num_images  # every image of the split, scored once
    assert len({e["image_id"] for e in document["entries"]}) == index.num_images
    for entry in document["entries"]:
        assert file_of[entry["image_id"]] == entry["file_name"]
        ann = ann_of[entry["annotation_id"]]
        assert ann["image_id"] == entry["image_id"]
        assert ann["category_id"] == entry["given"]["category_id"]
        assert categories[ann["category_id"]] == entry["given"]["name"]


@pytest.mark.slow
def test_no_image_is_scored_by_a_model_that_trained_on_it(found):
    from mlflow import MlflowClient

    _, workspace, _, result = found
    client = MlflowClient(f"sqlite:///{workspace / 'mlflow.db'}")
    parent = client.get_run(result.parent_run_id)
    assert parent.data.tags[SEARCH_TAG] == "true" and parent.data.tags[LABEL_ERRORS_TAG] == "true"
    assert parent.data.tags[LABEL_ERRORS_FILE_TAG] == str(result.errors_file.resolve())
    folds_seen = set()
    for run_id in result.fold_run_ids:
        tags = client.get_run(run_id).data.tags
        assert tags[PARENT_RUN_TAG] == result.parent_run_id
        k = int(tags[FOLD_TAG])
        folds_seen.add(k)
        # The run's own configuration names the data it trained on: the other folds only.
        config = RunConfig.load(workspace / "runs" / run_id / "run.yaml")
        fold_dir = workspace / FOLDS_FOLDER / result.parent_run_id / f"fold-{k}"
        assert config.data.path == str(fold_dir) and config.data.val_split == "val"
        trained = set(CocoIndex.load(fold_dir / "annotations" / "instances_train.json").image_ids.tolist())
        held = set(CocoIndex.load(fold_dir / "annotations" / "instances_val.json").image_ids.tolist())
        assert not trained & held
        assert held == {i for i, f in result.fold_of_image.items() if f == k}
    assert folds_seen == {0, 1}
    # Each image was scored by the run that held it out, once.
    scored = [e["image_id"] for e in result.entries]
    assert len(scored) == len(set(scored)) == len(result.fold_of_image)


@pytest.mark.slow
def test_a_finished_run_scores_the_images_it_did_not_train_on(found, tmp_path, capsys):
    _, workspace, _, result = found
    run_id = result.fold_run_ids[0]
    scored = score_run(run_id, out=tmp_path / "run_errors.json", workspace=str(workspace))
    held = {i for i, f in result.fold_of_image.items() if f == 0}
    assert {e["image_id"] for e in scored.entries} == held
    document = json.loads((tmp_path / "run_errors.json").read_text())
    assert document["source"]["run_id"] == run_id and document["data"]["split"] == "val"
    # The same from the command line, which says where the file is and how many suspects it holds.
    out = tmp_path / "cli_errors.json"
    assert main(["label-errors", "--run", run_id, "--workspace", str(workspace), "--out", str(out)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.endswith(f"among {len(held)} entries, written to {out}")
    assert json.loads(out.read_text())["entries"] == document["entries"]


def test_folds_are_stratified_balanced_and_stable():
    ids = np.arange(100, 161)
    strata = np.array([0] * 30 + [1] * 20 + [2] * 11)
    folds = assign_folds(ids, strata, 4, seed=0)
    assert sorted(np.bincount(folds).tolist()) == [15, 15, 15, 16]
    for stratum in range(3):
        counts = np.bincount(folds[strata == stratum], minlength=4)
        assert counts.max() - counts.min() <= 1
    shuffled = np.random.default_rng(1).permutation(len(ids))
    again = assign_folds(ids[shuffled], strata[shuffled], 4, seed=0)
    assert (again == folds[shuffled]).all()  # the file's order does not matter


def _cli(capsys, *argv):
    code = main(["label-errors", *argv])
    return code, capsys.readouterr().err.strip().splitlines()[-1]


def test_bad_folds_are_refused_naming_the_flag(sample_dataset, tmp_path, capsys):
    common = ["--data", str(sample_dataset), "--task", "classification", "--workspace", str(tmp_path)]
    code, line = _cli(capsys, *common, "--folds", "1")
    assert code == 2 and "--folds 1" in line and "at least 2" in line
    code, line = _cli(capsys, *common, "--folds", "500")
    assert code == 2 and "--folds 500" in line and "instances_train.json" in line and "48 images" in line
    assert not (tmp_path / "runs").exists()


def test_a_task_without_label_scores_is_refused(sample_dataset, tmp_path):
    from engine.orchestration.errors import TrainingError

    config = RunConfig.from_dict({"task": {"name": "multitask", "tasks": ["classification", "detection"]}})
    with pytest.raises(TrainingError, match="task.name: label errors are found for .* not multitask"):
        find_label_errors(config.with_overrides({"data.path": str(sample_dataset), "workspace": str(tmp_path)}))
    assert not (tmp_path / "runs").exists()


def test_a_run_without_checkpoint_is_refused_naming_it(sample_dataset, tmp_path, capsys):
    run_dir = tmp_path / "runs" / "abc123"
    run_dir.mkdir(parents=True)
    _config(sample_dataset, tmp_path).save(run_dir / "run.yaml")
    code, line = _cli(capsys, "--run", "abc123", "--workspace", str(tmp_path), "--out", str(tmp_path / "e.json"))
    assert code == 2 and "abc123" in line and "no checkpoint" in line
    assert not (tmp_path / "e.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("task", "model", "kinds"),
    [
        ("detection", "detr-tiny", {"missing_box", "spurious_box", "wrong_class", "poorly_placed_box"}),
        ("segmentation", "segformer-tiny", {"wrong_region_class", "spurious_region"}),
    ],
)
def test_every_object_of_the_split_is_listed_once_with_its_coco_ids(sample_dataset, tmp_path, task, model, kinds):
    config = _config(sample_dataset, tmp_path, task, model, epochs=1).with_overrides({"data.image_size": 64})
    result = find_label_errors(config, folds=2, out=tmp_path / "errors.json")
    doc = json.loads((sample_dataset / "annotations" / "instances_train.json").read_text())
    file_of = {im["id"]: im["file_name"] for im in doc["images"]}
    objects = {a["id"]: a for a in doc["annotations"] if not a.get("iscrowd")}
    entries = json.loads(result.errors_file.read_text())["entries"]
    listed = [e["annotation_id"] for e in entries if e["annotation_id"] is not None]
    assert sorted(listed) == sorted(objects)  # every object once; crowd regions are not scored
    for entry in entries:
        assert entry["kind"] in kinds and file_of[entry["image_id"]] == entry["file_name"]
        if entry["annotation_id"] is None:  # a suspected missing box: where, and what it would be
            assert entry["kind"] == "missing_box" and len(entry["suggested"]["bbox"]) == 4
        else:
            ann = objects[entry["annotation_id"]]
            assert (ann["image_id"], ann["category_id"]) == (entry["image_id"], entry["given"]["category_id"])


def test_a_run_with_a_configuration_of_its_own_is_refused(sample_dataset, tmp_path, capsys):
    code, line = _cli(capsys, "--run", "abc123", "--data", str(sample_dataset), "--workspace", str(tmp_path))
    assert code == 2 and "--run scores a finished run with its own configuration" in line and "drop --data" in line
