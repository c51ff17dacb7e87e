"""What the model picker offers (Qt-free; called from a worker thread: it reads the disk).

Pretrained checkpoints for the task already in the local Hugging Face cache (first: the form
prefers them), then the offline presets for the task (random weights), and a check that a
local folder holds a loadable model config.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelChoice:
    name: str  # what goes into model.checkpoint
    source: str  # preset | cache
    description: str  # says which weights it starts from


def preset_choices(task: str) -> list[ModelChoice]:
    from engine.catalog.presets import list_presets

    if task == "multitask":
        return []
    return [
        ModelChoice(p.name, "preset", f"offline preset, random weights: {p.description}") for p in list_presets(task)
    ]


def cached_choices(task: str) -> list[ModelChoice]:
    """Pretrained checkpoints for ``task`` in the local Hugging Face cache (none when there is no cache)."""
    from engine.models.weights import cached_checkpoints

    if task == "multitask":
        return []
    return [
        ModelChoice(hub_id, "cache", "pretrained weights from the local Hugging Face cache")
        for hub_id in cached_checkpoints(task)
    ]


def model_choices(task: str) -> list[ModelChoice]:
    return cached_choices(task) + preset_choices(task)


def check_model_folder(folder: str | Path) -> str | None:
    """None when ``folder`` holds a model config transformers can load, else what is wrong."""
    config = Path(folder) / "config.json"
    if not config.is_file():
        return f"{folder}: no config.json (save a model there with save_pretrained)"
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"{config}: not readable JSON ({exc})"
    if not isinstance(data, dict) or not data.get("model_type"):
        return f"{config}: has no 'model_type', so transformers cannot tell which model it is"
    return None
