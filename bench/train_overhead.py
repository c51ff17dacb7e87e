"""Benchmark: Lightbox's training loop overhead against a hand-written PyTorch loop (CPU).

Both train the same tiny model (``resnet-tiny`` preset, 64 px) with AdamW and
a cosine schedule on the same batches (a 2,400-image sample dataset through Lightbox's
own data loader, no workers), for the same number of steps, in one process.

* hand-written: ``for batch in loader: loss = model(...).loss; backward; step``.
* Lightbox: ``engine.orchestration.local.train`` end to end: Lightning,
  MLflow tracking into a SQLite store, periodic checkpoints, NaN guard.

Steps per second are timed from step 10 on; time spent in Lightbox's
per-epoch validation is left out (the hand-written loop does none).
Prints both rates and the ratio (target: Lightbox >= 0.9x).

usage: python bench/train_overhead.py [--steps N] [--batch B]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

WARMUP_STEPS = 10


def hand_written(loader, steps: int, lr: float) -> float:
    import torch

    from engine.models.loading import load_model

    torch.manual_seed(0)
    model = load_model("resnet-tiny", "classification", num_labels=4).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    step, start = 0, None
    while step < steps:
        for batch in loader:
            loss = model(pixel_values=batch["pixel_values"], labels=batch["labels"]).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            if step == WARMUP_STEPS:
                start = time.perf_counter()
            if step >= steps:
                break
    return (steps - WARMUP_STEPS) / (time.perf_counter() - start)


def lightbox(data: Path, steps: int, batch: int, lr: float, workspace: Path) -> float:
    import lightning.pytorch as pl

    from engine.config import RunConfig
    from engine.orchestration.local import train

    class Clock(pl.Callback):
        """Training time from step WARMUP_STEPS to the end, validation excluded."""

        def __init__(self):
            self.start = self.end = None
            self.val_time = 0.0
            self._val_start = None

        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == WARMUP_STEPS:
                self.start, self.val_time = time.perf_counter(), 0.0
            self.end = time.perf_counter()

        def on_validation_start(self, trainer, *args):
            self._val_start = time.perf_counter()

        def on_validation_end(self, trainer, *args):
            if self.start is not None:
                self.val_time += time.perf_counter() - self._val_start

    clock = Clock()
    config = RunConfig.from_dict({"task": {"name": "classification"}}).with_overrides(
        {
            "data.path": str(data),
            "model.checkpoint": "resnet-tiny",
            "data.image_size": 64,
            "data.num_workers": 0,
            "optim.batch_size": batch,
            "optim.lr": lr,
            "optim.max_steps": steps,
            "optim.epochs": 10_000,
            "workspace": str(workspace),
            "augmentation.train": [],
            "augmentation.val": [],
            "augmentation.preset": False,
        }
    )
    result = train(config, progress=False, callbacks=[clock])
    assert result.status == "FINISHED", result
    return (steps - WARMUP_STEPS) / (clock.end - clock.start - clock.val_time)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()

    import logging

    import torch

    from engine.data.sample import write_sample_dataset
    from engine.tasks.classification.datamodule import ClassificationDataModule

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        # Epochs of 150 steps: per-epoch work (validation, checkpoints) then weighs about as much
        # as in real runs, whose epochs are longer still.
        data = write_sample_dataset(Path(tmp) / "shapes", train_images=2400, val_images=32)
        datamodule = ClassificationDataModule.from_folder(
            data, batch_size=args.batch, num_workers=0, image_size=64, train_transforms=[], val_transforms=[]
        )
        loader = datamodule.train_dataloader()
        rates = {"hand_written": 0.0, "lightbox": 0.0}
        for _round in range(2):  # alternate; keep each side's best
            rates["hand_written"] = max(rates["hand_written"], hand_written(loader, args.steps, 1e-3))
            rates["lightbox"] = max(
                rates["lightbox"], lightbox(data, args.steps, args.batch, 1e-3, Path(tmp) / f"ws{_round}")
            )
    ratio = rates["lightbox"] / rates["hand_written"]
    print(
        json.dumps(
            {
                "steps": args.steps,
                "batch": args.batch,
                "threads": torch.get_num_threads(),
                "hand_written_steps_s": round(rates["hand_written"], 2),
                "lightbox_steps_s": round(rates["lightbox"], 2),
                "ratio": round(ratio, 3),
                "target": 0.9,
                "met": ratio >= 0.9,
            }
        )
    )


if __name__ == "__main__":
    main()
