"""Benchmark: load + index a train2017-sized COCO file, Lightbox vs pycocotools.

Generates (once, cached under bench/_data/) a COCO instances file shaped like
train2017: 118,287 images, 860,001 polygon annotations, 80 categories, polygons
of 8-50 points with two decimals (about the real file's size). Then, each in a
fresh process so neither inherits the other's memory, it times
``engine.data.coco_index.CocoIndex.load`` and ``pycocotools.coco.COCO`` and
reads the peak resident memory added by the load (VmHWM minus the resident
size after imports). Prints one JSON line per contender and the ratios.

usage: python bench/coco_index.py [--images N] [--annotations N] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

MEASURE = r"""
import json, sys, time, gc
sys.path.insert(0, {root!r})
def status_kb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
which, path = sys.argv[1], sys.argv[2]
if which == "lightbox":
    from engine.data.coco_index import CocoIndex
    load = CocoIndex.load
else:
    import contextlib, io
    from pycocotools.coco import COCO
    def load(p):
        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(p)
gc.collect()
base = status_kb("VmRSS:")
t0 = time.perf_counter()
obj = load(path)
elapsed = time.perf_counter() - t0
# VmHWM, not ru_maxrss: the latter also counts the parent's memory at fork time.
peak = status_kb("VmHWM:")
print(json.dumps({{"which": which, "seconds": round(elapsed, 3), "peak_added_mb": round((peak - base) / 1024, 1),
                  "peak_total_mb": round(peak / 1024, 1)}}))
"""


def generate(path: Path, n_images: int, n_annotations: int, seed: int = 0) -> None:
    import msgspec
    import numpy as np

    rng = np.random.default_rng(seed)
    widths = rng.integers(320, 641, n_images)
    heights = rng.integers(240, 481, n_images)
    images = [
        {
            "license": int(rng.integers(1, 8)),
            "file_name": f"{i:012d}.jpg",
            "coco_url": f"http://images.example/train2017/{i:012d}.jpg",
            "height": int(h),
            "width": int(w),
            "date_captured": "2013-11-14 16:28:13",
            "flickr_url": f"http://farm.example/{i}.jpg",
            "id": int(i),
        }
        for i, w, h in zip(range(1, n_images + 1), widths.tolist(), heights.tolist())
    ]
    categories = [{"supercategory": f"super{c // 8}", "id": c + 1 + c // 10, "name": f"class{c}"} for c in range(80)]
    cat_ids = [c["id"] for c in categories]
    ann_image = rng.integers(1, n_images + 1, n_annotations)
    ann_cat = rng.choice(cat_ids, n_annotations)
    n_points = rng.integers(8, 51, n_annotations)
    annotations = []
    chunk = 50_000
    for start in range(0, n_annotations, chunk):
        stop = min(start + chunk, n_annotations)
        for k in range(start, stop):
            img = ann_image[k] - 1
            w, h = widths[img], heights[img]
            cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
            r = rng.uniform(5, 0.2 * min(w, h))
            angles = np.sort(rng.uniform(0, 2 * np.pi, n_points[k]))
            radii = r * rng.uniform(0.6, 1.0, n_points[k])
            xs = np.round(np.clip(cx + radii * np.cos(angles), 0, w - 1), 2)
            ys = np.round(np.clip(cy + radii * np.sin(angles), 0, h - 1), 2)
            poly = np.stack([xs, ys], 1).reshape(-1).tolist()
            x0, y0 = float(xs.min()), float(ys.min())
            annotations.append(
                {
                    "segmentation": [poly],
                    "area": round(float(np.pi * r * r * 0.64), 4),
                    "iscrowd": 0,
                    "image_id": int(ann_image[k]),
                    "bbox": [x0, y0, round(float(xs.max()) - x0, 2), round(float(ys.max()) - y0, 2)],
                    "category_id": int(ann_cat[k]),
                    "id": k + 1,
                }
            )
    doc = {
        "info": {"description": "synthetic train2017-sized file"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.encode(doc))
    tmp.replace(path)


def measure(which: str, path: Path) -> dict:
    code = MEASURE.format(root=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code, which, str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=118_287)
    parser.add_argument("--annotations", type=int, default=860_001)
    parser.add_argument("--repeat", type=int, default=2, help="runs per contender; the best time is kept")
    args = parser.parse_args()
    data = HERE / "_data"
    data.mkdir(exist_ok=True)
    path = data / f"coco_{args.images}_{args.annotations}.json"
    if not path.exists():
        t0 = time.perf_counter()
        generate(path, args.images, args.annotations)
        print(f"generated {path} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.0f} s")
    results = {}
    for which in ("pycocotools", "lightbox"):
        runs = [measure(which, path) for _ in range(args.repeat)]
        best = min(runs, key=lambda r: r["seconds"])
        best["peak_added_mb"] = min(r["peak_added_mb"] for r in runs)
        results[which] = best
        print(json.dumps(best))
    ratio_t = results["lightbox"]["seconds"] / results["pycocotools"]["seconds"]
    ratio_m = results["lightbox"]["peak_added_mb"] / results["pycocotools"]["peak_added_mb"]
    print(
        json.dumps(
            {
                "file_mb": round(path.stat().st_size / 1e6),
                "time_ratio": round(ratio_t, 3),
                "memory_ratio": round(ratio_m, 3),
                "targets": {"time_ratio": 0.4, "memory_ratio": 0.7},
                "met": ratio_t <= 0.4 and ratio_m <= 0.7,
            }
        )
    )


if __name__ == "__main__":
    main()
