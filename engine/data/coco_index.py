"""A COCO instances file, indexed in compact arrays.

Why not ``pycocotools.coco.COCO``: it keeps every annotation as a Python dict,
polygons included, which costs several GB and many seconds at train2017 scale.
Here the file is decoded once with typed msgspec structs; segmentations are kept
as their raw JSON bytes in one buffer and decoded only when a mask is needed.

Category ids are remapped to contiguous labels ``0..K-1`` in ascending id order;
``category_ids[label]`` maps back.

Loading is tolerant: anything that cannot be indexed (a missing or mistyped
key, a bad bbox) is left out and recorded in ``index.problems``; only a file
that is not JSON at all, or not shaped like COCO, raises ``CocoFormatError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from .coco_decode import AnnotationRecord, CategoryRecord, ImageRecord, decode_strict, decode_tolerant, syntax_error
from .problems import CocoFormatError, Problem

SEG_NONE, SEG_POLYGON, SEG_RLE = 0, 1, 2


@dataclass
class CocoIndex:
    """Images, categories and annotations of one COCO file as numpy arrays.

    Annotations are sorted by image: those of image row ``i`` are rows
    ``image_ann_offsets[i]:image_ann_offsets[i+1]``. Annotations whose image id
    is unknown have ``ann_image == -1`` and sit after all others.
    """

    path: Path | None
    image_ids: np.ndarray  # int64 (I,)
    file_names: list[str]
    image_width: np.ndarray  # int32 (I,)
    image_height: np.ndarray  # int32 (I,)
    category_ids: np.ndarray  # int64 (K,) ascending: label -> COCO id
    category_names: list[str]
    supercategories: list[str]
    ann_ids: np.ndarray  # int64 (A,)
    ann_image: np.ndarray  # int32 (A,) image row, -1 when the image id is unknown
    ann_image_id: np.ndarray  # int64 (A,) the image id as written
    ann_label: np.ndarray  # int32 (A,) contiguous label, -1 when the category is unknown
    ann_category_id: np.ndarray  # int64 (A,) the COCO category id as written
    ann_bbox: np.ndarray  # float64 (A, 4) x, y, w, h; NaN when absent or malformed
    ann_area: np.ndarray  # float64 (A,) NaN when absent
    ann_iscrowd: np.ndarray  # bool (A,)
    ann_seg_kind: np.ndarray  # uint8 (A,) SEG_NONE / SEG_POLYGON / SEG_RLE
    ann_seg_start: np.ndarray  # int64 (A,) offsets into seg_buffer
    ann_seg_len: np.ndarray  # int64 (A,)
    seg_buffer: bytes
    image_ann_offsets: np.ndarray  # int64 (I+1,)
    problems: list[Problem] = field(default_factory=list)
    # Rows of images and categories whose id repeats an earlier one.
    duplicate_image_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    # Ids of images / categories present in the file but left out for a missing or
    # mistyped key (already in ``problems``): references to them are not "unknown".
    unindexed_image_ids: frozenset = field(default_factory=frozenset)
    unindexed_category_ids: frozenset = field(default_factory=frozenset)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | Path) -> CocoIndex:
        """Read and index a COCO instances JSON file."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CocoFormatError(
                f"{path}: cannot read annotation file: {exc.strerror or exc}",
                [Problem("unreadable_file", f"cannot read: {exc.strerror or exc}", str(path))],
            ) from None
        return cls.from_bytes(data, path)

    @classmethod
    def from_bytes(cls, data: bytes, path: str | Path | None = None) -> CocoIndex:
        name = str(path) if path is not None else "<memory>"
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]  # some Windows tools write a UTF-8 BOM
        if not data.strip():
            raise CocoFormatError(
                f"{name}: annotation file is empty",
                [Problem("json_syntax", "file is empty", name, line=1, column=1)],
            )
        try:
            doc = decode_strict(data)
            problems: list[Problem] = []
            images, categories, annotations = doc.images, doc.categories, doc.annotations
            unindexed: tuple[frozenset, frozenset] = (frozenset(), frozenset())
            tolerant = False
        except msgspec.ValidationError:
            # Something is missing or mistyped: walk the document item by item
            # so every offending item is reported, not only the first.
            images, categories, annotations, problems, unindexed = decode_tolerant(data, name)
            tolerant = True
        except msgspec.DecodeError as exc:
            raise syntax_error(data, exc, name) from None
        index = _build(images, categories, annotations, path, name, problems, unindexed)
        if not tolerant and _mistyped_segmentation(index):
            # The typed decoder keeps segmentations raw, so a string or number
            # there slips through; report it the way the tolerant path does.
            images, categories, annotations, problems, unindexed = decode_tolerant(data, name)
            index = _build(images, categories, annotations, path, name, problems, unindexed)
        return index

    @classmethod
    def from_dict(cls, doc: dict, path: str | Path | None = None) -> CocoIndex:
        """Index an in-memory COCO dict (tests, generated data)."""
        return cls.from_bytes(msgspec.json.encode(doc), path)

    # ------------------------------------------------------------------ sizes
    @property
    def num_images(self) -> int:
        return len(self.image_ids)

    @property
    def num_annotations(self) -> int:
        return len(self.ann_ids)

    @property
    def num_categories(self) -> int:
        return len(self.category_ids)

    @property
    def name(self) -> str:
        return str(self.path) if self.path is not None else "<memory>"

    # ------------------------------------------------------------------ lookups
    def image_rows(self, image_ids: Iterable[int] | np.ndarray) -> np.ndarray:
        """Rows of the given image ids (-1 where unknown)."""
        return _lookup(self.image_ids, np.fromiter(image_ids, np.int64))

    def label_of(self, category_id: int) -> int:
        """Contiguous label of a COCO category id (KeyError if unknown)."""
        label = int(np.searchsorted(self.category_ids, category_id))
        if label >= len(self.category_ids) or self.category_ids[label] != category_id:
            raise KeyError(f"{self.name}: unknown category id {category_id}")
        return label

    def category_id_of(self, label: int) -> int:
        return int(self.category_ids[label])

    def annotation_rows(self, image_row: int) -> range:
        return range(int(self.image_ann_offsets[image_row]), int(self.image_ann_offsets[image_row + 1]))

    # ------------------------------------------------------------------ segmentation
    def segmentation(self, ann_row: int) -> Any:
        """The annotation's segmentation as written (list of polygons or RLE dict), or None."""
        if self.ann_seg_kind[ann_row] == SEG_NONE:
            return None
        start = int(self.ann_seg_start[ann_row])
        return msgspec.json.decode(self.seg_buffer[start : start + int(self.ann_seg_len[ann_row])])

    def polygons(self, ann_row: int) -> list[np.ndarray]:
        """Polygons of an annotation as (n, 2) float64 arrays ([] for RLE or none)."""
        if self.ann_seg_kind[ann_row] != SEG_POLYGON:
            return []
        seg = self.segmentation(ann_row)
        return [np.asarray(poly, dtype=np.float64).reshape(-1, 2) for poly in seg if len(poly) >= 2]

    # ------------------------------------------------------------------ statistics
    def valid_annotation_mask(self) -> np.ndarray:
        return (self.ann_image >= 0) & (self.ann_label >= 0)

    def class_counts(self) -> dict[str, int]:
        """Annotations per category name, in label order."""
        ok = self.valid_annotation_mask()
        counts = np.bincount(self.ann_label[ok], minlength=self.num_categories)
        return dict(zip(self.category_names, counts.tolist()))

    def images_per_class(self) -> dict[str, int]:
        """Number of distinct images that contain each category."""
        ok = self.valid_annotation_mask()
        pairs = np.unique(self.ann_image[ok].astype(np.int64) * max(self.num_categories, 1) + self.ann_label[ok])
        counts = np.bincount(pairs % max(self.num_categories, 1), minlength=self.num_categories)
        return dict(zip(self.category_names, counts.tolist()))

    # ------------------------------------------------------------------ derived indexes
    def subset(self, image_rows: Sequence[int] | np.ndarray) -> CocoIndex:
        """A new index over some images (and their annotations), categories unchanged."""
        rows = np.asarray(image_rows, dtype=np.int64)
        starts, ends = self.image_ann_offsets[rows], self.image_ann_offsets[rows + 1]
        counts = ends - starts
        ann = _ranges(starts, counts)
        new_image = np.repeat(np.arange(len(rows), dtype=np.int32), counts)
        offsets = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        return CocoIndex(
            path=self.path,
            image_ids=self.image_ids[rows],
            file_names=[self.file_names[r] for r in rows.tolist()],
            image_width=self.image_width[rows],
            image_height=self.image_height[rows],
            category_ids=self.category_ids,
            category_names=self.category_names,
            supercategories=self.supercategories,
            ann_ids=self.ann_ids[ann],
            ann_image=new_image,
            ann_image_id=self.ann_image_id[ann],
            ann_label=self.ann_label[ann],
            ann_category_id=self.ann_category_id[ann],
            ann_bbox=self.ann_bbox[ann],
            ann_area=self.ann_area[ann],
            ann_iscrowd=self.ann_iscrowd[ann],
            ann_seg_kind=self.ann_seg_kind[ann],
            ann_seg_start=self.ann_seg_start[ann],
            ann_seg_len=self.ann_seg_len[ann],
            seg_buffer=self.seg_buffer,
            image_ann_offsets=offsets,
            problems=[],
            unindexed_image_ids=self.unindexed_image_ids,
            unindexed_category_ids=self.unindexed_category_ids,
        )

    def without_annotations(self, ann_rows: np.ndarray) -> CocoIndex:
        """A copy with some annotations dropped (the 'skip' policy of training)."""
        keep = np.ones(self.num_annotations, bool)
        keep[np.asarray(ann_rows, dtype=np.int64)] = False
        keep &= self.ann_image >= 0
        counts = np.bincount(self.ann_image[keep], minlength=self.num_images)
        offsets = np.zeros(self.num_images + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        arrays = {
            name: getattr(self, name)[keep]
            for name in (
                "ann_ids",
                "ann_image",
                "ann_image_id",
                "ann_label",
                "ann_category_id",
                "ann_bbox",
                "ann_area",
                "ann_iscrowd",
                "ann_seg_kind",
                "ann_seg_start",
                "ann_seg_len",
            )
        }
        return CocoIndex(
            path=self.path,
            image_ids=self.image_ids,
            file_names=self.file_names,
            image_width=self.image_width,
            image_height=self.image_height,
            category_ids=self.category_ids,
            category_names=self.category_names,
            supercategories=self.supercategories,
            seg_buffer=self.seg_buffer,
            image_ann_offsets=offsets,
            problems=list(self.problems),
            **arrays,
            unindexed_image_ids=self.unindexed_image_ids,
            unindexed_category_ids=self.unindexed_category_ids,
        )

    def aligned_to(self, reference: CocoIndex) -> CocoIndex:
        """Relabel annotations with ``reference``'s category mapping.

        Train and validation files are indexed separately; their labels must
        agree. Categories unknown to the reference get label -1.
        """
        if np.array_equal(self.category_ids, reference.category_ids):
            return self
        aligned = CocoIndex(**{**self.__dict__})
        aligned.category_ids = reference.category_ids
        aligned.category_names = reference.category_names
        aligned.supercategories = reference.supercategories
        aligned.ann_label = _lookup(reference.category_ids, self.ann_category_id).astype(np.int32)
        return aligned

    def to_coco_dict(self) -> dict:
        """A plain COCO dict (for writing splits, or as evaluation ground truth)."""
        images = [
            {"id": int(i), "file_name": f, "width": int(w), "height": int(h)}
            for i, f, w, h in zip(self.image_ids, self.file_names, self.image_width, self.image_height)
        ]
        categories = [
            {"id": int(c), "name": n, **({"supercategory": s} if s else {})}
            for c, n, s in zip(self.category_ids, self.category_names, self.supercategories)
        ]
        annotations = []
        for row in range(self.num_annotations):
            ann: dict[str, Any] = {
                "id": int(self.ann_ids[row]),
                "image_id": int(self.ann_image_id[row]),
                "category_id": int(self.ann_category_id[row]),
                "iscrowd": int(self.ann_iscrowd[row]),
            }
            if not np.isnan(self.ann_bbox[row, 0]):
                ann["bbox"] = [float(v) for v in self.ann_bbox[row]]
            if not np.isnan(self.ann_area[row]):
                ann["area"] = float(self.ann_area[row])
            seg = self.segmentation(row)
            if seg is not None:
                ann["segmentation"] = seg
            annotations.append(ann)
        return {"images": images, "annotations": annotations, "categories": categories}

    def save(self, path: str | Path) -> None:
        """Write the index back out as a COCO JSON file (atomically)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(msgspec.json.encode(self.to_coco_dict()))
        tmp.replace(path)


# ---------------------------------------------------------------------- helpers
def _lookup(sorted_or_any_ids: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Row of each query id in ``ids`` (first occurrence), -1 when absent."""
    ids = np.asarray(sorted_or_any_ids, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    pos = np.searchsorted(sorted_ids, query)
    pos_clipped = np.minimum(pos, max(len(ids) - 1, 0))
    found = (pos < len(ids)) & (sorted_ids[pos_clipped] == query) if len(ids) else np.zeros(len(query), bool)
    rows = np.full(len(query), -1, np.int64)
    rows[found] = order[pos_clipped[found]]
    return rows


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + c)`` for each pair, vectorised."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    return np.arange(total, dtype=np.int64) + offsets


def _build(
    images: list[ImageRecord],
    categories: list[CategoryRecord],
    annotations: list[AnnotationRecord],
    path: str | Path | None,
    name: str,
    problems: list[Problem],
    unindexed: tuple[frozenset, frozenset] = (frozenset(), frozenset()),
) -> CocoIndex:
    n_img, n_ann = len(images), len(annotations)
    image_ids = np.fromiter((im.id for im in images), np.int64, n_img)
    widths = np.fromiter((im.width for im in images), np.float64, n_img)
    heights = np.fromiter((im.height for im in images), np.float64, n_img)
    file_names = [im.file_name for im in images]

    # Categories: unique ids ascending define the contiguous labels.
    cat_ids_raw = np.fromiter((c.id for c in categories), np.int64, len(categories))
    cat_ids, first = np.unique(cat_ids_raw, return_index=True)
    cat_names = [categories[i].name for i in first.tolist()]
    for cat_id in np.unique(cat_ids_raw[np.setdiff1d(np.arange(len(categories)), first)]).tolist():
        problems.append(
            Problem(
                "duplicate_category_id",
                f"category id {cat_id} is defined more than once (the first definition is used)",
                name,
                category_id=cat_id,
            )
        )
    supers = [categories[i].supercategory or "" for i in first.tolist()]

    ann_ids = np.fromiter((a.id for a in annotations), np.int64, n_ann)
    ann_image_id = np.fromiter((a.image_id for a in annotations), np.int64, n_ann)
    ann_cat = np.fromiter((a.category_id for a in annotations), np.int64, n_ann)
    ann_area = np.fromiter((np.nan if a.area is None else a.area for a in annotations), np.float64, n_ann)
    ann_crowd = np.fromiter((bool(a.iscrowd) for a in annotations), bool, n_ann)
    ann_bbox = _bboxes(annotations, name, problems)

    seg_len = np.fromiter((len(a.segmentation) for a in annotations), np.int64, n_ann)
    seg_buffer = b"".join(a.segmentation for a in annotations)
    seg_start = np.zeros(n_ann, np.int64)
    if n_ann:
        np.cumsum(seg_len[:-1], out=seg_start[1:])
    seg_kind = np.zeros(n_ann, np.uint8)
    present = seg_len > 0
    if present.any():
        first_byte = np.frombuffer(seg_buffer, np.uint8)[seg_start[present]]
        kind = np.where(first_byte == ord("["), SEG_POLYGON, np.where(first_byte == ord("{"), SEG_RLE, SEG_NONE))
        seg_kind[present] = kind

    image_row = _lookup(image_ids, ann_image_id).astype(np.int32)
    label = _lookup(cat_ids, ann_cat).astype(np.int32)

    # Sort annotations by image row; unknown images last. Stable keeps file order.
    key = np.where(image_row >= 0, image_row, n_img)
    order = np.argsort(key, kind="stable")
    counts = np.bincount(image_row[image_row >= 0], minlength=n_img)
    offsets = np.zeros(n_img + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])

    # Images whose id appeared earlier: annotations attach to the first one.
    _, first_img = np.unique(image_ids, return_index=True)
    dup_rows = np.setdiff1d(np.arange(n_img), first_img)

    return CocoIndex(
        path=Path(path) if path is not None else None,
        image_ids=image_ids,
        file_names=file_names,
        image_width=_to_int32(widths),
        image_height=_to_int32(heights),
        category_ids=cat_ids,
        category_names=cat_names,
        supercategories=supers,
        ann_ids=ann_ids[order],
        ann_image=image_row[order],
        ann_image_id=ann_image_id[order],
        ann_label=label[order],
        ann_category_id=ann_cat[order],
        ann_bbox=ann_bbox[order],
        ann_area=ann_area[order],
        ann_iscrowd=ann_crowd[order],
        ann_seg_kind=seg_kind[order],
        ann_seg_start=seg_start[order],
        ann_seg_len=seg_len[order],
        seg_buffer=seg_buffer,
        image_ann_offsets=offsets,
        problems=problems,
        duplicate_image_rows=dup_rows,
        unindexed_image_ids=unindexed[0],
        unindexed_category_ids=unindexed[1],
    )


def _mistyped_segmentation(index: CocoIndex) -> bool:
    """Is any segmentation present but neither polygons, RLE nor null?"""
    rows = np.flatnonzero((index.ann_seg_kind == SEG_NONE) & (index.ann_seg_len > 0))
    return any(
        index.seg_buffer[int(index.ann_seg_start[r]) : int(index.ann_seg_start[r] + index.ann_seg_len[r])] != b"null"
        for r in rows.tolist()
    )


def _to_int32(values: np.ndarray) -> np.ndarray:
    # Non-integer sizes are reported by the health check; index them rounded.
    return np.nan_to_num(np.rint(values), nan=0).clip(-1, 2**31 - 1).astype(np.int32)


def _bboxes(annotations: list[AnnotationRecord], name: str, problems: list[Problem]) -> np.ndarray:
    n = len(annotations)
    boxes = np.full((n, 4), np.nan)
    lengths = np.fromiter((-1 if a.bbox is None else len(a.bbox) for a in annotations), np.int64, n)
    good = np.flatnonzero(lengths == 4)
    if len(good) == n:
        boxes[:] = np.array([a.bbox for a in annotations], dtype=np.float64).reshape(n, 4)
    elif len(good):
        boxes[good] = np.array([annotations[i].bbox for i in good.tolist()], dtype=np.float64)
    for i in np.flatnonzero((lengths != 4) & (lengths != -1)).tolist():
        a = annotations[i]
        problems.append(
            Problem(
                "bad_bbox",
                f"annotation {a.id}: bbox must have 4 numbers [x, y, w, h], has {lengths[i]}",
                name,
                image_id=a.image_id,
                annotation_id=a.id,
            )
        )
    return boxes
