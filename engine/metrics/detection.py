"""COCO box metrics (mAP / mAR) through faster-coco-eval or pycocotools.

Both backends implement the official COCO protocol; faster-coco-eval does the
matching in C++ and is the default, pycocotools is the reference. Inputs use
the dataset's ORIGINAL category ids and boxes in original pixels, so results
are comparable with any other COCO evaluation of the same data.
``DetectionEvaluator`` gathers the detections of every process of a
distributed run before evaluating.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

from engine.metrics.distributed import broadcast_from_rank_zero, gather_to_rank_zero

SUMMARY_KEYS = ("map", "map_50", "map_75", "map_small", "map_medium", "map_large", "mar_1", "mar_10", "mar_100")
BACKENDS = ("faster", "pycocotools")


def _silent(*_args, **_kwargs) -> None:
    pass


def _prepare_ground_truth(ground_truth: dict) -> dict:
    """Copy the annotations (both libraries write into them) and fill optional fields."""
    annotations = []
    for ann in ground_truth.get("annotations", []):
        ann = dict(ann)
        ann.setdefault("iscrowd", 0)
        if "area" not in ann:
            ann["area"] = float(ann["bbox"][2] * ann["bbox"][3])
        annotations.append(ann)
    return {
        **ground_truth,
        "images": list(ground_truth.get("images", [])),
        "annotations": annotations,
        "categories": list(ground_truth.get("categories", [])),
    }


def _prepare_detections(detections: list[dict]) -> list[dict]:
    """Fresh plain-Python dicts: loadRes mutates them, and numpy scalars upset pycocotools."""
    return [
        {
            "image_id": int(d["image_id"]),
            "category_id": int(d["category_id"]),
            "bbox": [float(v) for v in d["bbox"]],
            "score": float(d["score"]),
        }
        for d in detections
    ]


def _run_faster(gt: dict, dets: list[dict]):
    from faster_coco_eval import COCO, COCOeval_faster

    coco_gt = COCO(gt, print_function=_silent)
    coco_dt = coco_gt.loadRes(dets)
    evaluator = COCOeval_faster(coco_gt, coco_dt, iouType="bbox", print_function=_silent)
    evaluator.run()
    return evaluator


def _run_pycocotools(gt: dict, dets: list[dict]):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    # pycocotools' COCO() only reads files, so hand it the dict directly.
    coco_gt = COCO()
    coco_gt.dataset = gt
    coco_gt.createIndex()
    coco_dt = coco_gt.loadRes(dets)
    evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    return evaluator


def _category_names(ground_truth: dict, class_names: dict[int, str] | None) -> dict[int, str | int]:
    """Key per category id for ``per_class_ap``: given name, else the dataset's name, else the id."""
    names: dict[int, str | int] = {}
    for cat in ground_truth.get("categories", []):
        cid = int(cat["id"])
        if class_names and cid in class_names:
            names[cid] = class_names[cid]
        else:
            names[cid] = cat.get("name", cid)
    return names


def coco_evaluation(ground_truth: dict, detections: list[dict], *, backend: str = "faster"):
    """The backend's COCO evaluation object after evaluate, accumulate and summarize.

    Its ``eval["precision"]`` ([IoU, recall, category, area, max dets]), ``eval["recall"]``,
    ``stats`` and ``params`` hold every figure; None when there is no detection at all
    (pycocotools would crash on it).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    dets = _prepare_detections(detections)
    if not dets:
        return None
    gt = _prepare_ground_truth(ground_truth)
    run = _run_faster if backend == "faster" else _run_pycocotools
    # pycocotools prints its progress and summary table; keep stdout clean.
    with contextlib.redirect_stdout(io.StringIO()):
        return run(gt, dets)


def coco_evaluate(
    ground_truth: dict,
    detections: list[dict],
    *,
    backend: str = "faster",
    class_names: dict[int, str] | None = None,
) -> dict:
    """COCO bbox evaluation of ``detections`` (COCO result dicts) against ``ground_truth``.

    Returns the nine summary metrics of ``SUMMARY_KEYS`` plus ``per_class_ap``
    ({category name or id: AP@[.5:.95]}). Metrics COCO leaves undefined (-1,
    e.g. no ground truth in an area range) are reported as 0.0.
    """
    names = _category_names(ground_truth, class_names)
    evaluator = coco_evaluation(ground_truth, detections, backend=backend)
    if evaluator is None:
        # Nothing detected: every metric is 0 by definition.
        return {**dict.fromkeys(SUMMARY_KEYS, 0.0), "per_class_ap": dict.fromkeys(names.values(), 0.0)}

    results = {key: max(float(v), 0.0) for key, v in zip(SUMMARY_KEYS, evaluator.stats)}
    # precision: [IoU thresholds, recall thresholds, categories, area ranges, max dets];
    # area index 0 is "all", the last max-dets index is 100.
    precision = np.asarray(evaluator.eval["precision"])
    per_class = {}
    for k, cat_id in enumerate(evaluator.params.catIds):
        p = precision[:, :, k, 0, -1]
        p = p[p > -1]
        per_class[names.get(int(cat_id), int(cat_id))] = float(p.mean()) if p.size else 0.0
    results["per_class_ap"] = per_class
    return results


class DetectionEvaluator:
    """Collects detections over an epoch, then runs one COCO evaluation.

    Every ground-truth image is evaluated, so images without any detection
    count as misses. In a distributed run ``compute()`` gathers the detections
    of every process on rank 0, evaluates them once and hands every process the
    same result. When ``add`` is told which images a batch held, an image seen
    again (a sample a sampler repeated, here or in another process) is counted
    once: its first detections are kept.
    """

    def __init__(self, ground_truth: dict, backend: str = "faster", class_names: dict[int, str] | None = None) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.ground_truth = ground_truth
        self.backend = backend
        self.class_names = class_names
        self._image_ids = {int(img["id"]) for img in ground_truth.get("images", [])}
        self.reset()

    def add(self, detections: list[dict], image_ids=None) -> None:
        """Add a batch's COCO result dicts; ``image_ids``: the images the batch held (with or without detections)."""
        prepared = _prepare_detections(detections)
        found = {d["image_id"] for d in prepared}
        listed = found if image_ids is None else {int(i) for i in image_ids}
        unknown = (found | listed) - self._image_ids
        if unknown:
            raise ValueError(f"detections for images not in the ground truth: {sorted(unknown)[:5]}")
        if image_ids is not None:
            if found - listed:
                raise ValueError(f"detections for images the batch did not hold: {sorted(found - listed)[:5]}")
            fresh = listed - self._evaluated
            prepared = [d for d in prepared if d["image_id"] in fresh]
        self._evaluated |= listed
        self._detections.extend(prepared)

    def compute(self) -> dict:
        shards = gather_to_rank_zero((sorted(self._evaluated), _pack(self._detections)))
        results = None
        if shards is not None:  # rank 0, or the only process
            results = coco_evaluate(
                self.ground_truth, _merge(shards), backend=self.backend, class_names=self.class_names
            )
        return broadcast_from_rank_zero(results)

    def reset(self) -> None:
        self._detections: list[dict] = []
        self._evaluated: set[int] = set()


_PACKED_FIELDS = 7  # image_id, category_id, x, y, w, h, score


def _pack(detections: list[dict]) -> np.ndarray:
    """Detections as one float64 array: far smaller to send between processes than dicts."""
    rows = [(d["image_id"], d["category_id"], *d["bbox"], d["score"]) for d in detections]
    return np.asarray(rows, dtype=np.float64).reshape(-1, _PACKED_FIELDS)


def _merge(shards: list[tuple[list[int], np.ndarray]]) -> list[dict]:
    """Every process's detections, each image's from the first process (in rank order) that evaluated it."""
    claimed: set[int] = set()
    merged: list[dict] = []
    for evaluated, packed in shards:
        fresh = set(evaluated) - claimed
        claimed |= fresh
        merged += [
            {"image_id": int(r[0]), "category_id": int(r[1]), "bbox": r[2:6].tolist(), "score": float(r[6])}
            for r in packed
            if int(r[0]) in fresh
        ]
    return merged
