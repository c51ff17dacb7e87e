"""An export from the dialog, in a process of its own, watched from a worker thread (Qt-free).

Exporting loads torch, traces the model and runs onnxruntime: in the app's process that would
hold the GIL for seconds (the event loop stalls) and pull torch into the GUI. So
``run_export`` (called on a TaskSlot's thread) starts a spawned child that calls
``engine.export.build.export_run`` (and registers the export), relays its steps as progress and
returns an :class:`ExportOutcome`. Cancel kills the child at once, then
``discard_unfinished`` removes its hidden half-built folder and puts back an earlier export that
a killed swap had moved aside: nothing is left that looks finished, and nothing good is lost.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .export_model import ExportOutcome, ExportRequest

POLL_S = 0.1  # how often the watching thread looks at the cancel flag
KILL_GRACE_S = 5.0  # after SIGTERM, before SIGKILL

Progress = Callable[[str, int, int], None]


def _child(request: ExportRequest, messages: Any, niceness: int) -> None:
    """The export itself, in the child: every step, note and the end go back as messages."""
    if niceness:
        os.nice(niceness)
    from engine.export.build import export_run
    from engine.export.manifest import ExportError, ParityError

    total = [0]  # the engine's steps; registering is one more

    def progress(text: str, step: int, steps: int) -> None:
        total[0] = steps
        messages.put(("progress", (text, step, steps + (1 if request.register else 0))))

    try:
        manifest = export_run(
            **request.engine_kwargs(), say=lambda text: messages.put(("note", text)), progress=progress
        )
    except ParityError as exc:
        messages.put(("failed", (str(exc), exc.parity)))
        return
    except (ExportError, ValueError, OSError) as exc:
        messages.put(("failed", (str(exc), None)))
        return
    except Exception as exc:  # a bug: its place, not only its name
        messages.put(("failed", (f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}", None)))
        return
    registered, problem = None, None
    if request.register:
        from engine.export.registry import register_export

        messages.put(
            ("progress", (f"registering in MLflow as {request.register}@{request.alias}", total[0], total[0] + 1))
        )
        try:
            registered = register_export(
                request.out, request.register, alias=request.alias, tracking_uri=request.tracking_uri
            )
        except (ExportError, ValueError, OSError) as exc:
            problem = str(exc)
    messages.put(("done", (manifest, registered, problem)))


def _identity(path: Path) -> tuple[int, int] | None:
    """Which folder ``path`` is now (a swapped-in export is another folder under the same name)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_dev


def run_export(
    request: ExportRequest,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    niceness: int = 0,
) -> ExportOutcome:
    """Export in a child process; blocks (call it from a worker thread)."""
    context = multiprocessing.get_context("spawn")  # never fork a process that runs Qt
    messages = context.Queue()
    before = _identity(request.out)
    child = context.Process(target=_child, args=(request, messages, niceness), daemon=True)
    child.start()
    notes: list[str] = []
    try:
        while True:
            if cancel is not None and cancel.is_set():
                return _cancelled(request, child, before, notes)
            try:
                kind, payload = messages.get(timeout=POLL_S)
            except queue.Empty:
                if not child.is_alive():  # killed from outside (out of memory): tidy as after Cancel
                    from engine.export.build import discard_unfinished

                    discard_unfinished(request.out, child.pid)
                    return ExportOutcome(
                        False,
                        request.out,
                        f"the export process ended without a word (exit code {child.exitcode}); "
                        f"nothing was exported to {request.out}",
                        notes=notes,
                    )
                continue
            if kind == "progress":
                if progress is not None:
                    progress(*payload)
            elif kind == "note":
                notes.append(payload)
            elif kind == "failed":
                message, parity = payload
                return ExportOutcome(False, request.out, message, parity=parity, notes=notes)
            else:
                manifest, registered, problem = payload
                return _finished(request, manifest, registered, problem, notes)
    finally:
        child.join(KILL_GRACE_S)
        if child.is_alive():
            child.kill()
            child.join()
        messages.close()


def _finished(
    request: ExportRequest,
    manifest: dict[str, Any],
    registered: dict[str, Any] | None,
    problem: str | None,
    notes: list[str],
) -> ExportOutcome:
    message = f"Exported to {request.out}."
    if registered:
        message += f" Registered as {registered['uri']} (version {registered['version']})."
    if problem:
        message += f" Not registered: {problem}"
    return ExportOutcome(True, request.out, message, manifest, manifest.get("parity"), registered, notes=notes)


def _cancelled(request: ExportRequest, child: Any, before: tuple[int, int] | None, notes: list[str]) -> ExportOutcome:
    """Stop the child now, then tidy after it; say what the destination holds."""
    from engine.export.build import discard_unfinished
    from engine.export.manifest import ExportError, read_manifest

    child.terminate()
    child.join(KILL_GRACE_S)
    if child.is_alive():
        child.kill()
        child.join()
    discard_unfinished(request.out, child.pid)
    if _identity(request.out) not in (None, before):  # the swap had completed: a whole, checked export
        try:
            manifest = read_manifest(request.out)
        except ExportError:
            manifest = None
        if manifest is not None:
            return ExportOutcome(
                True,
                request.out,
                f"The export had finished before Cancel took effect: it is complete at {request.out} (not registered).",
                manifest,
                manifest.get("parity"),
                notes=notes,
            )
    kept = " (the earlier export there is untouched)" if before is not None else ""
    return ExportOutcome(
        False, request.out, f"Cancelled: nothing was exported to {request.out}{kept}.", cancelled=True, notes=notes
    )
