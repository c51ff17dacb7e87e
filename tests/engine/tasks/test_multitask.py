"""Multi-task learning: one shared backbone, a head per task (CPU, tiny presets, 64 px images)."""

import json

import lightning.pytorch as pl
import pytest
import torch

from engine.models.backbone import LastFeatureMap
from engine.tasks.multitask.config import MultiTaskConfig
from engine.tasks.multitask.datamodule import MultiTaskDataModule, MultiTaskDataset
from engine.tasks.multitask.lightning_module import MultiTaskModule

ALL = ["classification", "detection", "segmentation"]


def _data(root, tasks=ALL, **kwargs):
    return MultiTaskDataModule.from_folder(root, tasks=tasks, batch_size=4, num_workers=0, image_size=64, **kwargs)


def _model(tasks=ALL, num_labels=None, **kwargs):
    tiny = {"classification": "resnet-tiny", "detection": "detr-tiny", "segmentation": "segformer-tiny"}
    config = MultiTaskConfig(tasks=tasks, model_checkpoints={t: tiny[t] for t in tasks}, **kwargs)
    return MultiTaskModule(config, num_labels=num_labels)


@pytest.fixture(scope="module")
def batch(sample_dataset):
    """One deterministic (validation) batch with every task's labels."""
    data = _data(sample_dataset)
    data.setup()
    return next(iter(data.val_dataloader()))


def test_seed_example_trains_evaluates_and_reloads(sample_dataset, tmp_path):
    from engine.models.loading import load_model

    # A save_pretrained folder stands in for microsoft/resnet-50, the detr-tiny preset for facebook/detr-resnet-50.
    folder = tmp_path / "resnet-folder"
    load_model("resnet-tiny", "classification", num_labels=10).save_pretrained(folder)
    config = MultiTaskConfig(
        tasks=["classification", "detection"],
        model_checkpoints={"classification": str(folder), "detection": "detr-tiny"},
    )
    model = MultiTaskModule(config)
    data_module = _data(sample_dataset, tasks=["classification", "detection"])
    trainer = pl.Trainer(
        max_epochs=1,
        limit_train_batches=3,
        limit_val_batches=2,
        num_sanity_val_steps=0,
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(model, data_module)

    assert model.backbone_checkpoint == str(folder)  # the first task's checkpoint gives the backbone
    assert model.num_labels == {"classification": 4, "detection": 4}
    assert model.category_ids == [1, 2, 3, 5]
    metrics = trainer.callback_metrics
    for key in (
        "train/loss",
        "train/loss_classification",
        "train/loss_detection",
        "val/loss",
        "val/loss_classification",
        "val/loss_detection",
        "val/accuracy",
        "val/map",
    ):
        assert key in metrics and torch.isfinite(metrics[key]), key
    assert MultiTaskModule.monitor == "val/loss"

    # The checkpoint rebuilds the same heads, even though they were sized in setup().
    path = tmp_path / "mt.ckpt"
    trainer.save_checkpoint(path)
    again = MultiTaskModule.load_from_checkpoint(path, map_location="cpu", pretrained=False).eval()
    pixels = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a, b = model.eval()(pixels), again(pixels)
    assert torch.allclose(a["classification"], b["classification"], atol=1e-5)
    assert torch.allclose(a["detection"]["pred_boxes"], b["detection"]["pred_boxes"], atol=1e-5)


def test_the_seeds_import_path_and_the_registry_give_the_multitask_task():
    from engine.tasks.common import multitask as seed_path
    from engine.tasks.registry import get_task

    assert (seed_path.MultiTaskConfig, seed_path.MultiTaskModule) == (MultiTaskConfig, MultiTaskModule)
    assert seed_path.MultiTaskDataModule is MultiTaskDataModule
    entry = get_task("multitask")
    assert (entry.datamodule_class, entry.module_class) == (MultiTaskDataModule, MultiTaskModule)


def test_samples_carry_each_configured_task_through_one_augmentation(sample_dataset, batch):
    data = _data(sample_dataset)
    data.setup()
    assert data.num_labels_per_task == {"classification": 4, "detection": 4, "segmentation": 5}
    labels = batch["labels"]
    assert set(labels) == set(ALL)
    assert labels["classification"].dtype == torch.long and labels["classification"].shape == (4,)
    assert batch["pixel_mask"].shape == (4, 64, 64)
    target = labels["detection"][0]
    assert target["boxes"].shape[1] == 4 and target["boxes"].min() >= 0 and target["boxes"].max() <= 1
    # The mask went through the same resize and padding as the image: padding is 255, not background.
    mask = labels["segmentation"][0]
    x, y, w, h = (int(round(v)) for v in target["content_box"].tolist())
    assert mask.shape == (64, 64) and (x, y, w) == (0, 0, 64) and h < 64
    assert (mask[h + 1 :] == 255).all() and (mask[:h] < 5).float().mean() > 0.9
    # Every box centre lies on its own class in the mask (label + 1).
    for label, (cx, cy, _, _) in zip(target["class_labels"], target["boxes"]):
        assert mask[int(cy * 64), int(cx * 64)] in (int(label) + 1, 255)

    only = _data(sample_dataset, tasks=["detection"])
    only.setup()
    sample = only.val_dataset[0]
    assert set(sample["labels"]) == {"detection"}


def test_classification_configs_skip_images_without_annotations(sample_copy):
    ann_file = sample_copy / "annotations" / "instances_val.json"
    doc = json.loads(ann_file.read_text())
    first = doc["images"][0]["id"]
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] != first]
    ann_file.write_text(json.dumps(doc))
    with_cls = MultiTaskDataset(sample_copy / "val", ann_file, train=False, image_size=64, tasks=ALL)
    without = MultiTaskDataset(
        sample_copy / "val", ann_file, train=False, image_size=64, tasks=["detection", "segmentation"]
    )
    assert (len(with_cls), with_cls.skipped) == (15, 1)
    assert len(without) == 16


@pytest.mark.slow
def test_all_three_heads_overfit_one_batch(batch):
    torch.manual_seed(0)
    model = _model(num_labels={"classification": 4, "detection": 4, "segmentation": 5}, dropout=0.0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0)
    first, losses = None, []
    for _ in range(80):
        loss, out = model.compute_loss(batch)
        first = first or out["losses"]
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] / min(losses[-5:]) > 3, (losses[0], losses[-5:])
    for task in ALL:  # each task learns, not just the easiest one
        assert out["losses"][task] < first[task] / 2, (task, first[task], out["losses"][task])


def test_the_backbone_is_shared(batch):
    torch.manual_seed(0)
    model = _model(num_labels=4, dropout=0.0)
    assert sum(isinstance(m, LastFeatureMap) for m in model.modules()) == 1
    assert set(model.heads) == set(ALL)
    assert model.heads["segmentation"].classifier.out_channels == 5  # an int counts categories; + background

    calls = []
    model.backbone.register_forward_hook(lambda *_: calls.append(1))
    outputs = model(batch["pixel_values"], batch["pixel_mask"])
    assert len(calls) == 1  # one backbone pass feeds every head
    assert outputs["segmentation"].shape == (4, 5, 64, 64)  # logits at input resolution

    losses = model.task_losses(outputs, batch["labels"])
    shared = next(model.backbone.parameters())
    for task in ALL:
        model.zero_grad(set_to_none=True)
        losses[task].backward(retain_graph=True)
        assert shared.grad is not None and shared.grad.abs().sum() > 0, task
        for other in set(ALL) - {task}:
            assert all(p.grad is None for p in model.heads[other].parameters()), (task, other)


def test_loss_weights_scale_each_task_and_zero_removes_it(batch):
    torch.manual_seed(0)
    model = _model(num_labels=4, dropout=0.0, loss_weights={"classification": 2.0, "detection": 0.5})
    assert model.loss_weights == {"classification": 2.0, "detection": 0.5, "segmentation": 1.0}
    total, out = model.compute_loss(batch)
    parts = out["losses"]
    expected = 2.0 * parts["classification"] + 0.5 * parts["detection"] + parts["segmentation"]
    assert torch.allclose(total.detach(), expected, rtol=1e-5)

    # Weight 0: the detection head gets no gradient and the backbone only the others'.
    model.loss_weights["detection"] = 0.0
    model.zero_grad(set_to_none=True)
    total, out = model.compute_loss(batch)
    total.backward()
    assert all(p.grad is None for p in model.heads["detection"].parameters())
    weighted = [p.grad.clone() for p in model.backbone.parameters()]
    model.zero_grad(set_to_none=True)
    outputs = model(batch["pixel_values"], batch["pixel_mask"])
    losses = model.task_losses(outputs, batch["labels"])
    (2.0 * losses["classification"] + losses["segmentation"]).backward()
    for got, want in zip(weighted, (p.grad for p in model.backbone.parameters())):
        assert torch.allclose(got, want, atol=1e-6)
    assert torch.isfinite(out["losses"]["detection"])  # still computed, for the logs


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tasks": ["classification", "depth"]}, "unknown task"),
        ({"tasks": []}, "tasks is empty"),
        ({"tasks": "detection"}, "must be a list"),
        ({"tasks": ["detection", "detection"]}, "more than once"),
        ({"tasks": ["classification"], "loss_weights": {"detection": 1.0}}, "loss_weights has 'detection'"),
        (
            {"tasks": ["classification"], "model_checkpoints": {"segmentation": "segformer-tiny"}},
            "not one of the tasks",
        ),
        ({"tasks": ["classification"], "loss_weights": {"classification": -1}}, "must be a number >= 0"),
        (
            {"tasks": ["classification", "detection"], "loss_weights": {"classification": 0, "detection": 0}},
            "every loss weight is 0",
        ),
        ({"tasks": ["detection"], "hidden_dim": 30}, "multiple of 4"),
    ],
)
def test_bad_configs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MultiTaskConfig(**kwargs)


def test_checkpoints_without_a_backbone_form_are_skipped_then_refused():
    from engine.catalog.checkpoints import ModelLoadError

    config = MultiTaskConfig(
        tasks=["segmentation", "detection"],
        model_checkpoints={"segmentation": "segformer-tiny", "detection": "detr-tiny"},
    )
    assert MultiTaskModule(config, num_labels=4).backbone_checkpoint == "detr-tiny"
    with pytest.raises(ModelLoadError, match="shared backbone"):
        MultiTaskModule(MultiTaskConfig(tasks=["segmentation"], model_checkpoints={"segmentation": "segformer-tiny"}))


def test_data_that_does_not_fit_the_model_is_refused(sample_dataset):
    with pytest.raises(ValueError, match="unknown task"):
        MultiTaskDataModule.from_folder(sample_dataset, tasks=["depth"])
    trainer = pl.Trainer(
        max_steps=1,
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    with pytest.raises(ValueError, match="also needs segmentation"):
        trainer.fit(_model(["classification", "segmentation"]), _data(sample_dataset, tasks=["classification"]))
    with pytest.raises(ValueError, match="num_labels disagree"):
        trainer.fit(_model(["classification"], num_labels=7), _data(sample_dataset, tasks=["classification"]))
