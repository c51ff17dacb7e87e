"""Opening a run for a training process, and what every run records about its configuration.

:func:`open_run_logger` gives an MLflow :class:`~engine.tracking.logger.RunLogger`, or where
MLflow is not installed a :class:`~engine.tracking.local_run.LocalRunLogger` writing files
under the run folder: training works either way. :func:`record_config` logs a configuration
as flat params (``optim.lr``, the keys the app's run list shows) and as a YAML artifact.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.tracking.client import check_reachable, mlflow_available

if TYPE_CHECKING:  # only for annotations
    from engine.config import RunConfig
    from engine.tracking.local_run import LocalRunLogger
    from engine.tracking.logger import RunLogger
    from engine.tracking.shared_run import RankLogger


def flat_params(value: Any, prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"optim": {"lr": 0.1}}`` as ``{"optim.lr": 0.1}``; lists and mappings left as JSON text."""
    out = {} if out is None else out
    if isinstance(value, dict) and value:
        for k, v in value.items():
            flat_params(v, f"{prefix}.{k}" if prefix else str(k), out)
    else:
        out[prefix] = json.dumps(value) if isinstance(value, (list, dict)) else value
    return out


def record_config(run_logger: RunLogger | LocalRunLogger | RankLogger, config: RunConfig) -> None:
    """The run's configuration as params and as the ``run_config.yaml`` artifact."""
    run_logger.log_params(flat_params(config.model_dump(mode="json")))
    run_logger.log_config(config.to_yaml())


def open_run_logger(
    uri: str, workspace: Path, *, experiment: str, run_name: str | None, run_id: str | None, tags: dict
) -> RunLogger | LocalRunLogger:
    """An MLflow RunLogger, or, where MLflow is not installed, files in the run folder.

    A tracking server that does not answer is refused within seconds
    (:class:`~engine.tracking.client.TrackingUnreachableError`).
    """
    if mlflow_available():
        from engine.tracking.logger import RunLogger

        check_reachable(uri)
        return RunLogger(uri, experiment=experiment, run_name=run_name, run_id=run_id, workspace=workspace, tags=tags)
    from engine.tracking.local_run import LocalRunLogger

    print("MLflow is not installed: tracking into files under the run folder (tracking/).", file=sys.stderr)
    return LocalRunLogger(workspace / "runs", run_id=run_id, tags=tags)


__all__ = ["flat_params", "open_run_logger", "record_config"]
