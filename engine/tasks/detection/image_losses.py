"""Each image's own detection loss, so the validation loss does not depend on the batches.

The DETR-family losses of transformers normalise by the boxes of the whole batch (and
weigh the "no object" queries of every image against them), so the loss of a batch is
not the mean of its images' losses: the same images batched differently, as they are
on another number of processes, give another validation loss. ``ImageWiseLoss`` stands in
for a model's loss function during one forward pass and computes the loss of every image
alone, from the batch's outputs (one forward pass; only the matching and the sums are
done per image).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch


def _layer_outputs_batch_dim(value: torch.Tensor, last_layer: torch.Tensor, batch: int) -> int:
    """The batch axis of per-decoder-layer outputs: (layers, batch, ...) in DETR and Conditional
    DETR, (batch, layers, ...) in RT-DETR. Where both axes have the batch's length, the last
    layer's slice that equals the final outputs tells which is which."""
    first, second = value.shape[0] == batch, value.shape[1] == batch
    if first and second:
        return 0 if value[:, -1].shape == last_layer.shape and torch.equal(value[:, -1], last_layer) else 1
    if first or second:
        return 0 if first else 1
    raise ValueError(
        f"per-layer detection outputs of shape {tuple(value.shape)} have no axis of the batch's {batch} images"
    )


class ImageWiseLoss:
    """A transformers detection loss function computed for every image on its own.

    Called as the model calls its ``loss_function``: ``(logits, labels, device, pred_boxes,
    config, outputs_class, outputs_coord, **extra)``. Returns the mean of the images' losses
    (what the model reports as its loss) and keeps each image's loss in ``image_losses``.
    """

    def __init__(self, loss_function) -> None:
        self.loss_function = loss_function
        self.image_losses: torch.Tensor | None = None

    def __call__(
        self, logits, labels, device, pred_boxes, config, outputs_class=None, outputs_coord=None, **extra: Any
    ):
        batch = logits.shape[0]
        dims = {"class": None, "coord": None}
        if outputs_class is not None:
            dims["class"] = _layer_outputs_batch_dim(outputs_class, logits, batch)
        if outputs_coord is not None:
            dims["coord"] = _layer_outputs_batch_dim(outputs_coord, pred_boxes, batch)
        for key, value in extra.items():
            if isinstance(value, torch.Tensor) and value.shape[0] != batch:
                raise ValueError(f"the detection loss input {key} of shape {tuple(value.shape)} is not per image")
            if isinstance(value, dict):  # denoising groups mix the images: training only
                raise ValueError(f"the detection loss input {key} cannot be split per image")

        def one(value, index, dim=0):
            if not isinstance(value, torch.Tensor):
                return value
            return value.narrow(dim, index, 1)

        losses, parts = [], []
        for i in range(batch):
            loss, loss_dict, _ = self.loss_function(
                one(logits, i),
                [labels[i]],
                device,
                one(pred_boxes, i),
                config,
                one(outputs_class, i, dims["class"] or 0),
                one(outputs_coord, i, dims["coord"] or 0),
                **{key: one(value, i) for key, value in extra.items()},
            )
            losses.append(loss)
            parts.append(loss_dict)
        self.image_losses = torch.stack(losses)
        mean_parts = {key: torch.stack([torch.as_tensor(p[key]) for p in parts]).mean() for key in parts[0]}
        return self.image_losses.mean(), mean_parts, None


@contextmanager
def image_wise_loss(model) -> Iterator[ImageWiseLoss]:
    """During the block, ``model`` computes its loss image by image (see ``ImageWiseLoss``)."""
    had_own = "_loss_function" in vars(model)
    previous = model.loss_function
    splitter = ImageWiseLoss(previous)
    model.loss_function = splitter
    try:
        yield splitter
    finally:
        if had_own:
            model.loss_function = previous
        else:
            del model._loss_function
