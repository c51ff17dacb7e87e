"""Find the splits of a dataset folder, whatever tool exported it.

Recognised layouts (checked in this order):

* ``roboflow``: ``<split>/_annotations.coco.json`` with the images beside it.
* ``coco``: ``annotations/instances_<split>.json`` with images in ``<split>/``
  or ``images/<split>/`` (official COCO, also CVAT's export, whose images sit
  in ``images/`` or ``images/<subset>/``).
* ``label-studio``: ``result.json`` whose ``file_name`` values are relative to
  the folder (usually ``images/...``).
* ``plain``: ``annotations.json`` (or any single ``*.json`` holding COCO keys)
  with images in ``images/`` or beside it.

The image folder of a split is the candidate in which the first few
``file_name`` values exist, so odd exports still resolve.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import msgspec

from .problems import DatasetError, Problem

# Names that tools use for the same split.
_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
    "default": "train",  # CVAT's single subset
}
_YEAR_SUFFIX = re.compile(r"^(.*?)[_-]?(19|20)\d\d$")


def canonical_split(name: str) -> str:
    """``train2017`` -> ``train``, ``valid`` -> ``val``; unknown names pass through lower-cased."""
    base = name.lower()
    match = _YEAR_SUFFIX.match(base)
    if match and match.group(1):
        base = match.group(1)
    return _SPLIT_ALIASES.get(base, base)


@dataclass(frozen=True)
class Split:
    name: str  # canonical: train / val / test / other
    annotation_file: Path
    image_dir: Path


@dataclass(frozen=True)
class DatasetFolder:
    root: Path
    layout: str
    splits: dict[str, Split]

    @property
    def has_validation(self) -> bool:
        return "val" in self.splits

    def split(self, name: str) -> Split:
        key = canonical_split(name)
        if key not in self.splits:
            raise DatasetError(
                f"{self.root}: no split named '{name}'; found: {', '.join(self.splits) or 'none'}",
                [Problem("unknown_split", f"no split named '{name}'", str(self.root))],
            )
        return self.splits[key]


def find_splits(root: str | Path) -> DatasetFolder:
    """Inspect a folder and return its layout and splits (raises DatasetError if none)."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(
            f"{root}: folder does not exist", [Problem("missing_folder", "folder does not exist", str(root))]
        )
    if root.is_file():
        # A COCO file was given directly: its folder holds the images.
        train = _split("train", root, [root.parent, root.parent / "images"])
        return DatasetFolder(root.parent, "file", {"train": train})
    for finder in (_roboflow, _coco, _label_studio, _plain):
        found = finder(root)
        if found:
            return found
    raise DatasetError(
        f"{root}: no COCO annotation file found (looked for annotations/instances_<split>.json, "
        "<split>/_annotations.coco.json, result.json, annotations.json)",
        [Problem("no_annotations", "no COCO annotation file found", str(root))],
    )


def _roboflow(root: Path) -> DatasetFolder | None:
    splits = {}
    for ann in sorted(root.glob("*/_annotations.coco.json")):
        name = canonical_split(ann.parent.name)
        splits[name] = _split(name, ann, [ann.parent, ann.parent / "images"])
    return DatasetFolder(root, "roboflow", splits) if splits else None


def _coco(root: Path) -> DatasetFolder | None:
    splits = {}
    for ann in sorted((root / "annotations").glob("instances_*.json")):
        raw = ann.stem[len("instances_") :]
        name = canonical_split(raw)
        candidates = [root / raw, root / "images" / raw, root / "images", root / name, root]
        splits[name] = _split(name, ann, candidates)
    return DatasetFolder(root, "coco", splits) if splits else None


def _label_studio(root: Path) -> DatasetFolder | None:
    ann = root / "result.json"
    if not ann.is_file():
        return None
    return DatasetFolder(root, "label-studio", {"train": _split("train", ann, [root, root / "images"])})


def _plain(root: Path) -> DatasetFolder | None:
    ann = root / "annotations.json"
    if not ann.is_file():
        candidates = [p for p in sorted(root.glob("*.json")) if _looks_like_coco(p)]
        if len(candidates) != 1:
            return None
        ann = candidates[0]
    return DatasetFolder(root, "plain", {"train": _split("train", ann, [root / "images", root])})


def _looks_like_coco(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(1 << 16)
    except OSError:
        return False
    return b'"images"' in head or b'"categories"' in head or b'"annotations"' in head


def _split(name: str, annotation_file: Path, candidates: list[Path]) -> Split:
    return Split(name, annotation_file, _pick_image_dir(annotation_file, candidates))


def _pick_image_dir(annotation_file: Path, candidates: list[Path]) -> Path:
    """The candidate folder where the first file names exist; the first existing one otherwise."""
    names = _first_file_names(annotation_file, 8)
    existing = [c for c in dict.fromkeys(candidates) if c.is_dir()]
    best, best_hits = None, 0
    for folder in existing:
        hits = sum((folder / n).is_file() for n in names)
        if hits > best_hits:
            best, best_hits = folder, hits
    return best or (existing[0] if existing else candidates[0])


class _ImagesOnly(msgspec.Struct):
    images: list[dict] = []


def _first_file_names(annotation_file: Path, n: int) -> list[str]:
    """A few ``file_name`` values, cheaply; [] if the file cannot be parsed (reported later)."""
    try:
        doc = msgspec.json.decode(annotation_file.read_bytes(), type=_ImagesOnly)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return []
    names = [im.get("file_name") for im in doc.images[:n]]
    return [x for x in names if isinstance(x, str) and x and not x.startswith("/")]
