"""Task datasets and data modules on the generated sample dataset."""

import json

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from engine.data.coco_index import CocoIndex
from engine.data.problems import DatasetError
from engine.tasks.classification.datamodule import ClassificationDataModule, ClassificationDataset
from engine.tasks.common.collate import normalize_batch
from engine.tasks.detection.datamodule import DetectionDataModule, DetectionDataset
from engine.tasks.segmentation.datamodule import SegmentationDataModule, SegmentationDataset


def _files(root):
    return dict(
        train_image_dir=root / "train",
        train_annotation_file=root / "annotations" / "instances_train.json",
        val_image_dir=root / "val",
        val_annotation_file=root / "annotations" / "instances_val.json",
    )


def test_classification_datamodule_with_the_seed_arguments(sample_dataset):
    data = ClassificationDataModule(**_files(sample_dataset), batch_size=8, num_workers=0)
    data.setup("fit")
    assert data.num_labels == 4
    assert data.id2label == {0: "circle", 1: "square", 2: "triangle", 3: "blob"}
    batch = next(iter(data.train_dataloader()))
    assert batch["pixel_values"].shape == (8, 3, 224, 224)
    assert batch["pixel_values"].dtype == torch.float32
    assert batch["labels"].dtype == torch.long and batch["labels"].max() < 4
    val = next(iter(data.val_dataloader()))
    assert val["pixel_values"].shape[-2:] == (224, 224)


def test_classification_label_is_the_largest_annotation(sample_dataset):
    ann_file = sample_dataset / "annotations" / "instances_val.json"
    ds = ClassificationDataset(sample_dataset / "val", ann_file, train=False)
    doc = json.loads(ann_file.read_text())
    cat_label = {c["id"]: k for k, c in enumerate(sorted(doc["categories"], key=lambda c: c["id"]))}
    for i in range(len(ds)):
        image_id = ds[i]["image_id"]
        anns = [a for a in doc["annotations"] if a["image_id"] == image_id and not a["iscrowd"]]
        largest = max(anns, key=lambda a: a["area"])
        assert int(ds[i]["labels"]) == cat_label[largest["category_id"]]


def test_from_folder_uses_the_validation_file(sample_dataset):
    data = ClassificationDataModule.from_folder(sample_dataset, batch_size=4, num_workers=0)
    data.setup()
    assert len(data.train_dataset) == 48 and len(data.val_dataset) == 16


def test_single_split_gets_a_stratified_validation_split(sample_dataset, tmp_path):
    root = tmp_path / "plain"
    (root / "images").mkdir(parents=True)
    for p in (sample_dataset / "train").iterdir():
        (root / "images" / p.name).write_bytes(p.read_bytes())
    (root / "annotations.json").write_bytes((sample_dataset / "annotations" / "instances_train.json").read_bytes())
    data = ClassificationDataModule.from_folder(root, val_fraction=0.25, split_seed=1, num_workers=0)
    data.setup()
    train_ids = {data.train_dataset[i]["image_id"] for i in range(len(data.train_dataset))}
    val_ids = {data.val_dataset[i]["image_id"] for i in range(len(data.val_dataset))}
    assert len(val_ids) == 12 and len(train_ids) == 36 and not train_ids & val_ids
    again = ClassificationDataModule.from_folder(root, val_fraction=0.25, split_seed=1, num_workers=0)
    again.setup()
    assert {again.val_dataset[i]["image_id"] for i in range(len(again.val_dataset))} == val_ids


def test_augmentation_is_seeded_per_sample_and_epoch(sample_dataset):
    ds = ClassificationDataset(
        sample_dataset / "train", sample_dataset / "annotations" / "instances_train.json", seed=7
    )
    n = len(ds)
    a, b = ds[3]["pixel_values"], ds[3]["pixel_values"]
    assert torch.equal(a, b)
    assert not torch.equal(ds[3]["pixel_values"], ds[n + 3]["pixel_values"])  # next epoch differs
    assert np.array_equal(ds.augmented(3, epoch=1)["image"], ds[n + 3]["pixel_values"].permute(1, 2, 0).numpy())


def test_batches_do_not_depend_on_the_number_of_workers(sample_dataset):
    def epochs(workers):
        data = ClassificationDataModule(
            **_files(sample_dataset), batch_size=16, num_workers=workers, seed=3, persistent_workers=False
        )
        loader = data.train_dataloader()
        out = []
        for epoch in range(2):
            loader.batch_sampler.sampler.set_epoch(epoch)  # where Lightning sets it too (resumable loader)
            out += [b["pixel_values"] for b in loader]
        return out

    serial, parallel = epochs(0), epochs(2)
    assert len(serial) == len(parallel) == 6
    assert all(torch.equal(x, y) for x, y in zip(serial, parallel))
    assert not torch.equal(serial[0], serial[3])


def test_normalisation_matches_the_formula():
    x = torch.randint(0, 256, (2, 3, 5, 7), dtype=torch.uint8)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    expected = (x.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(normalize_batch(x, mean, std), expected, atol=1e-5)


def test_detection_targets_are_detr_ready(sample_dataset):
    size = 256
    ann_file = sample_dataset / "annotations" / "instances_val.json"
    ds = DetectionDataset(sample_dataset / "val", ann_file, train=False, image_size=size)
    index = CocoIndex.load(ann_file)
    for i in range(4):
        sample = ds[i]
        target = sample["labels"]
        row = int(index.image_rows([sample["image_id"]])[0])
        assert sample["pixel_values"].shape == (3, size, size)
        rows = [r for r in index.annotation_rows(row) if not index.ann_iscrowd[r]]
        assert len(target["boxes"]) == len(rows)  # crowds left out
        # Val preset: longest side to `size`, padded at the bottom/right.
        scale = size / max(index.image_width[row], index.image_height[row])
        for k, r in enumerate(rows):
            x, y, w, h = index.ann_bbox[r] * scale
            expected = torch.tensor([(x + w / 2) / size, (y + h / 2) / size, w / size, h / size])
            assert torch.allclose(target["boxes"][k], expected.float(), atol=2e-3)
            assert int(target["class_labels"][k]) == int(index.ann_label[r])
        assert target["orig_size"].tolist() == [int(index.image_height[row]), int(index.image_width[row])]


def test_detection_batch_has_pixel_mask_and_list_of_targets(sample_dataset):
    data = DetectionDataModule(**_files(sample_dataset), batch_size=4, num_workers=0, image_size=128)
    batch = next(iter(data.train_dataloader()))
    assert batch["pixel_values"].shape == (4, 3, 128, 128)
    assert batch["pixel_mask"].shape == (4, 128, 128)
    assert isinstance(batch["labels"], list) and len(batch["labels"]) == 4
    for t in batch["labels"]:
        assert t["boxes"].shape[1] == 4
        assert ((t["boxes"] >= 0) & (t["boxes"] <= 1)).all()


def test_segmentation_mask_matches_pycocotools(sample_dataset):
    ann_file = sample_dataset / "annotations" / "instances_train.json"
    index = CocoIndex.load(ann_file)
    ds = SegmentationDataset(sample_dataset / "train", ann_file, train=False, transforms=[])
    doc = json.loads(ann_file.read_text())
    crowd_images = {a["image_id"] for a in doc["annotations"] if a["iscrowd"]}
    checked_crowd = False
    for i in range(len(ds)):
        sample = ds[i]
        mask = sample["labels"].numpy()
        h, w = mask.shape
        anns = [a for a in doc["annotations"] if a["image_id"] == sample["image_id"]]
        for a in sorted((a for a in anns if not a["iscrowd"]), key=lambda a: -a["area"]):
            seg = a["segmentation"]
            rle = (
                mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
                if isinstance(seg, list)
                else {"size": seg["size"], "counts": seg["counts"].encode()}
            )
            m = mask_utils.decode(rle).astype(bool)
            # The smallest object is painted last, so at least its pixels carry its class.
            assert (mask[m] == index.label_of(a["category_id"]) + 1).mean() > 0.5
        if sample["image_id"] in crowd_images:
            crowd = next(a for a in anns if a["iscrowd"])
            m = mask_utils.decode(mask_utils.frPyObjects(crowd["segmentation"], h, w)).astype(bool)
            assert (mask[m] == 255).all()
            checked_crowd = True
        assert set(np.unique(mask)) <= {0, 1, 2, 3, 4, 255}
    assert checked_crowd


def test_segmentation_batch_pads_labels_with_ignore(sample_dataset):
    data = SegmentationDataModule(**_files(sample_dataset), batch_size=2, num_workers=0, image_size=96)
    batch = next(iter(data.val_dataloader()))
    assert batch["labels"].shape == (2, 96, 96) and batch["labels"].dtype == torch.long
    assert data.num_labels == 5


def test_skip_policy_drops_a_missing_image_and_refuse_stops(sample_copy):
    (sample_copy / "train" / "train_0000.jpg").unlink()
    files = _files(sample_copy)
    data = ClassificationDataModule(**files, num_workers=0)
    data.setup()
    assert len(data.train_dataset) == 47
    assert [p.code for p in data.problems] == ["missing_file"]
    with pytest.raises(DatasetError, match="train_0000.jpg"):
        ClassificationDataModule(**files, num_workers=0, on_problem="refuse").setup()


def test_training_dataset_never_opens_a_file_outside_its_image_folder(tmp_path):
    from PIL import Image

    from engine.data.paths import UnsafeFileName

    images = tmp_path / "ds" / "images"
    images.mkdir(parents=True)
    outside = tmp_path / "secret.jpg"
    Image.new("RGB", (8, 8)).save(outside)
    (images / "a.jpg").symlink_to(outside)  # a link the JSON-only check cannot see
    coco = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 8, "height": 8}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 4, 4], "area": 16}],
        "categories": [{"id": 1, "name": "a"}],
    }
    ann = tmp_path / "ds" / "annotations.json"
    ann.write_text(json.dumps(coco))
    data = ClassificationDataset(images, ann, check_files=False)
    assert len(data) == 1
    with pytest.raises(UnsafeFileName, match="outside the dataset"):
        data.load(0)


@pytest.mark.parametrize("batch_size, sizes", [(20, [20, 20, 8]), (47, [47]), (48, [48]), (64, [48])])
def test_every_training_image_is_used_but_a_lone_last_one(sample_dataset, batch_size, sizes):
    """48 training images: a partial last batch is kept (dropping it cost small sets a third of
    their steps); only a last batch of one image is dropped, since batch norm cannot train on it."""
    data = ClassificationDataModule(**_files(sample_dataset), batch_size=batch_size, num_workers=0, seed=0)
    loader = data.train_dataloader()
    assert [len(b["labels"]) for b in loader] == sizes
