"""A transformers backbone reduced to "image in, last feature map out"."""

from __future__ import annotations

import torch
from torch import nn


class LastFeatureMap(nn.Module):
    """Wraps a transformers ``*Backbone`` so heads get a plain tensor.

    transformers backbones return a ``BackboneOutput`` with a tuple of maps;
    the multi-task model only needs the deepest one.
    """

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    @property
    def channels(self) -> int:
        return int(self.backbone.channels[-1])

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.backbone(pixel_values).feature_maps[-1]
