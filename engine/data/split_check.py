"""Can this train/validation split train a model? Warnings that name the split file and the items.

The health check (``health.py``) looks at each COCO file alone; these checks look at the
pair a run trains and validates on: too few training images, an empty validation split,
categories the validation split holds but training never shows, categories with no
training example, and images that are in both splits. Only a split with no training
image at all is an error: everything else still trains, just not into anything useful.

Three entry points, one set of checks:

* ``check_split`` on two indexes (the data module calls it on what really trains);
* ``check_folder_split`` on a found folder and its loaded indexes (the Health panel);
* ``check_dataset_split`` on a dataset path and a run's split settings (the Train tab).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .coco_index import CocoIndex
from .folders import DatasetFolder, Split, find_splits
from .problems import CocoFormatError, DatasetError, Problem
from .splits import stratified_split

if TYPE_CHECKING:
    from engine.config import DataConfig

# Below this many training images a model learns next to nothing: say so before it trains.
MIN_TRAINING_IMAGES = 10
# How many offending file names a message spells out before it says "and N more".
NAMES_SHOWN = 3

SPLIT_ERROR_CODES = {"no_training_images"}


def pick_training_splits(
    folder: DatasetFolder, train_split: str | None = None, val_split: str | None = None
) -> tuple[Split, Split | None]:
    """The splits a run trains and validates on: ``train`` (else the first), and ``val`` unless it
    is the training split; no validation split means a held-out part of the training file."""
    train = folder.split(train_split or ("train" if "train" in folder.splits else next(iter(folder.splits))))
    if val_split is not None:
        return train, folder.split(val_split)
    val = folder.splits.get("val")
    return train, (val if val is not None and val != train else None)


def held_out_note(annotation_file: str | Path, fraction: float, seed: int) -> str:
    return f"the automatic {fraction:.0%} validation split (split_seed {seed}) of {annotation_file}"


def check_split(
    train: CocoIndex,
    val: CocoIndex | None,
    *,
    train_image_dir: str | Path | None = None,
    val_image_dir: str | Path | None = None,
    val_source: str | None = None,
    dropped: int = 0,
) -> list[Problem]:
    """Problems of training on ``train`` and validating on ``val`` (None: no validation at all).

    ``val_source`` says where the validation images come from when they are not a file of
    their own (a held-out part of the training file); ``dropped`` is how many training
    images were left out before (broken files, no label), so an empty split says why.
    Image directories, when given, let images in both splits be recognised by their path.
    """
    train_file = train.name
    val_file = val.name if val is not None else train_file
    held_out = f" ({val_source})" if val_source else ""  # the file is named anyway; a held-out part is not
    out: list[Problem] = []
    n_train = train.num_images
    if n_train == 0:
        why = f" ({dropped:,} left out as unusable: see the health check)" if dropped else ""
        out.append(
            Problem("no_training_images", f"the training split has no images{why}; nothing to train on", train_file)
        )
        return out
    n_val = val.num_images if val is not None else 0
    if n_train < MIN_TRAINING_IMAGES:
        out.append(
            Problem(
                "few_training_images",
                f"only {n_train} training image{'s' * (n_train != 1)} (and {n_val} for validation): "
                f"a model learns next to nothing from fewer than {MIN_TRAINING_IMAGES}",
                train_file,
                severity="warning",
            )
        )
    if n_val == 0:
        out.append(
            Problem(
                "no_validation_images",
                f"the validation split has no images{held_out}: the run reports no validation "
                "metrics and cannot pick its best checkpoint",
                val_file,
                severity="warning",
            )
        )
    out += _category_problems(train, val, val_file, held_out)
    # A held-out part of the training file shares no image with the rest by construction.
    if val is not None and n_val and train_image_dir is not None and val_source is None:
        out += _overlap_problems(train, val, Path(train_image_dir), Path(val_image_dir or train_image_dir), val_file)
    return out


def check_folder_split(
    folder: DatasetFolder,
    indexes: dict[str, CocoIndex] | None = None,
    *,
    train_split: str | None = None,
    val_split: str | None = None,
    val_fraction: float = 0.2,
    split_seed: int = 0,
) -> list[Problem]:
    """``check_split`` for the splits a run on ``folder`` would use (``indexes``: already loaded
    ones by split name; the others are read from disk). A file that cannot be read is the
    health check's to report: no split problems come from it."""
    try:
        train, val = pick_training_splits(folder, train_split, val_split)
    except DatasetError as exc:
        return list(exc.problems)
    loaded = dict(indexes or {})
    try:
        train_index = _index_of(train, loaded)
        val_index = None if val is None else _index_of(val, loaded)
    except CocoFormatError:
        return []
    if val is not None:
        return check_split(train_index, val_index, train_image_dir=train.image_dir, val_image_dir=val.image_dir)
    train_rows, val_rows = stratified_split(train_index, val_fraction, split_seed)
    return check_split(
        train_index.subset(train_rows),
        train_index.subset(val_rows),
        train_image_dir=train.image_dir,
        val_source=held_out_note(train.annotation_file, val_fraction, split_seed),
    )


def _index_of(split: Split, loaded: dict[str, CocoIndex]) -> CocoIndex:
    index = loaded.get(split.name)
    return index if index is not None else CocoIndex.load(split.annotation_file)


def check_dataset_split(
    path: str | Path,
    *,
    train_split: str | None = None,
    val_split: str | None = None,
    val_fraction: float = 0.2,
    split_seed: int = 0,
) -> list[Problem]:
    """The split problems of a run on the dataset folder ``path`` (reads its COCO files)."""
    try:
        folder = find_splits(path)
    except DatasetError as exc:
        return list(exc.problems)
    return check_folder_split(
        folder, train_split=train_split, val_split=val_split, val_fraction=val_fraction, split_seed=split_seed
    )


def check_run_data(
    data: DataConfig, folder: DatasetFolder | None = None, indexes: dict[str, CocoIndex] | None = None
) -> list[Problem]:
    """The split problems of a run configuration's ``data`` section (what the Train tab shows).

    ``folder`` and ``indexes``: that dataset already opened (the app's session), so its COCO
    files are not read again."""
    if not data.path:
        return []
    if folder is None or Path(folder.root).resolve() != Path(data.path).resolve():
        indexes = None  # another dataset than the one open: read its files
        try:
            folder = find_splits(data.path)
        except DatasetError as exc:
            return list(exc.problems)
    return check_folder_split(
        folder,
        indexes,
        train_split=data.train_split,
        val_split=data.val_split,
        val_fraction=data.val_fraction,
        split_seed=data.split_seed,
    )


# ---------------------------------------------------------------------- categories
def _annotated_categories(index: CocoIndex) -> dict[int, int]:
    """Category id -> annotations of it (on known images, crowd regions included)."""
    ids = index.ann_category_id[index.ann_image >= 0]
    uniq, counts = np.unique(ids, return_counts=True)
    return dict(zip(uniq.tolist(), counts.tolist()))


def _category_name(index: CocoIndex, category_id: int) -> str | None:
    row = int(np.searchsorted(index.category_ids, category_id))
    if row < index.num_categories and int(index.category_ids[row]) == category_id:
        return index.category_names[row]
    return None


def _category_problems(train: CocoIndex, val: CocoIndex | None, val_file: str, held_out: str) -> list[Problem]:
    out: list[Problem] = []
    in_train = _annotated_categories(train)
    in_val = _annotated_categories(val) if val is not None else {}
    for category_id, count in sorted(in_val.items()):
        if category_id in in_train:
            continue
        name = (_category_name(val, category_id) if val is not None else None) or _category_name(train, category_id)
        if name is None:
            continue  # an id no file defines: the health check reports each such annotation
        defined = _category_name(train, category_id) is not None
        why = "has no training annotation" if defined else f"is not a category of {train.name}"
        out.append(
            Problem(
                "unseen_validation_category",
                f"category '{name}' (id {category_id}) has {count} annotation{'s' * (count != 1)} in "
                f"validation{held_out} but {why}: the model cannot learn it",
                val_file,
                severity="warning",
                category_id=category_id,
            )
        )
    for category_id, name in zip(train.category_ids.tolist(), train.category_names):
        if category_id in in_train or category_id in in_val:
            continue
        out.append(
            Problem(
                "category_without_examples",
                f"category '{name}' (id {category_id}) has no annotation in training or validation: "
                "the model gets an output for it that nothing trains",
                train.name,
                severity="warning",
                category_id=category_id,
            )
        )
    return out


# ---------------------------------------------------------------------- same images in both splits
def _image_paths(index: CocoIndex, image_dir: Path) -> list[str]:
    # normpath, not resolve(): no file system call per image, and "a/../b.png" still matches "b.png".
    return [os.path.normpath(image_dir / name) for name in index.file_names]


def _overlap_problems(train: CocoIndex, val: CocoIndex, train_dir: Path, val_dir: Path, val_file: str) -> list[Problem]:
    shared_file = Path(train.name) == Path(val.name) and train_dir == val_dir
    if shared_file:
        return [
            Problem(
                "train_val_overlap",
                f"training and validation are the same file ({train.name}): validation scores "
                "measure memory, not how the model does on new images",
                val_file,
                severity="warning",
            )
        ]
    train_paths = set(_image_paths(train, train_dir))
    val_paths = _image_paths(val, val_dir)
    both = [(row, path) for row, path in enumerate(val_paths) if path in train_paths]
    if not both:
        return []
    names = ", ".join(f"'{val.file_names[row]}'" for row, _ in both[:NAMES_SHOWN])
    more = f" and {len(both) - NAMES_SHOWN} more" if len(both) > NAMES_SHOWN else ""
    amount = ("all" if len(both) == len(val_paths) else f"{len(both)} of the") + f" {len(val_paths)}"
    first_id = int(val.image_ids[both[0][0]])
    return [
        Problem(
            "train_val_overlap",
            f"{amount} validation images are also training images ({names}{more}; training file "
            f"{train.name}): validation scores measure memory, not how the model does on new images",
            val_file,
            severity="warning",
            image_id=first_id,
        )
    ]
