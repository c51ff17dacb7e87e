"""Which tiny detector learns the demo data within a fixed 10-minute budget on the CPU,
with Lightbox's defaults (what `lightbox train --data DEMO --task detection` does).

Each candidate preset trains with ``engine.orchestration.local.train`` (the engine's
own path: the recipe chooses epochs, learning rate, clipping, warm-up, schedule and
augmentation; COCO mAP on the validation split every epoch) on the same generated
demo set (``engine.data.sample``, by default as ``lightbox demo-data`` writes it: 48
training and 16 validation images), from random weights, until its epochs are done or
the budget would be overrun: after each epoch the run stops if one more epoch (training
and validation) would not fit in what is left. The table gives the best and the last val
mAP50 / mAP per preset, the epochs done, the CPU seconds and the wall seconds used, and
the first epoch (and its CPU seconds) at which mAP50 reached 0.5.

The budget counts the training process's own CPU time (``--clock cpu``, the default;
data loading runs in-process), so other jobs on a shared machine shrink it less than
wall time: 600 CPU seconds is 10 CPU-minutes. ``--clock wall`` counts wall time instead.
Presets train one after the other by default (``--parallel`` trains them side by side,
one process each, each on its own budget).

    nice -n 10 .venv/bin/python bench/detection_demo.py [--budget 600] [--train 48 --val 16]
        [--presets rt-detr-v2-tiny,conditional-detr-tiny,detr-tiny]
        [--epochs N | preset=N,...] [--lr 1e-3] [--clip 0.1] [--batch 16] [--size 128]

Every training flag left out keeps the recipe's choice. The first preset in ``--presets``
is the one the others are compared with (ratio of best mAP50).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

CANDIDATES = "rt-detr-v2-tiny"
CLOCKS = {"cpu": time.process_time, "wall": time.monotonic}


def budget_callback(budget_s: float, clock=time.process_time):
    """A Lightning callback that keeps a run inside ``budget_s`` seconds of ``clock`` and records
    val mAP per epoch."""
    from lightning.pytorch.callbacks import Callback

    class Budget(Callback):
        def __init__(self) -> None:
            self.start = clock()
            self.epoch_start = self.start
            self.history: list[tuple[int, float, float, float]] = []  # epoch, seconds, mAP50, mAP

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            self.epoch_start = clock()

        def on_validation_end(self, trainer, pl_module) -> None:
            metrics = trainer.callback_metrics
            if "val/map_50" in metrics:
                self.history.append(
                    (
                        trainer.current_epoch + 1,
                        clock() - self.start,
                        float(metrics["val/map_50"]),
                        float(metrics["val/map"]),
                    )
                )

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            now = clock()
            # Lightning validates before this hook, so the last epoch's time covers both.
            last_epoch = now - self.epoch_start
            if now - self.start + 1.05 * last_epoch > budget_s:
                trainer.should_stop = True

    return Budget()


def epochs_per_preset(text: str | None, presets: list[str]) -> dict[str, int | None]:
    """None (the recipe's), ``"40"`` (every preset) or ``"name=40,other=100"`` -> epochs per preset."""
    if text is None:
        return dict.fromkeys(presets)
    if "=" not in text:
        return dict.fromkeys(presets, int(text))
    pairs = dict(item.split("=", 1) for item in text.split(",") if item.strip())
    missing = [p for p in presets if p not in pairs]
    if missing:
        raise SystemExit(f"--epochs gives no epochs for {', '.join(missing)}")
    return {p: int(pairs[p]) for p in presets}


def run_preset(preset: str, epochs: int, data: Path, workspace: Path, args) -> dict:
    import torch

    from engine.config import RunConfig
    from engine.orchestration.local import train

    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {
        "data.path": str(data),
        "model.checkpoint": preset,
        "data.image_size": args.size,
        "optim.epochs": epochs,
        "optim.batch_size": args.batch,
        "optim.lr": args.lr,
        "optim.grad_clip": args.clip,
        "optim.seed": args.seed,
        "data.num_workers": args.workers,
        "workspace": str(workspace / preset),
    }
    config = RunConfig.from_dict({"task": {"name": "detection"}}).with_overrides(
        {k: v for k, v in overrides.items() if v is not None}
    )
    budget = budget_callback(args.budget, CLOCKS[args.clock])
    started, cpu_started = time.monotonic(), time.process_time()
    result = train(config, progress=False, callbacks=[budget])
    seconds, cpu_seconds = time.monotonic() - started, time.process_time() - cpu_started
    if result.status != "FINISHED":
        raise RuntimeError(f"{preset} on {data} ended {result.status}: {result.message}")
    if not budget.history:
        raise RuntimeError(f"{preset}: no validation epoch finished within {args.budget:.0f} s")
    best = max(budget.history, key=lambda row: row[2])
    reached = next((row for row in budget.history if row[2] >= 0.5), None)
    chosen = RunConfig.load(Path(result.last_checkpoint).parents[1] / "run.yaml").optim  # what the recipe chose
    return {
        "preset": preset,
        "epochs": budget.history[-1][0],
        "planned_epochs": chosen.epochs,
        "settings": f"batch {chosen.batch_size}, lr {chosen.lr:g}, clip {chosen.grad_clip:g}, "
        f"warm-up {chosen.warmup_steps}, {chosen.scheduler}",
        "reached_half": f"epoch {reached[0]}, {reached[1]:.0f} s" if reached else "never",
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "best_map50": best[2],
        "best_epoch": best[0],
        "best_map": best[3],
        "last_map50": budget.history[-1][2],
        "last_map": budget.history[-1][3],
        "history": budget.history,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default=CANDIDATES, help="comma-separated detection presets")
    parser.add_argument("--budget", type=float, default=600.0, help="seconds per preset (see --clock)")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="cpu",
        help="cpu: the run's own CPU seconds (fair on a shared machine); wall: elapsed time",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads per run (default: torch's own choice, as a user's run)"
    )
    parser.add_argument(
        "--parallel",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="train the presets side by side, one process each",
    )
    parser.add_argument("--train", type=int, default=48, help="generated training images (lightbox demo-data's)")
    parser.add_argument("--val", type=int, default=16, help="generated validation images")
    parser.add_argument("--size", type=int, default=None, help="input side in pixels (default: the preset's)")
    parser.add_argument(
        "--epochs", default=None, help="N, or preset=N,... (default: the recipe's; the budget may stop earlier)"
    )
    parser.add_argument("--batch", type=int, default=None, help="default: the config's")
    parser.add_argument("--lr", type=float, default=None, help="default: the recipe's")
    parser.add_argument("--clip", type=float, default=None, help="gradient clipping (default: the recipe's)")
    parser.add_argument("--workers", type=int, default=0, help="loader processes (0: in-process, counted)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from engine.data.sample import write_sample_dataset

    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    epochs = epochs_per_preset(args.epochs, presets)
    given = {
        "size": args.size,
        "batch": args.batch,
        "lr": args.lr,
        "clip": args.clip,
        "epochs": args.epochs,
        "torch threads": args.threads,
    }
    settings = ", ".join(f"{k} {v}" for k, v in given.items() if v is not None) or "nothing set"
    print(
        f"machine: {platform.node()} ({os.cpu_count()} CPUs), load {os.getloadavg()[0]:.1f} at start; "
        f"demo {args.train}/{args.val} images; {settings} (the rest: the recipe's); budget "
        f"{args.budget:.0f} {args.clock} s per preset",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="lightbox-detbench-") as tmp:
        data = write_sample_dataset(Path(tmp) / "demo", train_images=args.train, val_images=args.val, seed=args.seed)
        jobs = [(preset, epochs[preset], data, Path(tmp) / "runs", args) for preset in presets]
        if args.parallel:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(len(jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
                rows = list(pool.map(run_preset, *zip(*jobs)))
        else:
            rows = [run_preset(*job) for job in jobs]
    for row in rows:
        curve = " ".join(f"{epoch}:{map50:.2f}" for epoch, _, map50, _ in row["history"])
        print(f"{row['preset']}: mAP50 per epoch {curve}", flush=True)

    base = rows[0]["best_map50"]
    for row in rows:
        print(f"{row['preset']}: {row['settings']}")
    print(
        "\n| preset | epochs done/planned | CPU s | wall s | mAP50 >= 0.5 at | best mAP50 (epoch) | mAP at best "
        "| last mAP50 | last mAP | vs first |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        ratio = f"{row['best_map50'] / base:.2f}x" if base > 0 else "n/a"
        print(
            f"| {row['preset']} | {row['epochs']}/{row['planned_epochs']} | {row['cpu_seconds']:.0f} "
            f"| {row['seconds']:.0f} | {row['reached_half']} | {row['best_map50']:.3f} "
            f"({row['best_epoch']}) | {row['best_map']:.3f} | {row['last_map50']:.3f} | "
            f"{row['last_map']:.3f} | {ratio} |"
        )
    winner = max(rows, key=lambda row: row["best_map50"])
    print(f"\nbest: {winner['preset']} (mAP50 {winner['best_map50']:.3f}); load at end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
