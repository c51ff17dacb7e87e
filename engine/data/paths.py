"""The one place a COCO ``file_name`` becomes a path on disk, for the app and the engine alike.

A ``file_name`` comes from a JSON file someone else wrote, so it must not be able to
name any file on the machine: absolute paths, drive letters, ``..`` that climbs out
of the image folder and symlinks whose target lies outside the dataset are refused,
each with a reason a person can act on.  The image folder itself may be a symlink
(datasets often link a big shared image folder in); files inside it may not point
elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

StrPath = str | os.PathLike


class UnsafeFileName(ValueError):
    """A ``file_name`` that would leave the dataset folder; ``reason`` says how."""

    def __init__(self, file_name: str, reason: str):
        super().__init__(f"file_name '{file_name}' refused: {reason}")
        self.file_name = file_name
        self.reason = reason

    def __reduce__(self):
        return type(self), (self.file_name, self.reason)


def unsafe_reason(file_name: object) -> str | None:
    """Why ``file_name`` is unsafe on its own (without looking at the disk), or None."""
    if not isinstance(file_name, str) or not file_name:
        return "empty file name"
    if "\x00" in file_name:
        return "contains a NUL character"
    text = file_name.replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        return "absolute path (file names must be relative to the image folder)"
    normal = os.path.normpath(text)
    if normal == ".." or normal.startswith("../"):
        return "'..' climbs out of the image folder"
    return None


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def resolve_image_path(dataset_root: StrPath, image_dir: StrPath, file_name: str) -> Path:
    """The path of ``file_name`` under ``image_dir``; raises UnsafeFileName if it leaves the dataset.

    A path is allowed when, after following symlinks, it lies inside the dataset root
    or inside the (resolved) image folder.  A missing file is not an error here: the
    caller's open reports it.
    """
    reason = unsafe_reason(file_name)
    if reason:
        raise UnsafeFileName(str(file_name), reason)
    path = Path(image_dir) / file_name.replace("\\", "/")
    real = os.path.realpath(path)
    allowed = (os.path.realpath(dataset_root), os.path.realpath(image_dir))
    if not any(_inside(real, folder) for folder in allowed):
        raise UnsafeFileName(file_name, f"symlink points outside the dataset folder (to {real})")
    return path
