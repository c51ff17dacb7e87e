"""GPU benchmark: Lightbox end to end from JPEG files against the hand-written ceiling.

In one call on a GPU machine:
1. runs the shared anchor (``gpu_anchor.py``: hand-written bf16 AdamW steps on
   synthetic tensors already on the GPU) and reads its images/s per model;
2. trains with ``engine.orchestration.local.train`` from JPEG files on disk,
   with the real data modules, augmentation, DataLoader workers, Lightning and
   checkpoints, for ResNet-50 classification (224, batch 256), DETR-R50
   (800, batch 16) and SegFormer-B2 (512, batch 32), bf16;
3. prints images/s for both and the ratio per model (target: >= 0.9).

Lightbox's rate is the batch size over the mean interval between training
steps inside an epoch (epoch boundaries, where validation and checkpoints run,
are left out; a data-loading stall inside an epoch counts).

usage (GPU): python bench/gpu_train.py --anchor PATH/gpu_anchor.py [--out results.json]
usage (CPU check of the script itself): python bench/gpu_train.py --smoke
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

# (name, task, preset, image size, batch, source image size, anchor case)
CASES = [
    (
        "resnet50-cls-224",
        "classification",
        "resnet-50",
        224,
        256,
        (500, 375),
        "hf-resnet50-cls-224 eager channels_last",
    ),
    ("detr-r50-800", "detection", "detr-resnet-50", 800, 16, (800, 600), "hf-detr-r50-800 eager"),
    ("segformer-b2-512", "segmentation", "segformer-b2", 512, 32, (640, 480), "hf-segformer-b2-512 eager"),
]
SMOKE_CASES = [
    ("resnet-tiny-cls-64", "classification", "resnet-tiny", 64, 8, (96, 72), None),
    ("detr-tiny-96", "detection", "detr-tiny", 96, 4, (96, 72), None),
    ("segformer-tiny-64", "segmentation", "segformer-tiny", 64, 4, (96, 72), None),
]


def run_anchor(anchor: Path, out: Path) -> dict[str, float]:
    done = subprocess.run([sys.executable, str(anchor), "--json", str(out)], capture_output=True, text=True)
    print(done.stdout[-4000:], done.stderr[-2000:], sep="\n", flush=True)
    if not out.is_file():
        return {}
    return {r["case"]: r["img_s"] for r in json.loads(out.read_text()) if "img_s" in r}


def lightbox_rate(
    data: Path, workspace: Path, task: str, preset: str, size: int, batch: int, epochs: int, workers: int, smoke: bool
) -> dict:
    import lightning.pytorch as pl

    from engine.config import RunConfig
    from engine.orchestration.local import train

    class StepClock(pl.Callback):
        def __init__(self):
            self.intervals: list[float] = []
            self.last = None

        def on_train_epoch_start(self, trainer, pl_module):
            self.last = None  # the first step of an epoch waits for workers and follows validation

        def on_train_batch_end(self, trainer, *args):
            now = time.perf_counter()
            if self.last is not None and trainer.current_epoch > 0:
                self.intervals.append(now - self.last)
            self.last = now

    clock = StepClock()
    overrides = {
        "data.path": str(data),
        "model.checkpoint": preset,
        "data.image_size": size,
        "data.num_workers": workers,
        "optim.batch_size": batch,
        "optim.epochs": epochs,
        "optim.lr": 1e-4,
        "workspace": str(workspace),
        "tracking.log_every_n_steps": 50,
    }
    if smoke:
        overrides.update({"compute.accelerator": "cpu", "optim.precision": "32"})
    else:
        overrides.update({"compute.accelerator": "gpu", "optim.precision": "bf16-mixed", "compute.devices": 1})
    config = RunConfig.from_dict({"task": {"name": task}}).with_overrides(overrides)
    result = train(config, progress=False, callbacks=[clock])
    mean = statistics.fmean(clock.intervals) if clock.intervals else float("nan")
    return {
        "status": result.status,
        "img_s": round(batch / mean, 1),
        "steps_timed": len(clock.intervals),
        "mean_step_ms": round(mean * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--anchor", type=Path, help="path to gpu_anchor.py")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--steps-per-epoch", type=int, default=10)
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    parser.add_argument("--smoke", action="store_true", help="tiny presets on the CPU, to check the script")
    args = parser.parse_args()

    from engine.data.sample import write_sample_dataset

    cases = SMOKE_CASES if args.smoke else CASES
    anchor_rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.anchor and not args.smoke:
            anchor_rates = run_anchor(args.anchor, Path(tmp) / "anchor.json")
        results = []
        for name, task, preset, size, batch, source, anchor_case in cases:
            data = Path(tmp) / f"data_{source[0]}x{source[1]}_{batch}"
            if not data.exists():
                write_sample_dataset(
                    data, train_images=batch * args.steps_per_epoch, val_images=max(batch, 8), image_size=source
                )
            try:
                rate = lightbox_rate(
                    data, Path(tmp) / f"ws_{name}", task, preset, size, batch, args.epochs, args.workers, args.smoke
                )
            except Exception as exc:  # report and go on with the next model
                rate = {"error": f"{type(exc).__name__}: {exc}"[:400]}
            ceiling = anchor_rates.get(anchor_case) if anchor_case else None
            row = {"case": name, "batch": batch, "lightbox": rate, "anchor_img_s": ceiling}
            if ceiling and "img_s" in rate:
                row["ratio"] = round(rate["img_s"] / ceiling, 3)
                row["met"] = row["ratio"] >= 0.9
            print(json.dumps(row), flush=True)
            results.append(row)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
