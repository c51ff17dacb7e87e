"""The evaluation report of a run: its model over a split, once, saved with the run.

``lightbox eval RUN_ID`` and the end of training both come here: one pass of the model over
the split's images (validation transforms, no augmentation), the figures of
``engine.metrics``' report modules, then ``evaluation.json`` (and plots) in the run folder's
``evaluation/``, logged to the run as MLflow metrics and artifacts.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch

from engine.metrics.report import REPORT_FILE, SPLITS, build_report, tracking_metrics, write_report
from engine.orchestration.errors import TrainingError
from engine.orchestration.evaluation_collect import (
    REPORT_TASKS,
    Collector,
    detection_ground_truth,
    report_classes,
)

REPORT_FOLDER = "evaluation"


def split_datasets(datamodule: Any, split: str) -> list[Any]:
    """The datasets of ``split`` (val, train or all), each with the validation transforms."""
    if split not in SPLITS:
        raise TrainingError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    datamodule.setup("validate")
    if split == "val":
        return [datamodule.val_dataset]
    train = datamodule.train_dataset
    # The training images as validation sees images: the same dataset class, no augmentation.
    train_as_val = datamodule._dataset(datamodule.train_image_dir, train.index, False, None)
    datasets = [train_as_val] if split == "train" else [train_as_val, datamodule.val_dataset]
    if split == "all":
        shared = set(train.index.image_ids.tolist()) & set(datamodule.val_dataset.index.image_ids.tolist())
        if shared:
            raise TrainingError(
                f"--split all: the training and validation files share image ids ({sorted(shared)[:5]}); "
                "evaluate --split train and --split val separately"
            )
    return datasets


def ground_truth_of(datasets: list[Any]) -> dict[str, Any]:
    """One COCO dict over the evaluated images of ``datasets`` (annotation ids made unique if needed)."""
    merged: dict[str, Any] = {"images": [], "annotations": [], "categories": []}
    for dataset in datasets:
        doc = dataset.index.to_coco_dict()
        kept = {int(i) for i in dataset.index.image_ids[dataset.rows].tolist()}
        merged["images"] += [image for image in doc["images"] if int(image["id"]) in kept]
        merged["annotations"] += [a for a in doc["annotations"] if int(a["image_id"]) in kept]
        merged["categories"] = merged["categories"] or doc["categories"]
    ids = [a["id"] for a in merged["annotations"]]
    if len(set(ids)) != len(ids):
        for k, ann in enumerate(merged["annotations"], start=1):
            ann["id"] = k
    return merged


def model_outputs(module: Any, task: str, batch: dict[str, Any]) -> tuple[torch.Tensor, ...]:
    """A training module's raw outputs for a batch, as an export gives them."""
    if task == "detection":
        out = module(batch["pixel_values"], batch.get("pixel_mask"))
        return out.logits, out.pred_boxes
    return (module(batch["pixel_values"]),)


@torch.inference_mode()
def collect(module: Any, datamodule: Any, datasets: list[Any], category_ids: list[int], device: Any) -> Collector:
    """One pass of ``module`` over ``datasets`` on ``device``; the module's train/eval mode is restored."""
    from lightning.pytorch.utilities import move_data_to_device
    from torch.utils.data import DataLoader

    task = module.task
    collector = Collector(task, category_ids, ignore_index=getattr(module, "ignore_index", 255))
    was_training = module.training
    module.eval()
    try:
        for dataset in datasets:
            loader = DataLoader(
                dataset,
                batch_size=datamodule.batch_size,
                collate_fn=datamodule.collate(),
                num_workers=datamodule.num_workers,
            )
            for batch in loader:
                batch = module.on_after_batch_transfer(move_data_to_device(batch, device), 0)
                collector.add(batch, model_outputs(module, task, batch))
    finally:
        module.train(was_training)
    return collector


def build_run_report(
    module: Any,
    datamodule: Any,
    config: Any,
    split: str,
    *,
    run_id: str | None,
    checkpoint: str | Path | None,
    device: Any = None,
) -> dict[str, Any]:
    """The report of ``module`` over ``split`` of the run's data."""
    task = config.task.name
    if task not in REPORT_TASKS:
        raise TrainingError(f"an evaluation report covers {', '.join(REPORT_TASKS)} runs, not {task}")
    datasets = split_datasets(datamodule, split)
    category_ids = [int(c) for c in datamodule.train_dataset.index.category_ids.tolist()]
    class_names = [str(module.id2label[i]) for i in range(module.num_labels)]
    device = device if device is not None else next(module.parameters()).device
    collector = collect(module, datamodule, datasets, category_ids, device)
    ground_truth = ground_truth_of(datasets)
    if task == "detection":
        ground_truth = detection_ground_truth(ground_truth, category_ids)
    return build_report(
        task=task,
        source={"run_id": run_id, "export_dir": None, "checkpoint": str(checkpoint) if checkpoint else None},
        data={"path": str(config.data.path), "split": split, "num_images": len(ground_truth["images"])},
        classes=report_classes(task, category_ids, class_names),
        figures=collector.figures(ground_truth, class_names),
    )


def save_report(report: dict[str, Any], folder: Path, tracker: Any = None) -> Path:
    """Write the report and its plots to ``folder``; with a ``tracker`` (a run logger: ``log_metrics``
    and ``log_artifact``), log its figures and files to the run under ``evaluation/``."""
    from engine.metrics.report_plots import write_plots

    path = write_report(report, folder)
    files = [path, *write_plots(report, folder)]
    if tracker is not None:
        tracker.log_metrics(tracking_metrics(report), 0)
        for file in files:
            tracker.log_artifact(file, REPORT_FOLDER)
    return path


class ClientTracker:
    """Logs to a finished MLflow run through the client (a training run's logger is closed by then)."""

    def __init__(self, run_id: str, tracking_uri: str) -> None:
        from engine.tracking.client import client

        self.run_id = run_id
        self.client = client(tracking_uri)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(key, float(value), now, step) for key, value in metrics.items()]
        for start in range(0, len(batch), 1000):  # MLflow takes at most 1000 metrics a call
            self.client.log_batch(self.run_id, metrics=batch[start : start + 1000])

    def log_artifact(self, path: Path, artifact_path: str) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)


def tracker_for(run_id: str, tracking_uri: str | None) -> ClientTracker | None:
    """A tracker for an MLflow run; None without MLflow or where the run is not in MLflow."""
    from engine.tracking.client import mlflow_available

    if not tracking_uri or not mlflow_available():
        return None
    try:
        tracker = ClientTracker(run_id, tracking_uri)
        tracker.client.get_run(run_id)
    except Exception as exc:  # the run folder's copy still stands; say why MLflow has none
        print(f"evaluation not logged to MLflow run {run_id}: {exc}", file=sys.stderr)
        return None
    return tracker


def run_report_path(run_dir: Path) -> Path | None:
    path = run_dir / REPORT_FOLDER / REPORT_FILE
    return path if path.is_file() else None
