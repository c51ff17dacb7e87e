"""Cost of the evaluation report's per-image and per-class work over the COCO evaluation alone.

5,000 COCO-val-sized images (about 7 boxes each, 80 classes) and about 100 detections per
image, generated: detections near the boxes (some relabelled or shifted) plus clutter. The
baseline is faster-coco-eval's own run on the same arrays (index, loadRes, evaluate,
accumulate, summarize); the report is ``engine.metrics.detection_report.detection_figures``,
which runs that same evaluation and then matches every image and reads the per-class arrays.
Issue #19's target: the report takes at most 1.2 times the baseline.

    .venv/bin/python bench/eval_report.py [--images 5000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def generated(images: int, classes: int = 80, boxes: float = 7.0, detections: int = 100, seed: int = 0):
    rng = np.random.default_rng(seed)
    gt = {"images": [], "annotations": [], "categories": [{"id": c + 1, "name": f"c{c}"} for c in range(classes)]}
    dets = []
    ann_id = 1
    for image_id in range(1, images + 1):
        gt["images"].append({"id": image_id, "file_name": f"{image_id:012d}.jpg", "width": 640, "height": 480})
        n = rng.poisson(boxes)
        wh = rng.uniform(8, 300, (n, 2))
        xy = rng.uniform(0, 1, (n, 2)) * (np.array([640, 480]) - wh)
        cats = rng.integers(1, classes + 1, n)
        for (x, y), (w, h), c in zip(xy.tolist(), wh.tolist(), cats.tolist()):
            box = {"id": ann_id, "image_id": image_id, "category_id": c, "bbox": [x, y, w, h], "iscrowd": 0}
            gt["annotations"].append({**box, "area": w * h})
            ann_id += 1
        near = min(n * 3, detections)
        picks = rng.integers(0, max(n, 1), near) if n else np.zeros(0, int)
        for k in range(detections):
            if k < near:
                x, y = xy[picks[k]]
                w, h = wh[picks[k]]
                jitter = rng.normal(0, 0.1, 4) * [w, h, w, h]
                box = [x + jitter[0], y + jitter[1], max(w + jitter[2], 1.0), max(h + jitter[3], 1.0)]
                cat = int(cats[picks[k]]) if rng.random() < 0.85 else int(rng.integers(1, classes + 1))
                score = float(rng.uniform(0.3, 1.0))
            else:
                w, h = rng.uniform(8, 200, 2)
                box = [float(rng.uniform(0, 640 - w)), float(rng.uniform(0, 480 - h)), float(w), float(h)]
                cat, score = int(rng.integers(1, classes + 1)), float(rng.uniform(0.0, 0.5))
            dets.append({"image_id": image_id, "category_id": cat, "bbox": box, "score": score})
    return gt, dets


def main() -> None:
    from engine.metrics.detection import coco_evaluation
    from engine.metrics.detection_report import detection_figures
    from engine.metrics.report import build_report, write_report

    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    gt, dets = generated(args.images)
    print(f"{len(gt['images'])} images, {len(gt['annotations'])} boxes, {len(dets)} detections, 80 classes")
    ids = [c["id"] for c in gt["categories"]]
    names = [c["name"] for c in gt["categories"]]
    baseline, report = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        coco_evaluation(gt, dets)
        baseline.append(time.perf_counter() - start)
        start = time.perf_counter()
        figures = detection_figures(gt, dets, ids, names)
        report.append(time.perf_counter() - start)
    start = time.perf_counter()
    written = build_report(
        task="detection",
        source={"run_id": None},
        data={"path": "generated", "split": "val", "num_images": args.images},
        classes=[{"id": i, "name": n} for i, n in zip(ids, names)],
        figures=figures,
    )
    path = write_report(written, "/tmp/eval_report_bench")
    saving = time.perf_counter() - start
    b, r = min(baseline), min(report)
    print(f"faster-coco-eval alone:        {b:.2f} s")
    print(f"report (COCO + matches):       {r:.2f} s")
    print(f"ratio report / COCO:           {r / b:.3f}  (target <= 1.20)")
    print(f"JSON assembled and written:    {saving:.2f} s ({path.stat().st_size / 1e6:.0f} MB)")


if __name__ == "__main__":
    main()
