"""Which model family a checkpoint belongs to, told offline.

A family is a preset's ``family`` or the ``model_type`` of a checkpoint's config.json
(``resnet``, ``vit``, ``rt_detr_v2``...). The training recipe and the image-size rule
follow it. A hub id is looked up in the local Hugging Face cache only: nothing here
touches the network, so the config validation and the app may call it freely.
"""

from __future__ import annotations

from engine.catalog.checkpoints import ModelLoadError, checkpoint_file
from engine.catalog.presets import get_preset

__all__ = ["checkpoint_config", "family_of"]


def checkpoint_config(checkpoint: str | None) -> dict | None:
    """config.json of a model folder, or of a hub id already in the local cache; None otherwise.

    None for presets (they have no file), for names that are no checkpoint at all, and
    for unreadable files: the loader reports those, with its own clear message.
    """
    if not checkpoint or get_preset(checkpoint) is not None:
        return None
    try:
        return checkpoint_file(str(checkpoint).strip(), "config.json")
    except (ModelLoadError, ValueError, OSError):
        return None


def family_of(checkpoint: str | None) -> str | None:
    """The model family of a preset, a model folder or a cached hub id; None when it cannot be told offline."""
    if not checkpoint:
        return None
    preset = get_preset(checkpoint)
    if preset is not None:
        return preset.family
    model_type = (checkpoint_config(checkpoint) or {}).get("model_type")
    return model_type if isinstance(model_type, str) else None
