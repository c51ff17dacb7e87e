"""The shared backbone: taken from the first task's checkpoint that has a backbone form."""

from __future__ import annotations

from torch import nn

from engine.catalog.checkpoints import ModelLoadError
from engine.models.loading import has_backbone_form, load_backbone

from .config import MultiTaskConfig

__all__ = ["backbone_checkpoint", "shared_backbone"]


def backbone_checkpoint(config: MultiTaskConfig) -> str:
    """The checkpoint :func:`shared_backbone` takes the backbone from (reads configs, builds nothing).

    Its normalisation is the one the whole model expects.
    """
    for task in config.tasks:
        if has_backbone_form(config.model_checkpoints[task]):
            return config.model_checkpoints[task]
    return shared_backbone(config)[2]  # raises the message that says why none fits


def shared_backbone(config: MultiTaskConfig) -> tuple[nn.Module, int, str]:
    """(backbone, channels, checkpoint) by the rule in :mod:`engine.tasks.multitask`."""
    skipped = []
    for task in config.tasks:
        checkpoint = config.model_checkpoints[task]
        try:
            module, channels = load_backbone(checkpoint, pretrained=config.pretrained)
            return module, channels, checkpoint
        except ModelLoadError as err:
            # Only "this architecture has no backbone form" moves on to the next
            # task; a missing folder or an unreachable hub id is the user's to fix.
            if "no backbone form" not in str(err):
                raise
            skipped.append(f"{task}: {checkpoint!r}")
    raise ModelLoadError(
        f"none of the checkpoints can serve as the shared backbone ({'; '.join(skipped)}); "
        "give at least one task a ResNet-like or DETR checkpoint (e.g. 'resnet-50')"
    )
