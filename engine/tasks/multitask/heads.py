"""One head per task, each reading the shared backbone's last feature map."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ClassificationHead", "DetectionHead", "SegmentationHead", "sine_positions"]


class ClassificationHead(nn.Module):
    def __init__(self, channels: int, num_labels: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(channels, num_labels)

    def forward(self, features: Tensor) -> Tensor:
        return self.classifier(self.dropout(features.mean(dim=(2, 3))))


class SegmentationHead(nn.Module):
    """1x1 projection, two (upsample x2, 3x3 conv, BN, ReLU) stages, 1x1 classifier.

    The backbone's last map is coarse (stride 8 to 32); upsampling in two
    learnt stages before the final bilinear resize gives sharper edges than
    resizing the logits alone.
    """

    def __init__(self, channels: int, num_labels: int, dim: int):
        super().__init__()
        self.project = nn.Sequential(
            nn.Conv2d(channels, dim, 1, bias=False), nn.BatchNorm2d(dim), nn.ReLU(inplace=True)
        )
        self.stages = nn.ModuleList(
            nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1, bias=False), nn.BatchNorm2d(dim), nn.ReLU(inplace=True))
            for _ in range(2)
        )
        self.classifier = nn.Conv2d(dim, num_labels, 1)

    def forward(self, features: Tensor, size: tuple[int, int]) -> Tensor:
        x = self.project(features)
        for stage in self.stages:
            x = stage(F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False))
        return F.interpolate(self.classifier(x), size=size, mode="bilinear", align_corners=False)


def sine_positions(mask: Tensor, dim: int, temperature: float = 10000.0) -> Tensor:
    """(B, H, W) bool mask of real cells -> (B, H*W, dim) 2-D sine encoding.

    Half the channels encode y, half x, each as interleaved sin/cos of the
    cell's position normalised over the real (unpadded) extent.
    """
    m = mask.to(torch.float32)
    y, x = m.cumsum(1), m.cumsum(2)
    y = y / (y[:, -1:, :] + 1e-6) * 2 * math.pi
    x = x / (x[:, :, -1:] + 1e-6) * 2 * math.pi
    half = dim // 2
    freq = temperature ** (2 * (torch.arange(half, device=mask.device) // 2) / half)

    def encode(v: Tensor) -> Tensor:
        v = v[..., None] / freq
        return torch.stack((v[..., 0::2].sin(), v[..., 1::2].cos()), dim=-1).flatten(-2)

    return torch.cat((encode(y), encode(x)), dim=-1).flatten(1, 2)


class DetectionHead(nn.Module):
    """A compact DETR head: K + 1 class logits ("no object" last) and sigmoid cx, cy, w, h boxes."""

    def __init__(
        self,
        channels: int,
        num_labels: int,
        dim: int,
        num_queries: int,
        num_layers: int,
        num_heads: int,
        dropout: float,
    ):
        super().__init__()
        self.input_proj = nn.Conv2d(channels, dim, 1)
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(dim, num_heads, 4 * dim, dropout, batch_first=True),
            num_layers,
            enable_nested_tensor=False,
        )
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(dim, num_heads, 4 * dim, dropout, batch_first=True), num_layers
        )
        self.queries = nn.Embedding(num_queries, dim)
        self.class_head = nn.Linear(dim, num_labels + 1)
        self.box_head = nn.Sequential(
            nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, 4)
        )

    def forward(self, features: Tensor, pixel_mask: Tensor | None = None) -> dict[str, Tensor]:
        x = self.input_proj(features)
        b, d, h, w = x.shape
        if pixel_mask is None:
            mask = torch.ones((b, h, w), dtype=torch.bool, device=x.device)
        else:
            mask = F.interpolate(pixel_mask[:, None].float(), size=(h, w), mode="nearest")[:, 0] > 0.5
        padding = ~mask.flatten(1)
        pos = sine_positions(mask, d).to(x.dtype)
        # nn.Transformer layers cannot add positions to queries/keys only, so they are
        # added to the inputs once: enough for the cross-attention to localise.
        memory = self.encoder(x.flatten(2).transpose(1, 2) + pos, src_key_padding_mask=padding) + pos
        queries = self.queries.weight.unsqueeze(0).expand(b, -1, -1)
        hs = self.decoder(queries, memory, memory_key_padding_mask=padding)
        return {"logits": self.class_head(hs), "pred_boxes": self.box_head(hs).sigmoid()}
