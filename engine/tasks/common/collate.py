"""Batching: stack uint8 images (padding to the largest), normalise once per batch.

Images stay uint8 until the whole batch exists: stacking bytes is 4x cheaper
than stacking floats, and one vectorised normalisation beats one per image. The
same ``normalize_batch`` runs on the GPU when the data module leaves it to the
model (``normalize="device"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import get_worker_info

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _empty(shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    """A new CPU tensor; inside a DataLoader worker, in shared memory from the start.

    A batch built in ordinary memory is copied into shared memory again when the
    worker sends it; allocating it there directly skips that copy.
    """
    if get_worker_info() is None:
        return torch.empty(tuple(shape), dtype=dtype)
    numel = 1
    for n in shape:
        numel *= int(n)
    storage = torch.empty(0, dtype=dtype)._typed_storage()._new_shared(numel)
    return torch.empty(0, dtype=dtype).set_(storage).view(tuple(shape))


def normalize_batch(
    images: torch.Tensor,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float ``(x / 255 - mean) / std``, keeping the memory format."""
    scale = torch.tensor([1.0 / (255.0 * s) for s in std], dtype=dtype, device=images.device).view(1, -1, 1, 1)
    shift = torch.tensor([m / s for m, s in zip(mean, std)], dtype=dtype, device=images.device).view(1, -1, 1, 1)
    if images.device.type == "cpu" and images.is_contiguous(memory_format=torch.channels_last):
        b, c, h, w = images.shape
        out = _empty((b, h, w, c), dtype).permute(0, 3, 1, 2)
        out.copy_(images)
    else:
        out = images.to(dtype)
    return out.mul_(scale).sub_(shift)


def stack_images(images: Sequence[torch.Tensor], pad_value: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Stack CHW uint8 images into a channels-last batch; pad to the largest size if they differ.

    Returns the batch and, when padding happened, a (B, H, W) mask of real pixels.
    """
    heights = [int(im.shape[1]) for im in images]
    widths = [int(im.shape[2]) for im in images]
    h, w = max(heights), max(widths)
    batch = _empty((len(images), h, w, images[0].shape[0]), images[0].dtype)
    mask = None
    if min(heights) != h or min(widths) != w:
        batch.fill_(pad_value)
        mask = torch.zeros((len(images), h, w), dtype=torch.long)
    for k, im in enumerate(images):
        batch[k, : im.shape[1], : im.shape[2]] = im.permute(1, 2, 0)
        if mask is not None:
            mask[k, : im.shape[1], : im.shape[2]] = 1
    # NHWC memory viewed as NCHW: a channels_last tensor at no cost.
    return batch.permute(0, 3, 1, 2), mask


class Collate:
    """Picklable collate function (DataLoader workers need to pickle it)."""

    def __init__(
        self,
        task: str,
        *,
        normalize: bool = True,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        ignore_index: int = 255,
    ):
        self.task, self.normalize, self.mean, self.std = task, normalize, tuple(mean), tuple(std)
        self.ignore_index = ignore_index

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        pixels, pixel_mask = stack_images([s["pixel_values"] for s in samples])
        if self.normalize:
            pixels = normalize_batch(pixels, self.mean, self.std)
        batch: dict[str, Any] = {"pixel_values": pixels}
        if self.task == "classification":
            batch["labels"] = torch.tensor([int(s["labels"]) for s in samples], dtype=torch.long)
        elif self.task == "detection":
            h, w = pixels.shape[-2:]
            labels = []
            for s in samples:
                target = dict(s["labels"])
                sh, sw = target["size"].tolist()
                if (sh, sw) != (h, w) and len(target["boxes"]):
                    # Boxes are relative to the image; re-express them relative to the padded canvas.
                    factor = torch.tensor([sw / w, sh / h, sw / w, sh / h], dtype=target["boxes"].dtype)
                    target["boxes"] = target["boxes"] * factor
                labels.append(target)
            batch["labels"] = labels
            batch["pixel_mask"] = (
                pixel_mask if pixel_mask is not None else torch.ones((len(samples), h, w), dtype=torch.long)
            )
        elif self.task == "segmentation":
            h, w = pixels.shape[-2:]
            masks = torch.full((len(samples), h, w), self.ignore_index, dtype=torch.long)
            for k, s in enumerate(samples):
                m = s["labels"]
                masks[k, : m.shape[0], : m.shape[1]] = m
            batch["labels"] = masks
            if all("content_box" in s for s in samples):
                batch["content_boxes"] = torch.stack([s["content_box"] for s in samples])
                batch["orig_sizes"] = torch.stack([s["orig_size"] for s in samples])
        else:
            raise ValueError(f"unknown task '{self.task}'")
        batch["image_ids"] = torch.tensor([int(s["image_id"]) for s in samples], dtype=torch.long)
        return batch
