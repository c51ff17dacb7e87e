"""``lightbox server``: a real mlflow server on the workspace, on loopback, stopped with its group."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO_ROOT

pytest.importorskip("mlflow")

ROOT = REPO_ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_server_serves_the_workspace_store_and_stops_on_sigterm(tmp_path):
    from mlflow.tracking import MlflowClient

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "server", "--port", str(port), "--workspace", str(tmp_path / "ws")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line, line
        client = MlflowClient(f"http://127.0.0.1:{port}")
        experiment = client.create_experiment("served")
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "val/loss", 0.5)
        assert (tmp_path / "ws" / "mlflow.db").is_file()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    deadline = time.monotonic() + 10
    while _answers(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _answers(port), "the server's workers outlived lightbox server"
