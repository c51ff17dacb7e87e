"""Inside a Tune trial actor: train one run with the trial's parameters and report to Tune.

Imported by the trial actor only (the search's driver stays free of torch). Tune reuses
the actor for the next trial (``reuse_actors``), so torch, Lightning and the task code
load once per worker, and :func:`cached_coco_indexes` keeps the parsed annotation files.
"""

from __future__ import annotations

import copy
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from engine.config import RunConfig
from engine.orchestration.errors import SearchError
from engine.orchestration.ray_reports import RUN_ID_KEY
from engine.orchestration.training import train
from engine.tracking.tags import PARENT_RUN_TAG, TRIAL_TAG

_INDEX_CACHE: dict[tuple[str, int, int], Any] = {}


@contextmanager
def cached_coco_indexes():
    """While a trial runs, ``CocoIndex.load`` answers from this worker's cache.

    A reused trial actor then parses each annotation file once per search; the key
    holds the file's size and mtime, so an edited file is read again. Each trial gets
    its own copy, so nothing one trial changes reaches the next.
    """
    from engine.data.coco_index import CocoIndex

    original = CocoIndex.__dict__["load"]

    def load(cls, path):
        file = Path(path)
        try:
            stat = file.stat()
        except OSError:
            return original.__func__(cls, path)  # its own clear error
        key = (str(file.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _INDEX_CACHE:
            _INDEX_CACHE[key] = original.__func__(cls, path)
        return copy.deepcopy(_INDEX_CACHE[key])

    CocoIndex.load = classmethod(load)
    try:
        yield
    finally:
        CocoIndex.load = original


class TuneReportCallback(pl.Callback):
    """Reports each epoch's validation metrics, the trial's MLflow run and its checkpoints to Tune."""

    def __init__(self, metric: str) -> None:
        super().__init__()
        self.metric = metric

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Validation and ModelCheckpoint have run by now, so the folder holds this epoch's files.
        from ray import tune

        metrics: dict[str, Any] = {}
        for key, value in trainer.callback_metrics.items():
            if getattr(value, "numel", lambda: 0)() == 1:
                metrics[key] = float(value)
        metrics["epoch"] = trainer.current_epoch + 1
        metrics["step"] = trainer.global_step
        run_id = next((cb.logger.run_id for cb in trainer.callbacks if type(cb).__name__ == "MlflowCallback"), None)
        if run_id:
            metrics[RUN_ID_KEY] = run_id
        # The trial's own checkpoint of this epoch (Tune keeps the newest one per trial).
        with tempfile.TemporaryDirectory(prefix="lightbox-trial-") as folder:
            trainer.save_checkpoint(str(Path(folder) / "trial.ckpt"))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def run_trial(params: dict[str, Any], *, base: dict, tracking_uri: str | None, parent_run_id: str, metric: str) -> None:
    """One trial: the ordinary training run with ``params`` applied, reporting every epoch to Tune."""
    from ray import tune

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    trial_id = tune.get_context().get_trial_id()
    # Every run seeds the same RNG before MLflow picks a name: name trials by their id instead.
    name = f"{base['tracking'].get('run_name') or 'trial'}-{trial_id}"
    config = RunConfig.from_dict(base, "search base").with_overrides({**params, "tracking.run_name": name})
    tags = {PARENT_RUN_TAG: parent_run_id, TRIAL_TAG: trial_id}
    if config.compute.strategy == "ray":
        # The trial drives a Ray Train run: its workers report to Ray Train, and Ray's
        # callback forwards each report (rank 0's metrics, the MLflow run id) to Tune.
        from ray.tune.integration.ray_train import TuneReportCallback as ForwardReportsToTune

        from engine.orchestration.ray_train import train_distributed

        result = train_distributed(config, tracking_uri=tracking_uri, tags=tags, ray_callbacks=[ForwardReportsToTune()])
    else:
        with cached_coco_indexes():
            result = train(
                config, tracking_uri=tracking_uri, progress=False, callbacks=[TuneReportCallback(metric)], tags=tags
            )
    if result.status == "FAILED":
        raise SearchError(result.message or f"trial run {result.run_id} failed")
