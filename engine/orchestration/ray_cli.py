"""Verbs for search and serving: ``lightbox tune`` and ``lightbox server``.

Light to import (argparse only); each verb imports Ray or MLflow when it runs.
"""

from __future__ import annotations

import argparse
import sys


def _tune_config(args: argparse.Namespace):
    from engine.config import RunConfig

    if args.config:
        config = RunConfig.load(args.config)
    elif args.task:
        config = RunConfig.from_dict({"task": {"name": args.task}})
    else:
        raise SystemExit("lightbox tune: give --config run.yaml (with a search: section), or --data DIR and --task")
    overrides = {
        "data.path": args.data, "task.name": args.task if args.config else None, "model.checkpoint": args.model,
        "optim.epochs": args.epochs, "optim.batch_size": args.batch_size, "data.image_size": args.image_size,
        "data.num_workers": args.num_workers, "compute.accelerator": args.accelerator,
        "workspace": args.workspace, "tracking.uri": args.tracking_uri, "tracking.run_name": args.run_name,
        "search.num_samples": args.num_samples, "search.max_concurrent": args.max_concurrent,
        "search.scheduler": args.scheduler, "compute.ray_address": args.ray_address,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return config.with_overrides(overrides) if overrides else config


def _cmd_tune(args: argparse.Namespace) -> int:
    from engine.config import ConfigError
    from engine.data.problems import DatasetError
    from engine.orchestration.local import TrainingError
    from engine.orchestration.tune import SearchError, search

    try:
        config = _tune_config(args)
        if config.search is None or not config.search.space:
            raise SearchError(f"{args.config or 'the run configuration'}: no search.space to search "
                              "(add a search: section with space: {optim.lr: {type: loguniform, ...}})")
        result = search(config, tracking_uri=args.tracking_uri)
    except (ConfigError, DatasetError, TrainingError, SearchError, ValueError, OSError) as exc:
        print(f"lightbox tune: {exc}", file=sys.stderr)
        return 2
    return 3 if result.status == "KILLED" else 0


def _cmd_server(args: argparse.Namespace) -> int:
    from pathlib import Path

    from engine.orchestration.server import serve
    from engine.workspace import default_workspace

    workspace = Path(args.workspace).expanduser() if args.workspace else default_workspace()
    return serve(workspace, args.host, args.port)


def add_verbs(sub: argparse._SubParsersAction) -> None:
    tu = sub.add_parser("tune", help="hyper-parameter search with Ray Tune (each trial an MLflow run)",
                        description="Searches the config's search: section; prints a final JSON line with the "
                        "parent run, the best trial and every trial's status. Exit status: 0 done, "
                        "2 bad input or no usable trial, 3 stopped (finished trials kept).")
    tu.add_argument("--config", help="run configuration YAML with a search: section (flags override it)")
    tu.add_argument("--data", help="dataset folder")
    tu.add_argument("--task", choices=["classification", "detection", "segmentation", "multitask"])
    tu.add_argument("--model", help="preset name, local folder or hub id")
    tu.add_argument("--epochs", type=int, help="epochs per trial (ASHA's longest)")
    tu.add_argument("--batch-size", type=int)
    tu.add_argument("--image-size", type=int)
    tu.add_argument("--num-workers", type=int)
    tu.add_argument("--accelerator", choices=["auto", "cpu", "gpu"])
    tu.add_argument("--num-samples", type=int, help="trials to run (search.num_samples)")
    tu.add_argument("--max-concurrent", type=int, help="trials at the same time (search.max_concurrent)")
    tu.add_argument("--scheduler", choices=["asha", "fifo"])
    tu.add_argument("--ray-address", help="Ray cluster to attach to ('auto' or ray://host:port)")
    tu.add_argument("--run-name", help="name of the search's parent run")
    tu.add_argument("--tracking-uri", help="MLflow tracking URI (default: the workspace's SQLite store)")
    tu.add_argument("--workspace", help="workspace folder")
    tu.set_defaults(func=_cmd_tune)

    se = sub.add_parser("server", help="MLflow tracking server on the workspace (Ctrl-C stops it)")
    se.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    se.add_argument("--port", type=int, default=5000)
    se.add_argument("--workspace", help="workspace folder (its mlflow.db and mlartifacts/)")
    se.set_defaults(func=_cmd_server)
