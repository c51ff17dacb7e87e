"""Which run and which checkpoint an export comes from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .manifest import ExportError


@dataclass
class Source:
    run_id: str
    config: object  # engine.config.RunConfig
    run_dir: Path
    checkpoint: Path
    tracking_uri: str | None
    status: str | None  # MLflow status, None when MLflow is not used
    note: str | None = None  # said to the user (e.g. "still running")


def _mlflow_status(run_id: str, uri: str | None) -> str | None:
    from engine.orchestration.local import mlflow_available

    if not uri or not mlflow_available():
        return None
    from mlflow.tracking import MlflowClient

    try:
        return MlflowClient(uri).get_run(run_id).info.status
    except Exception:  # a run known only by its folder
        return None


def resolve_run(run_id: str, *, tracking_uri: str | None = None, workspace: str | None = None) -> Source:
    """The run's config, folder and best checkpoint (the newest one where none is best yet)."""
    from engine.orchestration.evaluate import run_files
    from engine.orchestration.local import TrainingError

    try:
        config, run_dir, checkpoint, uri = run_files(run_id, tracking_uri, workspace)
    except TrainingError as exc:
        raise ExportError(str(exc)) from None
    status = _mlflow_status(run_id, uri)
    note = None
    if status == "RUNNING":
        note = (f"run {run_id} is still running: exporting its best checkpoint so far "
                f"({checkpoint.name}); export again when it has finished")
    elif status not in (None, "FINISHED"):
        note = f"run {run_id} ended {status}: exporting its checkpoint {checkpoint.name}"
    return Source(run_id, config, run_dir, checkpoint, uri, status, note)


def best_run_id(experiment: str, *, tracking_uri: str | None = None, workspace: str | None = None) -> str:
    """The finished run of ``experiment`` with the best value of its task's metric."""
    from engine.orchestration.local import mlflow_available
    from engine.tasks.registry import get_task
    from engine.tracking.store import resolve_tracking_uri
    from engine.workspace import default_workspace

    if not mlflow_available():
        raise ExportError("--best needs MLflow to compare runs; give a run id instead")
    from mlflow.tracking import MlflowClient

    uri = resolve_tracking_uri(tracking_uri, Path(workspace) if workspace else default_workspace())
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise ExportError(f"no experiment named '{experiment}' in {uri}")
    runs = client.search_runs([found.experiment_id], filter_string="attributes.status = 'FINISHED'",
                              max_results=5000)
    best, best_value = None, None
    for run in runs:
        task = run.data.tags.get("lightbox.task") or run.data.params.get("task.name")
        if not task:
            continue
        module = get_task(task).module_class
        value = run.data.metrics.get(module.monitor)
        if value is None:
            continue
        key = value if module.monitor_mode == "max" else -value
        if best_value is None or key > best_value:
            best, best_value = run, key
    if best is None:
        raise ExportError(f"experiment '{experiment}' has no finished run with a validation metric")
    return best.info.run_id
