"""The dataset health check against a corpus of broken datasets.

Every test copies the generated sample (``sample_copy``), breaks exactly one
thing with the small helpers below, and checks that the report names the right
``code``, the annotation file and the offending id, and nothing else.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from engine.cli import main
from engine.data import images as image_io
from engine.data.coco_index import CocoIndex
from engine.data.folders import find_splits
from engine.data.health import apply_policy, check_folder, check_index
from engine.data.problems import DatasetError, Problem


# ---------------------------------------------------------------------- helpers
def ann_path(ds: Path, split: str = "train") -> Path:
    return ds / "annotations" / f"instances_{split}.json"


def read_doc(ds: Path, split: str = "train") -> dict:
    return json.loads(ann_path(ds, split).read_text())


def write_doc(ds: Path, doc: dict, split: str = "train") -> None:
    ann_path(ds, split).write_text(json.dumps(doc, indent=1, ensure_ascii=False), encoding="utf-8")


def check(ds: Path, **kwargs):
    return check_folder(ds, workers=2, **kwargs)


def image_of(doc: dict, image_id: int) -> dict:
    (found,) = [im for im in doc["images"] if im["id"] == image_id]
    return found


def ann_of(doc: dict, ann_id: int) -> dict:
    (found,) = [a for a in doc["annotations"] if a["id"] == ann_id]
    return found


def anns_on(doc: dict, image_id: int) -> list[dict]:
    return [a for a in doc["annotations"] if a["image_id"] == image_id]


def renumber_image(doc: dict, old: int, new: int) -> None:
    """Give an image a distinctive id (its annotations follow)."""
    image_of(doc, old)["id"] = new
    for a in anns_on(doc, old):
        a["image_id"] = new


def renumber_ann(doc: dict, old: int, new: int) -> dict:
    ann = ann_of(doc, old)
    ann["id"] = new
    return ann


def polygon_only_image(doc: dict, skip: int = 0) -> int:
    """Id of an image whose annotations are all polygons (changing its size breaks no RLE)."""
    ids = [
        im["id"]
        for im in doc["images"]
        if anns_on(doc, im["id"]) and all(isinstance(a["segmentation"], list) for a in anns_on(doc, im["id"]))
    ]
    return ids[skip]


def polygon_ann(doc: dict, skip: int = 0) -> dict:
    return [a for a in doc["annotations"] if isinstance(a["segmentation"], list)][skip]


def rle_ann(doc: dict) -> dict:
    return next(a for a in doc["annotations"] if isinstance(a["segmentation"], dict))


def image_file(ds: Path, doc: dict, image_id: int, split: str = "train") -> Path:
    return ds / split / image_of(doc, image_id)["file_name"]


def names_id(message: str, ident) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(str(ident))}(?![\w])", message) is not None


def single(report, code: str, ds: Path, split: str = "train") -> Problem:
    """The report holds exactly one problem, of ``code``, in the split's annotation file."""
    assert report.counts() == {code: 1}, [str(p) for p in report.problems]
    (p,) = report.problems
    assert p.file == str(ann_path(ds, split))
    assert str(ann_path(ds, split)) in str(p)
    assert f"[{code}]" in str(p)
    return p


# ---------------------------------------------------------------------- clean sample
def test_clean_sample_has_no_problems(sample_copy):
    report = check(sample_copy)
    assert report.problems == []
    assert report.ok and not report.unreadable and report.exit_code == 0
    assert report.layout == "coco"
    assert {k: (s.images, s.annotations, s.categories) for k, s in report.splits.items()} == {
        "train": (48, 77, 4),
        "val": (16, 28, 4),
    }
    assert check(sample_copy, deep=True).problems == []
    assert "OK: no problems found" in report.to_text()


# ---------------------------------------------------------------------- JSON syntax
@pytest.mark.parametrize("case", ["ascii", "non_ascii_before_error"])
def test_json_syntax_error_reports_line_and_column(sample_copy, case):
    doc = read_doc(sample_copy)
    text = json.dumps(doc, indent=1)
    lines = text.split("\n")
    if case == "ascii":
        # The second image's width: 172 -> 17x2.
        at = [i for i, line in enumerate(lines) if line.strip().startswith('"width"')][1]
        width = str(doc["images"][1]["width"])
        lines[at] = lines[at].replace(width, width[:2] + "x" + width[2:])
        column = lines[at].index("x") + 1
    else:
        # A category name with an accent, then a missing comma: the column counts characters.
        at = [i for i, line in enumerate(lines) if line.strip() == '"name": "square",'][0]
        lines[at] = '   "name": "carré" "x",'
        column = lines[at].index('"x"') + 1
    ann_path(sample_copy).write_text("\n".join(lines), encoding="utf-8")

    report = check(sample_copy)
    p = single(report, "json_syntax", sample_copy)
    assert (p.line, p.column) == (at + 1, column)
    assert p.where() == f"{ann_path(sample_copy)}:{at + 1}:{column}"
    assert report.unreadable and report.exit_code == 2
    assert report.splits["val"].images == 16  # the other split is still checked


def test_empty_json_file_is_unreadable(sample_copy):
    ann_path(sample_copy).write_bytes(b"")
    report = check(sample_copy)
    p = single(report, "json_syntax", sample_copy)
    assert "empty" in p.message
    assert report.unreadable and report.exit_code == 2


def test_folder_without_coco_file_is_unreadable(tmp_path):
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "photos" / "a.jpg")
    report = check(tmp_path / "photos")
    assert report.unreadable and report.exit_code == 2
    assert report.counts() == {"no_annotations": 1}
    assert report.problems[0].file == str(tmp_path / "photos")


# ---------------------------------------------------------------------- missing / mistyped keys
def test_image_without_width(sample_copy):
    doc = read_doc(sample_copy)
    renumber_image(doc, 3, 3003)
    del image_of(doc, 3003)["width"]
    write_doc(sample_copy, doc)
    p = single(check(sample_copy), "missing_key", sample_copy)
    assert p.image_id == 3003 and names_id(p.message, 3003)
    assert "'width'" in p.message and "images[2]" in p.message


def test_annotation_without_category_id(sample_copy):
    doc = read_doc(sample_copy)
    del renumber_ann(doc, 5, 5005)["category_id"]
    write_doc(sample_copy, doc)
    p = single(check(sample_copy), "missing_key", sample_copy)
    assert p.annotation_id == 5005 and names_id(p.message, 5005)
    assert "'category_id'" in p.message


def test_image_id_as_string(sample_copy):
    doc = read_doc(sample_copy)
    renumber_image(doc, 3, 3003)
    image_of(doc, 3003)["id"] = "3003"
    write_doc(sample_copy, doc)
    p = single(check(sample_copy), "bad_type", sample_copy)
    assert names_id(p.message, 3003) and "'id'" in p.message and "string" in p.message


def test_annotation_id_as_string(sample_copy):
    doc = read_doc(sample_copy)
    ann = renumber_ann(doc, 6, 6006)
    ann["id"] = "6006"
    write_doc(sample_copy, doc)
    p = single(check(sample_copy), "bad_type", sample_copy)
    assert names_id(p.message, 6006) and "'id'" in p.message
    assert p.image_id == ann["image_id"]


def test_bbox_as_string(sample_copy):
    doc = read_doc(sample_copy)
    renumber_ann(doc, 7, 7007)["bbox"] = "10 10 20 20"
    write_doc(sample_copy, doc)
    p = single(check(sample_copy), "bad_type", sample_copy)
    assert p.annotation_id == 7007 and names_id(p.message, 7007)
    assert "'bbox'" in p.message


def test_every_missing_or_mistyped_key_in_a_file_is_reported(sample_copy):
    doc = read_doc(sample_copy)
    for old, new in ((5, 5005), (6, 6006)):
        renumber_image(doc, old, new)
    del image_of(doc, 5005)["file_name"]
    image_of(doc, 6006)["height"] = "tall"
    del image_of(doc, 6006)["width"]  # a second fault in the same item
    for old, new in ((2, 2002), (3, 3003), (4, 4004)):
        renumber_ann(doc, old, new)
    del ann_of(doc, 2002)["image_id"]
    ann_of(doc, 3003)["category_id"] = "circle"
    ann_of(doc, 4004)["area"] = [1, 2]
    doc["categories"][2]["name"] = None
    write_doc(sample_copy, doc)

    report = check(sample_copy)
    assert report.counts() == {"missing_key": 3, "bad_type": 4}, [str(p) for p in report.problems]
    assert all(p.file == str(ann_path(sample_copy)) for p in report.problems)
    by_image = sorted((p.image_id, p.code) for p in report.problems if p.annotation_id is None and p.image_id)
    assert (5005, "missing_key") in by_image and (6006, "missing_key") in by_image and (6006, "bad_type") in by_image
    assert sorted(p.annotation_id for p in report.problems if p.annotation_id) == [2002, 3003, 4004]
    assert [p.category_id for p in report.problems if p.category_id is not None] == [3]
    messages = " | ".join(p.message for p in report.problems)
    for key in ("'file_name'", "'height'", "'width'", "'image_id'", "'category_id'", "'area'", "'name'"):
        assert key in messages


# ---------------------------------------------------------------------- duplicates
def test_duplicate_image_id(sample_copy):
    doc = read_doc(sample_copy)
    renumber_image(doc, 1, 1001)
    first = image_of(doc, 1001)
    shutil.copy(sample_copy / "train" / first["file_name"], sample_copy / "train" / "copy.jpg")
    doc["images"].append({**first, "file_name": "copy.jpg"})
    write_doc(sample_copy, doc)
    p = single(check(sample_copy), "duplicate_image_id", sample_copy)
    assert p.image_id == 1001 and names_id(p.message, 1001) and "copy.jpg" in p.message


def test_duplicate_annotation_id(sample_copy):
    doc = read_doc(sample_copy)
    renumber_ann(doc, 2, 7777)
    ann_of(doc, 9)["id"] = 7777
    write_doc(sample_copy, doc)
    p = single(check(sample_copy), "duplicate_annotation_id", sample_copy)
    assert p.annotation_id == 7777 and names_id(p.message, 7777)
    first = [a for a in doc["annotations"] if a["id"] == 7777][0]
    assert p.image_id == min(a["image_id"] for a in doc["annotations"] if a["id"] == 7777)
    assert str(first["image_id"]) in p.message  # the app can jump to the image


def test_exact_duplicate_annotations_are_a_warning_naming_both_ids(sample_copy):
    doc = read_doc(sample_copy)
    original = ann_of(doc, 5)
    copy = {**original, "id": 8888}
    doc["annotations"].append(copy)
    near = {**original, "id": 8889, "bbox": [v + 1 for v in original["bbox"]]}  # not exact: not flagged
    doc["annotations"].append(near)
    write_doc(sample_copy, doc)
    report = check(sample_copy)
    p = single(report, "duplicate_annotation", sample_copy)
    assert p.severity == "warning" and p.annotation_id == 8888 and p.image_id == original["image_id"]
    assert names_id(p.message, 8888) and names_id(p.message, 5)
    assert "1 warning" in report.to_text() and "0 errors" in report.to_text()


def test_report_text_uses_singular_for_one(sample_copy):
    doc = read_doc(sample_copy)
    doc["images"] = doc["images"][:1]
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] == doc["images"][0]["id"]][:1]
    doc["categories"] = [c for c in doc["categories"] if c["id"] == doc["annotations"][0]["category_id"]]
    doc["annotations"].append({**doc["annotations"][0], "id": 999999})
    write_doc(sample_copy, doc)
    text = check(sample_copy, check_files=False).to_text()
    assert "train: 1 image, 2 annotations, 1 category" in text
    assert "0 errors, 1 warning" in text and "1 images" not in text and "1 categories" not in text


def test_duplicate_category_id(sample_copy):
    doc = read_doc(sample_copy)
    doc["categories"].append({"id": 3, "name": "hexagon"})
    write_doc(sample_copy, doc)
    p = single(check(sample_copy), "duplicate_category_id", sample_copy)
    assert p.category_id == 3 and names_id(p.message, 3)


def test_duplicate_category_name(sample_copy):
    doc = read_doc(sample_copy)
    doc["categories"].append({"id": 42, "name": "Circle"})
    write_doc(sample_copy, doc)
    p = single(check(sample_copy), "duplicate_category_name", sample_copy)
    assert p.category_id == 42 and names_id(p.message, 42) and names_id(p.message, 1)
    assert "Circle" in p.message


# ---------------------------------------------------------------------- references
def test_annotation_on_unknown_image(sample_copy):
    doc = read_doc(sample_copy)
    renumber_ann(doc, 4, 4004)["image_id"] = 9999
    write_doc(sample_copy, doc)
    p = single(check(sample_copy), "unknown_image", sample_copy)
    assert (p.annotation_id, p.image_id) == (4004, 9999)
    assert names_id(p.message, 4004) and names_id(p.message, 9999)


def test_annotation_with_unknown_category(sample_copy):
    doc = read_doc(sample_copy)
    ann = renumber_ann(doc, 4, 4004)
    ann["category_id"] = 4  # the sample skips id 4
    write_doc(sample_copy, doc)
    p = single(check(sample_copy), "unknown_category", sample_copy)
    assert (p.annotation_id, p.image_id, p.category_id) == (4004, ann["image_id"], 4)
    assert names_id(p.message, 4004) and "category id 4 " in p.message


# ---------------------------------------------------------------------- boxes and masks
@pytest.mark.parametrize("index, value", [(2, 0), (3, 0), (2, -5.5), (3, -1)])
def test_box_with_nonpositive_size(sample_copy, index, value):
    doc = read_doc(sample_copy)
    renumber_ann(doc, 8, 8008)["bbox"][index] = value
    write_doc(sample_copy, doc)
    p = single(check(sample_copy), "bbox_nonpositive", sample_copy)
    assert p.annotation_id == 8008 and names_id(p.message, 8008)
    assert p.severity == "error"


def test_box_outside_image_is_a_warning(sample_copy):
    doc = read_doc(sample_copy)
    ann = renumber_ann(doc, 8, 8008)
    image = image_of(doc, ann["image_id"])
    ann["bbox"] = [image["width"] - 10, 5, 40, 20]
    write_doc(sample_copy, doc)
    report = check(sample_copy)
    p = single(report, "bbox_outside_image", sample_copy)
    assert p.severity == "warning" and p.annotation_id == 8008 and names_id(p.message, 8008)
    assert f"{image['width']}x{image['height']}" in p.message
    assert report.exit_code == 1 and not report.unreadable


def test_box_overrunning_by_rounding_is_tolerated(sample_copy):
    doc = read_doc(sample_copy)
    ann = ann_of(doc, 8)
    image = image_of(doc, ann["image_id"])
    ann["bbox"] = [-0.5, 0, image["width"] + 0.9, image["height"]]
    write_doc(sample_copy, doc)
    assert check(sample_copy).problems == []


def test_polygon_with_fewer_than_three_points(sample_copy):
    doc = read_doc(sample_copy)
    ann = polygon_ann(doc)
    ann["id"] = 9009
    ann["segmentation"] = [[10, 10, 20, 20]]
    write_doc(sample_copy, doc)
    p = single(check(sample_copy), "bad_polygon", sample_copy)
    assert p.annotation_id == 9009 and names_id(p.message, 9009)
    assert "4 coordinates" in p.message


def test_rle_size_disagrees_with_image(sample_copy):
    doc = read_doc(sample_copy)
    ann = rle_ann(doc)
    ann["id"] = 9119
    h, w = ann["segmentation"]["size"]
    ann["segmentation"]["size"] = [h + 1, w]
    write_doc(sample_copy, doc)
    p = single(check(sample_copy), "rle_size_mismatch", sample_copy)
    assert p.annotation_id == 9119 and names_id(p.message, 9119)
    assert f"[{h + 1}, {w}]" in p.message and f"[{h}, {w}]" in p.message


@pytest.mark.parametrize("also_bad_bbox", [False, True])
def test_segmentation_of_the_wrong_type(sample_copy, also_bad_bbox):
    doc = read_doc(sample_copy)
    ann = polygon_ann(doc, 1)
    ann["id"] = 9229
    ann["segmentation"] = "not a mask"
    if also_bad_bbox:  # a problem the fast decoder already records must not hide it
        renumber_ann(doc, 1, 1001)["bbox"] = [1, 2, 3, 4, 5]
    write_doc(sample_copy, doc)
    report = check(sample_copy)
    assert report.counts() == ({"bad_type": 1, "bad_bbox": 1} if also_bad_bbox else {"bad_type": 1})
    (p,) = [p for p in report.problems if p.code == "bad_type"]
    assert p.file == str(ann_path(sample_copy))
    assert p.annotation_id == 9229 and names_id(p.message, 9229) and "'segmentation'" in p.message


# ---------------------------------------------------------------------- image files
def test_image_file_missing(sample_copy):
    doc = read_doc(sample_copy)
    renumber_image(doc, 4, 4444)
    write_doc(sample_copy, doc)
    path = image_file(sample_copy, doc, 4444)
    path.unlink()
    p = single(check(sample_copy), "missing_file", sample_copy)
    assert p.image_id == 4444 and names_id(p.message, 4444) and str(path) in p.message


@pytest.mark.parametrize("style", ["absolute", "dotdot", "dotdot_inside"])
def test_unsafe_file_name_is_never_opened(sample_copy, tmp_path, monkeypatch, style):
    outside = tmp_path / "outside.jpg"  # a real image, outside the dataset folder
    Image.new("RGB", (31, 17), "red").save(outside)
    doc = read_doc(sample_copy)
    renumber_image(doc, 2, 2222)
    image = image_of(doc, 2222)
    image["file_name"] = {
        "absolute": str(outside),
        "dotdot": "../../outside.jpg",
        "dotdot_inside": "sub/../../../outside.jpg",
    }[style]
    assert (sample_copy / "train" / "../../outside.jpg").resolve() == outside.resolve()
    write_doc(sample_copy, doc)

    opened: list[str] = []
    for name in ("image_size", "raw_size_and_orientation", "looks_truncated", "verify_image"):
        real = getattr(image_io, name)

        def spy(path, *args, _real=real, **kwargs):
            opened.append(str(Path(path).resolve()))
            return _real(path, *args, **kwargs)

        monkeypatch.setattr(image_io, name, spy)

    report = check(sample_copy, deep=True)
    p = single(report, "unsafe_file_name", sample_copy)
    assert p.image_id == 2222 and names_id(p.message, 2222)
    assert str(outside.resolve()) not in opened
    assert len({x for x in opened if "/train/" in x}) == 47  # the spies do see the other images


def test_unreadable_image(sample_copy):
    doc = read_doc(sample_copy)
    renumber_image(doc, 6, 6666)
    write_doc(sample_copy, doc)
    image_file(sample_copy, doc, 6666).write_bytes(b"this is a text file, not a JPEG\n" * 10)
    for deep in (False, True):
        p = single(check(sample_copy, deep=deep), "unreadable_image", sample_copy)
        assert p.image_id == 6666 and names_id(p.message, 6666)
        assert image_of(doc, 6666)["file_name"] in p.message


@pytest.mark.parametrize("deep", [False, True])
def test_truncated_image(sample_copy, deep):
    doc = read_doc(sample_copy)
    renumber_image(doc, 7, 7777)
    write_doc(sample_copy, doc)
    path = image_file(sample_copy, doc, 7777)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    p = single(check(sample_copy, deep=deep), "truncated_image", sample_copy)
    assert p.image_id == 7777 and names_id(p.message, 7777) and path.name in p.message
    assert "truncated" in p.message


def test_image_size_disagrees_with_json(sample_copy):
    doc = read_doc(sample_copy)
    image_id = polygon_only_image(doc)
    renumber_image(doc, image_id, 8888)
    image = image_of(doc, 8888)
    w, h = image["width"], image["height"]
    image["width"] = w + 10
    write_doc(sample_copy, doc)
    p = single(check(sample_copy), "size_mismatch", sample_copy)
    assert p.image_id == 8888 and names_id(p.message, 8888)
    assert f"{w}x{h} on disk" in p.message and f"says {w + 10}x{h}" in p.message
    assert "EXIF" not in p.message


def test_exif_rotated_jpeg_with_stored_size_in_json(sample_copy):
    doc = read_doc(sample_copy)
    image_id = polygon_only_image(doc)
    renumber_image(doc, image_id, 8686)
    image = image_of(doc, 8686)
    # Stored 300x200 with orientation 6: shown as 200x300. The JSON has the stored size.
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (300, 200), (90, 120, 150)).save(image_file(sample_copy, doc, 8686), exif=exif)
    image["width"], image["height"] = 300, 200
    write_doc(sample_copy, doc)
    p = single(check(sample_copy), "size_mismatch", sample_copy)
    assert p.image_id == 8686 and names_id(p.message, 8686)
    assert "200x300 on disk" in p.message and "says 300x200" in p.message
    assert "EXIF orientation 6" in p.message


def test_exif_rotated_jpeg_with_displayed_size_in_json_is_fine(sample_copy):
    doc = read_doc(sample_copy)
    image_id = polygon_only_image(doc)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (300, 200)).save(image_file(sample_copy, doc, image_id), exif=exif)
    image = image_of(doc, image_id)
    image["width"], image["height"] = 200, 300
    write_doc(sample_copy, doc)
    assert check(sample_copy).problems == []


# ---------------------------------------------------------------------- whole datasets
def test_empty_dataset(sample_copy):
    doc = read_doc(sample_copy)
    doc["images"], doc["annotations"] = [], []
    write_doc(sample_copy, doc)
    report = check(sample_copy)
    p = single(report, "empty_dataset", sample_copy)
    assert "no images" in p.message and p.image_id is None
    assert report.exit_code == 1 and report.splits["train"].images == 0


def test_many_problems_at_once_are_all_listed(sample_copy):
    doc = read_doc(sample_copy)
    renumber_ann(doc, 1, 5555)
    ann_of(doc, 3)["id"] = 5555  # duplicate_annotation_id
    ann_of(doc, 4)["category_id"] = 77  # unknown_category
    ann_of(doc, 6)["bbox"][2] = 0  # bbox_nonpositive
    ann_of(doc, 8)["image_id"] = 12345  # unknown_image
    polygon_ann(doc, 10)["segmentation"] = [[1, 2]]  # bad_polygon
    doc["categories"].append({"id": 8, "name": "square"})  # duplicate_category_name
    del image_of(doc, 20)["height"]  # missing_key
    image_of(doc, 21)["id"] = "21"  # bad_type
    (sample_copy / "train" / image_of(doc, 30)["file_name"]).unlink()  # missing_file
    (sample_copy / "train" / image_of(doc, 31)["file_name"]).write_text("oops")  # unreadable_image
    write_doc(sample_copy, doc)
    val = read_doc(sample_copy, "val")
    val["images"].append(dict(val["images"][0]))  # duplicate_image_id (+ duplicate_file_name)
    write_doc(sample_copy, val, "val")

    report = check(sample_copy)
    assert report.counts() == {
        "duplicate_annotation_id": 1,
        "unknown_category": 1,
        "bbox_nonpositive": 1,
        "unknown_image": 1,
        "bad_polygon": 1,
        "duplicate_category_name": 1,
        "missing_key": 1,
        "bad_type": 1,
        "missing_file": 1,
        "unreadable_image": 1,
        "duplicate_image_id": 1,
        "duplicate_file_name": 1,
    }, [str(p) for p in report.problems]
    assert {p.file for p in report.problems} == {str(ann_path(sample_copy)), str(ann_path(sample_copy, "val"))}
    assert report.exit_code == 1


# ---------------------------------------------------------------------- command line
def test_cli_check_exit_codes_and_output(sample_copy, tmp_path, capsys):
    assert main(["check", str(sample_copy), "--no-progress"]) == 0
    assert "OK: no problems found" in capsys.readouterr().out

    doc = read_doc(sample_copy)
    renumber_ann(doc, 4, 4004)["image_id"] = 9999
    (sample_copy / "train" / image_of(doc, 2)["file_name"]).unlink()
    write_doc(sample_copy, doc)
    assert main(["check", str(sample_copy), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "[unknown_image]" in out and "annotation 4004" in out and "9999" in out
    assert "[missing_file]" in out and image_of(doc, 2)["file_name"] in out
    assert "2 errors, 0 warnings" in out

    (tmp_path / "empty").mkdir()
    assert main(["check", str(tmp_path / "empty"), "--no-progress"]) == 2
    assert "no COCO annotation file found" in capsys.readouterr().out

    ann_path(sample_copy, "val").write_text('{"images": [}')
    assert main(["check", str(sample_copy), "--no-progress"]) == 2
    assert "[json_syntax]" in capsys.readouterr().out


def test_cli_check_json_lists_the_problems(sample_copy, capsys):
    doc = read_doc(sample_copy)
    renumber_ann(doc, 4, 4004)["category_id"] = 4
    write_doc(sample_copy, doc)
    assert main(["check", str(sample_copy), "--json", "--no-progress"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and out["unreadable"] is False and out["layout"] == "coco"
    assert set(out["splits"]) == {"train", "val"}
    assert [(p["code"], p["annotation_id"], p["category_id"], p["file"]) for p in out["problems"]] == [
        ("unknown_category", 4004, 4, str(ann_path(sample_copy)))
    ]


# ---------------------------------------------------------------------- training policy
def _broken_index(ds: Path):
    """Train split with: 2 bad annotations, 1 missing image file, 1 box warning."""
    doc = read_doc(ds)
    renumber_ann(doc, 4, 4004)["category_id"] = 4  # unknown_category
    renumber_ann(doc, 6, 6006)["bbox"][3] = -2  # bbox_nonpositive
    lost = polygon_only_image(doc, 5)
    assert lost not in (ann_of(doc, 4004)["image_id"], ann_of(doc, 6006)["image_id"])
    (ds / "train" / image_of(doc, lost)["file_name"]).unlink()  # missing_file
    warn = next(
        a
        for a in doc["annotations"]
        if a["image_id"] not in (lost, ann_of(doc, 4004)["image_id"], ann_of(doc, 6006)["image_id"])
    )
    warn["bbox"][0] = image_of(doc, warn["image_id"])["width"] + 50  # bbox_outside_image (warning)
    write_doc(ds, doc)
    index = CocoIndex.load(ann_path(ds))
    problems = check_index(index, ds / "train")
    assert sorted(p.code for p in problems) == [
        "bbox_nonpositive",
        "bbox_outside_image",
        "missing_file",
        "unknown_category",
    ]
    return index, problems, lost, len(anns_on(doc, lost)), warn["id"]


def test_refuse_policy_raises_with_every_error(sample_copy):
    index, problems, *_ = _broken_index(sample_copy)
    with pytest.raises(DatasetError) as info:
        apply_policy(index, problems, "refuse")
    errors = [p for p in problems if p.severity == "error"]
    assert info.value.problems == errors and len(errors) == 3
    for p in errors:
        assert str(p) in str(info.value)
    # Warnings alone do not stop training.
    warnings = [p for p in problems if p.severity == "warning"]
    assert apply_policy(index, warnings, "refuse") is index
    with pytest.raises(ValueError, match="unknown problem policy"):
        apply_policy(index, problems, "ignore")


def test_skip_policy_drops_exactly_what_is_broken(sample_copy):
    index, problems, lost, lost_anns, warned = _broken_index(sample_copy)
    cleaned = apply_policy(index, problems, "skip")
    assert cleaned.num_images == index.num_images - 1
    assert lost not in cleaned.image_ids.tolist()
    assert cleaned.num_annotations == index.num_annotations - 2 - lost_anns
    kept = set(cleaned.ann_ids.tolist())
    assert not kept & {4004, 6006} and warned in kept
    assert set(index.ann_ids.tolist()) - kept - {4004, 6006} == set(
        index.ann_ids[list(index.annotation_rows(int(index.image_rows([lost])[0])))].tolist()
    )
    # What is left is clean (apart from the box warning training clips).
    assert [p.code for p in check_index(cleaned, sample_copy / "train")] == ["bbox_outside_image"]


# ---------------------------------------------------------------------- folder layouts
def _move_images(src: Path, dst: Path, prefix: str = "") -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.glob("*.jpg"):
        shutil.move(str(f), dst / (prefix + f.name) if prefix else dst / f.name)


def _clean_report(root: Path, splits: dict[str, tuple[int, Path]], layout: str):
    folder = find_splits(root)
    assert folder.layout == layout
    assert {k: s.image_dir for k, s in folder.splits.items()} == {k: d for k, (_, d) in splits.items()}
    report = check(root)
    assert report.problems == [], [str(p) for p in report.problems]
    assert {k: s.images for k, s in report.splits.items()} == {k: n for k, (n, _) in splits.items()}
    return report


def test_layout_official_coco_2017(sample_copy):
    for split in ("train", "val"):
        (sample_copy / split).rename(sample_copy / f"{split}2017")
        ann_path(sample_copy, split).rename(ann_path(sample_copy, f"{split}2017"))
    _clean_report(sample_copy, {"train": (48, sample_copy / "train2017"), "val": (16, sample_copy / "val2017")}, "coco")


def test_layout_cvat(sample_copy, tmp_path):
    root = tmp_path / "cvat"
    (root / "annotations").mkdir(parents=True)
    shutil.copy(ann_path(sample_copy), root / "annotations" / "instances_default.json")
    _move_images(sample_copy / "train", root / "images")
    _clean_report(root, {"train": (48, root / "images")}, "coco")


def test_layout_label_studio(sample_copy, tmp_path):
    root = tmp_path / "label-studio"
    doc = read_doc(sample_copy)
    for im in doc["images"]:
        im["file_name"] = "images/" + im["file_name"]
    root.mkdir()
    (root / "result.json").write_text(json.dumps(doc))
    _move_images(sample_copy / "train", root / "images")
    _clean_report(root, {"train": (48, root)}, "label-studio")


def test_layout_roboflow(sample_copy, tmp_path):
    root = tmp_path / "roboflow"
    for split, folder in (("train", "train"), ("val", "valid")):
        _move_images(sample_copy / split, root / folder)
        shutil.copy(ann_path(sample_copy, split), root / folder / "_annotations.coco.json")
    _clean_report(root, {"train": (48, root / "train"), "val": (16, root / "valid")}, "roboflow")


def test_layout_plain(sample_copy, tmp_path):
    root = tmp_path / "plain"
    _move_images(sample_copy / "train", root / "images")
    shutil.copy(ann_path(sample_copy), root / "annotations.json")
    _clean_report(root, {"train": (48, root / "images")}, "plain")


# ---------------------------------------------------------------------- the one path resolver
def test_resolver_refuses_paths_that_leave_the_dataset(tmp_path):
    from engine.data.paths import UnsafeFileName, resolve_image_path

    root = tmp_path / "ds"
    images = root / "images"
    images.mkdir(parents=True)
    (images / "ok.jpg").write_bytes(b"x")
    (tmp_path / "secret.jpg").write_bytes(b"x")
    (images / "link_out.jpg").symlink_to(tmp_path / "secret.jpg")
    (images / "link_in.jpg").symlink_to(images / "ok.jpg")
    assert resolve_image_path(root, images, "ok.jpg") == images / "ok.jpg"
    assert resolve_image_path(root, images, "sub/../ok.jpg") == images / "sub/../ok.jpg"
    assert resolve_image_path(root, images, "link_in.jpg") == images / "link_in.jpg"
    cases = {
        "/etc/hostname": "absolute",
        "C:\\x.jpg": "absolute",
        "\\\\server\\x.jpg": "absolute",
        "../../outside.jpg": "'..'",
        "a/../../x.jpg": "'..'",
        "": "empty",
        "link_out.jpg": "symlink points outside",
    }
    # A linked sub-folder counts the same as a linked file, at any depth and after '..'.
    (tmp_path / "elsewhere" / "deep").mkdir(parents=True)
    (tmp_path / "elsewhere" / "deep" / "x.jpg").write_bytes(b"x")
    (images / "nested").mkdir()
    (images / "nested" / "dir_out").symlink_to(tmp_path / "elsewhere")
    (images / "dir_in").symlink_to(images / "nested")
    cases.update(
        {
            "nested/dir_out/deep/x.jpg": "symlink points outside",
            "dir_in/dir_out/deep/x.jpg": "symlink points outside",
            "nested/dir_out/../../secret.jpg": "symlink points outside",
        }
    )
    assert resolve_image_path(root, images, "dir_in/missing.jpg") == images / "dir_in/missing.jpg"
    assert resolve_image_path(root, images, "nested/not/there.jpg") == images / "nested/not/there.jpg"
    for name, reason in cases.items():
        with pytest.raises(UnsafeFileName) as info:
            resolve_image_path(root, images, name)
        assert reason in info.value.reason and name in str(info.value)


def test_symlink_out_of_the_dataset_is_unsafe_and_never_opened(sample_copy, tmp_path, monkeypatch):
    outside = tmp_path / "outside.jpg"
    Image.new("RGB", (31, 17), "red").save(outside)
    doc = read_doc(sample_copy)
    renumber_image(doc, 2, 2222)
    link = sample_copy / "train" / "linked_out.jpg"
    link.symlink_to(outside)
    image_of(doc, 2222)["file_name"] = "linked_out.jpg"
    write_doc(sample_copy, doc)
    opened: list[str] = []
    real = image_io.image_size
    monkeypatch.setattr(image_io, "image_size", lambda path, *a, **k: opened.append(str(path)) or real(path, *a, **k))
    p = single(check(sample_copy), "unsafe_file_name", sample_copy)
    assert p.image_id == 2222 and "symlink points outside the dataset folder" in p.message
    assert str(link) not in opened
