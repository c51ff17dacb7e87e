"""One run for every process of a data-parallel training.

Lightning starts the extra processes of ``--devices N`` by running the same command
again, so each of them would call ``train()`` from the top and open a run of its own.
Rank 0 creates the run and its folder first, then leaves their ids in the environment
the other processes inherit (:func:`ranks_share_run`); those find them with
:func:`shared_run_of_rank_zero` and log through a :class:`RankLogger`, which writes
nothing: only rank 0 writes to the run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any

SHARED_RUN_ENV = "LIGHTBOX_SHARED_RUN"


@dataclass(frozen=True)
class SharedRun:
    run_id: str
    run_dir: str
    #: the checkpoint rank 0 resumes from (None for a new run)
    resume_checkpoint: str | None = None


def _launched_rank() -> int:
    """This process's rank among those Lightning launched on this machine (0 for the first)."""
    return int(os.environ.get("LOCAL_RANK", "0") or 0)


@contextmanager
def ranks_share_run(shared: SharedRun) -> Iterator[None]:
    """While training starts its extra processes, tell them which run and folder are theirs."""
    previous = os.environ.get(SHARED_RUN_ENV)
    os.environ[SHARED_RUN_ENV] = json.dumps(asdict(shared))
    try:
        yield
    finally:  # a later run in this process must not take this one for its own
        if previous is None:
            os.environ.pop(SHARED_RUN_ENV, None)
        else:
            os.environ[SHARED_RUN_ENV] = previous


def shared_run_of_rank_zero() -> SharedRun | None:
    """The run rank 0 opened, in a process it launched; None in rank 0 or a process of its own."""
    text = os.environ.get(SHARED_RUN_ENV)
    if not text or _launched_rank() == 0:
        return None
    return SharedRun(**json.loads(text))


def is_helper_rank() -> bool:
    """True in a process launched to help rank 0 train (it reports nothing of its own)."""
    return shared_run_of_rank_zero() is not None


class RankLogger:
    """The run logger of a helper rank: the run's id, and no writes (rank 0 writes for all)."""

    tracking_uri = None

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.last_error: str | None = None
        self._finished = False

    def log_params(self, flat: Mapping[str, Any]) -> None:
        pass

    def set_tag(self, key: str, value: Any) -> None:
        pass

    def log_text(self, text: str, artifact_file: str) -> None:
        pass

    def log_config(self, yaml_text: str, name: str = "run_config.yaml") -> None:
        pass

    def log_artifact(self, path: Any, artifact_path: str | None = None) -> None:
        pass

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        pass

    def flush(self) -> bool:
        return True

    @property
    def pending(self) -> int:
        return 0

    def stop_requested(self) -> bool:
        return False  # rank 0 reads the request; the processes agree on it in MlflowCallback

    @property
    def finished(self) -> bool:
        return self._finished

    def finish(self, status: str = "FINISHED") -> bool:
        self._finished = True
        return True

    def __enter__(self) -> RankLogger:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._finished = True
