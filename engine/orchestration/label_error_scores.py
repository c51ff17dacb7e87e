"""A trained run's predictions on the images it did not train on, and the errors.json they make.

Both ways of finding label errors come here: each fold run of ``lightbox label-errors``
scores its held-out fold, and ``--run RUN_ID`` scores a finished run's validation split.
The model passes over the images once, through the evaluation's own collection code
(segmentation's regions: :mod:`engine.orchestration.label_error_regions`);
:mod:`engine.metrics.label_quality` turns the predictions into scores, and the entries
keep the ids of the COCO file the images came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.orchestration.errors import TrainingError

ERRORS_VERSION = 1
#: tasks whose label errors are found
LABEL_ERROR_TASKS = ("classification", "detection", "segmentation")


class FoldRunFailed(TrainingError):
    """A fold's training run did not finish: the search for label errors stops there."""


def check_task(task: str) -> None:
    if task not in LABEL_ERROR_TASKS:
        raise TrainingError(f"task.name: label errors are found for {', '.join(LABEL_ERROR_TASKS)} runs, not {task}")


@dataclass
class HeldOut:
    """What one model predicted on images it never trained on, beside their given labels."""

    task: str
    category_ids: list[int]
    class_names: list[str]
    # classification: one row per image; segmentation: one row per annotated region
    image_ids: list[int] = field(default_factory=list)
    file_names: list[str] = field(default_factory=list)
    probabilities: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    annotation_ids: list[int | None] = field(default_factory=list)
    # detection: one dict per image (detection_suspects' input)
    images: list[dict[str, Any]] = field(default_factory=list)

    def extend(self, other: HeldOut) -> None:
        if (other.category_ids, other.class_names) != (self.category_ids, self.class_names):
            raise TrainingError(
                f"the fold runs disagree on the classes ({self.category_ids} and {other.category_ids}): "
                "every fold must see the dataset's whole category list"
            )
        for name in ("image_ids", "file_names", "probabilities", "labels", "annotation_ids", "images"):
            getattr(self, name).extend(getattr(other, name))


def predict_held_out(config: Any, checkpoint: Path) -> HeldOut:
    """``checkpoint``'s predictions over the validation split of ``config``'s data."""
    import torch

    from engine.orchestration.builders import build_datamodule
    from engine.orchestration.evaluate import follow_data_normalisation, load_module
    from engine.orchestration.evaluation_run import collect, split_datasets
    from engine.orchestration.speed import speed_settings

    check_task(config.task.name)
    speed = speed_settings(config)
    datamodule = build_datamodule(config, speed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    module = follow_data_normalisation(load_module(config, checkpoint), speed.normalize_on_device).to(device)
    (dataset,) = split_datasets(datamodule, "val")
    category_ids = [int(c) for c in datamodule.train_dataset.index.category_ids.tolist()]
    class_names = [str(module.id2label[i]) for i in range(module.num_labels)]
    if config.task.name == "segmentation":
        from engine.orchestration.evaluation_collect import segmentation_class_ids
        from engine.orchestration.label_error_regions import add_region_predictions

        held_out = HeldOut("segmentation", segmentation_class_ids(category_ids), class_names)
        add_region_predictions(held_out, module, datamodule, dataset, device)
        return held_out
    collector = collect(module, datamodule, [dataset], category_ids, device)
    held_out = HeldOut(config.task.name, category_ids, class_names)
    index = dataset.index
    row_of = {int(i): r for r, i in enumerate(index.image_ids.tolist())}
    rows = [row_of[i] for i in collector.image_ids]
    held_out.image_ids = [int(i) for i in collector.image_ids]
    held_out.file_names = [index.file_names[r] for r in rows]
    usable = index.valid_annotation_mask() & ~index.ann_iscrowd
    if config.task.name == "classification":
        # The collector keeps each batch's probabilities and given labels (model order) as it saw them.
        probabilities, labels = collector.classification_rows()
        held_out.probabilities = list(probabilities)
        held_out.labels = list(labels)
        held_out.annotation_ids = [
            deciding_annotation(index, usable, r, category_ids[int(label)]) for r, label in zip(rows, labels)
        ]
    else:
        held_out.images = detection_images(index, usable, rows, collector.detections, category_ids)
    return held_out


def deciding_annotation(index: Any, usable: np.ndarray, row: int, category_id: int) -> int | None:
    """The annotation an image's class comes from: its largest usable one of that class."""
    anns = [a for a in index.annotation_rows(row) if usable[a] and int(index.ann_category_id[a]) == category_id]
    if not anns:
        return None
    area = [index.ann_area[a] if not np.isnan(index.ann_area[a]) else np.prod(index.ann_bbox[a, 2:]) for a in anns]
    return int(index.ann_ids[anns[int(np.argmax(area))]])


def detection_images(
    index: Any, usable: np.ndarray, rows: list[int], detections: list[dict[str, Any]], category_ids: list[int]
) -> list[dict[str, Any]]:
    """:func:`engine.metrics.label_quality.detection_suspects`' input: given boxes and predictions per image."""
    label_of = {c: k for k, c in enumerate(category_ids)}
    predicted: dict[int, list[dict[str, Any]]] = {}
    for det in detections:
        predicted.setdefault(int(det["image_id"]), []).append(det)
    images = []
    for row in rows:
        anns = [
            a
            for a in index.annotation_rows(row)
            if usable[a] and int(index.ann_category_id[a]) in label_of and not np.isnan(index.ann_bbox[a, 0])
        ]
        image_id = int(index.image_ids[row])
        preds = predicted.get(image_id, [])
        images.append(
            {
                "image_id": image_id,
                "file_name": index.file_names[row],
                "annotation_ids": [int(index.ann_ids[a]) for a in anns],
                "boxes": np.array([index.ann_bbox[a] for a in anns], np.float64).reshape(-1, 4),
                "labels": np.array([label_of[int(index.ann_category_id[a])] for a in anns], np.int64),
                "pred_boxes": np.array([p["bbox"] for p in preds], np.float64).reshape(-1, 4),
                "pred_labels": np.array([label_of[int(p["category_id"])] for p in preds], np.int64),
                "pred_scores": np.array([p["score"] for p in preds], np.float64),
            }
        )
    return images


def score(held_out: HeldOut, ranking: str = "self_confidence") -> list[dict[str, Any]]:
    """Every annotation (and suspected missing object) of the held-out images, most suspect first."""
    from engine.metrics.label_quality import classification_suspects, detection_suspects, segmentation_suspects

    if held_out.task in ("classification", "segmentation"):
        k = len(held_out.category_ids)
        probabilities = np.stack(held_out.probabilities) if held_out.probabilities else np.zeros((0, k))
        suspects = classification_suspects if held_out.task == "classification" else segmentation_suspects
        return suspects(
            probabilities,
            np.asarray(held_out.labels, np.int64),
            image_ids=held_out.image_ids,
            file_names=held_out.file_names,
            annotation_ids=held_out.annotation_ids,
            class_ids=held_out.category_ids,
            class_names=held_out.class_names,
            ranking=ranking,
        )
    return detection_suspects(held_out.images, class_ids=held_out.category_ids, class_names=held_out.class_names)


def write_errors(
    out: str | Path,
    held_out: HeldOut,
    entries: list[dict[str, Any]],
    *,
    source: dict[str, Any],
    data: dict[str, Any],
    ranking: str,
) -> Path:
    """errors.json, whole or not at all: who scored what, and every entry, most suspect first."""
    kinds: dict[str, int] = {}
    for entry in entries:
        if entry["issue"]:
            kinds[entry["kind"]] = kinds.get(entry["kind"], 0) + 1
    document = {
        "version": ERRORS_VERSION,
        "task": held_out.task,
        "source": source,
        "data": {**data, "num_images": len(set(held_out.image_ids))},
        "ranking": ranking if held_out.task != "detection" else "objectlab",
        "classes": [{"id": c, "name": n} for c, n in zip(held_out.category_ids, held_out.class_names)],
        "issues": kinds,
        "entries": entries,
    }
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(document, indent=1, allow_nan=False))
    partial.replace(path)
    return path


def summary_lines(path: Path, entries: list[dict[str, Any]], limit: int = 10) -> list[str]:
    """What the command prints: how many suspects of each kind, and the first few."""
    flagged = [e for e in entries if e["issue"]]
    lines = [f"{len(flagged)} suspected label errors among {len(entries)} entries, written to {path}"]
    for entry in flagged[:limit]:
        given = entry["given"]["name"] if entry["given"] else "-"
        fix = entry["suggested"]["name"] if entry["suggested"] else "remove"
        ann = entry["annotation_id"] if entry["annotation_id"] is not None else "-"
        lines.append(
            f"  {entry['score']:.3f}  {entry['kind']:<17} image {entry['image_id']} ({entry['file_name']}) "
            f"annotation {ann}: {given} -> {fix}"
        )
    return lines
