"""Learning-rate range test: ``lightbox lr-find`` and :func:`find_lr` (which the app calls).

The model of a run configuration trains for a few steps while the learning rate
grows exponentially from ``min_lr`` to ``max_lr`` (Lightning's tuner, as in
fastai); the suggestion is the learning rate where the loss falls fastest.
Nothing is written to the workspace and no MLflow run is made: the model's
starting weights are restored afterwards and thrown away.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from dataclasses import asdict, dataclass, field

from engine.config import RunConfig
from engine.run_flags import add_run_flags, config_from_flags

__all__ = ["LrSuggestion", "SETUP_PREFIX", "add_verbs", "find_lr"]

#: Starts the line that says how the sweep runs ("lr-find: 100 steps at 256 px, batch 16, on the cpu").
SETUP_PREFIX = "lr-find:"


@dataclass
class LrSuggestion:
    """The suggested learning rate (None when the loss never fell) and the curve it came from."""

    lr: float | None
    min_lr: float
    max_lr: float
    steps: int
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def find_lr(
    config: RunConfig, *, min_lr: float = 1e-6, max_lr: float = 1.0, num_steps: int = 100, progress: bool = False
) -> LrSuggestion:
    """Run the range test for ``config`` and return the suggestion.

    ``config`` is any run configuration (its "auto" settings are resolved as
    training would); ``num_steps`` optimiser steps are spread evenly on a log
    scale between ``min_lr`` and ``max_lr``.
    """
    if not (0 < min_lr < max_lr):
        raise ValueError(f"need 0 < min_lr < max_lr, got min_lr={min_lr} and max_lr={max_lr}")
    if num_steps < 5:
        raise ValueError(f"num_steps must be at least 5 to fit a curve, got {num_steps}")
    import lightning.pytorch as pl
    from lightning.pytorch.tuner import Tuner

    from engine.orchestration.builders import build_datamodule, build_module, image_size_of, model_checkpoint
    from engine.orchestration.speed import speed_settings
    from engine.orchestration.trainer import build_trainer, quiet_known_noise
    from engine.recipe_optim import family_of
    from engine.recipes import resolve_recipe
    from engine.tracking.progress_callback import ProgressEvents
    from engine.tracking.progress_events import events_wanted

    quiet_known_noise()
    # The run as training would set it up: the recipe's choices, the same speed switches.
    config = resolve_recipe(config, verbose=False)
    speed = speed_settings(config, family_of(config.model.checkpoint or ""))
    if progress:  # what the sweep costs, said before the slow part (the app shows it beside the steps)
        print(
            f"{SETUP_PREFIX} {num_steps} steps at {image_size_of(config, model_checkpoint(config))} px, batch "
            f"{config.optim.batch_size}, on the {speed.accelerator}",
            file=sys.stderr,
            flush=True,
        )
    pl.seed_everything(config.optim.seed, workers=True, verbose=False)
    datamodule = build_datamodule(config, speed)
    module = build_module(config, datamodule, speed)
    with tempfile.TemporaryDirectory(prefix="lightbox-lr-find-") as tmp:
        # The sweep sets its own step limit; no checkpoints, no validation.
        # Progress events (when asked for) count the sweep's steps, not the run's.
        events = [ProgressEvents(steps=num_steps)] if events_wanted() else []
        trainer = build_trainer(
            speed,
            config,
            progress=progress,
            devices=1,
            max_epochs=10_000,
            max_steps=-1,
            enable_checkpointing=False,
            default_root_dir=tmp,
            limit_val_batches=0,
            callbacks=events,
        )
        if events:
            report_from_the_module(module, events[0])
        finder = Tuner(trainer).lr_find(
            module,
            datamodule=datamodule,
            min_lr=min_lr,
            max_lr=max_lr,
            num_training=num_steps,
            update_attr=False,
            attr_name="lr",
        )
    if finder is None:
        raise RuntimeError("the learning-rate finder did not run (Lightning returned no result)")
    lrs = [float(x) for x in finder.results.get("lr", [])]
    losses = [float(x) for x in finder.results.get("loss", [])]
    suggestion = None
    if sum(math.isfinite(x) for x in losses) >= 5:
        try:
            suggestion = finder.suggestion()
        except (IndexError, ValueError):  # too few finite points for a gradient
            suggestion = None
    return LrSuggestion(float(suggestion) if suggestion else None, min_lr, max_lr, len(lrs), lrs, losses)


def report_from_the_module(module, events) -> None:
    """Have ``module``'s own hooks drive the ``events`` callback during the sweep.

    Lightning's finder trains with its own callback in place of the Trainer's (and draws
    its own bar); the module's hooks are the ones still called, so the events ride on them.
    """

    def chained(hook: str):
        own = getattr(module, hook)

        def both(*args):
            result = own(*args)
            getattr(events, hook)(module.trainer, module, *args)
            return result

        return both

    for hook in ("on_train_start", "on_train_batch_end"):
        setattr(module, hook, chained(hook))


def _cmd_lr_find(args: argparse.Namespace) -> int:
    from engine.config import ConfigError
    from engine.data.problems import DatasetError
    from engine.orchestration.errors import TrainingError

    try:
        result = find_lr(
            config_from_flags(args),
            min_lr=args.min_lr,
            max_lr=args.max_lr,
            num_steps=args.steps,
            progress=args.progress,
        )
    except (ConfigError, DatasetError, TrainingError, ValueError, OSError) as exc:
        print(f"lightbox lr-find: {exc}", file=sys.stderr)
        return 2
    if result.lr is None:
        print(
            "lightbox lr-find: the loss did not fall anywhere in the range; try a wider range "
            "(--min-lr/--max-lr) or more steps",
            file=sys.stderr,
        )
    else:
        print(f"suggested learning rate: {result.lr:.3g} (set optim.lr or pass --lr)", file=sys.stderr)
    print(result.to_json())
    return 0 if result.lr is not None else 1


def add_verbs(sub) -> None:
    """Register ``lightbox lr-find`` (the same run flags as ``lightbox train``)."""
    p = sub.add_parser(
        "lr-find",
        help="suggest a learning rate for a run (learning-rate range test)",
        description="Trains a few steps with a growing learning rate and prints the suggested "
        "one, then a JSON line with the curve. Exit status: 0 suggested, 1 no suggestion, "
        "2 bad input.",
    )
    add_run_flags(p)
    p.add_argument("--min-lr", type=float, default=1e-6)
    p.add_argument("--max-lr", type=float, default=1.0)
    p.add_argument("--steps", type=int, default=100, help="optimiser steps in the sweep")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=_cmd_lr_find)
