"""Segmentation's held-out predictions, region by region: what the model says each annotation is.

The model's class probabilities are taken over the part of the batch canvas that holds the
image (its content box), and each annotation's mask, scaled to that part, picks the pixels
whose probabilities are averaged: one probability row per annotated region, which
:func:`engine.metrics.label_quality.segmentation_suspects` scores as confident learning scores
an image's label. Crowd regions are not objects of one class, so they are not scored.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


@torch.inference_mode()
def add_region_predictions(held_out: Any, module: Any, datamodule: Any, dataset: Any, device: Any) -> None:
    """Every usable annotation of ``dataset``'s images with its mean predicted class probabilities,
    added to ``held_out`` (a :class:`engine.orchestration.label_error_scores.HeldOut`)."""
    from lightning.pytorch.utilities import move_data_to_device
    from torch.utils.data import DataLoader

    from engine.metrics.segmentation import upsample_logits
    from engine.orchestration.evaluation_run import model_outputs

    index = dataset.index
    row_of = {int(i): r for r, i in enumerate(index.image_ids.tolist())}
    usable = index.valid_annotation_mask() & ~index.ann_iscrowd
    # class 0 is background; held_out.category_ids holds its id first
    label_of = {int(c): k for k, c in enumerate(held_out.category_ids) if k > 0}
    loader = DataLoader(
        dataset, batch_size=datamodule.batch_size, collate_fn=datamodule.collate(), num_workers=datamodule.num_workers
    )
    was_training = module.training
    module.eval()
    try:
        for batch in loader:
            batch = module.on_after_batch_transfer(move_data_to_device(batch, device), 0)
            (logits,) = model_outputs(module, "segmentation", batch)
            canvas = tuple(batch["pixel_values"].shape[-2:])
            probabilities = upsample_logits(logits.float(), canvas).softmax(1).cpu().numpy()
            for k, image_id in enumerate(batch["image_ids"].tolist()):
                box = batch["content_boxes"][k].tolist() if "content_boxes" in batch else [0, 0, canvas[1], canvas[0]]
                _add_image(held_out, index, row_of[int(image_id)], usable, label_of, probabilities[k], box)
    finally:
        module.train(was_training)


def _add_image(
    held_out: Any,
    index: Any,
    row: int,
    usable: np.ndarray,
    label_of: dict[int, int],
    probabilities: np.ndarray,
    content_box: list[float],
) -> None:
    """The regions of one image: each annotation's mask at the content box's size picks its pixels."""
    from PIL import Image

    from engine.data.masks import annotation_mask

    x, y, w, h = (int(round(v)) for v in content_box)
    w, h = max(w, 1), max(h, 1)
    image = probabilities[:, y : y + h, x : x + w]
    h, w = image.shape[1:]
    for ann in index.annotation_rows(row):
        category = int(index.ann_category_id[ann])
        if not usable[ann] or category not in label_of:
            continue
        full = annotation_mask(index, ann)
        region = np.asarray(Image.fromarray(full * 255).resize((w, h), Image.Resampling.NEAREST)) > 0
        if not region.any():  # smaller than one pixel of the model's view: take its nearest pixel
            ys, xs = np.nonzero(full)
            if not len(ys):
                continue
            region[min(int(ys.mean() * h / full.shape[0]), h - 1), min(int(xs.mean() * w / full.shape[1]), w - 1)] = (
                True
            )
        held_out.probabilities.append(image[:, region].mean(axis=1).astype(np.float64))
        held_out.labels.append(np.int64(label_of[category]))
        held_out.annotation_ids.append(int(index.ann_ids[ann]))
        held_out.image_ids.append(int(index.image_ids[row]))
        held_out.file_names.append(index.file_names[row])
