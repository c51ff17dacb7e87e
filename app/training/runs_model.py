"""The runs table's rows and a finished run's summary, Qt-free (called from worker threads).

Every run of the workspace's store is listed with its live status: a RUNNING run whose
heartbeat stopped is LOST (``engine.orchestration.jobs.effective_status``) and can be resumed.
A search's trials carry MLflow's ``mlflow.parentRunId`` tag: they are listed under their
search, whose best trial (:func:`best_trials`) is the one charted by default.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.orchestration.jobs import ACTIVE_STATUSES, LOST, effective_status
from engine.tracking.history import DEFAULT_PARAM_KEYS
from engine.tracking.tags import (
    BEST_MONITOR_TAG,
    BEST_RUN_TAG,
    BEST_SCORE_METRIC,
    CONFUSION_MATRIX_FILE,
    EARLY_STOPPED_TAG,
    ERROR_TAG,
    HEARTBEAT_TAG,
    PARENT_RUN_TAG,
    RUN_DIR_TAG,
    SEARCH_TAG,
    TASK_TAG,
)

BEST_MARK = "★"  # before the best trial's metric in its row
EARLY_STOPPED = "EARLY STOPPED"  # shown instead of the status MLflow keeps (FINISHED) for such a trial
STATUSES = ("RUNNING", LOST, "FINISHED", EARLY_STOPPED, "KILLED", "FAILED")
SEARCH_PARAMS = ("search.metric", "search.mode")  # how a search ranks its trials
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
    params: dict[str, str] = field(default_factory=dict)

    @property
    def started(self) -> str:
        return datetime.fromtimestamp(self.started_ms / 1000).strftime("%Y-%m-%d %H:%M") if self.started_ms else ""

    @property
    def can_stop(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def can_resume(self) -> bool:
        return self.status in ("KILLED", "FAILED", LOST) and not self.early_stopped

    @property
    def search_id(self) -> str | None:
        """The run id of the search this run is a trial of."""
        return self.tags.get(PARENT_RUN_TAG) or None

    @property
    def is_search(self) -> bool:
        return self.tags.get(SEARCH_TAG) == "true"

    @property
    def early_stopped(self) -> bool:
        """A trial the search's scheduler (ASHA) ended early because it was behind: not a failure."""
        return self.tags.get(EARLY_STOPPED_TAG) == "true" and self.status not in ACTIVE_STATUSES

    @property
    def shown_status(self) -> str:
        return EARLY_STOPPED if self.early_stopped else self.status

    @property
    def error(self) -> str | None:
        return self.tags.get(ERROR_TAG) or None


def _best(metrics: dict[str, float], tags: dict[str, str]) -> str:
    monitor = tags.get(BEST_MONITOR_TAG)
    if BEST_SCORE_METRIC in metrics:
        return f"{monitor or 'best'} {metrics[BEST_SCORE_METRIC]:.4g}"
    for key in FALLBACK_METRICS:
        if key in metrics:
            return f"{key} {metrics[key]:.4g}"
    return ""


def _param_keys() -> tuple[str, ...]:
    """The params the table reads: the usual ones, a search's space (``space.<path>``, on its own run)
    and every setting (a trial's value of each searched one)."""
    from engine.config import config_field_paths

    paths = tuple(config_field_paths())
    return DEFAULT_PARAM_KEYS + SEARCH_PARAMS + paths + tuple(f"space.{p}" for p in paths)


def load_runs(tracking_uri: str, experiment: str = "lightbox", now: float | None = None) -> list[RunRow]:
    """Every run of ``experiment``, newest first; a search's trials say their metric and searched values."""
    from engine.tracking.history import list_runs

    now = time.time() if now is None else now
    rows = []
    for run in list_runs(tracking_uri, experiment, max_results=1000, param_keys=_param_keys()):
        tags, params = run["tags"], run["params"]
        status = effective_status(run["status"], tags, run["start_time"], now)
        end = run["end_time"] / 1000 if run["end_time"] else (None if status == LOST else now)
        start = run["start_time"] / 1000 if run["start_time"] else None
        if status == LOST:
            beat = tags.get(HEARTBEAT_TAG)
            end = float(beat) if beat else start
        rows.append(
            RunRow(
                run["run_id"],
                run["run_name"] or run["run_id"][:8],
                status,
                tags.get(TASK_TAG) or params.get("task.name", ""),
                params.get("model.checkpoint", ""),
                _best(run["metrics"], tags),
                run["start_time"],
                (end - start) if (end is not None and start is not None) else None,
                tags.get(RUN_DIR_TAG),
                dict(run["metrics"]),
                dict(tags),
                dict(params),
            )
        )
    describe_trials(rows)
    return rows


def filter_runs(rows: list[RunRow], status: str | None = None, task: str | None = None) -> list[RunRow]:
    return [r for r in rows if (not status or r.shown_status == status) and (not task or r.task == task)]


def trials_of(rows: list[RunRow]) -> dict[str, list[RunRow]]:
    """Search run id -> its trials listed in ``rows`` (in the order of ``rows``)."""
    searches = {r.run_id for r in rows if r.is_search}
    out: dict[str, list[RunRow]] = {s: [] for s in searches}
    for row in rows:
        if row.search_id in searches:
            out[row.search_id].append(row)
    return out


def best_trial(search: RunRow, trials: list[RunRow]) -> RunRow | None:
    """The search's best trial: the one it named when it ended, else the best so far by its
    metric (``search.metric``, ``search.mode``), else (no trial validated yet) the first started."""
    if not trials:
        return None
    named = search.tags.get(BEST_RUN_TAG)
    for trial in trials:
        if trial.run_id == named:
            return trial
    metric, mode = search.params.get("search.metric"), search.params.get("search.mode", "min")
    scored = [t for t in trials if metric and metric in t.metrics]
    if scored:
        pick = min if mode == "min" else max
        return pick(scored, key=lambda t: t.metrics[metric])
    return min(trials, key=lambda t: t.started_ms or 0)


def best_trials(rows: list[RunRow]) -> dict[str, RunRow]:
    """Search run id -> its best trial, for every search in ``rows`` with a trial."""
    by_id = {r.run_id: r for r in rows}
    out = {}
    for search_id, trials in trials_of(rows).items():
        best = best_trial(by_id[search_id], trials)
        if best is not None:
            out[search_id] = best
    return out


def searched_paths(search: RunRow) -> list[str]:
    """The settings a search varies (its ``space.<path>`` params), in the order it logged them."""
    return [key[len("space.") :] for key in search.params if key.startswith("space.")]


def trial_text(search: RunRow, trial: RunRow, best: bool) -> str:
    """A trial's "Best" cell: the search's metric as it last logged it, its searched values, and the
    best trial marked: ``★ val/loss 0.512 · lr=0.0013, batch_size=16``."""
    metric = search.params.get("search.metric")
    score = f"{metric} {trial.metrics[metric]:.4g}" if metric and metric in trial.metrics else "no metric yet"
    values = []
    for path in searched_paths(search):
        value = trial.params.get(path)
        if value is not None:
            with contextlib.suppress(ValueError):  # a number logged with a fraction reads short; text as it is
                value = f"{float(value):.3g}" if "." in value or "e" in value.lower() else value
            values.append(f"{path.rsplit('.', 1)[-1]}={value}")
    text = " · ".join([score, ", ".join(values)] if values else [score])
    return f"{BEST_MARK} {text}" if best else text


def read_search_ending(search: RunRow, trial: RunRow) -> None:
    """While its search runs, a trial the search ended reads as the search will record it (in place).

    Tune ends a trial (ASHA's stop, or its last epoch) by raising inside it, so its run says
    FAILED, without the reason a real failure tags it with, until the search ends and records
    it FINISHED, with the early-stopped tag when it was cut short. The table says so at once.
    """
    if not search.can_stop or trial.status != "FAILED" or trial.error:
        return
    try:
        done, epochs = int(trial.metrics["epoch"]) + 1, int(trial.params["optim.epochs"])
    except (KeyError, ValueError):
        return  # it never finished an epoch: a failure, or a stop, as its run says
    trial.status = "FINISHED"
    if done < epochs:
        trial.tags = {**trial.tags, EARLY_STOPPED_TAG: "true"}


def describe_trials(rows: list[RunRow]) -> None:
    """Each trial's status as its search sees it, and its metric, searched values and best mark
    in its ``best`` text (in place)."""
    by_id = {r.run_id: r for r in rows}
    for search_id, trials in trials_of(rows).items():
        search = by_id[search_id]
        for trial in trials:
            read_search_ending(search, trial)
        best = best_trial(search, trials)
        for trial in trials:
            trial.best = trial_text(search, trial, trial is best)


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
    from engine.tracking.client import client as mlflow_client

    client = mlflow_client(tracking_uri)
    run = client.get_run(run_id)
    summary: dict[str, Any] = {
        "run_id": run_id,
        "status": run.info.status,
        "metrics": dict(run.data.metrics),
        "task": run.data.tags.get(TASK_TAG, ""),
        "confusion": None,
        "error": run.data.tags.get(ERROR_TAG) or None,
    }
    if summary["task"] == "classification":
        try:
            local = client.download_artifacts(run_id, CONFUSION_MATRIX_FILE)
            summary["confusion"] = json.loads(Path(local).read_text(encoding="utf-8"))
        except Exception:  # a run that never validated has no matrix
            summary["confusion"] = None
    return summary
