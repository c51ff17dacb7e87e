"""The RT-DETR v2 detection presets: built offline, trained by the detection module with the
same targets as DETR, and post-processed into boxes in the original image's pixels."""

import pytest
import torch

from engine.catalog.presets import PRESET_FOR_HUB_ID, get_preset, list_presets
from engine.metrics.detection import coco_evaluate
from engine.models.loading import load_backbone, load_model
from engine.tasks.detection.datamodule import DetectionDataModule
from engine.tasks.detection.lightning_module import DetectionModule, detections_from_outputs

RT_DETR_PRESETS = ("rt-detr-v2-tiny", "rt-detr-v2-r18", "rt-detr-v2-r50")


@pytest.fixture(scope="module")
def val_batch(sample_dataset):
    data = DetectionDataModule.from_folder(
        sample_dataset,
        batch_size=4,
        num_workers=0,
        image_size=128,
        train_transforms=[],
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
    )
    data.setup()
    return data, next(iter(data.val_dataloader()))


def test_rt_detr_presets_are_listed_for_detection_with_their_hub_layouts():
    names = [p.name for p in list_presets("detection")]
    assert set(RT_DETR_PRESETS) <= set(names)
    assert {"detr-tiny", "detr-resnet-50"} <= set(names)  # DETR stays selectable
    assert PRESET_FOR_HUB_ID["PekingU/rtdetr_v2_r18vd"] == "rt-detr-v2-r18"
    assert PRESET_FOR_HUB_ID["PekingU/rtdetr_v2_r50vd"] == "rt-detr-v2-r50"


@pytest.mark.parametrize(("name", "millions"), [("rt-detr-v2-r18", 20.1), ("rt-detr-v2-r50", 42.8)])
def test_full_size_presets_have_the_hub_checkpoints_size(name, millions):
    config = get_preset(name).build_config("detection", 80)
    # The encoder reads the backbone's last three stages: their widths must be what it expects.
    assert config.encoder_in_channels == config.backbone_config.hidden_sizes[1:]
    from transformers import AutoModelForObjectDetection

    with torch.device("meta"):
        model = AutoModelForObjectDetection.from_config(config)
    assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(millions, abs=0.2)


def test_tiny_preset_builds_with_every_backbone_weight_trainable():
    model = load_model("rt-detr-v2-tiny", "detection", num_labels=3)
    assert type(model).__name__ == "RTDetrV2ForObjectDetection"
    assert model.config.num_labels == 3
    assert all(p.requires_grad for p in model.parameters())
    # Random weights: transformers' frozen BatchNorm would keep the backbone's statistics at init.
    assert not [m for m in model.modules() if "Frozen" in type(m).__name__]


def test_one_training_step_reaches_the_backbone(val_batch):
    _, batch = val_batch
    torch.manual_seed(0)
    module = DetectionModule(model_ckpt="rt-detr-v2-tiny", num_labels=4)
    loss, out = module.compute_loss(batch)
    assert torch.isfinite(loss)
    assert out.logits.shape[-1] == 4  # sigmoid classifier: no "no object" class
    loss.backward()
    stem = module.model.model.backbone.model.embedder.embedder[0].convolution.weight
    assert stem.grad is not None and stem.grad.abs().sum() > 0


def test_loss_decreases_on_one_batch(val_batch):
    _, batch = val_batch
    torch.manual_seed(0)
    module = DetectionModule(model_ckpt="rt-detr-v2-tiny", num_labels=4)
    optimiser = torch.optim.AdamW(module.parameters(), lr=1e-3)
    losses = []
    for _ in range(12):
        loss, _ = module.compute_loss(batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.detach().item())
    assert sum(losses[-3:]) / 3 < 0.75 * losses[0], losses


def test_post_processing_of_a_perfect_rt_detr_output_scores_map_one_in_original_pixels(val_batch):
    # Queries that predict exactly the targets (normalised on the padded 128 px canvas) must come
    # back as the annotation boxes of the original images, with their category ids: COCO mAP 1.
    data, batch = val_batch
    module = DetectionModule(model_ckpt="rt-detr-v2-tiny", num_labels=4)
    module.check_data(data)
    targets = batch["labels"]
    queries = module.model.config.num_queries
    logits = torch.full((len(targets), queries, 4), -10.0)
    boxes = torch.full((len(targets), queries, 4), 0.1)
    for b, target in enumerate(targets):
        n = len(target["class_labels"])
        logits[b, torch.arange(n), target["class_labels"]] = 10.0
        boxes[b, :n] = target["boxes"]
    canvas = tuple(batch["pixel_values"].shape[-2:])
    assert canvas == (128, 128)
    detections = detections_from_outputs(logits, boxes, targets, module.category_ids, canvas=canvas)
    # Ground truth of the batch's images only (the others were not predicted).
    full = data.val_dataset.index.to_coco_dict()
    ids = {int(t["image_id"]) for t in targets}
    truth = {
        **full,
        "images": [i for i in full["images"] if i["id"] in ids],
        "annotations": [a for a in full["annotations"] if a["image_id"] in ids],
    }
    assert coco_evaluate(truth, detections)["map"] == pytest.approx(1.0, abs=1e-6)


def test_tiny_preset_lends_its_resnet_to_multi_task_models():
    backbone, channels = load_backbone("rt-detr-v2-tiny")
    features = backbone(torch.rand(1, 3, 64, 64))
    assert channels == 128 and features.shape == (1, 128, 2, 2)
