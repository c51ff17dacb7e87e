"""Turning a training child's output into log lines and a progress line (Qt-free).

The child's Lightning progress bar redraws one line with carriage returns
("Epoch 2:  40%|####      | 4/10 [00:02<00:03, 1.9it/s, ...]"); :class:`OutputSplitter`
keeps finished lines for the log panel and the latest redraw for the progress line,
which :func:`parse_progress` reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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

    def eta_s(self, epochs: int | None) -> float | None:
        """Seconds until the run ends, assuming every epoch takes as long as this one."""
        if self.remaining_s is None:
            return None
        later = max(0, (epochs or self.epoch + 1) - self.epoch - 1)
        return self.remaining_s + later * (self.elapsed_s + self.remaining_s)

    def describe(self, epochs: int | None, step: int | None = None) -> str:
        parts = [f"epoch {self.epoch + 1}" + (f"/{epochs}" if epochs else ""), f"batch {self.batch}/{self.batches}"]
        if step is not None:
            parts.append(f"step {step}")
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
                self.progress = found
                return
