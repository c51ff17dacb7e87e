"""Test connection against closed and silent ports, a stub MLflow that refuses writes, and a stub probe."""

import http.server
import json
import socket
import threading
import time

import pytest

from engine.orchestration import connection_check
from engine.orchestration.connection_check import CheckResult, check_mlflow, check_ray, dashboard_url, token_source


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_port():
    """A port that takes connections and never answers (a hung server, a firewall that swallows)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield listener.getsockname()[1]
    listener.close()


def test_a_closed_port_is_reported_unreachable_with_its_address_within_10_s():
    port = _closed_port()
    for check, what in ((check_ray, "Ray dashboard"), (check_mlflow, "MLflow server")):
        started = time.monotonic()
        result = check(f"http://127.0.0.1:{port}")
        assert time.monotonic() - started < 10
        assert not result.ok
        assert result.problem == f"cannot reach the {what} at http://127.0.0.1:{port}: connection refused"


def test_a_server_that_never_answers_is_reported_within_the_limit(silent_port):
    for check in (check_ray, check_mlflow):
        started = time.monotonic()
        result = check(f"http://127.0.0.1:{silent_port}", timeout=2.0)
        assert time.monotonic() - started < 2.0
        assert not result.ok and f"127.0.0.1:{silent_port}" in result.problem
        assert "2 s" in result.problem  # it says how long it waited


def test_the_default_limit_is_10_s():
    import inspect

    for check in (check_ray, check_mlflow):
        assert inspect.signature(check).parameters["timeout"].default == 10.0


def test_addresses_are_dashboard_urls():
    assert dashboard_url("host:8265") == "http://host:8265"
    assert dashboard_url("https://host:8265/") == "https://host:8265"
    result = check_ray("ray://host:10001")
    assert not result.ok and "dashboard" in result.problem
    assert "not an MLflow server address" in check_mlflow("sqlite:///x.db").problem


def test_the_token_source_is_named_in_ray_s_order(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert token_source() is None
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("t")
    assert token_source() == str(tmp_path / ".ray" / "auth_token")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "named"))
    assert token_source() == f"RAY_AUTH_TOKEN_PATH ({tmp_path / 'named'})"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "secret")
    assert token_source() == "RAY_AUTH_TOKEN"
    assert token_source(tmp_path / "file") == f"token file {tmp_path / 'file'}"


def test_an_unreadable_named_token_file_is_the_problem(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "missing"))
    result = check_ray(f"http://127.0.0.1:{_closed_port()}")
    assert "RAY_AUTH_TOKEN_PATH" in result.problem and str(tmp_path / "missing") in result.problem


class _RefusingMlflow(http.server.BaseHTTPRequestHandler):
    """Answers /health, refuses every write with 403, as a server with auth on does."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"OK")

    def do_POST(self):  # noqa: N802
        self.send_response(403)
        self.end_headers()
        self.wfile.write(b'{"error_code": "PERMISSION_DENIED"}')

    def log_message(self, *args):
        pass


def test_an_mlflow_server_that_refuses_writes_says_403_and_the_credentials_source(monkeypatch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RefusingMlflow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        for name in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            monkeypatch.delenv(name, raising=False)
        result = check_mlflow(uri)
        assert result.facts["reachable"] is True and result.facts["writable"] is False
        assert f"the MLflow server at {uri} refused a write (403) with no credentials" in result.problem
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "mlflow-secret-value")
        result = check_mlflow(uri)
        assert "credentials from MLFLOW_TRACKING_TOKEN" in result.problem
        assert "mlflow-secret-value" not in result.problem + result.found()
    finally:
        server.shutdown()
        server.server_close()


class _Status:
    def __init__(self, value):
        self.value = value


class _PendingJobs:
    """A cluster whose probe job never starts in time."""

    def __init__(self):
        self.stopped = []

    def submit_job(self, **kwargs):
        return "raysubmit_probe"

    def get_job_status(self, job_id):
        return _Status("PENDING")

    def stop_job(self, job_id):
        self.stopped.append(job_id)


def test_a_probe_that_does_not_end_in_time_is_unknown_not_unreadable(monkeypatch):
    from engine.orchestration import ray_jobs

    jobs = _PendingJobs()
    monkeypatch.setattr(ray_jobs, "client", lambda url, token=None: jobs)
    found = CheckResult("http://cluster:8265")
    connection_check._probe_dataset(
        "http://cluster:8265", None, "/data/coco", found, connection_check._Deadline(4.0, 10.0)
    )
    assert found.problem == (
        "could not tell in time whether the cluster can read /data/coco (probe job raysubmit_probe still PENDING)"
    )
    assert jobs.stopped == ["raysubmit_probe"]  # no probe left waiting on the cluster


def _dashboard_stub(nodes: list[dict], version: str):
    """A Ray dashboard that answers its version and its nodes, as the state API lists them."""

    class Dashboard(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            listed = {"data": {"result": {"result": nodes}}}
            body = {"ray_version": version} if self.path == "/api/version" else listed
            self.send_response(200)
            self.end_headers()
            self.wfile.write(json.dumps(body).encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Dashboard)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_live_nodes_are_counted_with_their_cpus_and_gpus_and_none_is_a_problem(monkeypatch, tmp_path):
    # No token anywhere Ray looks (another test of the session may have left one in the tests' home).
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    version = connection_check.local_ray_version()
    nodes = [
        {"state": "ALIVE", "resources_total": {"CPU": 8.0, "GPU": 2.0}},
        {"state": "ALIVE", "resources_total": {"CPU": 4.0}},
        {"state": "DEAD", "resources_total": {"CPU": 64.0, "GPU": 8.0}},
    ]
    server = _dashboard_stub(nodes, version)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        result = check_ray(url)
        assert result.ok, result.problem
        assert result.found() == f"Ray {version} · 2 nodes · 12 CPUs · 2 GPUs"
    finally:
        server.shutdown()
        server.server_close()
    server = _dashboard_stub(nodes[2:], version)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert check_ray(url).problem == f"the Ray cluster at {url} lists no live node: it cannot run a job yet"
    finally:
        server.shutdown()
        server.server_close()
