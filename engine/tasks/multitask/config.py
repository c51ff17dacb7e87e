"""What a multi-task model is made of, and the rules for its list of tasks."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.catalog.task_names import SINGLE_TASKS
from engine.config.task_defaults import DEFAULT_CHECKPOINTS

__all__ = ["TASKS", "MultiTaskConfig", "check_tasks", "labels_per_task"]

# A multitask model learns some of the single tasks together.
TASKS = SINGLE_TASKS


def check_tasks(tasks: Any) -> list[str]:
    """``tasks`` as a list, or a ValueError saying what is wrong with it."""
    if isinstance(tasks, str) or not isinstance(tasks, Sequence):
        raise ValueError(f"tasks must be a list of task names (from {', '.join(TASKS)}), got {tasks!r}")
    tasks = list(tasks)
    if not tasks:
        raise ValueError(f"tasks is empty; list at least one of {', '.join(TASKS)}")
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {', '.join(map(repr, unknown))}; expected some of {', '.join(TASKS)}")
    repeated = sorted({t for t in tasks if tasks.count(t) > 1})
    if repeated:
        raise ValueError(f"tasks lists {', '.join(map(repr, repeated))} more than once")
    return tasks


def labels_per_task(num_categories: int, tasks: Sequence[str]) -> dict[str, int]:
    """Classes each head predicts: K categories, plus background for segmentation."""
    sizes = {"classification": num_categories, "detection": num_categories, "segmentation": num_categories + 1}
    return {t: sizes[t] for t in tasks}


@dataclass
class MultiTaskConfig:
    """What a multi-task model is made of.

    ``model_checkpoints`` maps task -> checkpoint (preset, folder or hub id);
    tasks left out get the app's default checkpoint. The shared backbone comes
    from the first task's checkpoint (in ``tasks`` order) that has a backbone
    form; see :mod:`engine.tasks.multitask`. ``loss_weights`` default to 1.0 per task.
    ``num_queries``, ``hidden_dim``, ``num_layers`` (encoder and decoder each)
    and ``num_heads`` size the detection head; ``decoder_dim`` the
    segmentation decoder; ``dropout`` applies to the classification and
    detection heads.
    """

    tasks: list[str]
    model_checkpoints: dict[str, str] = field(default_factory=dict)
    loss_weights: dict[str, float] = field(default_factory=dict)
    pretrained: bool = True
    num_queries: int = 50
    hidden_dim: int = 128
    num_layers: int = 2
    num_heads: int = 4
    decoder_dim: int = 64
    dropout: float = 0.1
    no_object_weight: float = 0.1

    def __post_init__(self) -> None:
        self.tasks = check_tasks(self.tasks)
        for name, mapping in (("model_checkpoints", self.model_checkpoints), ("loss_weights", self.loss_weights)):
            if not isinstance(mapping, Mapping):
                raise ValueError(f"{name} must map task names to values, got {mapping!r}")
            extra = [k for k in mapping if k not in self.tasks]
            if extra:
                raise ValueError(
                    f"{name} has {', '.join(map(repr, extra))}, which is not one of the tasks ({', '.join(self.tasks)})"
                )
        checkpoints = {}
        for task in self.tasks:
            ckpt = self.model_checkpoints.get(task, DEFAULT_CHECKPOINTS[task])
            if not isinstance(ckpt, str) or not ckpt.strip():
                raise ValueError(f"model_checkpoints[{task!r}] must be a checkpoint name, got {ckpt!r}")
            checkpoints[task] = ckpt.strip()
        self.model_checkpoints = checkpoints
        weights = {}
        for task in self.tasks:
            w = self.loss_weights.get(task, 1.0)
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
                raise ValueError(f"loss_weights[{task!r}] must be a number >= 0, got {w!r}")
            weights[task] = float(w)
        if not any(weights.values()):
            raise ValueError("every loss weight is 0: nothing would be learnt")
        self.loss_weights = weights
        for name in ("num_queries", "hidden_dim", "num_layers", "num_heads", "decoder_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        # The sine encoding splits hidden_dim into y and x halves of sin/cos pairs.
        if self.hidden_dim % 4 or self.hidden_dim % self.num_heads:
            raise ValueError(
                f"hidden_dim ({self.hidden_dim}) must be a multiple of 4 and of num_heads ({self.num_heads})"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not 0.0 < self.no_object_weight <= 1.0:
            raise ValueError(f"no_object_weight must be in (0, 1], got {self.no_object_weight!r}")
