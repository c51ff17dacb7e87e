"""An opened dataset, as the app's views see it (no Qt here, so it is easy to test).

``open_dataset`` does the slow part (find the splits, index every COCO file,
optionally run the health check) and is meant for a worker thread; the
resulting ``DatasetSession`` answers the views' questions quickly from arrays.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.data.coco_index import CocoIndex
from engine.data.folders import DatasetFolder, find_splits
from engine.data.health import HealthReport, SplitSummary, check_index
from engine.data.paths import resolve_image_path
from engine.data.problems import CocoFormatError, Problem

SORT_KEYS = ("file order", "file name", "annotations", "problems")


@dataclass(frozen=True)
class ImageRef:
    """One image of the opened dataset: its split and row in that split's index."""

    split: str
    row: int


@dataclass
class DatasetSession:
    folder: DatasetFolder
    indexes: dict[str, CocoIndex]
    problems: list[Problem] = field(default_factory=list)
    checked_files: bool = False

    # ---------------------------------------------------------------- basics
    @property
    def root(self) -> Path:
        return self.folder.root

    @property
    def splits(self) -> list[str]:
        return list(self.indexes)

    def index(self, split: str) -> CocoIndex:
        return self.indexes[split]

    def image_dir(self, split: str) -> Path:
        return self.folder.splits[split].image_dir

    def image_path(self, ref: ImageRef) -> Path:
        """Where the image lies; raises ``UnsafeFileName`` if its file_name leaves the dataset folder."""
        return resolve_image_path(self.root, self.image_dir(ref.split), self.indexes[ref.split].file_names[ref.row])

    def category_names(self) -> list[str]:
        """Category names across splits, in the first split's label order, then any others."""
        names: list[str] = []
        for index in self.indexes.values():
            names += [n for n in index.category_names if n not in names]
        return names

    @property
    def num_images(self) -> int:
        return sum(ix.num_images for ix in self.indexes.values())

    @property
    def num_annotations(self) -> int:
        return sum(ix.num_annotations for ix in self.indexes.values())

    def class_counts(self, split: str | None = None) -> dict[str, int]:
        counts: dict[str, int] = {name: 0 for name in self.category_names()}
        for name, index in self.indexes.items():
            if split is None or name == split:
                for category, n in index.class_counts().items():
                    counts[category] += n
        return counts

    # ---------------------------------------------------------------- problems
    def problem_image_ids(self, split: str) -> set[int]:
        file = str(self.folder.splits[split].annotation_file)
        return {p.image_id for p in self.problems if p.file == file and p.image_id is not None}

    def problems_of(self, ref: ImageRef) -> list[Problem]:
        file = str(self.folder.splits[ref.split].annotation_file)
        image_id = int(self.indexes[ref.split].image_ids[ref.row])
        return [p for p in self.problems if p.file == file and p.image_id == image_id]

    def find_image(self, split: str, image_id: int) -> ImageRef | None:
        rows = self.indexes[split].image_rows([image_id])
        return ImageRef(split, int(rows[0])) if rows[0] >= 0 else None

    def split_of_file(self, file: str) -> str | None:
        for name, split in self.folder.splits.items():
            if str(split.annotation_file) == file:
                return name
        return None

    # ---------------------------------------------------------------- browsing
    def select(
        self,
        *,
        split: str | None = None,
        category: str | None = None,
        with_problems: bool = False,
        sort: str = "file order",
        name_contains: str = "",
    ) -> list[ImageRef]:
        """The images a browser shows for a filter and a sort order (vectorised per split).

        ``name_contains`` keeps the images whose file name contains it, ignoring case.
        """
        needle = name_contains.strip().lower()
        if sort not in SORT_KEYS:
            raise ValueError(f"unknown sort '{sort}'; use one of {', '.join(SORT_KEYS)}")
        refs: list[ImageRef] = []
        keys: list[np.ndarray] = []
        for name, index in self.indexes.items():
            if split is not None and name != split:
                continue
            keep = np.ones(index.num_images, bool)
            if category is not None:
                if category not in index.category_names:
                    continue
                label = index.category_names.index(category)
                rows = index.ann_image[(index.ann_label == label) & (index.ann_image >= 0)]
                has = np.zeros(index.num_images, bool)
                has[rows] = True
                keep &= has
            bad_ids = self.problem_image_ids(name)
            if with_problems:
                keep &= np.isin(index.image_ids, list(bad_ids))
            if needle:
                keep &= np.fromiter((needle in f.lower() for f in index.file_names), bool, index.num_images)
            rows = np.flatnonzero(keep)
            refs += [ImageRef(name, int(r)) for r in rows.tolist()]
            if sort == "file name":
                keys.append(np.array([index.file_names[r] for r in rows.tolist()], dtype=object))
            elif sort == "annotations":
                counts = np.diff(index.image_ann_offsets)[rows]
                keys.append(-counts)
            elif sort == "problems":
                keys.append(-np.isin(index.image_ids[rows], list(bad_ids)).astype(np.int64))
        if sort != "file order" and refs:
            order = np.argsort(np.concatenate(keys), kind="stable")
            refs = [refs[i] for i in order.tolist()]
        return refs


def open_dataset(
    root: str | Path,
    *,
    check_files: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> DatasetSession:
    """Find, index and check a dataset folder (slow: call it off the GUI thread).

    Raises ``DatasetError`` when the folder has no usable COCO file at all; a
    split whose JSON is broken is reported as problems and left out.
    """
    # Absolute: the session's paths go into run configs that child processes read from other folders.
    folder = find_splits(Path(root).expanduser().absolute())
    indexes: dict[str, CocoIndex] = {}
    problems: list[Problem] = []
    for name, split in folder.splits.items():
        if cancel is not None and cancel.is_set():
            break
        if progress:
            progress(f"indexing {split.annotation_file.name}", 0, 0)
        try:
            indexes[name] = CocoIndex.load(split.annotation_file)
        except CocoFormatError as exc:
            problems += exc.problems
            continue
    if not indexes and problems:
        raise CocoFormatError(f"{folder.root}: no annotation file could be read", problems)
    session = DatasetSession(folder, indexes, problems)
    for name, index in indexes.items():
        if cancel is not None and cancel.is_set():
            break
        step = (lambda done, total, n=name: progress(f"checking {n} images", done, total)) if progress else None
        problems += check_index(
            index,
            folder.splits[name].image_dir,
            check_files=check_files,
            progress=step,
            cancel=cancel,
            dataset_root=folder.root,
        )
    session.problems = problems
    session.checked_files = check_files
    return session


CHECK_CHUNK = 2000


def check_files(
    session: DatasetSession,
    *,
    progress: Callable[[str, int, int], None] | None = None,
    cancel: threading.Event | None = None,
    processes: int | None = None,
) -> list[Problem]:
    """The image-file problems of every split (missing, unreadable, truncated, wrong size).

    The slow half of opening a dataset, run while the browser is already
    usable. The checks run in worker processes ("spawn": never fork a Qt
    process), so the GUI thread keeps the interpreter lock to itself; the
    calling thread only waits on futures.
    """
    import multiprocessing
    import os
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from engine.data.health import check_image_records

    jobs = []
    for name, index in session.indexes.items():
        records = list(
            zip(index.image_ids.tolist(), index.file_names, index.image_width.tolist(), index.image_height.tolist())
        )
        for start in range(0, len(records), CHECK_CHUNK):
            jobs.append((name, records[start : start + CHECK_CHUNK]))
    total = sum(len(chunk) for _, chunk in jobs)
    if not jobs:
        return []
    workers = processes or max(1, min(4, (os.cpu_count() or 2) - 1))
    problems: list[Problem] = []
    done = 0
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
        pending = set()
        queue = list(jobs)
        while queue or pending:
            # Keep only a few chunks in flight so a cancel takes effect quickly.
            while queue and len(pending) < 2 * workers and not (cancel is not None and cancel.is_set()):
                name, chunk = queue.pop(0)
                split = session.folder.splits[name]
                future = pool.submit(
                    check_image_records,
                    chunk,
                    str(split.image_dir),
                    str(split.annotation_file),
                    False,
                    str(session.root),
                )
                future.size = len(chunk)
                pending.add(future)
            if cancel is not None and cancel.is_set():
                for future in pending:
                    future.cancel()
                break
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in finished:
                problems += future.result()
                done += future.size
                if progress:
                    progress("checking image files", done, total)
    return problems


def health_report(session: DatasetSession) -> HealthReport:
    """The session's problems as the engine's report (same text as `lightbox check`)."""
    report = HealthReport(str(session.root), session.folder.layout, list(session.problems))
    for name, index in session.indexes.items():
        split = session.folder.splits[name]
        report.splits[name] = SplitSummary(
            name,
            str(split.annotation_file),
            str(split.image_dir),
            index.num_images,
            index.num_annotations,
            index.num_categories,
            index.class_counts(),
        )
    return report
