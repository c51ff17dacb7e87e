"""What data-parallel training needs to know about a model's parameters.

DDP expects a gradient for every trainable parameter after each backward pass and fails
("Expected to have finished reduction in the prior iteration ...") when some take no part
in the loss. Searching for them every step (``find_unused_parameters=True``) costs a walk
of the autograd graph, so it is asked for only where a model really leaves some out. Local
multi-GPU runs and Ray Train runs both decide here.
"""

from __future__ import annotations

from typing import Any


def has_unused_parameters(model: Any) -> bool:
    """True when some of ``model``'s trainable parameters can receive no gradient in a training step."""
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type == "conditional_detr" and int(getattr(config, "decoder_layers", 0)) < 2:
        # Conditional DETR scales the query position with `query_scale` from the second
        # decoder layer on: with a single decoder layer that module takes no part.
        return True
    # RT-DETR's denoising queries are built from the batch's boxes: a process whose batch
    # holds only images without boxes (negatives) leaves `denoising_class_embed` out.
    return model_type in ("rt_detr", "rt_detr_v2") and int(getattr(config, "num_denoising", 0)) > 0


__all__ = ["has_unused_parameters"]
