"""Which run and which checkpoint an export comes from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .manifest import ExportError

if TYPE_CHECKING:
    from engine.config import RunConfig


@dataclass
class Source:
    run_id: str
    config: RunConfig
    run_dir: Path
    checkpoint: Path
    tracking_uri: str | None
    status: str | None  # MLflow status, None when MLflow is not used
    note: str | None = None  # said to the user (e.g. "still running")


def _mlflow_status(run_id: str, uri: str | None) -> str | None:
    from engine.tracking.client import client, mlflow_available

    if not uri or not mlflow_available():
        return None
    try:
        return client(uri).get_run(run_id).info.status
    except Exception:  # a run known only by its folder
        return None


def resolve_run(run_id: str, *, tracking_uri: str | None = None, workspace: str | None = None) -> Source:
    """The run's config, folder and best checkpoint (the newest one where none is best yet)."""
    from engine.orchestration.errors import TrainingError
    from engine.orchestration.evaluate import run_files

    try:
        config, run_dir, checkpoint, uri = run_files(run_id, tracking_uri, workspace)
    except TrainingError as exc:
        raise ExportError(str(exc)) from None
    status = _mlflow_status(run_id, uri)
    note = None
    if status == "RUNNING":
        note = (
            f"run {run_id} is still running: exporting its best checkpoint so far "
            f"({checkpoint.name}); export again when it has finished"
        )
    elif status not in (None, "FINISHED"):
        note = f"run {run_id} ended {status}: exporting its checkpoint {checkpoint.name}"
    return Source(run_id, config, run_dir, checkpoint, uri, status, note)


def _checkpoint_score(run: Any, monitor: str) -> float | None:
    """The score of the checkpoint an export would take: its best one where the run logged it
    for ``monitor``, else the metric's last value."""
    from engine.tracking.tags import BEST_MONITOR_TAG, BEST_SCORE_METRIC

    if run.data.tags.get(BEST_MONITOR_TAG) == monitor and BEST_SCORE_METRIC in run.data.metrics:
        return run.data.metrics[BEST_SCORE_METRIC]
    return run.data.metrics.get(monitor)


@dataclass
class BestRun:
    run_id: str
    task: str
    metric: str
    value: float
    compared: int  # finished runs of the task that logged the metric


def best_run(
    experiment: str, *, task: str | None = None, tracking_uri: str | None = None, workspace: str | None = None
) -> BestRun:
    """The finished run of ``experiment`` with the best value of its task's metric.

    Runs of different tasks have different metrics (accuracy, mAP, mIoU) that cannot be
    compared: an experiment holding several tasks needs ``task`` to choose among them.
    """
    from engine.tasks.registry import get_task
    from engine.tracking.client import client, experiment_id, mlflow_available, search_runs, status_is
    from engine.tracking.store import resolve_tracking_uri
    from engine.tracking.tags import TASK_TAG
    from engine.workspace import default_workspace

    if not mlflow_available():
        raise ExportError("--best needs MLflow to compare runs; give a run id instead")

    if task is not None:
        try:
            get_task(task)
        except ValueError as exc:
            raise ExportError(f"--task: {exc}") from None
    uri = resolve_tracking_uri(tracking_uri, Path(workspace) if workspace else default_workspace())
    mlflow_client = client(uri)
    found = experiment_id(mlflow_client, experiment)
    if found is None:
        raise ExportError(f"no experiment named '{experiment}' in {uri}")
    runs = search_runs(mlflow_client, [found], status_is("FINISHED"), max_results=5000)
    by_task: dict[str, list] = {}
    for run in runs:
        name = run.data.tags.get(TASK_TAG) or run.data.params.get("task.name")
        if name:
            by_task.setdefault(name, []).append(run)
    found_text = ", ".join(f"{name} ({len(r)} run{'s' * (len(r) != 1)})" for name, r in sorted(by_task.items()))
    if task is None and len(by_task) > 1:
        raise ExportError(
            f"experiment '{experiment}' holds finished runs of several tasks: {found_text}; "
            "their metrics cannot be compared, choose one with --task"
        )
    if task is not None and task not in by_task:
        raise ExportError(
            f"experiment '{experiment}' has no finished {task} run (it holds "
            f"{found_text or 'no finished run of a known task'})"
        )
    chosen = task or next(iter(by_task), None)
    if chosen is None:
        raise ExportError(f"experiment '{experiment}' has no finished Lightbox run")
    module = get_task(chosen).module_class
    scored = [(run, value) for run in by_task[chosen] if (value := _checkpoint_score(run, module.monitor)) is not None]
    if not scored:
        raise ExportError(f"experiment '{experiment}': no finished {chosen} run logged {module.monitor}")
    sign = 1 if module.monitor_mode == "max" else -1
    run, value = max(scored, key=lambda item: sign * item[1])
    return BestRun(run.info.run_id, chosen, module.monitor, float(value), len(scored))
