"""Read-only views of runs for the desktop app (called from a worker thread).

mlflow is imported inside the functions so that importing this module costs
nothing at app start-up.  MlflowClient objects are cheap here: MLflow caches
the underlying store (and its database engine) per tracking URI.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

# A search's trials carry PARENT_RUN_TAG: the app groups them under their search by it.
from engine.tracking.client import client as _client
from engine.tracking.client import experiment_id, search_runs
from engine.tracking.tags import PARENT_RUN_TAG, PREFIX, RUN_NAME_TAG

if TYPE_CHECKING:  # only for annotations: mlflow is imported inside the functions
    from mlflow import MlflowClient

# Flattened config keys shown in the run list (see engine.tracking.runs.flat_params).
DEFAULT_PARAM_KEYS = (
    "task.name",
    "model.checkpoint",
    "data.path",
    "optim.epochs",
    "optim.max_steps",
    "optim.batch_size",
    "optim.lr",
)


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
    ``tags`` (the ``lightbox.*`` tags: best checkpoint, run folder, task, ...; and a trial's
    ``mlflow.parentRunId``, its search).
    An unknown experiment gives an empty list.
    """
    client = _client(tracking_uri)
    found = experiment_id(client, experiment)
    if found is None:
        return []
    runs = search_runs(client, [found], max_results=max_results, order_by=["attributes.start_time DESC"])
    wanted = set(param_keys)
    rows = []
    for run in runs:
        info, data = run.info, run.data
        rows.append(
            {
                "run_id": info.run_id,
                "run_name": info.run_name or data.tags.get(RUN_NAME_TAG),
                "status": info.status,
                "start_time": info.start_time,
                # MLflow keeps an old end_time when a run is resumed; hide it while it runs.
                "end_time": info.end_time if info.status != "RUNNING" else None,
                "metrics": dict(data.metrics),
                "params": {k: v for k, v in data.params.items() if k in wanted},
                "tags": {k: v for k, v in data.tags.items() if k.startswith(PREFIX) or k == PARENT_RUN_TAG},
            }
        )
    return rows


def run_status(tracking_uri: str, run_id: str) -> str:
    """RUNNING, SCHEDULED, FINISHED, FAILED or KILLED."""
    return _client(tracking_uri).get_run(run_id).info.status


def run_state(tracking_uri: str, run_id: str) -> tuple[str, int | None]:
    """``(status, end_time ms)``: one cheap read that tells an ended run resumed (or ended again)."""
    info = _client(tracking_uri).get_run(run_id).info
    return info.status, info.end_time


class MetricReader:
    """Reads a run's metric points incrementally: each ``poll`` returns only the points
    written since the previous one (the app's charts call it about once a second).

    For each key it keeps how many points it has read and asks the store for the rest
    (MLflow's metric history is ordered by timestamp and paged by offset), so a long run
    costs the same per poll as a short one.  ``poll`` also returns the run's status and
    tags, which the runs table needs anyway.
    """

    PAGE = 5000

    def __init__(self, tracking_uri: str, run_id: str) -> None:
        self.tracking_uri = tracking_uri
        self.run_id = run_id
        self._read: dict[str, int] = {}

    def reset(self) -> None:
        self._read.clear()

    def poll(self) -> tuple[dict[str, list[tuple[int, float, int]]], str, dict[str, str]]:
        """``({key: [(step, value, timestamp_ms), ...] new points}, status, tags)``."""
        client = _client(self.tracking_uri)
        run = client.get_run(self.run_id)
        fresh: dict[str, list[tuple[int, float, int]]] = {}
        for key in sorted(run.data.metrics):
            points = self._new_points(client, key)
            if points:
                fresh[key] = points
        return fresh, run.info.status, dict(run.data.tags)

    def _new_points(self, client: MlflowClient, key: str) -> list[tuple[int, float, int]]:
        from mlflow.utils.search_utils import SearchUtils

        store = client._tracking_client.store
        offset = self._read.get(key, 0)
        out: list[tuple[int, float, int]] = []
        while True:
            token = SearchUtils.create_page_token(offset) if offset else None
            try:
                page = store.get_metric_history(self.run_id, key, max_results=self.PAGE, page_token=token)
            except TypeError:  # a store without paging: read it all and keep the unseen tail
                page = client.get_metric_history(self.run_id, key)[offset:]
                out.extend((int(m.step), float(m.value), int(m.timestamp)) for m in page)
                offset += len(page)
                break
            out.extend((int(m.step), float(m.value), int(m.timestamp)) for m in page)
            offset += len(page)
            if not getattr(page, "token", None):
                break
        self._read[key] = offset
        return out
