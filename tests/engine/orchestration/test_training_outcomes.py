"""Issue 7 fixes: what the engine trains, saves and reports is right."""

import json
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from mlflow.tracking import MlflowClient

from engine.config import RunConfig
from engine.models.loading import load_model
from engine.orchestration.local import train
from engine.tracking.history import metric_history


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _detection_batch(size=64):
    pixels = torch.rand(2, 3, size, size)
    labels = [
        {"class_labels": torch.tensor([0]), "boxes": torch.tensor([[0.5, 0.5, 0.4, 0.4]])},
        {"class_labels": torch.tensor([1]), "boxes": torch.tensor([[0.3, 0.3, 0.2, 0.2]])},
    ]
    return pixels, labels


def _backbone_tensors(model):
    return {n: p for n, p in model.model.backbone.model.named_parameters()}


def _step_changes(model):
    before = {n: p.detach().clone() for n, p in _backbone_tensors(model).items()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    pixels, labels = _detection_batch()
    model.train()
    model(pixel_values=pixels, pixel_mask=torch.ones(2, 64, 64, dtype=torch.long), labels=labels).loss.backward()
    optimizer.step()
    return {n for n, p in _backbone_tensors(model).items() if not torch.equal(p.detach(), before[n])}


def test_detr_backbone_trains_on_random_weights_with_trainable_batch_norm():
    model = load_model("detr-tiny", "detection", num_labels=2)
    tensors = _backbone_tensors(model)
    assert tensors and all(p.requires_grad for p in tensors.values())
    norms = [m for m in model.model.backbone.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(m.weight.requires_grad for m in norms)
    changed = _step_changes(model)
    assert changed == set(tensors)  # every backbone tensor moved, stem and BatchNorm included


def test_detr_backbone_from_pretrained_folder_trains_all_but_the_stem(tmp_path):
    load_model("detr-tiny", "detection", num_labels=2).save_pretrained(tmp_path / "detr")
    model = load_model(str(tmp_path / "detr"), "detection", num_labels=2, pretrained=True)
    tensors = _backbone_tensors(model)
    frozen = {n for n, p in tensors.items() if not p.requires_grad}
    assert frozen and all("embedder" in n for n in frozen)
    trainable = set(tensors) - frozen
    assert trainable and _step_changes(model) == trainable


# ---------------------------------------------------------------------- training runs
def _config(data, workspace, **overrides):
    base = {
        "data.path": str(data),
        "model.checkpoint": "resnet-tiny",
        "optim.epochs": 3,
        "optim.batch_size": 8,
        "optim.lr": 3e-3,
        "data.image_size": 32,
        "data.num_workers": 0,
        "optim.scheduler": "none",
        "optim.warmup_steps": 0,
        "workspace": str(workspace),
    }
    base.update(overrides)
    return RunConfig.from_dict({"task": {"name": "classification"}}).with_overrides(base)


class _Recorder(pl.Callback):
    """Unscaled micro-batch losses by the step the MLflow callback logs them at; lr per step and epoch;
    and, at the start of the last epoch, weights ruined so that epoch cannot be the best."""

    def __init__(self, ruin_last_epoch=False):
        self.ruin_last_epoch = ruin_last_epoch
        self.pending, self.loss_at, self.lrs, self.final_step = None, {}, [], None

    def on_train_epoch_start(self, trainer, pl_module):
        if self.ruin_last_epoch and trainer.current_epoch == trainer.max_epochs - 1:
            with torch.no_grad():
                for p in pl_module.model.parameters():
                    p.add_(torch.randn_like(p) * 5)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.lrs.append((trainer.global_step, trainer.current_epoch, trainer.optimizers[0].param_groups[0]["lr"]))

    def on_before_backward(self, trainer, pl_module, loss):
        self.pending = float(loss.detach()) * trainer.accumulate_grad_batches

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.loss_at.setdefault(trainer.global_step, self.pending)

    def on_train_end(self, trainer, pl_module):
        self.final_step = trainer.global_step


def test_final_state_is_saved_and_best_and_last_mean_what_they_say(sample_dataset, tmp_path):
    recorder = _Recorder(ruin_last_epoch=True)
    result = train(_config(sample_dataset, tmp_path / "ws"), progress=False, callbacks=[recorder])
    assert result.status == "FINISHED"
    last = torch.load(result.last_checkpoint, map_location="cpu", weights_only=False)
    best = torch.load(result.best_checkpoint, map_location="cpu", weights_only=False)
    assert last["global_step"] == recorder.final_step  # the weights training ended with
    assert best["global_step"] < recorder.final_step  # the ruined last epoch is not the best
    history = metric_history(result.tracking_uri, result.run_id, ["val/loss"])["val/loss"]
    best_loss = min(value for _, value, _ in history)
    assert len(history) == 3
    assert best["global_step"] == next(step for step, value, _ in history if value == best_loss)


def test_mlflow_train_loss_is_not_divided_by_gradient_accumulation(sample_dataset, tmp_path):
    recorder = _Recorder()
    config = _config(
        sample_dataset,
        tmp_path / "ws",
        **{"optim.epochs": 1, "optim.accumulate_grad_batches": 2, "tracking.log_every_n_steps": 1},
    )
    result = train(config, progress=False, callbacks=[recorder])
    logged = MlflowClient(result.tracking_uri).get_metric_history(result.run_id, "train/loss")
    assert len(logged) >= 3
    for point in logged:
        assert point.value == pytest.approx(recorder.loss_at[point.step], rel=1e-4)


def test_step_schedule_counts_epochs_by_batches_when_max_steps_ends_early(sample_dataset, tmp_path):
    recorder = _Recorder()
    config = _config(
        sample_dataset,
        tmp_path / "ws",
        **{
            "optim.epochs": 50,
            "optim.max_steps": 9,
            "optim.scheduler": "step",
            "optim.step_size": 1,
            "optim.gamma": 0.5,
        },
    )
    train(config, progress=False, callbacks=[recorder])
    epochs = {epoch for _, epoch, _ in recorder.lrs}
    assert len(epochs) >= 2  # the run crosses an epoch boundary
    for _, epoch, lr in recorder.lrs:
        assert lr == pytest.approx(3e-3 * 0.5**epoch)


# ---------------------------------------------------------------------- sizes and normalisation
@pytest.mark.parametrize(
    ("task", "checkpoint", "size"), [("classification", "vit-tiny", 32), ("detection", "detr-tiny", 128)]
)
def test_empty_image_size_takes_the_models_own_size(sample_dataset, tmp_path, task, checkpoint, size):
    from engine.orchestration.builders import build_datamodule

    config = RunConfig.from_dict({"task": {"name": task}}).with_overrides(
        {
            "data.path": str(sample_dataset),
            "model.checkpoint": checkpoint,
            "data.num_workers": 0,
            "compute.accelerator": "cpu",
        }
    )
    assert config.data.image_size is None
    datamodule = build_datamodule(config)
    assert datamodule.image_size == size


def test_multitask_normalisation_comes_from_the_backbone_checkpoint(sample_dataset):
    from engine.catalog.presets import IMAGENET_MEAN, IMAGENET_STD, get_preset
    from engine.orchestration.builders import build_datamodule

    config = RunConfig.from_dict({"task": {"name": "multitask", "tasks": ["classification", "detection"]}})
    config = config.with_overrides(
        {
            "data.path": str(sample_dataset),
            "data.num_workers": 0,
            "compute.accelerator": "cpu",
            "data.image_size": 32,
            "model.checkpoints": {"classification": "vit-tiny", "detection": "detr-tiny"},
        }
    )
    assert get_preset("vit-tiny").mean != IMAGENET_MEAN  # the first entry would give other statistics
    datamodule = build_datamodule(config)
    assert tuple(datamodule.mean) == tuple(IMAGENET_MEAN) and tuple(datamodule.std) == tuple(IMAGENET_STD)


# ---------------------------------------------------------------------- silent settings
def test_num_workers_default_follows_the_cpus_this_process_may_use(monkeypatch):
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert RunConfig.from_dict({"task": {"name": "classification"}}).data.num_workers == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(32)), raising=False)
    assert RunConfig.from_dict({"task": {"name": "classification"}}).data.num_workers == 4


def test_truncated_coco_json_names_where_it_ends(tmp_path):
    from engine.data.coco_index import CocoFormatError, CocoIndex

    path = tmp_path / "instances.json"
    path.write_text('{"images": [\n  {"id": 1, "file_name": "a.jpg",\n   "width": 4')
    with pytest.raises(CocoFormatError) as err:
        CocoIndex.load(path)
    assert "line 3" in str(err.value) and "column 14" in str(err.value) and str(path) in str(err.value)


def test_top5_is_logged_only_with_more_than_five_classes(sample_dataset, tmp_path):
    result = train(_config(sample_dataset, tmp_path / "ws", **{"optim.epochs": 1}), progress=False)
    metrics = MlflowClient(result.tracking_uri).get_run(result.run_id).data.metrics
    assert "val/accuracy" in metrics and "val/top5" not in metrics  # 4 classes: top-5 is always 1.0


def test_a_cropping_detection_val_spec_is_refused(sample_dataset, tmp_path):
    from engine.orchestration.builders import build_datamodule
    from engine.orchestration.errors import TrainingError

    config = RunConfig.from_dict({"task": {"name": "detection"}}).with_overrides(
        {
            "data.path": str(sample_dataset),
            "model.checkpoint": "detr-tiny",
            "data.num_workers": 0,
            "compute.accelerator": "cpu",
            "augmentation.val": [
                {"name": "SmallestMaxSize", "max_size": 64},
                {"name": "CenterCrop", "height": 64, "width": 64},
            ],
        }
    )
    with pytest.raises(TrainingError, match=r"augmentation\.val\[1\] \(CenterCrop\) crops"):
        build_datamodule(config)


def _strip_annotations(folder: Path, split: str, count: int) -> None:
    ann_file = next((folder / "annotations").glob(f"*{split}*.json"))
    doc = json.loads(ann_file.read_text())
    bare = {image["id"] for image in doc["images"][:count]}
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] not in bare]
    ann_file.write_text(json.dumps(doc))


def test_images_without_annotations_are_counted_per_split(sample_copy, tmp_path):
    from engine.orchestration.builders import build_datamodule

    _strip_annotations(sample_copy, "train", 3)
    _strip_annotations(sample_copy, "val", 2)
    overrides = {
        "data.path": str(sample_copy),
        "data.num_workers": 0,
        "compute.accelerator": "cpu",
        "data.image_size": 32,
    }
    classification = RunConfig.from_dict({"task": {"name": "classification"}}).with_overrides(overrides)
    assert build_datamodule(classification).dropped_images == {"train": 3, "val": 2}
    detection = RunConfig.from_dict({"task": {"name": "detection"}}).with_overrides(
        {**overrides, "model.checkpoint": "detr-tiny"}
    )
    assert build_datamodule(detection).dropped_images == {"train": 0, "val": 0}  # negatives, kept
    result = train(_config(sample_copy, tmp_path / "ws", **{"optim.epochs": 1}), progress=False)
    tags = MlflowClient(result.tracking_uri).get_run(result.run_id).data.tags
    assert tags["lightbox.dropped_images.train"] == "3" and tags["lightbox.dropped_images.val"] == "2"


def test_train_refuses_a_config_with_a_search_section(sample_dataset, tmp_path, capsys):
    from engine.cli import main

    config = RunConfig.from_dict(
        {
            "task": {"name": "classification"},
            "data": {"path": str(sample_dataset)},
            "search": {"space": {"optim.lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2}}},
        }
    )
    path = tmp_path / "run.yaml"
    config.save(path)
    assert main(["train", "--config", str(path), "--workspace", str(tmp_path / "ws")]) == 2
    err = capsys.readouterr().err
    assert "run.yaml: search:" in err and "lightbox tune" in err
    assert not (tmp_path / "ws" / "runs").exists()  # nothing started


def test_a_run_records_which_weights_it_starts_from(sample_dataset, tmp_path):
    config = _config(sample_dataset, tmp_path / "ws", **{"optim.epochs": 1, "optim.max_steps": 1})
    result = train(config, progress=False)
    tags = MlflowClient(result.tracking_uri).get_run(result.run_id).data.tags
    assert tags["lightbox.weights"].startswith("random weights")
    assert config.model.checkpoint in tags["lightbox.weights"]
