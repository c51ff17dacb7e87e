"""Validation metrics on two processes equal those on one (gloo, CPU).

Two processes are started once (torch.multiprocessing, a gloo process group on
127.0.0.1); each runs every case below and writes what it measured. The same
cases run in this process with no process group for the one-process reference.
The validation file has an odd number of images (7), so a sampler that pads
would count one image twice. Predictors are perfect (classification is wrong on
every third image id, so accuracy depends on exactly which images were counted).
"""

import json
import os
import socket
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.utils.data import DistributedSampler, SequentialSampler

from engine.data.folders import find_splits
from engine.metrics.classification import ClassificationMetrics
from engine.metrics.detection import DetectionEvaluator
from engine.metrics.distributed import evaluation_sampler
from engine.metrics.segmentation import SegmentationMetrics
from engine.tasks.classification.datamodule import ClassificationDataModule
from engine.tasks.classification.lightning_module import ClassificationModule
from engine.tasks.detection.datamodule import DetectionDataModule
from engine.tasks.detection.lightning_module import DetectionModule
from engine.tasks.multitask.config import MultiTaskConfig
from engine.tasks.multitask.datamodule import MultiTaskDataModule
from engine.tasks.multitask.lightning_module import MultiTaskModule
from engine.tasks.segmentation.datamodule import SegmentationDataModule
from engine.tasks.segmentation.lightning_module import SegmentationModule

PROCESSES = 2
VAL_IMAGES = 7  # odd: two processes cannot get the same number without a repeat
# Losses that are a mean over images (the others are means over each batch's boxes or pixels).
PER_IMAGE_LOSSES = {("classification", "val/loss"), ("detection", "val/loss"), ("multitask", "val/loss_classification")}
TINY = {"classification": "resnet-tiny", "detection": "detr-tiny", "segmentation": "segformer-tiny"}


# --------------------------------------------------------------------------- perfect predictors


def _perfect_class_logits(labels, image_ids, num_labels):
    wrong = image_ids % 3 == 0  # a known share of mistakes, so accuracy counts images exactly
    predicted = torch.where(wrong, (labels + 1) % num_labels, labels)
    return F.one_hot(predicted, num_labels).float() * 10


def _perfect_detr(targets, num_labels):
    """DETR outputs that put each target box, with its class, in a query of its own."""
    queries = max(max(len(t["boxes"]) for t in targets), 1)
    logits = torch.full((len(targets), queries, num_labels + 1), -10.0)
    logits[:, :, -1] = 10.0  # "no object"
    boxes = torch.full((len(targets), queries, 4), 0.5)
    for b, t in enumerate(targets):
        n = len(t["boxes"])
        logits[b, :n, -1] = -10.0
        logits[b, torch.arange(n), t["class_labels"]] = 10.0
        boxes[b, :n] = t["boxes"]
    return logits, boxes


def _perfect_masks(labels, num_labels):
    return F.one_hot(torch.where(labels == 255, 0, labels), num_labels).permute(0, 3, 1, 2).float() * 10


class PerfectClassifier(ClassificationModule):
    def compute_loss(self, batch):
        loss, _ = super().compute_loss(batch)  # the real loss: val/loss must combine exactly too
        return loss, _perfect_class_logits(batch["labels"], batch["image_ids"], self.num_labels)


class PerfectDetector(DetectionModule):
    def compute_loss(self, batch):
        loss, outputs = super().compute_loss(batch)
        outputs.logits, outputs.pred_boxes = _perfect_detr(batch["labels"], self.num_labels)
        return loss, outputs


class PerfectSegmenter(SegmentationModule):
    def compute_loss(self, batch):
        loss, _ = super().compute_loss(batch)
        return loss, _perfect_masks(batch["labels"], self.num_labels)


class PerfectMultiTask(MultiTaskModule):
    def compute_loss(self, batch):
        loss, outputs = super().compute_loss(batch)
        labels, n = batch["labels"], self.num_labels
        outputs["classification"] = _perfect_class_logits(
            labels["classification"], batch["image_ids"], n["classification"]
        )
        logits, boxes = _perfect_detr(labels["detection"], n["detection"])
        outputs["detection"] = {"logits": logits, "pred_boxes": boxes}
        outputs["segmentation"] = _perfect_masks(labels["segmentation"], n["segmentation"])
        return loss, outputs


# --------------------------------------------------------------------------- the cases


def _metric_cases() -> dict:
    """Metric objects fed directly, each process its share of 7 samples."""
    k = 3
    ids = torch.arange(VAL_IMAGES) + 10
    labels = ids % k
    logits = _perfect_class_logits(labels, ids, k)
    g = torch.Generator().manual_seed(0)
    masks = torch.randint(0, k, (VAL_IMAGES, 8, 8), generator=g)
    predicted = torch.where(torch.rand(masks.shape, generator=g) < 0.2, (masks + 1) % k, masks)
    gt = {
        "images": [{"id": int(i), "width": 100, "height": 100} for i in ids],
        "annotations": [
            {
                "id": n + 1,
                "image_id": int(i),
                "category_id": int(i % 2) + 1,
                "bbox": [10, 20, 30, 40],
                "area": 1200.0,
                "iscrowd": 0,
            }
            for n, i in enumerate(ids)
        ],
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
    }

    mine = list(evaluation_sampler(SequentialSampler(range(VAL_IMAGES))))
    cls, seg = ClassificationMetrics(k), SegmentationMetrics(k)
    cls.update(logits[mine], labels[mine])
    seg.update(predicted[mine], masks[mine])
    out = {
        "shard": mine,
        "classification": cls.compute(),
        "confusion_matrix": cls.confusion_matrix().tolist(),
        "segmentation": seg.compute(),
    }

    # Detection told which images each batch held counts a repeated image once, even with a
    # padding sampler (the one Lightning uses by default).
    padded = (
        list(DistributedSampler(range(VAL_IMAGES), shuffle=False)) if dist.is_initialized() else list(range(VAL_IMAGES))
    )
    evaluator = DetectionEvaluator(gt)
    for row in padded:
        ann = gt["annotations"][row]
        evaluator.add(
            [{"image_id": ann["image_id"], "category_id": ann["category_id"], "bbox": ann["bbox"], "score": 0.9}],
            image_ids=[ann["image_id"]],
        )
    out["padded_shard"], out["detection_map"] = padded, evaluator.compute()["map"]
    if dist.is_initialized():
        try:
            evaluation_sampler(SequentialSampler(range(1)), "validation images (one.json)")
        except ValueError as err:
            out["too_few_error"] = str(err)
    return out


def _trainer(**kwargs):
    processes = dict(devices=PROCESSES, strategy="ddp") if dist.is_initialized() else dict(devices=1)
    return pl.Trainer(
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **processes,
        **kwargs,
    )


def _numbers(metrics) -> dict:
    return {k: float(v) for k, v in metrics.items()}


def _validate_cases(data: dict) -> dict:
    """Lightning validation of each task's perfect predictor."""
    paths = (data["train_images"], data["train_json"], data["val_images"], data["val_json"])
    common = dict(batch_size=2, num_workers=0, image_size=32)
    cases = {
        "classification": (
            lambda: PerfectClassifier(model_ckpt=TINY["classification"], num_labels=4, pretrained=False),
            ClassificationDataModule,
        ),
        "detection": (
            lambda: PerfectDetector(
                model_ckpt=TINY["detection"], num_labels=4, pretrained=False, category_ids=[1, 2, 3, 5]
            ),
            DetectionDataModule,
        ),
        "segmentation": (
            lambda: PerfectSegmenter(model_ckpt=TINY["segmentation"], num_labels=5, pretrained=False),
            SegmentationDataModule,
        ),
        "multitask": (
            lambda: PerfectMultiTask(MultiTaskConfig(tasks=list(TINY), model_checkpoints=TINY, pretrained=False)),
            MultiTaskDataModule,
        ),
    }
    out = {}
    for name, (make_module, datamodule_class) in cases.items():
        torch.manual_seed(0)  # the same weights in every process, for val/loss
        module = make_module()
        kwargs = dict(tasks=list(TINY)) if name == "multitask" else {}
        trainer = _trainer(enable_checkpointing=False)
        trainer.validate(module, datamodule_class(*paths, **common, **kwargs), verbose=False)
        out[name] = _numbers(trainer.callback_metrics)
        if name == "classification":
            out["confusion_matrix"] = module.last_confusion_matrix.tolist()
    return out


def _fit_case(data: dict, checkpoints: Path) -> dict:
    """A real (tiny) fit: the monitor and the checkpoint it picks must agree on every process."""
    torch.manual_seed(0)
    module = ClassificationModule(model_ckpt=TINY["classification"], num_labels=4, pretrained=False, lr=1e-3)
    datamodule = ClassificationDataModule(
        data["train_images"],
        data["train_json"],
        data["val_images"],
        data["val_json"],
        batch_size=4,
        num_workers=0,
        image_size=32,
    )
    best = pl.callbacks.ModelCheckpoint(
        dirpath=checkpoints, monitor=module.monitor, mode=module.monitor_mode, save_top_k=1
    )
    trainer = _trainer(max_epochs=2, limit_train_batches=3, callbacks=[best])
    trainer.fit(module, datamodule)
    validation = {k: v for k, v in _numbers(trainer.callback_metrics).items() if k.startswith("val/")}
    return {"metrics": validation, "best_path": best.best_model_path, "best_score": float(best.best_model_score)}


def _worker(rank: int, port: int, data: dict, out_dir: str) -> None:
    # An earlier seed_everything in the test process leaves PL_GLOBAL_SEED, and Lightning's DDP set-up
    # reseeds from it before the multi-task module builds its weights: the ranks' weights would differ
    # from the one-process reference.
    os.environ.pop("PL_GLOBAL_SEED", None)
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(PROCESSES),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        NODE_RANK="0",
    )
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=PROCESSES)
    results = {
        "metrics": _metric_cases(),
        "validate": _validate_cases(data),
        "fit": _fit_case(data, Path(out_dir) / "checkpoints"),
    }
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(results))
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def data(sample_dataset, tmp_path_factory) -> dict:
    """The sample dataset's training split, and a validation file of its first 7 annotated images."""
    splits = find_splits(sample_dataset)
    train, val = splits.split("train"), splits.split("val")
    coco = json.loads(Path(val.annotation_file).read_text())
    annotated = sorted({a["image_id"] for a in coco["annotations"]})[:VAL_IMAGES]
    coco["images"] = [im for im in coco["images"] if im["id"] in annotated]
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] in annotated]
    val_json = tmp_path_factory.mktemp("odd_val") / "val7.json"
    val_json.write_text(json.dumps(coco))
    return {
        "train_images": str(train.image_dir),
        "train_json": str(train.annotation_file),
        "val_images": str(val.image_dir),
        "val_json": str(val_json),
    }


@pytest.fixture(scope="module")
def ranks(data, tmp_path_factory) -> list[dict]:
    out_dir = tmp_path_factory.mktemp("ranks")
    mp.spawn(_worker, args=(_free_port(), data, str(out_dir)), nprocs=PROCESSES, join=True)
    return [json.loads((out_dir / f"rank{r}.json").read_text()) for r in range(PROCESSES)]


def _reference_worker(_index: int, data: dict, out_dir: str) -> None:
    # A fresh process like the ranks (one thread, no state left by earlier tests in this one).
    os.environ.pop("PL_GLOBAL_SEED", None)
    torch.set_num_threads(1)
    Path(out_dir, "one.json").write_text(json.dumps({"metrics": _metric_cases(), "validate": _validate_cases(data)}))


@pytest.fixture(scope="module")
def one(data, tmp_path_factory) -> dict:
    out_dir = tmp_path_factory.mktemp("one")
    mp.spawn(_reference_worker, args=(data, str(out_dir)), nprocs=1, join=True)
    return json.loads((out_dir / "one.json").read_text())


# --------------------------------------------------------------------------- tests


def test_metric_objects_combine_every_process(ranks, one):
    shards = [r["metrics"]["shard"] for r in ranks]
    assert sorted(shards[0] + shards[1]) == list(range(VAL_IMAGES))  # each sample once, none repeated
    assert [len(s) for s in shards] == [4, 3]
    for r in ranks:
        got = r["metrics"]
        assert got["classification"] == one["metrics"]["classification"]
        assert got["confusion_matrix"] == one["metrics"]["confusion_matrix"]
        assert np.sum(got["confusion_matrix"]) == VAL_IMAGES
        assert got["segmentation"] == one["metrics"]["segmentation"]
        assert got["detection_map"] == pytest.approx(1.0)
        assert "1 validation images (one.json) for 2 processes" in got["too_few_error"]
    # The padding sampler really repeated an image, and detection still counted it once.
    padded = ranks[0]["metrics"]["padded_shard"] + ranks[1]["metrics"]["padded_shard"]
    assert len(padded) == VAL_IMAGES + 1


def test_lightning_validation_on_two_processes_equals_one(ranks, one):
    reference = one["validate"]
    assert reference["detection"]["val/map"] == pytest.approx(1.0)
    assert reference["segmentation"]["val/miou"] == pytest.approx(1.0)
    assert reference["multitask"]["val/map"] == pytest.approx(1.0)
    assert reference["multitask"]["val/miou"] == pytest.approx(1.0)
    assert 0.0 < reference["classification"]["val/accuracy"] < 1.0
    assert reference["multitask"]["val/accuracy"] == reference["classification"]["val/accuracy"]
    for r in ranks:
        got = r["validate"]
        assert got["confusion_matrix"] == reference["confusion_matrix"]
        for task in ("classification", "detection", "segmentation", "multitask"):
            assert set(got[task]) == set(reference[task]), task
            for key, value in reference[task].items():
                if (task, key) in PER_IMAGE_LOSSES:  # a mean over images, summed in another order
                    assert got[task][key] == pytest.approx(value, rel=1e-5), (task, key)
                elif not key.startswith("val/loss"):  # other losses are means per batch: batches differ
                    assert got[task][key] == value, (task, key)


def test_every_process_picks_the_same_checkpoint_by_the_whole_validation_set(ranks, data):
    fits = [r["fit"] for r in ranks]
    assert fits[0] == fits[1]  # same validation metrics, best score and checkpoint file
    # The score the monitor saw is that of the chosen weights on the whole validation set.
    module = ClassificationModule.load_from_checkpoint(fits[0]["best_path"], map_location="cpu", pretrained=False)
    datamodule = ClassificationDataModule(
        data["train_images"],
        data["train_json"],
        data["val_images"],
        data["val_json"],
        batch_size=4,
        num_workers=0,
        image_size=32,
    )
    trainer = _trainer(enable_checkpointing=False)
    trainer.validate(module, datamodule, verbose=False)
    assert float(trainer.callback_metrics["val/accuracy"]) == fits[0]["best_score"]
