"""A run's place on disk and in tracking: its workspace, its folder, opening and finding it.

Everything a run writes lives in ``<workspace>/runs/<run_id>/`` (its ``run.yaml``, its
checkpoints) and in MLflow (params, the config as an artifact, metrics, status, the
folder's path as a tag), whether it trains in this process or on Ray Train workers.
"""

from __future__ import annotations

import sys
from pathlib import Path

from engine.config import RunConfig
from engine.orchestration.errors import TrainingError
from engine.tracking.client import TrackingUnreachableError, check_reachable, mlflow_available
from engine.tracking.tags import RUN_DIR_TAG, WEIGHTS_TAG


def workspace_of(config: RunConfig) -> Path:
    from engine.workspace import default_workspace

    return (Path(config.workspace).expanduser() if config.workspace else default_workspace()).resolve()


def check_tracking(uri: str | None) -> None:
    """Refuse a tracking server that does not answer (in seconds), as training refuses: TrainingError."""
    try:
        check_reachable(uri)
    except TrackingUnreachableError as exc:
        raise TrainingError(str(exc)) from None


def open_run(uri: str, workspace: Path, *, experiment: str, run_name: str | None, run_id: str | None, tags: dict):
    """:func:`engine.tracking.runs.open_run_logger`, refusing an unreachable server with a TrainingError."""
    from engine.tracking.runs import open_run_logger

    try:
        return open_run_logger(uri, workspace, experiment=experiment, run_name=run_name, run_id=run_id, tags=tags)
    except TrackingUnreachableError as exc:
        raise TrainingError(str(exc)) from None


def start_run_folder(run_logger, config: RunConfig, workspace: Path) -> Path:
    """A new run's folder with its run.yaml, and the run's params and config in tracking."""
    from engine.models.weights import run_weights
    from engine.tracking.runs import record_config

    run_dir = workspace / "runs" / run_logger.run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    config.save(run_dir / "run.yaml")
    run_logger.set_tag(RUN_DIR_TAG, str(run_dir))
    # Which weights the run starts from, said plainly: offline presets are randomly initialised.
    weights = run_weights(config)
    run_logger.set_tag(WEIGHTS_TAG, weights)
    print(f"weights: {weights}", file=sys.stderr)
    record_config(run_logger, config)
    return run_dir


def locate_run(run_id: str, tracking_uri: str | None, workspace: str | Path) -> tuple[Path, str]:
    """Folder and tracking URI of an earlier run: ``<workspace>/runs/<id>``, else MLflow's run tag."""
    from engine.tracking.store import resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri, Path(workspace))
    run_dir = Path(workspace) / "runs" / run_id
    if not (run_dir / "run.yaml").is_file() and mlflow_available():
        from engine.tracking.client import client

        try:
            run = client(uri).get_run(run_id)
        except Exception as exc:  # mlflow raises its own exception types per store
            raise TrainingError(f"run {run_id} not found in {uri}: {exc}") from None
        run_dir = Path(run.data.tags.get(RUN_DIR_TAG, ""))
    if not (run_dir / "run.yaml").is_file():
        raise TrainingError(f"run {run_id}: no folder {run_dir} with a run.yaml")
    return run_dir, uri


__all__ = ["check_tracking", "locate_run", "open_run", "start_run_folder", "workspace_of"]
