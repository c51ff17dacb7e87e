"""``BaseVisionDataModule``: train/val datasets and fast data loaders for one task.

Sources, in the seed's style: ``train_image_dir`` + ``train_annotation_file``
and optionally ``val_image_dir`` + ``val_annotation_file``. Without a
validation file, a deterministic stratified split of the training file is made
(``val_fraction``, ``split_seed``). ``from_folder(DIR)`` finds the files itself.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from torch.utils.data import DataLoader

from engine.data.coco_index import CocoIndex
from engine.data.folders import find_splits
from engine.data.problems import DatasetError, Problem
from engine.data.split_check import SPLIT_ERROR_CODES, check_split, held_out_note, pick_training_splits
from engine.data.splits import stratified_split
from engine.metrics.distributed import evaluation_sampler

from .base_dataset import BaseVisionDataset, EpochSampler
from .collate import IMAGENET_MEAN, IMAGENET_STD, Collate
from .resumable_loader import ResumableBatchSampler, ResumableDataLoader


def _trained_part(dataset: BaseVisionDataset) -> CocoIndex:
    """The images a dataset really serves (after the problem policy and the task's own filter)."""
    rows = dataset.rows
    return dataset.index if len(rows) == dataset.index.num_images else dataset.index.subset(rows)


#: key of the batching a checkpoint was trained with, in the data module's checkpoint state
BATCHING_STATE = "batching"


class BaseVisionDataModule(pl.LightningDataModule):
    dataset_class: ClassVar[type[BaseVisionDataset]] = BaseVisionDataset

    def __init__(
        self,
        train_image_dir: str | Path | None = None,
        train_annotation_file: str | Path | None = None,
        val_image_dir: str | Path | None = None,
        val_annotation_file: str | Path | None = None,
        *,
        batch_size: int = 16,
        num_workers: int = 4,
        image_size: int | None = None,
        train_transforms: list[dict] | None = None,
        val_transforms: list[dict] | None = None,
        val_fraction: float = 0.2,
        split_seed: int = 0,
        seed: int = 0,
        on_problem: str = "skip",
        check_files: bool = True,
        normalize: str = "collate",
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
        pin_memory: bool | None = None,
        persistent_workers: bool = True,
        **dataset_kwargs: Any,
    ):
        super().__init__()
        if train_annotation_file is None or train_image_dir is None:
            raise ValueError("train_image_dir and train_annotation_file are required (or use from_folder)")
        if (val_annotation_file is None) != (val_image_dir is None):
            raise ValueError("give both val_image_dir and val_annotation_file, or neither")
        if normalize not in ("collate", "device", "none"):
            raise ValueError(f"normalize must be 'collate', 'device' or 'none', got '{normalize}'")
        self.train_image_dir, self.train_annotation_file = Path(train_image_dir), Path(train_annotation_file)
        self.val_image_dir = Path(val_image_dir) if val_image_dir else None
        self.val_annotation_file = Path(val_annotation_file) if val_annotation_file else None
        self.batch_size, self.num_workers, self.image_size = batch_size, num_workers, image_size
        self.train_transforms, self.val_transforms = train_transforms, val_transforms
        self.val_fraction, self.split_seed, self.seed = val_fraction, split_seed, seed
        self.on_problem, self.check_files = on_problem, check_files
        self.normalize, self.mean, self.std = normalize, tuple(mean), tuple(std)
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.persistent_workers = persistent_workers
        self.dataset_kwargs = dataset_kwargs
        self.train_dataset: BaseVisionDataset | None = None
        self.val_dataset: BaseVisionDataset | None = None
        self.split_problems: list[Problem] = []  # what makes this train/val split unable to train well

    @classmethod
    def from_folder(
        cls, folder: str | Path, *, train_split: str | None = None, val_split: str | None = None, **kwargs: Any
    ) -> BaseVisionDataModule:
        """A data module for a dataset folder in any layout ``engine.data.folders`` knows."""
        train, val = pick_training_splits(find_splits(folder), train_split, val_split)
        return cls(
            train.image_dir,
            train.annotation_file,
            val.image_dir if val else None,
            val.annotation_file if val else None,
            **kwargs,
        )

    # ---------------------------------------------------------------- datasets
    def _dataset(
        self, image_dir: Path, index: CocoIndex, train: bool, reference: CocoIndex | None
    ) -> BaseVisionDataset:
        return self.dataset_class(
            image_dir,
            index=index,
            train=train,
            image_size=self.image_size,
            seed=self.seed,
            transforms=self.train_transforms if train else self.val_transforms,
            on_problem=self.on_problem,
            check_files=self.check_files,
            categories_from=reference,
            **self.dataset_kwargs,
        )

    def setup(self, stage: str | None = None) -> None:
        if self.train_dataset is not None:
            return
        train_index = CocoIndex.load(self.train_annotation_file)
        if self.val_annotation_file is None:
            train_rows, val_rows = stratified_split(train_index, self.val_fraction, self.split_seed)
            train_part, val_part = train_index.subset(train_rows), train_index.subset(val_rows)
            train_part.problems = list(train_index.problems)  # reported once, with the training set
            self.train_dataset = self._dataset(self.train_image_dir, train_part, True, None)
            self.val_dataset = self._dataset(self.train_image_dir, val_part, False, None)
        else:
            val_index = CocoIndex.load(self.val_annotation_file)
            self.train_dataset = self._dataset(self.train_image_dir, train_index, True, None)
            self.val_dataset = self._dataset(self.val_image_dir, val_index, False, train_index)
        self._check_split(len(train_rows) if self.val_annotation_file is None else train_index.num_images)

    def _check_split(self, given_images: int) -> None:
        """Warn (on stderr, once) about a split that cannot train well; refuse one with no training image."""
        train, val = self.train_dataset, self.val_dataset
        self.split_problems = check_split(
            _trained_part(train),
            _trained_part(val),
            train_image_dir=self.train_image_dir,
            val_image_dir=self.val_image_dir,
            val_source=None
            if self.val_annotation_file
            else held_out_note(self.train_annotation_file, self.val_fraction, self.split_seed),
            dropped=given_images - len(train),
        )
        errors = [p for p in self.split_problems if p.code in SPLIT_ERROR_CODES]
        if errors:
            self.train_dataset = self.val_dataset = None  # a later setup() checks again
            raise DatasetError(f"{self.train_annotation_file}: cannot train on this split", errors)
        if rank_zero_only.rank == 0:
            for problem in self.split_problems:
                print(problem, file=sys.stderr)

    @property
    def problems(self):
        out = []
        for ds in (self.train_dataset, self.val_dataset):
            if ds is not None:
                out += ds.problems
        return out + self.split_problems

    @property
    def dropped_images(self) -> dict[str, int]:
        """Per split, images left out for having no usable annotation (classification needs a label;
        detection and segmentation keep them as negatives)."""
        self.setup()
        return {
            split: int(getattr(ds, "skipped", 0))
            for split, ds in (("train", self.train_dataset), ("val", self.val_dataset))
            if ds is not None
        }

    @property
    def num_labels(self) -> int:
        self.setup()
        return self.train_dataset.num_labels

    @property
    def id2label(self) -> dict[int, str]:
        self.setup()
        return self.train_dataset.id2label

    # ---------------------------------------------------------------- checkpoint state
    def state_dict(self) -> dict[str, Any]:
        """What decides which images make up each training batch, saved in every checkpoint:
        a run resumed mid-epoch skips the batches already trained, counted in these batches."""
        trainer = self.trainer
        return {
            BATCHING_STATE: {
                "batch_size": int(self.batch_size),
                "processes": int(trainer.world_size) if trainer is not None else 1,
            }
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Nothing to restore: the run's configuration rebuilds the loaders (``engine.orchestration``
        refuses a resume whose batching differs from the checkpoint's before it starts)."""

    # ---------------------------------------------------------------- loaders
    def collate(self) -> Collate:
        task = self.dataset_class.task
        return Collate(task, normalize=self.normalize == "collate", mean=self.mean, std=self.std)

    def _loader(self, dataset: BaseVisionDataset, train: bool) -> DataLoader:
        workers = self.num_workers
        sampler = EpochSampler(len(dataset), shuffle=train, seed=self.seed)
        if not train:  # on N processes: each image once, so the metrics count it once
            source = self.val_annotation_file or f"the split of {self.train_annotation_file}"
            sampler = evaluation_sampler(sampler, f"validation images ({source})")
        options: dict[str, Any] = dict(
            num_workers=workers,
            collate_fn=self.collate(),
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers and workers > 0,
            prefetch_factor=4 if workers > 0 else None,
        )
        if not train:
            return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler, **options)
        # Starts each epoch where the training loop is, so a run resumed mid-epoch sees the same batches.
        # Only a last batch of one image is dropped (batch norm cannot train on it): dropping any
        # partial batch cost small sets a third of their steps (140 images, batch 64: 2 steps, not 3).
        batches = ResumableBatchSampler(
            sampler, self.batch_size, drop_last=len(dataset) > 1 and len(dataset) % self.batch_size == 1
        )
        return ResumableDataLoader(dataset, batch_sampler=batches, batches_done=self._batches_done_in_epoch, **options)

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")
        return self._loader(self.train_dataset, True)

    def _batches_done_in_epoch(self) -> int:
        """Batches of the current epoch the training loop has already trained on: 0 unless
        Lightning restored a run mid-epoch (its own count, the one it goes on from)."""
        trainer = self.trainer
        if trainer is None or not trainer.training:
            return 0
        return int(trainer.fit_loop.epoch_loop.batch_progress.current.ready)

    def val_dataloader(self) -> DataLoader:
        self.setup("fit")
        return self._loader(self.val_dataset, False)
