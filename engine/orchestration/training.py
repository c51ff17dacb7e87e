"""``train()``: one training run, in this process or on Ray Train workers.

The choice sits here, above both ways to train, so neither imports the other:
``compute.strategy: ray`` (a new run, not a resume) goes to
:func:`engine.orchestration.ray_train.train_distributed`; everything else, including
the helper processes Lightning starts for a multi-device run, to
:func:`engine.orchestration.local_training.train_locally`.
"""

from __future__ import annotations

from pathlib import Path

from engine.config import RunConfig
from engine.orchestration.result import TrainResult
from engine.orchestration.trainer import quiet_known_noise


def train(
    config: RunConfig | None = None,
    *,
    resume_run_id: str | None = None,
    tracking_uri: str | None = None,
    workspace: str | Path | None = None,
    progress: bool = True,
    callbacks: list | None = None,
    checkpoint_every_n_steps: int = 50,
    tags: dict | None = None,
) -> TrainResult:
    """Run (or resume) one training run and return what happened (``tags``: extra MLflow run tags)."""
    from engine.tracking.shared_run import is_helper_rank

    quiet_known_noise()
    if config is not None and config.compute.strategy == "ray" and not resume_run_id and not is_helper_rank():
        from engine.orchestration.ray_train import train_distributed  # Ray Train workers

        return train_distributed(config, tracking_uri=tracking_uri, callbacks=callbacks, tags=tags)
    from engine.orchestration.local_training import train_locally

    return train_locally(
        config,
        resume_run_id=resume_run_id,
        tracking_uri=tracking_uri,
        workspace=workspace,
        progress=progress,
        callbacks=callbacks,
        checkpoint_every_n_steps=checkpoint_every_n_steps,
        tags=tags,
    )


__all__ = ["train"]
