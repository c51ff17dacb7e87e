"""The one place a COCO ``file_name`` becomes a path on disk, for the app and the engine alike.

A ``file_name`` comes from a JSON file someone else wrote, so it must not be able to
name any file on the machine: absolute paths, drive letters, ``..`` that climbs out
of the image folder and symlinks whose target lies outside the dataset are refused,
each with a reason a person can act on.  The image folder itself may be a symlink
(datasets often link a big shared image folder in); files inside it may not point
elsewhere.
"""

from __future__ import annotations

import functools
import os
import stat
from pathlib import Path

StrPath = str | os.PathLike


class UnsafeFileName(ValueError):
    """A ``file_name`` that would leave the dataset folder; ``reason`` says how."""

    def __init__(self, file_name: str, reason: str):
        super().__init__(f"file_name '{file_name}' refused: {reason}")
        self.file_name = file_name
        self.reason = reason

    def __reduce__(self) -> tuple[type[UnsafeFileName], tuple[str, str]]:
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


def _real_folder(folder: str) -> str:
    # Dataset and image folders are resolved once: a grid paints thousands of paths a second,
    # and realpath costs an lstat per component of the whole path.  (A relative folder
    # depends on the working directory, so only absolute ones are remembered.)
    return _real_absolute_folder(folder) if os.path.isabs(folder) else os.path.realpath(folder)


@functools.lru_cache(maxsize=64)
def _real_absolute_folder(folder: str) -> str:
    return os.path.realpath(folder)


def _real_path(image_dir: str, relative: str) -> str:
    """realpath(image_dir/relative), with one lstat per component of ``relative`` when none is a link."""
    parts = relative.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return os.path.realpath(os.path.join(image_dir, relative))  # let the OS rules decide
    current = image_dir
    for part in parts:
        current = os.path.join(current, part)
        try:
            if stat.S_ISLNK(os.lstat(current).st_mode):
                return os.path.realpath(os.path.join(image_dir, relative))
        except OSError:
            break  # missing: nothing below it can be a link; the caller's open reports it
    return os.path.join(_real_folder(image_dir), relative)


def resolve_image_path(dataset_root: StrPath, image_dir: StrPath, file_name: str) -> Path:
    """The path of ``file_name`` under ``image_dir``; raises UnsafeFileName if it leaves the dataset.

    A path is allowed when, after following symlinks, it lies inside the dataset root
    or inside the (resolved) image folder.  A missing file is not an error here: the
    caller's open reports it.
    """
    reason = unsafe_reason(file_name)
    if reason:
        raise UnsafeFileName(str(file_name), reason)
    relative = file_name.replace("\\", "/")
    path = Path(image_dir) / relative
    real = _real_path(os.fspath(image_dir), relative)
    allowed = (_real_folder(os.fspath(dataset_root)), _real_folder(os.fspath(image_dir)))
    if not any(_inside(real, folder) for folder in allowed):
        raise UnsafeFileName(file_name, f"symlink points outside the dataset folder (to {real})")
    return path
