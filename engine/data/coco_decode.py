"""Decoding a COCO instances file into typed records, strictly or item by item.

The fast path decodes the whole file into msgspec structs, keeping segmentations as
raw JSON bytes. When something is missing or mistyped, :func:`decode_tolerant` walks
the document item by item so every offending item is reported as a ``Problem``, and
the items that can be used are kept. :mod:`engine.data.coco_index` turns the
records into arrays.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from .problems import CocoFormatError, Problem

__all__ = [
    "AnnotationRecord",
    "CategoryRecord",
    "CocoRecords",
    "ImageRecord",
    "decode_strict",
    "decode_tolerant",
    "syntax_error",
]


class ImageRecord(msgspec.Struct):
    id: int
    file_name: str
    width: float
    height: float


class CategoryRecord(msgspec.Struct):
    id: int
    name: str
    supercategory: str | None = None


class AnnotationRecord(msgspec.Struct):
    id: int
    image_id: int
    category_id: int
    bbox: list[float] | None = None
    area: float | None = None
    iscrowd: int | bool = 0
    # Kept undecoded: polygons are most of a COCO file's bytes.
    segmentation: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)


class CocoRecords(msgspec.Struct):
    images: list[ImageRecord]
    categories: list[CategoryRecord]
    annotations: list[AnnotationRecord] = msgspec.field(default_factory=list)


_DECODER = msgspec.json.Decoder(CocoRecords)


def decode_strict(data: bytes) -> CocoRecords:
    """The whole file as typed records (msgspec's ValidationError if an item does not fit, DecodeError if not JSON)."""
    return _DECODER.decode(data)


_BYTE_RE = re.compile(r"\(byte (\d+)\)")


def syntax_error(data: bytes, exc: msgspec.DecodeError, name: str) -> CocoFormatError:
    """The error for a file that is not JSON, at the line and column where it breaks."""
    text = str(exc).replace("JSON is malformed: ", "")
    match = _BYTE_RE.search(text)
    line = column = None
    if match:
        pos = int(match.group(1))
        line = data.count(b"\n", 0, pos) + 1
        # Characters, not bytes: editors count 'é' as one column.
        column = len(data[data.rfind(b"\n", 0, pos) + 1 : pos].decode("utf-8", "replace")) + 1
        text = _BYTE_RE.sub("", text).strip()
    elif "truncated" in text.lower():
        # msgspec gives no position for a file that stops early: it ends at the last byte.
        end = len(data.rstrip())
        line = data.count(b"\n", 0, end) + 1
        column = len(data[data.rfind(b"\n", 0, end) + 1 : end].decode("utf-8", "replace")) + 1
        text = f"the file ends too early (truncated after line {line}, column {column})"
    problem = Problem("json_syntax", f"invalid JSON: {text}", name, line=line, column=column)
    return CocoFormatError(f"{problem.where()}: invalid JSON: {text}", [problem])


# ---------------------------------------------------------------------- tolerant decoding
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


_IMAGE_KEYS = {
    "id": (_is_int, "an integer"),
    "file_name": (lambda v: isinstance(v, str), "a string"),
    "width": (_is_number, "a number"),
    "height": (_is_number, "a number"),
}
_CATEGORY_KEYS = {"id": (_is_int, "an integer"), "name": (lambda v: isinstance(v, str), "a string")}
_ANN_KEYS = {"id": (_is_int, "an integer"), "image_id": (_is_int, "an integer"), "category_id": (_is_int, "an integer")}
_ANN_OPTIONAL = {
    "bbox": (lambda v: isinstance(v, list) and all(_is_number(x) for x in v), "an array of numbers"),
    "area": (_is_number, "a number"),
    "iscrowd": (lambda v: v in (0, 1) and not isinstance(v, float), "0 or 1"),
    "segmentation": (lambda v: isinstance(v, (list, dict)), "an array of polygons or an RLE object"),
}


def _check_item(
    kind: str, pos: int, item: Any, required: dict, optional: dict, name: str, problems: list[Problem], id_field: str
) -> bool:
    """Report every missing or mistyped key of one item; True when it is usable."""
    ident = item.get("id") if isinstance(item, dict) else None
    label = f"{kind}[{pos}]" + (f" (id {ident})" if _is_int(ident) else "")
    ids: dict[str, int | None] = {id_field: ident if _is_int(ident) else None}
    if isinstance(item, dict) and kind == "annotations":
        ids["image_id"] = item.get("image_id") if _is_int(item.get("image_id")) else None
    if not isinstance(item, dict):
        problems.append(_item_problem("bad_type", f"{label}: must be an object, got {_type_name(item)}", name, ids))
        return False
    ok = True
    for key, (check, what) in required.items():
        if key not in item:
            problems.append(_item_problem("missing_key", f"{label}: missing key '{key}'", name, ids))
            ok = False
        elif not check(item[key]):
            problems.append(
                _item_problem(
                    "bad_type",
                    f"{label}: '{key}' must be {what}, got {_type_name(item[key])} {item[key]!r:.40}",
                    name,
                    ids,
                )
            )
            ok = False
    for key, (check, what) in optional.items():
        if key in item and item[key] is not None and not check(item[key]):
            problems.append(
                _item_problem(
                    "bad_type",
                    f"{label}: '{key}' must be {what}, got {_type_name(item[key])} {item[key]!r:.40}",
                    name,
                    ids,
                )
            )
            ok = False
    return ok


def _item_problem(code: str, message: str, name: str, ids: dict[str, int | None]) -> Problem:
    """A problem of one item, with the ids (image, annotation, category) it was found to have."""
    return Problem(
        code,
        message,
        name,
        image_id=ids.get("image_id"),
        annotation_id=ids.get("annotation_id"),
        category_id=ids.get("category_id"),
    )


Decoded = tuple[
    list[ImageRecord],
    list[CategoryRecord],
    list[AnnotationRecord],
    list[Problem],
    tuple[frozenset[int], frozenset[int]],
]


def decode_tolerant(data: bytes, name: str) -> Decoded:
    """(images, categories, annotations, problems, (left-out image ids, left-out category ids)).

    Every usable item is kept; each missing or mistyped key is a Problem.
    """
    doc = msgspec.json.decode(data)
    problems: list[Problem] = []
    if not isinstance(doc, dict):
        raise CocoFormatError(
            f"{name}: top level must be a JSON object with 'images' and 'categories', got {_type_name(doc)}",
            [Problem("bad_type", f"top level must be an object, got {_type_name(doc)}", name)],
        )
    sections: dict[str, list[Any]] = {}
    for key, required in (("images", True), ("categories", True), ("annotations", False)):
        value = doc.get(key)
        if value is None:
            if required:
                problems.append(Problem("missing_key", f"missing top-level key '{key}'", name))
            sections[key] = []
        elif not isinstance(value, list):
            problems.append(Problem("bad_type", f"'{key}' must be an array, got {_type_name(value)}", name))
            sections[key] = []
        else:
            sections[key] = value

    images, left_out_images = [], set()
    for pos, it in enumerate(sections["images"]):
        if _check_item("images", pos, it, _IMAGE_KEYS, {}, name, problems, "image_id"):
            images.append(ImageRecord(id=it["id"], file_name=it["file_name"], width=it["width"], height=it["height"]))
        elif (ident := _loose_id(it)) is not None:
            left_out_images.add(ident)
    categories, left_out_categories = [], set()
    for pos, it in enumerate(sections["categories"]):
        if _check_item("categories", pos, it, _CATEGORY_KEYS, {}, name, problems, "category_id"):
            supercategory = it.get("supercategory")
            categories.append(
                CategoryRecord(
                    id=it["id"],
                    name=it["name"],
                    supercategory=supercategory if isinstance(supercategory, str) else None,
                )
            )
        elif (ident := _loose_id(it)) is not None:
            left_out_categories.add(ident)
    annotations = []
    for pos, it in enumerate(sections["annotations"]):
        if not _check_item("annotations", pos, it, _ANN_KEYS, _ANN_OPTIONAL, name, problems, "annotation_id"):
            continue
        seg = it.get("segmentation")
        annotations.append(
            AnnotationRecord(
                id=it["id"],
                image_id=it["image_id"],
                category_id=it["category_id"],
                bbox=it.get("bbox"),
                area=it.get("area"),
                iscrowd=it.get("iscrowd", 0),
                segmentation=msgspec.Raw(msgspec.json.encode(seg)) if seg is not None else msgspec.Raw(),
            )
        )
    return images, categories, annotations, problems, (frozenset(left_out_images), frozenset(left_out_categories))


def _loose_id(item: Any) -> int | None:
    """The id an item was meant to have (7, "7" or 7.0), for an item that was left out."""
    value: Any = item.get("id") if isinstance(item, dict) else None
    if isinstance(value, str) and value.strip().isdecimal():
        value = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if _is_int(value) and -(2**63) <= value < 2**63 else None
