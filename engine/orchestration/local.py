"""``engine.orchestration.local.train``: the name scripts, benchmarks and the documentation use.

Training's parts live in modules of their own: :mod:`~engine.orchestration.training`
(``train``: in this process or on Ray Train workers), :mod:`~engine.orchestration.local_training`
(a run in this process), :mod:`~engine.orchestration.builders` (data module and task module),
:mod:`~engine.orchestration.speed` (device, precision, speed switches),
:mod:`~engine.orchestration.trainer` (the Lightning Trainer), :mod:`~engine.orchestration.checkpoints`,
:mod:`~engine.orchestration.run_folder` (a run's folder and tracking) and
:mod:`~engine.orchestration.result`. The names below are kept here for their callers.
"""

from __future__ import annotations

from engine.orchestration.builders import build_datamodule, build_module
from engine.orchestration.checkpoints import newest_checkpoint
from engine.orchestration.errors import TrainingError
from engine.orchestration.result import TrainResult
from engine.orchestration.speed import speed_settings
from engine.orchestration.training import train

__all__ = [
    "TrainResult",
    "TrainingError",
    "build_datamodule",
    "build_module",
    "newest_checkpoint",
    "speed_settings",
    "train",
]
