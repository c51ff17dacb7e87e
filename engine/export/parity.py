"""PyTorch against onnxruntime on the run's validation images, in the user's terms.

Three figures, from the same batches through both backends:

- the task metric (mAP with its per-class AP, accuracy with per-class F1, mIoU with
  per-class IoU) of each backend, from ``engine.metrics``, as validation computes it;
- decisions matched one to one (detections by the Hungarian method on class and IoU;
  top-1 labels; mask pixels), where a decision the reference itself nearly tied (a score
  within ``score_atol`` of the threshold, the top-k cut or the runner-up) is excused;
- the raw outputs' largest difference (for detection also after pairing queries, since a
  near-tied query selection may only reorder them).

An export is refused only when a metric moved beyond tolerance (or where the user asked
for a raw or agreement limit); the message names the metric, the move and the images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .runtime import OnnxBackend, TorchBackend, batches, fit_to_input, masks_from_logits, postprocess
from .tolerance import Tolerance

METRIC_NAMES = {
    "classification": ("accuracy", "per_class_f1", "F1"),
    "detection": ("map", "per_class_ap", "AP"),
    "segmentation": ("miou", "per_class_iou", "IoU"),
}
DECISIONS = {
    "classification": "top-1 agreement",
    "detection": "matched detections",
    "segmentation": "mask pixel agreement",
}
WORST_IMAGES = 5


@dataclass
class _Side:
    """What one backend decided over the compared images."""

    detections: list[dict] = field(default_factory=list)
    metrics: Any = None


@dataclass
class _Agreement:
    """Decisions both backends made alike, over the compared images."""

    matched: float = 0.0
    counted: float = 0.0
    excused: int = 0  # near-ties of the reference, not counted
    divergence: list[tuple[float, int, str]] = field(default_factory=list)  # (how much, image id, what)


# ---------------------------------------------------------------------- matching
def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every xywh box in ``a`` against every one in ``b``."""
    ax0, ay0, aw, ah = (a[:, k : k + 1] for k in range(4))
    bx0, by0, bw, bh = (b[None, :, k] for k in range(4))
    w = np.clip(np.minimum(ax0 + aw, bx0 + bw) - np.maximum(ax0, bx0), 0, None)
    h = np.clip(np.minimum(ay0 + ah, by0 + bh) - np.maximum(ay0, by0), 0, None)
    inter = w * h
    union = aw * ah + bw * bh - inter
    # Boxes clamped flat at the image border have no area: the same place counts as a full overlap.
    same_place = np.abs(a[:, None, :] - b[None, :, :]).max(-1) <= 0.5
    return np.where(union > 0, inter / np.where(union > 0, union, 1), same_place.astype(float))


def match_detections(ref: list[dict], other: list[dict], tol: Tolerance) -> list[tuple[int, int]]:
    """One-to-one pairs (index in ref, index in other) of one image's detections that are the same
    decision: same class, IoU >= tol.iou, scores within tol.score_atol. Hungarian, so near-tied
    scores (which order the detections differently on each side) cannot steal a partner."""
    from scipy.optimize import linear_sum_assignment

    if not ref or not other:
        return []
    iou = _iou_matrix(np.array([d["bbox"] for d in ref], float), np.array([d["bbox"] for d in other], float))
    same_class = np.array([d["category_id"] for d in ref])[:, None] == np.array([d["category_id"] for d in other])
    score_gap = np.abs(np.array([d["score"] for d in ref])[:, None] - np.array([d["score"] for d in other]))
    valid = same_class & (iou >= tol.iou) & (score_gap <= tol.score_atol)
    cost = np.where(valid, (1 - iou) + score_gap, 1e6)
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if valid[r, c]]


def _cut(dets: list[dict], min_score: float, top_k: int) -> float:
    """The lowest score a detection needed to be kept on this side: the threshold, or the top-k cut."""
    return max(min_score, min(d["score"] for d in dets)) if len(dets) >= top_k else min_score


def detection_image_agreement(
    ref: list[dict], other: list[dict], tol: Tolerance, *, min_score: float = 0.0, top_k: int = 100
) -> tuple[int, int, int]:
    """(matched detections, detections that count, unmatched ones that count) of one image.

    A detection without a partner is excused when its score lies within ``score_atol`` of the
    other side's cut: the other side may have kept the same box just below it.
    """
    pairs = match_detections(ref, other, tol)
    used_ref, used_other = {r for r, _ in pairs}, {c for _, c in pairs}
    cut_ref, cut_other = (
        _cut(ref, min_score, top_k) if ref else min_score,
        _cut(other, min_score, top_k) if other else min_score,
    )
    unmatched = [d for k, d in enumerate(ref) if k not in used_ref and d["score"] > cut_other + tol.score_atol]
    unmatched += [d for k, d in enumerate(other) if k not in used_other and d["score"] > cut_ref + tol.score_atol]
    return 2 * len(pairs), 2 * len(pairs) + len(unmatched), len(unmatched)


def detection_agreement(
    ref: list[dict], other: list[dict], tol: Tolerance, *, min_score: float = 0.0, top_k: int = 100
) -> float:
    """Share of detections (both sides, every image) that are matched one to one, near-ties excused."""
    by_image: dict[int, tuple[list, list]] = {}
    for side, dets in enumerate((ref, other)):
        for d in dets:
            by_image.setdefault(int(d["image_id"]), ([], []))[side].append(d)
    matched = counted = 0
    for a, b in by_image.values():
        m, c, _ = detection_image_agreement(a, b, tol, min_score=min_score, top_k=top_k)
        matched, counted = matched + m, counted + c
    return matched / counted if counted else 1.0


def _query_set_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """Largest raw difference after pairing each image's queries one to one (DETR outputs are a set:
    a near-tied query selection may list the same proposals in another order)."""
    from scipy.optimize import linear_sum_assignment

    worst = 0.0
    x, y = torch.cat([t.float() for t in a], -1), torch.cat([t.float() for t in b], -1)
    for k in range(x.shape[0]):
        cost = torch.cdist(x[k], y[k], p=1).numpy()
        rows, cols = linear_sum_assignment(cost)
        worst = max(worst, float((x[k][rows] - y[k][cols]).abs().max()))
    return worst


# ---------------------------------------------------------------------- comparison
def _margin(probs: torch.Tensor, first: torch.Tensor, second: torch.Tensor, dim: int) -> torch.Tensor:
    """Reference probability of ``first`` minus that of ``second`` (how far from a tie the reference was)."""
    return (probs.gather(dim, first.unsqueeze(dim)) - probs.gather(dim, second.unsqueeze(dim))).squeeze(dim)


def _remap(values: torch.Tensor, truth_map: np.ndarray | None, missing: int) -> torch.Tensor:
    """Dataset labels as they are now -> the checkpoint's labels (``missing`` where it has none)."""
    if truth_map is None:
        return values
    table = torch.as_tensor(truth_map, dtype=torch.long)
    out = torch.full_like(values.long(), missing)
    inside = (values >= 0) & (values < len(table))
    out[inside] = table[values[inside].long()]
    return torch.where(out < 0, torch.full_like(out, missing), out)


def _detection_truth(
    dataset: Any, image_ids: list[int], category_map: dict[int, int] | None, categories: list[dict]
) -> dict:
    """Ground truth of the compared images, its category ids as the checkpoint numbers them."""
    doc = dataset.index.to_coco_dict()
    keep = set(image_ids)
    annotations = []
    for ann in doc["annotations"]:
        if ann["image_id"] not in keep:
            continue
        cid = int(ann["category_id"]) if category_map is None else category_map.get(int(ann["category_id"]))
        if cid is not None:
            annotations.append({**ann, "category_id": cid})
    return {
        "images": [im for im in doc["images"] if im["id"] in keep],
        "annotations": annotations,
        "categories": categories,
    }


def compare(
    task: str,
    torch_model: torch.nn.Module,
    onnx_path: str | Path,
    dataset: Any,
    collate: Callable[[list[Any]], dict[str, Any]],
    manifest: dict[str, Any],
    tol: Tolerance,
    *,
    images: int = 64,
    batch_size: int = 4,
    truth_map: np.ndarray | None = None,
    category_map: dict[int, int] | None = None,
) -> dict[str, Any]:
    """Figures of the comparison and whether they pass ``tol``.

    ``truth_map`` turns the dataset's labels as they are now into the checkpoint's (classification,
    segmentation); ``category_map`` does the same for COCO category ids (detection). Both default
    to the identity: the dataset was not renumbered since training.
    """
    from engine.metrics.classification import ClassificationMetrics
    from engine.metrics.segmentation import SegmentationMetrics

    reference, candidate = TorchBackend(torch_model, task), OnnxBackend(onnx_path)
    n = min(images, len(dataset))
    if n == 0:
        raise ValueError("no validation images to compare on")
    names = {int(k): str(v) for k, v in manifest["id2label"].items()}
    file_of = dict(zip(dataset.index.image_ids.tolist(), dataset.index.file_names))
    ref, onnx = _Side(), _Side()
    if task == "classification":
        ref.metrics, onnx.metrics = (
            ClassificationMetrics(len(names), [names[k] for k in range(len(names))]) for _ in range(2)
        )
    elif task == "segmentation":
        ref.metrics, onnx.metrics = (
            SegmentationMetrics(len(names), class_names=[names[k] for k in range(len(names))]) for _ in range(2)
        )
    max_abs, max_ref, max_set = 0.0, 0.0, 0.0
    agree = _Agreement()
    image_ids: list[int] = []
    for batch in batches(dataset, collate, batch_size, range(n)):
        batch = fit_to_input(batch, task, manifest, file_of)
        a, b = reference(batch["pixel_values"]), candidate(batch["pixel_values"])
        for x, y in zip(a, b):
            max_abs = max(max_abs, float((x - y).abs().max()))
            max_ref = max(max_ref, float(x.abs().max()))
        ids = [int(i) for i in batch["image_ids"].tolist()]
        image_ids += ids
        if task == "classification":
            _agree_on_labels(a, b, batch, ids, names, truth_map, tol, (ref, onnx), agree)
        elif task == "detection":
            max_set = max(max_set, _query_set_diff(a, b))
            _agree_on_detections(a, b, batch, ids, manifest, file_of, tol, (ref, onnx), agree)
        else:
            _agree_on_masks(a, b, batch, ids, truth_map, tol, (ref, onnx), agree)
    metric, per_class_key, class_word = METRIC_NAMES[task]
    values = _metric_values(task, dataset, image_ids, category_map, manifest, (ref, onnx))
    per_class = {
        str(name): {
            "checkpoint": values[0][per_class_key][name],
            "onnx": values[1][per_class_key][name],
            "difference": values[1][per_class_key][name] - values[0][per_class_key][name],
        }
        for name in values[0][per_class_key]
    }
    divergence = sorted(agree.divergence, key=lambda item: (-item[0], item[1]))
    result = {
        "images": n,
        "max_abs_diff": max_abs,
        "max_rel_diff": max_abs / max_ref if max_ref > 0 else 0.0,  # relative to the largest reference value
        "decision": DECISIONS[task],
        "agreement": agree.matched / agree.counted if agree.counted else 1.0,
        "excused_near_ties": agree.excused,
        "metric": {
            "name": metric,
            "checkpoint": values[0][metric],
            "onnx": values[1][metric],
            "difference": values[1][metric] - values[0][metric],
            "per_class": per_class,
            "per_class_name": class_word,
        },
        "worst_images": [
            {"image_id": i, "file_name": file_of[i], "what": what} for _, i, what in divergence[:WORST_IMAGES]
        ],
        "diverging_images": len(divergence),
        "tolerance": asdict(tol),
    }
    if task == "detection":
        result["max_abs_diff_queries_paired"] = max_set
    result["failures"] = _failures(result, tol)
    result["passed"] = not result["failures"]
    return result


def _agree_on_labels(
    a: list[torch.Tensor],
    b: list[torch.Tensor],
    batch: dict[str, Any],
    ids: list[int],
    names: dict[int, str],
    truth_map: np.ndarray | None,
    tol: Tolerance,
    sides: tuple[_Side, _Side],
    agree: _Agreement,
) -> None:
    """Classification: the same top-1 label, unless the reference nearly tied its top two."""
    truth = _remap(batch["labels"], truth_map, -100)
    sides[0].metrics.update(a[0], truth)
    sides[1].metrics.update(b[0], truth)
    probs = a[0].softmax(-1)
    la, lb = a[0].argmax(-1), b[0].argmax(-1)
    tie = _margin(probs, la, lb, 1) <= tol.score_atol
    for k, image_id in enumerate(ids):
        if la[k] == lb[k]:
            agree.matched, agree.counted = agree.matched + 1, agree.counted + 1
        elif tie[k]:
            agree.excused += 1
        else:
            agree.counted += 1
            agree.divergence.append((1.0, image_id, f"top-1 {names[int(la[k])]} -> {names[int(lb[k])]}"))


def _agree_on_detections(
    a: list[torch.Tensor],
    b: list[torch.Tensor],
    batch: dict[str, Any],
    ids: list[int],
    manifest: dict[str, Any],
    file_of: dict[int, str],
    tol: Tolerance,
    sides: tuple[_Side, _Side],
    agree: _Agreement,
) -> None:
    """Detection: detections matched one to one per image, those near either side's cut excused."""
    post = manifest["postprocessing"]
    da, db = (postprocess("detection", o, batch, manifest, file_of) for o in (a, b))
    sides[0].detections += da
    sides[1].detections += db
    for image_id in ids:
        one_a = [d for d in da if d["image_id"] == image_id]
        one_b = [d for d in db if d["image_id"] == image_id]
        m, c, missed = detection_image_agreement(one_a, one_b, tol, min_score=post["min_score"], top_k=post["top_k"])
        agree.matched, agree.counted = agree.matched + m, agree.counted + c
        agree.excused += len(one_a) + len(one_b) - c
        if missed:
            agree.divergence.append((float(missed), image_id, f"{missed} unmatched detection{'s' * (missed > 1)}"))


def _agree_on_masks(
    a: list[torch.Tensor],
    b: list[torch.Tensor],
    batch: dict[str, Any],
    ids: list[int],
    truth_map: np.ndarray | None,
    tol: Tolerance,
    sides: tuple[_Side, _Side],
    agree: _Agreement,
) -> None:
    """Segmentation: the share of mask pixels labelled alike, near-tied pixels of the reference excused."""
    truth = _remap(batch["labels"], truth_map, 255)
    for logits, metrics in ((a[0], sides[0].metrics), (b[0], sides[1].metrics)):
        metrics.update(logits.argmax(1), truth)
    for k, ((ma, _), (mb, _)) in enumerate(zip(masks_from_logits(a[0], batch), masks_from_logits(b[0], batch))):
        differ = ma != mb
        if differ.any():
            # the reference's own probabilities of both labels where they differ: a near-tie is excused
            probs = _original_size_probs(a[0][k : k + 1], batch, k)
            gap = (
                np.take_along_axis(probs, ma[None].astype(np.int64), 0)[0]
                - np.take_along_axis(probs, mb[None].astype(np.int64), 0)[0]
            )
            real = differ & (gap > tol.score_atol)
        else:
            real = differ
        agree.excused += int(differ.sum() - real.sum())
        share = float(real.mean())
        agree.matched, agree.counted = agree.matched + (1 - share), agree.counted + 1
        if share > 0:
            agree.divergence.append((share, ids[k], f"{share:.2%} of its pixels differ"))


def _metric_values(
    task: str,
    dataset: Any,
    image_ids: list[int],
    category_map: dict[int, int] | None,
    manifest: dict[str, Any],
    sides: tuple[_Side, _Side],
) -> list[dict[str, Any]]:
    """The task metric of each backend (reference first), as validation computes it."""
    if task == "detection":
        from engine.metrics.detection import coco_evaluate

        categories = manifest["categories"]
        truth = _detection_truth(dataset, image_ids, category_map, categories)
        class_names = {int(c["id"]): c["name"] for c in categories}
        return [coco_evaluate(truth, side.detections, class_names=class_names) for side in sides]
    return [side.metrics.compute() for side in sides]


def _original_size_probs(logits: torch.Tensor, batch: dict[str, Any], k: int) -> np.ndarray:
    """Class probabilities (K, H, W) of image ``k`` at its original size, as ``masks_from_logits`` maps it."""
    from engine.metrics.segmentation import upsample_logits

    one = logits.float()
    if "content_boxes" in batch:
        x, y, w, h = (int(round(v)) for v in batch["content_boxes"][k].tolist())
        one = upsample_logits(one[..., y : y + max(h, 1), x : x + max(w, 1)], tuple(batch["orig_sizes"][k].tolist()))
    return one.softmax(1)[0].numpy()


def _failures(result: dict[str, Any], tol: Tolerance) -> list[str]:
    """What moved beyond tolerance, each in words."""
    out = []
    m = result["metric"]
    if abs(m["difference"]) > tol.metric:
        out.append(
            f"{m['name']} moved from {m['checkpoint']:.4f} (checkpoint) to {m['onnx']:.4f} (ONNX), "
            f"{m['difference']:+.4f} beyond ±{tol.metric}"
        )
    moved = {name: v for name, v in m["per_class"].items() if abs(v["difference"]) > tol.per_class}
    if moved:
        out.append(
            f"per-class {m['per_class_name']} beyond ±{tol.per_class}: "
            + ", ".join(
                f"'{name}' {v['checkpoint']:.4f} -> {v['onnx']:.4f} ({v['difference']:+.4f})"
                for name, v in moved.items()
            )
        )
    if tol.atol is not None and result["max_abs_diff"] > tol.atol:
        out.append(f"max abs diff {result['max_abs_diff']:.2e} beyond {tol.atol}")
    if tol.min_agreement is not None and result["agreement"] < tol.min_agreement:
        out.append(f"{result['decision']} {result['agreement']:.4f} below {tol.min_agreement}")
    return out


def describe(result: dict[str, Any]) -> str:
    """One paragraph for the user: the metric both ways, the decisions, the raw difference, the verdict."""
    m = result["metric"]
    text = (
        f"parity on {result['images']} validation images: {m['name']} checkpoint {m['checkpoint']:.4f}, "
        f"ONNX {m['onnx']:.4f} ({m['difference']:+.4f}); {result['decision']} {result['agreement']:.4f}"
        f" ({result['excused_near_ties']} near-ties excused); max abs diff {result['max_abs_diff']:.2e}"
    )
    if "max_abs_diff_queries_paired" in result:
        text += f" ({result['max_abs_diff_queries_paired']:.2e} with queries paired)"
    if result["passed"]:
        return text + " -> passed"
    worst = "; ".join(f"{w['file_name']} ({w['what']})" for w in result["worst_images"]) or "none in particular"
    return text + f" -> FAILED: {'; '.join(result['failures'])}; most different images: {worst}"
