"""The names of the tasks Lightbox trains: the one place they are spelled out.

``SingleTask`` and ``TaskName`` are the config's types; the tuples are the same
names for code that lists or checks them.
"""

import typing
from typing import Literal

__all__ = ["ALL_TASKS", "SINGLE_TASKS", "SingleTask", "TaskName"]

SingleTask = Literal["classification", "detection", "segmentation"]
# A multitask run learns several single tasks at once.
TaskName = Literal[SingleTask, "multitask"]

SINGLE_TASKS: tuple[str, ...] = typing.get_args(SingleTask)
ALL_TASKS: tuple[str, ...] = typing.get_args(TaskName)
