"""Launching from the Train tab, Qt-free: what a run (Train) and a search (Tune) share.

Both are ``python -m engine VERB --config FILE`` through one launcher; they differ only in
the verb, the config's file name and run name, and the words the tab uses about them.
"""

from __future__ import annotations

import time
from pathlib import Path

TUNE = "tune"


def launch_stamp(now: float | None = None) -> str:
    """``20261205-114800-123``: distinct for launches a millisecond apart, sorted by time."""
    now = time.time() if now is None else now
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f"-{int(now * 1000) % 1000:03d}"


def named_for_launch(config, verb: str, stamp: str):
    """``config`` with a readable, distinct run name when it has none (MLflow's generated names repeat
    under a seed); a search's name says it is one (its trials are named after it)."""
    if config.tracking.run_name:
        return config
    model = Path(config.model.checkpoint or config.task.name).name
    name = f"{'search-' if verb == TUNE else ''}{model}-{stamp[4:15]}"
    return config.model_copy(update={"tracking": config.tracking.model_copy(update={"run_name": name})})


def config_file(workspace: Path, verb: str, stamp: str) -> Path:
    """Where the launch's config is written: ``<workspace>/configs/run-STAMP.yaml`` or ``search-STAMP.yaml``."""
    return Path(workspace) / "configs" / f"{'search' if verb == TUNE else 'run'}-{stamp}.yaml"


def for_ray_job(config, tracking_uri: str):
    """``(config, note)``: the run logs where it is charted from (``tracking.uri``, else this workspace's
    store); ``note`` says when that store is a file on the cluster's machine (else None)."""
    if config.tracking.uri is None:
        config = config.model_copy(update={"tracking": config.tracking.model_copy(update={"uri": tracking_uri})})
    uri = config.tracking.uri
    if not uri.startswith(("sqlite:", "file:")):
        return config, None
    return config, (
        f"note: the job logs to {uri}, a store on the cluster's machine; it is charted here only when "
        "the cluster runs on this machine (else set tracking.uri to an MLflow server, e.g. `lightbox server`)"
    )


def progress_line(job, step: int | None, state: str | None = None) -> str:
    """The progress line of ``job``: its newest progress event (with the newest charted ``step``), after a
    Ray job's ``state`` when given; a state alone (no event yet) with the step when one is charted."""
    progress = job.last_progress
    if state is None:
        return f"{job.run_id[:8] if job.run_id else 'new run'}: {progress.describe(job.epochs, step)}"
    if progress is not None:
        return f"{state} · {progress.describe(job.epochs, step)}"
    return state + (f" · step {step}" if step is not None else "")


def stopping_text(verb: str) -> str:
    if verb == TUNE:
        return "Stopping the search… (its finished trials are kept)"
    return "Stopping… (the run saves a checkpoint and ends KILLED)"


def failure_text(verb: str, failure: str) -> str:
    return f"{'Search' if verb == TUNE else 'Training'} failed: {failure}"
