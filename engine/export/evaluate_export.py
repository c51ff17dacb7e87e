"""``lightbox eval EXPORT_DIR --data DIR``: an exported model's evaluation report on labelled data.

The data is read as training reads a dataset folder (any layout ``engine.data.folders`` knows),
through the export's own pre-processing, and run with one of its backends (ONNX or the
Hugging Face folder). The report has the format of a run's (``engine.metrics.report``) and
goes to a fresh folder: an earlier evaluation is never written over.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from .manifest import ExportError, read_manifest

EVALUATIONS_FOLDER = "evaluations"


def choose_split(folder: Any, split: str | None) -> Any:
    """The split of a dataset folder to evaluate: the one named, else the only one, else validation."""
    splits = folder.splits
    if split is not None:
        if split not in splits:
            raise ExportError(f"{folder.root}: no split {split!r} (found {', '.join(sorted(splits))})")
        return splits[split]
    if len(splits) == 1:
        return next(iter(splits.values()))
    if "val" in splits:
        return splits["val"]
    raise ExportError(f"{folder.root}: several splits ({', '.join(sorted(splits))}); choose one with --split")


def export_categories(manifest: dict[str, Any]) -> tuple[list[int], list[str]]:
    """(dataset category id of each model label, name of each model class) from the manifest.

    Segmentation's class 0 is background, with no category id.
    """
    cat_of = {int(k): int(v) for k, v in manifest["label_to_category_id"].items()}
    names = {int(k): str(v) for k, v in manifest["id2label"].items()}
    category_ids = [cat_of[label] for label in sorted(cat_of)]
    return category_ids, [names[label] for label in sorted(names)]


def fresh_folder(workspace: Path, export_dir: Path) -> Path:
    """A new folder under the workspace's evaluations/, named after the export and the time."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = workspace / EVALUATIONS_FOLDER / f"{export_dir.resolve().name}-{stamp}"
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder


def labelled_dataset(manifest: dict[str, Any], chosen: Any, category_ids: list[int]) -> Any:
    """The split's images with their labels, as the export's model numbers its classes."""
    from engine.data.coco_index import CocoIndex
    from engine.tasks.registry import get_task

    names = export_categories(manifest)[1]
    class_names = names[1:] if manifest["task"] == "segmentation" else names
    reference = CocoIndex.from_dict(
        {
            "images": [],
            "annotations": [],
            "categories": [{"id": c, "name": n} for c, n in zip(category_ids, class_names)],
        }
    )
    if reference.category_ids.tolist() != category_ids:
        raise ExportError("the export's labels are not in category-id order; it cannot be evaluated on new data")
    pre = manifest["preprocessing"]
    dataset_class = get_task(manifest["task"]).datamodule_class.dataset_class
    index = CocoIndex.load(chosen.annotation_file)
    unknown = sorted(set(index.category_ids.tolist()) - set(category_ids))
    if unknown:
        raise ExportError(
            f"{chosen.annotation_file}: categories {unknown[:10]} are not among the export's "
            f"({', '.join(f'{c} {n}' for c, n in zip(category_ids, class_names))})"
        )
    return dataset_class(
        chosen.image_dir,
        index=index,
        train=False,
        image_size=pre.get("image_size"),
        transforms=pre["transforms"],
        categories_from=reference,
    )


def evaluate_export(
    export_dir: str | Path,
    data: str | Path,
    *,
    out: str | Path | None = None,
    split: str | None = None,
    backend: str = "onnx",
    batch_size: int = 8,
    workspace: str | Path | None = None,
) -> tuple[dict[str, Any], Path]:
    """Evaluate an export on a labelled dataset folder: (report, the evaluation.json written)."""
    from engine.data.folders import find_splits
    from engine.metrics.report import REPORT_FILE, build_report
    from engine.orchestration.evaluation_collect import (
        REPORT_TASKS,
        Collector,
        detection_ground_truth,
        report_classes,
    )
    from engine.orchestration.evaluation_run import ground_truth_of, save_report
    from engine.workspace import default_workspace

    from .predict import load_backend
    from .runtime import batches, collate_for, fit_to_input

    export_dir = Path(export_dir)
    manifest = read_manifest(export_dir)
    task = manifest["task"]
    if task not in REPORT_TASKS:
        raise ExportError(f"{export_dir}: a {task} export cannot be evaluated")
    folder = Path(out) if out is not None else fresh_folder(Path(workspace or default_workspace()), export_dir)
    if (folder / REPORT_FILE).exists():
        raise ExportError(f"{folder / REPORT_FILE} already exists: choose another --out (evaluations are kept)")
    chosen = choose_split(find_splits(data), split)
    category_ids, class_names = export_categories(manifest)
    dataset = labelled_dataset(manifest, chosen, category_ids)
    run = load_backend(export_dir, manifest, backend)
    post = manifest["postprocessing"]
    collector = Collector(
        task,
        category_ids,
        ignore_index=post.get("ignore_index", 255),
        top_k=int(post.get("top_k", 100)),
        min_score=float(post.get("min_score", 0.0)),
    )
    file_names = dict(zip(dataset.index.image_ids.tolist(), dataset.index.file_names))
    collate = collate_for(task, manifest["preprocessing"])
    with torch.inference_mode():
        for batch in batches(dataset, collate, batch_size, range(len(dataset))):
            size = tuple(batch["pixel_values"].shape[-2:])
            batch = fit_to_input(batch, task, manifest, file_names)
            outputs = [o.float() for o in run(batch["pixel_values"])]
            if task == "segmentation":  # logits of a padded canvas: the images' own part
                outputs = [outputs[0][..., : size[0], : size[1]]]
            collector.add(batch, outputs)
    ground_truth = ground_truth_of([dataset])
    if task == "detection":
        ground_truth = detection_ground_truth(ground_truth, category_ids)
    report = build_report(
        task=task,
        source={"run_id": manifest.get("run_id"), "export_dir": str(export_dir.resolve()), "checkpoint": None},
        data={"path": str(Path(data).resolve()), "split": _report_split(chosen.name), "num_images": len(dataset)},
        classes=report_classes(task, category_ids, class_names),
        figures=collector.figures(ground_truth, class_names),
    )
    return report, save_report(report, folder)


def _report_split(name: str) -> str:
    """The report's split: a folder's train or val split by name; any other (test, a single file): all."""
    return name if name in ("train", "val") else "all"
