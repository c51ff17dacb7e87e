"""PyTorch against onnxruntime on the run's validation images: raw outputs and decisions."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .runtime import OnnxBackend, TorchBackend, batches, masks_from_logits, postprocess


@dataclass
class Tolerance:
    atol: float = 1e-3  # largest absolute difference of any raw output
    min_agreement: float = 0.99  # share of top-1 labels / matched detections / mask pixels that agree
    iou: float = 0.9  # a detection matches when its box overlaps the reference this much ...
    score_atol: float = 1e-3  # ... and its score is within this


def _iou(a: list[float], b: list[float]) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    h = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = w * h
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else float(a == b)


def detection_agreement(ref: list[dict], other: list[dict], tol: Tolerance) -> float:
    """Share of detections (either side) that find a partner: same image and class, IoU and score close."""
    if not ref and not other:
        return 1.0
    unused = list(other)
    matched = 0
    for det in ref:
        for k, cand in enumerate(unused):
            if (cand["image_id"] == det["image_id"] and cand["category_id"] == det["category_id"]
                    and abs(cand["score"] - det["score"]) <= tol.score_atol
                    and _iou(cand["bbox"], det["bbox"]) >= tol.iou):
                matched += 1
                unused.pop(k)
                break
    return 2 * matched / (len(ref) + len(other))


def compare(task: str, torch_model, onnx_path, dataset, collate, manifest: dict[str, Any], tol: Tolerance,
            *, images: int = 16, batch_size: int = 4) -> dict[str, Any]:
    """Figures of the comparison and whether they pass ``tol``."""
    reference, candidate = TorchBackend(torch_model, task), OnnxBackend(onnx_path)
    n = min(images, len(dataset))
    if n == 0:
        raise ValueError("no validation images to compare on")
    max_abs, max_ref, agree, total = 0.0, 0.0, 0.0, 0
    names = {int(i): str(i) for i in dataset.index.image_ids.tolist()}
    for batch in batches(dataset, collate, batch_size, range(n)):
        a, b = reference(batch["pixel_values"]), candidate(batch["pixel_values"])
        for x, y in zip(a, b):
            max_abs = max(max_abs, float((x - y).abs().max()))
            max_ref = max(max_ref, float(x.abs().max()))
        size = int(batch["pixel_values"].shape[0])
        if task == "classification":
            agree += float((a[0].argmax(-1) == b[0].argmax(-1)).sum())
            total += size
        elif task == "detection":
            agree += size * detection_agreement(postprocess(task, a, batch, manifest, names),
                                                postprocess(task, b, batch, manifest, names), tol)
            total += size
        else:
            for (ma, _), (mb, _) in zip(masks_from_logits(a[0], batch), masks_from_logits(b[0], batch)):
                agree += float((ma == mb).mean())
                total += 1
    result = {
        "images": n,
        "max_abs_diff": max_abs,
        "max_rel_diff": max_abs / max_ref if max_ref > 0 else 0.0,  # relative to the largest reference value
        "decision": {"classification": "top-1 agreement", "detection": "matched detections",
                     "segmentation": "mask pixel agreement"}[task],
        "agreement": agree / total,
        "tolerance": asdict(tol),
    }
    result["passed"] = bool(result["max_abs_diff"] <= tol.atol and result["agreement"] >= tol.min_agreement)
    return result


def describe(result: dict[str, Any]) -> str:
    return (f"parity on {result['images']} validation images: max abs diff {result['max_abs_diff']:.2e}, "
            f"max rel diff {result['max_rel_diff']:.2e}, {result['decision']} {result['agreement']:.4f} "
            f"-> {'passed' if result['passed'] else 'FAILED'} (atol {result['tolerance']['atol']}, "
            f"min agreement {result['tolerance']['min_agreement']})")

