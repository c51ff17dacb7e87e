"""Ray Train with 2 CPU workers against one process: training steps per second per worker.

    nice -n 10 .venv/bin/python bench/ray_train_speed.py [--epochs 6] [--image-size 64] [--workers 2]

The same run (demo data, resnet-tiny, batch 8 per worker) once as a plain local run and
once with ``compute.strategy: ray``. Speed comes from the MLflow ``train/loss`` points
(logged every step): one over the median time between consecutive steps, so start-up,
validation and checkpoints are left out. The one process runs twice: with torch's default
threads and with one thread, as a one-CPU Ray worker has. Prints one JSON line with the
speeds and ratios (a Ray worker's step also averages the gradients over the workers).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _steps_per_s(result) -> float:
    from mlflow.tracking import MlflowClient

    history = sorted(
        MlflowClient(result.tracking_uri).get_metric_history(result.run_id, "train/loss"), key=lambda m: m.step
    )
    gaps = [(b.timestamp - a.timestamp) / 1000 for a, b in zip(history, history[1:]) if b.step == a.step + 1]
    return 1 / statistics.median(gaps)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from engine.config import RunConfig
    from engine.data.sample import write_sample_dataset
    from engine.orchestration.local import train
    from engine.orchestration.ray_train import train_distributed

    root = Path(tempfile.mkdtemp(prefix="ray-train-bench-"))
    config = RunConfig.from_dict({"task": {"name": "classification"}}).with_overrides(
        {
            "data.path": str(write_sample_dataset(root / "shapes")),
            "model.checkpoint": "resnet-tiny",
            "optim.epochs": args.epochs,
            "optim.batch_size": 8,
            "data.image_size": args.image_size,
            "data.num_workers": 0,
            "workspace": str(root / "ws"),
            "tracking.log_every_n_steps": 1,
        }
    )

    import torch

    start = time.perf_counter()
    plain = train(config, progress=False)
    plain_s = time.perf_counter() - start
    # A Ray worker with one CPU runs torch on one thread (Ray sets OMP_NUM_THREADS=1):
    # the same budget for the one process, on top of its default (all cores).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    plain_1 = train(config, progress=False)
    torch.set_num_threads(threads)
    start = time.perf_counter()
    ray = train_distributed(config.with_overrides({"compute.strategy": "ray", "compute.num_workers": args.workers}))
    ray_s = time.perf_counter() - start

    plain_speed, plain_1_speed, ray_speed = _steps_per_s(plain), _steps_per_s(plain_1), _steps_per_s(ray)
    print(
        json.dumps(
            {
                "workers": args.workers,
                "epochs": args.epochs,
                "image_size": args.image_size,
                "batch_per_worker": 8,
                "one_process_threads": threads,
                "one_process_steps_per_s": round(plain_speed, 2),
                "one_process_1_thread_steps_per_s": round(plain_1_speed, 2),
                "ray_steps_per_s_per_worker": round(ray_speed, 2),
                "per_worker_ratio": round(ray_speed / plain_speed, 2),
                "per_worker_ratio_same_threads": round(ray_speed / plain_1_speed, 2),
                "ray_samples_per_s": round(ray_speed * 8 * args.workers, 1),
                "one_process_samples_per_s": round(plain_speed * 8, 1),
                "one_process_wall_s": round(plain_s, 1),
                "ray_wall_s": round(ray_s, 1),
                "cpus": len(os.sched_getaffinity(0)),
                "load_1min": round(os.getloadavg()[0], 1),
            }
        )
    )


if __name__ == "__main__":
    main()
