"""Test connection on a real ``ray start --head`` with token authentication and a real ``lightbox server``."""

import os
import subprocess
import sys
import time

import pytest

pytest.importorskip("ray")
pytest.importorskip("mlflow")

from engine.orchestration import connection_check  # noqa: E402
from engine.orchestration.connection_check import check_mlflow, check_ray  # noqa: E402
from tests.conftest import REPO_ROOT  # noqa: E402
from tests.engine.orchestration.test_ray_jobs import _free_ports, _start_head, _stop_head  # noqa: E402

pytestmark = pytest.mark.slow
SECRET = "lightbox-check-token-0123456789abcdef0123456789"


@pytest.fixture(scope="module")
def token_head(tmp_path_factory):
    """A head that wants a token, read from a token file (never from the real home)."""
    token_file = tmp_path_factory.mktemp("token") / "auth_token"
    token_file.write_text(SECRET + "\n")
    proc, url = _start_head({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_file)})
    yield url, token_file
    _stop_head(proc)


@pytest.fixture
def no_token_anywhere(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.ray/auth_token here
    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)


def _texts(result) -> str:
    return result.problem + result.found() + repr(result.facts)


def test_the_cluster_says_its_version_nodes_and_cpus_and_reads_the_dataset(token_head, tmp_path, no_token_anywhere):
    url, token_file = token_head
    check_ray(url, token_file=token_file, dataset_path=tmp_path)  # the first job on a new head starts its agent
    started = time.monotonic()
    result = check_ray(url, token_file=token_file, dataset_path=tmp_path)
    assert time.monotonic() - started < 10
    assert result.ok, result.problem
    assert result.facts["ray_version"] == connection_check.local_ray_version()
    assert (result.facts["nodes"], result.facts["cpus"], result.facts["gpus"]) == (1, 2, 0)
    assert result.facts["dataset"] == str(tmp_path)
    assert result.facts["token"] == f"token file {token_file}"
    assert SECRET not in _texts(result)


def test_no_token_is_401_and_a_wrong_one_403_naming_its_source_not_its_value(
    token_head, no_token_anywhere, monkeypatch
):
    url, _ = token_head
    result = check_ray(url)
    assert result.problem.startswith(f"the Ray cluster at {url} refused the request (401")
    assert "none was found" in result.problem
    monkeypatch.setenv("RAY_AUTH_TOKEN", "not-the-cluster-token-0123456789")
    result = check_ray(url)
    assert "refused the token from RAY_AUTH_TOKEN (403" in result.problem
    assert "not-the-cluster-token" not in _texts(result)


def test_a_dataset_the_cluster_cannot_read_is_named_and_its_path_never_runs(token_head, tmp_path, no_token_anywhere):
    url, token_file = token_head
    marker = tmp_path / "ran"
    path = tmp_path / f"data $(touch {marker}) `touch {marker}`; touch {marker}"
    result = check_ray(url, token_file=token_file, dataset_path=path)
    assert result.problem == f"the dataset folder {path} is not readable by the Ray cluster at {url}"
    assert result.facts["ray_version"]  # what was found is still said
    assert not marker.exists()


def test_another_ray_version_here_is_a_mismatch(token_head, no_token_anywhere, monkeypatch):
    url, token_file = token_head
    monkeypatch.setattr(connection_check, "local_ray_version", lambda: "2.1.0")
    result = check_ray(url, token_file=token_file)
    remote = result.facts["ray_version"]
    assert result.problem == f"Ray version mismatch: this computer has Ray 2.1.0, the cluster at {url} runs {remote}"


def test_a_real_lightbox_server_is_reachable_and_writable_and_keeps_no_experiment(tmp_path):
    from mlflow import MlflowClient

    (port,) = _free_ports(1)
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "server", "--port", str(port), "--workspace", str(tmp_path / "ws")],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        assert uri in proc.stdout.readline()  # printed once it answers
        result = check_mlflow(uri)
        assert result.ok, result.problem
        assert result.facts["reachable"] and result.facts["writable"]
        assert result.facts["mlflow_version"]
        names = [e.name for e in MlflowClient(uri).search_experiments()]
        assert not [n for n in names if n.startswith("lightbox-connection-check")]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
