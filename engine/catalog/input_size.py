"""The image sizes a model can take, per model family: the one place this rule lives.

Images reach the model as ``image_size`` x ``image_size`` squares. Most families take
any side (ResNets pool globally, DETRs carry a padding mask, SegFormer resizes its
stages to one grid), but two kinds do not:

* **feature pyramids fused top-down** (RT-DETR): the stride-32 map is upsampled x2 and
  joined with the stride-16 one, so a side that is no multiple of 32 gives grids of 13
  and 25 cells that cannot be joined ("Sizes of tensors must match ... 26 but got 25");
* **fixed position embeddings** (ViT, DeiT): the model takes only the size it was built
  for (its config's ``image_size``).

Config validation asks :func:`image_size_problem`, so the CLI and the app's form refuse
such a size before a run starts, naming the nearest sizes that work.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.catalog.family import checkpoint_config, family_of
from engine.catalog.presets import get_preset

__all__ = ["MIN_IMAGE_SIZE", "SizeRule", "image_size_problem", "nearest_sizes", "size_rule"]

MIN_IMAGE_SIZE = 32  # data.image_size's own lower bound in the config

# Families whose sides must be a multiple of their largest feature stride.
STRIDE_MULTIPLE: dict[str, tuple[int, str]] = {
    "rt_detr": (32, "its encoder joins feature maps of strides 8, 16 and 32"),
    "rt_detr_v2": (32, "its encoder joins feature maps of strides 8, 16 and 32"),
}
# Families with position embeddings for one input size only.
FIXED_SIZE = ("vit", "deit", "vit_msn")


@dataclass(frozen=True)
class SizeRule:
    multiple: int = 1  # every side a multiple of this
    only: int | None = None  # the single size the model takes
    why: str = ""

    def accepts(self, size: int) -> bool:
        if self.only is not None:
            return size == self.only
        return size % self.multiple == 0


def size_rule(checkpoint: str | None) -> SizeRule | None:
    """The rule of the checkpoint's family, or None when it takes any size (or is unknown offline)."""
    family = family_of(checkpoint)
    if family in STRIDE_MULTIPLE:
        multiple, why = STRIDE_MULTIPLE[family]
        return SizeRule(multiple=multiple, why=why)
    if family in FIXED_SIZE:
        preset = get_preset(checkpoint or "")
        only = preset.image_size if preset is not None else (checkpoint_config(checkpoint) or {}).get("image_size")
        if isinstance(only, int) and not isinstance(only, bool) and only > 0:
            return SizeRule(only=only, why=f"its position embeddings are fixed at {only} x {only} pixels")
    return None


def nearest_sizes(rule: SizeRule, size: int) -> list[int]:
    """The valid sizes closest to ``size``: the one below and the one above (at least MIN_IMAGE_SIZE)."""
    if rule.only is not None:
        return [rule.only]
    below = size // rule.multiple * rule.multiple
    return [s for s in (below, below + rule.multiple) if s >= MIN_IMAGE_SIZE]


def image_size_problem(checkpoint: str | None, size: int | None) -> str | None:
    """None when the checkpoint takes ``size`` x ``size`` images, else what is wrong and what would work."""
    if size is None:
        return None  # the model's own size
    rule = size_rule(checkpoint)
    if rule is None or rule.accepts(size):
        return None
    family = family_of(checkpoint)
    nearest = " or ".join(str(s) for s in nearest_sizes(rule, size))
    if rule.only is not None:
        return f"{checkpoint} ({family}) takes only {rule.only} px images: {rule.why}; use {nearest} (got {size})"
    return (
        f"{checkpoint} ({family}) needs a multiple of {rule.multiple} pixels: {rule.why}; "
        f"nearest valid sizes: {nearest} (got {size})"
    )
