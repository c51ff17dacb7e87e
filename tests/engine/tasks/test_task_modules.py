"""The task LightningModules learn on the generated dataset (CPU, tiny presets)."""

import lightning.pytorch as pl
import pytest
import torch

from engine.catalog.checkpoints import ModelLoadError
from engine.tasks.classification.datamodule import ClassificationDataModule
from engine.tasks.classification.lightning_module import ClassificationModule
from engine.tasks.detection.datamodule import DetectionDataModule
from engine.tasks.detection.lightning_module import DetectionModule, detections_from_outputs
from engine.tasks.segmentation.datamodule import SegmentationDataModule
from engine.tasks.segmentation.lightning_module import SegmentationModule


def _trainer(**kwargs):
    return pl.Trainer(
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        accelerator="cpu",
        **kwargs,
    )


def _overfit(module, batch, steps, lr):
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=0)
    losses = []
    for _ in range(steps):
        loss, _ = module.compute_loss(batch)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 0.1)
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.slow
def test_seed_example_trains_a_classifier_well_above_chance(sample_dataset, tmp_path):
    # The seed's example, with a folder written by save_pretrained standing in for the hub id.
    from engine.models.loading import load_model

    folder = tmp_path / "resnet-tiny-folder"
    load_model("resnet-tiny", "classification", num_labels=10).save_pretrained(folder)
    data_module = ClassificationDataModule(
        train_image_dir=sample_dataset / "train",
        train_annotation_file=sample_dataset / "annotations" / "instances_train.json",
        val_image_dir=sample_dataset / "val",
        val_annotation_file=sample_dataset / "annotations" / "instances_val.json",
        batch_size=16,
        num_workers=0,
        image_size=64,
    )
    model = ClassificationModule(model_ckpt=str(folder), num_labels=4, lr=3e-3)
    trainer = _trainer(max_epochs=8)
    trainer.fit(model, data_module)
    accuracy = float(trainer.callback_metrics["val/accuracy"])
    assert accuracy >= 0.75, accuracy  # chance is 0.25
    assert model.last_confusion_matrix.sum() == 16


def test_num_labels_that_disagree_with_the_dataset_are_refused(sample_dataset):
    data = ClassificationDataModule.from_folder(sample_dataset, num_workers=0, image_size=32)
    model = ClassificationModule(model_ckpt="resnet-tiny", num_labels=1000)
    with pytest.raises(ValueError, match="num_labels=1000 but the dataset has 4 categories"):
        _trainer(max_steps=1).fit(model, data)


def test_a_model_that_cannot_do_the_task_is_refused():
    with pytest.raises(ModelLoadError, match="classification"):
        ClassificationModule(model_ckpt="detr-tiny", num_labels=4)


@pytest.mark.slow
def test_detr_overfits_one_batch(sample_dataset):
    data = DetectionDataModule.from_folder(
        sample_dataset, batch_size=2, num_workers=0, image_size=96, train_transforms=[]
    )
    data.setup()
    batch = next(iter(data.val_dataloader()))
    torch.manual_seed(0)
    module = DetectionModule(model_ckpt="detr-tiny", num_labels=4)
    losses = _overfit(module, batch, steps=300, lr=1e-3)
    assert losses[0] / min(losses[-10:]) > 4, (losses[0], losses[-10:])


@pytest.mark.slow
def test_segformer_overfits_one_batch(sample_dataset):
    data = SegmentationDataModule.from_folder(
        sample_dataset, batch_size=2, num_workers=0, image_size=64, train_transforms=[]
    )
    data.setup()
    batch = next(iter(data.val_dataloader()))
    torch.manual_seed(0)
    module = SegmentationModule(model_ckpt="segformer-tiny", num_labels=5)
    losses = _overfit(module, batch, steps=120, lr=2e-3)
    assert losses[0] / min(losses[-10:]) > 10, (losses[0], losses[-10:])


def test_detr_post_processing_maps_back_to_original_pixels_and_ids():
    # One query predicting a box on a 100x100 canvas holding a 200x100 image scaled by 0.5.
    logits = torch.full((1, 2, 3), -10.0)
    logits[0, 0, 1] = 10.0  # query 0 -> label 1
    boxes = torch.tensor([[[0.5, 0.25, 0.2, 0.1], [0.1, 0.1, 0.1, 0.1]]])  # cx, cy, w, h on the canvas
    target = {
        "content_box": torch.tensor([0.0, 0.0, 100.0, 50.0]),
        "orig_size": torch.tensor([100, 200]),
        "image_id": torch.tensor(42),
    }
    dets = detections_from_outputs(logits, boxes, [target], category_ids=[3, 7], canvas=(100, 100))
    best = max(dets, key=lambda d: d["score"])
    assert best["image_id"] == 42 and best["category_id"] == 7
    assert best["bbox"] == pytest.approx([80.0, 40.0, 40.0, 20.0], abs=1e-4)


def test_detection_and_segmentation_validate_with_their_metrics(sample_dataset):
    det = DetectionDataModule.from_folder(sample_dataset, batch_size=4, num_workers=0, image_size=64)
    trainer = _trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=2)
    trainer.fit(DetectionModule(model_ckpt="detr-tiny", num_labels=4), det)
    assert {"val/map", "val/map_50", "val/loss"} <= set(trainer.callback_metrics)
    seg = SegmentationDataModule.from_folder(sample_dataset, batch_size=4, num_workers=0, image_size=64)
    trainer = _trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=2)
    trainer.fit(SegmentationModule(model_ckpt="segformer-tiny", num_labels=5), seg)
    assert 0.0 <= float(trainer.callback_metrics["val/miou"]) <= 1.0
