"""What the model picker offers (Qt-free; called from a worker thread: it reads the disk).

Offline presets for the task, the models already in the local Hugging Face cache, and a
check that a local folder holds a loadable model config.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelChoice:
    name: str  # what goes into model.checkpoint
    source: str  # preset | cache
    description: str


def preset_choices(task: str) -> list[ModelChoice]:
    from engine.models.presets import list_presets

    if task == "multitask":
        return []
    return [ModelChoice(p.name, "preset", p.description) for p in list_presets(task)]


def cached_choices() -> list[ModelChoice]:
    """Model repositories in the local Hugging Face cache (empty when there is no cache)."""
    try:
        from huggingface_hub import scan_cache_dir

        info = scan_cache_dir()
    except Exception:  # no cache folder yet, or an unreadable one: nothing cached to offer
        return []
    return [ModelChoice(repo.repo_id, "cache", f"in the local cache ({repo.size_on_disk_str})")
            for repo in sorted(info.repos, key=lambda r: r.repo_id) if repo.repo_type == "model"]


def model_choices(task: str) -> list[ModelChoice]:
    return preset_choices(task) + cached_choices()


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
