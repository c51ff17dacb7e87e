"""Evaluate a finished run, or predict with it, from its best checkpoint."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from engine.config import RunConfig
from engine.orchestration.builders import build_datamodule
from engine.orchestration.checkpoints import newest_checkpoint
from engine.orchestration.errors import TrainingError
from engine.orchestration.run_folder import locate_run
from engine.orchestration.speed import speed_settings
from engine.orchestration.trainer import build_trainer

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def run_files(run_id: str, tracking_uri: str | None = None, workspace: str | None = None):
    """(config, run folder, best checkpoint, tracking uri) of a run."""
    from engine.workspace import default_workspace

    run_dir, uri = locate_run(run_id, tracking_uri, Path(workspace) if workspace else default_workspace())
    best = best_checkpoint(run_dir)
    if best is None:
        raise TrainingError(f"run {run_id}: no checkpoint in {run_dir / 'checkpoints'}")
    return RunConfig.load(run_dir / "run.yaml"), run_dir, best, uri


def best_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint a run is evaluated with: its best, else (stopped before validating) its newest."""
    folder = run_dir / "checkpoints"
    # ModelCheckpoint keeps exactly one best-*.ckpt; a run stopped before validating has only the latest.
    return next(iter(sorted(folder.glob("best-*.ckpt"))), None) or newest_checkpoint(folder)


def load_module(config: RunConfig, checkpoint: Path):
    from engine.tasks.registry import get_task

    cls = get_task(config.task.name).module_class
    # The architecture comes from the checkpoint's hyper-parameters; never fetch weights again.
    # weights_only: a checkpoint holds tensors and plain data only, and nothing else is unpickled.
    return cls.load_from_checkpoint(str(checkpoint), map_location="cpu", pretrained=False, weights_only=True)


def follow_data_normalisation(module, normalize_on_device: bool):
    """Make ``module`` expect the images the data loader of *this* machine produces.

    ``normalize_on_device`` is saved with the checkpoint as the training machine chose
    it (on a GPU: uint8 batches normalised by the model), but the evaluating machine
    builds its own loaders and may choose otherwise; a model left expecting floats
    would then get uint8 images (or the other way round).
    """
    module.normalize_on_device = bool(normalize_on_device)
    return module


def evaluate_run(run_id: str, *, tracking_uri: str | None = None, workspace: str | None = None) -> dict[str, Any]:
    """Validation metrics of a run's best checkpoint on its validation split."""
    config, _, checkpoint, _ = run_files(run_id, tracking_uri, workspace)
    speed = speed_settings(config)
    datamodule = build_datamodule(config, speed)
    module = follow_data_normalisation(load_module(config, checkpoint), speed.normalize_on_device)
    trainer = build_trainer(speed, devices=1)
    (metrics,) = trainer.validate(module, datamodule=datamodule, verbose=False)
    return {"run_id": run_id, "checkpoint": str(checkpoint), "metrics": {k: float(v) for k, v in metrics.items()}}


def evaluation_report(
    run_id: str,
    *,
    split: str = "val",
    out: str | Path | None = None,
    tracking_uri: str | None = None,
    workspace: str | None = None,
) -> tuple[dict[str, Any], Path]:
    """Evaluate a run's best checkpoint over ``split``: (report, its evaluation.json).

    Written to the run folder's ``evaluation/`` (replacing an earlier report of the run) and
    logged to the run, or, with ``out``, to that folder only.
    """
    import torch

    from engine.orchestration.evaluation_run import REPORT_FOLDER, build_run_report, save_report, tracker_for

    config, run_dir, checkpoint, uri = run_files(run_id, tracking_uri, workspace)
    speed = speed_settings(config)
    datamodule = build_datamodule(config, speed)
    module = follow_data_normalisation(load_module(config, checkpoint), speed.normalize_on_device)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    module.to(device)
    report = build_run_report(module, datamodule, config, split, run_id=run_id, checkpoint=checkpoint, device=device)
    if out is not None:
        return report, save_report(report, Path(out))
    return report, save_report(report, run_dir / REPORT_FOLDER, tracker_for(run_id, uri))


def checkpoint_step(checkpoint: Path) -> int | None:
    """The global step in a checkpoint's name (``best-epoch=0-step=6.ckpt``), None when it has none."""
    import re

    found = re.search(r"step=(\d+)", checkpoint.name)
    return int(found.group(1)) if found else None


def evaluate_after_training(
    config: RunConfig,
    run_dir: Path,
    datamodule,
    run_logger,
    device,
    normalize_on_device: bool,
    trained=None,
) -> Path | None:
    """The end-of-training report: the checkpoint ``lightbox eval`` would take, over the validation split.

    One pass over the validation images, written to the run folder and logged to the run.
    ``trained``: (the trained module, its global step); when the best checkpoint was saved at
    that step, the module holds its weights and is evaluated as it is (no second model loaded).
    It never fails the trained run: a failure is reported, and ``lightbox eval`` can write it later.
    """
    from engine.orchestration.evaluation_collect import REPORT_TASKS
    from engine.orchestration.evaluation_run import REPORT_FOLDER, build_run_report, save_report

    checkpoint = best_checkpoint(run_dir)
    if config.task.name not in REPORT_TASKS or checkpoint is None:
        return None
    try:
        if trained is not None and checkpoint_step(checkpoint) == trained[1]:
            module = trained[0]
        else:
            module = follow_data_normalisation(load_module(config, checkpoint), normalize_on_device).to(device)
        report = build_run_report(
            module, datamodule, config, "val", run_id=run_logger.run_id, checkpoint=checkpoint, device=device
        )
        return save_report(report, run_dir / REPORT_FOLDER, run_logger)
    except Exception as exc:  # noqa: BLE001 - the run is trained; its evaluation can be redone
        print(f"evaluation report not written ({type(exc).__name__}: {exc}); run `lightbox eval`", file=sys.stderr)
        return None


def evaluate_finished_run(config: RunConfig, run_dir: Path, run_logger) -> Path | None:
    """:func:`evaluate_after_training` where training ran elsewhere (Ray's workers): data and device from here."""
    import torch

    speed = speed_settings(config)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        datamodule = build_datamodule(config, speed)
    except Exception as exc:  # noqa: BLE001 - as in evaluate_after_training: never fail the trained run
        print(f"evaluation report not written ({type(exc).__name__}: {exc}); run `lightbox eval`", file=sys.stderr)
        return None
    return evaluate_after_training(config, run_dir, datamodule, run_logger, device, speed.normalize_on_device)


def report_path(run_id: str, tracking_uri: str | None = None, workspace: str | None = None) -> Path | None:
    """A run's evaluation.json (the copy in its run folder); None when it has none yet, or is not found."""
    from engine.orchestration.evaluation_run import run_report_path

    try:
        run_dir, _ = locate_run(run_id, tracking_uri, Path(workspace) if workspace else _default_workspace())
    except TrainingError:
        return None
    return run_report_path(run_dir)


def _default_workspace() -> Path:
    from engine.workspace import default_workspace

    return default_workspace()


def _folder_index(folder: Path):
    """A COCO index over a plain folder of images (no annotations), for prediction."""
    from engine.data.coco_index import CocoIndex
    from engine.data.images import image_size

    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise TrainingError(f"{folder}: no images found ({', '.join(sorted(IMAGE_SUFFIXES))})")
    images = []
    for i, path in enumerate(files, start=1):
        w, h = image_size(path)
        images.append({"id": i, "file_name": str(path.relative_to(folder)), "width": w, "height": h})
    return CocoIndex.from_dict({"images": images, "annotations": [], "categories": []})


def predict_run(
    run_id: str,
    images: str | Path,
    out: str | Path,
    *,
    tracking_uri: str | None = None,
    workspace: str | None = None,
    batch_size: int = 8,
) -> Path:
    """Predict on a folder of images; write COCO-style JSON (masks as PNGs beside it)."""
    from PIL import Image
    from torch.utils.data import DataLoader

    from engine.tasks.registry import get_task

    config, _, checkpoint, _ = run_files(run_id, tracking_uri, workspace)
    out = Path(out)
    refuse_to_overwrite(out)
    # The loader below normalises in its collate function, whatever the training machine did.
    module = follow_data_normalisation(load_module(config, checkpoint), False)
    folder = Path(images)
    index = _folder_index(folder)
    datamodule_cls = get_task(config.task.name).datamodule_class
    dataset_cls = datamodule_cls.dataset_class
    extra = {"tasks": list(config.task.tasks)} if config.task.name == "multitask" else {}
    dataset = dataset_cls(
        folder,
        index=index,
        train=False,
        image_size=config.data.image_size,
        transforms=config.augmentation.val,
        check_files=False,
        **extra,
    )
    # Classification skips images without labels; here every image is predicted.
    dataset.rows = np.arange(index.num_images)
    if hasattr(dataset, "labels"):
        dataset.labels = np.zeros(index.num_images, np.int64)
    if config.task.name == "multitask":
        from engine.tasks.multitask.datamodule import MultiTaskCollate

        collate = MultiTaskCollate(dataset.tasks, mean=module.mean, std=module.std)
    else:
        from engine.tasks.common.collate import Collate

        collate = Collate(dataset.task, mean=module.mean, std=module.std)
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate)
    speed = speed_settings(config)
    trainer = build_trainer(speed, devices=1)
    batches = trainer.predict(module, dataloaders=loader)
    file_of = dict(zip(index.image_ids.tolist(), index.file_names))
    out.parent.mkdir(parents=True, exist_ok=True)
    records = []
    for batch in batches:
        for item in batch:
            item = dict(item)
            item["file_name"] = file_of[item["image_id"]]
            if "mask" in item:
                mask_path = mask_file(out, item["file_name"])
                mask_path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(item.pop("mask")).save(mask_path)
                item["mask_file"] = str(mask_path)
            records.append(item)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(json.dumps({"run_id": run_id, "task": config.task.name, "predictions": records}, indent=1))
    partial.replace(out)
    return out


def mask_folder(out: Path) -> Path:
    """Where the masks of the predictions written to ``out`` go: beside it, named after it."""
    return out.with_suffix("")


def mask_file(out: Path, file_name: str) -> Path:
    """A mask's file: the image's path relative to the predicted folder, plus ``.png``.

    The whole relative path is kept (``a/x.jpg`` and ``b/x.jpg`` are different images), and
    so is the image's own suffix (``x.jpg`` and ``x.png`` are too).
    """
    relative = Path(file_name)
    return mask_folder(out) / relative.parent / (relative.name + ".png")


def refuse_to_overwrite(out: Path) -> None:
    """Predictions never replace earlier ones: refuse an ``out`` (or its mask folder) already there."""
    masks = mask_folder(out)
    for taken in (out, masks):
        if taken.exists() and (taken.is_file() or any(taken.iterdir())):
            raise TrainingError(
                f"{taken} already exists: predictions never write over earlier ones; "
                "choose another --out, or move it away first"
            )
