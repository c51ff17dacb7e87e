"""What the search scatter draws, Qt-free: each trial's metric against each searched value.

A search's parent run names its space as params (``space.<dotted path>``: the distribution as
JSON, written by ``engine.orchestration.tune``); each trial's run logs its whole config as
params, so its value of each searched setting is there as text.  A setting searched on a log
scale is drawn on one; a choice or grid of non-numbers is drawn at the index of each value,
labelled with it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import yaml

from .runs_model import RunRow

SPACE_PREFIX = "space."
LOG_KINDS = ("loguniform",)


@dataclass
class ParamPoints:
    """One searched setting: a point per trial that has reported the metric."""

    path: str
    kind: str
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    best: int | None = None  # index of the best trial's point
    labels: list[str] | None = None  # for values that are no numbers: the text of x = 0, 1, ...

    @property
    def log(self) -> bool:
        return self.kind in LOG_KINDS and all(v > 0 for v in self.x)


@dataclass
class SearchPoints:
    search_id: str
    metric: str
    mode: str
    params: list[ParamPoints]
    trials: int  # trials listed (with or without the metric yet)

    @property
    def empty(self) -> bool:
        return not any(p.x for p in self.params)


def searched_settings(search: RunRow) -> dict[str, dict[str, Any]]:
    """Dotted path -> its distribution (``{"type": ..., ...}``; ``{}`` when only its name is known)."""
    out = {}
    for key, text in search.params.items():
        if key.startswith(SPACE_PREFIX):
            try:
                spec = json.loads(text)
            except ValueError:
                spec = {}
            out[key[len(SPACE_PREFIX) :]] = spec if isinstance(spec, dict) else {}
    return out


def param_value(text: str | None) -> Any:
    """A trial's logged param read back into a value (MLflow keeps params as text)."""
    if text is None:
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def search_points(search: RunRow, trials: list[RunRow], best_id: str | None) -> SearchPoints:
    """Each searched setting's points: x the trial's value, y its metric (the latest it logged)."""
    metric = search.params.get("search.metric", "val/loss")
    mode = search.params.get("search.mode", "min")
    params = []
    for path, spec in searched_settings(search).items():
        points = ParamPoints(path, str(spec.get("type", "")))
        values, rows = [], []
        for trial in trials:
            y = trial.metrics.get(metric)
            if y is None or not math.isfinite(y):
                continue
            values.append(param_value(trial.params.get(path)))
            rows.append((trial, float(y)))
        numeric = [_number(v) for v in values]
        if all(n is not None for n in numeric):
            xs = [float(n) for n in numeric if n is not None]
        else:  # a choice of names (or of mixed values): one column per value, in the order searched
            order = [str(v) for v in spec.get("values", [])]
            order += sorted({str(v) for v in values} - set(order))
            points.labels = order
            xs = [float(order.index(str(v))) for v in values]
        for x, (trial, y) in zip(xs, rows):
            if trial.run_id == best_id:
                points.best = len(points.x)
            points.x.append(x)
            points.y.append(y)
            points.names.append(trial.name)
        params.append(points)
    return SearchPoints(search.run_id, metric, mode, params, len(trials))
