"""Ray Tune against sequential plain training, on the demo data with a tiny preset.

    .venv/bin/python bench/tune_efficiency.py [--trials 4] [--epochs 3] [--concurrent 1]

Runs the same budget of trials (same sampled learning rates) once through
``engine.orchestration.tune.search`` (ASHA) and once as sequential
``engine.orchestration.local.train`` runs, and prints one JSON line: trials per
hour each way, the share of trials ASHA stopped early, and Tune's overhead per
trial (search wall time minus the plain-training time of the epochs it actually
ran, per trial, with concurrency taken into account).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--concurrent", type=int, default=1)
    args = parser.parse_args()

    from engine.config import RunConfig
    from engine.data.sample import write_sample_dataset
    from engine.orchestration.local import train
    from engine.orchestration.tune import search

    root = Path(tempfile.mkdtemp(prefix="tune-bench-"))
    data = write_sample_dataset(root / "shapes")
    lrs = [3e-3 * (0.1 ** (i % 4)) for i in range(args.trials)]
    base = RunConfig.from_dict({"task": {"name": "classification"}}).with_overrides({
        "data.path": str(data), "model.checkpoint": "resnet-tiny", "optim.epochs": args.epochs,
        "optim.batch_size": 16, "data.image_size": 48, "data.num_workers": 0})

    start = time.perf_counter()
    epoch_times = []
    for lr in lrs:
        t0 = time.perf_counter()
        train(base.with_overrides({"optim.lr": lr, "workspace": str(root / "plain")}), progress=False)
        epoch_times.append((time.perf_counter() - t0) / args.epochs)
    plain_s = time.perf_counter() - start

    config = base.with_overrides({
        "workspace": str(root / "tune"), "search.num_samples": 1, "search.max_concurrent": args.concurrent,
        "search.space": {"optim.lr": {"type": "grid", "values": lrs}}})
    start = time.perf_counter()
    result = search(config)
    tune_s = time.perf_counter() - start

    epoch_s = sum(epoch_times) / len(epoch_times)
    epochs_run = sum(t["epochs"] for t in result.trials)
    early = sum(t["status"] == "EARLY_STOPPED" for t in result.trials)
    overhead = (tune_s * args.concurrent - epochs_run * epoch_s) / len(result.trials)
    print(json.dumps({
        "trials": len(result.trials), "epochs": args.epochs, "concurrent": args.concurrent,
        "plain_s": round(plain_s, 1), "tune_s": round(tune_s, 1),
        "plain_trials_per_hour": round(3600 * len(lrs) / plain_s, 1),
        "tune_trials_per_hour": round(3600 * len(result.trials) / tune_s, 1),
        "early_stopped_share": round(early / len(result.trials), 2),
        "tune_overhead_s_per_trial": round(overhead, 1), "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
