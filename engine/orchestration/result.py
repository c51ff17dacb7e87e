"""What a training run ended with, however it trained (in this process or on Ray Train workers)."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field

#: the message of a run stopped by a stop request (the app's, ``lightbox jobs stop``, SIGTERM)
STOPPED_MESSAGE = "stopped on request; checkpoints kept"


@dataclass
class TrainResult:
    run_id: str
    status: str  # FINISHED | FAILED | KILLED
    best_checkpoint: str | None
    last_checkpoint: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    message: str | None = None
    tracking_uri: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def nonfinite_message(step: int, last_checkpoint: object) -> str:
    """Why a run whose loss stopped being finite at ``step`` failed, and what to try."""
    return (
        f"the loss became NaN or infinite at step {step}; training stopped "
        f"without applying that step. Last good checkpoint: {last_checkpoint or 'none yet'}. "
        "Try a lower learning rate or gradient clipping (optim.grad_clip)."
    )


def print_result(result: TrainResult, stream=None) -> None:
    """The run's final JSON line (and its message on stderr); silent in a rank that helps rank 0."""
    from engine.tracking.shared_run import is_helper_rank

    if is_helper_rank():  # rank 0 reports the run; the processes helping it stay quiet
        return
    print(result.to_json(), file=stream or sys.stdout, flush=True)
    if result.message:
        print(result.message, file=sys.stderr)


__all__ = ["STOPPED_MESSAGE", "TrainResult", "nonfinite_message", "print_result"]
