"""The errors training and searching refuse or fail with; their messages say what to do."""

from __future__ import annotations


class TrainingError(RuntimeError):
    """Training cannot start or could not finish; the message says what to do."""


class SearchError(RuntimeError):
    """The search cannot start, or no trial produced the metric; the message says why."""


__all__ = ["SearchError", "TrainingError"]
