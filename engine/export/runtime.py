"""The export's own pre- and post-processing, and the model as raw tensors.

Pre-processing is the run's validation transform (the albumentations spec saved in the
manifest) through the task's dataset and collate code, so an export sees exactly the
pixels validation saw. Post-processing turns raw outputs into COCO results with the
original category ids. Both backends (PyTorch and onnxruntime) share them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch import nn

from engine.catalog.task_names import SINGLE_TASKS

if TYPE_CHECKING:
    from engine.data.coco_index import CocoIndex
    from engine.tasks.common.base_dataset import BaseVisionDataset
    from engine.tasks.common.collate import Collate

# An export serves one single task; multitask runs are not exported.
TASKS = SINGLE_TASKS
OUTPUT_NAMES = {"classification": ["logits"], "detection": ["logits", "pred_boxes"], "segmentation": ["logits"]}


class RawOutputs(nn.Module):
    """A HF model as ``pixel_values -> tuple of tensors`` (what model.onnx computes).

    Segmentation logits are upsampled to the input size inside the graph, as the
    training module does, so both backends give logits at canvas resolution.
    """

    def __init__(self, model: nn.Module, task: str):
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"export supports {', '.join(TASKS)}, not '{task}'")
        self.model, self.task = model, task

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(pixel_values=pixel_values)
        if self.task == "detection":
            return out.logits, out.pred_boxes
        if self.task == "segmentation":
            from engine.metrics.segmentation import upsample_logits

            # shape[-2:] stays symbolic while tracing for ONNX: no int() here, or the size is baked in.
            return (upsample_logits(out.logits, cast(tuple[int, int], tuple(pixel_values.shape[-2:]))),)
        return (out.logits,)


def image_index(paths: Sequence[Path]) -> tuple[Path, CocoIndex]:
    """(image folder, COCO index) over plain image files; ids are 1.. in the given order."""
    import os

    from engine.data.coco_index import CocoIndex
    from engine.data.images import image_size

    root = Path(os.path.commonpath([str(p.resolve().parent) for p in paths]))
    images = []
    for i, path in enumerate(paths, start=1):
        w, h = image_size(path)
        images.append({"id": i, "file_name": str(path.resolve().relative_to(root)), "width": w, "height": h})
    return root, CocoIndex.from_dict({"images": images, "annotations": [], "categories": []})


def dataset_for(task: str, image_dir: Path, index: CocoIndex, preprocessing: dict[str, Any]) -> BaseVisionDataset:
    """The task's validation dataset over ``index`` with the export's transform; every image kept."""
    from engine.tasks.registry import get_task

    cls = get_task(task).datamodule_class.dataset_class
    dataset = cls(
        image_dir,
        index=index,
        train=False,
        image_size=preprocessing.get("image_size"),
        transforms=preprocessing["transforms"],
        check_files=False,
    )
    dataset.rows = np.arange(index.num_images)
    if hasattr(dataset, "labels"):
        dataset.labels = np.zeros(index.num_images, np.int64)
    return dataset


def collate_for(task: str, preprocessing: dict[str, Any]) -> Collate:
    from engine.tasks.common.collate import Collate

    return Collate(task, mean=preprocessing["mean"], std=preprocessing["std"])


def batches(
    dataset: Any, collate: Callable[[list[Any]], dict[str, Any]], batch_size: int, rows: Iterable[int]
) -> Iterator[dict[str, Any]]:
    """Collated batches over dataset items ``rows``."""
    rows = list(rows)
    for start in range(0, len(rows), batch_size):
        yield collate([dataset[i] for i in rows[start : start + batch_size]])


def fit_to_input(
    batch: dict[str, Any], task: str, manifest: dict[str, Any], file_names: dict[int, str]
) -> dict[str, Any]:
    """The batch as model.onnx takes it: as it is where height/width are dynamic; else padded
    bottom/right to the fixed canvas (black, as the validation pad), or an error naming the images.

    Padding bottom/right moves no pixel, so detection boxes (relative to the canvas, which
    post-processing reads from the batch) and segmentation content boxes stay right.
    """
    from .manifest import ExportError

    onnx = manifest.get("onnx") or {}
    shape = onnx.get("input_shape")
    if not shape or onnx.get("dynamic_size", False) or shape[2] is None:
        return batch
    height, width = int(shape[2]), int(shape[3])
    pixels = batch["pixel_values"]
    got_h, got_w = (int(v) for v in pixels.shape[-2:])
    if (got_h, got_w) == (height, width):
        return batch
    if task == "classification" or got_h > height or got_w > width:
        names = ", ".join(file_names[int(i)] for i in batch["image_ids"].tolist())
        raise ExportError(
            f"model.onnx takes {height}x{width} images only ({onnx.get('fixed_size_reason')}); "
            f"the export's preprocessing made {got_h}x{got_w} of {names}"
        )
    pre = manifest["preprocessing"]
    black = torch.tensor(
        [(pre.get("pad_value", 0) / 255 - m) / s for m, s in zip(pre["mean"], pre["std"])], dtype=pixels.dtype
    ).view(1, -1, 1, 1)
    canvas = black.expand(pixels.shape[0], pixels.shape[1], height, width).clone()
    canvas[..., :got_h, :got_w] = pixels
    return {**batch, "pixel_values": canvas}


# ---------------------------------------------------------------------- post-processing
def postprocess(
    task: str,
    outputs: Sequence[torch.Tensor],
    batch: dict[str, Any],
    manifest: dict[str, Any],
    file_names: dict[int, str],
) -> list[dict[str, Any]]:
    """Raw outputs of one batch -> COCO results with the original category ids."""
    post = manifest["postprocessing"]
    cat_of = {int(k): int(v) for k, v in manifest["label_to_category_id"].items()}
    names = {int(k): v for k, v in manifest["id2label"].items()}
    if task == "classification":
        probs = outputs[0].float().softmax(-1)
        scores, labels = probs.max(-1)
        return [
            {
                "image_id": int(i),
                "file_name": file_names[int(i)],
                "category_id": cat_of[int(label)],
                "label": names[int(label)],
                "score": float(score),
                "scores": [round(float(p), 6) for p in row],
            }
            for i, label, score, row in zip(batch["image_ids"].tolist(), labels.tolist(), scores.tolist(), probs)
        ]
    if task == "detection":
        from engine.tasks.detection.lightning_module import detections_from_outputs

        ids = [cat_of[k] for k in range(len(cat_of))]
        found = detections_from_outputs(
            outputs[0],
            outputs[1],
            batch["labels"],
            ids,
            canvas=tuple(batch["pixel_values"].shape[-2:]),
            top_k=post["top_k"],
            min_score=post["min_score"],
        )
        for det in found:
            det["file_name"] = file_names[det["image_id"]]
        return found
    return segmentation_results(outputs[0], batch, cat_of, file_names)


def masks_from_logits(logits: torch.Tensor, batch: dict[str, Any]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(class map, confidence map) per image at its original size, as the training module predicts."""
    from engine.metrics.segmentation import upsample_logits

    out = []
    for k in range(logits.shape[0]):
        one = logits[k : k + 1].float()
        if "content_boxes" in batch:
            x, y, w, h = (int(round(v)) for v in batch["content_boxes"][k].tolist())
            one = upsample_logits(
                one[..., y : y + max(h, 1), x : x + max(w, 1)], tuple(batch["orig_sizes"][k].tolist())
            )
        conf, mask = one.softmax(1).max(1)
        out.append((mask[0].to(torch.uint8).numpy(), conf[0].numpy()))
    return out


def segmentation_results(
    logits: torch.Tensor, batch: dict[str, Any], cat_of: dict[int, int], file_names: dict[int, str]
) -> list[dict[str, Any]]:
    """One COCO result per (image, class present): an RLE mask and its mean confidence (background skipped)."""
    from pycocotools import mask as mask_utils

    results = []
    for image_id, (mask, conf) in zip(batch["image_ids"].tolist(), masks_from_logits(logits, batch)):
        for label in np.unique(mask).tolist():
            if label not in cat_of:  # background
                continue
            region = mask == label
            rle = mask_utils.encode(np.asfortranarray(region.astype(np.uint8)))
            rle["counts"] = rle["counts"].decode("ascii")
            results.append(
                {
                    "image_id": int(image_id),
                    "file_name": file_names[int(image_id)],
                    "category_id": cat_of[label],
                    "segmentation": rle,
                    "score": float(conf[region].mean()),
                }
            )
    return results


# ---------------------------------------------------------------------- backends
class OnnxBackend:
    def __init__(self, path: str | Path, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        feed = {self.input_name: np.ascontiguousarray(pixel_values.float().numpy())}
        return [torch.from_numpy(o) for o in self.session.run(None, feed)]


class TorchBackend:
    def __init__(self, model: nn.Module, task: str):
        self.net = RawOutputs(model, task).eval()

    @torch.inference_mode()
    def __call__(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        return [o.float() for o in self.net(pixel_values.contiguous())]
