"""The error every bad augmentation spec raises, naming the step, transform and parameter."""

from __future__ import annotations

__all__ = ["AugmentationSpecError"]


class AugmentationSpecError(ValueError):
    """A spec step is wrong. The message names step, transform and parameter.

    ``step`` is the 1-based position ("2", or "2.1" inside a container),
    ``transform`` the step's name and ``param`` the offending parameter; any of
    them is None when it does not apply, so a form can highlight the field.
    """

    def __init__(
        self, message: str, *, step: str | None = None, transform: str | None = None, param: str | None = None
    ):
        self.step = step
        self.transform = transform
        self.param = param
        where = []
        if step is not None:
            where.append(f"step {step}" + (f" ({transform})" if transform else ""))
        elif transform:
            where.append(transform)
        if param:
            where.append(param)
        super().__init__(": ".join([*where, message]))
