"""``lightbox server``: an MLflow tracking server on the workspace's SQLite store.

The server runs in its own process group (so its gunicorn/uvicorn workers stop
with it), bound to 127.0.0.1 unless told otherwise, with its artifacts under
``<workspace>/mlartifacts``; stopping it ends the whole group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


class ServerError(RuntimeError):
    """The server could not start or answer; the message says why."""


def server_command(workspace: Path, host: str, port: int) -> list[str]:
    workspace = Path(workspace).resolve()
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        host,
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{workspace / 'mlflow.db'}",
        "--artifacts-destination",
        str(workspace / "mlartifacts"),
        "--workers",
        "1",
    ]


def start_server(
    workspace: Path, host: str = "127.0.0.1", port: int = 5000, log_file: Path | None = None
) -> subprocess.Popen:
    """Start ``mlflow server`` in a new process group; returns the process (see :func:`stop_server`)."""
    workspace = Path(workspace).resolve()
    workspace.mkdir(parents=True, exist_ok=True)
    # Not a with-block: the server keeps writing to the log after this call returns.
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(
        server_command(workspace, host, port),
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=str(workspace),
    )


def wait_until_up(proc: subprocess.Popen, url: str, timeout: float = 90.0) -> None:
    """Block until ``url``/health answers; ServerError if the process ends or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"mlflow server exited with status {proc.returncode} before answering at {url}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise ServerError(f"mlflow server did not answer at {url} within {timeout:.0f} s")


def stop_server(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the server's process group, then SIGKILL what is left after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=grace)
    except ProcessLookupError:
        pass


def serve(workspace: Path, host: str = "127.0.0.1", port: int = 5000) -> int:
    """Run the server until Ctrl-C or SIGTERM; prints its URL once it answers."""
    proc = start_server(workspace, host, port)
    url = f"http://{host}:{port}"

    def terminate(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        wait_until_up(proc, url)
        print(f"MLflow server at {url} (store {Path(workspace).resolve() / 'mlflow.db'}); Ctrl-C stops it", flush=True)
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    except ServerError as exc:
        print(f"lightbox server: {exc}", file=sys.stderr)
        return 1
    finally:
        stop_server(proc)
        signal.signal(signal.SIGTERM, previous)
