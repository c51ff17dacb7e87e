"""Learning-rate schedules as a factor of the peak rate at each optimiser step.

* ``cosine``: cosine decay from the peak to zero over the run after the warm-up.
* ``wsd`` (warm-up, stable, decay): the peak rate until the last ``WSD_DECAY_SHARE`` of
  the run, then a linear decay to zero. A short run that still underfits keeps learning
  at full speed for most of its steps and still ends annealed.
* ``step``: multiplied by ``gamma`` every ``step_size`` epochs.
* ``none``: constant after the warm-up.

Plateau is not a function of the step (it reacts to validation) and lives in the module.
"""

from __future__ import annotations

import math

SCHEDULERS = ("cosine", "wsd", "step", "plateau", "none")
#: Share of the post-warm-up steps over which ``wsd`` decays to zero.
WSD_DECAY_SHARE = 0.2


def lr_factor(
    name: str, step: int, *, total: int, warmup: int, steps_per_epoch: int = 1, step_size: int = 1, gamma: float = 0.1
) -> float:
    """The factor of the peak learning rate at optimiser ``step`` (0-based) of a ``total``-step run."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    after = step - warmup
    span = max(total - warmup, 1)
    if name == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(after / span, 1.0)))
    if name == "wsd":
        decay = max(round(WSD_DECAY_SHARE * span), 1)
        left = span - after  # steps to the end of the run, this one included
        return max(min(left / decay, 1.0), 0.0)
    if name == "step":
        return gamma ** ((step // max(steps_per_epoch, 1)) // max(step_size, 1))
    return 1.0
