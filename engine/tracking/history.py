"""Read-only views of runs for the desktop app (called from a worker thread).

mlflow is imported inside the functions so that importing this module costs
nothing at app start-up.  MlflowClient objects are cheap here: MLflow caches
the underlying store (and its database engine) per tracking URI.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

# Flattened config keys shown in the run list (see engine.orchestration.local._flatten).
DEFAULT_PARAM_KEYS = (
    "task.name",
    "model.checkpoint",
    "data.path",
    "optim.epochs",
    "optim.max_steps",
    "optim.batch_size",
    "optim.lr",
)
# Tags the app cares about; all "lightbox.*" tags are returned too.
_MLFLOW_NAME_TAG = "mlflow.runName"


def _client(tracking_uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri)


def metric_history(
    tracking_uri: str, run_id: str, keys: Iterable[str] | None = None
) -> dict[str, list[tuple[int, float, int]]]:
    """``{key: [(step, value, timestamp_ms), ...]}`` sorted by step, for ``keys`` or every
    metric the run has.  Keys the run never logged map to an empty list."""
    client = _client(tracking_uri)
    if keys is None:
        keys = sorted(client.get_run(run_id).data.metrics)
    history: dict[str, list[tuple[int, float, int]]] = {}
    for key in keys:
        points = [(int(m.step), float(m.value), int(m.timestamp)) for m in client.get_metric_history(run_id, key)]
        points.sort(key=lambda p: (p[0], p[2]))
        history[key] = points
    return history


def list_runs(
    tracking_uri: str,
    experiment: str = "lightbox",
    max_results: int = 100,
    param_keys: Sequence[str] = DEFAULT_PARAM_KEYS,
) -> list[dict[str, Any]]:
    """The experiment's runs, newest first, as plain dicts:

    ``run_id, run_name, status, start_time, end_time`` (ms since epoch, end_time None while
    running), ``metrics`` (latest value of each), ``params`` (only ``param_keys``) and
    ``tags`` (the ``lightbox.*`` tags: best checkpoint, run folder, task, ...).
    An unknown experiment gives an empty list.
    """
    client = _client(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    runs = client.search_runs([exp.experiment_id], max_results=max_results, order_by=["attributes.start_time DESC"])
    wanted = set(param_keys)
    rows = []
    for run in runs:
        info, data = run.info, run.data
        rows.append({
            "run_id": info.run_id,
            "run_name": info.run_name or data.tags.get(_MLFLOW_NAME_TAG),
            "status": info.status,
            "start_time": info.start_time,
            # MLflow keeps an old end_time when a run is resumed; hide it while it runs.
            "end_time": info.end_time if info.status != "RUNNING" else None,
            "metrics": dict(data.metrics),
            "params": {k: v for k, v in data.params.items() if k in wanted},
            "tags": {k: v for k, v in data.tags.items() if k.startswith("lightbox.")},
        })
    return rows


def run_status(tracking_uri: str, run_id: str) -> str:
    """RUNNING, SCHEDULED, FINISHED, FAILED or KILLED."""
    return _client(tracking_uri).get_run(run_id).info.status
