"""Turning a training child's output into log lines and a progress line (Qt-free).

The child's Lightning progress bar redraws one line with carriage returns
("Epoch 2:  40%|####      | 4/10 [00:02<00:03, 1.9it/s, ...]"); :class:`OutputSplitter`
keeps finished lines for the log panel and the latest redraw for the progress line,
which :func:`parse_progress` reads.

The bar redraws only every few batches (the run's logging interval), so on a short epoch
the newest redraw is often the epoch's "0/3" with tqdm's remaining time unknown ("?").
:class:`ProgressClock` times the redraws as they arrive instead: once one epoch has
passed (validation included), or a few batches within one, it gives the run's ETA.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

_BAR = re.compile(r"Epoch (\d+):.*?\|\s*(\d+)/(\d+) \[([\d:]+)<([\d:?]+)")
_ANY_BAR = re.compile(r"\d+%\||\|\s*\d+/[\d?]+ \[")  # any tqdm redraw (validation bars too)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class Progress:
    epoch: int  # 0-based, as Lightning counts
    batch: int
    batches: int
    elapsed_s: float
    remaining_s: float | None  # of this epoch
    #: Seconds until the run ends as :class:`ProgressClock` timed it (None: not timed yet).
    measured_eta_s: float | None = None

    @property
    def step(self) -> int:
        """Training batches done in the whole run (the optimiser step, without gradient accumulation)."""
        return self.epoch * self.batches + self.batch

    def eta_s(self, epochs: int | None) -> float | None:
        """Seconds until the run ends: as timed by the clock, else from tqdm's estimate for this epoch,
        assuming every epoch takes as long as this one."""
        if self.measured_eta_s is not None:
            return self.measured_eta_s
        if self.remaining_s is None:
            return None
        later = max(0, (epochs or self.epoch + 1) - self.epoch - 1)
        return self.remaining_s + later * (self.elapsed_s + self.remaining_s)

    def describe(self, epochs: int | None, step: int | None = None) -> str:
        """The progress line; ``step`` (the newest charted step) is used when it is ahead of the bar's count."""
        parts = [f"epoch {self.epoch + 1}" + (f"/{epochs}" if epochs else ""), f"batch {self.batch}/{self.batches}",
                 f"step {max(self.step, step or 0)}"]
        eta = self.eta_s(epochs)
        parts.append(f"ETA {format_duration(eta)}" if eta is not None else "ETA …")
        return " · ".join(parts)


def _seconds(text: str) -> float | None:
    if "?" in text:
        return None
    total = 0.0
    for part in text.split(":"):
        total = total * 60 + float(part)
    return total


def parse_progress(line: str) -> Progress | None:
    match = _BAR.search(line)
    if not match:
        return None
    epoch, batch, batches, elapsed, remaining = match.groups()
    return Progress(int(epoch), int(batch), int(batches), _seconds(elapsed) or 0.0, _seconds(remaining))


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class OutputSplitter:
    """Feed it chunks of output; it returns complete lines and remembers the latest progress."""

    def __init__(self) -> None:
        self._partial = ""
        self.progress: Progress | None = None

    def feed(self, chunk: str) -> list[str]:
        text = self._partial + chunk
        lines: list[str] = []
        *complete, self._partial = text.split("\n")
        for line in complete:
            redraws = _ANSI.sub("", line).split("\r")
            self._note(redraws)
            final = redraws[-1].strip() or next((r for r in reversed(redraws) if r.strip()), "")
            if final and not _ANY_BAR.search(final):
                lines.append(final)
        self._note(self._partial.split("\r"))
        if "\r" in self._partial:  # keep only the latest redraw of an unfinished line
            self._partial = self._partial.rsplit("\r", 1)[-1]
        return lines

    def _note(self, redraws: list[str]) -> None:
        for redraw in reversed(redraws):
            found = parse_progress(redraw)
            if found is not None:
                if found != self.progress:  # the same redraw read again (an unfinished line) is not news
                    self.progress = found
                return


#: Batches within one epoch that give a rate to go by before a whole epoch has been timed.
FEW_BATCHES = 3


class ProgressClock:
    """Times the progress redraws as they arrive and gives each one the run's ETA.

    Once an epoch has passed, the next ones are taken to last as long (the newest whole
    epoch, its validation included); before that, the rate of the batches seen in this
    epoch, once there are :data:`FEW_BATCHES` of them.
    """

    def __init__(self) -> None:
        self._epoch_start: dict[int, float] = {}  # epoch -> when its first redraw arrived
        self._first: tuple[int, int, float] | None = None  # (epoch, batch, time) of this epoch's first redraw

    def update(self, progress: Progress, now: float, epochs: int | None) -> Progress:
        if progress.epoch not in self._epoch_start:
            self._epoch_start[progress.epoch] = now
            self._first = (progress.epoch, progress.batch, now)
        return replace(progress, measured_eta_s=self._eta(progress, now, epochs or progress.epoch + 1))

    def _eta(self, progress: Progress, now: float, epochs: int) -> float | None:
        later = max(0, epochs - progress.epoch - 1)
        started = self._epoch_start[progress.epoch]
        previous = self._epoch_start.get(progress.epoch - 1)
        if previous is not None:
            epoch_s = started - previous
            return max(0.0, epoch_s - (now - started)) + later * epoch_s
        first_epoch, first_batch, first_time = self._first
        done = progress.batch - first_batch
        if first_epoch == progress.epoch and done >= FEW_BATCHES and now > first_time:
            batch_s = (now - first_time) / done
            return ((progress.batches - progress.batch) + later * progress.batches) * batch_s
        return None
