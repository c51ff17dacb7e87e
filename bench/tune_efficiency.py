"""Ray Tune against sequential plain training runs, on the demo data with a tiny preset.

    nice -n 10 .venv/bin/python bench/tune_efficiency.py [--trials 4] [--epochs 3] [--concurrent 1]

Runs the same budget of trials (same learning rates) once as one ``lightbox tune``
(ASHA) and once as sequential ``lightbox train`` runs, both as the command line
(``python -m engine``, the headless verbs of ``lightbox``), and prints one JSON line:

* trials per hour each way and the share of trials ASHA stopped early;
* ``tune_overhead_s_per_trial``: the search's wall time (times its concurrency) minus
  the time its trials' MLflow runs were open, per trial: Ray's start, actor starts,
  imports, Tune's bookkeeping; everything a trial spends outside its training run;
* ``plain_overhead_s_per_run``: the same for the plain runs (process start, imports, model build);
* ``tune_added_s_per_trial``: what Tune adds per trial over that: the search's time outside
  its trial runs, less one plain run's (a search is one process too), per trial;
* ``warm_gap_s``: the median time from one trial's run ending to the next one's starting
  (with one trial at a time): a warm worker's cost per trial, data and model set-up included.
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

import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]


def _engine(*args: str) -> tuple[float, str]:
    """Run ``python -m engine ARGS``; its wall time and stdout."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"python -m engine {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall, done.stdout


def _summary(stdout: str) -> dict:
    return json.loads([line for line in stdout.splitlines() if line.startswith("{")][-1])


def _open_seconds(client, run_id: str) -> float:
    info = client.get_run(run_id).info
    return (info.end_time - info.start_time) / 1000


def _warm_gap_s(client, run_ids: list[str]) -> float | None:
    spans = sorted((info.start_time, info.end_time) for info in (client.get_run(r).info for r in run_ids))
    gaps = [(start - end) / 1000 for (_, end), (start, _) in zip(spans, spans[1:])]
    return round(statistics.median(gaps), 2) if gaps else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--concurrent", type=int, default=1)
    args = parser.parse_args()

    from mlflow.tracking import MlflowClient

    from engine.data.sample import write_sample_dataset

    root = Path(tempfile.mkdtemp(prefix="tune-bench-"))
    data = write_sample_dataset(root / "shapes")
    lrs = [3e-3 * (0.1 ** (i % 4)) for i in range(args.trials)]
    base = {
        "task": {"name": "classification"},
        "data": {"path": str(data), "image_size": 48, "num_workers": 0},
        "model": {"checkpoint": "resnet-tiny"},
        "optim": {"epochs": args.epochs, "batch_size": 16},
    }

    plain_config = root / "plain.yaml"
    plain_config.write_text(yaml.safe_dump({**base, "workspace": str(root / "plain")}))
    plain_s, plain_open, plain_uri = 0.0, 0.0, None
    for lr in lrs:
        wall, out = _engine("train", "--config", str(plain_config), "--lr", str(lr), "--no-progress")
        run = _summary(out)
        plain_uri = run["tracking_uri"]
        plain_s += wall
        plain_open += _open_seconds(MlflowClient(plain_uri), run["run_id"])

    tune_config = root / "tune.yaml"
    tune_config.write_text(
        yaml.safe_dump(
            {
                **base,
                "workspace": str(root / "tune"),
                "search": {
                    "num_samples": 1,
                    "max_concurrent": args.concurrent,
                    "space": {"optim.lr": {"type": "grid", "values": lrs}},
                },
            }
        )
    )
    tune_s, out = _engine("tune", "--config", str(tune_config))
    result = _summary(out)
    client = MlflowClient(result["tracking_uri"])
    trials = result["trials"]
    tune_open = sum(_open_seconds(client, t["run_id"]) for t in trials if t["run_id"])
    early = sum(t["status"] == "EARLY_STOPPED" for t in trials)
    tune_outside = tune_s * args.concurrent - tune_open
    plain_outside = (plain_s - plain_open) / len(lrs)
    print(
        json.dumps(
            {
                "trials": len(trials),
                "epochs": args.epochs,
                "concurrent": args.concurrent,
                "epochs_run": sum(t["epochs"] for t in trials),
                "plain_s": round(plain_s, 1),
                "tune_s": round(tune_s, 1),
                "plain_trials_per_hour": round(3600 * len(lrs) / plain_s, 1),
                "tune_trials_per_hour": round(3600 * len(trials) / tune_s, 1),
                "speedup": round(plain_s / tune_s, 2),
                "early_stopped_share": round(early / len(trials), 2),
                "tune_overhead_s_per_trial": round(tune_outside / len(trials), 1),
                "plain_overhead_s_per_run": round(plain_outside, 1),
                "warm_gap_s": (
                    _warm_gap_s(client, [t["run_id"] for t in trials if t["run_id"]]) if args.concurrent == 1 else None
                ),
                "tune_added_s_per_trial": round((tune_outside - plain_outside) / len(trials), 1),
                "cpus": len(os.sched_getaffinity(0)),
                "load_1min": round(os.getloadavg()[0], 1),
            }
        )
    )


if __name__ == "__main__":
    main()
