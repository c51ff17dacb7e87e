"""Predictions to draw over images: a results file read, matched to the images it is about (no Qt).

Two files come from ``lightbox predict``: an export writes COCO results (a JSON list, one
record per box, class or mask, each naming its ``file_name``); a run id writes a document
``{"run_id", "task", "predictions": [...]}`` whose segmentation masks are class-map PNGs
beside it. Both become :class:`Prediction` records, grouped per image file.

:func:`prepare_predictions` (slow: a worker thread) matches the predicted files to the open
dataset's images, by path, so ground truth and predictions are drawn together; when some
are not in the dataset, every predicted image is opened as a plain image list instead
(``image_list_session``: no annotations, the predictions' categories).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.coco_index import CocoIndex
from engine.data.folders import DatasetFolder, Split

from .session import DatasetSession, ImageRef

TASKS = ("classification", "detection", "segmentation")
IMAGE_LIST_LAYOUT = "image list"
IMAGE_LIST_SPLIT = "images"


class PredictionsError(ValueError):
    """A results file that cannot be drawn; the message names the file and the record."""


@dataclass(frozen=True)
class Prediction:
    """One predicted box, class or mask of one image."""

    name: str  # category name
    score: float
    category_id: int | None = None
    bbox: tuple[float, float, float, float] | None = None  # x, y, w, h in the image's pixels
    rle: dict | None = None  # COCO RLE (compressed counts), the image's size
    # Set when the predictions come from a run's evaluation: "tp", "fp" (with its reason), or "fn"
    # for a ground-truth box (its score: that of the prediction that found it, -inf when none did).
    outcome: str | None = None
    reason: str | None = None


@dataclass
class PredictionSet:
    """A results file read: the task, and the predictions of each image (by absolute path)."""

    path: Path
    task: str
    by_file: dict[Path, list[Prediction]] = field(default_factory=dict)
    categories: dict[int, str] = field(default_factory=dict)  # category id -> name

    @property
    def count(self) -> int:
        return sum(len(p) for p in self.by_file.values())


OUTCOME_WORDS = {"tp": "true positive", "fp": "false positive", "fn": "missed ground truth"}


def describe(prediction: Prediction) -> str:
    """A prediction's fields, as the Image view's info panel lists them."""
    if prediction.outcome == "fn":
        return f"missed ground truth (no prediction above the threshold found it)\ncategory: {prediction.name}"
    lines = [
        "prediction (dashed)"
        + (f": {OUTCOME_WORDS[prediction.outcome]}" if prediction.outcome in OUTCOME_WORDS else "")
        + (f" ({prediction.reason})" if prediction.reason else ""),
        f"category: {prediction.name}"
        + (f" (id {prediction.category_id})" if prediction.category_id is not None else ""),
        f"score: {prediction.score:.3f}",
    ]
    if prediction.bbox is not None:
        lines.append("bbox: x {:.1f}, y {:.1f}, w {:.1f}, h {:.1f}".format(*prediction.bbox))
    if prediction.rle is not None:
        lines.append("segmentation: RLE (predicted mask)")
    return "\n".join(lines)


def above(predictions: list[Prediction], min_score: float) -> list[Prediction]:
    """The predictions scored at least ``min_score`` (a ground-truth box's "fn" entry is no prediction)."""
    return [p for p in predictions if p.score >= min_score and p.outcome != "fn"]


def missed(predictions: list[Prediction], min_score: float) -> list[Prediction]:
    """The ground-truth boxes no prediction scored at least ``min_score`` found."""
    return [p for p in predictions if p.outcome == "fn" and p.score < min_score]


# ---------------------------------------------------------------------- reading
def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise PredictionsError(f"{path}: cannot read the results file: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise PredictionsError(f"{path}: not a JSON results file: {exc}") from None


def _task_of(records: list[dict]) -> str:
    if any("bbox" in r for r in records):
        return "detection"
    if any("segmentation" in r for r in records):
        return "segmentation"
    return "classification"


def _number(path: Path, k: int, record: dict, key: str) -> float:
    value = record.get(key)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise PredictionsError(f"{path}: result {k + 1} has no numeric '{key}'")
    return float(value)


def _file_of(path: Path, k: int, record: dict, root: Path | None, files_by_id: dict[int, Path]) -> Path:
    name = record.get("file_name")
    if isinstance(name, str) and name:
        file = Path(name)
        return Path(os.path.abspath(file if file.is_absolute() or root is None else root / file))
    image_id = record.get("image_id")
    if isinstance(image_id, int) and image_id in files_by_id:
        return files_by_id[image_id]
    raise PredictionsError(f"{path}: result {k + 1} names no file_name (and its image_id matches no image given)")


def _rle_of(path: Path, k: int, segmentation: Any) -> dict:
    if not isinstance(segmentation, dict) or "counts" not in segmentation or "size" not in segmentation:
        raise PredictionsError(f"{path}: result {k + 1}: 'segmentation' is not an RLE (size and counts)")
    return segmentation


def _class_map_predictions(path: Path, k: int, record: dict, class_names: list[str]) -> list[Prediction]:
    """A run's segmentation record: its class-map PNG as one mask per class present (label 0 is background)."""
    from PIL import Image
    from pycocotools import mask as mask_utils

    mask_file = record.get("mask_file")
    if not isinstance(mask_file, str):
        raise PredictionsError(f"{path}: prediction {k + 1} has neither a mask_file nor a segmentation")
    try:
        classes = np.asarray(Image.open(mask_file))
    except OSError as exc:
        raise PredictionsError(f"{mask_file}: cannot read the predicted mask: {exc}") from None
    found = []
    for label in np.unique(classes).tolist():
        if label == 0:
            continue
        rle = mask_utils.encode(np.asfortranarray((classes == label).astype(np.uint8)))
        rle["counts"] = rle["counts"].decode("ascii")
        name = class_names[label - 1] if label - 1 < len(class_names) else f"class {label}"
        # A run's class map carries no confidence: every mask counts as certain.
        found.append(Prediction(name, 1.0, rle=rle))
    return found


def load_predictions(
    path: str | Path,
    *,
    categories: dict[int, str] | None = None,
    image_root: str | Path | None = None,
    images: list[Path] | None = None,
    class_names: list[str] | None = None,
) -> PredictionSet:
    """Read a results file of ``lightbox predict``.

    ``categories`` (id -> name) names the categories (the export's; else the dataset's);
    ``image_root`` is where relative file names lie; ``images`` are the predicted files in
    the predictor's order (image id ``k`` is ``images[k - 1]``): each gets an entry, with
    or without predictions; ``class_names`` names a run's segmentation labels 1.. .
    """
    path = Path(path)
    doc = _read_json(path)
    root = Path(image_root) if image_root is not None else None
    names = dict(categories or {})
    files_by_id = {k: Path(os.path.abspath(p)) for k, p in enumerate(images or [], start=1)}
    if isinstance(doc, list):
        records, task, run_doc = doc, _task_of(doc), False
    elif isinstance(doc, dict) and isinstance(doc.get("predictions"), list):
        records, task, run_doc = doc["predictions"], str(doc.get("task", "")), True
    else:
        raise PredictionsError(f"{path}: not a results file of 'lightbox predict' (a list of results expected)")
    if task not in TASKS:
        raise PredictionsError(f"{path}: predictions of a '{task}' model cannot be drawn (only {', '.join(TASKS)})")
    found = PredictionSet(path, task, {file: [] for file in files_by_id.values()}, names)
    for k, record in enumerate(records):
        if not isinstance(record, dict):
            raise PredictionsError(f"{path}: result {k + 1} is not a JSON object")
        file = _file_of(path, k, record, root, files_by_id)
        items = found.by_file.setdefault(file, [])
        if run_doc and task == "segmentation":
            items.extend(_class_map_predictions(path, k, record, class_names or []))
            continue
        score = _number(path, k, record, "score")
        category_id = record.get("category_id")
        name = record.get("label_name") if run_doc else None
        if name is None and isinstance(category_id, int):
            name = names.get(category_id) or record.get("label") or f"category {category_id}"
        if name is None:
            raise PredictionsError(f"{path}: result {k + 1} names no category_id")
        if isinstance(category_id, int):
            names.setdefault(category_id, str(name))
        bbox = rle = None
        if task == "detection":
            box = record.get("bbox")
            if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
                raise PredictionsError(f"{path}: result {k + 1}: 'bbox' must be [x, y, width, height]")
            bbox = (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
        elif task == "segmentation":
            rle = _rle_of(path, k, record.get("segmentation"))
        items.append(Prediction(str(name), score, category_id if isinstance(category_id, int) else None, bbox, rle))
    return found


# ---------------------------------------------------------------------- matching
@dataclass
class PreparedPredictions:
    """Predictions ready to draw: over which session's images, and which image has which."""

    predictions: PredictionSet
    session: DatasetSession  # the open dataset, or a plain image list of the predicted files
    refs: list[ImageRef]  # the predicted images, in the predictor's order
    by_ref: dict[ImageRef, list[Prediction]]
    on_dataset: bool  # drawn over the dataset's images (with their ground truth)
    note: str = ""  # what the user should know (images not in the dataset, categories not in it)


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def match_to_dataset(files: list[Path], session: DatasetSession) -> dict[Path, ImageRef]:
    """The dataset image each of ``files`` is (by its real path); files not in the dataset are left out."""
    rows_by_split: dict[str, dict[str, int]] = {}
    dirs = [(name, _real(session.image_dir(name))) for name in session.splits]
    found: dict[Path, ImageRef] = {}
    for file in files:
        real = _real(file)
        for split, folder in dirs:
            if not real.is_relative_to(folder):
                continue
            if split not in rows_by_split:
                names = session.index(split).file_names
                rows_by_split[split] = {os.path.normpath(n): row for row, n in enumerate(names)}
            row = rows_by_split[split].get(str(real.relative_to(folder)))
            if row is not None:
                found[file] = ImageRef(split, row)
                break
    return found


def image_list_session(files: list[Path], categories: dict[int, str], source: Path) -> DatasetSession:
    """A session over plain image files (ids 1.. in order, no annotations); ``source`` names where
    they came from (the results file). Unreadable files are kept, sized 1x1: the viewer says why."""
    from engine.data.images import image_size

    root = Path(os.path.commonpath([str(f.parent) for f in files])) if files else source.parent
    records = []
    for k, file in enumerate(files, start=1):
        try:
            width, height = image_size(file)
        except Exception:  # unreadable: the viewer shows the decoder's reason when it opens it
            width, height = 1, 1
        records.append({"id": k, "file_name": str(file.relative_to(root)), "width": width, "height": height})
    cats = [{"id": cid, "name": name} for cid, name in sorted(categories.items())]
    index = CocoIndex.from_dict({"images": records, "annotations": [], "categories": cats})
    folder = DatasetFolder(root, IMAGE_LIST_LAYOUT, {IMAGE_LIST_SPLIT: Split(IMAGE_LIST_SPLIT, source, root)})
    return DatasetSession(folder, {IMAGE_LIST_SPLIT: index}, [], checked_files=True)


def prepare_predictions(
    path: str | Path,
    session: DatasetSession | None,
    *,
    categories: dict[int, str] | None = None,
    image_root: str | Path | None = None,
    images: list[Path] | None = None,
    unreadable: list[Path] | None = None,
) -> PreparedPredictions:
    """Read ``path`` and match it to ``session`` (slow: call it off the GUI thread).

    ``unreadable``: images the predictor skipped (the dialog has named them): left out, so the
    images shown are the ones it predicted and a plain image list opens on one that can be seen.
    """
    dataset_categories: dict[int, str] = {}
    class_names: list[str] = []
    if session is not None and session.folder.layout != IMAGE_LIST_LAYOUT:
        for split in session.splits:
            index = session.index(split)
            for cid, name in zip(index.category_ids.tolist(), index.category_names):
                dataset_categories.setdefault(int(cid), name)
        class_names = session.category_names()
    names = {**dataset_categories, **(categories or {})}
    found = load_predictions(path, categories=names, image_root=image_root, images=images, class_names=class_names)
    skipped = {Path(os.path.abspath(f)) for f in unreadable or []}
    files = [f for f in found.by_file if f not in skipped or found.by_file[f]] or list(found.by_file)
    if not files:
        raise PredictionsError(f"{found.path}: no predicted image (the results file is empty and no images were given)")
    matched = match_to_dataset(files, session) if dataset_categories else {}
    if session is not None and dataset_categories and len(matched) == len(files):
        refs = [matched[f] for f in files]
        by_ref = {matched[f]: found.by_file[f] for f in files}
        foreign = sorted({p.name for items in by_ref.values() for p in items} - set(session.category_names()))
        note = f"The predictions name categories this dataset does not have: {', '.join(foreign)}" if foreign else ""
        return PreparedPredictions(found, session, refs, by_ref, True, note)
    listed = image_list_session(files, found.categories, found.path)
    refs = [ImageRef(IMAGE_LIST_SPLIT, row) for row in range(len(files))]
    by_ref = {ref: found.by_file[f] for ref, f in zip(refs, files)}
    if session is None or not dataset_categories:
        note = "No dataset is open: the predicted images are shown as a plain image list (no ground truth)."
    else:
        outside = [f for f in files if f not in matched]
        note = (
            f"{len(outside)} of {len(files)} predicted images are not in {session.root} "
            f"(e.g. {outside[0]}): all are shown as a plain image list, without ground truth; "
            "the dataset is one click away in File ▸ Open recent."
        )
    return PreparedPredictions(found, listed, refs, by_ref, False, note)
