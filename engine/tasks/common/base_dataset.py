"""``BaseVisionDataset``: one COCO file + image folder -> augmented training samples.

Every sample is augmented with a seed derived from (dataset seed, epoch, index),
so an epoch looks the same whatever the number of workers, and the app's
preview of an image shows exactly what training does to it. The sampler tells
the dataset the epoch by offsetting indices: key ``epoch * len(ds) + i``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from engine.data import augment
from engine.data.coco_index import CocoIndex
from engine.data.health import apply_policy, check_index
from engine.data.images import load_image
from engine.data.paths import resolve_image_path
from engine.data.problems import Problem


class BaseVisionDataset(Dataset):
    """Shared loading, checking and seeded augmentation for every task.

    Subclasses set ``task`` and implement ``usable_rows``, ``targets`` and
    ``to_sample``.
    """

    task: str = ""

    def __init__(
        self,
        image_dir: str | Path,
        annotation_file: str | Path | None = None,
        *,
        index: CocoIndex | None = None,
        transforms: list[dict] | None = None,
        train: bool = True,
        image_size: int | None = None,
        seed: int = 0,
        on_problem: str = "skip",
        check_files: bool = True,
        categories_from: CocoIndex | None = None,
    ):
        if index is None:
            if annotation_file is None:
                raise ValueError("give annotation_file or index")
            index = CocoIndex.load(annotation_file)
        if categories_from is not None:
            index = index.aligned_to(categories_from)
        self.image_dir = Path(image_dir)
        self.problems: list[Problem] = check_index(index, self.image_dir, check_files=check_files)
        self.index = apply_policy(index, self.problems, on_problem)
        self.train = train
        self.seed = seed
        if transforms is None:
            transforms = augment.preset(self.task, "train" if train else "val", image_size)
        self.transforms = augment.validate_spec(transforms)
        self.pipeline = augment.build_pipeline(self.transforms, self.task)
        self.rows = self.usable_rows()

    # ---------------------------------------------------------------- task hooks
    def usable_rows(self) -> np.ndarray:
        """Image rows this task can learn from."""
        return np.arange(self.index.num_images)

    def targets(self, row: int) -> dict[str, Any]:
        """Un-augmented targets of an image row: any of boxes, labels, mask."""
        return {}

    def to_sample(self, augmented: dict[str, Any], row: int) -> dict[str, Any]:
        raise NotImplementedError

    # ---------------------------------------------------------------- categories
    @property
    def num_labels(self) -> int:
        return self.index.num_categories

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.index.category_names))

    # ---------------------------------------------------------------- access
    def __len__(self) -> int:
        return len(self.rows)

    def image_path(self, i: int) -> Path:
        # The shared resolver: a file_name never opens a file outside the image folder,
        # even when the health policy let the image through.
        return resolve_image_path(self.image_dir, self.image_dir, self.index.file_names[int(self.rows[i])])

    def load(self, i: int) -> tuple[np.ndarray, dict[str, Any]]:
        """The image (RGB uint8) and its targets before augmentation."""
        row = int(self.rows[i])
        return load_image(self.image_path(i)), self.targets(row)

    def augmented(self, i: int, epoch: int = 0) -> dict[str, Any]:
        """Image ``i`` as training sees it in ``epoch`` (the app's preview calls this)."""
        image, targets = self.load(i)
        return augment.apply_seeded(self.pipeline, augment.sample_seed(self.seed, epoch, i), image, **targets)

    def __getitem__(self, key: int) -> dict[str, Any]:
        n = len(self.rows)
        epoch, i = divmod(int(key), n)
        return self.to_sample(self.augmented(i, epoch), int(self.rows[i]))


class EpochSampler(Sampler[int]):
    """Shuffles per epoch and encodes the epoch in the index it yields.

    Lightning calls ``set_epoch`` on samplers that have it, so workers (even
    persistent ones) learn the epoch from the keys alone.
    """

    def __init__(self, length: int, *, shuffle: bool = True, seed: int = 0):
        self.length, self.shuffle, self.seed, self.epoch = length, shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __iter__(self):
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.length)
        else:
            order = np.arange(self.length)
        base = self.epoch * self.length
        return iter((base + order).tolist())


def hwc_to_chw(image: np.ndarray) -> torch.Tensor:
    """A CHW view of an HWC uint8 image (no copy; collate stacks it)."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
