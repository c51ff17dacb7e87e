"""What a checkpoint string names, told offline: a preset, a model folder or a hub id.

Nothing here imports torch or transformers, or touches the network, so config
validation and the app may ask freely. Every failure a user can cause raises
:class:`ModelLoadError`, whose message names the checkpoint and says what to do.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from pathlib import Path
from typing import Literal

from engine.catalog.presets import PRESETS, get_preset, list_presets

__all__ = ["CheckpointKind", "ModelLoadError", "checkpoint_file", "checkpoint_kind", "presets_hint"]

CheckpointKind = Literal["preset", "folder", "hub"]


# "org/name" as the hub spells repo ids.
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")


class ModelLoadError(ValueError):
    """A checkpoint cannot be turned into a model; the message says what to do."""


# --- checkpoint strings -----------------------------------------------------


def checkpoint_kind(checkpoint: str | os.PathLike) -> CheckpointKind:
    """Say whether ``checkpoint`` is a preset, a local folder or a hub id.

    Raises ModelLoadError for a path that does not exist, a file instead of a
    folder, and a bare name that is no preset (with close preset names).
    """
    text = str(checkpoint).strip()
    if not text:
        raise ModelLoadError("empty model checkpoint; " + presets_hint())
    if get_preset(text) is not None:
        return "preset"
    path = Path(text).expanduser()
    if path.is_dir():
        return "folder"
    if path.exists():
        raise ModelLoadError(
            f"model checkpoint {text!r} is a file; give the folder that holds its "
            "config.json (what save_pretrained writes)"
        )
    if _HUB_ID.match(text) and ".." not in text:
        return "hub"
    if _looks_like_path(text):
        raise ModelLoadError(f"model folder not found: {text!r}; check the path, or use a preset ({presets_hint()})")
    # A bare word: hub ids need an "org/" part, so this was meant as a preset.
    raise ModelLoadError(_unknown_preset_message(text))


def _looks_like_path(text: str) -> bool:
    return (
        text.startswith(("/", ".", "~", "\\"))
        or os.sep in text
        or (os.altsep is not None and os.altsep in text)
        or "\\" in text
        or bool(_WINDOWS_DRIVE.match(text))
    )


def _unknown_preset_message(name: str) -> str:
    close = difflib.get_close_matches(name.lower(), list(PRESETS), n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    return (
        f"unknown model preset {name!r}; {hint}"
        f"presets: {', '.join(PRESETS)} (see `lightbox models`); "
        "a hub id looks like 'org/name', a folder like './my-model'"
    )


def presets_hint(task: str | None = None) -> str:
    names = ", ".join(p.name for p in list_presets(task))
    scope = f" for {task}" if task else ""
    return f"presets{scope}: {names} (see `lightbox models`)"


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def checkpoint_file(checkpoint: str, filename: str) -> dict | None:
    """A JSON file of a folder, or of a hub id when already cached (no network)."""
    kind = checkpoint_kind(checkpoint)
    if kind == "folder":
        return _read_json(Path(checkpoint).expanduser() / filename)
    if kind == "hub":
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(checkpoint, filename)
        return _read_json(Path(cached)) if isinstance(cached, str) else None
    return None
