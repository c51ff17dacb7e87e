"""The one place a Lightning ``Trainer`` is made, and what every Trainer of Lightbox shares.

Local training, each Ray Train worker, the learning-rate finder, evaluation and
prediction all build theirs with :func:`build_trainer`, so a setting they share (no
Lightning logger: MLflow is fed by a callback; no model summary; device and precision
from :mod:`engine.orchestration.speed`; progress as JSON lines when a program asked for
them, see :mod:`engine.tracking.progress_events`) is set once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.config import RunConfig
from engine.orchestration.speed import Speed
from engine.tracking.progress_events import events_wanted

if TYPE_CHECKING:  # only for annotations: importing this module stays free of Lightning
    import lightning.pytorch as pl


def quiet_known_noise() -> None:
    """Silence messages that are expected here and only confuse users."""
    import logging
    import warnings

    # The data module's own batch hook is intentionally overridden by the module's device-side one.
    warnings.filterwarnings("ignore", message=".*overridden `on_after_batch_transfer`.*")
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*")
    # Lightbox's train loader resumes mid-epoch from the loop's own count (ResumableDataLoader),
    # without the state_dict Lightning looks for.
    warnings.filterwarnings("ignore", message=".*your dataloader is not resumable.*")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: "litlogger" not in record.getMessage()
    )


def data_parallel_strategy(module, processes: int):
    """The Trainer's strategy: one process as it is, several with DDP, whose search for
    parameters left out of the loss is asked for only where the model leaves some out."""
    if processes <= 1:
        return "auto"
    from lightning.pytorch.strategies import DDPStrategy

    from engine.models.ddp import has_unused_parameters

    return DDPStrategy(find_unused_parameters=has_unused_parameters(getattr(module, "model", module)))


def build_trainer(
    speed: Speed, config: RunConfig | None = None, *, progress: bool = False, **settings: Any
) -> pl.Trainer:
    """A Trainer on ``speed``'s device and precision, without a Lightning logger or model summary.

    With ``config`` it trains the run: its epochs, step limit, gradient clipping and
    accumulation, without Lightning's sanity validation. Without, it validates or predicts.
    ``settings`` are further Trainer arguments, and win over the ones above (callbacks, a
    strategy, a Ray Train worker's environment, a single device, ...).
    """
    import lightning.pytorch as pl

    arguments: dict[str, Any] = dict(
        accelerator=speed.accelerator,
        devices=speed.devices,
        precision=speed.precision,
        logger=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
    )
    if config is not None:
        optim = config.optim
        arguments.update(
            max_epochs=optim.epochs,
            max_steps=optim.max_steps or -1,
            gradient_clip_val=optim.grad_clip,
            accumulate_grad_batches=optim.accumulate_grad_batches,
            num_sanity_val_steps=0,
        )
    arguments.update(settings)
    if config is not None and events_wanted():
        arguments.update(with_progress_events(arguments.get("callbacks")))
    return pl.Trainer(**arguments)


def with_progress_events(callbacks: list | None) -> dict[str, Any]:
    """Trainer arguments that write progress events instead of drawing a bar.

    The program that asked for the events reads the child's output, where a bar's redraws
    would only be noise; a ``ProgressEvents`` already given (with its own step total) is kept.
    """
    from lightning.pytorch.callbacks import ProgressBar

    from engine.tracking.progress_callback import ProgressEvents

    kept = [callback for callback in callbacks or [] if not isinstance(callback, ProgressBar)]
    if not any(isinstance(callback, ProgressEvents) for callback in kept):
        kept.append(ProgressEvents())
    return dict(callbacks=kept, enable_progress_bar=False)


__all__ = ["build_trainer", "data_parallel_strategy", "quiet_known_noise", "with_progress_events"]
