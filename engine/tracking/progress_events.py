"""Training progress as JSON lines: the format, written by the training and read by the app.

A program that follows a training child (the desktop app, the learning-rate finder's
watcher) reads one JSON object per line instead of a progress bar's redraws::

    {"lightbox_progress": 1, "event": "step", "epoch": 3, "epochs": 34, "batch": 2, "batches": 3,
     "step": 9, "steps": 102, "eta_s": 41.2, "loss": 0.53}

``epoch`` counts from 1 (the epoch running, out of ``epochs``), ``batch`` is the training
batches done in it (out of ``batches``), ``step`` the optimiser steps done in the run (out of
``steps``), ``eta_s`` the seconds left as the training timed itself (null until timed).
``event`` is ``epoch_start``, ``step`` or ``epoch_end`` (which may carry ``metrics``).

The lines are written only when :data:`EVENTS_ENV` is ``"1"`` (a program asked for them);
a person at a terminal keeps the progress bar. Light: no Lightning, no torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

#: Set to "1" in a training child's environment to get the JSON lines (and no progress bar).
EVENTS_ENV = "LIGHTBOX_PROGRESS_EVENTS"
#: The key that marks a progress line; its value is the format's version.
EVENT_KEY = "lightbox_progress"
VERSION = 1
#: How a progress line starts (after whatever prefix a log adds, e.g. Ray's worker name).
EVENT_START = '{"' + EVENT_KEY + '"'


def events_wanted(environ: Mapping[str, str] | None = None) -> bool:
    """True when the process was asked to write progress events."""
    return (os.environ if environ is None else environ).get(EVENTS_ENV) == "1"


def encode_event(event: str, **fields: Any) -> str:
    """One progress line (no newline); ``fields`` are the event's numbers."""
    return json.dumps({EVENT_KEY: VERSION, "event": event, **fields}, separators=(", ", ": "))


def decode_event(line: str) -> dict[str, Any] | None:
    """The event a log line carries, or None for any other line.

    The event may follow a prefix (Ray writes a worker's name before each of its lines).
    """
    start = line.find(EVENT_START)
    if start < 0:
        return None
    try:
        event = json.loads(line[start:])
    except ValueError:  # a line cut short (a killed process): not an event
        return None
    return event if isinstance(event, dict) else None


__all__ = ["EVENTS_ENV", "EVENT_KEY", "EVENT_START", "decode_event", "encode_event", "events_wanted"]
