"""Why a run failed, in one place: the text the CLI prints and the ``lightbox.error`` tag on the run.

A failed run used to say only FAILED in MLflow, with the reason in a log nobody kept;
now the run carries the same text the command printed after ``lightbox train:``, so the
app's run Summary (and anyone reading the store) sees why.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from engine.tracking.tags import ERROR_TAG

if TYPE_CHECKING:  # only for annotations: MLflow stays optional
    from engine.tracking.local_run import LocalRunLogger
    from engine.tracking.logger import RunLogger
    from engine.tracking.shared_run import RankLogger

log = logging.getLogger(__name__)


def describe_failure(exc: BaseException) -> str:
    """The text after ``lightbox <verb>:``: the engine's own errors as they are worded, any
    other exception with its type (``RuntimeError: Sizes of tensors must match ...``)."""
    text = str(exc).strip()
    if text and type(exc).__module__.split(".")[0] == "engine":
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def record_failure(run_logger: RunLogger | LocalRunLogger | RankLogger, text: str) -> None:
    """Tag the run with ``text``; tracking trouble is logged, never raised over the real failure."""
    try:
        run_logger.set_tag(ERROR_TAG, text)
    except Exception as exc:  # the store may be what failed
        log.warning("could not record the failure on run %s: %s", getattr(run_logger, "run_id", "?"), exc)


@contextlib.contextmanager
def failures_recorded(run_logger: RunLogger | LocalRunLogger | RankLogger) -> Iterator[None]:
    """Any exception leaving the block is recorded on the run, then raised on.

    A stop (Ctrl-C, SIGTERM: BaseExceptions that are not Exceptions) is not a failure.
    """
    try:
        yield
    except Exception as exc:
        record_failure(run_logger, describe_failure(exc))
        raise


__all__ = ["ERROR_TAG", "describe_failure", "failures_recorded", "record_failure"]
