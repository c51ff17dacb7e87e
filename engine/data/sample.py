"""A small generated COCO dataset: the demo's data and the tests' fixture.

Each image holds one large shape (its classification label) and sometimes a
smaller second one, drawn on a noisy background, with a polygon, a box and an
area per shape. One category is stored as RLE and some images carry a crowd
region, so every kind of COCO segmentation is exercised. Written in the
official COCO layout: ``annotations/instances_<split>.json`` + ``<split>/``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from PIL import Image, ImageDraw

CATEGORIES: list[dict[str, Any]] = [
    {"id": 1, "name": "circle", "supercategory": "shape"},
    {"id": 2, "name": "square", "supercategory": "shape"},
    {"id": 3, "name": "triangle", "supercategory": "shape"},
    {"id": 5, "name": "blob", "supercategory": "shape"},  # id 4 skipped on purpose: ids need not be contiguous
]
COLOURS = {1: (220, 60, 60), 2: (60, 200, 80), 3: (70, 90, 230), 5: (230, 200, 40)}


def _shape_polygon(cat_id: int, cx: float, cy: float, r: float, rng: np.random.Generator) -> np.ndarray:
    if cat_id == 1:
        angles = np.linspace(0, 2 * math.pi, 24, endpoint=False)
        radii = np.full_like(angles, r)
    elif cat_id == 2:
        angles = np.array([0.25, 0.75, 1.25, 1.75]) * math.pi + rng.uniform(-0.2, 0.2)
        radii = np.full(4, r * 1.2)
    elif cat_id == 3:
        angles = np.array([-0.5, 1 / 6, 5 / 6]) * math.pi + rng.uniform(-0.3, 0.3)
        radii = np.full(3, r * 1.2)
    else:
        angles = np.linspace(0, 2 * math.pi, 16, endpoint=False)
        radii = r * rng.uniform(0.6, 1.1, size=16)
    return np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)


def _annotation(
    ann_id: int, image_id: int, cat_id: int, poly: np.ndarray, width: int, height: int, use_rle: bool
) -> dict[str, Any]:
    from pycocotools import mask as mask_utils

    poly = poly.copy()
    poly[:, 0] = poly[:, 0].clip(0, width - 1)
    poly[:, 1] = poly[:, 1].clip(0, height - 1)
    flat = [round(float(v), 2) for v in poly.reshape(-1)]
    rle = mask_utils.merge(mask_utils.frPyObjects([flat], height, width))
    area = float(mask_utils.area(rle))
    x0, y0 = poly.min(0)
    x1, y1 = poly.max(0)
    ann = {
        "id": ann_id,
        "image_id": image_id,
        "category_id": cat_id,
        "iscrowd": 0,
        "bbox": [round(float(x0), 2), round(float(y0), 2), round(float(x1 - x0), 2), round(float(y1 - y0), 2)],
        "area": area,
    }
    if use_rle:
        ann["segmentation"] = {"size": [height, width], "counts": rle["counts"].decode("ascii")}
    else:
        ann["segmentation"] = [flat]
    return ann


def _crowd(
    ann_id: int, image_id: int, cat_id: int, width: int, height: int, rng: np.random.Generator
) -> dict[str, Any]:
    """An uncompressed-RLE crowd region in a corner (counts as a list, as COCO writes crowds)."""
    from pycocotools import mask as mask_utils

    mask = np.zeros((height, width), np.uint8)
    w, h = int(width * 0.2), int(height * 0.2)
    mask[height - h :, :w] = 1
    counts, value, run = [], 0, 0
    for pixel in mask.reshape(-1, order="F"):
        if pixel != value:
            counts.append(run)
            value, run = int(pixel), 0
        run += 1
    counts.append(run)
    rle = mask_utils.encode(np.asfortranarray(mask))
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": cat_id,
        "iscrowd": 1,
        "bbox": [0.0, float(height - h), float(w), float(h)],
        "area": float(mask_utils.area(rle)),
        "segmentation": {"size": [height, width], "counts": counts},
    }


def write_sample_dataset(
    out: str | Path,
    *,
    train_images: int = 48,
    val_images: int = 16,
    seed: int = 0,
    image_size: tuple[int, int] = (160, 120),
) -> Path:
    """Write the sample dataset to ``out`` and return its path."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    ann_id = 1
    image_id = 1
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    for split, count in (("train", train_images), ("val", val_images)):
        (out / split).mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for i in range(count):
            width = int(image_size[0] + rng.integers(-16, 17))
            height = int(image_size[1] + rng.integers(-12, 13))
            noise = rng.integers(90, 150, size=(height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
            img = Image.fromarray(noise).resize((width, height), Image.Resampling.BILINEAR)
            draw = ImageDraw.Draw(img)
            main_cat = CATEGORIES[i % len(CATEGORIES)]["id"]
            shapes = [(main_cat, rng.uniform(0.22, 0.3) * min(width, height))]
            if rng.random() < 0.5:
                shapes.append((int(rng.choice([c["id"] for c in CATEGORIES])), 0.1 * min(width, height)))
            for k, (cat_id, r) in enumerate(shapes):
                cx = rng.uniform(r, width - r) if k else rng.uniform(0.35, 0.65) * width
                cy = rng.uniform(r, height - r) if k else rng.uniform(0.35, 0.65) * height
                poly = _shape_polygon(cat_id, cx, cy, r, rng)
                draw.polygon([tuple(p) for p in poly], fill=COLOURS[cat_id])
                annotations.append(_annotation(ann_id, image_id, cat_id, poly, width, height, use_rle=cat_id == 5))
                ann_id += 1
            if i % 7 == 3:
                annotations.append(_crowd(ann_id, image_id, main_cat, width, height, rng))
                ann_id += 1
            file_name = f"{split}_{i:04d}.jpg"
            img.save(out / split / file_name, quality=92)
            images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
            image_id += 1
        doc = {
            "info": {"description": "Lightbox generated sample dataset"},
            "images": images,
            "annotations": annotations,
            "categories": CATEGORIES,
        }
        (out / "annotations" / f"instances_{split}.json").write_bytes(msgspec.json.format(msgspec.json.encode(doc)))
    return out
