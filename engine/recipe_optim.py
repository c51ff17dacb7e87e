"""The optimisation half of the recipe: learning rate, gradient clipping, warm-up and epochs.

Each model family trains well in its own regime, so these follow the family (the
preset's, or ``model_type`` in a folder's config.json) and whether the run starts
from trained weights (fine-tuning) or from random ones (every offline preset):

* **Learning rate**: from random weights a CNN, SegFormer or RT-DETR takes 1e-3 with
  AdamW; ViTs 5e-4; DETR and Conditional DETR, whose learned queries diverge at high
  rates, 1e-4. Fine-tuning trained weights takes a tenth of that (1e-4, 6e-5 for
  SegFormer as in its paper, 1e-5 for the DETRs).
* **Gradient clipping**: 0.1 for the DETR-family detectors (the value their papers and
  reference code use: without it their Hungarian-matched losses spike), 1.0 for ViTs,
  none for CNNs and SegFormer.
* **Warm-up**: transformers need one (5% of the run, at least 20 steps when the run has
  200 or more); CNNs get 3% of the run, at most one epoch, none on short runs.
* **Epochs** (when left empty): 10, or more on small sets so that the run makes at
  least the family's minimum number of optimiser steps (a detector learning 48 images
  from scratch needs hundreds of steps, which 10 epochs of 3 batches are not), capped
  so a run stays a run.

Every value the user set is kept; the chosen ones are written into the run's config.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.catalog.family import family_of  # the one family lookup, re-exported for the recipe's callers
from engine.config import RunConfig

__all__ = ["FamilyRegime", "choose_epochs", "choose_warmup", "family_of", "regime_for"]


@dataclass(frozen=True)
class FamilyRegime:
    """How a model family trains: learning rates (from scratch / fine-tuning), clipping and warm-up."""

    scratch_lr: float
    finetune_lr: float
    grad_clip: float  # 0: no clipping
    transformer: bool  # warm-up as transformers want it
    min_steps: int  # optimiser steps the run should make at least when epochs are chosen


REGIMES: dict[str, FamilyRegime] = {
    "resnet": FamilyRegime(1e-3, 1e-4, 0.0, transformer=False, min_steps=100),
    "vit": FamilyRegime(5e-4, 5e-5, 1.0, transformer=True, min_steps=100),
    "segformer": FamilyRegime(1e-3, 6e-5, 0.0, transformer=True, min_steps=100),
    # Detectors match boxes to queries before they learn to classify them: on the demo set
    # rt-detr-v2-tiny is at mAP50 ~0 for its first 60 steps and passes 0.5 after about 100.
    "rt_detr_v2": FamilyRegime(1e-3, 1e-4, 0.1, transformer=True, min_steps=300),
    "rt_detr": FamilyRegime(1e-3, 1e-4, 0.1, transformer=True, min_steps=300),
    "detr": FamilyRegime(1e-4, 1e-5, 0.1, transformer=True, min_steps=300),
    "conditional_detr": FamilyRegime(1e-4, 1e-5, 0.1, transformer=True, min_steps=300),
}
#: Any other architecture: the cautious fine-tuning regime.
UNKNOWN = FamilyRegime(1e-4, 1e-4, 0.0, transformer=False, min_steps=100)

DEFAULT_EPOCHS = 10
MAX_AUTO_EPOCHS = 300
WARMUP_SHARE = 0.03  # CNNs
TRANSFORMER_WARMUP_SHARE = 0.05
TRANSFORMER_MIN_WARMUP = 20
WARMUP_MAX = 1000
WARMUP_MIN = 10


def starts_from_trained_weights(checkpoint: str | None, pretrained: bool) -> bool:
    """Offline presets are random weights; a folder or hub id with ``pretrained`` loads trained ones."""
    from engine.catalog.presets import get_preset

    return bool(checkpoint) and pretrained and get_preset(checkpoint) is None


def regime_for(config: RunConfig) -> tuple[FamilyRegime, bool, str]:
    """(regime, fine-tuning?, what it is in words) for the run's model(s).

    A multi-task run shares one optimiser: it takes the most cautious of its models' regimes.
    """
    checkpoints = (
        list(config.model.checkpoints.values()) if config.task.name == "multitask" else [config.model.checkpoint]
    )
    found = []
    for checkpoint in checkpoints:
        family = family_of(checkpoint)
        finetune = starts_from_trained_weights(checkpoint, config.model.pretrained)
        regime = REGIMES.get(family or "", UNKNOWN)
        found.append(
            (
                regime.finetune_lr if finetune else regime.scratch_lr,
                regime,
                finetune,
                f"{family or 'unknown family'} {'fine-tuned' if finetune else 'from random weights'}",
            )
        )
    lr, regime, finetune, words = min(found, key=lambda item: item[0])
    if len(found) > 1:
        regime = FamilyRegime(
            lr,
            lr,
            max(r.grad_clip for _, r, _, _ in found),
            transformer=any(r.transformer for _, r, _, _ in found),
            min_steps=max(r.min_steps for _, r, _, _ in found),
        )
        words = " + ".join(w for *_, w in found)
    return regime, finetune, words


def choose_epochs(steps_per_epoch: int, min_steps: int) -> int:
    """10 epochs, or as many as make ``min_steps`` optimiser steps on a small set (at most 300)."""
    needed = math.ceil(min_steps / max(steps_per_epoch, 1))
    return max(DEFAULT_EPOCHS, min(needed, MAX_AUTO_EPOCHS))


def choose_warmup(total_steps: int, steps_per_epoch: int, transformer: bool = False) -> int:
    """Warm-up steps: a small share of the run (none on short CNN runs); transformers always get one."""
    if transformer:
        warmup = round(TRANSFORMER_WARMUP_SHARE * total_steps)
        if total_steps >= 10 * TRANSFORMER_MIN_WARMUP:
            warmup = max(warmup, TRANSFORMER_MIN_WARMUP)
        return min(warmup, WARMUP_MAX)
    warmup = min(round(WARMUP_SHARE * total_steps), max(steps_per_epoch, 1), WARMUP_MAX)
    return warmup if warmup >= WARMUP_MIN else 0
