"""The seed's search entry point: ``run_hyperparameter_search(task=..., model_ckpt=..., ...)``.

A thin front for :func:`engine.orchestration.tune.search`: it builds a run
configuration from the keywords and runs the same Ray Tune search as
``lightbox tune``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.orchestration.tune import SearchResult


def run_hyperparameter_search(
    task: str,
    model_ckpt: str | None,
    search_space: Mapping[str, Any],
    num_samples: int = 10,
    data: str | None = None,
    *,
    config_overrides: Mapping[str, Any] | None = None,
    tracking_uri: str | None = None,
    **search_settings: Any,
) -> SearchResult:
    """Search ``search_space`` (Ray Tune distributions, or ``{"type": "loguniform", ...}``) and return the best.

    ``data`` is the COCO dataset folder; ``config_overrides`` sets other run settings
    (``{"optim.epochs": 3}``); ``search_settings`` sets the search section
    (``metric``, ``mode``, ``scheduler``, ``max_concurrent``, ``grace_period``, ...).
    The result's ``best_config`` holds the winning values, ``best_metrics`` its metrics.
    """
    from engine.config import RunConfig

    overrides: dict[str, Any] = {"model.checkpoint": model_ckpt, "data.path": str(data) if data else None}
    overrides.update(config_overrides or {})
    overrides.update({f"search.{k}": v for k, v in search_settings.items()})
    overrides["search.num_samples"] = num_samples
    config = RunConfig.from_dict({"task": {"name": task}}).with_overrides(
        {k: v for k, v in overrides.items() if v is not None}
    )
    from engine.orchestration.tune import search

    return search(config, search_space=search_space, num_samples=num_samples, tracking_uri=tracking_uri)


__all__ = ["run_hyperparameter_search"]
