"""Turning a training child's output into log lines and a progress line (Qt-free).

The child writes its progress as JSON lines (:mod:`engine.tracking.progress_events`:
epoch, batch, step, their totals, the remaining time it timed itself, the latest loss);
the app asks for them by setting ``LIGHTBOX_PROGRESS_EVENTS=1`` in the child's
environment. :class:`OutputSplitter` keeps every other line for the log panel and the
newest event as :class:`Progress`, which :meth:`Progress.describe` turns into the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from engine.tracking.progress_events import EVENT_START, decode_event

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # colour codes (Ray's worker prefixes)


@dataclass(frozen=True)
class Progress:
    """One progress event of a training child."""

    event: str  # epoch_start, step or epoch_end
    epoch: int  # the epoch running, counted from 1
    epochs: int | None
    batch: int  # training batches done in this epoch
    batches: int | None
    step: int  # optimiser steps done in the run
    steps: int | None
    eta_s: float | None  # seconds left, as the training timed itself
    loss: float | None = None  # the newest training loss, where the event carried it

    def describe(self, epochs: int | None = None, step: int | None = None) -> str:
        """The progress line. ``epochs`` stands in when the event has no total; ``step`` (the newest
        charted step) is used when it is ahead of the event's."""
        epochs = self.epochs or epochs
        steps = f"/{self.steps}" if self.steps else ""
        parts = [
            f"epoch {self.epoch}" + (f"/{epochs}" if epochs else ""),
            f"batch {self.batch}" + (f"/{self.batches}" if self.batches else ""),
            f"step {max(self.step, step or 0)}{steps}",
        ]
        parts.append(f"ETA {format_duration(self.eta_s)}" if self.eta_s is not None else "ETA …")
        return " · ".join(parts)


def _whole(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _real(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def progress_from_event(event: dict[str, Any]) -> Progress | None:
    """The :class:`Progress` of a decoded event; None when it lacks the counts a line needs."""
    epoch, batch, step = _whole(event.get("epoch")), _whole(event.get("batch")), _whole(event.get("step"))
    if epoch is None or step is None:
        return None
    return Progress(
        str(event.get("event", "step")),
        epoch,
        _whole(event.get("epochs")),
        batch or 0,
        _whole(event.get("batches")),
        step,
        _whole(event.get("steps")),
        _real(event.get("eta_s")),
        _real(event.get("loss")),
    )


def parse_progress(line: str) -> Progress | None:
    """The progress a line of the child's output carries, or None for any other line."""
    event = decode_event(line)
    return progress_from_event(event) if event is not None else None


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class OutputSplitter:
    """Feed it chunks of output; it returns the complete log lines and keeps the newest progress.

    Progress lines never reach the log; ``progress`` is replaced by each new one.
    """

    def __init__(self) -> None:
        self._partial = ""
        self.progress: Progress | None = None

    def feed(self, chunk: str) -> list[str]:
        *complete, self._partial = (self._partial + chunk).split("\n")
        lines: list[str] = []
        for raw in complete:
            # A line redrawn in place (carriage returns) is logged as it finally read.
            line = next((part for part in reversed(_ANSI.sub("", raw).split("\r")) if part.strip()), "").strip()
            if not line:
                continue
            if EVENT_START not in line:
                lines.append(line)
                continue
            # An event cut short (a killed child) or lacking the counts is neither shown nor logged.
            event = decode_event(line)
            found = progress_from_event(event) if event is not None else None
            self.progress = found or self.progress
        return lines
