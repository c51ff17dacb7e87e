"""``lightbox-export.json``: what an export folder holds and how to use it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MANIFEST_NAME = "lightbox-export.json"
ONNX_NAME = "model.onnx"
#: Bumped when the folder layout or the manifest's meaning changes; readers refuse newer ones.
FORMAT_VERSION = 1


class ExportError(RuntimeError):
    """An export could not be written or read; the message names the run, file or item."""


class ParityError(ExportError):
    """The ONNX model differs from its checkpoint beyond tolerance; ``parity`` holds the figures
    (``parity.compare``'s report), so a caller can show them and not only the message."""

    def __init__(self, message: str, parity: dict[str, Any]):
        super().__init__(message)
        self.parity = parity

    def __reduce__(self) -> tuple[Any, ...]:  # pickled whole across a process boundary
        return (type(self), (str(self), self.parity))


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in str(text).split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def write_manifest(folder: Path, manifest: dict[str, Any]) -> Path:
    path = Path(folder) / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return path


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of an export folder; refuses folders from a newer Lightbox or a broken file."""
    import engine

    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        raise ExportError(f"{folder}: not a Lightbox export (no {MANIFEST_NAME})")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ExportError(f"{path}: unreadable manifest: {exc}") from None
    if not isinstance(manifest, dict):
        raise ExportError(f"{path}: the manifest must be a JSON object")
    fmt = manifest.get("format_version")
    written_by = manifest.get("lightbox_version", "unknown")
    if not isinstance(fmt, int):
        raise ExportError(f"{path}: 'format_version' missing or not an integer")
    if fmt > FORMAT_VERSION or _version_tuple(written_by) > _version_tuple(engine.__version__):
        raise ExportError(
            f"{path}: written by Lightbox {written_by} (export format {fmt}); this is Lightbox "
            f"{engine.__version__}, which reads export format {FORMAT_VERSION} and older from versions up "
            f"to its own: upgrade Lightbox to use this export"
        )
    for key in ("task", "id2label", "label_to_category_id", "preprocessing", "postprocessing"):
        if key not in manifest:
            raise ExportError(f"{path}: missing key '{key}'")
    return manifest
