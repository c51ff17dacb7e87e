"""Dataset health check: every problem in a COCO dataset folder, not only the first.

The checks run on the index's arrays (vectorised), then on the image files in a
thread pool (header and tail only by default; ``deep=True`` decodes every image).
Training runs the same checks and applies a policy: ``skip`` drops what is
broken and reports it, ``refuse`` stops with the full list.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import images as image_io
from .coco_index import SEG_POLYGON, SEG_RLE, CocoIndex
from .folders import find_splits
from .paths import UnsafeFileName, resolve_image_path
from .problems import CocoFormatError, DatasetError, Problem, Severity

# Boxes may overrun the image by rounding; beyond this many pixels it is a problem.
BOX_TOLERANCE_PX = 1.0

# Problems that make an image unusable (the 'skip' policy drops the image).
IMAGE_LEVEL_CODES = {
    "missing_file",
    "unsafe_file_name",
    "unreadable_image",
    "truncated_image",
    "size_mismatch",
    "bad_image_size",
    "duplicate_image_id",
}
# Problems after which an annotation is dropped.
ANNOTATION_LEVEL_CODES = {
    "unknown_image",
    "unknown_category",
    "bbox_nonpositive",
    "bad_bbox",
    "bad_polygon",
    "rle_size_mismatch",
    "duplicate_annotation_id",
    "bad_segmentation",
}

ProgressFn = Callable[[int, int], None]


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """'1 image', '2 images', '1,000 images' (``nouns`` for irregular plurals)."""
    return f"{n:,} {noun if n == 1 else (nouns or noun + 's')}"


@dataclass
class SplitSummary:
    name: str
    annotation_file: str
    image_dir: str
    images: int = 0
    annotations: int = 0
    categories: int = 0
    class_counts: dict[str, int] = field(default_factory=dict)


@dataclass
class HealthReport:
    root: str
    layout: str | None
    problems: list[Problem]
    splits: dict[str, SplitSummary] = field(default_factory=dict)
    unreadable: bool = False  # no usable annotation file at all
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems and not self.unreadable

    @property
    def exit_code(self) -> int:
        return 2 if self.unreadable else (1 if self.problems else 0)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.problems:
            out[p.code] = out.get(p.code, 0) + 1
        return out

    def to_text(self, limit: int | None = None) -> str:
        lines = [f"Dataset: {self.root}" + (f" ({self.layout} layout)" if self.layout else "")]
        for s in self.splits.values():
            classes = ", ".join(f"{k} {v}" for k, v in s.class_counts.items())
            lines.append(
                f"  {s.name}: {plural(s.images, 'image')}, {plural(s.annotations, 'annotation')}, "
                f"{plural(s.categories, 'category', 'categories')} ({s.annotation_file})"
            )
            if classes:
                lines.append(f"    classes: {classes}")
        shown = self.problems if limit is None else self.problems[:limit]
        for p in shown:
            lines.append(str(p))
        if limit is not None and len(self.problems) > limit:
            more = len(self.problems) - limit
            lines.append(f"... and {more} more {'problem' if more == 1 else 'problems'}")
        if self.cancelled:
            lines.append("check cancelled before it finished")
        n_err = sum(p.severity == "error" for p in self.problems)
        n_warn = len(self.problems) - n_err
        lines.append("OK: no problems found" if self.ok else f"{plural(n_err, 'error')}, {plural(n_warn, 'warning')}")
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(
            {
                "root": self.root,
                "layout": self.layout,
                "ok": self.ok,
                "unreadable": self.unreadable,
                "splits": {k: vars(v) for k, v in self.splits.items()},
                "problems": [p.to_dict() for p in self.problems],
            },
            indent=1,
        )


def check_folder(
    root: str | Path,
    *,
    deep: bool = False,
    check_files: bool = True,
    workers: int = 8,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> HealthReport:
    """Check every split of a dataset folder."""
    try:
        folder = find_splits(root)
    except DatasetError as exc:
        return HealthReport(str(root), None, exc.problems, unreadable=True)
    report = HealthReport(str(folder.root), folder.layout, [])
    for split in folder.splits.values():
        summary = SplitSummary(split.name, str(split.annotation_file), str(split.image_dir))
        report.splits[split.name] = summary
        try:
            index = CocoIndex.load(split.annotation_file)
        except CocoFormatError as exc:
            report.problems.extend(exc.problems)
            report.unreadable = True
            continue
        summary.images, summary.annotations = index.num_images, index.num_annotations
        summary.categories, summary.class_counts = index.num_categories, index.class_counts()
        report.problems.extend(
            check_index(
                index,
                split.image_dir,
                deep=deep,
                check_files=check_files,
                workers=workers,
                progress=progress,
                cancel=cancel,
                dataset_root=folder.root,
            )
        )
        if cancel is not None and cancel.is_set():
            report.cancelled = True
            break
    return report


def check_index(
    index: CocoIndex,
    image_dir: str | Path | None = None,
    *,
    deep: bool = False,
    check_files: bool = True,
    workers: int = 8,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    dataset_root: str | Path | None = None,
) -> list[Problem]:
    """All problems of one indexed COCO file (and its images, when ``image_dir`` is given).

    ``dataset_root`` (default: the image folder) bounds where image symlinks may point.
    """
    problems = list(index.problems)
    problems += _structure_problems(index)
    problems += _annotation_problems(index)
    problems += _segmentation_problems(index)
    if check_files and image_dir is not None:
        problems += file_problems(
            index, Path(image_dir), deep, workers, progress, cancel, Path(dataset_root) if dataset_root else None
        )
    return problems


# ---------------------------------------------------------------------- structure
def _structure_problems(ix: CocoIndex) -> list[Problem]:
    out: list[Problem] = []
    name = ix.name
    if ix.num_images == 0:
        out.append(Problem("empty_dataset", "the dataset has no images", name))
    elif ix.num_annotations == 0:
        out.append(Problem("no_annotations", "the dataset has no annotations", name, severity="warning"))
    if ix.num_categories == 0:
        out.append(Problem("no_categories", "the dataset defines no categories", name))
    for row in ix.duplicate_image_rows.tolist():
        image_id = int(ix.image_ids[row])
        out.append(
            Problem(
                "duplicate_image_id",
                f"image id {image_id} is used more than once ('{ix.file_names[row]}' repeats it)",
                name,
                image_id=image_id,
            )
        )
    for ann_id in _repeated(ix.ann_ids):
        rows = np.flatnonzero(ix.ann_ids == ann_id)
        images = sorted({int(i) for i in ix.ann_image_id[rows].tolist()})
        out.append(
            Problem(
                "duplicate_annotation_id",
                f"annotation id {ann_id} is used more than once "
                f"(on image{'s' * (len(images) != 1)} {', '.join(map(str, images))})",
                name,
                annotation_id=ann_id,
                image_id=images[0],
            )
        )
    names: dict[str, int] = {}
    for cat_id, cat_name in zip(ix.category_ids.tolist(), ix.category_names):
        key = cat_name.strip().lower()
        if key in names:
            out.append(
                Problem(
                    "duplicate_category_name",
                    f"category name '{cat_name}' is used by ids {names[key]} and {cat_id}",
                    name,
                    category_id=cat_id,
                )
            )
        else:
            names[key] = cat_id
    bad_size = np.flatnonzero((ix.image_width <= 0) | (ix.image_height <= 0))
    for row in bad_size.tolist():
        out.append(
            Problem(
                "bad_image_size",
                f"image {int(ix.image_ids[row])} ('{ix.file_names[row]}'): width "
                f"and height must be positive, got {int(ix.image_width[row])}x{int(ix.image_height[row])}",
                name,
                image_id=int(ix.image_ids[row]),
            )
        )
    seen: dict[str, int] = {}
    for row, file_name in enumerate(ix.file_names):
        if file_name in seen:
            out.append(
                Problem(
                    "duplicate_file_name",
                    f"images {seen[file_name]} and {int(ix.image_ids[row])} both use file '{file_name}'",
                    name,
                    severity="warning",
                    image_id=int(ix.image_ids[row]),
                )
            )
        else:
            seen[file_name] = int(ix.image_ids[row])
    return out


def _repeated(ids: np.ndarray) -> list[int]:
    uniq, counts = np.unique(ids, return_counts=True)
    return uniq[counts > 1].tolist()


# ---------------------------------------------------------------------- annotations
def _ann_problem(ix: CocoIndex, row: int, code: str, message: str, severity: Severity = "error") -> Problem:
    image_id = int(ix.ann_image_id[row])
    ann_id = int(ix.ann_ids[row])
    where = f"annotation {ann_id} (image {image_id})"
    return Problem(
        code,
        f"{where}: {message}",
        ix.name,
        severity=severity,
        image_id=image_id,
        annotation_id=ann_id,
        category_id=int(ix.ann_category_id[row]),
    )


def _annotation_problems(ix: CocoIndex) -> list[Problem]:
    out: list[Problem] = []
    # An id whose item was left out for a bad key is already reported; its
    # annotations are dropped with it rather than reported again one by one.
    left_out_image = np.isin(ix.ann_image_id, np.fromiter(ix.unindexed_image_ids, np.int64))
    left_out_category = np.isin(ix.ann_category_id, np.fromiter(ix.unindexed_category_ids, np.int64))
    for row in np.flatnonzero((ix.ann_image < 0) & ~left_out_image).tolist():
        out.append(
            Problem(
                "unknown_image",
                f"annotation {int(ix.ann_ids[row])}: refers to image id "
                f"{int(ix.ann_image_id[row])}, which is not in 'images'",
                ix.name,
                annotation_id=int(ix.ann_ids[row]),
                image_id=int(ix.ann_image_id[row]),
            )
        )
    for row in np.flatnonzero((ix.ann_label < 0) & ~left_out_category).tolist():
        out.append(
            _ann_problem(
                ix, row, "unknown_category", f"category id {int(ix.ann_category_id[row])} is not in 'categories'"
            )
        )
    box = ix.ann_bbox
    has_box = ~np.isnan(box).any(axis=1)
    nonpos = has_box & ((box[:, 2] <= 0) | (box[:, 3] <= 0))
    for row in np.flatnonzero(nonpos).tolist():
        out.append(
            _ann_problem(ix, row, "bbox_nonpositive", f"bbox {_fmt_box(box[row])} has non-positive width or height")
        )
    known = has_box & ~nonpos & (ix.ann_image >= 0)
    rows = np.flatnonzero(known)
    if len(rows):
        img = ix.ann_image[rows]
        w, h = ix.image_width[img], ix.image_height[img]
        b = box[rows]
        outside = (
            (b[:, 0] < -BOX_TOLERANCE_PX)
            | (b[:, 1] < -BOX_TOLERANCE_PX)
            | (b[:, 0] + b[:, 2] > w + BOX_TOLERANCE_PX)
            | (b[:, 1] + b[:, 3] > h + BOX_TOLERANCE_PX)
        )
        for k in np.flatnonzero(outside).tolist():
            row = int(rows[k])
            out.append(
                _ann_problem(
                    ix,
                    row,
                    "bbox_outside_image",
                    f"bbox {_fmt_box(box[row])} lies outside the {w[k]}x{h[k]} image (training clips it)",
                    severity="warning",
                )
            )
    out += _duplicate_annotations(ix, np.flatnonzero(has_box & (ix.ann_image >= 0)))
    return out


def _duplicate_annotations(ix: CocoIndex, rows: np.ndarray) -> list[Problem]:
    """Exact repeats: the same image, category and box (a converter that doubled its output)."""
    if len(rows) < 2:
        return []
    keys = np.column_stack(
        [ix.ann_image_id[rows].astype(np.float64), ix.ann_category_id[rows].astype(np.float64), ix.ann_bbox[rows]]
    )
    order = np.lexsort(keys.T[::-1])
    same = np.all(keys[order[1:]] == keys[order[:-1]], axis=1)
    out: list[Problem] = []
    first = None
    for k in range(len(order)):
        if k > 0 and same[k - 1]:
            row, original = int(rows[order[k]]), int(rows[first])
            out.append(
                _ann_problem(
                    ix,
                    row,
                    "duplicate_annotation",
                    f"repeats annotation {int(ix.ann_ids[original])} exactly (same image, "
                    f"category and bbox {_fmt_box(ix.ann_bbox[row])}); training sees the "
                    "object twice",
                    severity="warning",
                )
            )
        else:
            first = order[k]
    return out


def _fmt_box(b: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:g}" for v in b.tolist()) + "]"


# ---------------------------------------------------------------------- segmentation
def _segmentation_problems(ix: CocoIndex) -> list[Problem]:
    out: list[Problem] = []
    for row in np.flatnonzero(ix.ann_seg_kind == SEG_POLYGON).tolist():
        try:
            seg = ix.segmentation(row)
        except ValueError as exc:
            out.append(_ann_problem(ix, row, "bad_segmentation", f"segmentation cannot be decoded: {exc}"))
            continue
        if not seg:
            continue  # an empty list means "no mask", which COCO allows
        if not all(isinstance(poly, list) for poly in seg):
            out.append(
                _ann_problem(
                    ix, row, "bad_segmentation", "polygon segmentation must be a list of [x1, y1, x2, y2, ...] lists"
                )
            )
            continue
        for k, poly in enumerate(seg):
            if len(poly) < 6 or len(poly) % 2:
                out.append(
                    _ann_problem(
                        ix,
                        row,
                        "bad_polygon",
                        f"polygon {k} has {len(poly)} coordinates; a polygon needs at least "
                        "3 points (6 numbers) and an even count",
                    )
                )
    for row in np.flatnonzero(ix.ann_seg_kind == SEG_RLE).tolist():
        seg = ix.segmentation(row)
        size = seg.get("size") if isinstance(seg, dict) else None
        if not (isinstance(size, list) and len(size) == 2 and "counts" in seg):
            out.append(_ann_problem(ix, row, "bad_segmentation", "RLE segmentation needs 'size' [h, w] and 'counts'"))
            continue
        image_row = int(ix.ann_image[row])
        if image_row < 0:
            continue
        expected = [int(ix.image_height[image_row]), int(ix.image_width[image_row])]
        if list(size) != expected:
            out.append(
                _ann_problem(
                    ix, row, "rle_size_mismatch", f"RLE size {list(size)} (h, w) disagrees with the image's {expected}"
                )
            )
    return out


# ---------------------------------------------------------------------- files on disk
def _check_one_file(
    ix: CocoIndex, row: int, image_dir: Path, deep: bool, dataset_root: Path | None = None
) -> list[Problem]:
    file_name = ix.file_names[row]
    image_id = int(ix.image_ids[row])
    where = f"image {image_id} ('{file_name}')"
    try:
        path = resolve_image_path(dataset_root or image_dir, image_dir, file_name)
    except UnsafeFileName as exc:
        return [
            Problem(
                "unsafe_file_name",
                f"{where}: file_name escapes the dataset folder ({exc.reason})",
                ix.name,
                image_id=image_id,
            )
        ]
    if not path.is_file():
        return [Problem("missing_file", f"{where}: file not found: {path}", ix.name, image_id=image_id)]
    try:
        width, height = image_io.image_size(path)
    except image_io.ImageReadError as exc:
        return [Problem("unreadable_image", f"{where}: {exc}", ix.name, image_id=image_id)]
    if deep:
        reason = image_io.verify_image(path)
        if reason:
            code = "truncated_image" if "truncated" in reason else "unreadable_image"
            return [Problem(code, f"{where}: {path}: {reason}", ix.name, image_id=image_id)]
    elif image_io.looks_truncated(path):
        return [
            Problem(
                "truncated_image",
                f"{where}: {path}: file is truncated (no end-of-image marker)",
                ix.name,
                image_id=image_id,
            )
        ]
    expected = (int(ix.image_width[row]), int(ix.image_height[row]))
    if (width, height) != expected and expected[0] > 0 and expected[1] > 0:
        hint = ""
        raw_w, raw_h, orientation = image_io.raw_size_and_orientation(path)
        if (raw_w, raw_h) == expected and orientation != 1:
            hint = f" (the JSON matches the stored size; EXIF orientation {orientation} rotates it)"
        return [
            Problem(
                "size_mismatch",
                f"{where}: image is {width}x{height} on disk but the JSON says {expected[0]}x{expected[1]}{hint}",
                ix.name,
                image_id=image_id,
            )
        ]
    return []


def file_problems(
    ix: CocoIndex,
    image_dir: Path,
    deep: bool = False,
    workers: int = 8,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    dataset_root: Path | None = None,
) -> list[Problem]:
    """Problems of the image files on disk (thread pool; header and tail only unless ``deep``)."""
    total = ix.num_images
    out: list[Problem] = []
    done = 0
    chunk = 256

    def run(start: int) -> list[Problem]:
        found: list[Problem] = []
        for row in range(start, min(start + chunk, total)):
            if cancel is not None and cancel.is_set():
                break
            found += _check_one_file(ix, row, image_dir, deep, dataset_root)
        return found

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for found in pool.map(run, range(0, total, chunk)):
            out += found
            done = min(done + chunk, total)
            if progress is not None:
                progress(done, total)
    return out


def check_image_records(
    records: list[tuple[int, str, int, int]],
    image_dir: str,
    annotation_file: str,
    deep: bool = False,
    dataset_root: str | None = None,
) -> list[Problem]:
    """File checks for ``(image_id, file_name, width, height)`` records.

    A plain, picklable entry point so a GUI can run the checks in worker
    processes, away from its own interpreter lock.
    """
    images = [{"id": i, "file_name": f, "width": w, "height": h} for i, f, w, h in records]
    index = CocoIndex.from_dict({"images": images, "categories": [], "annotations": []}, annotation_file)
    folder = Path(image_dir)
    root = Path(dataset_root) if dataset_root else None
    return [p for row in range(index.num_images) for p in _check_one_file(index, row, folder, deep, root)]


# ---------------------------------------------------------------------- training policy
def apply_policy(index: CocoIndex, problems: list[Problem], policy: str = "skip") -> CocoIndex:
    """What training does with a checked index: drop broken items ('skip') or stop ('refuse')."""
    errors = [p for p in problems if p.severity == "error"]
    if policy == "refuse":
        if errors:
            raise DatasetError(f"{index.name}: {len(errors)} problems; fix them or use on_problem=skip", errors)
        return index
    if policy != "skip":
        raise ValueError(f"unknown problem policy '{policy}': use 'skip' or 'refuse'")
    bad_images = {p.image_id for p in errors if p.code in IMAGE_LEVEL_CODES and p.image_id is not None}
    bad_anns = {p.annotation_id for p in errors if p.code in ANNOTATION_LEVEL_CODES and p.annotation_id is not None}
    drop = np.flatnonzero(np.isin(index.ann_ids, list(bad_anns)) | (index.ann_label < 0) | (index.ann_image < 0))
    cleaned = index.without_annotations(drop) if len(drop) else index
    if bad_images:
        # Every image sharing a duplicated id goes: its annotations are ambiguous.
        cleaned = cleaned.subset(np.flatnonzero(~np.isin(cleaned.image_ids, list(bad_images))))
    return cleaned
