"""Hyper-parameter search: Ray Tune trials that each run the ordinary training path.

Every trial calls :func:`engine.orchestration.training.train` (its checkpoints, its
MLflow run) with :mod:`engine.orchestration.tune_trial`'s callback that reports each
epoch's validation metrics and checkpoint folder to Tune (with ``compute.strategy: ray``
a trial drives a Ray Train run whose reports Ray forwards to Tune); trial actors are reused, so
a worker imports torch and Lightning and reads the dataset index once per search. The search itself is an MLflow
run; every trial's run carries ``mlflow.parentRunId`` pointing at it, so one
chart shows all trials. ASHA (the default scheduler) stops weak trials early:
their runs end FINISHED with the ``lightbox.early_stopped`` tag, not FAILED. A stop
request on the parent run (or Ctrl-C) ends the search; finished trials are kept
and reported.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.config import RunConfig, SearchConfig, SearchParam
from engine.orchestration.errors import SearchError
from engine.orchestration.ray_reports import RAY_TRAIN_CHECKPOINT_KEY, RUN_ID_KEY
from engine.tracking.tags import (
    BEST_RUN_TAG,
    EARLY_STOPPED_TAG,
    PARENT_RUN_TAG,
    SEARCH_TAG,
    STOP_TAG,
    TASK_TAG,
    TRIAL_TAG,
)

DRIVER_TRIAL_MEMORY = 64 * 2**20  # bytes reserved by a trial that drives a Ray Train run
SHORT_SECTIONS = ("optim", "data", "model", "augmentation", "compute")


@dataclass
class SearchResult:
    parent_run_id: str
    best_run_id: str
    best_config: dict[str, Any]
    best_metrics: dict[str, float]
    trials: list[dict[str, Any]] = field(default_factory=list)
    status: str = "FINISHED"  # FINISHED | KILLED (stopped on request or by Ctrl-C)
    tracking_uri: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)


# ---------------------------------------------------------------------- search space
def _config_path(key: str) -> str:
    """``optim.lr`` as given, or its short name (``lr``) made a full path."""
    from engine.config import config_field_paths

    paths = config_field_paths()
    if key in paths:
        return key
    for section in SHORT_SECTIONS:
        if f"{section}.{key}" in paths:
            return f"{section}.{key}"
    raise SearchError(
        f"search space: {key!r} is not a setting of the run configuration (use a dotted path such as 'optim.lr')"
    )


def to_tune_space(space: Mapping[str, Any]) -> dict[str, Any]:
    """Ray Tune's param_space from Ray distributions or the config's serialisable ones."""
    from pydantic import TypeAdapter, ValidationError
    from ray import tune
    from ray.tune.search.sample import Domain

    adapter = TypeAdapter(SearchParam)
    out: dict[str, Any] = {}
    for key, param in space.items():
        path = _config_path(str(key))
        if isinstance(param, Domain) or (isinstance(param, dict) and "grid_search" in param):
            out[path] = param
            continue
        if isinstance(param, dict) or hasattr(param, "type"):
            try:
                p = adapter.validate_python(param if isinstance(param, dict) else param.model_dump())
            except ValidationError as exc:
                raise SearchError(f"search space: {key!r}: {exc.errors()[0]['msg']}") from None
            kind = p.type
            if kind == "loguniform":
                out[path] = tune.loguniform(p.low, p.high)
            elif kind == "uniform":
                out[path] = tune.uniform(p.low, p.high)
            elif kind == "quniform":
                out[path] = tune.quniform(p.low, p.high, p.q)
            elif kind == "randint":
                out[path] = tune.randint(p.low, p.high)
            elif kind == "choice":
                out[path] = tune.choice(list(p.values))
            else:
                out[path] = tune.grid_search(list(p.values))
            continue
        raise SearchError(
            f"search space: {key!r}: expected a Ray Tune distribution or "
            f"{{type: loguniform|uniform|quniform|randint|choice|grid, ...}}, got {param!r}"
        )
    if not out:
        raise SearchError("search space is empty: give search.space in the run configuration")
    return out


def space_params(space: Mapping[str, Any]) -> dict[str, str]:
    """The search space as the parent run's params, ``space.<dotted path>``: each entry as JSON
    (``{"type": "loguniform", "low": 0.0001, "high": 0.01}``), so a reader knows which settings
    were searched and how; a Ray distribution given directly is named by its class."""
    out = {}
    for key, param in space.items():
        if hasattr(param, "model_dump"):
            param = param.model_dump(mode="json")
        text = json.dumps(param) if isinstance(param, dict) else type(param).__name__
        out[f"space.{_config_path(str(key))}"] = text
    return out


# ---------------------------------------------------------------------- inside a trial
def _trial(params: dict[str, Any], **settings: Any) -> None:
    """Tune's trainable. Its work lives in :mod:`engine.orchestration.tune_trial`, imported here,
    in the trial actor: the driver never imports torch or Lightning."""
    from engine.orchestration.tune_trial import run_trial

    run_trial(params, **settings)


# ---------------------------------------------------------------------- the search
def _start_ray(config: RunConfig) -> None:
    from engine.orchestration.ray_cluster import start_ray

    address = config.compute.ray_address
    if address and address.startswith(("http://", "https://")):
        raise SearchError(
            f"compute.ray_address {address} is a dashboard address: submit the search as a job "
            "(lightbox tune --ray-address URL); a search runs on a cluster it is attached to"
        )
    # A trial ASHA stops unwinds through Lightning and MLflow before its actor can take the next
    # trial; Tune's default 2 s wait is too short on a loaded machine and would start a fresh actor.
    start_ray(address, SearchError, {"TUNE_FUNCTION_THREAD_TIMEOUT_S": "20"})


def _stop_on_request(tracking_uri: str, run_id: str, every_s: float = 2.0):
    """A Tune stopper that ends the whole search once the parent run has a stop request."""
    from ray.tune import Stopper

    class StopOnRequest(Stopper):
        def __init__(self) -> None:
            self.next_poll = 0.0
            self.requested = False

        def __call__(self, trial_id, result) -> bool:
            return False

        def stop_all(self) -> bool:
            import time

            from engine.tracking.client import client

            if not self.requested and time.monotonic() >= self.next_poll:
                self.next_poll = time.monotonic() + every_s
                try:
                    tags = client(tracking_uri).get_run(run_id).data.tags
                    self.requested = str(tags.get(STOP_TAG, "")).lower() == "true"
                except Exception:  # a store hiccup must not end the search
                    pass
            return self.requested

    return StopOnRequest()


def search(
    config: RunConfig,
    *,
    search_space: Mapping[str, Any] | None = None,
    num_samples: int | None = None,
    tracking_uri: str | None = None,
    storage_path: str | Path | None = None,
    stream=None,
) -> SearchResult:
    """Run the search described by ``config.search`` (or ``search_space``) and return the best trial."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from engine.orchestration.run_folder import check_tracking, open_run, workspace_of
    from engine.tracking.client import mlflow_available
    from engine.tracking.store import resolve_tracking_uri

    if not mlflow_available():
        raise SearchError("a search records its trials in MLflow: install mlflow (pip install mlflow)")
    search_cfg = config.search or SearchConfig()
    given = search_space if search_space is not None else search_cfg.space
    space = to_tune_space(given)
    if not config.data.path:
        raise SearchError("no dataset: set data.path (or pass --data DIR)")
    data_path = Path(config.data.path).expanduser().resolve()
    if not data_path.is_dir():
        raise SearchError(f"dataset folder {data_path} does not exist")
    workspace = workspace_of(config)
    uri = resolve_tracking_uri(tracking_uri or config.tracking.uri, workspace)
    if config.optim.epochs is None:  # every trial trains as long as the recipe says (ASHA's max_t too)
        from engine.recipes import resolve_recipe

        config = config.with_overrides({"optim.epochs": resolve_recipe(config, verbose=False).optim.epochs})
    # Trials run in other processes (and working folders): give them absolute paths.
    base = config.with_overrides(
        {"data.path": str(data_path), "workspace": str(workspace), "tracking.uri": uri}
    ).model_dump(mode="json")
    base["search"] = None
    samples = num_samples or search_cfg.num_samples
    metric, mode = search_cfg.metric, search_cfg.mode
    epochs = max(1, config.optim.epochs)

    check_tracking(uri)  # before Ray starts: an unreachable server fails in seconds

    def open_parent():
        run = open_run(
            uri,
            workspace,
            experiment=config.tracking.experiment,
            run_name=config.tracking.run_name or "search",
            run_id=None,
            tags={SEARCH_TAG: "true", TASK_TAG: config.task.name},
        )
        try:
            run.log_params(
                {
                    "search.num_samples": samples,
                    "search.metric": metric,
                    "search.mode": mode,
                    "search.scheduler": search_cfg.scheduler,
                    **space_params(given),
                }
            )
            run.log_config(config.to_yaml())
        except BaseException:
            run.finish("FAILED")
            raise
        return run

    # Ray's start (about 9 s on two cores) mostly waits on its own processes: open the parent run meanwhile.
    with ThreadPoolExecutor(1, thread_name_prefix="search-parent") as pool:
        opening = pool.submit(open_parent)
        try:
            _start_ray(config)
        except BaseException:
            opening.result().finish("FAILED")
            raise
        parent = opening.result()
    with parent:
        if search_cfg.scheduler == "asha":
            scheduler = ASHAScheduler(
                time_attr="training_iteration",
                max_t=epochs,
                grace_period=min(search_cfg.grace_period, epochs),
                reduction_factor=search_cfg.reduction_factor,
            )
        else:
            scheduler = FIFOScheduler()
        distributed = config.compute.strategy == "ray"
        # A trial of a Ray Train run only drives its workers, which reserve their own CPUs and GPUs;
        # Ray refuses a trial that asks for nothing, so it asks for a token amount of memory.
        resources = (
            {"cpu": 0, "gpu": 0, "memory": DRIVER_TRIAL_MEMORY}
            if distributed
            else {"cpu": search_cfg.cpus_per_trial, "gpu": search_cfg.gpus_per_trial}
        )
        trainable = tune.with_resources(
            tune.with_parameters(_trial, base=base, tracking_uri=uri, parent_run_id=parent.run_id, metric=metric),
            resources,
        )
        storage = Path(storage_path or workspace / "tune").expanduser().resolve()
        tuner = tune.Tuner(
            trainable,
            param_space=space,
            # Warm actors: a trial after the first skips the worker start and the torch import.
            tune_config=tune.TuneConfig(
                metric=metric,
                mode=mode,
                num_samples=samples,
                scheduler=scheduler,
                max_concurrent_trials=search_cfg.max_concurrent,
                # A Ray Train trial that ASHA stops ends with its actor (and
                # the workers it owns), not by a reset that waits for it.
                reuse_actors=not distributed,
            ),
            run_config=tune.RunConfig(
                name=f"search-{parent.run_id}",
                storage_path=str(storage),
                stop=_stop_on_request(uri, parent.run_id),
                verbose=0,
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                failure_config=tune.FailureConfig(max_failures=0),
            ),
        )
        interrupted = False
        try:
            grid = tuner.fit()
        except KeyboardInterrupt:
            interrupted = True
            grid = tune.Tuner.restore(str(storage / f"search-{parent.run_id}"), trainable).get_results()
        # Ctrl-C between trials: Tune returns normally, without the trials it never created.
        interrupted = interrupted or len(grid) < samples
        trials = _close_trial_runs(
            grid, uri, epochs, interrupted or parent.stop_requested(), metric, parent.experiment_id, parent.run_id
        )
        # Ctrl-C: Tune ends the experiment itself and returns normally; its cut-off trials say so.
        stopped = any(t["status"] == "KILLED" for t in trials) or interrupted or parent.stop_requested()
        finished = [t for t in trials if t["metrics"].get(metric) is not None]
        if not finished:
            parent.finish("KILLED" if stopped else "FAILED")
            errors = "; ".join(f"{t['trial_id']}: {t['error']}" for t in trials if t.get("error"))
            raise SearchError(
                f"no trial reported {metric!r}"
                + (f" ({errors})" if errors else "")
                + ("; the search was stopped" if stopped else "")
            )
        best = (min if mode == "min" else max)(finished, key=lambda t: t["metrics"][metric])
        parent.set_tag(BEST_RUN_TAG, best["run_id"])
        parent.log_metrics({f"best/{metric}": best["metrics"][metric]}, 0)
        status = "KILLED" if stopped else "FINISHED"
        parent.finish(status)
    result = SearchResult(parent.run_id, best["run_id"], best["config"], best["metrics"], trials, status, uri)
    print(result.to_json(), file=stream or sys.stdout, flush=True)
    return result


def _trial_runs(mlflow_client, experiment_id: str, parent_run_id: str) -> dict[str, str]:
    """Tune trial id -> MLflow run id, for the runs of one search."""
    from engine.tracking.client import search_runs, tag_is

    runs = search_runs(mlflow_client, [experiment_id], tag_is(PARENT_RUN_TAG, parent_run_id), max_results=10000)
    return {r.data.tags[TRIAL_TAG]: r.info.run_id for r in runs if TRIAL_TAG in r.data.tags}


def _close_trial_runs(
    grid, uri: str, epochs: int, stopped: bool, metric: str, experiment_id: str, parent_run_id: str
) -> list[dict[str, Any]]:
    """Each trial's summary; runs a trial's process could not end (ASHA stop, kill) are ended here."""
    from engine.tracking.client import client as mlflow_client

    client = mlflow_client(uri)
    trials = []
    run_of = _trial_runs(client, experiment_id, parent_run_id)
    for res in grid:
        m = dict(res.metrics or {})
        found = re.search(r"[0-9a-f]{5}_\d{5}", Path(res.path).name)
        trial_id = m.get("trial_id") or (found.group(0) if found else Path(res.path).name)
        run_id = m.get(RUN_ID_KEY) or run_of.get(trial_id)
        epochs_done = int(m.get("training_iteration", 0) or 0)
        if res.error is not None:
            status = "FAILED"
        elif epochs_done >= epochs:
            status = "FINISHED"
        elif stopped or epochs_done == 0:  # ASHA only stops a trial after it reported
            status = "KILLED"
        else:
            status = "EARLY_STOPPED"
        if run_id:
            info = client.get_run(run_id).info
            run_status = info.status
            if status == "EARLY_STOPPED":
                client.set_tag(run_id, EARLY_STOPPED_TAG, "true")
            # Tune ends a stopped trial by raising inside it, which the trial's run records as FAILED
            # (or it is killed and stays RUNNING): the search knows better.
            final = {"EARLY_STOPPED": "FINISHED"}.get(status, status)
            if run_status in ("RUNNING", "SCHEDULED") or (run_status == "FAILED" and final != "FAILED"):
                client.set_terminated(run_id, final, end_time=info.end_time)  # keep when it really ended
        trials.append(
            {
                "trial_id": trial_id,
                "run_id": run_id,
                "status": status,
                "epochs": epochs_done,
                "config": {k: _plain(v) for k, v in (res.config or {}).items()},
                "metrics": {
                    k: float(v)
                    for k, v in m.items()
                    if isinstance(v, (int, float)) and ("/" in k or k in (metric, "epoch", "step"))
                },
                # A Ray Train trial's checkpoints stay with Ray Train; Tune gets their path as a metric.
                "checkpoint": res.checkpoint.path if res.checkpoint else m.get(RAY_TRAIN_CHECKPOINT_KEY),
                "error": str(res.error).strip().splitlines()[-1] if res.error is not None else None,
            }
        )
    return trials


def _plain(value: Any) -> Any:
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return value.item()
    return value


__all__ = ["SearchError", "SearchResult", "search", "space_params", "to_tune_space"]
