"""Following a child process of the app (the predictor, the learning-rate finder) from a worker thread.

The child writes plain lines and JSON progress events (``engine.tracking.progress_events``) on
one pipe. :func:`follow_child` reads it until the child ends, hands each event and each
non-empty plain line to the caller, and stops the child's whole session when asked to cancel
or when anything goes wrong, so nothing it started is left running.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import threading
from collections.abc import Callable
from typing import Any

from engine.tracking.progress_events import decode_event


def follow_child(
    child: subprocess.Popen,
    *,
    on_event: Callable[[dict[str, Any]], None],
    on_line: Callable[[str], None],
    cancel: threading.Event | None = None,
    cancelled: Callable[[], Exception] = lambda: RuntimeError("cancelled"),
) -> int:
    """Read ``child``'s output to its end and return its exit status; ``cancelled()`` is raised once
    ``cancel`` is set. The child must run in a session of its own (``start_new_session=True``)."""
    assert child.stdout is not None
    partial = ""
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(child.stdout, selectors.EVENT_READ)
            while True:
                if cancel is not None and cancel.is_set():
                    raise cancelled()
                if not sel.select(timeout=0.2):
                    continue
                chunk = child.stdout.read1(65536).decode("utf-8", errors="replace")
                if not chunk:
                    break
                *complete, partial = (partial + chunk).replace("\r", "\n").split("\n")
                for line in complete:
                    event = decode_event(line)
                    if event is not None:
                        on_event(event)
                    elif line.strip():
                        on_line(line.strip())
    finally:
        if child.poll() is None:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                child.kill()
        child.wait()
        child.stdout.close()
    if partial.strip():
        on_line(partial.strip())
    return child.returncode
