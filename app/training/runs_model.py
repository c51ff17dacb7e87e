"""The runs table's rows and a finished run's summary, Qt-free (called from worker threads).

Every run of the workspace's store is listed with its live status: a RUNNING run whose
heartbeat stopped is LOST (``engine.orchestration.jobs.effective_status``) and can be resumed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.orchestration.jobs import ACTIVE_STATUSES, LOST, effective_status

RUN_DIR_TAG, TASK_TAG = "lightbox.run_dir", "lightbox.task"
STATUSES = ("RUNNING", LOST, "FINISHED", "KILLED", "FAILED")
# The metric a task's best checkpoint is chosen by (the engine's monitors), used when no best_score exists.
FALLBACK_METRICS = ("val/accuracy", "val/map", "val/miou", "val/loss")


@dataclass
class RunRow:
    run_id: str
    name: str
    status: str
    task: str
    model: str
    best: str
    started_ms: int | None
    duration_s: float | None
    run_dir: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def started(self) -> str:
        return datetime.fromtimestamp(self.started_ms / 1000).strftime("%Y-%m-%d %H:%M") if self.started_ms else ""

    @property
    def can_stop(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def can_resume(self) -> bool:
        return self.status in ("KILLED", "FAILED", LOST)


def _best(metrics: dict[str, float], tags: dict[str, str]) -> str:
    monitor = tags.get("lightbox.best_monitor")
    if "best_score" in metrics:
        return f"{monitor or 'best'} {metrics['best_score']:.4g}"
    for key in FALLBACK_METRICS:
        if key in metrics:
            return f"{key} {metrics[key]:.4g}"
    return ""


def load_runs(tracking_uri: str, experiment: str = "lightbox", now: float | None = None) -> list[RunRow]:
    """Every run of ``experiment``, newest first."""
    from engine.tracking.history import list_runs

    now = time.time() if now is None else now
    rows = []
    for run in list_runs(tracking_uri, experiment, max_results=1000):
        tags, params = run["tags"], run["params"]
        status = effective_status(run["status"], tags, run["start_time"], now)
        end = run["end_time"] / 1000 if run["end_time"] else (None if status == LOST else now)
        start = run["start_time"] / 1000 if run["start_time"] else None
        if status == LOST:
            beat = tags.get("lightbox.heartbeat")
            end = float(beat) if beat else start
        rows.append(RunRow(
            run["run_id"], run["run_name"] or run["run_id"][:8], status,
            tags.get(TASK_TAG) or params.get("task.name", ""), params.get("model.checkpoint", ""),
            _best(run["metrics"], tags), run["start_time"],
            (end - start) if (end is not None and start is not None) else None,
            tags.get(RUN_DIR_TAG), dict(run["metrics"]), dict(tags)))
    return rows


def filter_runs(rows: list[RunRow], status: str | None = None, task: str | None = None) -> list[RunRow]:
    return [r for r in rows if (not status or r.status == status) and (not task or r.task == task)]


def run_config_text(row: RunRow) -> str:
    """The run's saved configuration (``run.yaml`` in its folder)."""
    if not row.run_dir:
        raise FileNotFoundError(f"run {row.run_id} has no run folder tag")
    path = Path(row.run_dir) / "run.yaml"
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FileNotFoundError(f"{path}: {exc.strerror or exc}") from None


def run_summary(tracking_uri: str, run_id: str) -> dict[str, Any]:
    """Final metrics and, for classification, the last confusion matrix the run logged."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    run = client.get_run(run_id)
    summary: dict[str, Any] = {"run_id": run_id, "status": run.info.status, "metrics": dict(run.data.metrics),
                               "task": run.data.tags.get(TASK_TAG, ""), "confusion": None}
    if summary["task"] == "classification":
        try:
            local = client.download_artifacts(run_id, "confusion_matrix.json")
            summary["confusion"] = json.loads(Path(local).read_text(encoding="utf-8"))
        except Exception:  # a run that never validated has no matrix
            summary["confusion"] = None
    return summary
