"""Command-line flags that override a run configuration: one table for every verb.

``lightbox train``, ``tune`` and ``lr-find`` take a ``--config`` file and/or flags;
each flag a verb defines maps to one dotted config key here, so a flag means the same
thing in every verb (and flags win over the file).
"""

from __future__ import annotations

import argparse

_TASKS = ["classification", "detection", "segmentation", "multitask"]

# flag -> argparse keywords; a verb picks the flags it takes (and may reword a help text)
FLAG_ARGS: dict[str, dict] = {
    "config": {"help": "run configuration YAML (flags override it)"},
    "data": {"help": "dataset folder"},
    "task": {"choices": _TASKS},
    "model": {"help": "preset name (see `lightbox models`), local folder or hub id"},
    "epochs": {"type": int},
    "max_steps": {"type": int},
    "batch_size": {"type": int},
    "lr": {"type": float},
    "image_size": {"type": int},
    "num_workers": {"type": int},
    "devices": {"help": "number of devices or 'auto'"},
    "accelerator": {"choices": ["auto", "cpu", "gpu"]},
    "precision": {"choices": ["auto", "32", "16-mixed", "bf16-mixed"]},
    "run_name": {},
}


def add_run_flags(parser: argparse.ArgumentParser, *flags: str, **reworded: str) -> None:
    """Add the named run-config flags to a verb's parser (``reworded``: flag -> its help text there)."""
    for flag in flags:
        kwargs = dict(FLAG_ARGS[flag])
        if flag in reworded:
            kwargs["help"] = reworded[flag]
        parser.add_argument("--" + flag.replace("_", "-"), **kwargs)

# argparse destination -> dotted RunConfig key
FLAG_KEYS: dict[str, str] = {
    "data": "data.path", "model": "model.checkpoint", "epochs": "optim.epochs", "max_steps": "optim.max_steps",
    "batch_size": "optim.batch_size", "lr": "optim.lr", "image_size": "data.image_size",
    "num_workers": "data.num_workers", "devices": "compute.devices", "accelerator": "compute.accelerator",
    "precision": "optim.precision", "workspace": "workspace", "tracking_uri": "tracking.uri",
    "run_name": "tracking.run_name", "num_samples": "search.num_samples",
    "max_concurrent": "search.max_concurrent", "scheduler": "search.scheduler",
}


def config_from_flags(args: argparse.Namespace):
    """The run configuration from ``--config`` and/or the flags the verb defines."""
    from engine.config import RunConfig

    if args.config:
        config = RunConfig.load(args.config)
    elif getattr(args, "task", None):
        config = RunConfig.from_dict({"task": {"name": args.task}})
    else:
        raise ValueError("give --config run.yaml, or --data DIR and --task")
    overrides = {key: getattr(args, flag) for flag, key in FLAG_KEYS.items() if getattr(args, flag, None) is not None}
    if args.config and getattr(args, "task", None):
        overrides["task.name"] = args.task
    return config.with_overrides(overrides) if overrides else config
